"""History render: the server-side time of one run of pages/10_History.py
(one page of tasks, with filters and a sort) over a history of 1,000, 10,000
and 100,000 tasks.

The histories are written straight into SQLite (see `tests/support/history.make_history`):
two years of tasks from six teammates over eight models, 85 % succeeded with
an archived output, the rest failed or cancelled, ten still running; 15 % of
the tasks rated by one or two teammates (`rate_history`). A million tasks take
about nine minutes to generate: `--history FILE` times a copy of one made before
(`--keep FILE` keeps what this run generates). With
`--postgres URL` (or DASHBOARD_DATABASE_URL set), each history is also copied
into a schema of its own in that PostgreSQL database (COPY, with the indexes
built after the rows and the computed columns, the prompt among them, set by
the schema's own trigger; then VACUUM ANALYZE), and timed there too; the schema
is dropped at the end. Each figure is the wall time of `AppTest.run()` (the
whole script: set-up, every query, every element), repeated, after two warm-up
runs; each page is compiled once, as a server compiles it (`common.compile_pages_once`).

    python benchmarks/bench_history.py [--sizes 1000,10000,100000] [--runs 15] [--postgres URL]
        [--history FILE | --keep FILE]

Target (issue 17): p95 under 150 ms at 1,000,000 tasks on both backends.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from common import compile_pages_once, machine, median, percentile, print_table, rerun_times, temp_dir, verdict

# common, imported first, puts the checkout on sys.path for these
from lib.store import Store, postgres
from lib.store.connect import masked
from tests.support.apptest import open_page, quiet_streamlit_logs, use_database, use_simulator
from tests.support.history import make_history, rate_history

HISTORY_PAGE = "pages/10_History.py"
TITLE = re.compile(r"(\*\*)?\[?#\d+ · ")  # a task heading: `[#12 · Text to video · gen4.5](...)`

# name -> widget values set by key before the timed runs (None: the page as it opens).
SCENARIOS = {
    "as opened (newest first)": {},
    "status SUCCEEDED + model gen4.5, newest": {"status": ["SUCCEEDED"], "model": ["gen4.5"], "sort": "newest"},
    "status FAILED, highest cost": {"status": ["FAILED"], "sort": "cost"},
    "teammate Chen + type text to image, oldest": {"by": ["Chen"], "type": ["text_to_image"], "sort": "oldest"},
    "prompt contains 'lighthouse' (1 task in 4), newest": {"q": "lighthouse", "sort": "newest"},
    "prompt contains 'neon city' (1 in 120), newest": {"q": "neon city", "sort": "newest"},
    "best rated, all tasks": {"sort": "rating"},
    "status SUCCEEDED, newest, last page": {"status": ["SUCCEEDED"], "sort": "newest", "page": "last"},
}


def _set(at, key: str, value) -> bool:
    """Set a widget by key, whatever its kind; False if the page has no such widget."""
    for kind in ("multiselect", "selectbox", "text_input"):
        try:
            widget = getattr(at, kind)(key=key)
        except KeyError:
            continue
        if kind == "selectbox":
            # AppTest matches a selectbox's value by its label; the sort's label comes from lib.store.queries.
            from lib.store import queries
            widget.select_index(widget.options.index(queries.SORTS[value][0]))
        else:
            widget.set_value(value)
        return True
    return False


def _cards(at) -> int:
    """Tasks on the page, counted by their headings: a link to the task (markdown where AppTest
    runs the page as its own entry point), or an older bold title."""
    return sum(1 for m in at.markdown if TITLE.match(m.value))


def _last_page(at, db_path, status: str):
    """The same view opened at its last page, as a shared link to it would open
    (`?status=...&page=N`: History keeps its filters and page in the address)."""
    per_page = _cards(at)
    if not per_page:
        return None
    store = Store(db_path)
    matching = store.conn.execute("SELECT COUNT(*) FROM tasks WHERE status = ?", (status,)).fetchone()[0]
    store.close()
    last = open_page(HISTORY_PAGE, timeout=120, status=status, sort="newest", page=str(-(-matching // per_page)))
    expected = matching - (-(-matching // per_page) - 1) * per_page
    return last if _cards(last) == expected else None


def use_location(location: Path | str) -> None:
    """Pages run in this process read the SQLite file, or the PostgreSQL URL, from now on."""
    os.environ.pop("DASHBOARD_DATABASE_URL", None)
    if isinstance(location, str):
        os.environ["DASHBOARD_DATABASE_URL"] = location
    # On PostgreSQL the SQLite file's folder still holds what stays on the machine (the created log).
    use_database(location if isinstance(location, Path) else Path(tempfile.gettempdir()) / "bench-history.db")


# ---------------------------------------------------------------- the same history on PostgreSQL

COPIED = ("tasks", "outputs", "events", "review_rows")


@contextlib.contextmanager
def postgres_schema(url: str, kept: str | None = None) -> Iterator[tuple[str, bool]]:
    """(A URL whose connections see a schema of their own first (pg_trgm from `public`), whether
    it holds a copied history already). A new schema is dropped on the way out; a `kept` one is
    made if missing and stays (a million tasks take a minute to copy)."""
    import psycopg

    schema = kept or f"bench_{secrets.token_hex(5)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        copied = bool(admin.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                                    "AND table_name = 'tasks'", (schema,)).fetchone())
        admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema},public')}", copied
    finally:
        if not kept:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


def copy_to_postgres(db_path: Path, url: str) -> None:
    """The SQLite history's rows, ids kept, into the (empty, migrated) PostgreSQL store at `url`:
    COPY with the secondary indexes dropped and made again after, the triggers that count changes
    and spend left out meanwhile (History and the export read neither; `spend_days` stays empty)
    and the one that fills the computed columns and the prompt left in."""
    import psycopg

    Store(url).close()  # the schema, through the real migrations
    source = sqlite3.connect(db_path)
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("SET maintenance_work_mem = '256MB'")
        indexes = pg.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                             f"AND tablename IN ({', '.join(repr(t) for t in COPIED)}) "
                             "AND indexname NOT LIKE '%\\_pkey'").fetchall()
        for name, _ in indexes:
            pg.execute(f"DROP INDEX {name}")
        for table in COPIED:
            pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        pg.execute("ALTER TABLE tasks ENABLE TRIGGER tasks_computed")
        for table in COPIED:
            shown = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
            with pg.cursor().copy(f"COPY {table} ({', '.join(shown)}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {', '.join(shown)} FROM {table}"):
                    copy.write_row(row)
            pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        for _, definition in indexes:
            pg.execute(definition)
        postgres.fill_history(pg)  # History's counts and averages, whose triggers were left out
        for table in ("tasks", "outputs", "events"):
            pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)")
        pg.execute("VACUUM ANALYZE")
    source.close()


def _settle_start_up() -> None:
    """Wait for the work a server does once a start, before timing: the page's first run started
    the poller, whose poster backfill looks at the archived videos past the store's mark (all of
    them the first time, a million tasks: 530,000, several seconds of a core beside the runs)."""
    start = time.perf_counter()
    for thread in threading.enumerate():
        if thread.name == "poster-backfill":
            thread.join(600)
            print(f"waited {time.perf_counter() - start:.1f} s for the start's poster backfill", flush=True)


def time_scenarios(db_path: Path | str, runs: int) -> dict[str, tuple[float, float, int] | str]:
    use_location(db_path)
    results: dict[str, tuple[float, float, int] | str] = {}
    for name, values in SCENARIOS.items():
        at = open_page(HISTORY_PAGE, timeout=120)
        missing = [k for k, v in values.items() if k != "page" and not _set(at, k, v)]
        if missing:
            results[name] = f"n/a (no widget {', '.join(missing)})"
            continue
        at.run()
        _settle_start_up()
        if values.get("page") == "last":
            at = _last_page(at, db_path, values["status"][0])
            if at is None:
                results[name] = "n/a (the page address does not open the last page)"
                continue
        at.run()
        if at.exception:
            results[name] = f"error: {at.exception[0].message[:60]}"
            continue
        times = rerun_times(at, runs)
        results[name] = (median(times), percentile(times, 95), _cards(at))
    return results


def _tasks_in(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("DASHBOARD_DATABASE_URL", ""),
                        help="also time each history on this PostgreSQL database (default: DASHBOARD_DATABASE_URL)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="of sqlite,postgresql: which to time")
    parser.add_argument("--history", type=Path, help="time a copy of this generated history (one size) instead")
    parser.add_argument("--keep", type=Path, help="keep the history generated for the largest size here")
    parser.add_argument("--postgres-schema", metavar="NAME",
                        help="copy into this schema and keep it; if it holds a copy already, time that one (no "
                             "copy, and PostgreSQL done writing out the last one; with --history)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [b for b in args.backends.split(",") if b == "sqlite" or (b == "postgresql" and args.postgres)]
    quiet_streamlit_logs()
    compile_pages_once()
    print(f"Machine: {machine()}")
    if args.postgres:
        print(f"PostgreSQL: {masked(args.postgres)}")
    results = {}
    with temp_dir("history") as tmp:
        use_simulator(tmp / "simulator")
        if args.history:
            sizes = [_tasks_in(args.history)]
        for n in sizes:
            start = time.perf_counter()
            db = tmp / f"history-{n}.db"
            if args.history:
                shutil.copyfile(args.history, db)
                Store(db).close()  # migrated to this checkout's schema
                print(f"copied {n:,} tasks from {args.history} in {time.perf_counter() - start:.1f} s", flush=True)
            else:
                make_history(db, n, unfinished=10)
                reviews = rate_history(db)
                print(f"generated {n:,} tasks and {reviews:,} reviews in {time.perf_counter() - start:.1f} s",
                      flush=True)
                if args.keep and n == sizes[-1]:
                    shutil.copyfile(db, args.keep)
            if "sqlite" in backends:
                results["SQLite", n] = time_scenarios(db, args.runs)
            if "postgresql" in backends:
                with postgres_schema(args.postgres, args.postgres_schema) as (url, copied):
                    start = time.perf_counter()
                    if not copied:
                        copy_to_postgres(db, url)
                        print(f"copied {n:,} tasks into PostgreSQL in {time.perf_counter() - start:.1f} s",
                              flush=True)
                    results["PostgreSQL", n] = time_scenarios(url, args.runs)
            db.unlink()
    columns = list(results)
    rows = []
    for name in SCENARIOS:
        row = [name]
        for key in columns:
            r = results[key][name]
            row.append(r if isinstance(r, str) else f"{r[0] * 1000:.0f} / {r[1] * 1000:.0f} ms ({r[2]})")
        rows.append(row)
    print_table(f"History render, median / p95 of {args.runs} runs (tasks on the page)", ["scenario"] + [
        f"{backend}, {n:,} tasks" for backend, n in columns], rows)
    for backend in dict.fromkeys(b for b, _ in columns):
        largest = [r for r in results[backend, sizes[-1]].values() if not isinstance(r, str)]
        if largest:
            worst = max(p95 for _, p95, _ in largest)
            print(f"Target: every scenario under 150 ms at {sizes[-1]:,} tasks on {backend} (p95): "
                  f"{verdict(worst < 0.15)} (worst p95 {worst * 1000:.0f} ms)")


if __name__ == "__main__":
    sys.exit(main())
