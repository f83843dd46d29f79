"""Exports of the task history: a CSV with one row per task, and a ZIP of the
archived outputs with a manifest and every teammate's own review (reviews.csv).

The CSV carries the team's review of each task as the average rating, how many
rated, how many voted it the winner, and each note with its author's name. The
CSV of all rows (no filter) is the whole record of spend: tasks removed from
the history are in it, marked by `removed_at`, with what they cost.

Both give each task's page and each archived output as a dashboard URL a
teammate can open (`http://localhost:8501/Task?task=12`,
`.../app/static/<name>`), never a path on the server: from the address the
download was asked at, or root-relative when no request is at hand.

One function names every output file handed out, alone or in a ZIP
(`output_filename`: task id, model and a slug of the prompt).

The CSV is built by SQLite, one statement per batch of tasks, and handed out
in pieces as it is read, so a long history is never held in memory and
100,000 tasks take about two seconds. The ZIP is written batch by batch into
a temporary file. Cells are made safe for spreadsheets in both.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from lib import archive, catalog, history, media
from lib.store import Store

COLUMNS = (
    "id", "task_url", "task_uuid", "task_type", "model", "status", "api_status", "teammate", "group_id", "backend",
    "created_at", "started_at", "finished_at", "run_seconds", "ratio", "duration", "seed", "prompt",
    "input_sources", "output_urls", "archived_urls", "failure", "failure_code", "estimated_credits",
    "cost_credits", "rating_average", "rating_count", "winner_votes", "notes", "parent_task_id", "removed_at",
)
MANIFEST_COLUMNS = (
    "file", "task_id", "task_url", "output_position", "task_type", "model", "status", "teammate", "group_id", "prompt",
    "rating_average", "rating_count", "winner_votes", "mime", "size", "sha256", "output_url", "archived_url",
)
REVIEW_COLUMNS = ("task_id", "reviewer", "rating", "winner", "notes", "updated_at")
ZIP_MAX_BYTES = 2 * 1024 * media.MB  # a bigger set is narrowed with the filters first
FORMULA_STARTS = "=+-@\t\r"
TASK_PAGE_URL = "/Task?task="  # pages/12_Task.py, as Streamlit serves it
SLUG_MAX = 40  # characters of the prompt a file name carries
MODEL_MAX = 40


def slug(text, limit: int = SLUG_MAX) -> str:
    """A prompt as a piece of a file name: lowercase ASCII words joined by hyphens, at most `limit`
    characters, cut between words. Accents are dropped (é -> e, ﬁ -> fi); other scripts, and any
    dot, slash, control or reserved character, leave nothing, so the result is safe on every OS."""
    plain = unicodedata.normalize("NFKD", text if isinstance(text, str) else "").encode("ascii", "ignore")
    kept = ""
    for word in re.findall(r"[a-z0-9]+", plain.decode().lower()):
        if len(kept) + len(word) + (1 if kept else 0) > limit:
            return kept or word[:limit]
        kept = f"{kept}-{word}" if kept else word
    return kept


def output_filename(task: dict, position: int, suffix: str) -> str:
    """What an output is saved as, downloaded alone or inside a ZIP:
    `task-12-gen4.5-a-red-fox-on-a-cliff.mp4`, then `-2`, `-3` for the task's later outputs.
    `suffix` is the archived file's (`.mp4`); the model keeps its dots and underscores inside."""
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", str(task.get("model") or ""))[:MODEL_MAX].strip("._-")
    request = task.get("request")
    prompt = slug(request.get("promptText") if isinstance(request, dict) else None)
    parts = [f"task-{int(task['id'])}", model, prompt, str(position + 1) if position else ""]
    extension = suffix.lower() if re.fullmatch(r"\.[A-Za-z0-9]{1,5}", suffix or "") else ""
    return "-".join(p for p in parts if p) + extension


def archived_url(path: str | None, base: str = "") -> str:
    """An archived file as a dashboard URL (`base` is `scheme://host`, or "" for root-relative)."""
    url = archive.static_url(path)
    return base + url if url else ""


def safe_cell(value) -> str:
    """Neutralise cells a spreadsheet would run as a formula (=, +, -, @, tab, CR)."""
    if value is None:
        return ""
    text = str(value)
    if text and text[0] in FORMULA_STARTS:
        return "'" + text
    return text


def _safe_sql(column: str) -> str:
    """`safe_cell` in SQL, for a plain column: a value whose text starts like a formula gets a
    leading quote; any other comes back as it is, numbers as numbers (the CSV writer then spells
    them as `str` does)."""
    starts = ", ".join(f"char({ord(c)})" for c in FORMULA_STARTS)
    return f"CASE WHEN substr({column}, 1, 1) IN ({starts}) THEN '''' || {column} ELSE {column} END"


