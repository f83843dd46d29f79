"""Moving a team from its SQLite file and local folders to PostgreSQL and a bucket:

    DASHBOARD_DATABASE_URL=postgresql://user:password@host:5432/db DASHBOARD_STORAGE_URL=s3://bucket/prefix \\
        python -m lib.store.move --from data/dashboard.db --static static/

Each option defaults to the setting that names it (DASHBOARD_DB, DASHBOARD_DATABASE_URL,
DASHBOARD_STORAGE_URL; the bucket's endpoint and credentials come from the AWS_* settings).
Without a storage URL only the database moves and the files stay in the local folders.

What it does, in order:
1. Opens the SQLite file as the dashboard does (`Store(path)`: its migrations, its created log),
   then reads it with sqlite-utils, and opens the PostgreSQL database with `Store(url)`, which
   migrates it, so the target is a dashboard database of the same schema. Every column of the
   SQLite tables must exist there, and every SQLite table must be one this command knows (a
   newer dashboard's table is never silently left behind).
2. Copies the team's rows, ids kept: tasks, outputs, events, review_rows (every teammate's
   review, those of removed tasks too) and budgets. Each table in pages read by key (sqlite-utils'
   `rows_where`); the rows of a page PostgreSQL lacks go in as one transaction of
   `INSERT ... ON CONFLICT DO NOTHING`. A row already there with the same values is counted as
   such; one that differs is reported, never overwritten. A row PostgreSQL refuses (text with a
   NUL character, an output of a task that is not there) stops the move, named by its key, after
   the rows before it. Interrupted, a run keeps the pages it committed, and the next one picks up.
3. Moves each identity sequence (tasks, outputs, events) past the largest id either database has
   given, SQLite's `sqlite_sequence` included: a removed task's outputs are deleted, and their ids
   are never given again. A sequence is never moved back.
4. Copies each archived output, each poster beside it and each stashed input to
   `<prefix>/static/<name>` and `<prefix>/inputs/<name>` through the app's own bucket layer
   (lib/storage.py: the same client, timeouts, retries and plain error messages), streamed from
   disk and the local file left as it is (`S3Storage.upload(..., if_absent=True)`: a file up to
   `storage.UPLOAD_PART` in one PUT that fails if the key exists; a larger one as a multipart
   upload, visible under its key only once complete, once the key was found free: S3 takes no
   condition on a multipart upload, and no one else writes these names, random or content
   hashes, so a race is only with a second move into the same prefix, which the verification
   would report), checked against its SHA-256 (the one
   `outputs.sha256` records, a stashed input's own name, else computed). An object already under
   the key with the same size and SHA-256 is skipped; a different one is reported and left as it is.
   The local folders are read as the app reads them (`LocalStorage`): only the names the dashboard
   writes, and no link planted in a folder that leads elsewhere.
5. Verifies: each table's row count and a SHA-256 over its rows in key order (the SQLite columns,
   values normalised: a whole float as an integer), and spend_days; each file present in the
   bucket with the local size and SHA-256 (read back). Exits 1 on any difference or problem.

spend_days is not copied: PostgreSQL's triggers build it from the tasks as they are inserted (the
same triggers that fill the computed columns and the prompt search, which must run anyway), and the
verification holds it to SQLite's rows. That checks both: a trigger that counted differently, or a
SQLite summary that drifted, shows as a difference instead of being copied over. Its credits are
compared to 6 decimal places (sums in another order may differ in the last bit), and a day's row
that counts no task (SQLite keeps the row of a key a task left) is not compared. A task skipped as
already there fires no trigger (`ON CONFLICT DO NOTHING`), so a rerun counts nothing twice.

Not moved, on purpose: `changes` (the counters pages redraw on; PostgreSQL keeps its own),
`login_failures` (the password gate's recent wrong tries, minutes old and per machine),
`download_links` (short-lived tokens the pages make again on demand), `posters_checked` (how far
the poster backfill has looked: on PostgreSQL it looks once again), the FTS5 `prompts` tables
(PostgreSQL's prompt search is kept by its trigger), `task_days` and `task_ratings` (History's
counts and averages, built by PostgreSQL's triggers as the rows go in), `_sqlite_migrations` and
`sqlite_sequence` (the SQLite file's own bookkeeping; the sequences are moved in step 3), SQLite's other
`sqlite_` tables (the planner's statistics).

Stop the dashboard while moving: rows written after a table was copied are not moved, and a rerun
reports them as differing rather than overwriting anything. No password of a URL is printed
(`lib.store.connect.masked`); the bucket's credentials never are.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lib import settings, storage
from lib.store import connect, stash
from lib.store.schema import REVIEW_ROWS, SPEND_KEY

BATCH = 500
FILE_ERRORS = 20  # errors of the bucket itself (not of a file's content) before the files are given up


@dataclass(frozen=True)
class Table:
    name: str
    keys: tuple[str, ...]
    sequence: bool = False  # an identity `id` whose sequence moves past the largest id


COPIED = (Table("tasks", ("id",), True), Table("outputs", ("id",), True), Table("events", ("id",), True),
          Table(REVIEW_ROWS, ("task_id", "reviewer")), Table("budgets", ("teammate",)))
BUILT = Table("spend_days", SPEND_KEY)
SKIPPED = {
    "changes": "PostgreSQL keeps its own change counters",
    "login_failures": "recent wrong passwords, per machine and minutes old",
    "download_links": "short-lived tokens, made again on demand",
    "posters_checked": "how far the poster backfill has looked; PostgreSQL's looks once again",
    "prompts": "PostgreSQL's prompt search is kept by its trigger",
    "task_days": "History's counts, which PostgreSQL's triggers build from the tasks as they go in",
    "task_ratings": "History's averages, which PostgreSQL's triggers build from the reviews as they go in",
    "_sqlite_migrations": "the SQLite file's own bookkeeping",
    "sqlite_sequence": "moved into PostgreSQL's sequences",
}
SPEND_PLACES = 6


class Stopped(Exception):
    """The move cannot go on (a row PostgreSQL refused, a schema it does not know)."""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    bucket_errors: int = 0

    def say(self, line: str = "") -> None:
        print(printable(line), flush=True)

    def problem(self, line: str) -> None:
        self.problems.append(line)
        print(f"  PROBLEM: {printable(line)}", flush=True)


def printable(text: str) -> str:
    """A line as it may reach a terminal: a name from the history with control characters in it
    shows them escaped, never runs them."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def canonical(value, places: int | None = None):
    """A value as both databases' drivers give it back, in one form: a bool or a whole float as
    an integer, a float (rounded to `places` if given) as itself, bytes as hex."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if places is not None:
            value = round(value, places)
        if value.is_integer() and abs(value) < 2 ** 53:
            return int(value)
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": bytes(value).hex()}
    return value


_PLAIN = (str, int, type(None))


def row_text(row: Iterable, places: int | None = None) -> str:
    return json.dumps([v if type(v) in _PLAIN else canonical(v, places) for v in row], ensure_ascii=False,
                      allow_nan=True)


def same_row(mine: tuple, theirs: tuple) -> bool:
    return mine == theirs or row_text(mine) == row_text(theirs)  # equal values, or equal once normalised


def human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _key_value(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- the databases


def open_source(path: Path):
    """The SQLite history, migrated and its created log replayed as the dashboard would, read
    through sqlite-utils."""
    from sqlite_utils import Database

    from lib.store import Store

    if not path.is_file():
        raise Stopped(f"no SQLite history at {path}")
    Store(path).close()
    return Database(path)


def source_columns(src, report: Report, store) -> dict[str, list[str]]:
    """Each moved or verified table's SQLite columns, every one of them present in PostgreSQL."""
    known = {t.name for t in COPIED} | {BUILT.name} | set(SKIPPED)
    for name in src.table_names():
        if name not in known and not name.startswith(("prompts_", "sqlite_")):  # FTS5's and SQLite's own
            raise Stopped(f"the SQLite file has a table this command does not know ({name[:60]!r}); "
                          "move it with the dashboard version that made it")
    columns = {}
    for table in (*COPIED, BUILT):
        mine = [c.name for c in src[table.name].columns]
        theirs = set(pg_types(store, table.name))
        missing = [c for c in mine if c not in theirs]
        if missing:
            raise Stopped(f"PostgreSQL's {table.name} lacks the columns {', '.join(m[:40] for m in missing)}")
        columns[table.name] = mine
    return columns


