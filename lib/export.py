"""CSV export of the task history: one row per task, streamed in batches from
SQLite, safe to open in a spreadsheet.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

COLUMNS = (
    "id", "task_uuid", "task_type", "model", "status", "api_status", "teammate", "group_id", "backend",
    "created_at", "started_at", "finished_at", "run_seconds", "ratio", "duration", "seed", "prompt",
    "input_sources", "output_urls", "archived_paths", "failure", "failure_code", "estimated_credits",
    "cost_credits", "parent_task_id",
)
MEDIA_KEYS = ("promptImage", "promptVideo", "videoUri", "character", "reference", "input", "audio", "referenceImages")


def safe_cell(value) -> str:
    """Neutralise cells a spreadsheet would run as a formula (=, +, -, @, tab, CR)."""
    if value is None:
        return ""
    text = str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _seconds_between(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return f"{(parse(end) - parse(start)).total_seconds():.1f}"


def _sources(request: dict) -> str:
    """Where each media input came from; inline files are named by kind, never dumped."""
    found = []
    for key in MEDIA_KEYS:
        value = request.get(key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            uri = item.get("uri") if isinstance(item, dict) else item
            if not uri:
                continue
            if uri.startswith(("data:", "stored:")):
                uri = "uploaded file"
            found.append(f"{key}={uri}")
    return " ".join(found)


def task_row(task: dict) -> list[str]:
    request = task.get("request") or {}
    values = {
        **task,
        "run_seconds": _seconds_between(task.get("started_at") or task.get("submitted_at"), task.get("finished_at")),
        "ratio": request.get("ratio"),
        "duration": request.get("duration"),
        "seed": request.get("seed"),
        "prompt": request.get("promptText"),
        "input_sources": _sources(request),
    }
    return [safe_cell(values.get(column)) for column in COLUMNS]


def csv_chunks(tasks: Iterable[dict], rows_per_chunk: int = 500) -> Iterator[str]:
    """The CSV text in pieces: a header, then rows, never the whole history at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, task in enumerate(tasks, start=1):
        writer.writerow(task_row(task))
        if n % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(tasks: Iterable[dict], path) -> int:
    """Write the CSV (UTF-8 with a BOM so spreadsheets detect the encoding); returns bytes written."""
    written = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        for chunk in csv_chunks(tasks):
            written += out.write(chunk)
    return written
