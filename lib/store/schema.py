"""The store's schema: its tables, indexes, views and triggers, built by one chain of migrations
(m001 ... m016) that every database walks in order. The `migrations` table of a database records
the names it has applied, so a migration keeps its name and place once released; a change of the
schema is a new migration at the end."""
from __future__ import annotations

import re
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from lib import lifecycle

# tasks.submit_state: being sent, created on Runway, refused by it, or of unknown outcome (it may exist there).
SUBMIT_PENDING, SUBMITTED, REJECTED, UNKNOWN = "submitting", "submitted", "rejected", "unknown"

# Outputs: archive state.
OUT_PENDING, OUT_ARCHIVED, OUT_AT_RISK = "pending", "archived", "at_risk"


migrations = Migrations("dashboard")


@migrations()
def m001_tasks(db: Database) -> None:
    db["tasks"].create({
        "id": int,
        "task_uuid": str,  # Runway's id, once created
        "backend": str,  # "simulator" or the API base URL
        "task_type": str,
        "model": str,
        "endpoint": str,
        "request_json": str,
        "submit_state": str,
        "status": str,  # lifecycle: PENDING ... CANCELLED
        "api_status": str,  # raw status as Runway said it
        "progress": float,
        "failure": str,
        "failure_code": str,
        "estimated_credits": float,
        "cost_credits": float,
        "teammate": str,
        "group_id": str,
        "parent_task_id": int,
        "created_at": str,
        "submitted_at": str,
        "started_at": str,
        "finished_at": str,
        "updated_at": str,
        "next_poll_at": float,  # epoch seconds; the poll schedule
        "poll_errors": int,
        "last_error": str,
    }, pk="id", not_null={"backend", "task_type", "model", "status", "created_at"},
        defaults={"poll_errors": 0, "submit_state": SUBMIT_PENDING, "status": lifecycle.PENDING})
    db["tasks"].create_index(["next_poll_at"])
    db["tasks"].create_index(["status"])
    db["tasks"].create_index(["created_at"])
    db["tasks"].create_index(["task_uuid"])
    db["outputs"].create({
        "id": int,
        "task_id": int,
        "position": int,
        "url": str,
        "state": str,
        "path": str,  # relative to the project root, e.g. static/abc.mp4
        "mime": str,
        "size": int,
        "sha256": str,
        "attempts": int,
        "last_error": str,
        "next_attempt_at": float,
        "archived_at": str,
    }, pk="id", foreign_keys=[("task_id", "tasks", "id")], defaults={"attempts": 0, "state": OUT_PENDING})
    db["outputs"].create_index(["task_id", "position"], unique=True)
    db["outputs"].create_index(["state", "next_attempt_at"])
    db["events"].create({
        "id": int,
        "task_id": int,
        "at": str,
        "status": str,
        "api_status": str,
        "note": str,
    }, pk="id", foreign_keys=[("task_id", "tasks", "id")])
    db["events"].create_index(["task_id"])


@migrations()
def m002_reviews(db: Database) -> None:
    # History filters by these and sorts by time within them; with these
    # indexes a page of 100,000 tasks is read without a table scan.
    for column in ("task_type", "model", "teammate", "group_id"):
        db["tasks"].create_index([column, "created_at"])
    db["tasks"].create_index(["status", "created_at"])
    db["tasks"].create_index(["parent_task_id"])
    db["tasks"].add_column("cancel_requested_at", str)  # a 404 after our own DELETE means cancelled
    db["outputs"].create_index(["path"])  # is an archived file still used by another output?
    db["reviews"].create({
        "task_id": int,
        "rating": int,  # 1-5
        "notes": str,
        "winner": int,  # 1 for the task marked best in its comparison
        "reviewer": str,
        "updated_at": str,
    }, pk="task_id", foreign_keys=[("task_id", "tasks", "id")], defaults={"winner": 0})


