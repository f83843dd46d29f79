"""The history's queries: what History lists, counts and totals (`Filters`, sort
orders, pages), what a teammate's news, Compare's groups and a task's lineage
read, and the rows of the CSV export as SQLite builds them.

Filters, sort orders and pages are SQL over indexed columns, so a page stays
fast with 100,000 tasks; the exports walk the same filters in batches instead
of loading the history. Everything here returns rows or dicts: what a task's
inputs are in words is history.py's, how an export file is written export.py's.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta

from lib import archive, catalog
from lib.store.connect import SQLITE, Dialect
from lib.store.db import Store, team_review
from lib.store.sql import in_view, placeholders

PAGE_SIZE = 25

# Sort orders: key (kept in the page address) -> (label, ORDER BY). Each term is written out with
# its direction and where NULLs go, so that the order can be walked backwards (`_reversed`): a page
# past the middle is read from the far end, its offset the shorter way.
SORTS = {
    "newest": ("Newest first", (("t.created_at", "DESC"), ("t.id", "DESC"))),
    "oldest": ("Oldest first", (("t.created_at", "ASC"), ("t.id", "ASC"))),
    # The expression of schema.COST_SORTED, whose index walks it.
    "cost": ("Highest cost", (("COALESCE(t.cost_credits, t.estimated_credits)", "DESC NULLS LAST"), ("t.id", "DESC"))),
    # The average is computed apart (`_rated_page`): the tasks someone rated, best first, then the rest.
    "rating": ("Best rated", (("t.id", "DESC"),)),
    "model": ("Model A–Z", (("t.model", "ASC"), ("t.created_at", "DESC"), ("t.id", "DESC"))),
}
_FLIPPED = {"DESC NULLS LAST": "ASC NULLS FIRST", "ASC NULLS FIRST": "DESC NULLS LAST", "DESC": "ASC", "ASC": "DESC"}


def _order(sort: str, backwards: bool = False) -> str:
    """The sort's ORDER BY, or the same order walked from the other end."""
    return ", ".join(f"{expression} {_FLIPPED[direction] if backwards else direction}"
                     for expression, direction in SORTS.get(sort, SORTS["newest"])[1])


# A prompt search counts its matches this far, then says "more than": the exact number of tasks in
# which a common word appears (a quarter of a million at 1,000,000 tasks) took 1.1 s to count.
COUNT_CAP = 2_000
# A prompt search with more matches than that walks at most this many tasks, newest (or whatever
# the sort's) first, checking each prompt, before it asks the search index for every match instead.
WALK = 3_000


