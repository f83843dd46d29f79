"""Compare in a real Chromium: a group of three models shows three videos side by side,
and pressing play on one starts all three (pause and seek follow too)."""
from pathlib import Path

from lib.backend import Backend
from lib.simulator import ensure_simulator
from lib.store import Store
from lib.tasks import submit_task

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
MODELS = {"gen4.5": 2, "veo3.1": 4, "veo3.1_fast": 4}  # model -> shortest duration it takes


def _submit_group(tmp_path) -> list[int]:
    """Three tasks fanned out to three models as one group, on the dashboard's own simulator."""
    url, key = ensure_simulator(tmp_path / "simulator")
    backend = Backend(name="simulator", base_url=url, api_key=key)
    store = Store(tmp_path / "dashboard.db")
    try:
        results = [submit_task(store, backend, task_type="text_to_video", model_id=model, group_id="g-browser",
                               inputs={"promptText": "A lighthouse at dawn", "ratio": "1280:720",
                                       "duration": seconds}, teammate="Ana")
                   for model, seconds in MODELS.items()]
    finally:
        store.close()
    assert all(r.ok for r in results), results
    return [r.task_id for r in results]


def _players(page, count: int = 3) -> list:
    """The row's videos, one in each column's frame (a phone stacks each with its rating)."""
    frames = page.frame_locator("iframe[title^='Output of #']")
    frames.nth(count - 1).locator("video").wait_for(state="attached", timeout=60_000)
    return [frames.nth(i).locator("video") for i in range(count)]


def _states(videos) -> list[dict]:
    return [v.evaluate("v => ({paused: v.paused, time: v.currentTime})") for v in videos]


def test_a_group_plays_side_by_side_in_sync(dashboard, page, tmp_path):
    _submit_group(tmp_path)
    page.goto(f"{dashboard}/Compare?group=g-browser")
    # No clicks: the page refreshes itself until the three archived videos are embedded.
    videos = _players(page)
    assert page.locator("iframe[title^='Output of #']").count() == 3
    videos[0].evaluate("v => new Promise(r => v.readyState >= 2 ? r() : v.addEventListener('loadeddata', r))")
    page.wait_for_timeout(1000)  # the bar's script finds the players (it looks every half second)

    boxes = [v.bounding_box() for v in videos]
    assert len({round(b["width"]) for b in boxes}) == 1 and len({round(b["height"]) for b in boxes}) == 1
    assert len({round(b["y"]) for b in boxes}) == 1 and boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    assert abs(boxes[0]["width"] / boxes[0]["height"] - 16 / 9) < 0.02

    # Press play on the middle player: a click on a paused <video controls> plays it, as a user does.
    middle = boxes[1]
    page.mouse.click(middle["x"] + middle["width"] / 2, middle["y"] + middle["height"] / 3)
    page.wait_for_timeout(1200)
    state = _states(videos)
    assert [s["paused"] for s in state] == [False, False, False], state
    assert all(s["time"] > 0.3 for s in state), state
    assert max(s["time"] for s in state) - min(s["time"] for s in state) < 0.4, state
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare_playing.png"), full_page=True)

    videos[2].evaluate("v => v.pause()")
    page.wait_for_timeout(300)
    assert [s["paused"] for s in _states(videos)] == [True, True, True]
    videos[0].evaluate("v => { v.currentTime = 1.5; }")
    page.wait_for_timeout(500)
    times = [s["time"] for s in _states(videos)]
    assert all(abs(t - 1.5) < 0.05 for t in times), times