def _key_where(table: Table) -> str:
    keys = ", ".join(quoted(k) for k in table.keys)
    return f"({keys}) > ({', '.join('?' * len(table.keys))})" if len(table.keys) > 1 else f"{keys} > ?"


def source_pages(src, table: Table, columns: list[str], batch: int) -> Iterator[list[tuple]]:
    """The table's rows in key order, `batch` at a time (sqlite-utils' rows_where, by key)."""
    after = None
    select = ", ".join(quoted(c) for c in columns)
    order = ", ".join(quoted(k) for k in table.keys)
    while True:
        rows = [tuple(r[c] for c in columns) for r in src[table.name].rows_where(
            _key_where(table) if after is not None else None, list(after or ()), order_by=order, select=select,
            limit=batch)]
        if not rows:
            return
        yield rows
        after = tuple(rows[-1][columns.index(k)] for k in table.keys)


def _insert_sql(table: Table, columns: list[str], n: int) -> str:
    one = f"({', '.join('?' * len(columns))})"
    return (f"INSERT INTO {quoted(table.name)} ({', '.join(quoted(c) for c in columns)}) VALUES "
            f"{', '.join([one] * n)} ON CONFLICT DO NOTHING RETURNING {', '.join(quoted(k) for k in table.keys)}")


def _array_insert_sql(table: Table, columns: list[str], types: dict[str, str]) -> str:
    """A page's rows in one statement of one parameter per column, an array of its values (a
    statement of a placeholder per value costs the driver more to read than PostgreSQL to run)."""
    names = ", ".join(quoted(c) for c in columns)
    arrays = ", ".join(f"?::{types[c]}[]" for c in columns)
    return (f"INSERT INTO {quoted(table.name)} ({names}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT DO NOTHING RETURNING {', '.join(quoted(k) for k in table.keys)}")