# Columns no page shows: the poll and archive schedules (moved on every read and lease)
# and the clock of the last write. A change to any other column moves the change counter.
UNSHOWN_COLUMNS = {"tasks": {"next_poll_at", "updated_at"}, "outputs": {"next_attempt_at", "lease"},
                   "reviews": set()}
REVIEW_ROWS = "review_rows"  # since m014 the table of reviews; `reviews` is the view of those on tasks in view


def count_changes(db: Database) -> None:
    """(Re)create the triggers that add one to `changes.version` in the same transaction as any
    insert, delete or shown change of a task, output or review, so a page can tell in one row
    read whether it is out of date. A migration that adds a column calls this again."""
    for kind, unshown in UNSHOWN_COLUMNS.items():
        # Triggers go on the table, not on its view; they keep their names.
        table = REVIEW_ROWS if kind == "reviews" and db[REVIEW_ROWS].exists() else kind
        changed = " OR ".join(f"NEW.{c.name} IS NOT OLD.{c.name}" for c in db[table].columns
                              if c.name not in unshown)
        for event, when in (("INSERT", ""), ("DELETE", ""), ("UPDATE", f"WHEN {changed}")):
            name = f"{kind}_{event.lower()}_counted"
            db.execute(f"DROP TRIGGER IF EXISTS {name}")
            db.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} {when} "
                       "BEGIN UPDATE changes SET version = version + 1; END")


