"""Spend page: the server-side time of one run of pages/21_Spend.py, and the server's memory
while the page is open in a real browser, over 100,000 tasks and 20,000 reviews.

The history is `tests/support/history.make_history`'s (two years, six teammates, eight models, 85 % succeeded)
moved so that it ends today, plus 20,000 teammates' reviews. Render times are the wall time of
`AppTest.run()` (the whole script: set-up, every query, five Vega-Lite charts, the tables), after
two warm-up runs; the cross-check's call to the simulator's usage endpoint is cached for 60 s,
so a warm run reads it from the cache (the cold first run is printed too). Memory is VmRSS and
VmHWM of a real `streamlit run app.py` before any session and while two Chromium sessions keep
the page open and rerun it (stacking by each dimension in turn, a longer period).

    python benchmarks/bench_spend.py [--tasks 100000] [--runs 9] [--reruns 6]

Target (issue 13): a render under 500 ms, memory growth under 100 MB while the page is open.
"""
from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from common import Dashboard, chromium, machine, median, percentile, print_table, rerun_times, temp_dir, verdict

# common, imported first, puts the checkout on sys.path for these
from lib.store import REVIEW_ROWS
from tests.support.apptest import open_page, quiet_streamlit_logs, use_database, use_simulator
from tests.support.history import make_history

SPEND_PAGE = "pages/21_Spend.py"
HISTORY_END = datetime(2026, 6, 1, tzinfo=timezone.utc)  # where make_history's two years end
# name -> (period, stack): the page's own widgets, set by key.
SCENARIOS = {
    "as opened: last 30 days, by model": ("Last 30 days", None),
    "last 90 days, by teammate": ("Last 90 days", "teammate"),
    "this year, by task type": ("This year", "task_type"),
    "custom: the whole two years (every task)": ("Custom", None),
}
CHARTS = "[data-testid='stVegaLiteChart']"


def make_spend_history(db_path: Path, n_tasks: int, n_reviews: int) -> tuple[Path, int]:
    """The history, moved to end today, with `n_reviews` reviews; returns it and its first day's age."""
    make_history(db_path, n_tasks, unfinished=10)
    shift = (datetime.now(timezone.utc) - HISTORY_END).days
    conn = sqlite3.connect(db_path)
    with conn:
        moved = ", ".join(f"{c} = strftime('%Y-%m-%dT%H:%M:%fZ', {c}, '{shift:+d} days')"
                          for c in ("created_at", "submitted_at", "started_at", "finished_at", "updated_at"))
        conn.execute(f"UPDATE tasks SET {moved}")
        rng = random.Random(13)
        reviewed = rng.sample(range(1, n_tasks + 1), n_reviews)
        conn.executemany(f"INSERT INTO {REVIEW_ROWS} (task_id, reviewer, rating, winner, updated_at) "
                         "VALUES (?, ?, ?, ?, ?)",
                         [(i, rng.choice(["Ana", "Chen", "Leo", "Maya"]), rng.randint(1, 5), int(rng.random() < 0.3),
                           "2026-06-01T00:00:00.000Z") for i in reviewed])
    conn.execute("ANALYZE")
    first = conn.execute("SELECT MIN(finished_at) FROM tasks").fetchone()[0]
    conn.close()
    return db_path, (datetime.now(timezone.utc) - datetime.fromisoformat(first.replace("Z", "+00:00"))).days + 1


def time_scenarios(db_path: Path, runs: int, days: int) -> tuple[dict, float]:
    use_database(db_path)
    cold = time.perf_counter()
    at = open_page(SPEND_PAGE, timeout=120)
    cold = time.perf_counter() - cold
    results = {}
    for name, (period, stack) in SCENARIOS.items():
        at = open_page(SPEND_PAGE, timeout=120)
        at.selectbox(key="spend_period").set_value(period).run()
        if period == "Custom":
            today = datetime.now(timezone.utc).date()
            at.date_input(key="spend_range").set_value((today.fromordinal(today.toordinal() - days + 1), today))
        if stack:
            at.button_group(key="stack").set_value(stack)
        at.run()
        if at.exception:
            results[name] = f"error: {at.exception[0].message[:60]}"
            continue
        times = rerun_times(at, runs)
        spent = {m.label: m.value for m in at.metric}
        results[name] = (median(times), percentile(times, 95), spent["Finished tasks"])
    return results, cold