def pg_types(store, table: str) -> dict[str, str]:
    """PostgreSQL's columns of the table, each with its type."""
    return {r[0]: r[1] for r in store.conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ?", (table,), plain=True).fetchall()}


def _pg_rows(store, table: Table, columns: list[str], keys: list[tuple]) -> dict[tuple, tuple]:
    if not keys:
        return {}
    one = f"({', '.join('?' * len(table.keys))})"
    rows = store.conn.execute(
        f"SELECT {', '.join(quoted(c) for c in columns)} FROM {quoted(table.name)} "
        f"WHERE ({', '.join(quoted(k) for k in table.keys)}) IN ({', '.join([one] * len(keys))})",
        [v for key in keys for v in key], plain=True).fetchall()
    return _by_key(table, columns, rows)


def _key_text(table: Table, key: tuple) -> str:
    return ", ".join(f"{k} {_key_value(v)}" for k, v in zip(table.keys, key))


def _pg_range(store, table: Table, columns: list[str], first: tuple, last: tuple) -> dict[tuple, tuple]:
    """PostgreSQL's rows of the table from key `first` to key `last`, by key: one walk of its index."""
    keys = f"({', '.join(quoted(k) for k in table.keys)})"
    one = f"({', '.join('?' * len(table.keys))})"
    rows = store.conn.execute(
        f"SELECT {', '.join(quoted(c) for c in columns)} FROM {quoted(table.name)} "
        f"WHERE {keys} >= {one} AND {keys} <= {one}", [*first, *last], plain=True).fetchall()
    return _by_key(table, columns, rows)


def _by_key(table: Table, columns: list[str], rows) -> dict[tuple, tuple]:
    at = [columns.index(k) for k in table.keys]
    return {tuple(r[i] for i in at): tuple(r) for r in rows}


def copy_table(src, store, table: Table, columns: list[str], batch: int, report: Report) -> dict[str, int]:
    """Copies a page at a time: the rows PostgreSQL lacks are inserted in one transaction, those it
    has are compared with SQLite's."""
    counts = {"copied": 0, "same": 0, "differ": 0}
    at = [columns.index(k) for k in table.keys]
    key_of = lambda row: tuple(row[i] for i in at)
    types = pg_types(store, table.name)
    for rows in source_pages(src, table, columns, batch):
        there = _pg_range(store, table, columns, key_of(rows[0]), key_of(rows[-1]))
        fresh = [r for r in rows if key_of(r) not in there]
        inserted: set[tuple] = set()
        if fresh:
            try:
                with store.immediate() as conn:
                    inserted = {tuple(r) for r in conn.execute(
                        _array_insert_sql(table, columns, types), [list(c) for c in zip(*fresh)], plain=True)
                        .fetchall()}
            except sqlite3.Error:
                inserted = _copy_one_by_one(store, table, columns, fresh, report)
        counts["copied"] += len(inserted)
        # Written by someone else since the range was read, or in the way of another unique key.
        late = [key_of(r) for r in fresh if key_of(r) not in inserted]
        there.update(_pg_rows(store, table, columns, late))
        for row in rows:
            key = key_of(row)
            if key in inserted:
                continue
            if key in there and same_row(there[key], row):
                counts["same"] += 1
            else:
                counts["differ"] += 1
                what = "differs from" if key in there else "conflicts with another row of"
                report.problem(f"{table.name} {_key_text(table, key)}: the SQLite row {what} PostgreSQL's; "
                               "left as PostgreSQL has it")
    return counts


def _copy_one_by_one(store, table: Table, columns: list[str], rows: list[tuple], report: Report) -> set[tuple]:
    """A page PostgreSQL refused, row by row, to name the row it refuses; stops there."""
    inserted = set()
    at = [columns.index(k) for k in table.keys]
    for row in rows:
        try:
            with store.immediate() as conn:
                inserted |= {tuple(r) for r in conn.execute(_insert_sql(table, columns, 1), row, plain=True)
                             .fetchall()}
        except sqlite3.Error as exc:
            key = tuple(row[i] for i in at)
            report.problem(f"{table.name} {_key_text(table, key)}: {str(exc)[:300]}")
            raise Stopped(f"PostgreSQL refused a row of {table.name}; the rows before it are moved, "
                          "mend this one in the SQLite file and run the move again") from None
    return inserted


def move_sequences(src, store, report: Report) -> None:
    given = dict(src.execute("SELECT name, seq FROM sqlite_sequence").fetchall()) \
        if "sqlite_sequence" in src.table_names() else {}
    for table in COPIED:
        if not table.sequence:
            continue
        sequence = store.conn.execute("SELECT pg_get_serial_sequence(?, 'id')", (table.name,), plain=True) \
            .fetchone()[0]
        last, called = store.conn.execute(f"SELECT last_value, is_called FROM {sequence}", plain=True).fetchone()
        largest = store.conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quoted(table.name)}", plain=True) \
            .fetchone()[0]
        target = max(int(largest), int(given.get(table.name) or 0), int(last) if called else int(last) - 1)
        if target >= 1:
            store.conn.execute("SELECT setval(?::regclass, ?, true)", (sequence, target))
        report.say(f"  {table.name:<12} next id {target + 1}")


