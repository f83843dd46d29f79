"""Simulator speed: how long the encoder takes to make a 10 s 1280:720 video,
how many tasks a minute the simulator sustains, and whether a demo of a dozen
tasks ever waits on the encoder.

    python benchmarks/bench_simulator.py [--quick]

Targets (issue 6): a demo with a dozen tasks never waits on the encoder, i.e.
every task's output is rendered before its simulated run time is over.
"""
from __future__ import annotations

import argparse
import io
import sqlite3
import sys
import time
from pathlib import Path

from common import machine, median, print_table, temp_dir, verdict

# common, imported first, puts the checkout on sys.path for these
from lib import media, settings
from lib.client import RunwayClient
from lib.simulator import SimulatorConfig, SimulatorServer, render

LABEL = "A paper boat drifting down a rainy street, slow push in"


def _still_png() -> bytes:
    from PIL import Image
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((1280, 720)).save(buffer, format="PNG")
    return buffer.getvalue()


def encoder_times(tmp: Path, repeats: int) -> list[list]:
    """One 10 s 1280:720 video per input kind, at the default size and at full size."""
    png = _still_png()
    source = render.render_video(tmp / "source.mp4", 1280, 720, 10, label="source", max_side=480).read_bytes()
    kinds = {
        "text to video (gradient)": {},
        "image to video (zoom)": {"image": png},
        "video to video (recolour)": {"video": source},
    }
    rows = []
    for max_side in (settings.simulator_max_side(), 1280):
        for name, inputs in kinds.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                out = render.render_video(tmp / "out.mp4", 1280, 720, 10, label=LABEL, max_side=max_side, **inputs)
                times.append(time.perf_counter() - start)
            info = render.probe(out)
            rows.append([name, f"{info['width']}x{info['height']}", f"{median(times):.2f} s",
                         f"{out.stat().st_size / media.MB:.2f} MB"])
    return rows


def _sim(tmp: Path, **config) -> SimulatorServer:
    return SimulatorServer(SimulatorConfig(state_dir=tmp, credits=10 ** 9, daily_limit=10 ** 6, **config)).start()


def _timeline(state_dir: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(state_dir / "simulator.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT model, created_at, admitted_at, rendered_at, status FROM tasks").fetchall()
    finally:
        conn.close()


def _wait_all_finished(client: RunwayClient, ids: list[str], timeout: float) -> None:
    deadline = time.time() + timeout
    pending = set(ids)
    while pending and time.time() < deadline:
        pending = {i for i in pending if client.get_task(i).status not in ("SUCCEEDED", "FAILED", "CANCELLED")}
        time.sleep(0.25)
    if pending:
        raise RuntimeError(f"{len(pending)} tasks did not finish within {timeout:.0f} s")


def throughput(tmp: Path, n: int) -> list:
    """Tasks a minute when the encoder is the only limit: no queue, no run time, no concurrency cap."""
    server = _sim(tmp, pending_seconds=0, run_seconds=0, concurrency=n)
    try:
        with RunwayClient(server.url, server.api_key) as client:
            start = time.time()
            ids = [client.create_task("/v1/text_to_video", {"model": "gen4.5", "promptText": f"{LABEL} {i}",
                                                            "ratio": "1280:720", "duration": 5 + 5 * (i % 2)}).id
                   for i in range(n)]
            _wait_all_finished(client, ids, timeout=300)
            elapsed = time.time() - start
    finally:
        server.stop()
    return [n, "5 s and 10 s text to video, 1280:720", f"{elapsed:.1f} s", f"{n / elapsed * 60:.0f}"]


DEMO = [  # a dozen tasks across six models: with a concurrency of 2 per model, all run at once
    ("/v1/text_to_video", {"model": "gen4.5", "ratio": "1280:720", "duration": 10}),
    ("/v1/text_to_video", {"model": "veo3.1", "ratio": "1280:720", "duration": 8}),
    ("/v1/text_to_video", {"model": "veo3.1_fast", "ratio": "1920:1080", "duration": 8}),
    ("/v1/image_to_video", {"model": "gen4_turbo", "ratio": "1280:720", "duration": 10}),
    ("/v1/text_to_image", {"model": "gen4_image", "ratio": "1920:1080"}),
    ("/v1/sound_effect", {"model": "eleven_text_to_sound_v2", "duration": 10}),
]


def demo(tmp: Path, max_side: int) -> list:
    """A dozen tasks submitted at once with the simulator's default timings: how long did any task
    wait past its simulated run time for its output to be encoded? At the default size, and at full
    size (SIMULATOR_MAX_SIDE=1280) as a harder case."""
    server = _sim(tmp, max_side=max_side)  # default pending and run seconds and concurrency
    config = server.config
    still = media.encode_data_uri("image/png", _still_png())
    try:
        with RunwayClient(server.url, server.api_key) as client:
            ids = []
            for i in range(12):
                endpoint, body = DEMO[i % len(DEMO)]
                body = {**body, "promptText": f"{LABEL} {i}"}
                if endpoint == "/v1/image_to_video":
                    body["promptImage"] = still
                ids.append(client.create_task(endpoint, body).id)
            _wait_all_finished(client, ids, timeout=180)
    finally:
        server.stop()
    rows = _timeline(tmp)
    waits = [max(0.0, r["rendered_at"] - (r["admitted_at"] + config.pending_seconds + config.run_seconds))
             for r in rows]
    renders = [r["rendered_at"] - r["created_at"] for r in rows]
    return [len(rows), f"{config.pending_seconds:g} s + {config.run_seconds:g} s", max_side,
            f"{max(renders):.1f} s", f"{max(waits):.2f} s", verdict(max(waits) == 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and tasks")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with temp_dir("simulator") as tmp:
        print_table("Encoder: one 10 s 1280:720 video (median of runs)",
                    ["input", "output size", "time", "file"], encoder_times(tmp, 1 if args.quick else 3))
        n = 12 if args.quick else 24
        print_table("Simulator throughput (encoder-bound: zero queue and run time)",
                    ["tasks", "mix", "all succeeded after", "tasks / min"], [throughput(tmp / "throughput", n)])
        print_table("A demo of a dozen tasks at the simulator's default timings (all admitted at once)",
                    ["tasks", "queue + run", "max side", "slowest render", "longest wait on encoder", "target: 0"],
                    [demo(tmp / f"demo-{side}", side) for side in (settings.simulator_max_side(), 1280)])


if __name__ == "__main__":
    sys.exit(main())