@migrations()
def m003_change_counter(db: Database) -> None:
    db.execute("CREATE TABLE changes (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
    db.execute("INSERT INTO changes VALUES (1, 0)")
    count_changes(db)


@migrations()
def m004_prompt_search(db: Database) -> None:
    # History's "Prompt contains": a trigram index of every task's prompt (rowid = task id) finds
    # the tasks holding any text of three characters or more without reading every request, which
    # took a scan of the table (~60 ms at 100,000 tasks, growing with the history).
    prompt = "json_extract(NEW.request_json, '$.promptText')"
    db.execute("CREATE VIRTUAL TABLE prompts USING fts5(prompt, tokenize = 'trigram')")
    db.execute("INSERT INTO prompts (rowid, prompt) SELECT id, json_extract(request_json, '$.promptText') FROM tasks")
    db.execute(f"CREATE TRIGGER tasks_prompt_insert AFTER INSERT ON tasks "
               f"BEGIN INSERT INTO prompts (rowid, prompt) VALUES (NEW.id, {prompt}); END")
    db.execute("CREATE TRIGGER tasks_prompt_delete AFTER DELETE ON tasks "
               "BEGIN DELETE FROM prompts WHERE rowid = OLD.id; END")
    db.execute(f"CREATE TRIGGER tasks_prompt_update AFTER UPDATE OF request_json ON tasks "
               f"BEGIN DELETE FROM prompts WHERE rowid = OLD.id; "
               f"INSERT INTO prompts (rowid, prompt) VALUES (NEW.id, {prompt}); END")


@migrations()
def m005_login_failures(db: Database) -> None:
    # Wrong passwords, for every session of every app process on this database: the
    # password gate's back-off and lockout count them here, not per browser tab.
    db.execute("CREATE TABLE login_failures (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL)")
    db.execute("CREATE INDEX login_failures_at ON login_failures (at)")


@migrations()
def m006_download_links(db: Database) -> None:
    # What a download link hands out (filters, prompt search text, an output id) stays here;
    # the link itself carries only a random token, so it reads as nothing and works on every
    # app process over this database, across restarts, until it expires.
    db.execute("CREATE TABLE download_links (token TEXT PRIMARY KEY, payload TEXT NOT NULL, "
               "expires_at REAL NOT NULL)")
    db.execute("CREATE INDEX download_links_expires_at ON download_links (expires_at)")


def _rebuild_with_autoincrement(db: Database, table: str, used: str) -> None:
    """Rebuild `table` with `id INTEGER PRIMARY KEY AUTOINCREMENT`, rows, ids, indexes and
    triggers as they were, its sequence past the largest id `used` (a SQL query) finds."""
    conn = db.conn
    create = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0]
    if "AUTOINCREMENT" in create.upper():
        return  # rebuilt already, by a run that stopped before recording the migration
    kept = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
        (table,))]
    rebuilt = f"{table}_rebuilt"
    new_create, found = re.subn(r'^CREATE TABLE\s+("\w+"|\[\w+\]|\w+)\s*\(\s*("id"|\[id\]|id)\s+INTEGER PRIMARY KEY',
                                f'CREATE TABLE "{rebuilt}" (\n   "id" INTEGER PRIMARY KEY AUTOINCREMENT', create)
    if found != 1:
        raise RuntimeError(f"unexpected schema of {table}: {create[:80]}")
    columns = ", ".join(f'"{c.name}"' for c in db[table].columns)
    conn.execute(new_create)
    conn.execute(f'INSERT INTO "{rebuilt}" ({columns}) SELECT {columns} FROM "{table}"')
    conn.execute(f'DROP TABLE "{table}"')
    conn.execute(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
    for sql in kept:
        conn.execute(sql)
    conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    conn.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES (?, COALESCE(({used}), 0))", (table,))


@migrations(transactional=False)  # foreign keys can only be switched off outside a transaction
def m007_ids_never_reused(db: Database) -> None:
    # Without AUTOINCREMENT, SQLite gives a removed newest task's id (and its outputs' ids) to the
    # next one, so a late download, an old bookmark or a link for the removed task landed on the
    # new one. The sequence starts past every id still referred to: the largest that survive.
    conn = db.conn
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _rebuild_with_autoincrement(db, "tasks", "SELECT MAX(m) FROM (SELECT MAX(id) AS m FROM tasks UNION ALL "
                                        "SELECT MAX(parent_task_id) FROM tasks UNION ALL SELECT MAX(task_id) "
                                        "FROM outputs UNION ALL SELECT MAX(task_id) FROM events UNION ALL "
                                        "SELECT MAX(task_id) FROM reviews UNION ALL SELECT MAX(rowid) FROM prompts)")
            _rebuild_with_autoincrement(db, "outputs", "SELECT MAX(id) FROM outputs")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")


@migrations()
def m008_archive_leases(db: Database) -> None:
    # A download is recorded only on the claim it was made for: the same output row, URL and lease.
    db["outputs"].add_column("lease", str)
    count_changes(db)


@migrations()
def m009_owner_only_inputs(db: Database) -> None:
    # Uploads stashed by an older dashboard were readable by every local user.
    stash = Path(db.conn.execute("PRAGMA database_list").fetchone()[2]).parent / "inputs"
    if stash.is_dir():
        stash.chmod(0o700)
        for stashed in stash.iterdir():
            stashed.chmod(0o600)


@migrations()
def m010_reviews_per_teammate(db: Database) -> None:
    # One review row per task was the last writer's: one teammate's star replaced another's four
    # and took over their note and winner pick. Now each teammate has their own row per task; a
    # review made before keeps its values under the name it was saved with ("" if none).
    db.execute("ALTER TABLE reviews RENAME TO reviews_shared")
    db["reviews"].create({
        "task_id": int,
        "reviewer": str,  # the teammate's name, "" for whoever gave none
        "rating": int,  # 1-5
        "notes": str,
        "winner": int,  # 1: this teammate's pick of the best in its comparison
        "updated_at": str,
    }, pk=("task_id", "reviewer"), not_null={"reviewer"}, foreign_keys=[("task_id", "tasks", "id")],
        defaults={"winner": 0, "reviewer": ""})
    db.execute("INSERT INTO reviews (task_id, reviewer, rating, notes, winner, updated_at) SELECT task_id, "
               "COALESCE(reviewer, ''), rating, notes, COALESCE(winner, 0), updated_at FROM reviews_shared")
    db.execute("DROP TABLE reviews_shared")  # its change-counting triggers go with it
    db["reviews"].create_index(["reviewer"])
    count_changes(db)


@migrations()
def m011_removed_tasks_kept(db: Database) -> None:
    # Removing a task deleted its row and with it what it cost, so the CSV no longer added up to
    # what the account spent. A removed task is now hidden: its row (request, status, credits,
    # events) stays, marked with when it was removed; its outputs, files and reviews go.
    db["tasks"].add_column("removed_at", str)
    # Few tasks are removed: pages keep the rest by id (`in_view`), which any index of tasks
    # answers, so a page still walks its index without reading every row it skips.
    db.execute("CREATE INDEX tasks_removed ON tasks (removed_at) WHERE removed_at IS NOT NULL")
    count_changes(db)


@migrations()
def m012_outputs_by_content(db: Database) -> None:
    # Which earlier output a media input is: an input carried in the request (stashed or inline) is
    # known by its SHA-256, as an archived output is, so a task's page can say "output of #N".
    db["outputs"].create_index(["sha256"])


# What each day cost, kept by triggers in the same transaction as the task's change: the Spend
# page reads a row per day, model, task type, teammate and backend instead of grouping every task.
# Measured at 100,000 tasks, the GROUP BY over a covering index of tasks took 330-670 ms for two
# years (a temporary B-tree over 100,000 rows); this table answers in a few ms.
SPEND_KEY = ("day", "model", "task_type", "teammate", "backend")
_SPENT_AS = {  # what one task adds to its day's row, in terms of the task row `T`
    "day": "substr(T.finished_at, 1, 10)", "model": "T.model", "task_type": "T.task_type",
    "teammate": "COALESCE(T.teammate, '')", "backend": "T.backend", "tasks": "1",
    "credits": "COALESCE(T.cost_credits, 0)", "no_cost_reported": "T.cost_credits IS NULL",
    "removed": "T.removed_at IS NOT NULL",
    "removed_credits": "CASE WHEN T.removed_at IS NOT NULL THEN COALESCE(T.cost_credits, 0) ELSE 0 END",
}
_SPEND_SUMS = [c for c in _SPENT_AS if c not in SPEND_KEY]
# A task counts once it has ended, unless Runway refused the request: that task never existed
# there and was charged nothing. (One whose outcome is unknown may have been created, so it counts.)
_SPEND_COUNTED = f"T.finished_at IS NOT NULL AND T.submit_state IS NOT '{REJECTED}'"


def _spend_add(row: str) -> str:
    values = ", ".join(v.replace("T.", f"{row}.") for v in _SPENT_AS.values())
    sums = ", ".join(f"{c} = {c} + excluded.{c}" for c in _SPEND_SUMS)
    counted = _SPEND_COUNTED.replace("T.", f"{row}.")
    return (f"INSERT INTO spend_days ({', '.join(_SPENT_AS)}) SELECT {values} WHERE {counted} "
            f"ON CONFLICT ({', '.join(SPEND_KEY)}) DO UPDATE SET {sums}; {_spend_moved(counted)}")


def _spend_remove(row: str) -> str:
    sums = ", ".join(f"{c} = {c} - ({_SPENT_AS[c].replace('T.', f'{row}.')})" for c in _SPEND_SUMS)
    key = " AND ".join(f"{c} = {_SPENT_AS[c].replace('T.', f'{row}.')}" for c in SPEND_KEY)
    counted = _SPEND_COUNTED.replace("T.", f"{row}.")
    return f"UPDATE spend_days SET {sums} WHERE {key} AND {counted}; {_spend_moved(counted)}"


def _spend_moved(counted: str) -> str:
    """Moves `changes.spend`, which Spend redraws on: only when what a task counts for changes,
    not on every poll's progress or a rating, which move `changes.version`."""
    return f"UPDATE changes SET spend = spend + 1 WHERE id = 1 AND {counted};"


@migrations()
def m013_spend(db: Database) -> None:
    db.execute("CREATE TABLE spend_days (day TEXT NOT NULL, model TEXT NOT NULL, task_type TEXT NOT NULL, "
               "teammate TEXT NOT NULL, backend TEXT NOT NULL, tasks INTEGER NOT NULL, credits REAL NOT NULL, "
               "no_cost_reported INTEGER NOT NULL, removed INTEGER NOT NULL, removed_credits REAL NOT NULL, "
               f"PRIMARY KEY ({', '.join(SPEND_KEY)})) WITHOUT ROWID")
    db.execute("ALTER TABLE changes ADD COLUMN spend INTEGER NOT NULL DEFAULT 0")
    sums = ", ".join(f"SUM({v})" for c, v in _SPENT_AS.items() if c not in SPEND_KEY)
    key = ", ".join(_SPENT_AS[c] for c in SPEND_KEY)
    db.execute(f"INSERT INTO spend_days SELECT {key}, {sums} FROM tasks T WHERE {_SPEND_COUNTED} "
               f"GROUP BY {key}")
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in (
        "finished_at", "submit_state", "cost_credits", "removed_at", "model", "task_type", "teammate", "backend"))
    db.execute(f"CREATE TRIGGER tasks_spend_insert AFTER INSERT ON tasks BEGIN {_spend_add('NEW')} END")
    db.execute(f"CREATE TRIGGER tasks_spend_update AFTER UPDATE ON tasks WHEN {changed} "
               f"BEGIN {_spend_remove('OLD')} {_spend_add('NEW')} END")
    db.execute(f"CREATE TRIGGER tasks_spend_delete AFTER DELETE ON tasks BEGIN {_spend_remove('OLD')} END")
    # Each teammate's monthly budget, in credits, set on the Spend page.
    db.execute("CREATE TABLE budgets (teammate TEXT PRIMARY KEY, monthly_credits REAL NOT NULL "
               "CHECK (monthly_credits >= 0), updated_at TEXT NOT NULL)")