def _digest(pages: Iterable[list[tuple]], places: int | None) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for rows in pages:
        for row in rows:
            h.update(row_text(row, places).encode())
            h.update(b"\n")
            n += 1
    return n, h.hexdigest()


def _source_stream(src, sql: str) -> Iterator[list[tuple]]:
    cursor = src.conn.execute(sql)
    while rows := cursor.fetchmany(2000):
        yield [tuple(r) for r in rows]


def verify_tables(src, store, columns: dict[str, list[str]], report: Report) -> None:
    counted = ""
    for table in (*COPIED, BUILT):
        select = ", ".join(quoted(c) for c in columns[table.name])
        where = ""
        places = None
        if table is BUILT:
            where, places = " WHERE tasks <> 0", SPEND_PLACES
            counted = " (built from tasks)"
        sql = f"SELECT {select} FROM {quoted(table.name)}{where} ORDER BY {', '.join(quoted(k) for k in table.keys)}"
        mine = _digest(_source_stream(src, sql), places)
        theirs = _digest(store.stream(sql, (), 2000), places)
        same = mine == theirs
        line = (f"  {table.name:<12} {mine[0]} rows, sha256 {mine[1][:16]}{counted if table is BUILT else ''}: "
                + ("equal" if same else f"PostgreSQL has {theirs[0]} rows, sha256 {theirs[1][:16]}"))
        if same:
            report.say(line)
        else:
            report.problem(line.strip())


# ---------------------------------------------------------------- the files


@dataclass
class File:
    kind: str  # outputs, posters, inputs
    key: str  # under the bucket's prefix
    local: Path | None
    sha256: str | None  # as recorded, when it is
    size: int | None = None  # as recorded, when it is
    mime: str | None = None
    required: bool = True
    checked: bool = False  # the bucket's object read back and found equal
    failed: bool = False


