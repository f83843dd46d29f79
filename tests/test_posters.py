"""Posters for videos archived before posters existed (issue 12, item 6): made when background work
starts, a few at a time on a thread of their own, never twice at once by two pollers over one
database, and a video ffmpeg cannot read fails nothing; a teammate then sees the poster on History."""
from __future__ import annotations

import os
import secrets
import stat
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest

from lib import archive
from lib.poller import Poller
from lib.store import Store
from tests.support import media_samples
from tests.support.history import insert_output, insert_task
from tests.support.launch import start_app, stop
from tests.support.simulator_env import base_env
from tests.support.waiting import wait_until


def _plant(store: Store, static: Path, body: bytes, prompt: str = "an old clip") -> str:
    """An archived video as an older dashboard left it: the file, its row, no poster."""
    static.mkdir(mode=0o700, exist_ok=True)
    name = f"{secrets.token_urlsafe(18)}.mp4"
    (static / name).write_bytes(body)
    insert_output(store, insert_task(store, prompt=prompt), path=f"static/{name}", size=len(body))
    return f"static/{name}"


def _poster(static: Path, path: str) -> Path:
    return static / Path(archive.poster_path(path)).name


def test_archived_videos_without_a_poster_get_one_and_nothing_else_changes(store, tmp_path):
    static = tmp_path / "static"
    clip = media_samples.mp4()
    old = [_plant(store, static, clip) for _ in range(5)]
    broken = _plant(store, static, clip[:64] + b"\0" * 4096)  # sniffs as an MP4, holds no frame
    gone = _plant(store, static, clip)
    (static / Path(gone).name).unlink()  # its file was lost: nothing to make a poster from
    has_one = _plant(store, static, clip)
    _poster(static, has_one).write_bytes(b"\xff\xd8\xffkept")
    image = insert_task(store, task_type="text_to_image", model="gen4_image")
    (static / "still.png").write_bytes(b"\x89PNG")
    insert_output(store, image, path="static/still.png", mime="image/png")
    before = store.change_version()

    poller = Poller(store.path, [], static_dir=static)
    try:
        assert poller.backfill_posters(pause=0) == 5
        for path in old:
            poster = _poster(static, path)
            assert poster.read_bytes()[:3] == b"\xff\xd8\xff" and stat.S_IMODE(os.stat(poster).st_mode) == 0o600
        assert not _poster(static, broken).exists() and not _poster(static, gone).exists()
        assert _poster(static, has_one).read_bytes() == b"\xff\xd8\xffkept"  # never made twice
        assert not [f for f in static.iterdir() if f.name.endswith(".part")]
        assert poller.backfill_posters(pause=0) == 0  # nothing left to do
    finally:
        poller.stop()
    # The holds are let go and no row was changed: pages have nothing to redraw, downloads nothing to take.
    assert store.conn.execute("SELECT COUNT(*) FROM outputs WHERE lease IS NOT NULL").fetchone()[0] == 0
    assert store.change_version() == before


