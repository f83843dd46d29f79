"""Page weight: the bytes a browser transfers to show a History page of 25 archived videos
before anything is played, counted from Chromium's own network events (HTTP responses, their
headers included, and the page's websocket frames).

The 25 videos are real H.264 MP4s of at least 10 MB each (10 s, 1280x720) under `static/` with
random names, each with the poster the archive makes (`archive.make_poster`), recorded as 25
succeeded tasks the way the archive leaves them; the benchmark deletes them at the end.

- **before**: the same 25 videos drawn with `st.video`, as History drew them until issue 12,
  on a one-file Streamlit page of its own (its own static folder holds links to the same files);
- **after**: the real History page, list and gallery, on a real `streamlit run app.py`.

    python benchmarks/bench_page_weight.py [--settle 5]

Target (issue 12): under 3 MB before anything is played, whatever the videos' size.
"""
from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import imageio_ffmpeg
from common import Dashboard, chromium, machine, print_table, temp_dir, verdict

# common, imported first, puts the checkout on sys.path for these
from tests.support.history import archived_videos
from tests.support.launch import start_app, stop

VIDEOS = 25
MIN_BYTES = 10 * 10 ** 6
LOAD_LIMIT = 90.0


def make_video(path: Path) -> Path:
    """A real, playable 10 s 1280x720 H.264 MP4 of at least 10 MB."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=24", "-t", "10", "-c:v", "libx264",
                    "-preset", "ultrafast", "-b:v", "9000k", "-minrate", "9000k", "-maxrate", "9000k",
                    "-bufsize", "9000k", "-x264-params", "nal-hrd=cbr", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(path)], check=True)
    if path.stat().st_size < MIN_BYTES:
        raise SystemExit(f"the sample video came out at {path.stat().st_size:,} bytes, under 10 MB")
    return path


BEFORE_PAGE = '''import streamlit as st

st.set_page_config(layout="wide")
for url in {urls!r}:
    with st.container(border=True):
        media, info = st.columns([2, 5])
        media.video(url)
        info.markdown("a task")
'''


class BeforePage:
    """The 25 videos as History drew them before issue 12: `st.video` in a card, one per task."""

    def __init__(self, tmp: Path, videos: list[Path]):
        self.dir = tmp / "before"
        (self.dir / "static").mkdir(parents=True)
        (self.dir / ".streamlit").mkdir()
        (self.dir / ".streamlit" / "config.toml").write_text(
            '[server]\nenableStaticServing = true\nheadless = true\naddress = "127.0.0.1"\n'
            '[browser]\ngatherUsageStats = false\n')
        for video in videos:
            os.link(video, self.dir / "static" / video.name) if _same_device(video, self.dir) else (
                shutil.copyfile(video, self.dir / "static" / video.name))
        (self.dir / "before.py").write_text(BEFORE_PAGE.format(urls=[f"/app/static/{v.name}" for v in videos]))

    def __enter__(self) -> BeforePage:
        self.proc, self.url = start_app(None, self.dir / "streamlit.log", script="before.py", cwd=self.dir)
        return self

    def __exit__(self, *exc) -> None:
        stop(self.proc)


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


@dataclass
class Weight:
    total: int = 0  # every HTTP response (headers included) and websocket frame
    framework: int = 0  # Streamlit's own frontend (its /static/ scripts, styles, fonts): the same for any page
    video: int = 0
    players: int = 0

    @property
    def page(self) -> int:
        """What this page and its media add to the framework."""
        return self.total - self.framework


def page_weight(browser, url: str, settle: float) -> tuple[Weight, Weight]:
    """What a browser transfers for `url` in a fresh profile (nothing cached), then on a reload
    in that profile (the framework cached, as in a teammate's own browser), each counted once
    its 25 players are drawn and no HTTP bytes have come for `settle` seconds (the websocket
    never goes quiet: History's live refresh ticks on it), or after LOAD_LIMIT seconds in all."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    urls: dict[str, str] = {}
    # A finished request's whole transfer, headers included; a request the browser cancelled (a
    # player's range request once it has what it wanted) fires no such event: what it received is
    # counted chunk by chunk (a chunk's wire size can read 0, its data size never does; media is
    # not compressed, so the two agree).
    received: dict[str, int] = {}
    finished: dict[str, int] = {}
    frames = [0]
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.dataReceived", lambda e: received.__setitem__(
        e["requestId"], received.get(e["requestId"], 0) + max(e["encodedDataLength"], e["dataLength"])))
    cdp.on("Network.loadingFinished", lambda e: finished.__setitem__(e["requestId"], e["encodedDataLength"]))

    def frame(e) -> None:
        data = e["response"]["payloadData"]
        frames[0] += len(base64.b64decode(data)) if e["response"]["opcode"] == 2 else len(data.encode())
    cdp.on("Network.webSocketFrameReceived", frame)

    def load(action) -> Weight:
        urls.clear(), received.clear(), finished.clear()
        frames[0] = 0
        action()
        page.wait_for_function(f"document.querySelectorAll('video').length >= {VIDEOS}", timeout=120_000)
        started = quiet_since = time.monotonic()
        last = None
        while time.monotonic() - quiet_since < settle and time.monotonic() - started < LOAD_LIMIT:
            page.wait_for_timeout(250)
            now = (sum(received.values()), sum(finished.values()))
            if now != last:
                quiet_since, last = time.monotonic(), now
        weight = Weight(players=page.locator("video").count(), total=frames[0])
        for rid in set(received) | set(finished):
            size = finished.get(rid, received.get(rid, 0))
            path = urlsplit(urls.get(rid, "")).path
            weight.total += size
            weight.video += size if path.endswith(".mp4") else 0
            weight.framework += size if path.startswith("/static/") else 0
        return weight

    try:
        return load(lambda: page.goto(url, timeout=120_000)), load(lambda: page.reload(timeout=120_000))
    finally:
        context.close()