def planned_files(src, local: storage.LocalStorage, report: Report) -> list[File]:
    """Every file the history refers to, each found (or not) in the local folders as the app finds
    its own: a name the dashboard writes, a regular file of its folder, no link leading elsewhere."""
    from lib import archive

    files: dict[str, File] = {}
    for path, sha, size, mime in src.conn.execute(
            "SELECT path, sha256, size, mime FROM outputs WHERE path IS NOT NULL ORDER BY id"):
        key = archive._key(path)  # the one rule every reader of a stored path holds to
        if key is None:
            report.problem(f"an output's path {str(path)[:80]!r} is not an archived file's; not moved")
            continue
        if key in files:
            if sha and files[key].sha256 and sha != files[key].sha256:
                report.problem(f"{key}: outputs record two different SHA-256 for it")
            continue
        files[key] = File("outputs", key, local.local_path(key), sha or None, size, mime)
        poster = archive._key(archive.poster_path(path))
        if poster and poster != key and (found := local.local_path(poster)):
            files.setdefault(poster, File("posters", poster, found, None, None, "image/jpeg", required=False))
    for request, removed in src.conn.execute("SELECT request_json, removed_at FROM tasks ORDER BY id"):
        try:
            named = {found[1]: found[0] for uri in stash.carried_uris(json.loads(request or "{}"))
                     if (found := stash.stashed(uri))}
        except (ValueError, RecursionError):
            continue  # not JSON (or nested past reading): moved as text, refers to no file
        for name, mime in named.items():
            key = stash.stash_key(name)
            found = files.get(key)
            if found is None:
                files[key] = found = File("inputs", key, local.local_path(key), Path(name).stem, None, mime,
                                          required=False)
            # A removed task's stashed inputs go once no task in view uses them.
            found.required = found.required or removed is None
    return list(files.values())


def copy_file(local: storage.LocalStorage, bucket: storage.Storage, item: File, report: Report) -> str:
    """Uploads one file; returns "uploaded", "there", "missing" or "problem"."""
    found = storage.digest(local, item.key) if item.local is not None else None
    if found is None:
        if item.required:
            report.problem(f"{item.key}: not in the local folder (the database lists it)")
            return "problem"
        return "missing"
    size, digest = found
    if item.sha256 and digest != item.sha256:
        report.problem(f"{item.key}: the local file's SHA-256 is not the one recorded for it; not moved")
        return "problem"
    if item.size is not None and item.kind == "outputs" and size != item.size:
        report.problem(f"{item.key}: the local file has {size} bytes, the database records {item.size}; not moved")
        return "problem"
    item.sha256, item.size = digest, size
    sent = bucket.upload(item.key, item.local, if_absent=True, mime=item.mime)
    if sent is not None:
        if sent != digest:
            with contextlib.suppress(OSError):
                bucket.delete(item.key)
            report.problem(f"{item.key}: the local file changed while it was uploaded; taken out, run again")
            return "problem"
        return "uploaded"
    # Already there (or written meanwhile): kept only if it is this file.
    if bucket.size(item.key) == size and storage.digest(bucket, item.key) == (size, digest):
        item.checked = True
        return "there"
    report.problem(f"{item.key}: the bucket holds a different object under this key; left as it is")
    return "problem"


def _error(item: File, exc: OSError) -> str:
    """A failed file's line: the bucket layer's plain sentence (never its endpoint, bucket or key)."""
    text = str(exc).strip()
    return f"{item.key}: {type(exc).__name__}" + (f": {text.splitlines()[0][:200]}" if text else "")


def copy_files(local: storage.LocalStorage, bucket: storage.Storage, files: list[File], report: Report) -> None:
    for kind in ("outputs", "posters", "inputs"):
        mine = [f for f in files if f.kind == kind]
        done = {"uploaded": [0, 0], "there": [0, 0], "missing": [0, 0], "problem": [0, 0]}
        for item in mine:
            try:
                outcome = copy_file(local, bucket, item, report)
            except OSError as exc:  # of the bucket (a StorageError), the network or the local disk
                outcome = "problem"
                report.problem(_error(item, exc))
                report.bucket_errors += 1
                if report.bucket_errors >= FILE_ERRORS:
                    raise Stopped(f"{FILE_ERRORS} errors of the bucket: the files are given up for this run") from None
            item.failed = outcome == "problem"
            done[outcome][0] += 1
            done[outcome][1] += item.size or 0
        report.say(f"  {kind:<8} {len(mine)} files: {done['uploaded'][0]} uploaded ({human(done['uploaded'][1])}), "
                   f"{done['there'][0]} already there ({human(done['there'][1])})"
                   + (f", {done['missing'][0]} gone with removed tasks" if done["missing"][0] else "")
                   + (f", {done['problem'][0]} with problems" if done["problem"][0] else ""))