@dataclass(frozen=True)
class Filters:
    """What History shows. Empty fields do not filter."""

    statuses: tuple[str, ...] = ()
    task_types: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    teammates: tuple[str, ...] = ()
    group_id: str = ""
    created_from: date | None = None
    created_to: date | None = None  # inclusive, UTC
    prompt: str = ""
    task_ids: tuple[int, ...] = ()
    removed: bool = False  # include tasks removed from the history (the full record of spend)

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def as_json(self) -> dict:
        """The filters as JSON values (for a download link, or an export's worker process)."""
        return {f.name: (v.isoformat() if isinstance(v := getattr(self, f.name), date) else v) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> Filters:
        """`as_json`'s filters back; a field missing or null is its default."""
        values = {}
        for f in fields(cls):
            value = data.get(f.name)
            if f.name in ("created_from", "created_to"):
                value = date.fromisoformat(value) if value else None
            elif isinstance(value, list):
                value = tuple(value)
            values[f.name] = value if value is not None else f.default
        return cls(**values)

    @property
    def counted(self) -> bool:
        """Whether `task_days` can count these filters: only of its columns, in whole days, tasks in view."""
        return not (self.removed or self.group_id.strip() or self.prompt.split() or self.task_ids
                    or "" in self.teammates)

    def where(self, words: str = "set", dialect: Dialect = SQLITE) -> tuple[str, list]:
        """The WHERE clause over `tasks t`, and its parameters, in `dialect`'s SQL (the store's).
        `words`, how SQLite's prompt index takes part (PostgreSQL's planner decides for itself):
        "set", the ids it finds; "walk", the same set, only probed by a query that walks another
        index in its sort order and stops after a page; "join", the index joined in the FROM as
        `prompts` (it hands its matches over one by one, so a count can stop early); "check",
        not at all, each row's prompt checked as the query reads it."""
        clauses: list[str] = [] if self.removed else [in_view("t")]
        params: list = []
        for column, values in (("t.status", self.statuses), ("t.task_type", self.task_types),
                               ("t.model", self.models), ("t.teammate", self.teammates), ("t.id", self.task_ids)):
            if values:
                clauses.append(f"{column} IN ({placeholders(values)})")
                params += list(values)
        if self.group_id.strip():
            clauses.append("t.group_id = ?")
            params.append(self.group_id.strip())
        if self.created_from:
            clauses.append("t.created_at >= ?")
            params.append(self.created_from.isoformat())
        if self.created_to:
            clauses.append("t.created_at < ?")
            params.append((self.created_to + timedelta(days=1)).isoformat())
        words_typed = list(dict.fromkeys(self.prompt.split()))
        clauses += (_pg_words(words_typed, params) if dialect.postgres else _sqlite_words(words_typed, words, params))
        return " AND ".join(clauses) or "1 = 1", params


def _sqlite_words(words: list[str], mode: str, params: list) -> list[str]:
    """Every word typed must be in the prompt, in any order ("lighthouse drone" finds "a drone
    over a lighthouse"). For each word a first pass finds candidates cheaply; LIKE on the prompt
    itself then decides, so the match is the same either way (literal text, case ignored for
    ASCII letters). Words of three characters or more: the trigram index
    (schema.m004_prompt_search), which folds more cases than LIKE, never fewer. Shorter: a LIKE on
    the raw JSON, which holds the prompt as json.dumps wrote it. `mode`: see `Filters.where`."""
    clauses = []
    long_words = [w for w in words if len(w) >= 3]
    if long_words and mode != "check":
        match = {"set": "t.id IN (SELECT rowid FROM prompts WHERE prompts MATCH ?)",
                 "walk": "+t.id IN (SELECT rowid FROM prompts WHERE prompts MATCH ?)",
                 "join": "prompts MATCH ?"}[mode]
        clauses.append(match)
        params.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in long_words))  # each as typed
    for word in words:
        if len(word) < 3:
            clauses.append("t.request_json LIKE ? ESCAPE '\\'")
            params.append(f"%{_like_escape(json.dumps(word, ensure_ascii=False)[1:-1])}%")
        clauses.append("json_extract(t.request_json, '$.promptText') LIKE ? ESCAPE '\\'")
        params.append(f"%{_like_escape(word)}%")
    return clauses


def _pg_words(words: list[str], params: list) -> list[str]:
    """The same rule on PostgreSQL: each word, as literal text, in `prompt_search` (the prompt,
    kept by a trigger), by ILIKE, which under its byte-wise collation ignores the case of ASCII
    letters only, as SQLite's LIKE does. A word of three characters or more is answered by the
    trigram index (`tasks_prompt_search`); a shorter one has no trigram to look up, so it is
    asked of an expression the index does not cover and only checks the rows the rest selects
    (an empty trigram search would read the whole index)."""
    clauses = []
    for word in words:
        column = "t.prompt_search" if len(word) >= 3 else "COALESCE(t.prompt_search, '')"
        clauses.append(f"{column} ILIKE ? ESCAPE '\\'")
        params.append(f"%{_like_escape(word)}%")
    return clauses


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------- reading

def count(store: Store, filters: Filters) -> int:
    """How many tasks the filters select, exactly: from `task_days` when it can tell (schema.m016),
    else from the tasks."""
    if filters.counted:
        return _counted(store, filters)
    where, params = filters.where(dialect=store.dialect)
    return store.conn.execute(f"SELECT COUNT(*) FROM tasks t WHERE {where}", params).fetchone()[0]


