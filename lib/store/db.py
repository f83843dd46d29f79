"""The store's reads and writes: `Store`, one connection to the SQLite file, holds every query
and write the dashboard makes of tasks, outputs, events, reviews, budgets, wrong passwords and
download links.

One `Store` per thread or script run: a connection shared across Streamlit sessions raises
ProgrammingError under concurrent use. Read-then-write sequences run in `BEGIN IMMEDIATE` so
that several app processes can share the file without lost updates.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from lib import lifecycle, media, settings
from lib.store import connect, postgres, stash
from lib.store.schema import (
    OUT_ARCHIVED,
    OUT_AT_RISK,
    OUT_PENDING,
    POSTERS_CHECKED,
    REJECTED,
    REVIEW_ROWS,
    SUBMIT_PENDING,
    SUBMITTED,
    UNKNOWN,
    migrations,
)
from lib.store.sql import in_view, placeholders

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10
# Why a task was not created: the client's error class names the cause.
OUTCOME_UNKNOWN_CODE = "DASHBOARD.OUTCOME_UNKNOWN"
REJECTED_CODE = "DASHBOARD.REJECTED"


def utcnow() -> str:
    """Now as ISO 8601 UTC with milliseconds; sorts as text."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def vote_text(vote: dict) -> str:
    """One teammate's review, short: `Maya: ★★★★ · winner`."""
    said = ["★" * vote["rating"] if vote.get("rating") else "", "winner" if vote.get("winner") else "",
            "note" if vote.get("notes") and not vote.get("rating") and not vote.get("winner") else ""]
    return f"{vote.get('reviewer') or '(no name)'}: " + " · ".join(s for s in said if s)


def team_review(votes: list[dict]) -> dict:
    """What a team said of one task, from each teammate's own row: `votes` (by name), the
    `average` of the ratings given and their `count`, `rating` (the average to the nearest star,
    for a row of stars), `winner` (how many picked it), `notes` (each named), `reviewer` (who
    said what, one line)."""
    ratings = [v["rating"] for v in votes if v.get("rating")]
    average = sum(ratings) / len(ratings) if ratings else None
    return {
        "votes": votes,
        "average": average,
        "count": len(ratings),
        "rating": int(average + 0.5) if average is not None else None,
        "winner": sum(1 for v in votes if v.get("winner")),
        "notes": "\n".join(f"{v.get('reviewer') or '(no name)'}: {v['notes']}" for v in votes if v.get("notes")),
        "reviewer": "; ".join(vote_text(v) for v in votes),
    }


@dataclass(frozen=True)
class TaskUpdate:
    """What a poll learned about a task (a subset of client.TaskState)."""

    api_status: str
    status: str
    progress: float | None = None
    output: tuple[str, ...] = ()
    failure: str | None = None
    failure_code: str | None = None
    cost_credits: float | None = None
    estimated_credits: float | None = None


