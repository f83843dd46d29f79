"""API cost of polling.

1. Reads per minute of `GET /v1/tasks/{id}` with 200 unfinished tasks while 1,
   5 and 20 History sessions are open at once: a real `streamlit run app.py`
   on its built-in simulator, and real Chromium sessions on History (each in
   its own browser context, so each is its own Streamlit session, checking
   for changes every DASHBOARD_REFRESH_SECONDS). Counted in the request log of the
   simulator, which runs in a process of its own as Runway would.
2. One poll round over 500 unfinished tasks: `Poller.poll_once` against the
   simulator, and the server's poller thread as it runs, with the number of
   requests in flight at once.
3. What open History tabs cost the server when nothing polls: 20 sessions on a
   finished history of 1,000 tasks, first with nothing changing (each tab then
   reads the change counter every DASHBOARD_REFRESH_SECONDS and does not
   redraw), then with a rating changed every second (every tick redraws).

    python benchmarks/bench_polling.py [--quick] [--sessions 1,5,20] [--window 30]

Targets (issue 6): 20 sessions cost at most 1.05x what 1 session costs; no task
is read more than once per poll interval; a round over 500 tasks completes
within one interval, with bounded concurrency.

The tasks are submitted with the simulator's `#glitch` tag and a one-hour run
time: they stay RUNNING for the whole benchmark and the simulator encodes
nothing, so the figures are the polling's alone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
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
    wait_for_history,
)

from lib.backend import Backend
from lib.poller import Poller
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.store import Store
from tests.support.history import make_history

INTERVAL = 5.0  # the dashboard's default poll interval, which the app below runs with
LONG_RUN = "3600"


def _task_reads(log: list[dict]) -> dict[str, list[float]]:
    reads: dict[str, list[float]] = defaultdict(list)
    for entry in log:
        if entry["method"] == "GET" and entry["path"].startswith("/v1/tasks/"):
            reads[entry["path"].rsplit("/", 1)[1]].append(entry["time"])
    return reads


def _gaps(reads: dict[str, list[float]]) -> list[float]:
    return [b - a for times in reads.values() for a, b in zip(sorted(times), sorted(times)[1:])]


# ---------------------------------------------------------------- 1. sessions

def sessions_cost(tmp: Path, counts: list[int], window: float, n_tasks: int) -> list[list]:
    rows = []
    with Dashboard(tmp, own_simulator=True, SIMULATOR_RUN_SECONDS=LONG_RUN, SIMULATOR_PENDING_SECONDS="1",
                   DASHBOARD_POLL_INTERVAL=f"{INTERVAL:g}", DASHBOARD_REFRESH_SECONDS="2") as app:
        sim = app.simulator()
        store = Store(app.db_path)
        submit_text_to_video(store, sim.backend(), n_tasks, prompt="#glitch polling benchmark")
        store.close()
        time.sleep(INTERVAL + 2)  # every task has had its first read: the schedule is in its steady state
        with chromium() as browser:
            baseline = None
            for n in counts:
                # All at once, as a team opening the dashboard would; then wait for every one to draw.
                pages = [open_history(browser, app.url, wait=False) for _ in range(n)]
                for page in pages:
                    wait_for_history(page)
                time.sleep(3)
                sim.clear_requests()
                cpu_before = _cpu_seconds(app.proc.pid)
                time.sleep(window)
                log = sim.requests()
                cpu = _cpu_seconds(app.proc.pid) - cpu_before
                # Sessions still showing History at the end (their redraws show in the server CPU column).
                alive = 0
                for page in pages:
                    alive += page.get_by_role("heading", name="History").count() > 0
                    page.context.close()
                reads = _task_reads(log)
                counted = sum(len(t) for t in reads.values())
                gaps = _gaps(reads)
                # The steady rate, from the mean time between two reads of a task: a plain count over
                # the window is off by up to one round at either edge (+-17 % over 30 s).
                per_minute = len(reads) * 60 / statistics.mean(gaps) if gaps else 0.0
                other = sum(1 for e in log if e["path"].startswith("/v1/") and not e["path"].startswith("/v1/tasks/"))
                baseline = baseline or per_minute
                rows.append([f"{n} ({alive} alive)", len(reads), counted, f"{per_minute:.0f}",
                             f"{per_minute / baseline:.3f}",
                             f"{min(gaps):.2f} s" if gaps else "-", f"{median(gaps):.2f} s" if gaps else "-",
                             sum(1 for g in gaps if g < INTERVAL - 0.05), other, f"{cpu / window * 100:.0f} %"])
                print(f"{n} session(s): {rows[-1]}", flush=True)
    return rows


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- 2. one round over 500 tasks

class _InFlight:
    """Counts the poller's requests in flight at once, at the client."""

    def __init__(self, client):
        self.client, self.now, self.peak = client, 0, 0
        self._lock = threading.Lock()
        self._get = client.get_task
        client.get_task = self.get_task

    def get_task(self, task_id):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return self._get(task_id)
        finally:
            with self._lock:
                self.now -= 1


