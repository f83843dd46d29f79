"""Replicas: what 3 replicas behind HAProxy with 30 open sessions cost Runway, next to one replica
with one session.

A local cluster (`python -m deploy.cluster`, through tests/support/cluster.py): the simulator as
its own process (the one Runway every replica talks to), N `streamlit run app.py` replicas, each
polling and archiving, HAProxy in front with sticky sessions. Each session is a Chromium browser
context of its own (its own balancer cookie, so the sessions spread over the replicas) on History
through the balancer. The same text-to-video tasks are then submitted through the dashboard's own
submission path and run to the end.

Figures, from the simulator's request log and the replicas' logs:
- API reads per task: GET /v1/tasks/{id} per task, on average (target: 3 replicas at most 1.05x
  of one);
- duplicate downloads: output GETs beyond one per output (target 0);
- lock errors: "database is locked" (or any traceback) in the replicas' logs (target 0).

    python benchmarks/bench_replicas.py [--quick] [--replicas 3] [--sessions 30] [--tasks 12]

Set DASHBOARD_DATABASE_URL to measure on PostgreSQL (the database's tables are the benchmark's
to fill: give it a throwaway database).
"""
from __future__ import annotations

import argparse
import os
import time

from common import ROOT, UNLIMITED, chromium, machine, open_history, print_table, submit_text_to_video, temp_dir
from common import verdict as met

from lib.store import placeholders
from tests.support.cluster import local_cluster

TIMINGS = {"SIMULATOR_PENDING_SECONDS": "1", "SIMULATOR_RUN_SECONDS": "10", "SIMULATOR_CONCURRENCY": "50",
           "DASHBOARD_POLL_INTERVAL": "1", "DASHBOARD_REFRESH_SECONDS": "2", **UNLIMITED}
LOCK_SIGNS = ("database is locked", "Traceback", "deadlock detected", "could not obtain lock")


def run(replicas: int, sessions: int, tasks: int, database_url: str) -> dict:
    with temp_dir(f"replicas-{replicas}") as tmp, local_cluster(tmp, replicas=replicas, database_url=database_url,
                                                                 **TIMINGS) as cluster, chromium() as browser:
        started = time.monotonic()
        pages = [open_history(browser, cluster.url, wait=False) for _ in range(sessions)]
        for page in pages:
            page.get_by_role("heading", name="History").first.wait_for(timeout=180_000)
        opened = time.monotonic() - started
        store = cluster.store()
        admin = cluster.admin()
        admin.clear_requests()
        ids = submit_text_to_video(store, cluster.backend(), tasks, prompt="replicas", duration=2)
        uuids = {store.task(i)["task_uuid"] for i in ids}
        # This run's tasks only: on PostgreSQL both runs share the database.
        mine = f"task_id IN ({placeholders(ids)})"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rows = store.conn.execute(f"SELECT state FROM outputs WHERE {mine}", ids).fetchall()
            if len(rows) >= tasks and all(r["state"] == "archived" for r in rows):
                break
            time.sleep(0.5)
        outputs = store.conn.execute(f"SELECT COUNT(*) AS n FROM outputs WHERE {mine}", ids).fetchone()["n"]
        requests = admin.requests()
        reads = admin.reads(requests)
        downloads = sum(1 for r in requests if r["method"] == "GET" and r["path"].startswith("/outputs/"))
        logs = "".join(p.log.read_text(errors="replace") for p in cluster.web)
        store.close()
        for page in pages:
            page.context.close()
    return {"replicas": replicas, "sessions": sessions, "tasks": tasks, "opened_s": opened,
            "reads_per_task": sum(reads[u] for u in uuids) / len(uuids), "outputs": outputs,
            "duplicate_downloads": downloads - outputs, "lock_errors": sum(logs.count(s) for s in LOCK_SIGNS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 sessions and 6 tasks")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=12)
    args = parser.parse_args()
    sessions, tasks = (10, 6) if args.quick else (args.sessions, args.tasks)
    database_url = os.environ.get("DASHBOARD_DATABASE_URL", "")
    print(f"Machine: {machine()}\nDatabase: {'PostgreSQL' if database_url else 'SQLite'}; outputs in {ROOT / 'static'}")
    one = run(1, 1, tasks, database_url)
    many = run(args.replicas, sessions, tasks, database_url)
    ratio = many["reads_per_task"] / one["reads_per_task"]
    rows = [[f"{r['replicas']} x {r['sessions']}", f"{r['reads_per_task']:.2f}", r["outputs"],
             r["duplicate_downloads"], r["lock_errors"], f"{r['opened_s']:.1f}"] for r in (one, many)]
    print_table("Replicas behind HAProxy: Runway reads, downloads and lock errors",
                ["replicas x sessions", "API reads per task", "outputs", "duplicate downloads", "lock errors",
                 "sessions opened in (s)"], rows)
    print(f"reads per task, {args.replicas} replicas vs 1: {ratio:.3f}x (target <= 1.05x): {met(ratio <= 1.05)}")
    print(f"duplicate downloads: {many['duplicate_downloads']} (target 0): {met(many['duplicate_downloads'] == 0)}")
    print(f"lock errors: {many['lock_errors']} (target 0): {met(many['lock_errors'] == 0)}")


if __name__ == "__main__":
    main()
