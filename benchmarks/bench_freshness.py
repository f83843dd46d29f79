"""Freshness: the time from a task reaching SUCCEEDED in the simulator to its
archived output showing on a History page already open in a browser.

A real `streamlit run app.py` on its built-in simulator, at the default poll
interval (5 s) and History refresh (2 s). Twenty tasks run at once; the first
read of each is placed at a different phase of the poll interval (tasks' run
times vary in real life), so the figures span the whole range from "read just
after it finished" to "read just before it finished". The page records, in
the browser, when each archived `<video src="/app/static/...">` first
appears; the simulator's database says when each task succeeded.

    python benchmarks/bench_freshness.py [--tasks 10]

Target (issue 6): at most one poll interval plus 2 s.
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

from common import (
    Dashboard,
    chromium,
    machine,
    median,
    open_history,
    print_table,
    submit_text_to_video,
    temp_dir,
    verdict,
)

from lib.store import Store

INTERVAL, REFRESH = 5.0, 2.0

WATCH_VIDEOS = """() => {
    window.__seen = {};
    const look = () => {
        for (const v of document.querySelectorAll('video')) {
            const src = v.getAttribute('src') ? new URL(v.getAttribute('src'), location.href).pathname : '';
            if (src.startsWith('/app/static/') && !(src in window.__seen)) window.__seen[src] = Date.now() / 1000;
        }
    };
    new MutationObserver(look).observe(document.body, {childList: true, subtree: true, attributes: true,
                                                       attributeFilter: ['src']});
    look();
}"""


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def measure(tmp: Path, n: int) -> list[dict]:
    with Dashboard(tmp, DASHBOARD_POLL_INTERVAL=f"{INTERVAL:g}", DASHBOARD_REFRESH_SECONDS=f"{REFRESH:g}",
                   SIMULATOR_CONCURRENCY=str(n)) as app:
        sim = app.simulator()
        store = Store(app.db_path)
        ids = submit_text_to_video(store, sim.backend(), n, prompt="Freshness benchmark", duration=5)
        now = time.time()
        for i, task_id in enumerate(ids):  # first reads spread evenly over one interval
            store.conn.execute("UPDATE tasks SET next_poll_at = ? WHERE id = ?", (now + i * INTERVAL / n, task_id))
        with chromium() as browser:
            page = open_history(browser, app.url)
            page.evaluate(WATCH_VIDEOS)
            deadline = time.time() + 90
            while time.time() < deadline and page.evaluate("Object.keys(window.__seen).length") < n:
                time.sleep(0.5)
            seen = page.evaluate("window.__seen")
        tasks = {r["id"]: r for r in store.conn.execute(
            "SELECT t.id, t.task_uuid, t.finished_at, o.archived_at, o.path FROM tasks t "
            "LEFT JOIN outputs o ON o.task_id = t.id").fetchall()}
        store.close()
        sim_db = sqlite3.connect(Path(app.env["SIMULATOR_STATE_DIR"]) / "simulator.db")
        succeeded = dict(sim_db.execute("SELECT id, finished_at FROM tasks WHERE status = 'SUCCEEDED'"))
        sim_db.close()
    results = []
    for task_id in ids:
        row = tasks[task_id]
        src = f"/app/static/{Path(row['path']).name}" if row["path"] else None
        done = succeeded.get(row["task_uuid"])
        results.append({"task": task_id, "succeeded": done, "read": _epoch(row["finished_at"]),
                        "archived": _epoch(row["archived_at"]), "shown": seen.get(src)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with temp_dir("freshness") as tmp:
        results = measure(tmp, args.tasks)
    rows, totals = [], []
    for r in results:
        if None in (r["succeeded"], r["read"], r["archived"], r["shown"]):
            rows.append([r["task"], "not shown within 90 s", "", "", ""])
            totals.append(float("inf"))
            continue
        total = r["shown"] - r["succeeded"]
        totals.append(total)
        rows.append([r["task"], f"{r['read'] - r['succeeded']:.2f} s", f"{r['archived'] - r['read']:.2f} s",
                     f"{r['shown'] - r['archived']:.2f} s", f"{total:.2f} s"])
    print_table(f"SUCCEEDED in the simulator -> archived video on an open History page "
                f"(poll interval {INTERVAL:g} s, refresh {REFRESH:g} s)",
                ["task", "to poller's read", "to archived", "to shown in browser", "total"], rows)
    target = INTERVAL + 2
    print(f"median {median(totals):.2f} s, max {max(totals):.2f} s; target <= {target:g} s: "
          f"{verdict(max(totals) <= target)}")


if __name__ == "__main__":
    sys.exit(main())
