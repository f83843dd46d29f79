"""History's gallery in a real Chromium: archived videos show their posters, and nothing of a
video is fetched until it is played (counted from the browser's network events); a click plays
one; ticking "Pick for Compare" on two cells and following "Compare 2 →" opens Compare with them."""
import os
import stat
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest

from lib import archive
from lib.backend import Backend
from lib.simulator import ensure_simulator
from lib.store import Store
from lib.tasks import submit_task

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PROMPTS = ("A lighthouse at dawn", "A drone over the sea", "A red kite in the wind")


def _submit(tmp_path) -> list[int]:
    url, key = ensure_simulator(tmp_path / "simulator")
    backend = Backend(name="simulator", base_url=url, api_key=key)
    store = Store(tmp_path / "dashboard.db")
    try:
        results = [submit_task(store, backend, task_type="text_to_video", model_id="gen4.5", teammate="Ana",
                               inputs={"promptText": p, "ratio": "1280:720", "duration": 2}) for p in PROMPTS]
    finally:
        store.close()
    assert all(r.ok for r in results), results
    return [r.task_id for r in results]


def _archive(tmp_path, body: bytes) -> archive.ArchivedFile:
    """One download through the archive from a server that answers with `body` (the network's edge)."""
    http = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"content-type": "video/mp4"})))
    return archive.download("http://127.0.0.1:9/out.mp4", http, backend_url="http://127.0.0.1:9",
                            static_dir=tmp_path)


def test_an_archived_video_gets_an_owner_only_poster(tmp_path):
    from lib.simulator import render

    video = render.render_video(tmp_path / "made.mp4", 1280, 720, 2, label="poster")
    saved = _archive(tmp_path / "static", video.read_bytes())
    poster = tmp_path / "static" / Path(archive.poster_path(saved.path)).name
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert stat.S_IMODE(os.stat(poster).st_mode) == 0o600
    assert archive.poster_url(saved.path, tmp_path / "static") == f"/app/static/{poster.name}"


@pytest.mark.parametrize("fault", ["undecodable", "no ffmpeg"])
def test_a_poster_failure_never_fails_the_archive(tmp_path, monkeypatch, fault):
    from tests.support import media_samples

    body = media_samples.mp4()
    if fault == "undecodable":
        body = body[:64] + b"\0" * 4096  # sniffs as an MP4; no frame in it
    else:
        def missing():
            raise RuntimeError("no ffmpeg here")
        monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    saved = _archive(tmp_path / "static", body)
    assert (tmp_path / "static" / Path(saved.path).name).read_bytes() == body
    assert archive.poster_url(saved.path, tmp_path / "static") is None
    assert [f.name for f in (tmp_path / "static").iterdir()] == [Path(saved.path).name]  # no partial poster left


def _remove_posters(tmp_path) -> None:
    store = Store(tmp_path / "dashboard.db")
    try:
        paths = [row[0] for row in store.conn.execute("SELECT path FROM outputs WHERE path IS NOT NULL")]
    finally:
        store.close()
    for path in paths:
        (archive.STATIC_DIR / Path(archive.poster_path(path)).name).unlink(missing_ok=True)