def total(store: Store, filters: Filters) -> tuple[int, bool]:
    """What History says it shows: (tasks, more), `more` when a prompt search found more than
    COUNT_CAP and stopped counting there (the number is then COUNT_CAP)."""
    if not filters.prompt.split():
        return count(store, filters), False
    if store.postgres:
        where, params = filters.where(dialect=store.dialect)
        source = "tasks t"
    else:
        where, params = filters.where(words="join")
        source = "prompts JOIN tasks t ON t.id = prompts.rowid" if "prompts MATCH" in where else "tasks t"
    found = store.conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?) AS c",
                               (*params, COUNT_CAP + 1)).fetchone()[0]
    return min(found, COUNT_CAP), found > COUNT_CAP


def _counted(store: Store, filters: Filters) -> int:
    clauses, params = [], []
    for column, values in (("status", filters.statuses), ("task_type", filters.task_types),
                           ("model", filters.models), ("teammate", filters.teammates)):
        if values:
            clauses.append(f"{column} IN ({placeholders(values)})")
            params += list(values)
    if filters.created_from:
        clauses.append("day >= ?")
        params.append(filters.created_from.isoformat())
    if filters.created_to:
        clauses.append("day <= ?")
        params.append(filters.created_to.isoformat())
    where = " AND ".join(clauses) or "1 = 1"
    return store.conn.execute(f"SELECT CAST(COALESCE(SUM(tasks), 0) AS BIGINT) FROM task_days WHERE {where}",
                              params).fetchone()[0]


def finished_since(store: Store, teammate: str, since: str) -> int:
    """How many of the teammate's tasks in view ended (ready, failed or cancelled) at `since` (the
    store's ISO time) or later."""
    return store.conn.execute(f"SELECT COUNT(*) FROM tasks t WHERE t.teammate = ? AND t.finished_at >= ? "
                                 f"AND {in_view('t')}", (teammate, since)).fetchone()[0]


def page(store: Store, filters: Filters, sort: str = "newest", number: int = 1,
         size: int = PAGE_SIZE, total: int | None = None) -> list[dict]:
    """One page of tasks (1-based), sorted; only ids are sorted and skipped, rows are read for the page.
    `total`, the exact number the filters select when the caller has it: a page past the middle is
    then read from the other end."""
    offset = (max(number, 1) - 1) * size
    if sort == "rating":
        return store.tasks_by_id(_rated_page(store, filters, offset, size))
    if total is not None and offset > total // 2:
        if offset >= total:
            return []
        # The same rows the other way round: from the end, skipping what follows this page.
        skip, take = max(total - offset - size, 0), min(size, total - offset)
        return store.tasks_by_id(_ids(store, filters, _order(sort, backwards=True), skip, take, True)[::-1])
    return store.tasks_by_id(_ids(store, filters, _order(sort), offset, size, total is not None))


def _ids(store: Store, filters: Filters, order: str, offset: int, size: int, counted: bool = False) -> list[int]:
    """`counted`: the caller counted every match (no more than COUNT_CAP for a search), so SQLite
    finds a search's few matches through the index and sorts them, rather than walking the sort's
    index past every task for a word that is in none of them."""
    if filters.prompt.split() and not store.postgres and not counted:
        return _searched_ids(store, filters, order, offset, size)
    where, params = filters.where(words="set" if counted else "walk", dialect=store.dialect)
    return [r[0] for r in store.conn.execute(
        f"SELECT t.id FROM tasks t WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", (*params, size, offset))]


