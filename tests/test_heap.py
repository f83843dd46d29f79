"""The server's long-lived objects are set aside from Python's garbage collector once the pages'
modules are loaded (`lib.ui.page._freeze_the_long_lived`), so that a full collection in the middle
of a page walks what the page made, not the 100,000 objects of Streamlit, pandas and pyarrow."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# In a process of its own: in the suite's, other tests' background threads may load a module at any moment.
PROBE = textwrap.dedent("""
    import gc, importlib, json, sys
    import pandas  # what a page loads
    from lib.ui import page
    page._freeze_the_long_lived()
    first = gc.get_freeze_count()
    cycle = [[]]
    cycle[0].append(cycle)  # garbage made after the freeze is still the collector's
    del cycle
    page._freeze_the_long_lived()  # nothing more loaded: nothing more frozen
    again = gc.get_freeze_count()
    collected = gc.collect()
    importlib.import_module("colorsys")  # a page that loads one more module
    page._freeze_the_long_lived()
    print(json.dumps({"first": first, "again": again, "collected": collected, "after": gc.get_freeze_count(),
                      "tracked": len(gc.get_objects())}))
""")


def test_what_is_loaded_is_frozen_once_and_again_only_after_more_modules_load():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["first"] > 10_000 and seen["again"] == seen["first"] and seen["collected"] >= 2
    assert seen["after"] > seen["first"] and seen["tracked"] < seen["first"] / 2
