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

The CSV is built by the database (`queries.csv_cells`): on SQLite one statement
per batch of tasks, on PostgreSQL one statement through a server-side cursor;
it is handed out in pieces as it is read, so a long history is never held in
memory. A long export is shared out between worker processes, one per core (`csv_stream`:
a million tasks in 11 s on SQLite, 15 s on PostgreSQL, on 2 cores). The ZIP is written
batch by batch into a temporary file. Cells are made safe for spreadsheets in
both.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from lib import archive, catalog, history, media
from lib.store import Store
from lib.store.queries import CSV_COLUMNS, FORMULA_STARTS, TASK_PAGE_URL, Filters, csv_cells, split_ids

MANIFEST_COLUMNS = (
    "file", "task_id", "task_url", "output_position", "task_type", "model", "status", "teammate", "group_id", "prompt",
    "rating_average", "rating_count", "winner_votes", "mime", "size", "sha256", "output_url", "archived_url",
)
REVIEW_COLUMNS = ("task_id", "reviewer", "rating", "winner", "notes", "updated_at")
log = logging.getLogger(__name__)
ZIP_MAX_BYTES = 2 * 1024 * media.MB  # a bigger set is narrowed with the filters first
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


# The cells of a csv_cells row that are read or finished here.
_RUN, _SOURCES = CSV_COLUMNS.index("run_seconds"), CSV_COLUMNS.index("input_sources")
_ID, _TYPE, _MODEL, _PARENT = (CSV_COLUMNS.index(c) for c in ("id", "task_type", "model", "parent_task_id"))
_CHECKED = tuple(CSV_COLUMNS.index(c) for c in ("ratio", "duration", "seed", "prompt", "output_urls", "notes",
                                                 "cost_credits"))
_REVIEWED = slice(CSV_COLUMNS.index("rating_average"), CSV_COLUMNS.index("notes") + 1)  # the four are side by side
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


def csv_rows(store: Store, filters: Filters, batch: int = 1000, base: str = "",
             ids: tuple[int, int] | None = None) -> Iterator[list]:
    """The cells of every task the filters select, oldest first, in CSV_COLUMNS order, as
    `queries.csv_cells` reads them `batch` tasks at a time (memory stays flat however long the
    history; with no filter, removed tasks too), finished here: the review's four cells, the run
    time in tenths of a second, the input sources, and formula safety for the computed cells.
    `base` (`scheme://host` of the dashboard, checked) starts the task and archive URLs; `ids`
    (lowest, highest) keeps the tasks of that range."""
    # safe_cell inlined, with the names it reads bound locally: this loop runs once per task.
    starts, loads, checked, run, sources, reviewed, unreviewed = (
        FORMULA_STARTS, json.loads, _CHECKED, _RUN, _SOURCES, _REVIEWED, _UNREVIEWED)
    for row in csv_cells(store, filters, batch, base, ids):
        cells = list(row)
        review = cells.pop()
        cells[reviewed] = loads(review) if review else unreviewed
        if (ms := cells[run]) is not None:
            text = f"{ms / 1000:.1f}"
            cells[run] = "'" + text if text[0] == "-" else text  # a negative time, from a clock set back
        if (request := cells[sources]) is not None:
            cells[sources] = _sources(store, cells, loads(request))
        for i in checked:
            if (value := cells[i]) is not None:
                text = value if value.__class__ is str else str(value)
                cells[i] = "'" + text if text and text[0] in starts else text
        yield cells


def csv_bytes(store: Store, filters: Filters, batch: int = 1000, base: str = "",
              ids: tuple[int, int] | None = None, header: bool = True) -> Iterator[bytes]:
    """The CSV as the file holds it: UTF-8 with a BOM (so spreadsheets detect the encoding),
    CRLF rows, a header; one piece per `batch` rows, for streaming. A part of it with `ids` (the
    tasks of that range) and without the `header` (nor the BOM). A long export is better written by
    `csv_stream`, which shares the work out between processes."""
    rows = csv_rows(store, filters, batch, base, ids)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        buffer.write("\ufeff")
        writer.writerow(CSV_COLUMNS)
    while True:
        writer.writerows(itertools.islice(rows, batch))  # a row at a time: memory holds no batch
        if not buffer.tell():
            return
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()


# ---------------------------------------------------------------- the CSV in worker processes

PARALLEL_MIN = 50_000  # tasks: a shorter export is written in the server's process, in about a second
PART_CHUNK = 256 * 1024  # bytes handed on at a time from a worker's part