@migrations()
def m014_reviews_kept(db: Database) -> None:
    # Removing a task deleted its reviews, so the team's votes on it left the Models leaderboard.
    # They now stay in `review_rows`; `reviews` is a view of the ones on tasks in view, so every
    # page and export that reads reviews still leaves a removed task's out. `compared`: the task
    # ids a winner vote was made among (Compare opens a group or any list of tasks), for pairs.
    db.execute(f"ALTER TABLE reviews RENAME TO {REVIEW_ROWS}")
    db[REVIEW_ROWS].add_column("compared", str)
    # The leaderboard groups every task by model: with the columns it reads in one index, its
    # counts walk the index in order instead of sorting the table (at 100,000 tasks 34 ms, not 230).
    db.execute("CREATE INDEX tasks_by_model ON tasks (task_type, model, status, failure_code, created_at, teammate, "
               "cost_credits, submitted_at, started_at, finished_at)")
    db.execute(f"CREATE VIEW reviews AS SELECT * FROM {REVIEW_ROWS} "
               "WHERE task_id NOT IN (SELECT id FROM tasks WHERE removed_at IS NOT NULL)")
    count_changes(db)


@migrations()
def m015_leaderboard_columns(db: Database) -> None:
    # What the leaderboard groups by, computed from a task's own columns: each expression was read
    # from every row on every render (100,000 tasks: 0.3 s for the times, 0.25 s for the prices).
    duration = "json_extract(request_json, '$.duration')"
    submitted = "julianday(COALESCE(submitted_at, created_at))"
    columns = {
        "request_ratio": ("TEXT", "json_extract(request_json, '$.ratio')"),
        # Seconds asked for, when the request says a positive number: what an output second costs.
        "request_seconds": ("REAL", f"CASE WHEN typeof({duration}) IN ('integer', 'real') AND {duration} > 0 "
                                    f"THEN {duration} END"),
        "seconds_to_end": ("REAL", f"ROUND((julianday(finished_at) - {submitted}) * 86400, 1)"),
        "seconds_queued": ("REAL", f"ROUND((julianday(started_at) - {submitted}) * 86400, 1)"),
    }
    # VIRTUAL columns cost no space in the table, and PRAGMA table_info (the change triggers, a
    # rebuild) does not list them; in an index their values are stored, so the leaderboard reads
    # them from there instead of parsing JSON and dates per task (at 100,000 tasks 15 ms, not 300).
    for name, (kind, expression) in columns.items():
        db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind} AS ({expression}) VIRTUAL")
    db.execute("DROP INDEX tasks_by_model")
    db.execute("CREATE INDEX tasks_by_model ON tasks (task_type, model, status, failure_code, created_at, teammate, "
               "request_ratio, cost_credits, request_seconds, seconds_to_end, seconds_queued)")
    # The times' histograms group by model and seconds: in these indexes' order, with no sort.
    db.execute("CREATE INDEX tasks_by_time_to_end ON tasks (task_type, model, seconds_to_end, status, created_at, "
               "teammate, request_ratio)")
    db.execute("CREATE INDEX tasks_by_time_queued ON tasks (task_type, model, seconds_queued, created_at, teammate, "
               "request_ratio)")