def _searched_ids(store: Store, filters: Filters, order: str, offset: int, size: int) -> list[int]:
    """A page of a prompt search on SQLite. A common word (in a quarter of the prompts) matches so
    many tasks that finding them all takes longer than the page; the first WALK tasks in the sort's
    order, each prompt checked, hold a page of it. A rarer one is found through the index, and the
    few it matches sorted (at once when the count found them few: `_ids`' `counted`)."""
    rest = replace(filters, prompt="")
    where, params = rest.where()
    checked, checked_params = Filters(prompt=filters.prompt, removed=True).where(words="check")  # the words alone
    walked = store.conn.execute(
        f"SELECT id FROM (SELECT t.id, t.created_at, t.model, t.cost_credits, t.estimated_credits, t.request_json "
        f"FROM tasks t WHERE {where} ORDER BY {order} LIMIT ?) AS t WHERE {checked} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, WALK, *checked_params, size, offset)).fetchall()
    if len(walked) == size:
        return [r[0] for r in walked]
    where, params = filters.where(words="walk")
    return [r[0] for r in store.conn.execute(
        f"SELECT t.id FROM tasks t WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", (*params, size, offset))]


def _rated_page(store: Store, filters: Filters, offset: int, size: int) -> list[int]:
    """Best rated: the tasks with a rating, by their average (the team's, every teammate's vote
    alike), best first, ties newest first; then every other task, newest first. The averages come
    from task_ratings (schema.m016), walked in its index's order, so a page reads a page of them."""
    where, params = filters.where(words="walk", dialect=store.dialect)
    rated_tasks = "task_ratings a JOIN tasks t ON t.id = a.task_id"
    rated = [r[0] for r in store.conn.execute(
        f"SELECT t.id FROM {rated_tasks} WHERE {where} ORDER BY a.average DESC, a.task_id DESC LIMIT ? OFFSET ?",
        (*params, size, offset))]
    if len(rated) == size:
        return rated
    if rated or offset == 0:
        skip = 0
    else:  # the page starts among the unrated: past every rated task
        skip = offset - store.conn.execute(f"SELECT COUNT(*) FROM {rated_tasks} WHERE {where}", params).fetchone()[0]
    unrated = [r[0] for r in store.conn.execute(
        f"SELECT t.id FROM tasks t WHERE {where} AND NOT EXISTS (SELECT 1 FROM task_ratings a WHERE a.task_id = t.id) "
        "ORDER BY t.id DESC LIMIT ? OFFSET ?", (*params, size - len(rated), skip))]
    return rated + unrated


def iter_tasks(store: Store, filters: Filters, batch: int = 500) -> Iterator[dict]:
    """Every task the filters select, oldest first, each with `outputs` and the team's review
    (`store.team_review`: `votes`, `average`, `count`, `winner`, `notes`); read `batch` at a time
    so memory stays flat."""
    where, params = filters.where(dialect=store.dialect)
    last = 0
    while True:
        ids = [r[0] for r in store.conn.execute(
            f"SELECT t.id FROM tasks t WHERE {where} AND t.id > ? ORDER BY t.id LIMIT ?", (*params, last, batch))]
        if not ids:
            return
        outputs = store.outputs_for(ids)
        reviews = store.reviews_for(ids)
        for task in store.tasks_by_id(ids):
            yield {**task, "outputs": outputs[task["id"]], **(reviews.get(task["id"]) or team_review([]))}
        last = ids[-1]


def archived_totals(store: Store, filters: Filters) -> tuple[int, int]:
    """(files, bytes) of the archived outputs of the tasks the filters select."""
    where, params = filters.where(dialect=store.dialect)
    files, size = store.conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(o.size), 0) FROM outputs o JOIN tasks t ON t.id = o.task_id "
        f"WHERE o.path IS NOT NULL AND {where}", params).fetchone()
    return files, size


def distinct_values(store: Store, column: str) -> list[str]:
    """The distinct values of an indexed column (model, teammate, task_type), by hopping
    through its index: one lookup per value rather than a scan of every task."""
    if column not in ("model", "teammate", "task_type"):
        raise ValueError(column)
    rows = store.conn.execute(
        f"WITH RECURSIVE v(x) AS (SELECT MIN({column}) FROM tasks UNION ALL "
        f"SELECT (SELECT MIN({column}) FROM tasks WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL) "
        f"SELECT x FROM v WHERE x IS NOT NULL")
    return [r[0] for r in rows]


