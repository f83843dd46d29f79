"""The server polls and archives on its own: no browser is ever opened in these tests."""
import json
import os
import time

from lib import lifecycle
from lib.backend import Backend
from lib.settings import simulator_state_dir
from lib.simulator import ensure_simulator
from lib.store import Store
from lib.tasks import submit_task


def test_tasks_finish_and_archive_with_no_browser_open(dashboard, tmp_path, monkeypatch):
    # The dashboard fixture started `streamlit run` and nothing has opened a page since.
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    monkeypatch.setenv("SIMULATOR_STATE_DIR", str(tmp_path / "simulator"))
    url, key = ensure_simulator(simulator_state_dir())  # the app's own simulator, found through its state dir
    running = json.loads((simulator_state_dir() / "simulator.json").read_text())
    assert running["pid"] != os.getpid()  # started by the app server at start-up, not by this test
    backend = Backend(name="simulator", base_url=url, api_key=key)
    store = Store(tmp_path / "dashboard.db")
    result = submit_task(store, backend, task_type="text_to_image", model_id="gen4_image",
                         inputs={"promptText": "A lantern in fog", "ratio": "1024:1024"})
    assert result.ok
    deadline = time.time() + 40
    while time.time() < deadline:
        outputs = store.outputs_for([result.task_id])[result.task_id]
        if outputs and outputs[0]["state"] == "archived":
            break
        time.sleep(0.5)
    task = store.task(result.task_id)
    assert task["status"] == lifecycle.SUCCEEDED
    [output] = store.outputs_for([result.task_id])[result.task_id]
    assert output["state"] == "archived" and output["mime"] == "image/png"


def test_the_dashboards_scripts_go_out_compressed_when_the_browser_asks(dashboard):
    import re

    import httpx

    page = httpx.get(dashboard, headers={"Accept-Encoding": "gzip"})
    script = re.search(r'src="\./(static/js/[^"]+\.js)"', page.text)[1]
    raw = httpx.get(f"{dashboard}/{script}", headers={"Accept-Encoding": "identity"})
    packed = httpx.get(f"{dashboard}/{script}", headers={"Accept-Encoding": "gzip"})
    assert raw.headers.get("content-encoding") is None
    assert packed.headers["content-encoding"] == "gzip"
    assert len(packed.content) == len(raw.content)  # httpx decoded it: the same script
    assert packed.num_bytes_downloaded < raw.num_bytes_downloaded / 2  # what went over the wire
