"""The store's connection to its database: SQLite (a file, the default) or PostgreSQL (a URL in
DASHBOARD_DATABASE_URL), behind one way of running SQL, so every query of the dashboard is
written once.

Both connections take the same SQL: `?` placeholders, the SQL both databases speak, and, where
they differ, a fragment of the connection's `Dialect` (`store.dialect.json_text(...)`). Both run
in autocommit, with explicit `BEGIN ... COMMIT` where a write needs one (`Store.immediate`).
Rows read by key or by index, like `sqlite3.Row`, and errors are `sqlite3`'s classes (the
DB-API names), so code that catches `sqlite3.OperationalError` catches a PostgreSQL that went
away too. A PostgreSQL error never carries the database's URL or password: a connection that
cannot be made says so in words of its own.

SQLite goes through the standard library's `sqlite3` (and sqlite-utils, which builds the SQLite
schema); PostgreSQL through psycopg 3, imported only when a PostgreSQL URL is set, so the
default install never loads it.
"""
from __future__ import annotations

import functools
import logging
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 10


def is_postgres(location: object) -> bool:
    return isinstance(location, str) and location.partition("://")[0].lower() in POSTGRES_SCHEMES


def _parts(url: str) -> tuple[str, str, str, str]:
    """(scheme, user info, host and path, query) of a URL, read as a person may have typed it: the
    user info runs to the LAST `@`, since a password may hold `/`, `?`, `#` or `@` unencoded
    (which `urllib.parse` would read as the start of the path, query or fragment, and show)."""
    scheme, _, rest = url.partition("://")
    at = rest.rfind("@")
    userinfo, place = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    place, _, query = place.split("#", 1)[0].partition("?")
    return scheme, userinfo, place, query


def masked(url: str) -> str:
    """The URL with its password (and any query, which may carry one) replaced by `***`: the only
    form in which a database or storage URL is ever mentioned. Never raises, whatever the text."""
    if "://" not in url:
        return "***"
    scheme, userinfo, place, query = _parts(url)
    user = userinfo.split(":", 1)[0]
    who = f"{user}:***@" if ":" in userinfo else f"{user}@" if userinfo else ""
    return f"{scheme}://{who}{place}{'?***' if query else ''}"


def identity(url: str) -> str:
    """What names a database without its password: the URL, query and all, with the password
    left out, so a key made from it (a hash, in caches and logs) cannot be tried against
    guessed passwords, and stays the same when the password is changed."""
    scheme, userinfo, place, query = _parts(url)
    user = userinfo.split(":", 1)[0]
    kept = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "password"])
    return f"{scheme}://{user}@{place}" + (f"?{kept}" if kept else "")


# ---------------------------------------------------------------- dialects


@dataclass(frozen=True)
class Dialect:
    """The SQL that differs between the two databases, one fragment each. Everything else is
    written once, in the SQL both speak."""

    name: str

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def json_text(self, column: str, key: str) -> str:
        """A top-level value of a JSON text column, as text (numbers too)."""
        if self.postgres:
            return f"(({column})::jsonb ->> '{key}')"
        return f"CAST(json_extract({column}, '$.{key}') AS TEXT)"

    def json_value(self, column: str, key: str) -> str:
        """A top-level value of a JSON text column as the database types it (a number stays one)."""
        if self.postgres:
            return f"(({column})::jsonb -> '{key}')"
        return f"json_extract({column}, '$.{key}')"

    def json_ids(self, column: str) -> str:
        """A table `value` of the integers in a JSON array text column (for a FROM clause)."""
        if self.postgres:
            return f"jsonb_array_elements_text(({column})::jsonb) AS {{alias}}(value)"
        return f"json_each({column}) AS {{alias}}"

    def seconds_between(self, start: str, end: str) -> str:
        """Seconds from one ISO 8601 UTC text time to another, as a real number."""
        if self.postgres:
            return f"EXTRACT(EPOCH FROM (({end})::timestamptz - ({start})::timestamptz))::float8"
        return f"((julianday({end}) - julianday({start})) * 86400.0)"

    def joined(self, expression: str, separator: str, distinct: bool = False) -> str:
        """The group's values as one text, `separator` between them."""
        if self.postgres:
            return f"string_agg({'DISTINCT ' if distinct else ''}({expression})::text, {separator})"
        if distinct:  # SQLite's DISTINCT aggregate takes one argument: its separator is ','
            return f"group_concat(DISTINCT {expression})"
        return f"group_concat({expression}, {separator})"

    def position(self, needle: str, haystack: str) -> str:
        """1-based position of `needle` in `haystack`, 0 when absent."""
        return f"strpos({haystack}, {needle})" if self.postgres else f"instr({haystack}, {needle})"

    def greatest(self, *values: str) -> str:
        return f"{'GREATEST' if self.postgres else 'MAX'}({', '.join(values)})"

    def newline(self) -> str:
        return "chr(10)" if self.postgres else "char(10)"

    def like(self) -> str:
        """LIKE as SQLite does it: case-insensitive for ASCII."""
        return "ILIKE" if self.postgres else "LIKE"

    def indexed_by(self, index: str) -> str:
        """SQLite's planner hint; PostgreSQL plans for itself."""
        return "" if self.postgres else f"INDEXED BY {index}"

    def skip_locked(self, of: str = "") -> str:
        """Rows another transaction holds are passed over, not waited for (PostgreSQL; SQLite's
        writes are one at a time anyway). `of`: the table (or alias) whose rows are locked, when
        the query joins others that must stay free (`FOR UPDATE OF o`)."""
        if not self.postgres:
            return ""
        return f"FOR UPDATE OF {of} SKIP LOCKED" if of else "FOR UPDATE SKIP LOCKED"

    def json_array(self, *values: str) -> str:
        """A JSON array of the values, as text (PostgreSQL's json would come back parsed)."""
        if self.postgres:
            return f"(json_build_array({', '.join(values)}))::text"
        return f"json_array({', '.join(values)})"


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