# How many tasks History shows, kept by triggers like spend_days: a row per day the task was
# created, status, task type, model and teammate, counting the tasks in view (not removed). History
# counts what its filters select from here whenever they are of these columns and whole UTC days
# (lib.store.queries.count). Measured at 1,000,000 tasks on SQLite: all tasks 156 ms, status and
# model 375 ms, counted from the tasks.
HISTORY_KEY = ("status", "task_type", "model", "teammate", "day")
HISTORY_AS = {"status": "T.status", "task_type": "T.task_type", "model": "T.model",
              "teammate": "COALESCE(T.teammate, '')", "day": "substr(T.created_at, 1, 10)"}
HISTORY_COUNTED = "T.removed_at IS NULL"
HISTORY_CHANGED = ("status", "task_type", "model", "teammate", "created_at", "removed_at")
# The cost sort's expression: indexed, so "Highest cost" walks an index instead of sorting every task.
COST_SORTED = "COALESCE(cost_credits, estimated_credits)"

POSTERS_CHECKED = "posters_checked"  # one row: how far the poster backfill has looked
RATED = ("task_id INTEGER PRIMARY KEY", "rating_sum INTEGER NOT NULL", "votes INTEGER NOT NULL",
         "average REAL NOT NULL")
# A task's row of task_ratings, made from its reviews (`?` or a trigger's `NEW.task_id` narrows it).
_RATINGS_OF = (f"SELECT task_id, SUM(rating), COUNT(rating), CAST(SUM(rating) AS REAL) / COUNT(rating) "
               f"FROM {REVIEW_ROWS} WHERE rating IS NOT NULL")


