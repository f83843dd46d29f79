"""The poller: keeps every unfinished task's row up to date and archives the
outputs of the ones that succeed.

It runs in the server process, not in page reruns, so the
API is read at the same rate whether nobody or twenty teammates are
watching. Due tasks are claimed in SQLite (`Store.claim_due_polls`), so any
number of pollers, in one process or several, read each task at most once
per interval. HTTP calls run on small bounded pools; database writes stay on
the two threads that own a connection: the poll thread and the archive thread,
so a slow download never holds up status updates.

At start a third thread, with its own connection, gives the archived videos
that have no poster (archived before posters existed, or whose poster failed)
one, a few at a time, and ends; a video is held in SQLite while its poster is
made, so two pollers never make the same one at once.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from lib import archive, lifecycle, settings
from lib.backend import Backend
from lib.client import NotFound, RunwayError, default_timeout
from lib.storage import StorageError
from lib.store import OUT_ARCHIVED, Store, TaskUpdate
from lib.store.connect import UnreachableDatabase

log = logging.getLogger(__name__)

NOT_FOUND_LIMIT = 3  # a task Runway keeps answering 404 for is gone, not merely slow
# A download in progress holds its output for this long and renews the hold every
# third of it, so a crashed process's downloads are taken up again within one lease.
SETTLE_EVERY = 30.0  # seconds between looks for submissions a crash interrupted
GATHER = 0.05  # reads due within this many seconds of each other go out in one round
POSTER_BATCH = 4  # posters the backfill makes in a row before a pause
POSTER_PAUSE = 1.0  # seconds between two batches: a long backfill leaves the CPU to polls and pages
POSTER_LEASE = 2 * archive.POSTER_TIMEOUT + 10  # one video's hold: both of make_poster's ffmpeg runs, and some


class Poller:
    def __init__(self, location: str | Path | None, backends: list[Backend], *, interval: float | None = None,
                 workers: int = 8, batch: int = 100, static_dir: Path | None = None,
                 max_bytes: int | None = None, archive_lease: float | None = None):
        self.store = Store(location)
        self.archive_store = Store(self.store.location)  # the archive thread's own connection
        self.backends = {b.name: b for b in backends}
        self.interval = interval = settings.poll_interval() if interval is None else interval
        # How long a claim holds a task: until its read has surely come back (one request's
        # timeout), so another poller never reads it meanwhile, however busy the machine.
        self.hold = interval + default_timeout().read
        self.batch = batch
        self.static_dir = static_dir  # None: the configured storage (a local folder, or the bucket)
        self.max_bytes = settings.archive_max_bytes() if max_bytes is None else max_bytes
        self.archive_lease = settings.archive_lease_seconds() if archive_lease is None else archive_lease
        self.deadline, self.min_rate = settings.archive_deadline_seconds(), settings.archive_min_rate()
        self._clients = {b.name: b.client() for b in backends}
        self._http = archive.http_client()  # checks where every output URL leads before connecting
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll")
        self._download_slots = 4
        self._downloads = ThreadPoolExecutor(max_workers=self._download_slots, thread_name_prefix="archive")
        self._in_flight: dict = {}  # download future -> its output row (the archive thread's alone)
        self._renew_leases_at = 0.0
        self._stop = threading.Event()
        self._tick = min(1.0, interval / 5)  # the longest either thread goes without looking for work
        self._poll_wake = threading.Event()
        self._archive_wake = threading.Event()  # set when a poll finds outputs to download
        self._threads: list[threading.Thread] = []
        self._next_settle = time.monotonic() + SETTLE_EVERY  # start() settles first

    # ------------------------------------------------------------ one round

    def poll_once(self, now: float | None = None) -> int:
        """Read every task that is due, once; returns how many were read.

        The claim holds each task until its read comes back; its next read is then planned
        one interval after the answer (after `now`, on a clock of the caller's), so Runway
        never sees a task read twice within an interval. A failed read is retried later,
        the longer the more reads in a row failed.
        """
        rows = self.store.claim_due_polls(list(self.backends), self.hold, self.batch, now)
        results = list(self._pool.map(self._fetch, rows))
        for row, (state, error, answered) in zip(rows, results):
            if error is None:
                self._record(row, state)
            else:
                self._record_error(row, error, answered if now is None else now)
        self.store.plan_polls({row["id"]: (answered if now is None else now) + self.interval
                               for row, (_, error, answered) in zip(rows, results) if error is None})
        return len(rows)

    def _fetch(self, row):
        try:
            state, error = self._clients[row["backend"]].get_task(row["task_uuid"]), None
        except RunwayError as exc:
            state, error = None, exc
        # When the answer came back: Runway has logged the read by then, however long the
        # request waited on either side, so the next read goes out at least an interval later.
        return state, error, time.time()

    def _record(self, row, state) -> None:
        status = state.status
        if not lifecycle.is_known(state.api_status) and not lifecycle.is_terminal(row["status"]):
            # A status we have never seen says nothing about progress: keep the lifecycle
            # where it was (never backwards) and store the raw value beside it.
            status = row["status"]
        update = TaskUpdate(api_status=state.api_status, status=status, progress=state.progress,
                            output=tuple(state.output), failure=state.failure, failure_code=state.failure_code,
                            cost_credits=state.cost_credits, estimated_credits=state.estimated_credits)
        if lifecycle.is_terminal(row["status"]):
            # A finished task is read again only to renew expired output links.
            self.store.refresh_expired_outputs(row["id"], list(state.output))
        else:
            self.store.apply_update(row["id"], update)
        if state.output:
            self._archive_wake.set()  # the archive thread starts on them now, not at its next look

    def _record_error(self, row, error: RunwayError, now: float) -> None:
        task = self.store.task(row["id"])
        errors = (task["poll_errors"] if task else 0) + 1
        if isinstance(error, NotFound) and task and task["last_error"] != error.user_message:
            # Only 404s in an unbroken run mean the task is gone; one after a few 503s is the first.
            errors = 1
        if isinstance(error, NotFound) and task and task.get("cancel_requested_at"):
            # After our own DELETE, Runway may answer 404 rather than CANCELLED (docs/runway-api.md §4).
            self.store.apply_update(row["id"], TaskUpdate(api_status="CANCELLED", status=lifecycle.CANCELLED))
            return
        if isinstance(error, NotFound) and errors >= NOT_FOUND_LIMIT:
            self.store.apply_update(row["id"], TaskUpdate(
                api_status="NOT_FOUND", status=lifecycle.FAILED,
                failure="Runway no longer knows this task (404): it was deleted, or it belongs to another account.",
                failure_code="DASHBOARD.NOT_FOUND"))
            return
        retry_in = min(self.interval * 2 ** (errors - 1), 300)
        self.store.record_poll_error(row["id"], error.user_message, retry_in, errors, now)

    def archive_once(self) -> int:
        """Download the outputs that are due and wait for them; returns how many were archived.

        For callers without the archive thread (tests, scripts); the thread itself
        never waits for a slow download before starting the next one.
        """
        self._start_downloads()
        done = 0
        while self._in_flight:
            done += self._finish_downloads(timeout=self.archive_lease / 3)
        return done

    def _archive_round(self) -> float:
        self._finish_downloads(timeout=0)
        self._start_downloads()
        if not self._in_flight:
            return self._tick
        # Waiting on the downloads rather than sleeping records a file (and shows it) as soon as it is complete.
        self._finish_downloads(timeout=self._tick)
        return 0

    def _start_downloads(self) -> None:
        free = self._download_slots - len(self._in_flight)
        if free > 0:
            for row in self.archive_store.claim_due_archives(limit=free, lease=self.archive_lease):
                self._in_flight[self._downloads.submit(self._download, row)] = row

    def _finish_downloads(self, timeout: float) -> int:
        """Record the downloads that have finished (waiting up to `timeout` for one) and keep
        the others leased, so no other poller starts the same files."""
        if not self._in_flight:
            return 0
        finished, pending = wait(self._in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
        done = 0
        for future in finished:
            row = self._in_flight.pop(future)
            try:
                done += self._record_download(row, *future.result())
            except sqlite3.OperationalError as exc:
                # The database did not take the record (PostgreSQL restarting, say): the file is kept
                # and recorded on a later round; recording the same file twice counts once.
                self._in_flight[future] = row
                log.warning("output %s is downloaded but not recorded yet: %s", row["id"], exc)
        # Every claim held is renewed: those still downloading, and those downloaded but not yet
        # recorded (a database that is back after longer than a lease finds them still ours).
        if self._in_flight and time.monotonic() >= self._renew_leases_at:
            self.archive_store.renew_archive_leases(list(self._in_flight.values()), self.archive_lease)
            self._renew_leases_at = time.monotonic() + self.archive_lease / 3
        return done

    def _record_download(self, row, saved: archive.ArchivedFile | None, error: archive.ArchiveError | None) -> int:
        """Keep what a download gave; a failure is marked at risk and retried with a growing delay.

        Only on the claim it was made for: an output removed with its task, given a fresh URL or
        claimed again by another worker while the download ran gets nothing from it, and the
        file, which no row refers to, is deleted.
        """
        store = self.archive_store
        if error is None:
            if store.record_archived(row["id"], path=saved.path, mime=saved.mime, size=saved.size,
                                     sha256=saved.sha256, claim=row):
                return 1
            with contextlib.suppress(StorageError):  # left in the store, unused, when it does not answer
                archive.delete_archived(saved.path, self.static_dir)
            log.info("discarded a download for output %s: the output changed or went while it ran", row["id"])
            return 0
        retry_in = min(10 * 2 ** row["attempts"], 600)
        if not store.record_archive_failure(row["id"], str(error), retry_in, claim=row):
            return 0
        if error.expired:
            # A fresh link comes from reading the task again: at once the first time, then
            # no more often than the download itself is retried.
            store.schedule_poll(row["task_id"], time.time() + (retry_in if row["attempts"] else 0))
        return 0

    def _download(self, row):
        # Where an output may come from follows the task's backend: loopback and plain http only
        # for a backend on loopback (the simulator); a backend this poller does not serve gets the strictest rule.
        backend = self.backends.get(row["backend"])
        try:
            return archive.download(row["url"], self._http, static_dir=self.static_dir, max_bytes=self.max_bytes,
                                    deadline=self.deadline, min_rate=self.min_rate,
                                    backend_url=backend.base_url if backend else row["backend"]), None
        except archive.ArchiveError as exc:
            return None, exc

    # ------------------------------------------------------------ posters missing

    def backfill_posters(self, pause: float = POSTER_PAUSE) -> int:
        """Make the missing posters of archived videos, POSTER_BATCH at a time with a pause between;
        returns how many were made. A poster ffmpeg cannot make is left out (it is tried again at
        the next start) and fails nothing: the video still plays without one. Only the videos past
        the store's mark are looked at (`posters_checked_through`): the mark moves on past each
        batch whose videos all have their poster, and stays before the first that did not get
        one, so a start looks at what came since, and again at what failed."""
        store = Store(self.store.location)  # this thread's own connection
        made = tried = 0
        try:
            last = store.posters_checked_through()
            complete = True  # every video so far has its poster: the mark may follow
            while not self._stop.is_set():
                rows = store.conn.execute(
                    "SELECT id, path FROM outputs WHERE state = ? AND mime LIKE 'video/%' AND id > ? ORDER BY id "
                    "LIMIT 500", (OUT_ARCHIVED, last)).fetchall()
                if not rows:
                    break
                last = rows[-1]["id"]
                for path in dict.fromkeys(r["path"] for r in rows if self._lacks_poster(r["path"])):
                    if self._stop.is_set():
                        return made
                    got = self._backfill_poster(store, path)
                    made, tried, complete = made + got, tried + 1, complete and bool(got)
                    if tried % POSTER_BATCH == 0:
                        self._stop.wait(pause)
                if complete:
                    store.check_posters_through(last)
        finally:
            store.close()
            if tried:
                log.info("poster backfill: %d of %d archived videos without a poster got one", made, tried)
        return made

    def _lacks_poster(self, path: str | None) -> bool:
        return archive.lacks_poster(path, self.static_dir)

    def _backfill_poster(self, store: Store, path: str) -> int:
        """One video's poster, made under a hold on every output row of its file (the archive's lease
        pattern, on rows that are archived and so never leased for a download)."""
        now, token = time.time(), secrets.token_hex(8)
        with store.immediate() as conn:
            if conn.execute("SELECT 1 FROM outputs WHERE path = ? AND lease IS NOT NULL AND next_attempt_at > ? "
                            "LIMIT 1", (path, now)).fetchone():
                return 0  # another poller is making it
            if not conn.execute("UPDATE outputs SET lease = ?, next_attempt_at = ? WHERE path = ? AND state = ?",
                                (token, now + POSTER_LEASE, path, OUT_ARCHIVED)).rowcount:
                return 0  # removed since the look
        try:
            if not self._lacks_poster(path):
                return 0  # made by the poller that held it before
            if not archive.make_stored_poster(path, self.static_dir):
                return 0
            # Removing a task deletes its rows before its files, so a file with no row left has been
            # (or is being) deleted by the remover, who may have looked for a poster before this one.
            if not store.conn.execute("SELECT 1 FROM outputs WHERE path = ? LIMIT 1", (path,)).fetchone():
                with contextlib.suppress(StorageError):
                    archive.storage_for(self.static_dir).delete(archive.poster_path(path))
                return 0
            return 1
        finally:
            store.conn.execute("UPDATE outputs SET lease = NULL, next_attempt_at = NULL "
                                  "WHERE path = ? AND lease = ?", (path, token))

    # ------------------------------------------------------------ the threads

    def start(self) -> Poller:
        if not self._threads:
            self.store.settle_interrupted_submissions()
            archive.remove_partial_files(self.static_dir)
            self._threads = [threading.Thread(target=self._run, args=(self._poll_round, self._poll_wake),
                                              name="task-poller", daemon=True),
                             threading.Thread(target=self._run, args=(self._archive_round, self._archive_wake),
                                              name="task-archiver", daemon=True),
                             threading.Thread(target=self._backfill, name="poster-backfill", daemon=True)]
            for thread in self._threads:
                thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._poll_wake.set()
        self._archive_wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._downloads.shutdown(wait=False, cancel_futures=True)

    def _poll_round(self) -> float:
        read = self.poll_once()
        if time.monotonic() >= self._next_settle:
            # A submission a crash cut short (in this process or another) stops looking unfinished.
            self.store.settle_interrupted_submissions()
            self._next_settle = time.monotonic() + SETTLE_EVERY
        if read >= self.batch:
            return 0  # a full batch: more are due now, so no pause between batches
        # Wake when the next read is due rather than up to a tick late, and look in every tick
        # for tasks other processes submit.
        due = self.store.next_poll_due(list(self.backends))
        return self._tick if due is None else min(self._tick, max(GATHER, due - time.time()))

    def _backfill(self) -> None:
        try:
            self.backfill_posters()
        except Exception:  # a backfill cut short by a database error is done again at the next start
            log.exception("poster backfill failed")

    def _run(self, one_round, wake: threading.Event) -> None:
        """Run rounds until stopped; a round returns how long to pause, and `wake` cuts a pause short."""
        while not self._stop.is_set():
            try:
                pause = one_round()
            except UnreachableDatabase as exc:  # said once a round, without a traceback: it is no bug
                log.warning("%s: %s", one_round.__name__, exc)
                pause = self._tick
            except Exception:  # the loop must outlive any single bad round
                log.exception("%s failed", one_round.__name__)
                pause = self._tick
            wake.wait(pause)
            wake.clear()


_running: dict[tuple, Poller] = {}
_lock = threading.Lock()


def ensure_poller(backend: Backend, location: str | Path | None = None) -> Poller:
    """The process's one poller for this database and backend, started on first call."""
    # The default database by name, so the server's start-up (no location) and the pages (the
    # default's own) share one poller rather than running two over the same database.
    location = settings.database() if location is None else location
    where = location if isinstance(location, str) and "://" in location else str(Path(location).resolve())
    key = (where, backend.name, backend.base_url)
    with _lock:
        if key not in _running:
            _running[key] = Poller(location, [backend]).start()
        return _running[key]