def recent_groups(store: Store, limit: int = 50) -> list[dict]:
    """Comparison groups in view, newest first: `group_id`, how many `tasks`, which `models`, its
    `prompt` (the first task's), who submitted it (`teammates`) and when (`last_at`)."""
    d, comma = store.dialect, "','"
    models, teammates = d.joined("model", comma, distinct=True), d.joined("NULLIF(teammate, '')", comma, distinct=True)
    rows = store.conn.execute(
        f"SELECT group_id, COUNT(*) AS tasks, MAX(created_at) AS last_at, {models} AS models, "
        f"{teammates} AS teammates, "
        f"(SELECT {d.json_text('f.request_json', 'promptText')} FROM tasks f WHERE f.group_id = t.group_id "
        "ORDER BY f.id LIMIT 1) AS prompt "
        f"FROM tasks t WHERE group_id IS NOT NULL AND group_id != '' AND {in_view('t')} GROUP BY group_id "
        "ORDER BY last_at DESC LIMIT ?", (limit,)).fetchall()
    return [dict(r) for r in rows]


def lineage(store: Store, task: dict, depth: int = 20) -> tuple[list[dict | int], list[dict]]:
    """(parents, nearest first, and children) of a task. A parent that was removed
    from the history stays in the list as its bare id."""
    parents: list[dict | int] = []
    seen = {task["id"]}
    parent_id = task.get("parent_task_id")
    while parent_id and parent_id not in seen and len(parents) < depth:
        seen.add(parent_id)
        parent = store.task(parent_id)
        if parent is None or parent.get("removed_at"):
            parents.append(parent_id)
            break
        parents.append(parent)
        parent_id = parent.get("parent_task_id")
    return parents, store.children_of(task["id"])


# ---------------------------------------------------------------- the CSV export

CSV_COLUMNS = (
    "id", "task_url", "task_uuid", "task_type", "model", "status", "api_status", "teammate", "group_id", "backend",
    "created_at", "started_at", "finished_at", "run_seconds", "ratio", "duration", "seed", "prompt",
    "input_sources", "output_urls", "archived_urls", "failure", "failure_code", "estimated_credits",
    "cost_credits", "rating_average", "rating_count", "winner_votes", "notes", "parent_task_id", "removed_at",
)
FORMULA_STARTS = "=+-@\t\r"  # a cell starting so is run as a formula by spreadsheets
TASK_PAGE_URL = "/Task?task="  # pages/12_Task.py, as Streamlit serves it


def _safe_sql(column: str) -> str:
    """`export.safe_cell` in SQL, for a plain text column: a value that starts like a formula gets a
    leading quote; any other comes back as it is. (The formula starts are written into the SQL as
    they are, tab and carriage return too: a quoted literal takes any character on both databases.)"""
    starts = ", ".join(f"'{c}'" for c in FORMULA_STARTS)
    return f"CASE WHEN substr({column}, 1, 1) IN ({starts}) THEN '''' || {column} ELSE {column} END"


def _outputs_sql(d: Dialect, column: str) -> str:
    """One column of a task's outputs, in position order, space-separated; empty values left out."""
    joined = d.joined(f"x.{column}", "' '")
    return (f"(SELECT {joined} FROM (SELECT o.{column} FROM outputs o "
            f"WHERE o.task_id = t.id AND o.{column} != '' ORDER BY o.position) AS x)")


def _archived_urls_sql(d: Dialect) -> str:
    """A task's archived files as dashboard URLs (a `?` for the base first), in position order,
    space-separated: `archive.static_url` in SQL, with its rule: only static/<name>, as archived files are
    never in a subfolder (a path with one has no URL here, nor in the ZIP's manifest)."""
    joined = d.joined("CAST(? AS TEXT) || '" + archive.STATIC_URL + "/' || substr(x.path, 8)", "' '")
    no_folder = d.position("'/'", "substr(o.path, 8)")
    return (f"(SELECT {joined} FROM (SELECT o.path "
            "FROM outputs o WHERE o.task_id = t.id AND substr(o.path, 1, 7) = 'static/' "
            f"AND {no_folder} = 0 AND substr(o.path, 8) NOT IN ('', '.', '..') "
            "ORDER BY o.position) AS x)")


# The CSV is built by the database: on SQLite one statement per batch, on PostgreSQL one statement
# read through a server-side cursor; export.csv_rows finishes a few kinds of cell. Cells the
# dashboard writes itself from a fixed vocabulary (ids, task types, models, statuses, backends,
# timestamps, estimates, dashboard URLs) cannot start like a formula; every cell a person or the API
# wrote is neutralised: plain text columns in SQL; computed cells (from the request's JSON and the
# outputs) and the charged cost (a number, which each database would spell its own way as text) in
# Python.
_TRUSTED = {"id", "task_type", "model", "status", "backend", "created_at", "started_at", "finished_at",
            "estimated_credits", "parent_task_id", "removed_at"}