def test_gallery_posters_play_on_click_and_pick_for_compare(dashboard, page, tmp_path):
    ids = _submit(tmp_path)
    page.goto(f"{dashboard}/History?view=Gallery")
    try:
        # No clicks: the page redraws itself until all three videos are archived, with posters.
        page.wait_for_function("document.querySelectorAll('video[poster]').length === 3", timeout=60_000)
        page.reload()  # count from a fresh load: what a teammate opening History transfers
        fetched: list[tuple[str, int]] = []
        page.on("requestfinished", lambda r: fetched.append((r.url, r.sizes()["responseBodySize"])))
        videos = page.locator("video[poster]")
        videos.nth(2).wait_for(timeout=30_000)
        page.wait_for_load_state("networkidle")
        posters = videos.evaluate_all("vs => vs.map(v => v.getAttribute('poster'))")
        assert all(p.startswith("/app/static/") and p.endswith(archive.POSTER_SUFFIX) for p in posters), posters
        loaded = page.evaluate("""ps => Promise.all(ps.map(p => new Promise(r => {
            const i = new Image(); i.onload = () => r(i.naturalWidth); i.onerror = () => r(0); i.src = p; })))""",
                               posters)
        assert all(width > 0 for width in loaded), loaded  # each poster is an image the browser draws
        assert not [u for u, _ in fetched if u.endswith(".mp4")], fetched  # no video fetched before play
        assert sum(size for _, size in fetched) < 3_000_000
        assert videos.evaluate_all("vs => vs.map(v => v.preload)") == ["none"] * 3
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "history_gallery.png"), full_page=True)

        # A click on a cell's player plays it, as a user does.
        box = videos.first.bounding_box()
        page.mouse.click(box["x"] + 22, box["y"] + box["height"] * 0.42)  # the ▶ of the player's controls
        page.wait_for_function("(() => { const v = document.querySelector('video[poster]');"
                               " return v.played.length > 0 && v.currentTime > 0.3; })()", timeout=20_000)
        page.wait_for_function("document.querySelector('video[poster]').readyState >= 2", timeout=20_000)

        # Newest first: the cells are the last task, then the one before.
        for cell in (0, 1):
            page.get_by_text("Pick for Compare").nth(cell).click()
            page.get_by_text(f"Picked for comparison: #{ids[2]}").wait_for(timeout=10_000)
        # Followed in this tab and this session (tests/test_links_stay.py follows every such link).
        page.get_by_role("link", name="Compare 2 →").click()
        page.wait_for_url(f"**/Compare?tasks={ids[2]}%2C{ids[1]}**", timeout=20_000)
        assert len(page.context.pages) == 1
        frames = page.frame_locator("iframe[title^='Output of #']")  # one a column
        frames.nth(1).locator("video").wait_for(state="attached", timeout=20_000)
        assert [frames.nth(i).locator("figcaption").inner_text() for i in (0, 1)] == [f"#{ids[1]} · gen4.5",
                                                                                      f"#{ids[2]} · gen4.5"]
    finally:
        _remove_posters(tmp_path)


def test_filters_fold_clear_and_the_pager_repeats_below(app_env):
    """AppTest: filters are folded until one is on (then the fold says how many); "Clear filters"
    empties them all; a second pager below the tasks turns the page too; the gallery shows a cell
    with a "Pick for Compare" box per task."""
    from lib.ui import HISTORY_PAGE
    from tests.support.apptest import open_page
    from tests.support.history import insert_tasks, task_row

    store = Store(app_env / "dashboard.db")
    insert_tasks(store, [task_row(prompt=f"shot {i} of a {'kite' if i % 2 else 'fox'}") for i in range(30)])
    store.close()
    at = open_page(HISTORY_PAGE)
    assert not at.exception
    [fold] = at.expander
    assert fold.label == "Filters" and not fold.proto.expanded
    assert [p.proto.num_pages for p in at.get("pagination")] == [2, 2]  # above and below the tasks

    at = open_page(HISTORY_PAGE, q="kite of", status="SUCCEEDED")
    assert at.expander[0].label == "Filters (2 on)" and at.expander[0].proto.expanded
    assert any("15 task(s) match the filters" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Clear filters").click().run()
    assert at.text_input(key="q").value == "" and at.multiselect(key="status").value == []
    assert any(c.value.startswith("30 task(s)") for c in at.caption)

    at.segmented_control(key="view").set_value("Gallery").run()
    boxes = [c for c in at.checkbox if c.label == "Pick for Compare"]
    assert len(boxes) == 25
    boxes[0].check().run()
    assert any("Picked for comparison: #30" in c.value for c in at.caption)
