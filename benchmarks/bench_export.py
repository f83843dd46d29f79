"""CSV export of 100,000 tasks: time and peak memory.

Each export runs in a fresh Python process, so its peak resident memory
(VmHWM in /proc/self/status; ru_maxrss would carry the parent's peak across
exec on Linux) is its own; the table also gives the process's memory once the
modules are imported, before the export starts.

    python benchmarks/bench_export.py [--tasks 100000]

Target (issue 6): under 3 s and under 200 MB peak (streamed).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, machine, make_history, print_table, temp_dir, verdict

# What each mode measures. "file": the CSV History's Export button builds (lib.export.csv_file over
# lib.history.iter_tasks, written batch by batch to a temporary file). "download": the same, then read
# into bytes, which is what st.download_button does with a file before serving it.
MODES = {
    "file": "CSV file, as History's Export builds it",
    "download": "the same, then handed to st.download_button",
}


def _peak_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def worker(mode: str, db: str) -> None:
    """Runs in the child process: one export, then its figures as JSON on stdout."""
    from lib import export, history
    from lib.store import Store

    store = Store(db)
    before = _peak_mb()
    start = time.perf_counter()
    with export.csv_file(history.iter_tasks(store, history.Filters())) as out:
        size = out.seek(0, 2)
        if mode == "download":
            out.seek(0)
            size = len(out.read())
    elapsed = time.perf_counter() - start
    peak = _peak_mb()
    print(json.dumps({"seconds": elapsed, "peak_mb": peak, "base_mb": before, "bytes": size}))


def run(mode: str, db: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", mode, str(db)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)
    print(f"Machine: {machine()}")
    rows = []
    with temp_dir("export") as tmp:
        db = make_history(tmp / "dashboard.db", args.tasks)
        for mode, label in MODES.items():
            figures = run(mode, db)
            ok = figures["seconds"] < 3 and figures["peak_mb"] < 200
            rows.append([label, f"{args.tasks:,}", f"{figures['bytes'] / 2 ** 20:.1f} MB",
                         f"{figures['seconds']:.2f} s", f"{figures['base_mb']:.0f} MB", f"{figures['peak_mb']:.0f} MB",
                         verdict(ok)])
    print_table("CSV export", ["export", "tasks", "CSV size", "time", "RSS before", "peak RSS",
                               "target < 3 s, < 200 MB"], rows)


if __name__ == "__main__":
    sys.exit(main())
