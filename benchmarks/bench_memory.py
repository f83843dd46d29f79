"""Server memory: the resident memory (VmRSS, and its peak VmHWM) of a real
`streamlit run app.py` while History shows 50 archived 5 MB videos, across
several reruns in two browser sessions.

The 50 videos are real 5 MB H.264 MP4s (10 s, 1280x720) under `static/` with
random names, recorded in the database as 50 succeeded tasks, the way the
archive leaves them; the benchmark deletes them at the end. Two Chromium
sessions page through History back and forth, so every video is embedded
and fetched by the browser.

    python benchmarks/bench_memory.py [--reruns 6]

Target (issue 6): under 150 MB RSS; outputs are embedded by /app/static URL,
not read into the server's memory.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
from common import Dashboard, chromium, machine, open_history, print_table, temp_dir, verdict

# common, imported first, puts the checkout on sys.path for these
from tests.support.history import archived_videos

VIDEOS = 50
VIDEO_BYTES = 5 * 2 ** 20


def make_video(path: Path) -> Path:
    """A real, playable 10 s 1280x720 H.264 MP4 of about 5 MB."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=24", "-t", "10", "-c:v", "libx264",
                    "-preset", "ultrafast", "-b:v", "4000k", "-maxrate", "4000k", "-bufsize", "8000k",
                    "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)], check=True)
    return path


def _videos_loaded(page) -> int:
    """Wait until the page's videos have their metadata (the browser fetched them); returns how many."""
    # History's players fetch nothing until asked (preload="none"): ask each one for its metadata as
    # it appears, as pressing play would, so the server serves every file as when players loaded themselves.
    page.wait_for_function("""() => { const v = [...document.querySelectorAll('video')];
        v.filter(x => x.preload === 'none').forEach(x => { x.preload = 'metadata'; x.load(); });
        return v.length > 0 && v.every(x => x.readyState >= 1); }""", timeout=60_000)
    return page.locator("video").count()


def _go_to_page(page, number: int) -> None:
    """Turn History to page `number` with its own pager (a rerun of the session), and wait
    until the other page's videos are on screen."""
    before = page.evaluate(SOURCES)
    page.get_by_role("button", name=f"Page {number}", exact=True).first.click()
    page.wait_for_function(f"() => ({SOURCES})() !== {json.dumps(before)}", timeout=30_000)


SOURCES = "() => [...document.querySelectorAll('video')].map(v => v.getAttribute('src')).join(' ')"


def measure(tmp: Path, reruns: int) -> list[list]:
    source = make_video(tmp / "source.mp4")
    size_mb = source.stat().st_size / 2 ** 20
    db_path = tmp / "dashboard.db"
    rows = []
    with (archived_videos(db_path, source, VIDEOS, "Memory benchmark video"), Dashboard(tmp) as app,
          chromium() as browser):
        time.sleep(2)
        rss, _ = app.rss_mb()
        rows.append(["server started, no session", "-", f"{rss:.0f} MB", "-"])
        a = open_history(browser, app.url)
        per_page = seen = _videos_loaded(a)
        rss, peak = app.rss_mb()
        rows.append(["session A on page 1", seen, f"{rss:.0f} MB", f"{peak:.0f} MB"])
        b = open_history(browser, app.url)
        _go_to_page(b, 2)
        seen += _videos_loaded(b)
        rss, peak = app.rss_mb()
        rows.append(["session B on page 2", seen, f"{rss:.0f} MB", f"{peak:.0f} MB"])
        pages = max(1, -(-VIDEOS // per_page))
        for i in range(reruns):
            for session, offset in ((a, 1), (b, 0)):
                _go_to_page(session, 1 + (i + offset) % pages)
                seen += _videos_loaded(session)
            rss, peak = app.rss_mb()
            rows.append([f"rerun {i + 1} in both sessions", seen, f"{rss:.0f} MB", f"{peak:.0f} MB"])
    return rows, size_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=6)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with temp_dir("memory") as tmp:
        rows, size_mb = measure(tmp, args.reruns)
    print_table(f"Server memory with History showing {VIDEOS} archived {size_mb:.1f} MB videos",
                ["moment", "videos embedded so far (both sessions)", "VmRSS", "VmHWM (peak)"], rows)
    peak = max(float(r[3].split()[0]) for r in rows if r[3] != "-")
    print(f"Target: under 150 MB RSS: {verdict(peak < 150)} (peak {peak:.0f} MB)")


if __name__ == "__main__":
    sys.exit(main())
