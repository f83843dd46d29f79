"""What the Spend and Models pages load into the server: their charts are plain Vega-Lite specs,
so drawing them imports no Altair (nor its jsonschema), ~27 MB of a server's memory (issue 13).
Run in a fresh interpreter: another test of this process may have imported Altair already."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

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