def poll_round(tmp: Path, n_tasks: int) -> list[list]:
    server = SimulatorServer(SimulatorConfig(state_dir=tmp / "simulator", pending_seconds=1, run_seconds=3600,
                                             credits=10 ** 9, daily_limit=10 ** 6)).start()
    backend = Backend(name="simulator", base_url=server.url, api_key=server.api_key)
    rows = []
    try:
        store = Store(tmp / "dashboard.db")
        submit_text_to_video(store, backend, n_tasks, prompt="#glitch poll round")

        def all_due() -> None:
            store.conn.execute("UPDATE tasks SET next_poll_at = 0")
            server.simulator.request_log.clear()

        # (a) one call of poll_once that may take every due task.
        poller = Poller(store.path, [backend], interval=INTERVAL, batch=n_tasks, static_dir=tmp / "static")
        flight = _InFlight(poller._clients["simulator"])
        all_due()
        start = time.perf_counter()
        read = poller.poll_once()
        elapsed = time.perf_counter() - start
        poller.stop()
        rows.append([f"poll_once (batch={n_tasks})", read, f"{elapsed:.2f} s", flight.peak,
                     f"{read / elapsed:.0f}", verdict(read == n_tasks and elapsed < INTERVAL)])

        # (b) the server's poller thread with its defaults, from all due to every task read once.
        poller = Poller(store.path, [backend], interval=INTERVAL, static_dir=tmp / "static")
        flight = _InFlight(poller._clients["simulator"])
        all_due()
        start = time.time()
        poller.start()
        deadline = start + 60
        while time.time() < deadline:
            reads = _task_reads(list(server.simulator.request_log))
            if len(reads) >= n_tasks:
                break
            time.sleep(0.05)
        elapsed = max(min(t) for t in reads.values()) - start
        poller.stop()
        rows.append([f"poller thread (batch={poller.batch})", len(reads), f"{elapsed:.2f} s", flight.peak,
                     f"{len(reads) / elapsed:.0f}", verdict(len(reads) == n_tasks and elapsed < INTERVAL)])
        store.close()
    finally:
        server.stop()
    return rows


# ---------------------------------------------------------------- 3. tabs with nothing to poll

def redraw_cost(tmp: Path, n_sessions: int, window: float) -> list[list]:
    make_history(tmp / "dashboard.db", 1_000)
    rows = []
    with Dashboard(tmp, DASHBOARD_REFRESH_SECONDS="2") as app, chromium() as browser:
        pages = [open_history(browser, app.url, wait=False) for _ in range(n_sessions)]
        for page in pages:
            wait_for_history(page)
        time.sleep(3)
        store = Store(app.db_path)
        for label, change_every in (("nothing changes", None), ("a rating changes every second", 1.0)):
            stop = threading.Event()

            def rate() -> None:
                n = 0
                while not stop.wait(change_every):  # noqa: B023 - joined before the next round starts
                    n += 1
                    store.set_rating(1_000 - n % 25, 1 + n % 5, "bench")  # a task on History's first page

            changer = threading.Thread(target=rate) if change_every else None
            if changer:
                changer.start()
            cpu_before = _cpu_seconds(app.proc.pid)
            time.sleep(window)
            cpu = _cpu_seconds(app.proc.pid) - cpu_before
            stop.set()
            if changer:
                changer.join()
            rows.append([n_sessions, label, f"{cpu / window * 100:.1f} %",
                         f"{cpu / window / n_sessions * 1000:.1f} ms"])
            print(rows[-1], flush=True)
        store.close()
        for page in pages:
            page.context.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 and 5 sessions, a 15 s window")
    parser.add_argument("--sessions", default="1,5,20")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of request log per session count")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--round-tasks", type=int, default=500)
    parser.add_argument("--skip-sessions", action="store_true")
    args = parser.parse_args()
    counts = [1, 5] if args.quick else [int(n) for n in args.sessions.split(",")]
    window = 15.0 if args.quick else args.window
    print(f"Machine: {machine()}")
    with temp_dir("poll-round") as tmp:
        print_table(f"One poll round over {args.round_tasks} unfinished tasks (interval {INTERVAL:g} s)",
                    ["poller", "tasks read", "round took", "max in flight", "reads / s", "within one interval"],
                    poll_round(tmp, args.round_tasks))
    if args.skip_sessions:
        return
    with temp_dir("poll-redraws") as tmp:
        print_table(f"Server CPU for History tabs on a finished history of 1,000 tasks (refresh 2 s, "
                    f"{window:g} s window each)", ["sessions", "history", "server CPU", "per session per second"],
                    redraw_cost(tmp, counts[-1], window))
    with temp_dir("poll-sessions") as tmp:
        rows = sessions_cost(tmp, counts, window, args.tasks)
    print_table(f"API reads with {args.tasks} unfinished tasks and N History sessions open "
                f"(interval {INTERVAL:g} s, refresh 2 s, {window:g} s window each)",
                ["sessions", "tasks read", f"reads in {window:g} s", "task reads / min", "vs 1 session", "min gap",
                 "median gap", "reads < interval apart", "other API calls", "server CPU"], rows)
    ratio = float(rows[-1][4])
    print(f"Target: {rows[-1][0]} sessions <= 1.05x one session: {verdict(ratio <= 1.05)} ({ratio:.3f}x); "
          f"no task read twice within an interval: {verdict(all(r[7] == 0 for r in rows))}")


if __name__ == "__main__":
    sys.exit(main())
