"""Models page: the server-side time of one run of pages/22_Models.py (the leaderboard of every
task type, its tables and charts) over 100,000 tasks and 20,000 reviews, and the memory a real
`streamlit run` grows by while a Chromium session keeps the page open and changes its filters.

The history is `tests/support/history.make_history`; the reviews are written straight into SQLite: pairs of
tasks of one task type and two models (image to video: gen4_turbo and veo3.1; text to image:
gen4_image and gen4_image_turbo) compared by one of six teammates, who rates both and votes
for one (the vote records the pair), two review rows per comparison. Each time is the wall time
of `AppTest.run()`, repeated, after two warm-up runs.

    python benchmarks/bench_models.py [--tasks 100000] [--reviews 20000] [--runs 9] [--reloads 6]

Target (issue 13): under 500 ms server-side, memory growth under 100 MB while the page is open.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time

from common import Dashboard, chromium, machine, median, percentile, print_table, rerun_times, temp_dir, verdict

# common, imported first, puts the checkout on sys.path for these
from lib.store import Store, placeholders
from tests.support.apptest import open_page, quiet_streamlit_logs, use_database, use_simulator
from tests.support.history import TEAMMATES, insert_reviews, make_history

MODELS_PAGE = "pages/22_Models.py"
COMPARED = ("image_to_video", "text_to_image")
SCENARIOS = {  # name -> the page address's filters
    "as opened (every task type)": {},
    "teammate Chen": {"board_by": "Chen"},
    "task type Image to Video": {"board_type": "Image to Video"},
    "ratio 1280:720": {"board_ratio": "1280:720"},
}


def add_reviews(db_path, n_reviews: int, seed: int = 13) -> int:
    """`n_reviews` review rows, two per compared pair of succeeded tasks. Returns the pairs."""
    rng = random.Random(seed)
    conn = sqlite3.connect(db_path)
    rows = conn.execute(f"SELECT id, task_type, model FROM tasks WHERE status = 'SUCCEEDED' AND task_type IN "
                        f"({placeholders(COMPARED)}) ORDER BY id", COMPARED).fetchall()
    conn.close()
    pairs, used = [], set()
    for a, b in zip(rows, rows[1:]):  # neighbours of one task type and two models, each task in one pair
        if a[1] == b[1] and a[2] != b[2] and a[0] not in used:
            pairs.append((a[0], b[0], a[2]))
            used.add(b[0])
    reviews = []
    for first, second, _ in pairs[:n_reviews // 2]:
        reviewer = rng.choice(TEAMMATES)
        # The first model of each type wins 60 % of the time and is rated higher.
        winner = first if rng.random() < 0.6 else second
        for task_id in (first, second):
            reviews.append({"task_id": task_id, "reviewer": reviewer, "winner": int(task_id == winner),
                            "rating": rng.randint(3, 5) if task_id == winner else rng.randint(1, 4),
                            "compared": json.dumps([first, second]) if task_id == winner else None})
    store = Store(db_path)
    try:
        insert_reviews(store, reviews)
    finally:
        store.close()
    return len(reviews) // 2


def time_scenarios(db_path, runs: int) -> dict[str, tuple[float, float, int] | str]:
    import streamlit as st

    use_database(db_path)
    results: dict[str, tuple[float, float, int] | str] = {}
    for name, query in SCENARIOS.items():
        at = open_page(MODELS_PAGE, timeout=120, **query)
        at.run()
        if at.exception:
            results[name] = f"error: {at.exception[0].message[:60]}"
            continue
        times = rerun_times(at, runs)
        cold = []
        for _ in range(max(3, runs // 3)):
            st.cache_data.clear()  # as after any change to the history: every figure read again
            start = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - start)
        results[name] = (median(times), percentile(times, 95), median(cold), percentile(cold, 95), len(at.dataframe))
    return results


def memory(tmp, db_path, reloads: int) -> list[list]:
    """RSS of a real server before any session, with the page open, and after each reload with
    the next filter."""
    os.replace(db_path, tmp / "dashboard.db")
    rows = []
    with Dashboard(tmp) as app, chromium() as browser:
        time.sleep(2)
        base, _ = app.rss_mb()
        rows.append(["server started, no session", f"{base:.0f} MB", "-", "-"])
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.goto(app.url)  # Home first: the session and the sidebar, before the Models page
        page.get_by_role("textbox", name="Your name").wait_for(timeout=60_000)
        rss, peak = app.rss_mb()
        rows.append(["Home open in one session", f"{rss:.0f} MB", f"{peak:.0f} MB", f"{rss - base:+.0f} MB"])
        queries = ["", *("?" + "&".join(f"{k}={v}" for k, v in q.items()) for q in SCENARIOS.values() if q)]
        for i in range(reloads + 1):
            page.goto(f"{app.url}/Models{queries[i % len(queries)]}")
            page.get_by_test_id("stDataFrame").first.wait_for(timeout=120_000)
            page.wait_for_timeout(500)
            rss, peak = app.rss_mb()
            rows.append(["page opened" if i == 0 else f"reload {i} ({queries[i % len(queries)] or 'no filter'})",
                         f"{rss:.0f} MB", f"{peak:.0f} MB", f"{rss - base:+.0f} MB"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--reloads", type=int, default=6)
    args = parser.parse_args()
    quiet_streamlit_logs()
    print(f"Machine: {machine()}")
    with temp_dir("models") as tmp:
        use_simulator(tmp / "simulator")
        start = time.perf_counter()
        db = make_history(tmp / "history.db", args.tasks)
        pairs = add_reviews(db, args.reviews)
        print(f"generated {args.tasks:,} tasks and {2 * pairs:,} reviews ({pairs:,} compared pairs) "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
        results = time_scenarios(db, args.runs)
        rows = [[name, *(f"{v * 1000:.0f} ms" for v in r[:4]), r[4]] if isinstance(r, tuple)
                else [name, r, "", "", "", ""] for name, r in results.items()]
        print_table(f"Models page, one AppTest run: {args.tasks:,} tasks, {2 * pairs:,} reviews",
                    ["scenario", "rerun median", "rerun p95", "history changed: median", "p95", "tables"], rows)
        for label, i in (("a rerun", 0), ("after a change", 2)):
            worst = max((r[i] for r in results.values() if isinstance(r, tuple)), default=float("inf"))
            print(f"Target: under 500 ms, {label}: {verdict(worst < 0.5)} (worst median {worst * 1000:.0f} ms)")
        mem = memory(tmp, db, args.reloads)
    print_table("Server memory with the Models page open in Chromium", ["moment", "VmRSS", "VmHWM (peak)",
                                                                        "growth"], mem)
    growth = max(int(r[3].split()[0]) for r in mem if r[3] != "-")
    print(f"Target: memory growth under 100 MB: {verdict(growth < 100)} (largest {growth:+d} MB)")


if __name__ == "__main__":
    sys.exit(main())