_NUMBERS = {"cost_credits"}


# On PostgreSQL the request's JSON is parsed once per task (`rj.j`, behind an OFFSET 0 so that the
# planner does not copy the cast into each of the four cells that read it: 100,000 tasks took
# 4 parses each).
_REQUEST_JSON = "CROSS JOIN LATERAL (SELECT CAST(t.request_json AS jsonb) AS j OFFSET 0) AS rj"


def _media_probes() -> list[str]:
    """Pieces of text that any `"name":` of a media input holds, fewer than the names (8 tests of
    each request instead of 16): `Uri":` for audioUri, imageUri, maskUri and videoUri, `"reference`
    for the six reference names, and so on; each name left over is its own piece. A request that
    holds a piece but no media input (a key such as "referenceText") only costs Python a look:
    its input_sources cell comes out empty either way."""
    names = [f'"{name}":' for name in sorted(catalog.MEDIA_NAMES)]
    shared = [p for p in ('Uri":', '"reference', 'Image":', 'Video":') if sum(p in n for n in names) > 1]
    return shared + [n for n in names if not any(p in n for p in shared)]


def _computed(d: Dialect) -> dict[str, str]:
    started, ended = "COALESCE(NULLIF(t.submitted_at, ''), t.created_at)", "NULLIF(t.finished_at, '')"
    media = " OR ".join(d.position(f"'{probe}'", "t.request_json") + " > 0" for probe in _media_probes())
    request = "rj.j" if d.postgres else "t.request_json"
    return {
        # In integer milliseconds, so that Python rounds it to tenths exactly as `history.run_seconds` does.
        "run_seconds": f"CAST(ROUND({d.seconds_between(started, ended)} * 1000) AS BIGINT)",
        "ratio": d.json_text(request, "ratio"),
        "duration": d.json_text(request, "duration"),
        "seed": d.json_text(request, "seed"),
        "prompt": d.json_text(request, "promptText"),
        # The request's JSON, only when it may hold a media input (a top-level key always shows in
        # the text as "name":, so this test never misses one); Python then lists the inputs exactly.
        "input_sources": f"CASE WHEN {media} THEN t.request_json END",
        "output_urls": _outputs_sql(d, "url"),
        # Dashboard URLs: the base (a `?` each, bound first) is checked by the caller and starts
        # with http or is empty, so neither starts like a formula.
        "task_url": f"CAST(? AS TEXT) || '{TASK_PAGE_URL}' || t.id",
        "archived_urls": _archived_urls_sql(d),
    }


_BASE_PARAMS = 2  # the `?` of task_url and of archived_urls, before the filters' own
# The team's review, its four cells from one look-up, made only for a task someone reviewed (four
# look-ups for every task took 0.5 s more over 100,000 tasks):
# [average, how many rated, winner votes, each note on a line after its author's name, as
# store.team_review writes them], or NULL for a task nobody reviewed.
_REVIEW_CELLS = ("rating_average", "rating_count", "winner_votes", "notes")


def _reviews_sql(d: Dialect) -> str:
    """The `reviews` view's rows of task t, read from its table: the view keeps the reviews of tasks
    in view (`t.removed_at IS NULL`), which is tested once per task here rather than by the view's
    NOT IN over the removed tasks in each of the two look-ups."""
    from lib.store.schema import REVIEW_ROWS

    notes = d.joined("CASE WHEN notes != '' THEN who || ': ' || notes END", d.newline())
    array = d.json_array("ROUND(CAST(AVG(rating) AS NUMERIC), 2)", "COUNT(rating)",
                         "SUM(CASE WHEN winner != 0 THEN 1 ELSE 0 END)", notes)
    return (f"CASE WHEN t.removed_at IS NULL AND EXISTS (SELECT 1 FROM {REVIEW_ROWS} r WHERE r.task_id = t.id) "
            f"THEN (SELECT {array} "
            "FROM (SELECT CASE r.reviewer WHEN '' THEN '(no name)' ELSE r.reviewer END AS who, r.rating, r.winner, "
            f"r.notes FROM {REVIEW_ROWS} r WHERE r.task_id = t.id ORDER BY r.reviewer) AS v) END")


