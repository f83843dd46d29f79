"""History render: the server-side time of one run of pages/10_History.py
(one page of tasks, with filters and a sort) over a history of 1,000, 10,000
and 100,000 tasks.

The histories are written straight into SQLite (see `tests/support/history.make_history`):
two years of tasks from six teammates over eight models, 85 % succeeded with
an archived output, the rest failed or cancelled, ten still running. Each
figure is the wall time of `AppTest.run()` (the whole script: set-up, every
query, every element), repeated, after two warm-up runs.

    python benchmarks/bench_history.py [--sizes 1000,10000,100000] [--runs 15]

Target (issue 6): under 300 ms at 100,000 tasks, nearly flat from 1,000.
"""
from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import time

from common import machine, median, percentile, print_table, rerun_times, temp_dir, verdict

# common, imported first, puts the checkout on sys.path for these
from tests.support.apptest import open_page, quiet_streamlit_logs, use_database, use_simulator
from tests.support.history import make_history

HISTORY_PAGE = "pages/10_History.py"
TITLE = re.compile(r"(\*\*)?\[?#\d+ · ")  # a task heading: `[#12 · Text to video · gen4.5](...)`

# name -> widget values set by key before the timed runs (None: the page as it opens).
SCENARIOS = {
    "as opened (newest first)": {},
    "status SUCCEEDED + model gen4.5, newest": {"status": ["SUCCEEDED"], "model": ["gen4.5"], "sort": "newest"},
    "status FAILED, highest cost": {"status": ["FAILED"], "sort": "cost"},
    "teammate Chen + type text to image, oldest": {"by": ["Chen"], "type": ["text_to_image"], "sort": "oldest"},
    "prompt contains 'lighthouse' (1 task in 4), newest": {"q": "lighthouse", "sort": "newest"},
    "prompt contains 'neon city' (1 in 120), newest": {"q": "neon city", "sort": "newest"},
    "best rated, all tasks": {"sort": "rating"},
    "status SUCCEEDED, newest, last page": {"status": ["SUCCEEDED"], "sort": "newest", "page": "last"},
}


def _set(at, key: str, value) -> bool:
    """Set a widget by key, whatever its kind; False if the page has no such widget."""
    for kind in ("multiselect", "selectbox", "text_input"):
        try:
            widget = getattr(at, kind)(key=key)
        except KeyError:
            continue
        if kind == "selectbox":
            # AppTest matches a selectbox's value by its label; the sort's label comes from lib.store.queries.
            from lib.store import queries
            widget.select_index(widget.options.index(queries.SORTS[value][0]))
        else:
            widget.set_value(value)
        return True
    return False


def _cards(at) -> int:
    """Tasks on the page, counted by their headings: a link to the task (markdown where AppTest
    runs the page as its own entry point), or an older bold title."""
    return sum(1 for m in at.markdown if TITLE.match(m.value))


def _last_page(at, db_path, status: str):
    """The same view opened at its last page, as a shared link to it would open
    (`?status=...&page=N`: History keeps its filters and page in the address)."""
    per_page = _cards(at)
    if not per_page:
        return None
    conn = sqlite3.connect(db_path)
    matching = conn.execute("SELECT COUNT(*) FROM tasks WHERE status = ?", (status,)).fetchone()[0]
    conn.close()
    last = open_page(HISTORY_PAGE, timeout=120, status=status, sort="newest", page=str(-(-matching // per_page)))
    expected = matching - (-(-matching // per_page) - 1) * per_page
    return last if _cards(last) == expected else None


def time_scenarios(db_path, runs: int) -> dict[str, tuple[float, float, int] | str]:
    use_database(db_path)
    results: dict[str, tuple[float, float, int] | str] = {}
    for name, values in SCENARIOS.items():
        at = open_page(HISTORY_PAGE, timeout=120)
        missing = [k for k, v in values.items() if k != "page" and not _set(at, k, v)]
        if missing:
            results[name] = f"n/a (no widget {', '.join(missing)})"
            continue
        at.run()
        if values.get("page") == "last":
            at = _last_page(at, db_path, values["status"][0])
            if at is None:
                results[name] = "n/a (the page address does not open the last page)"
                continue
        at.run()
        if at.exception:
            results[name] = f"error: {at.exception[0].message[:60]}"
            continue
        times = rerun_times(at, runs)
        results[name] = (median(times), percentile(times, 95), _cards(at))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    quiet_streamlit_logs()
    print(f"Machine: {machine()}")
    with temp_dir("history") as tmp:
        use_simulator(tmp / "simulator")
        by_size = {}
        for n in sizes:
            start = time.perf_counter()
            db = make_history(tmp / f"history-{n}.db", n, unfinished=10)
            print(f"generated {n:,} tasks in {time.perf_counter() - start:.1f} s", flush=True)
            by_size[n] = time_scenarios(db, args.runs)
    rows = []
    for name in SCENARIOS:
        row = [name]
        for n in sizes:
            r = by_size[n][name]
            row.append(r if isinstance(r, str) else f"{r[0] * 1000:.0f} / {r[1] * 1000:.0f} ms ({r[2]})")
        rows.append(row)
    print_table(f"History render, median / p95 of {args.runs} runs (tasks on the page)", ["scenario"] + [
        f"{n:,} tasks" for n in sizes], rows)
    largest = [r for r in by_size[sizes[-1]].values() if not isinstance(r, str)]
    if largest:
        worst = max(p95 for _, p95, _ in largest)
        print(f"Target: every scenario under 300 ms at {sizes[-1]:,} tasks (p95): {verdict(worst < 0.3)} "
              f"(worst p95 {worst * 1000:.0f} ms)")


if __name__ == "__main__":
    sys.exit(main())