def _charts_drawn(page, before: str = "") -> None:
    page.wait_for_function(f"""() => {{ const c = document.querySelectorAll("{CHARTS} canvas, {CHARTS} svg.marks");
        const shown = [...document.querySelectorAll("[data-testid='stMetricValue']")].map(m => m.innerText).join();
        return c.length >= 5 && shown !== {before!r}; }}""", timeout=120_000)


def measure_memory(tmp: Path, db_path: Path, reruns: int) -> list[list]:
    rows = []
    target = tmp / "dashboard.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{db_path}{suffix}")
        if source.exists():
            source.replace(f"{target}{suffix}")
    with Dashboard(tmp) as app, chromium() as browser:
        time.sleep(2)
        before, _ = app.rss_mb()
        rows.append(["server started, no session", f"{before:.0f} MB", "-"])
        sessions = []
        for label in ("A", "B"):
            page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            if label == "A":  # Home first, as a team's server has served it: what Spend itself adds shows apart
                page.goto(app.url, timeout=120_000)
                page.get_by_role("textbox", name="Your name").wait_for(timeout=60_000)
                home, _ = app.rss_mb()
                rows.append(["session A opened Home", f"{home:.0f} MB", "-"])
            page.goto(f"{app.url}/Spend", timeout=120_000)
            _charts_drawn(page)
            sessions.append(page)
            rss, peak = app.rss_mb()
            rows.append([f"session {label} opened Spend", f"{rss:.0f} MB", f"{peak:.0f} MB"])
        # Session B looks at the whole year: every chart over twelve months.
        b = sessions[1]
        b.locator("input[role=combobox]").first.click()
        b.get_by_role("option", name="This year").click()
        _charts_drawn(b)
        for i in range(reruns):
            for page in sessions:
                stack = ("Teammate", "Task type", "Model")[i % 3]
                page.get_by_test_id("stButtonGroup").get_by_text(stack, exact=True).click()
                page.wait_for_timeout(300)
                _charts_drawn(page)
            rss, peak = app.rss_mb()
            rows.append([f"rerun {i + 1} in both sessions", f"{rss:.0f} MB", f"{peak:.0f} MB"])
    return rows, before, home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--reruns", type=int, default=6)
    args = parser.parse_args()
    quiet_streamlit_logs()
    print(f"Machine: {machine()}")
    with temp_dir("spend") as tmp:
        use_simulator(tmp / "simulator")
        start = time.perf_counter()
        db, days = make_spend_history(tmp / "history.db", args.tasks, args.reviews)
        print(f"generated {args.tasks:,} tasks and {args.reviews:,} reviews in {time.perf_counter() - start:.1f} s",
              flush=True)
        results, cold = time_scenarios(db, args.runs, days)
        (tmp / "server").mkdir()
        memory, before, home = measure_memory(tmp / "server", db, args.reruns)
    rows = [[name, r if isinstance(r, str) else f"{r[0] * 1000:.0f} / {r[1] * 1000:.0f} ms", "" if isinstance(
        r, str) else r[2]] for name, r in results.items()]
    print_table(f"Spend render with AppTest, median / p95 of {args.runs} runs ({args.tasks:,} tasks, "
                f"{args.reviews:,} reviews)", ["scenario", "render", "finished tasks in the period"], rows)
    print(f"First run of the page, cold (the usage endpoint called in {-(-days // 90)} windows): {cold * 1000:.0f} ms")
    timed = [r for r in results.values() if not isinstance(r, str)]
    worst = max(p95 for _, p95, _ in timed) if timed else float("inf")
    print(f"Target: a render under 500 ms (p95, every scenario): {verdict(worst < 0.5)} (worst p95 "
          f"{worst * 1000:.0f} ms)")
    print_table("Server memory, Spend open in two Chromium sessions", ["moment", "VmRSS", "VmHWM (peak)"], memory)
    peak = max(float(r[2].split()[0]) for r in memory if r[2] != "-")
    print(f"Target: memory growth under 100 MB while the page is open: {verdict(peak - before < 100)} "
          f"(peak {peak:.0f} MB, {peak - before:+.0f} MB over the idle server, {peak - home:+.0f} MB over it "
          "showing Home)")


if __name__ == "__main__":
    sys.exit(main())