def csv_stream(store: Store, filters: Filters, base: str = "", batch: int = 1000,
               parallel_min: int = PARALLEL_MIN) -> Iterator[bytes]:
    """csv_bytes's file, byte for byte; for `parallel_min` tasks or more, written by one worker
    process per core (`python -m lib.export`), each over its own range of ids (`split_ids`). The
    first worker's part is handed on as it is written, the others' are kept in a temporary file
    each until their turn. Why processes: the export is Python and database work of about 20 s
    a million tasks, which in threads would take turns on one core and, in the server's process,
    hold up every other teammate's page for as long; in processes it takes the cores (1,000,000
    tasks on 2 cores, SQLite: 20.2 -> 11.0 s) and the server only relays. Closing the result
    early stops the workers and deletes their files. `store` is only read here, to split the work."""
    parts = max(1, min(os.cpu_count() or 1, 8))
    tasks, ranges = split_ids(store, filters, parts)
    if tasks < parallel_min or len(ranges) < 2:
        yield from csv_bytes(store, filters, batch, base)
        return
    with tempfile.TemporaryDirectory(prefix="csv-parts-") as folder:
        parts_at = [Path(folder) / f"part-{i}" for i in range(len(ranges))]
        workers = [_start_part(store, filters, base, batch, ids, at, first=not i)
                   for i, (ids, at) in enumerate(zip(ranges, parts_at))]
        try:
            while chunk := workers[0].stdout.read(PART_CHUNK):
                yield chunk
            for i, (worker, at) in enumerate(zip(workers, parts_at)):
                _finished(worker, at)
                if i:
                    with at.with_suffix(".csv").open("rb") as part:
                        while chunk := part.read(PART_CHUNK):
                            yield chunk
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                worker.wait()
                if worker.stdout is not None:
                    worker.stdout.close()


def _start_part(store: Store, filters: Filters, base: str, batch: int, ids: tuple[int, int], at: Path,
                first: bool) -> subprocess.Popen:
    """A worker writing the part of `ids`: the `first` (with the header) to its stdout, any other
    to `at`.csv; what it says goes to `at`.log (a file, not a pipe that could fill up while the
    first part is read). The job goes in on stdin, never on the command line: the database's
    address may hold a password."""
    with at.with_suffix(".log").open("wb") as said:
        worker = subprocess.Popen([sys.executable, "-m", "lib.export"], cwd=Path(__file__).resolve().parent.parent,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE if first else subprocess.DEVNULL,
                                  stderr=said)
    job = {"location": str(store.location), "filters": filters.as_json(), "base": base, "batch": batch,
           "ids": ids, "out": None if first else str(at.with_suffix(".csv"))}
    worker.stdin.write(json.dumps(job).encode())
    worker.stdin.close()
    return worker


class ExportFailed(RuntimeError):
    """A worker of the CSV export stopped before the end of its part."""


def _finished(worker: subprocess.Popen, at: Path) -> None:
    """Wait for a worker; its failure is raised, with what it said logged (never shown)."""
    if worker.wait() != 0:
        said = at.with_suffix(".log").read_bytes()[-2000:].decode(errors="replace")
        log.error("CSV export worker failed (exit %s): %s", worker.returncode, said)
        raise ExportFailed("the CSV export stopped before its end; try again")


def _write_part(job: dict) -> None:
    """A worker's part: csv_bytes over its range of ids, the header only in the first part."""
    first = job["out"] is None
    out = os.fdopen(os.dup(1), "wb") if first else open(job["out"], "wb")
    if first:
        os.dup2(2, 1)  # the part is written to the pipe alone: anything printed goes to stderr
    store = Store(job["location"])
    try:
        with out:
            for piece in csv_bytes(store, Filters.from_json(job["filters"]), job["batch"], job["base"],
                                   ids=tuple(job["ids"]), header=first):
                out.write(piece)
    finally:
        store.close()


def zip_file(tasks: Iterable[dict], static_dir: Path | None = None, base: str = "") -> BinaryIO:
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
                # Streamed from the storage (the folder or the bucket), a piece at a time.
                source = archive.archived_chunks(output.get("path"), static_dir)
                name = ""
                if source is not None:
                    name = output_filename(task, output["position"], Path(output["path"]).suffix)
                    with bundle.open(name, "w", force_zip64=True) as entry:
                        for chunk in source:
                            entry.write(chunk)
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


if __name__ == "__main__":  # a worker of csv_stream
    _write_part(json.loads(sys.stdin.buffer.read()))
