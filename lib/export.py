"""Exports of the task history: a CSV with one row per task, and a ZIP of the
archived outputs with a manifest.

Both are written batch by batch into a temporary file (tasks come from
`history.iter_tasks`, which reads SQLite in batches), so a long history is
never held in memory as rows or text; the file object goes to
`st.download_button`. Cells are made safe for spreadsheets.
"""
from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from lib import archive, media
from lib.history import media_inputs, run_seconds

COLUMNS = (
    "id", "task_uuid", "task_type", "model", "status", "api_status", "teammate", "group_id", "backend",
    "created_at", "started_at", "finished_at", "run_seconds", "ratio", "duration", "seed", "prompt",
    "input_sources", "output_urls", "archived_paths", "failure", "failure_code", "estimated_credits",
    "cost_credits", "rating", "notes", "winner", "parent_task_id",
)
MANIFEST_COLUMNS = (
    "file", "task_id", "output_position", "task_type", "model", "status", "teammate", "group_id", "prompt",
    "rating", "winner", "mime", "size", "sha256", "output_url", "archived_path",
)
ZIP_MAX_BYTES = 2 * 1024 * media.MB  # a bigger set is narrowed with the filters first


def safe_cell(value) -> str:
    """Neutralise cells a spreadsheet would run as a formula (=, +, -, @, tab, CR)."""
    if value is None:
        return ""
    text = str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _source(uri: str) -> str:
    # Inline files are named by kind, never dumped into the sheet.
    return "uploaded file" if uri.startswith(("data:", "stored:")) else uri


def task_row(task: dict) -> list[str]:
    """One task (as `history.iter_tasks` yields it) as CSV cells, in COLUMNS order."""
    request = task.get("request") or {}
    outputs = task.get("outputs") or []
    values = {
        **task,
        "run_seconds": None if (run := run_seconds(task)) is None else f"{run:.1f}",
        "ratio": request.get("ratio"),
        "duration": request.get("duration"),
        "seed": request.get("seed"),
        "prompt": request.get("promptText"),
        "input_sources": " ".join(f"{key}={_source(uri)}" for key, uri in media_inputs(request)),
        "output_urls": " ".join(o["url"] for o in outputs if o.get("url")),
        "archived_paths": " ".join(o["path"] for o in outputs if o.get("path")),
        "winner": "yes" if task.get("winner") else "",
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


def csv_bytes(tasks: Iterable[dict]) -> Iterator[bytes]:
    """The CSV as the file holds it: UTF-8 with a BOM (so spreadsheets detect the encoding),
    CRLF rows, a header; in pieces, for streaming."""
    yield "\ufeff".encode()
    for chunk in csv_chunks(tasks):
        yield chunk.encode()


def csv_file(tasks: Iterable[dict]) -> BinaryIO:
    """The CSV in a temporary file, rewound. The file disappears when closed."""
    out = tempfile.TemporaryFile()
    for piece in csv_bytes(tasks):
        out.write(piece)
    return _rewound(out)


def zip_file(tasks: Iterable[dict], static_dir: Path = archive.STATIC_DIR) -> BinaryIO:
    """A ZIP of the tasks' archived outputs plus manifest.csv (one line per output, archived
    or not), in a temporary file, rewound. Media is stored, not recompressed."""
    out = tempfile.TemporaryFile()
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:
        for task in tasks:
            prompt = (task.get("request") or {}).get("promptText")
            for output in task.get("outputs") or []:
                source = static_dir / Path(output["path"]).name if output.get("path") else None
                name = ""
                if source is not None and source.is_file():
                    name = f"task-{task['id']}_{task['model']}_{output['position']}{source.suffix}"
                    bundle.write(source, name)
                writer.writerow([safe_cell(v) for v in (
                    name or "(not archived)", task["id"], output["position"], task["task_type"], task["model"],
                    task["status"], task.get("teammate"), task.get("group_id"), prompt, task.get("rating"),
                    "yes" if task.get("winner") else "", output.get("mime"), output.get("size"),
                    output.get("sha256"), output.get("url"), output.get("path"))])
        bundle.writestr("manifest.csv", "\ufeff" + manifest.getvalue())
    return _rewound(out)


def _rewound(out) -> BinaryIO:
    out.seek(0)
    return out
