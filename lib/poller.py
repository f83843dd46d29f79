"""The poller: keeps every unfinished task's row up to date and archives the
outputs of the ones that succeed.

It runs in the server process, not in page reruns (design.md §2.4), so the
API is read at the same rate whether nobody or twenty teammates are
watching. Due tasks are claimed in SQLite (`Store.claim_due_polls`), so any
number of pollers, in one process or several, read each task at most once
per interval. HTTP calls run on a small bounded pool; all database writes
stay on the poller's own thread and connection.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from lib import archive, lifecycle
from lib.backend import Backend
from lib.client import NotFound, RunwayError
from lib.store import Store, TaskUpdate

log = logging.getLogger(__name__)

POLL_INTERVAL = float(os.environ.get("DASHBOARD_POLL_INTERVAL", "5"))
NOT_FOUND_LIMIT = 3  # a task Runway keeps answering 404 for is gone, not merely slow


class Poller:
    def __init__(self, db_path: str | Path | None, backends: list[Backend], *, interval: float = POLL_INTERVAL,
                 workers: int = 8, batch: int = 100, static_dir: Path = archive.STATIC_DIR):
        self.store = Store(db_path)
        self.backends = {b.name: b for b in backends}
        self.interval = interval
        self.batch = batch
        self.static_dir = static_dir
        self._clients = {b.name: b.client() for b in backends}
        self._http = httpx.Client(timeout=httpx.Timeout(60, connect=10))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ one round

    def poll_once(self, now: float | None = None) -> int:
        """Read every task that is due, once; returns how many were read."""
        rows = self.store.claim_due_polls(list(self.backends), self.interval, self.batch, now)
        results = self._pool.map(self._fetch, rows)
        for row, (state, error) in zip(rows, results):
            if error is None:
                self._record(row, state)
            else:
                self._record_error(row, error)
        return len(rows)

    def _fetch(self, row):
        try:
            return self._clients[row["backend"]].get_task(row["task_uuid"]), None
        except RunwayError as exc:
            return None, exc

    def _record(self, row, state) -> None:
        update = TaskUpdate(api_status=state.api_status, status=state.status, progress=state.progress,
                            output=tuple(state.output), failure=state.failure, failure_code=state.failure_code,
                            cost_credits=state.cost_credits, estimated_credits=state.estimated_credits)
        if lifecycle.is_terminal(row["status"]):
            # A finished task is read again only to renew expired output links.
            self.store.refresh_expired_outputs(row["id"], list(state.output))
        else:
            self.store.apply_update(row["id"], update)

    def _record_error(self, row, error: RunwayError) -> None:
        task = self.store.task(row["id"])
        errors = (task["poll_errors"] if task else 0) + 1
        if isinstance(error, NotFound) and errors >= NOT_FOUND_LIMIT:
            self.store.apply_update(row["id"], TaskUpdate(
                api_status="NOT_FOUND", status=lifecycle.FAILED,
                failure="Runway no longer knows this task (404): it was deleted, or it belongs to another account.",
                failure_code="DASHBOARD.NOT_FOUND"))
            return
        retry_in = min(self.interval * 2 ** (errors - 1), 300)
        self.store.record_poll_error(row["id"], error.user_message, retry_in)

    def archive_once(self) -> int:
        """Download outputs that are due; a failure is kept, marked at risk, and retried later."""
        done = 0
        for row in self.store.claim_due_archives():
            try:
                saved = archive.download(row["url"], self._http, static_dir=self.static_dir)
            except archive.ArchiveError as exc:
                retry_in = min(10 * 2 ** row["attempts"], 600)
                self.store.record_archive_failure(row["id"], str(exc), retry_in)
                if exc.expired:
                    self.store.schedule_poll(row["task_id"])
                continue
            self.store.record_archived(row["id"], path=saved.path, mime=saved.mime, size=saved.size,
                                       sha256=saved.sha256)
            done += 1
        return done

    # ------------------------------------------------------------ the thread

    def start(self) -> "Poller":
        if self._thread is None:
            self.store.settle_interrupted_submissions()
            archive.remove_partial_files(self.static_dir)
            self._thread = threading.Thread(target=self._run, name="task-poller", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.archive_once()
            except Exception:  # the loop must outlive any single bad round
                log.exception("poll round failed")
            self._stop.wait(min(1.0, self.interval / 5))


_running: dict[tuple, Poller] = {}
_lock = threading.Lock()


def ensure_poller(backend: Backend, db_path: str | Path | None = None) -> Poller:
    """The process's one poller for this database and backend, started on first call."""
    key = (str(Path(db_path).resolve()) if db_path else None, backend.name, backend.base_url)
    with _lock:
        if key not in _running:
            _running[key] = Poller(db_path, [backend]).start()
        return _running[key]