@functools.cache
def _export_sql(d: Dialect) -> str:
    """The export's SELECT over `tasks t` (`{where}` to fill in), by id: on SQLite the batch after
    an id (`t.id > ?`, `LIMIT ?`), on PostgreSQL every row, for a server-side cursor."""
    computed = _computed(d)
    cells = ", ".join("NULL" if c in _REVIEW_CELLS else computed.get(c)
                      or (f"t.{c}" if c in _TRUSTED | _NUMBERS else _safe_sql(f"t.{c}")) for c in CSV_COLUMNS)
    rest = "ORDER BY t.id" if d.postgres else "AND t.id > ? ORDER BY t.id LIMIT ?"
    source = f"tasks t {_REQUEST_JSON}" if d.postgres else "tasks t"
    return f"SELECT {cells}, {_reviews_sql(d)} FROM {source} WHERE {{where}} {rest}"


def export_where(store: Store, filters: Filters) -> tuple[str, list]:
    """The export's WHERE over `tasks t`: the filters' (with no filter, every task on record,
    removed ones too)."""
    return (filters if filters.active else replace(filters, removed=True)).where(dialect=store.dialect)


def split_ids(store: Store, filters: Filters, parts: int) -> tuple[int, list[tuple[int, int]]]:
    """(how many tasks the export holds, and `parts` ranges of their ids, (lowest, highest) each,
    about as many tasks in each, in order, together all of them). A range of one part covers
    every id."""
    where, params = export_where(store, filters)
    tasks = store.conn.execute(f"SELECT COUNT(*) FROM tasks t WHERE {where}", params).fetchone()[0]
    # The first id of each part after the first, found by walking the id index that far.
    starts = [store.conn.execute(f"SELECT t.id FROM tasks t WHERE {where} ORDER BY t.id LIMIT 1 OFFSET ?",
                                 (*params, tasks * k // parts)).fetchone()[0] for k in range(1, parts)] if tasks else []
    bounds = [0, *dict.fromkeys(starts)]
    return tasks, [(low, high - 1) for low, high in zip(bounds, [*bounds[1:], 2 ** 63])]


def csv_cells(store: Store, filters: Filters, batch: int = 1000, base: str = "",
              ids: tuple[int, int] | None = None) -> Iterator[tuple]:
    """The CSV's rows as the database builds them, oldest task first: the cells of CSV_COLUMNS (the
    four review cells NULL), then the team's review as a JSON array, or NULL for a task nobody
    reviewed. Memory stays flat however long the history: SQLite reads `batch` tasks at a time,
    each batch a statement after the last id; PostgreSQL runs one statement, which a server-side
    cursor hands over `batch` rows at a time. With no filter, every task on record: removed ones
    too, so the credits add up to what was spent. `base` (`scheme://host` of the dashboard,
    checked) starts the task and archive URLs. `ids` (lowest, highest): only those tasks."""
    where, params = export_where(store, filters)
    low, high = ids or (1, 2 ** 63 - 1)
    # On SQLite the batch's own `t.id > ?` is the range's start: a second lower bound could be
    # the one SQLite starts each batch from (a million tasks in two ranges took 2.5 times as long).
    where, params = (f"{where} AND t.id BETWEEN ? AND ?", [*params, low, high]) if store.postgres else \
        (f"{where} AND t.id <= ?", [*params, high])
    sql = _export_sql(store.dialect).replace("{where}", where)
    if store.postgres:  # one statement through a server-side cursor (connect.py turns JIT off)
        for rows in store.stream(sql, (*[base] * _BASE_PARAMS, *params), batch):
            yield from rows
        return
    last = low - 1
    while rows := store.tuples(sql, (*[base] * _BASE_PARAMS, *params, last, batch)):
        yield from rows
        last = rows[-1][0]
