"""Every page runs in AppTest against the built-in simulator and shows what a user should see."""
import time
from pathlib import Path

import pytest

from lib import archive, catalog
from lib.backend import current_backend
from lib.poller import Poller
from lib.store import Store
from lib.ui import HISTORY_PAGE, PAGE_FILES
from tests.support.apptest import open_page
from tests.support.simulator import simulator_requests


@pytest.fixture
def env(app_env):
    return app_env


def _sim_requests():
    return simulator_requests(creates_only=True)


def _run(path, **query):
    return open_page(path, **query)


def test_the_sidebar_links_every_page_once_within_the_session(env):
    # From the entry page, as the server runs it: page links that keep the session.
    links = [link.proto for link in _run("app.py").sidebar.get("page_link")]
    labels = [link.label for link in links]
    assert labels[:5] == ["Home", "History", "Compare", "Spend", "Models"]  # not Task, which needs a task's number
    assert sorted(labels[5:]) == sorted(t.name for t in catalog.TASK_TYPES)
    assert [link.label for link in links if link.disabled] == ["Home"]  # the page being shown
    headings = [m.value for m in _run("app.py").sidebar.markdown]
    assert headings.index("**Review**") < headings.index("**New task**")


def test_home_links_its_pages_within_the_session(env):
    # Home's task grid and its link to History move within the session, like the sidebar: the name stays.
    links = [link.proto for link in _run("app.py").main.get("page_link")]
    assert sorted(link.label for link in links) == sorted(
        [t.name for t in catalog.TASK_TYPES] + ["All tasks on History"])


def test_a_page_run_as_its_own_entry_point_links_the_others_plainly(env):
    # AppTest runs a page file as the entry point, where page links cannot resolve the others.
    links = " ".join(m.value for m in _run(PAGE_FILES["text_to_speech"]).sidebar.markdown)
    assert "**Text to Speech**" in links and "[History](History)" in links and "[Home](./)" in links


@pytest.mark.parametrize("path", ["app.py", HISTORY_PAGE, *PAGE_FILES.values()])
def test_every_page_renders_without_error(env, path):
    at = _run(path)
    assert not at.exception, at.exception
    assert any("Simulator" in i.value for i in at.sidebar.info)


def test_task_pages_offer_the_models_of_their_type(env):
    for key, path in PAGE_FILES.items():
        at = _run(path)
        # Each model is named with its maker ("Runway's own" for Runway's), in the catalog's order.
        assert at.selectbox[0].options == [catalog.model_label(m, live_backend=False)
                                           for m in catalog.task_type(key).models], key


def test_home_shows_backend_and_credit_balance(env):
    at = _run("app.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Credit balance"] == "10,000"
    assert metrics["Tasks in history"] == "0"


def test_text_to_video_submission_writes_the_row(env):
    at = _run(PAGE_FILES["text_to_video"], teammate="Ana")
    at.text_area[0].input("A lighthouse at dawn, slow push in")
    at.selectbox(key="text_to_video_gen4.5_ratio").select("720:1280")
    at.number_input(key="text_to_video_gen4.5_duration").set_value(7)
    at.button[0].click().run()
    assert not at.exception
    assert any("submitted to gen4.5" in s.value for s in at.success)
    [task] = Store(env / "dashboard.db").recent_tasks()
    assert task["request"] == {"model": "gen4.5", "promptText": "A lighthouse at dawn, slow push in",
                               "ratio": "720:1280", "duration": 7}
    assert task["teammate"] == "Ana" and task["backend"] == "simulator" and task["task_uuid"]
    assert [r["path"] for r in _sim_requests()] == ["/v1/text_to_video"]


def test_invalid_submission_shows_errors_and_sends_nothing(env):
    at = _run(PAGE_FILES["text_to_video"])
    at.text_area[0].input("   ")
    at.button[0].click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("Prompt is required" in e for e in errors)
    assert any("Nothing was sent" in e for e in errors)
    assert Store(env / "dashboard.db").count_tasks() == 0
    assert _sim_requests() == []


def test_history_shows_status_and_archived_output(env):
    at = _run(PAGE_FILES["text_to_video"])
    at.text_area[0].input("A kite over dunes")
    at.button[0].click().run()
    store = Store(env / "dashboard.db")
    poller = Poller(store.path, [current_backend()], interval=0.2, static_dir=env / "static")
    deadline = time.time() + 30
    while time.time() < deadline and not store.outputs_for([1])[1]:
        poller.poll_once()
        time.sleep(0.2)
    poller.archive_once()
    poller.stop()
    at = _run(HISTORY_PAGE)
    assert not at.exception
    assert any("A kite over dunes" in t.value for t in at.text)
    [output] = store.outputs_for([1])[1]
    assert output["state"] == "archived" and output["mime"] == "video/mp4"
    assert any("SUCCEEDED" in m.value for m in at.markdown)  # the status badge
    # The app's own poller may have archived it first, into the real static/: then the
    # output can be downloaded from its card as well.
    on_disk = (archive.STATIC_DIR / Path(output["path"]).name).is_file()
    assert [b.proto.label for b in at.get("link_button")] == ["Export CSV"] + (["Download"] if on_disk else [])


def test_empty_history_says_how_to_start(env):
    at = _run(HISTORY_PAGE)
    assert not at.exception
    assert any("No tasks yet" in i.value for i in at.info)