def _outputs_sql(column: str) -> str:
    """One column of a task's outputs, in position order, space-separated; empty values left out."""
    return (f"(SELECT group_concat({column}, ' ') FROM (SELECT o.{column} FROM outputs o "
            f"WHERE o.task_id = t.id AND o.{column} != '' ORDER BY o.position))")


def _archived_urls_sql() -> str:
    """A task's archived files as dashboard URLs (a `?` for the base first), in position order,
    space-separated: `archive.static_url` in SQL, with its rule: only static/<name>, as archived files are
    never in a subfolder (a path with one has no URL here, nor in the ZIP's manifest)."""
    return ("(SELECT group_concat(? || '" + archive.STATIC_URL + "/' || substr(path, 8), ' ') FROM (SELECT o.path "
            "FROM outputs o WHERE o.task_id = t.id AND substr(o.path, 1, 7) = 'static/' "
            "AND instr(substr(o.path, 8), '/') = 0 ORDER BY o.position))")


# The CSV is built by SQLite, one statement per batch; Python finishes three kinds of cell.
# Cells the dashboard writes itself from a fixed vocabulary (ids, task types, models, statuses,
# backends, timestamps, estimates, dashboard URLs) cannot start like a formula; every cell a
# person or the API wrote is neutralised: plain columns in SQL, computed cells (from the
# request's JSON and the outputs) in Python, as SQL would compute them twice.
_TRUSTED = {"id", "task_type", "model", "status", "backend", "created_at", "started_at", "finished_at",
            "estimated_credits", "parent_task_id", "removed_at"}
_COMPUTED = {
    # In integer milliseconds, so that Python rounds it to tenths exactly as `history.run_seconds` does.
    "run_seconds": "CAST(round((julianday(NULLIF(t.finished_at, '')) - julianday(COALESCE(NULLIF(t.submitted_at, "
                   "''), t.created_at))) * 86400000) AS INTEGER)",
    "ratio": "json_extract(t.request_json, '$.ratio')",
    "duration": "json_extract(t.request_json, '$.duration')",
    "seed": "json_extract(t.request_json, '$.seed')",
    "prompt": "json_extract(t.request_json, '$.promptText')",
    # The request's JSON, only when it may hold a media input (a top-level key always shows in
    # the text as "name":, so this test never misses one); Python then lists the inputs exactly.
    "input_sources": "CASE WHEN " + " OR ".join(f"instr(t.request_json, '\"{name}\":')"
                                                for name in catalog.MEDIA_NAMES) + " THEN t.request_json END",
    "output_urls": _outputs_sql("url"),
    # Dashboard URLs: the base (a `?` each, bound first) is checked by the caller and starts
    # with http or is empty, so neither starts like a formula.
    "task_url": f"? || '{TASK_PAGE_URL}' || t.id",
    "archived_urls": _archived_urls_sql(),
}
_BASE_PARAMS = 2  # the `?` of task_url and of archived_urls, before the filters' own
# The team's review, its four cells from one look-up, made only for a task someone reviewed (four
# look-ups for every task took 0.5 s more over 100,000 tasks):
# [average, how many rated, winner votes, each note on a line after its author's name, as
# store.team_review writes them], or NULL for a task nobody reviewed.
_REVIEW_CELLS = ("rating_average", "rating_count", "winner_votes", "notes")
_REVIEWS_SQL = (
    "CASE WHEN EXISTS (SELECT 1 FROM reviews r WHERE r.task_id = t.id) THEN (SELECT json_array("
    "round(AVG(rating), 2), COUNT(rating), SUM(winner != 0), "
    "group_concat(CASE WHEN notes != '' THEN who || ': ' || notes END, char(10))) "
    "FROM (SELECT CASE r.reviewer WHEN '' THEN '(no name)' ELSE r.reviewer END AS who, r.rating, r.winner, r.notes "
    "FROM reviews r WHERE r.task_id = t.id ORDER BY r.reviewer)) END")
_EXPORT_SQL = (
    "SELECT " + ", ".join("NULL" if c in _REVIEW_CELLS else _COMPUTED.get(c)
                          or (f"t.{c}" if c in _TRUSTED else _safe_sql(f"t.{c}")) for c in COLUMNS)
    + f", {_REVIEWS_SQL} FROM tasks t WHERE {{where}} AND t.id > ? ORDER BY t.id LIMIT ?")
_RUN, _SOURCES = COLUMNS.index("run_seconds"), COLUMNS.index("input_sources")
_ID, _TYPE, _MODEL, _PARENT = (COLUMNS.index(c) for c in ("id", "task_type", "model", "parent_task_id"))
_CHECKED = tuple(COLUMNS.index(c) for c in ("ratio", "duration", "seed", "prompt", "output_urls", "notes"))
_REVIEWED = slice(COLUMNS.index("rating_average"), COLUMNS.index("notes") + 1)  # the four are side by side
_UNREVIEWED = [None, 0, 0, None]