# ---------------------------------------------------------------- SQLite


def connect_sqlite(path, busy_timeout_s: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


# ---------------------------------------------------------------- PostgreSQL


class Row:
    """A row read by index or by column name, as `sqlite3.Row` is; `dict(row)` works."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: tuple, index: dict[str, int]):
        self._values = values
        self._index = index

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, (Row, tuple)) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values))!r})"


def _rows(cursor):
    names = [d.name for d in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}
    return lambda values: Row(tuple(values), index)


@functools.lru_cache(maxsize=2048)
def pg_sql(sql: str) -> str:
    """`?` placeholders as psycopg's `%s`, and a literal `%` doubled, outside quoted text and
    inside it alike (psycopg reads `%` everywhere); a `?` inside quotes stays itself."""
    out, quote = [], None
    for char in sql:
        if quote:
            if char == quote:
                quote = None
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


@functools.cache
def _numeric_loader():
    """NUMERIC (what SUM, AVG and ROUND give) as an int when the text is whole, else a float,
    as SQLite's numbers come back; never a Decimal."""
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        def load(self, data):
            text = bytes(data)
            return int(text) if text.lstrip(b"-").isdigit() else float(text)

    return NumericLoader


class UnreachableDatabase(sqlite3.OperationalError):
    """PostgreSQL could not be reached or dropped the connection; the next statement reconnects."""


def _translated(exc: Exception) -> sqlite3.Error:
    """A psycopg error as the sqlite3 class of the same DB-API name, with a message that names no
    host, user or password."""
    import psycopg

    sqlstate = getattr(exc, "sqlstate", None) or ""
    # No state (the socket closed, refused or timed out), a connection exception (08...), or the
    # server going down under the session (57P01-57P03: terminated, crashed, starting up).
    gone = not sqlstate or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and gone:
        return UnreachableDatabase("The PostgreSQL database is not reachable (connection refused, lost or timed "
                                   "out); the dashboard reconnects and retries.")
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for name in ("IntegrityError", "OperationalError", "ProgrammingError", "DataError", "NotSupportedError",
                 "InternalError"):
        if isinstance(exc, getattr(psycopg, name)):
            return getattr(sqlite3, name)(f"PostgreSQL: {first_line}")
    return sqlite3.DatabaseError(f"PostgreSQL: {first_line}")


def _refused(exc: Exception) -> sqlite3.Error:
    """Why a connection could not be made, in the dashboard's words only."""
    # libpq's connection errors carry no SQLSTATE: its text tells them apart, and is then dropped.
    sqlstate, text = getattr(exc, "sqlstate", None) or "", str(exc)
    if sqlstate.startswith("28") or "authentication failed" in text or "no password supplied" in text:
        return sqlite3.OperationalError("PostgreSQL refused the user name or password in DASHBOARD_DATABASE_URL.")
    if sqlstate == "3D000" or ("database" in text and "does not exist" in text):
        return sqlite3.OperationalError("The database named in DASHBOARD_DATABASE_URL does not exist on the server.")
    if "invalid" in text and "connection option" in text or "missing \"=\"" in text:
        return sqlite3.OperationalError("DASHBOARD_DATABASE_URL is not a URL PostgreSQL can use "
                                        "(postgresql://user:password@host:5432/database).")
    if sqlstate and not sqlstate.startswith("08") and sqlstate not in ("57P01", "57P02", "57P03"):
        return sqlite3.OperationalError(f"PostgreSQL refused the connection (SQLSTATE {sqlstate}).")
    import psycopg

    if isinstance(exc, psycopg.OperationalError):  # no answer: refused, timed out, closed
        return _translated(exc)
    # Anything else is libpq refusing the URL itself, and its words quote the part it could not
    # read, which may be the password: none of them is passed on.
    return sqlite3.OperationalError("DASHBOARD_DATABASE_URL is not a URL PostgreSQL can use "
                                    "(postgresql://user:password@host:5432/database; a password with "
                                    "characters such as @ / ? # % must be percent-encoded).")


class _PgCursor:
    """What a statement returns: rows, their description and how many a write touched."""

    def __init__(self, cursor, plain: bool = False):
        self._cursor = cursor
        self._plain = plain
        self.rowcount = cursor.rowcount
        self.description = cursor.description

    def _made(self, values):
        if values is None or self._plain:
            return values
        return _rows(self._cursor)(values)

    def fetchone(self):
        return self._made(self._cursor.fetchone())

    def fetchall(self) -> list:
        rows = self._cursor.fetchall()
        if self._plain:
            return rows
        make = _rows(self._cursor)
        return [make(v) for v in rows]

    def fetchmany(self, size: int) -> list:
        rows = self._cursor.fetchmany(size)
        if self._plain:
            return rows
        make = _rows(self._cursor)
        return [make(v) for v in rows]

    def __iter__(self):
        return iter(self.fetchall())


class PgConnection:
    """One PostgreSQL connection in autocommit, taking the store's SQL. A connection that broke
    (the server restarted, the network dropped) is made again by the next statement outside a
    transaction; the statement that met the break raises `UnreachableDatabase`, and whoever ran it
    retries as it would after any failed write (the poller on its next round)."""

    def __init__(self, url: str):
        self.url = url
        self._conn = None
        self._connect()

    def _connect(self) -> None:
        import psycopg
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            # The server's and libpq's words name the host, port, user and at times the URL's
            # text: none of them is passed on, only what to fix.
            raise _refused(exc) from None
        conn.adapters.register_loader("numeric", _numeric_loader())
        # No JIT: its cost estimates of the store's longer statements (the CSV export's few subqueries
        # a row over every row) made PostgreSQL compile them first, seconds before the first row,
        # for plans that do little per row (30,000 tasks: 4.1 s with it, 1.1 s without).
        conn.execute("SET jit = off")
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        # A connection that broke has no transaction left: the server rolled it back.
        return not self.broken and self._conn.info.transaction_status != TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self._conn is None or self._conn.closed or self._conn.broken

    def _live(self):
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._connect()
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = (), *, plain: bool = False) -> _PgCursor:
        """Run one statement. A read or a BEGIN outside a transaction that meets a connection the
        server dropped since the last statement (it restarted) runs again once on a new
        connection: it changed nothing, so it can. A write, or anything inside a transaction,
        raises `UnreachableDatabase` instead: whether it took effect is the caller's to find out."""
        import psycopg

        retry = not self.in_transaction and _harmless(sql)
        while True:
            conn = self._live()
            try:
                cursor = conn.execute(pg_sql(sql), tuple(params)) if params else conn.execute(sql)
            except psycopg.Error as exc:
                error = _translated(exc)
                if retry and isinstance(error, UnreachableDatabase) and self.broken:
                    retry = False
                    log.info("the PostgreSQL connection was lost; reading again on a new one")
                    continue
                raise error from None
            return _PgCursor(cursor, plain)

    def executemany(self, sql: str, rows) -> _PgCursor:
        import psycopg

        conn = self._live()
        cursor = conn.cursor()
        try:
            cursor.executemany(pg_sql(sql), [tuple(r) for r in rows])
        except psycopg.Error as exc:
            raise _translated(exc) from None
        return _PgCursor(cursor)

    def stream(self, sql: str, params: Sequence[Any], batch: int) -> Iterator[list[tuple]]:
        """The rows as plain tuples in batches, through a server-side cursor: the server holds the
        result, this process one batch at a time."""
        import psycopg

        conn = self._live()
        try:
            with conn.transaction(), conn.cursor(name=f"stream_{time.monotonic_ns()}") as cursor:
                cursor.itersize = batch
                cursor.execute(pg_sql(sql), tuple(params))
                while rows := cursor.fetchmany(batch):
                    yield rows
        except psycopg.Error as exc:
            raise _translated(exc) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _harmless(sql: str) -> bool:
    """A statement that changes nothing, so running it twice is running it once: a BEGIN, or a
    plain SELECT (no locking clause, no function known to change anything)."""
    text = sql.strip().upper()
    if text == "BEGIN":
        return True
    return text.startswith("SELECT") and "FOR UPDATE" not in text and "NEXTVAL" not in text \
        and "PG_ADVISORY" not in text


_SCHEME = re.compile(r"^postgres(ql)?(\+\w+)?://")


def connect_postgres(url: str) -> PgConnection:
    """A connection to `url` (`postgresql://user:pass@host:5432/db`)."""
    return PgConnection(_SCHEME.sub("postgresql://", url))
