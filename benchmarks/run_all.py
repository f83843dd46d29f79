"""Run every benchmark, one after the other, and print their tables.

    python benchmarks/run_all.py [--quick] [--only history,export]

Each benchmark is its own process (so one's memory or threads never colour
another's figures) and cleans up its temporary files and processes. The whole
run takes about 15 minutes on 2 cores; --quick about 5.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script, extra arguments for --quick)
BENCHMARKS = {
    "simulator": ("bench_simulator.py", ["--quick"]),
    "polling": ("bench_polling.py", ["--quick"]),
    "freshness": ("bench_freshness.py", ["--tasks", "8"]),
    "export": ("bench_export.py", []),
    "memory": ("bench_memory.py", ["--reruns", "3"]),
    "history": ("bench_history.py", ["--runs", "7"]),
    "models": ("bench_models.py", ["--runs", "3", "--reloads", "3"]),
    "spend": ("bench_spend.py", ["--runs", "3", "--reruns", "3"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, sessions and tasks")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failed = []
    for name in chosen:
        script, quick = BENCHMARKS[name]
        print(f"\n# {name} ({script})", flush=True)
        start = time.monotonic()
        done = subprocess.run([sys.executable, str(HERE / script), *(quick if args.quick else [])], cwd=HERE.parent)
        print(f"({name} took {time.monotonic() - start:.0f} s)", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nFailed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