def verify_files(bucket: storage.Storage, files: list[File], report: Report) -> None:
    checked = total = 0
    for item in files:
        if item.local is None or item.failed or item.sha256 is None or item.size is None:
            continue
        try:
            found = (item.size, item.sha256) if item.checked else storage.digest(bucket, item.key)
        except OSError as exc:
            report.problem(_error(item, exc))
            continue
        if found != (item.size, item.sha256):
            what = "missing" if found is None else f"{found[0]} bytes, sha256 {found[1][:16]}"
            report.problem(f"{item.key}: the bucket has {what}; the local file {item.size} bytes, "
                           f"sha256 {item.sha256[:16]}")
            continue
        checked += 1
        total += item.size
    report.say(f"  files        {checked} in the bucket ({human(total)}), sizes and SHA-256 equal to the local files")


# ---------------------------------------------------------------- the command


def run(source: Path, static_dir: Path, database_url: str, storage_url: str, batch: int = BATCH) -> int:
    from lib.store import Store

    report = Report()
    where = f"{connect.masked(storage_url)}" if storage_url else "the local folders (no storage URL: files stay)"
    report.say(f"Moving {source} and {static_dir} to {connect.masked(database_url)} and {where}")
    try:
        src = open_source(source)
        store = Store(database_url)
    except (Stopped, sqlite3.Error) as exc:
        report.problem(str(exc)[:300])
        report.say("NOT DONE: nothing was moved.")
        return 1
    try:
        with contextlib.closing(src.conn):
            src.conn.execute("BEGIN")  # one snapshot of the history for the copy and its verification
            try:
                columns = source_columns(src, report, store)
                report.say("tables:")
                for table in COPIED:
                    counts = copy_table(src, store, table, columns[table.name], batch, report)
                    report.say(f"  {table.name:<12} {sum(counts.values())} rows: {counts['copied']} copied, "
                               f"{counts['same']} already there"
                               + (f", {counts['differ']} differ" if counts["differ"] else ""))
                spend = src.execute("SELECT COUNT(*) FROM spend_days WHERE tasks <> 0").fetchone()[0]
                report.say(f"  {BUILT.name:<12} {spend} rows, built by PostgreSQL's triggers from the tasks")
                report.say("sequences:")
                move_sequences(src, store, report)
                files = []
                if storage_url:
                    local = storage.LocalStorage(static_dir, source.parent / "inputs")
                    files = planned_files(src, local, report)
                    bucket = storage.S3Storage(storage_url, settings.s3_options())
                    report.say("files:")
                    copy_files(local, bucket, files, report)
                report.say("verification:")
                verify_tables(src, store, columns, report)
                if storage_url:
                    verify_files(bucket, files, report)
            finally:
                src.conn.execute("ROLLBACK")
    except Stopped as exc:
        report.problem(str(exc))
    except settings.SettingError as exc:  # a storage URL without a bucket
        report.problem(str(exc))
    except (sqlite3.Error, OSError) as exc:
        report.problem(f"{type(exc).__name__}: {str(exc).strip()[:300]}")
    finally:
        store.close()
    if report.problems:
        report.say(f"NOT DONE: {len(report.problems)} problem(s) above; nothing was overwritten. "
                   "Mend them and run the move again: what is moved already is skipped.")
        return 1
    report.say("Moved and verified.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.store.move", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, default=None,
                        help="the SQLite history (default: DASHBOARD_DB)")
    parser.add_argument("--static", type=Path, default=None,
                        help="the archive folder (default: the checkout's static/)")
    parser.add_argument("--to-database", default=None, help="postgresql://... (default: DASHBOARD_DATABASE_URL)")
    parser.add_argument("--to-storage", default=None, help="s3://bucket/prefix (default: DASHBOARD_STORAGE_URL)")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"rows per transaction (default {BATCH})")
    args = parser.parse_args(argv)
    from lib import archive

    try:
        source = args.source or settings.db_path()
        database_url = (args.to_database or settings.DATABASE_URL.text()).strip()
        storage_url = (args.to_storage if args.to_storage is not None else settings.storage_url()).strip()
    except settings.SettingError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not connect.is_postgres(database_url):
        print("--to-database (or DASHBOARD_DATABASE_URL) takes a postgresql://user:password@host:5432/db URL",
              file=sys.stderr)
        return 2
    if storage_url and urlsplit(storage_url).scheme != "s3":
        print("--to-storage (or DASHBOARD_STORAGE_URL) takes an s3://bucket/prefix URL", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("--batch takes a whole number of 1 or more", file=sys.stderr)
        return 2
    return run(Path(source), args.static or archive.STATIC_DIR, database_url, storage_url, args.batch)


if __name__ == "__main__":
    sys.exit(main())
