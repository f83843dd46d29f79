"""What the Spend and Models pages load into the server: their charts are plain Vega-Lite specs,
so drawing them imports no Altair (nor its jsonschema), ~27 MB of a server's memory, and the
pyarrow Streamlit loads for them allocates with malloc (issue 13). Run in a fresh interpreter:
another test of this process may have imported Altair or pyarrow already."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from lib.ui import SPEND_PAGE
from tests.support import ROOT
from tests.support.history import insert_tasks, task_row

PROBE = """
import json, sys
from tests.support.apptest import open_page
drawn = {}
for page in sys.argv[1:]:
    at = open_page(page, timeout=120)
    assert not at.exception, at.exception
    drawn[page] = len(at.get("vega_lite_chart"))
print(json.dumps({"charts": drawn, "loaded": sorted(m for m in ("altair", "jsonschema", "pandas", "pyarrow")
                                                   if m in sys.modules)}))
"""


def test_the_spend_and_models_pages_draw_their_charts_without_loading_altair(store, app_env):
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=1, microsecond=0)
    insert_tasks(store, [task_row(teammate="Ana", cost_credits=60.0, created=today),
                         task_row(teammate="Leo", model="veo3.1", cost_credits=40.0, created=today)])
    done = subprocess.run([sys.executable, "-c", PROBE, SPEND_PAGE, "pages/22_Models.py"], cwd=ROOT,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["charts"][SPEND_PAGE] == 5  # by day, model, task type, teammate; the balance
    # pandas and pyarrow are Streamlit's own for any table or chart; Altair is not needed for a spec.
    assert seen["loaded"] == ["pandas", "pyarrow"]


SERVER_START = """
import asyncio, ctypes, json, os, re, sys, tempfile, threading
import app  # what `streamlit run app.py` imports, then it runs the lifespan, before any page
loaded_at_start = "pyarrow" in sys.modules


def arenas():
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    fd, path = tempfile.mkstemp()
    os.close(fd)
    out = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(out))
    libc.fclose(ctypes.c_void_p(out))
    with open(path) as f:
        text = f.read()
    os.unlink(path)
    return len(re.findall(r'<heap nr="[0-9]+">', text))


async def start():
    async with app.server.lifespan(None):
        import pyarrow  # as Streamlit does for a page's first table or chart
        pool = pyarrow.default_memory_pool()
        data = pyarrow.array(range(100_000))  # allocated from that pool
        # Eight threads alive at once, each allocating, as Streamlit's script and request threads do.
        together = threading.Barrier(9)
        kept = []
        def work():
            kept.append([bytearray(100_000) for _ in range(10)])
            together.wait()
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        together.wait()
        print(json.dumps({"loaded_at_start": loaded_at_start, "pool": pool.backend_name,
                          "allocated": pool.bytes_allocated() >= data.nbytes, "arenas": arenas()}))
        for t in threads:
            t.join()

asyncio.run(start())
"""


@pytest.mark.parametrize(("given", "pool", "arenas"), [
    ({}, "system", [1, 2]),
    ({"ARROW_DEFAULT_MEMORY_POOL": "mimalloc", "MALLOC_ARENA_MAX": "8"}, "mimalloc", [3, 4, 5, 6, 7, 8]),
])
def test_the_server_start_has_pyarrow_allocate_with_malloc_in_two_arenas_unless_told_otherwise(
        app_env, monkeypatch, given, pool, arenas):
    """pyarrow's own pool is mimalloc, which keeps a heap for every thread that allocated, and glibc
    gives each thread an arena, up to eight a core: memory freed in each stays there (issue 13).
    A choice the environment makes is kept (glibc reads MALLOC_ARENA_MAX itself at the start)."""
    for name in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    done = subprocess.run([sys.executable, "-c", SERVER_START], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert {k: seen[k] for k in ("loaded_at_start", "pool", "allocated")} == {
        "loaded_at_start": False, "pool": pool, "allocated": True}
    assert seen["arenas"] in arenas