class Store:
    """The team's history on one connection: `Store()` opens what the settings name (the SQLite
    file, or PostgreSQL at DASHBOARD_DATABASE_URL), `Store(path)` a SQLite file, `Store(url)` a
    PostgreSQL database. `location` is what it was opened with, `key` names it in caches and
    logs (a URL's password masked), `dialect` is the SQL that differs (`lib.store.connect`)."""

    postgres = False
    dialect = connect.SQLITE
    migrated: list[str] = []  # the migrations this Store applied when it opened the database (often none)

    def __init__(self, location: str | Path | None = None):
        location = settings.database() if location is None else location
        self.postgres = connect.is_postgres(location)
        if self.postgres:
            self.location: str | Path = str(location)
            digest = hashlib.sha256(connect.identity(self.location).encode()).hexdigest()[:12]
            self.key = f"{connect.masked(self.location)}#{digest}"
            self.path = None
            # What stays on this machine beside a shared database: the created log of this process.
            self.data_dir = settings.db_path().parent
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.dialect = connect.POSTGRES
            self.conn = connect.connect_postgres(self.location)
            self.db = None
            self.migrated = postgres.migrate(self.conn)
        else:
            self.path = Path(location)
            self.location = self.path
            self.key = str(self.path)
            self.data_dir = self.path.parent
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.dialect = connect.SQLITE
            _owner_only(self.path)
            self.conn = connect.connect_sqlite(self.path, BUSY_TIMEOUT_S)
            self.db = Database(self.conn)
            self._migrate()
        self.stash_dir = self.data_dir / "inputs"
        # Beside a PostgreSQL database, named after it: a log is replayed only into its own database.
        own = self.path.name if self.path else f"postgresql-{self.key.rsplit('#', 1)[1]}"
        self.created_log = self.data_dir / f"{own}.created"
        self.replay_created_log()

    def _migrate(self) -> None:
        # A file lock, because two processes opening a new database at once
        # would otherwise both try to create the same tables.
        with self.exclusive("migrate"):
            self.migrated = [m.name for m in migrations.pending(self.db)]
            if self.migrated:
                migrations.apply(self.db)

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Held by one process at a time, of every process on this database: a file lock beside the
        SQLite file, a PostgreSQL advisory lock (on its own connection, so the store's own
        statements and transactions go on meanwhile)."""
        if self.postgres:
            lock = connect.connect_postgres(self.location)
            try:
                lock.execute("SELECT pg_advisory_lock(?)", (_lock_key(name),))
                yield
            finally:
                lock.close()  # the lock goes with its session
            return
        lock_path = self.path.with_suffix(f"{self.path.suffix}.{name}.lock")
        with open(os.open(lock_path, os.O_CREAT | os.O_WRONLY, 0o600), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextlib.contextmanager
    def immediate(self, serialized: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so read-then-write cannot interleave: SQLite's
        BEGIN IMMEDIATE; on PostgreSQL a transaction holding one advisory lock that every such
        write takes. `serialized=False` (PostgreSQL only) leaves that lock to row locks: for claims
        that read `FOR UPDATE SKIP LOCKED` (`dialect.skip_locked`), which pass over the rows
        another claim holds instead of waiting for it."""
        conn = self.conn
        conn.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        try:
            if self.postgres and serialized:
                conn.execute("SELECT pg_advisory_xact_lock(?)", (postgres.WRITE_LOCK,))
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # After some errors (a full disk, say) SQLite has rolled the transaction back itself.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # a connection that broke has no transaction left
                    conn.execute("ROLLBACK")
            raise

    def tuples(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """The rows as plain tuples: for a frame or a writer that wants no row objects."""
        if self.postgres:
            return self.conn.execute(sql, params, plain=True).fetchall()
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params).fetchall()

    def stream(self, sql: str, params: tuple | list, batch: int) -> Iterator[list[tuple]]:
        """The rows as plain tuples, `batch` at a time, never the whole result in this process: on
        PostgreSQL a server-side cursor, on SQLite its own stepping through the result."""
        if self.postgres:
            yield from self.conn.stream(sql, params, batch)
            return
        cursor = self.conn.cursor()
        cursor.row_factory = None
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch):
            yield rows

    # ------------------------------------------------------------ inputs

    def stash_request(self, body: dict) -> dict:
        """The request with large data URIs replaced by files in the input stash."""
        return stash.stash_request(self.stash_dir, body)

    def restore_request(self, stored: dict) -> dict:
        """The request as it was sent, data URIs and all (for re-running a task)."""
        return stash.restore_request(self.stash_dir, stored)

    def free_bytes(self) -> int:
        """Space left to an unprivileged writer on the disk that holds the database's folder: the
        SQLite file, or beside a PostgreSQL database the input stash and the created log."""
        disk = os.statvfs(self.data_dir)
        return disk.f_bavail * disk.f_frsize

    # ------------------------------------------------------------ submission

    def record_submission(self, *, backend: str, task_type: str, model: str, endpoint: str, body: dict,
                          teammate: str = "", group_id: str | None = None, parent_task_id: int | None = None,
                          estimated_credits: float | None = None) -> int:
        """Write the task row before the API call, so a crash cannot lose what was asked."""
        now = utcnow()
        # The inputs go to the stash before the write lock is taken: an upload to a bucket may take
        # seconds, and every replica's writes wait on that lock. Under the lock they are stashed
        # again, which finds them there (a look, no upload) unless a removal took one meanwhile.
        self.stash_request(body)
        with self.immediate() as conn:
            cur = conn.execute(
                "INSERT INTO tasks (backend, task_type, model, endpoint, request_json, submit_state, status, "
                "estimated_credits, teammate, group_id, parent_task_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (backend, task_type, model, endpoint, json.dumps(self.stash_request(body), ensure_ascii=False),
                 SUBMIT_PENDING, lifecycle.PENDING, estimated_credits, teammate or "", group_id, parent_task_id,
                 now, now))
            task_id = cur.fetchone()[0]
            self._event(conn, task_id, lifecycle.PENDING, None, "recorded, sending to the API")
        return task_id

    def mark_submitted(self, task_id: int, task_uuid: str, estimated_credits: float | None,
                       first_poll_in: float) -> None:
        now = utcnow()
        with self.immediate() as conn:
            # A create slow enough to have been settled as "unknown" meanwhile is known after all:
            # the row goes back to PENDING and is followed like any other.
            conn.execute(
                "UPDATE tasks SET task_uuid = ?, submit_state = ?, submitted_at = ?, updated_at = ?, "
                "estimated_credits = COALESCE(?, estimated_credits), next_poll_at = ?, status = ?, "
                "failure = NULL, failure_code = NULL, finished_at = NULL WHERE id = ?",
                (task_uuid, SUBMITTED, now, now, estimated_credits, time.time() + first_poll_in, lifecycle.PENDING,
                 task_id))
            self._event(conn, task_id, lifecycle.PENDING, None, f"created as {task_uuid}")

    def record_created(self, task_id: int, task_uuid: str, estimated_credits: float | None,
                       first_poll_in: float, tries: int = 3) -> bool:
        """Record Runway's id of a task it has created (and billed), whatever the disk does: in the
        row (`mark_submitted`, tried `tries` times), else appended to the created log, which every
        start-up and the poller's periodic settle replay into the row. Returns whether the row has it;
        raises OSError when neither could be written."""
        for attempt in range(tries):
            try:
                self.mark_submitted(task_id, task_uuid, estimated_credits, first_poll_in)
                return True
            except sqlite3.OperationalError as exc:  # "database or disk is full", a disk I/O error
                log.warning("recording Runway's id %s of task #%s failed (%s)", task_uuid, task_id, exc)
                if attempt + 1 < tries:
                    time.sleep(0.2 * 2 ** attempt)
        line = json.dumps({"task_id": task_id, "task_uuid": task_uuid, "estimated_credits": estimated_credits})
        while True:
            with open(os.open(self.created_log, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600), "a") as out:
                fcntl.flock(out, fcntl.LOCK_EX)
                if os.fstat(out.fileno()).st_nlink:  # not replayed and removed while we waited for the lock
                    out.write(line + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                    return False

    def replay_created_log(self) -> int:
        """Write the Runway ids kept in the created log into their rows; returns how many. The log
        goes once every entry is in the database; while the database cannot be written it stays."""
        try:
            log_file = open(self.created_log, "r+")
        except FileNotFoundError:
            return 0
        replayed = 0
        with log_file:
            fcntl.flock(log_file, fcntl.LOCK_EX)
            if not os.fstat(log_file.fileno()).st_nlink:
                return 0  # another process replayed it while we waited for the lock
            for line in log_file:
                try:
                    entry = json.loads(line)
                    task_id, task_uuid = int(entry["task_id"]), str(entry["task_uuid"])
                except (ValueError, KeyError, TypeError):
                    log.warning("skipped an unreadable line of %s", self.created_log.name)
                    continue
                row = self.conn.execute("SELECT task_uuid FROM tasks WHERE id = ?", (task_id,)).fetchone()
                if row is None or row[0] is not None:
                    continue  # removed since, or recorded after all
                try:
                    self.mark_submitted(task_id, task_uuid, entry.get("estimated_credits"), first_poll_in=0)
                except sqlite3.OperationalError as exc:
                    log.warning("the created log is kept: the database cannot be written yet (%s)", exc)
                    return replayed
                replayed += 1
            self.created_log.unlink()
        return replayed

    def mark_not_created(self, task_id: int, *, unknown: bool, message: str) -> None:
        """The API refused the request (rejected), or we cannot tell whether it was created (unknown)."""
        now = utcnow()
        state, code = (UNKNOWN, OUTCOME_UNKNOWN_CODE) if unknown else (REJECTED, REJECTED_CODE)
        with self.immediate() as conn:
            conn.execute(
                "UPDATE tasks SET submit_state = ?, status = ?, failure = ?, failure_code = ?, finished_at = ?, "
                "updated_at = ? WHERE id = ?",
                (state, lifecycle.FAILED, message, code, now, now, task_id))
            self._event(conn, task_id, lifecycle.FAILED, None, message)

    def settle_interrupted_submissions(self, older_than_s: float = 120) -> int:
        """Rows left 'submitting' by a crash: their outcome is unknown, and they are never resent blind.
        Ids of created tasks that a full disk kept out of their rows are written in first."""
        self.replay_created_log()
        cutoff = datetime.fromtimestamp(time.time() - older_than_s, timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM tasks WHERE submit_state = ? AND created_at < ?", (SUBMIT_PENDING, cutoff))]
        for task_id in ids:
            self.mark_not_created(task_id, unknown=True, message=(
                "The dashboard stopped while sending this task, so it may or may not exist on Runway. "
                "It was not sent again; check before submitting it once more."))
        return len(ids)

    # ------------------------------------------------------------ polling

    def claim_due_polls(self, backends: list[str], hold: float, limit: int = 50,
                        now: float | None = None) -> list[sqlite3.Row]:
        """Take the tasks due for a read and hold them for `hold` seconds, long enough for the
        reads to come back; the poller then plans each one's next read (`plan_polls`).

        The claim is one transaction, so any number of pollers in any number of processes never
        read a task at the same time, however long a read waits on a busy machine; with
        `plan_polls` from the answer, Runway sees at most one read an interval. On SQLite it is
        BEGIN IMMEDIATE (one writer at a time); on PostgreSQL the rows are locked `FOR UPDATE SKIP
        LOCKED`, so replicas claiming at the same moment take disjoint tasks without waiting on
        each other, and a row another claim has moved on is not due any more when it is read.
        """
        if not backends:
            return []
        now = time.time() if now is None else now
        with self.immediate(serialized=False) as conn:
            rows = conn.execute(
                f"SELECT id, task_uuid, backend, status FROM tasks WHERE next_poll_at <= ? "
                f"AND submit_state = ? AND backend IN ({placeholders(backends)}) ORDER BY next_poll_at LIMIT ? "
                f"{self.dialect.skip_locked()}",
                (now, SUBMITTED, *backends, limit)).fetchall()
            if rows:
                # A finished task is only due when asked to renew its output links: once is enough.
                conn.execute(
                    f"UPDATE tasks SET next_poll_at = CASE WHEN status IN (?, ?) THEN ? END "
                    f"WHERE id IN ({placeholders(rows)})",
                    (*lifecycle.UNFINISHED, now + hold, *[r["id"] for r in rows]))
        return rows

    def apply_update(self, task_id: int, update: TaskUpdate) -> bool:
        """Record a poll's answer. Statuses only move forward; returns whether anything changed."""
        now = utcnow()
        with self.immediate() as conn:
            row = conn.execute("SELECT status, api_status, progress FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None or not lifecycle.moves_forward(row["status"], update.status):
                return False
            changed_status = (row["status"], row["api_status"]) != (update.status, update.api_status)
            started = now if update.status != lifecycle.PENDING else None
            finished = now if lifecycle.is_terminal(update.status) else None
            conn.execute(
                "UPDATE tasks SET status = ?, api_status = ?, progress = COALESCE(?, progress), "
                "failure = COALESCE(?, failure), failure_code = COALESCE(?, failure_code), "
                "cost_credits = COALESCE(?, cost_credits), estimated_credits = COALESCE(?, estimated_credits), "
                "started_at = COALESCE(started_at, ?), finished_at = COALESCE(finished_at, ?), "
                "next_poll_at = CASE WHEN ? THEN NULL ELSE next_poll_at END, "
                "poll_errors = 0, last_error = NULL, updated_at = ? WHERE id = ?",
                (update.status, update.api_status, update.progress, update.failure, update.failure_code,
                 update.cost_credits, update.estimated_credits, started, finished, finished is not None, now,
                 task_id))
            if update.status == lifecycle.SUCCEEDED:
                for position, url in enumerate(update.output):
                    # A fresh URL replaces an old one only while the file is not archived yet.
                    conn.execute(
                        "INSERT INTO outputs (task_id, position, url, state, next_attempt_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (task_id, position) DO UPDATE SET url = excluded.url, "
                        "next_attempt_at = excluded.next_attempt_at WHERE outputs.state != ?",
                        (task_id, position, url, OUT_PENDING, time.time(), OUT_ARCHIVED))
            if changed_status:
                note = update.failure if update.status == lifecycle.FAILED else None
                self._event(conn, task_id, update.status, update.api_status, note)
        return True

    def record_poll_error(self, task_id: int, message: str, retry_in: float, errors: int | None = None,
                          now: float | None = None) -> None:
        """A failed read: kept with its message, and read again `retry_in` seconds from `now`;
        `errors` restarts the count of failures in a row."""
        with self.immediate() as conn:
            conn.execute(
                "UPDATE tasks SET poll_errors = COALESCE(?, poll_errors + 1), last_error = ?, "
                "next_poll_at = ?, updated_at = ? WHERE id = ?",
                (errors, message, (time.time() if now is None else now) + retry_in, utcnow(), task_id))

    def schedule_poll(self, task_id: int, when: float | None = None) -> None:
        """Ask for a read soon, e.g. of a finished task to renew output links that expired."""
        self.conn.execute("UPDATE tasks SET next_poll_at = ? WHERE id = ?",
                             (time.time() if when is None else when, task_id))

    def plan_polls(self, due: dict[int, float]) -> None:
        """Set when tasks that were just read are read next; never for a task that needs no
        more reads (its next_poll_at is NULL)."""
        if due:
            with self.immediate() as conn:
                conn.executemany("UPDATE tasks SET next_poll_at = ? WHERE id = ? AND next_poll_at IS NOT NULL",
                                 [(when, task_id) for task_id, when in due.items()])

    def next_poll_due(self, backends: list[str]) -> float | None:
        """When the earliest planned read of these backends' tasks is due (epoch seconds)."""
        if not backends:
            return None
        row = self.conn.execute(
            f"SELECT next_poll_at FROM tasks WHERE next_poll_at IS NOT NULL AND submit_state = ? "
            f"AND backend IN ({placeholders(backends)}) ORDER BY next_poll_at LIMIT 1",
            (SUBMITTED, *backends)).fetchone()
        return row[0] if row else None

    def refresh_expired_outputs(self, task_id: int, output: list[str]) -> None:
        """New signed URLs from a GET of a finished task, for outputs not yet archived."""
        with self.immediate() as conn:
            for position, url in enumerate(output):
                conn.execute("UPDATE outputs SET url = ?, next_attempt_at = ? WHERE task_id = ? AND position = ? "
                             "AND state != ?", (url, time.time(), task_id, position, OUT_ARCHIVED))

    # ------------------------------------------------------------ archive

    def posters_checked_through(self) -> int:
        """The output id up to which the poster backfill has looked at every archived video."""
        return self.conn.execute(f"SELECT through_output FROM {POSTERS_CHECKED} WHERE id = 1").fetchone()[0]

    def check_posters_through(self, output_id: int) -> None:
        """Record that every archived video up to `output_id` has its poster (never moved back:
        two replicas' backfills may finish in any order)."""
        with self.immediate() as conn:
            conn.execute(f"UPDATE {POSTERS_CHECKED} SET through_output = "
                         f"{self.dialect.greatest('through_output', '?')} WHERE id = 1", (output_id,))

    def claim_due_archives(self, limit: int = 10, lease: float = 120, now: float | None = None) -> list[dict]:
        """Outputs waiting for download; each is leased so only one worker fetches it. A claim
        carries its own `lease` token: what it downloads is recorded only while that holds. As
        `claim_due_polls` does, PostgreSQL locks the output rows (not their tasks) `FOR UPDATE
        SKIP LOCKED`, so replicas claiming at once download each output once."""
        now = time.time() if now is None else now
        with self.immediate(serialized=False) as conn:
            rows = [dict(r) for r in conn.execute(
                "SELECT o.id, o.task_id, o.position, o.url, o.attempts, t.backend FROM outputs o "
                "JOIN tasks t ON t.id = o.task_id WHERE o.state != ? AND o.next_attempt_at <= ? "
                f"ORDER BY o.next_attempt_at LIMIT ? {self.dialect.skip_locked('o')}", (OUT_ARCHIVED, now, limit))]
            for row in rows:
                row["lease"] = secrets.token_hex(8)
            conn.executemany("UPDATE outputs SET next_attempt_at = ?, lease = ? WHERE id = ?",
                             [(now + lease, row["lease"], row["id"]) for row in rows])
        return rows

    def renew_archive_leases(self, claims: list[dict], lease: float) -> None:
        """Keep downloads in progress claimed, so no other worker starts the same files; a claim
        whose output was removed, re-leased or given a new URL meanwhile is not renewed."""
        if claims:
            with self.immediate() as conn:
                conn.executemany(
                    "UPDATE outputs SET next_attempt_at = ? WHERE id = ? AND lease = ? AND url = ? AND state != ?",
                    [(time.time() + lease, c["id"], c["lease"], c["url"], OUT_ARCHIVED) for c in claims])

    def record_archived(self, output_id: int, *, path: str, mime: str, size: int, sha256: str,
                        claim: dict | None = None) -> bool:
        """Record an archived file; with the `claim` it was downloaded for (from claim_due_archives),
        only while the output is still that row, with the same URL and lease. Returns whether it
        was recorded: if not, the file belongs to nobody and the caller deletes it.

        Recording it again is safe: a try whose answer was lost with the connection (PostgreSQL
        restarted) may have been recorded, and then the output already holds this very file (its
        random name and checksum), which counts as recorded, so the file is never deleted from
        under its own row."""
        guard, params = self._claim_guard(claim)
        if self.conn.execute(
                "UPDATE outputs SET state = ?, path = ?, mime = ?, size = ?, sha256 = ?, archived_at = ?, "
                f"lease = NULL, last_error = NULL, next_attempt_at = NULL, attempts = attempts + 1 WHERE id = ?{guard}",
                (OUT_ARCHIVED, path, mime, size, sha256, utcnow(), output_id, *params)).rowcount == 1:
            return True
        return self.conn.execute("SELECT 1 FROM outputs WHERE id = ? AND state = ? AND path = ? AND sha256 = ?",
                                 (output_id, OUT_ARCHIVED, path, sha256)).fetchone() is not None

    def record_archive_failure(self, output_id: int, message: str, retry_in: float,
                               claim: dict | None = None) -> bool:
        """A failed download, kept at risk and retried; with its `claim`, only while that holds."""
        guard, params = self._claim_guard(claim)
        return self.conn.execute(
            "UPDATE outputs SET state = ?, last_error = ?, attempts = attempts + 1, next_attempt_at = ?, "
            f"lease = NULL WHERE id = ?{guard}",
            (OUT_AT_RISK, message, time.time() + retry_in, output_id, *params)).rowcount == 1

    @staticmethod
    def _claim_guard(claim: dict | None) -> tuple[str, tuple]:
        if claim is None:
            return "", ()
        return " AND lease = ? AND url = ? AND state != ?", (claim["lease"], claim["url"], OUT_ARCHIVED)

    # ------------------------------------------------------------ reading

    def task(self, task_id: int) -> dict | None:
        row = self.conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return self.with_input_sources([_task_dict(row)])[0] if row else None

    def with_input_sources(self, tasks: list[dict]) -> list[dict]:
        """The tasks, each with `inputs_from`: for a media input it carries (an upload, or an earlier
        output sent on), keyed by `input_digest`, the earlier task whose output it is: the parent
        if its output matches, else the latest earlier one. One look-up for all the tasks."""
        wanted = {t["id"]: {d for d in map(stash.input_digest, stash.carried_uris(t.get("request"))) if d}
                  for t in tasks}
        digests = sorted(set().union(*wanted.values()))
        made: dict[str, set[int]] = {}
        for i in range(0, len(digests), 500):
            chunk = digests[i:i + 500]
            for sha, task_id in self.conn.execute(
                    f"SELECT sha256, task_id FROM outputs WHERE sha256 IN ({placeholders(chunk)})", chunk):
                made.setdefault(sha, set()).add(task_id)
        for task in tasks:
            task["inputs_from"] = {}
            for digest in wanted[task["id"]]:
                earlier = {i for i in made.get(digest, ()) if i < task["id"]}
                if earlier:
                    parent = task.get("parent_task_id")
                    task["inputs_from"][digest] = parent if parent in earlier else max(earlier)
        return tasks

    def recent_tasks(self, limit: int = 25, offset: int = 0) -> list[dict]:
        rows = self.conn.execute(f"SELECT * FROM tasks WHERE {in_view()} ORDER BY created_at DESC, id DESC "
                                    "LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return self.with_input_sources([_task_dict(r) for r in rows])

    def count_tasks(self) -> int:
        return self.conn.execute(f"SELECT COUNT(*) FROM tasks WHERE {in_view()}").fetchone()[0]

    def has_tasks(self) -> bool:
        """Whether any task is in view: the first one found, not a count of them all."""
        return self.conn.execute(f"SELECT 1 FROM tasks WHERE {in_view()} LIMIT 1").fetchone() is not None

    def outputs_for(self, task_ids: list[int]) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {i: [] for i in task_ids}
        if not task_ids:
            return found
        rows = self.conn.execute(
            f"SELECT * FROM outputs WHERE task_id IN ({placeholders(task_ids)}) ORDER BY task_id, position",
            task_ids).fetchall()
        for r in rows:
            found[r["task_id"]].append(dict(r))
        return found

    def events_for(self, task_id: int) -> list[dict]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM events WHERE task_id = ? ORDER BY id", (task_id,))]

    def change_version(self) -> int:
        """A number that moves whenever a task, output or review changes in a way a page shows."""
        return self.conn.execute("SELECT version FROM changes WHERE id = 1").fetchone()[0]

    def spend_version(self) -> int:
        """A number that moves whenever what a task counts for on Spend changes (it ends, its cost
        is known, it is removed, renamed or deleted); not on progress, polls or reviews."""
        return self.conn.execute("SELECT spend FROM changes WHERE id = 1").fetchone()[0]

    def unfinished_count(self) -> int:
        return self.conn.execute(
            "SELECT COUNT(*) FROM tasks WHERE status IN (?, ?) AND submit_state IN (?, ?)",
            (*lifecycle.UNFINISHED, SUBMITTED, SUBMIT_PENDING)).fetchone()[0]

    def pending_archive_count(self) -> int:
        # The state written into the SQL, as the partial index `outputs_unarchived` is (schema.m016):
        # a planner uses that index only for a condition it can see implies the index's own.
        return self.conn.execute(f"SELECT COUNT(*) FROM outputs WHERE state != '{OUT_ARCHIVED}'").fetchone()[0]

    def archived_outputs(self, kinds: list[str], limit: int = 50) -> list[dict]:
        """Recent archived outputs of the given media kinds, newest first, to reuse as inputs."""
        mimes = [mime for kind in kinds for mime in media.MIME_TYPES[kind]]
        rows = self.conn.execute(
            f"SELECT o.*, t.task_type, t.model, {self.dialect.json_text('t.request_json', 'promptText')} AS prompt "
            f"FROM outputs o JOIN tasks t ON t.id = o.task_id WHERE o.state = ? "
            f"AND o.mime IN ({placeholders(mimes)}) ORDER BY o.id DESC LIMIT ?",
            (OUT_ARCHIVED, *mimes, limit)).fetchall()
        return [dict(r) for r in rows]

    def archived_output(self, output_id: int) -> dict | None:
        row = self.conn.execute(
            f"SELECT o.*, t.task_type, t.model, {self.dialect.json_text('t.request_json', 'promptText')} AS prompt "
            "FROM outputs o JOIN tasks t ON t.id = o.task_id WHERE o.id = ? AND o.state = ?",
            (output_id, OUT_ARCHIVED)).fetchone()
        return dict(row) if row else None

    # ------------------------------------------------------------ cancel, remove, lineage

    def mark_cancel_requested(self, task_id: int, note: str) -> None:
        """Runway accepted our DELETE: read the task again now; a 404 from here on means cancelled."""
        now = utcnow()
        with self.immediate() as conn:
            row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                return
            conn.execute("UPDATE tasks SET cancel_requested_at = ?, next_poll_at = ?, updated_at = ? WHERE id = ?",
                         (now, time.time(), now, task_id))
            self._event(conn, task_id, row["status"], None, note)

    def remove_task(self, task_id: int, teammate: str = "") -> list[str]:
        """Take a task out of view: its row stays, marked removed, so what it cost stays on record
        (the CSV of all rows and the account's usage still add up), and so do its reviews, for the
        Models leaderboard, though no page shows them (the `reviews` view); its outputs go, and
        the stashed inputs no task in view uses. Returns the archived files that no remaining
        output uses, for the caller to delete; files other tasks share stay."""
        with self.immediate() as conn:
            row = conn.execute("SELECT request_json, status FROM tasks WHERE id = ? AND removed_at IS NULL",
                               (task_id,)).fetchone()
            if row is None:
                return []
            paths = [r[0] for r in conn.execute(
                "SELECT DISTINCT path FROM outputs WHERE task_id = ? AND path IS NOT NULL", (task_id,))]
            conn.execute("DELETE FROM outputs WHERE task_id = ?", (task_id,))
            now = utcnow()
            conn.execute("UPDATE tasks SET removed_at = ?, updated_at = ? WHERE id = ?", (now, now, task_id))
            self._event(conn, task_id, row["status"], None, "removed from the history"
                        + (f" by {teammate}" if teammate else ""))
            unused = [p for p in paths
                      if conn.execute("SELECT 1 FROM outputs WHERE path = ? LIMIT 1", (p,)).fetchone() is None]
        self._remove_unused_inputs(stash.stashed_names(json.loads(row[0] or "{}")))
        return unused

    def _remove_unused_inputs(self, names: set[str]) -> None:
        """Delete stashed inputs that no task's request refers to. Under the write lock, which a
        submission also holds from stashing its inputs until its row is written, so no file goes
        that a submission is about to use; nothing is written, so nothing can fail to commit. A
        removed task cannot be re-run, so its request holds no file."""
        if not names:
            return
        with self.immediate() as conn:
            for name in names:
                # A scan of the requests, on a rare action: 28 ms at 100,000 tasks.
                if conn.execute("SELECT 1 FROM tasks WHERE removed_at IS NULL AND "
                                f"{self.dialect.position('?', 'request_json')} > 0 LIMIT 1",
                                (f":{name}\"",)).fetchone() is None:
                    stash.remove_stashed(self.stash_dir, name)

    def tasks_by_id(self, task_ids: list[int]) -> list[dict]:
        """The tasks with these ids, in the order given (missing ids are left out)."""
        if not task_ids:
            return []
        rows = self.conn.execute(f"SELECT * FROM tasks WHERE id IN ({placeholders(task_ids)})",
                                    task_ids).fetchall()
        found = {r["id"]: _task_dict(r) for r in rows}
        self.with_input_sources(list(found.values()))
        return [found[i] for i in task_ids if i in found]

    def children_of(self, task_id: int) -> list[dict]:
        rows = self.conn.execute(f"SELECT * FROM tasks WHERE parent_task_id = ? AND {in_view()} ORDER BY id",
                                    (task_id,))
        return [_task_dict(r) for r in rows]

    # ------------------------------------------------------------ reviews

    def reviews_for(self, task_ids: list[int]) -> dict[int, dict]:
        """What the team said of each task someone reviewed: `team_review` of every teammate's
        own rating, notes and winner vote."""
        if not task_ids:
            return {}
        rows = self.conn.execute(
            f"SELECT * FROM reviews WHERE task_id IN ({placeholders(task_ids)}) "
            "AND (rating IS NOT NULL OR COALESCE(notes, '') != '' OR winner != 0) ORDER BY task_id, reviewer",
            task_ids)
        votes: dict[int, list[dict]] = {}
        for r in rows:
            votes.setdefault(r["task_id"], []).append(dict(r))
        return {task_id: team_review(found) for task_id, found in votes.items()}

    def set_rating(self, task_id: int, rating: int | None, reviewer: str = "") -> None:
        """`reviewer`'s own rating of the task (None takes it back); nobody else's changes."""
        if rating is not None and not 1 <= rating <= 5:
            raise ValueError("a rating is from 1 to 5")
        with self.immediate() as conn:
            self._review(conn, task_id, "rating", rating, reviewer)

    def set_notes(self, task_id: int, notes: str, reviewer: str = "") -> None:
        with self.immediate() as conn:
            self._review(conn, task_id, "notes", notes, reviewer)

    def set_winner(self, task_ids: list[int], winner: int | None, reviewer: str = "") -> None:
        """`reviewer`'s vote for `winner` as best among `task_ids` (the tasks compared, recorded
        with the vote: the leaderboard counts it a win over each of the others); None takes their
        vote back. Other teammates' votes stay."""
        with self.immediate() as conn:
            # A removed task's vote stays as it was (see `_review`).
            removed = {r[0] for r in conn.execute(
                f"SELECT id FROM tasks WHERE removed_at IS NOT NULL AND id IN ({placeholders(task_ids)})",
                task_ids)} if task_ids else set()
            for task_id in (i for i in task_ids if i not in removed):
                if task_id == winner:
                    self._review(conn, task_id, "winner", 1, reviewer)
                    conn.execute(f"UPDATE {REVIEW_ROWS} SET compared = ? WHERE task_id = ? AND reviewer = ?",
                                 (json.dumps(sorted(set(task_ids))), task_id, reviewer or ""))
                else:
                    conn.execute(f"UPDATE {REVIEW_ROWS} SET winner = 0, compared = NULL, updated_at = ? "
                                 "WHERE task_id = ? AND reviewer = ? AND winner != 0",
                                 (utcnow(), task_id, reviewer or ""))

    @staticmethod
    def _review(conn: sqlite3.Connection, task_id: int, column: str, value: Any, reviewer: str) -> None:
        # Only on a task still in the history: a teammate's page drawn before another removed the
        # task must not bring a review back onto it.
        conn.execute(
            f"INSERT INTO {REVIEW_ROWS} (task_id, reviewer, {column}, updated_at) SELECT id, ?, ?, ? FROM tasks "
            f"WHERE id = ? AND removed_at IS NULL "
            f"ON CONFLICT (task_id, reviewer) DO UPDATE SET {column} = excluded.{column}, "
            f"updated_at = excluded.updated_at", (reviewer or "", value, utcnow(), task_id))

    # ------------------------------------------------------------ budgets

    def budgets(self) -> dict[str, float]:
        """Each teammate's monthly budget in credits, by name."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT teammate, monthly_credits FROM budgets "
                                                         "ORDER BY teammate")}

    def budget(self, teammate: str) -> float | None:
        row = self.conn.execute("SELECT monthly_credits FROM budgets WHERE teammate = ?", (teammate,)).fetchone()
        return row[0] if row else None

    def set_budget(self, teammate: str, monthly_credits: float | None) -> None:
        """`teammate`'s monthly budget; None takes it away."""
        if monthly_credits is not None and not 0 <= monthly_credits < float("inf"):
            raise ValueError("a budget is a number of credits, 0 or more")
        with self.immediate() as conn:
            if monthly_credits is None:
                conn.execute("DELETE FROM budgets WHERE teammate = ?", (teammate,))
            else:
                conn.execute("INSERT INTO budgets (teammate, monthly_credits, updated_at) VALUES (?, ?, ?) "
                             "ON CONFLICT (teammate) DO UPDATE SET monthly_credits = excluded.monthly_credits, "
                             "updated_at = excluded.updated_at", (teammate, monthly_credits, utcnow()))

    # ------------------------------------------------------------ the password gate

    def record_login_failure(self, now: float | None = None) -> None:
        with self.immediate() as conn:
            conn.execute("INSERT INTO login_failures (at) VALUES (?)", (time.time() if now is None else now,))

    def login_failures_since(self, since: float) -> tuple[int, float | None]:
        """(how many wrong passwords, when the latest was) since `since`, epoch seconds."""
        count, latest = self.conn.execute(
            "SELECT COUNT(*), MAX(at) FROM login_failures WHERE at >= ?", (since,)).fetchone()
        return count, latest

    def forget_login_failures(self, before: float) -> None:
        self.conn.execute("DELETE FROM login_failures WHERE at < ?", (before,))

    # ------------------------------------------------------------ download links

    def save_link(self, token: str, payload: dict, expires_at: float) -> None:
        with self.immediate() as conn:
            conn.execute("DELETE FROM download_links WHERE expires_at < ?", (time.time(),))
            conn.execute("INSERT INTO download_links (token, payload, expires_at) VALUES (?, ?, ?)",
                         (token, json.dumps(payload, separators=(",", ":")), expires_at))

    def link_payload(self, token: str, now: float | None = None) -> dict | None:
        """What a link was made for, or None if there is no such link or it has expired."""
        row = self.conn.execute("SELECT payload FROM download_links WHERE token = ? AND expires_at >= ?",
                                   (token, time.time() if now is None else now)).fetchone()
        return json.loads(row[0]) if row else None

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _event(conn: sqlite3.Connection, task_id: int, status: str, api_status: str | None, note: str | None) -> None:
        conn.execute("INSERT INTO events (task_id, at, status, api_status, note) VALUES (?, ?, ?, ?, ?)",
                     (task_id, utcnow(), status, api_status, note))


def _lock_key(name: str) -> int:
    """A named advisory lock's key: the first 8 bytes of the name's SHA-256, as a signed bigint."""
    return int.from_bytes(hashlib.sha256(f"dashboard:{name}".encode()).digest()[:8], "big", signed=True)


def _owner_only(db_path: Path) -> None:
    """The database, created readable by its owner only. SQLite gives the -wal and -shm files it
    makes the database file's mode; files an older dashboard made readable by all are narrowed.

    An existing file is never opened here: closing any descriptor of a database drops every POSIX
    lock this process holds on it, those of the other connections included, which is how SQLite
    databases get corrupted. chmod needs no descriptor."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(db_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # another owner's file stays theirs
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)


def _task_dict(row: sqlite3.Row) -> dict:
    task = dict(row)
    for column in postgres.OWN_COLUMNS["tasks"]:
        task.pop(column, None)
    task["request"] = json.loads(task.pop("request_json") or "{}")
    return task