def _sources(store: Store, cells: list, request: dict) -> str:
    """`property=source` of each media input: an earlier output as `output of #N`, another inline
    file as `uploaded file` (never dumped into the sheet), a URL as it is."""
    [task] = store.with_input_sources([{"id": cells[_ID], "task_type": cells[_TYPE], "model": cells[_MODEL],
                                         "parent_task_id": cells[_PARENT], "request": request}])

    def source(uri: str) -> str:
        if (earlier := history.source_task(task, uri)) is not None:
            return f"output of #{earlier}"
        return "uploaded file" if uri.startswith(("data:", "stored:")) else uri

    return " ".join(f"{f.name}={source(uri)}" for f, uri in catalog.media_inputs(task))


def csv_rows(store: Store, filters: history.Filters, batch: int = 1000, base: str = "") -> Iterator[list]:
    """The cells of every task the filters select, oldest first, in COLUMNS order, read from
    SQLite `batch` tasks at a time, so memory stays flat however long the history. With no
    filter, every task on record: removed ones too, so the credits add up to what was spent.
    `base` (`scheme://host` of the dashboard, checked) starts the task and archive URLs."""
    where, params = (filters if filters.active else replace(filters, removed=True)).where()
    sql = _EXPORT_SQL.replace("{where}", where)
    cursor = store.db.conn.cursor()
    cursor.row_factory = None  # plain tuples, straight to the CSV writer
    last = 0
    while rows := cursor.execute(sql, (*[base] * _BASE_PARAMS, *params, last, batch)).fetchall():
        for row in rows:
            cells = list(row[:-1])
            cells[_REVIEWED] = json.loads(row[-1]) if row[-1] else _UNREVIEWED
            if (ms := cells[_RUN]) is not None:
                cells[_RUN] = safe_cell(f"{ms / 1000:.1f}")
            if (request := cells[_SOURCES]) is not None:
                cells[_SOURCES] = _sources(store, cells, json.loads(request))
            for i in _CHECKED:
                if cells[i] is not None:
                    cells[i] = safe_cell(cells[i])
            yield cells
        last = rows[-1][0]


def csv_bytes(store: Store, filters: history.Filters, batch: int = 1000, base: str = "") -> Iterator[bytes]:
    """The CSV as the file holds it: UTF-8 with a BOM (so spreadsheets detect the encoding),
    CRLF rows, a header; one piece per `batch` rows, for streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    rows = csv_rows(store, filters, batch, base)
    while True:
        writer.writerows(itertools.islice(rows, batch))
        if not buffer.tell():
            return
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()


def zip_file(tasks: Iterable[dict], static_dir: Path = archive.STATIC_DIR, base: str = "") -> BinaryIO:
    """A ZIP of the tasks' archived outputs plus manifest.csv (one line per output, archived
    or not) and reviews.csv (one line per teammate's review of a task), in a temporary file,
    rewound. Media is stored, not recompressed. `base` starts the URLs, as in `csv_rows`."""
    out = tempfile.TemporaryFile()
    manifest, reviews = io.StringIO(), io.StringIO()
    writer = csv.writer(manifest, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    review_writer = csv.writer(reviews, lineterminator="\r\n")
    review_writer.writerow(REVIEW_COLUMNS)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:
        for task in tasks:
            prompt = (task.get("request") or {}).get("promptText")
            average = task.get("average")
            for vote in task.get("votes") or []:
                review_writer.writerow([safe_cell(v) for v in (
                    task["id"], vote["reviewer"], vote.get("rating"), "yes" if vote.get("winner") else "",
                    vote.get("notes"), vote.get("updated_at"))])
            for output in task.get("outputs") or []:
                # The archive's rule (`archive.archived_name`), so the file, manifest.csv and the CSV agree.
                source = archive.archived_file(output.get("path"), static_dir)
                name = ""
                if source is not None:
                    name = output_filename(task, output["position"], source.suffix)
                    bundle.write(source, name)
                writer.writerow([safe_cell(v) for v in (
                    name or "(not archived)", task["id"], f"{base}{TASK_PAGE_URL}{task['id']}", output["position"],
                    task["task_type"], task["model"],
                    task["status"], task.get("teammate"), task.get("group_id"), prompt,
                    None if average is None else round(average, 2), task.get("count"), task.get("winner"),
                    output.get("mime"), output.get("size"),
                    output.get("sha256"), output.get("url"), archived_url(output.get("path"), base))])
        bundle.writestr("manifest.csv", "\ufeff" + manifest.getvalue())
        bundle.writestr("reviews.csv", "\ufeff" + reviews.getvalue())
    return _rewound(out)


def _rewound(out) -> BinaryIO:
    out.seek(0)
    return out