def test_two_pollers_never_make_one_poster_twice(store, tmp_path, monkeypatch):
    static = tmp_path / "static"
    paths = [_plant(store, static, media_samples.mp4(1)) for _ in range(6)]
    made, real = Counter(), archive._render_poster

    def slow_render_poster(video: Path, out_dir: Path, name: str):
        made[name] += 1
        time.sleep(0.2)  # long enough that both pollers are at work at once
        return real(video, out_dir, name)

    monkeypatch.setattr(archive, "_render_poster", slow_render_poster)
    pollers = [Poller(store.path, [], static_dir=static) for _ in range(2)]
    counts: list[int] = []
    threads = [threading.Thread(target=lambda p=p: counts.append(p.backfill_posters(pause=0))) for p in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for poller in pollers:
        poller.stop()
    assert sorted(made) == sorted(Path(p).name for p in paths) and set(made.values()) == {1}, made
    assert sum(counts) == 6 and all(_poster(static, p).is_file() for p in paths)


def test_the_backfill_never_holds_up_the_start_and_survives_no_ffmpeg(store, tmp_path, monkeypatch):
    static = tmp_path / "static"
    paths = [_plant(store, static, media_samples.mp4(1)) for _ in range(3)]
    started, release = threading.Event(), threading.Event()
    real = imageio_ffmpeg.get_ffmpeg_exe

    def missing_ffmpeg():
        started.set()
        release.wait(30)
        raise RuntimeError("no ffmpeg here")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing_ffmpeg)
    poller = Poller(store.path, [], static_dir=static).start()  # returns while the first poster is on its way
    try:
        assert started.wait(30)
        release.set()
        backfill = next(t for t in poller._threads if t.name == "poster-backfill")
        backfill.join(30)
        assert not backfill.is_alive() and all(t.is_alive() for t in poller._threads if t is not backfill)
        assert not any(_poster(static, p).exists() for p in paths)
    finally:
        poller.stop()
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", real)
    assert store.conn.execute("SELECT COUNT(*) FROM outputs WHERE lease IS NOT NULL").fetchone()[0] == 0


@pytest.mark.browser
def test_a_planted_video_without_a_poster_shows_one_on_history_after_the_server_starts(tmp_path, page):
    db = tmp_path / "dashboard.db"
    store = Store(db)
    path = _plant(store, archive.STATIC_DIR, media_samples.mp4(), prompt="A lighthouse archived long ago")
    poster = _poster(archive.STATIC_DIR, path)
    store.close()
    proc = None
    try:
        proc, url = start_app(base_env(DASHBOARD_DB=str(db), SIMULATOR_STATE_DIR=str(tmp_path / "simulator")),
                              tmp_path / "streamlit.log")
        wait_until(poster.is_file, 60, "the server to make the missing poster")
        answer = httpx.get(f"{url}{archive.poster_url(path)}")
        assert answer.status_code == 200 and answer.content[:3] == b"\xff\xd8\xff"
        page.goto(f"{url}/History?view=Gallery")
        video = page.locator("video[poster]")
        video.wait_for(timeout=30_000)
        assert video.get_attribute("poster") == archive.poster_url(path)
        assert page.evaluate("""p => new Promise(r => { const i = new Image(); i.onload = () => r(i.naturalWidth);
                                i.onerror = () => r(0); i.src = p; })""", archive.poster_url(path)) > 0
    finally:
        if proc is not None:
            stop(proc)
        archive.delete_archived(path)


def test_a_start_looks_only_past_the_videos_already_seen_and_again_at_what_failed(store, tmp_path):
    """The backfill's mark (`posters_checked_through`): a start looks at the videos archived since the
    last one that had them all (a million tasks: 530,000 videos not looked at again on each start);
    a video whose poster could not be made keeps the mark before it, so it is tried at every start."""
    static = tmp_path / "static"
    clip = media_samples.mp4()
    seen = [_plant(store, static, clip) for _ in range(3)]
    poller = Poller(store.path, [], static_dir=static)
    try:
        assert poller.backfill_posters(pause=0) == 3
        assert store.posters_checked_through() == store.conn.execute("SELECT MAX(id) FROM outputs").fetchone()[0]
        _poster(static, seen[0]).unlink()  # not looked at again: it was seen with its poster
        broken = _plant(store, static, clip[:64] + b"\0" * 4096)
        mark = store.posters_checked_through()
        assert poller.backfill_posters(pause=0) == 0 and store.posters_checked_through() == mark
        assert not _poster(static, seen[0]).exists()
        (static / Path(broken).name).write_bytes(clip)  # the file made whole: the next start makes its poster
        newer = _plant(store, static, clip)
        assert poller.backfill_posters(pause=0) == 2
        assert _poster(static, broken).is_file() and _poster(static, newer).is_file()
        assert store.posters_checked_through() == store.conn.execute("SELECT MAX(id) FROM outputs").fetchone()[0]
    finally:
        poller.stop()