def _rows(label: str, loads: tuple[Weight, Weight]) -> list[list]:
    mb = lambda n: f"{n / 1e6:.2f} MB"
    return [[f"{label}, {when}", w.players, mb(w.total), mb(w.framework), mb(w.page), mb(w.video)]
            for when, w in zip(("first visit", "reload"), loads)]


def measure(tmp: Path, settle: float) -> tuple[list[list], float]:
    source = make_video(tmp / "source.mp4")
    size_mb = source.stat().st_size / 10 ** 6
    rows = []
    with archived_videos(tmp / "dashboard.db", source, VIDEOS, "Page weight video", posters=True) as files:
        videos = [f for f in files if f.suffix == ".mp4"]
        with chromium() as browser:
            with BeforePage(tmp, videos) as before:
                rows += _rows("before: st.video players", page_weight(browser, before.url, settle))
            with Dashboard(tmp) as app:
                for label, query in (("after: History, list", ""), ("after: History, gallery", "?view=Gallery")):
                    rows += _rows(label, page_weight(browser, f"{app.url}/History{query}", settle))
    return rows, size_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of a quiet network that end a load")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with temp_dir("page-weight") as tmp:
        rows, size_mb = measure(tmp, args.settle)
    print_table(f"Bytes transferred before anything is played: {VIDEOS} archived {size_mb:.1f} MB videos",
                ["page, load", "players", "transferred", "Streamlit's frontend", "the page and its media",
                 "of it video"], rows)
    after = [r for r in rows if r[0].startswith("after")]
    worst = max(float(r[2].split()[0]) for r in after)
    worst_page = max(float(r[4].split()[0]) for r in after)
    print(f"Target: under 3 MB before anything is played: {verdict(worst < 3)} (at most {worst:.2f} MB in all; "
          f"at most {worst_page:.2f} MB beyond Streamlit's own frontend, which a first visit fetches for any page)")


if __name__ == "__main__":
    sys.exit(main())