def _rated(row: str) -> str:
    """The trigger's statements that make the task's row of task_ratings again from its reviews."""
    return (f"DELETE FROM task_ratings WHERE task_id = {row}.task_id; "
            f"INSERT INTO task_ratings {_RATINGS_OF} AND task_id = {row}.task_id GROUP BY task_id;")


def _history_add(row: str) -> str:
    values = ", ".join(v.replace("T.", f"{row}.") for v in HISTORY_AS.values())
    return (f"INSERT INTO task_days ({', '.join(HISTORY_AS)}, tasks) SELECT {values}, 1 "
            f"WHERE {HISTORY_COUNTED.replace('T.', f'{row}.')} "
            f"ON CONFLICT ({', '.join(HISTORY_KEY)}) DO UPDATE SET tasks = tasks + 1;")


def _history_remove(row: str) -> str:
    key = " AND ".join(f"{c} = {HISTORY_AS[c].replace('T.', f'{row}.')}" for c in HISTORY_KEY)
    return f"UPDATE task_days SET tasks = tasks - 1 WHERE {key} AND {HISTORY_COUNTED.replace('T.', f'{row}.')};"


@migrations()
def m016_history_counts(db: Database) -> None:
    db.execute("CREATE TABLE task_days (status TEXT NOT NULL, task_type TEXT NOT NULL, model TEXT NOT NULL, "
               "teammate TEXT NOT NULL, day TEXT NOT NULL, tasks INTEGER NOT NULL, "
               f"PRIMARY KEY ({', '.join(HISTORY_KEY)})) WITHOUT ROWID")
    key = ", ".join(HISTORY_AS[c] for c in HISTORY_KEY)
    db.execute(f"INSERT INTO task_days ({', '.join(HISTORY_KEY)}, tasks) SELECT {key}, COUNT(*) FROM tasks T "
               f"WHERE {HISTORY_COUNTED} GROUP BY {key}")
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in HISTORY_CHANGED)
    db.execute(f"CREATE TRIGGER tasks_history_insert AFTER INSERT ON tasks BEGIN {_history_add('NEW')} END")
    db.execute(f"CREATE TRIGGER tasks_history_update AFTER UPDATE ON tasks WHEN {changed} "
               f"BEGIN {_history_remove('OLD')} {_history_add('NEW')} END")
    db.execute(f"CREATE TRIGGER tasks_history_delete AFTER DELETE ON tasks BEGIN {_history_remove('OLD')} END")
    # "Highest cost", with and without a status: an index in the sort's order (NULLs sort first in
    # SQLite, so walked backwards this is `DESC NULLS LAST`).
    db.execute(f"CREATE INDEX tasks_by_cost ON tasks ({COST_SORTED}, id)")
    db.execute(f"CREATE INDEX tasks_by_status_cost ON tasks (status, {COST_SORTED}, id)")
    # The outputs still to archive, which every History render counts: the few, not every output.
    db.execute(f"CREATE INDEX outputs_unarchived ON outputs (state) WHERE state != '{OUT_ARCHIVED}'")
    # Best rated: each rated task's average, kept from its reviews, in an index of the sort's order,
    # so a page walks it instead of averaging every review (200,000 of them: 1.1 s a page).
    db.execute(f"CREATE TABLE task_ratings ({', '.join(RATED)})")
    db.execute("CREATE INDEX task_ratings_by_average ON task_ratings (average, task_id)")
    db.execute(f"INSERT INTO task_ratings {_RATINGS_OF} GROUP BY task_id")
    for event, rows in (("INSERT", ("NEW",)), ("UPDATE OF task_id, rating", ("OLD", "NEW")), ("DELETE", ("OLD",))):
        name = f"review_rows_rated_{event.split()[0].lower()}"
        body = " ".join(_rated(row) for row in rows)
        db.execute(f"CREATE TRIGGER {name} AFTER {event} ON {REVIEW_ROWS} BEGIN {body} END")
    # A database whose planner has statistics (ANALYZE was run on it) gets them for the new indexes
    # too: with figures for the old indexes and none for these, SQLite takes a new one as the most
    # selective, and sorted a quarter of a million tasks for a page of "Newest first".
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        for index in ("tasks_by_cost", "tasks_by_status_cost", "outputs_unarchived", "task_ratings"):
            db.execute(f"ANALYZE {index}")


@migrations()
def m017_posters_checked(db: Database) -> None:
    # How far the poster backfill has looked (`Poller.backfill_posters`): every archived video up
    # to this output id has its poster, or ffmpeg could not make one. A start looks past it only,
    # not again at every archived video (a million tasks: 530,000 of them, 10-40 s of a core).
    db.execute(f"CREATE TABLE {POSTERS_CHECKED} (id INTEGER PRIMARY KEY CHECK (id = 1), "
               "through_output INTEGER NOT NULL)")
    db.execute(f"INSERT INTO {POSTERS_CHECKED} (id, through_output) VALUES (1, 0)")
