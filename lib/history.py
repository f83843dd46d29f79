"""Finding tasks and acting on them.

History's filters, sort orders and pages are SQL over indexed columns, so a
page stays fast with 100,000 tasks; exports walk the same filters in batches
instead of loading the history. The actions on one task live here too:
cancel, re-run (linked to the original), remove (with only its own files).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from lib import archive, catalog, lifecycle, media
from lib.backend import Backend
from lib.client import RunwayError
from lib.store import SUBMITTED, Store, in_view, input_digest, placeholders, team_review
from lib.tasks import SubmitResult, submit_task

PAGE_SIZE = 25

# Sort orders: key (kept in the page address) -> (label, ORDER BY).
SORTS = {
    "newest": ("Newest first", "t.created_at DESC, t.id DESC"),
    "oldest": ("Oldest first", "t.created_at, t.id"),
    "cost": ("Highest cost", "COALESCE(t.cost_credits, t.estimated_credits) DESC NULLS LAST, t.id DESC"),
    "rating": ("Best rated", "(SELECT AVG(r.rating) FROM reviews r WHERE r.task_id = t.id) DESC NULLS LAST, t.id DESC"),
    "model": ("Model A–Z", "t.model, t.created_at DESC, t.id DESC"),
}


class ActionRefused(Exception):
    """An action that cannot be done, with the reason in words a user can act on."""


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

    def where(self, walk: bool = False) -> tuple[str, list]:
        """The WHERE clause over `tasks t`, and its parameters. `walk`: the query walks an index
        in its sort order and stops after a page, so the prompt index is a set to probe rather
        than the rows to start from (a common word matches a quarter of the history, which would
        all be read and sorted for 25 rows)."""
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
        # Every word typed must be in the prompt, in any order ("lighthouse drone" finds "a drone
        # over a lighthouse"). For each word a first pass finds candidates cheaply; LIKE on the
        # prompt itself then decides, so the match is the same either way (literal text, case
        # ignored for ASCII letters). Words of three characters or more: the trigram index
        # (store.m004), which folds more cases than LIKE, never fewer. Shorter: a LIKE on the raw
        # JSON, which holds the prompt as json.dumps wrote it.
        words = list(dict.fromkeys(self.prompt.split()))
        long_words = [w for w in words if len(w) >= 3]
        if long_words:
            clauses.append(f"{'+' if walk else ''}t.id IN (SELECT rowid FROM prompts WHERE prompts MATCH ?)")
            params.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in long_words))  # each as typed
        for word in words:
            if len(word) < 3:
                clauses.append("t.request_json LIKE ? ESCAPE '\\'")
                params.append(f"%{_like_escape(json.dumps(word, ensure_ascii=False)[1:-1])}%")
            clauses.append("json_extract(t.request_json, '$.promptText') LIKE ? ESCAPE '\\'")
            params.append(f"%{_like_escape(word)}%")
        return " AND ".join(clauses) or "1", params


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------- reading

def count(store: Store, filters: Filters) -> int:
    where, params = filters.where()
    return store.db.conn.execute(f"SELECT COUNT(*) FROM tasks t WHERE {where}", params).fetchone()[0]


def finished_since(store: Store, teammate: str, since: str) -> int:
    """How many of the teammate's tasks in view ended (ready, failed or cancelled) at `since` (the
    store's ISO time) or later."""
    return store.db.conn.execute(f"SELECT COUNT(*) FROM tasks t WHERE t.teammate = ? AND t.finished_at >= ? "
                                 f"AND {in_view('t')}", (teammate, since)).fetchone()[0]


def page(store: Store, filters: Filters, sort: str = "newest", number: int = 1,
         size: int = PAGE_SIZE) -> list[dict]:
    """One page of tasks (1-based), sorted; only ids are sorted and skipped, rows are read for the page."""
    where, params = filters.where(walk=True)
    order = SORTS.get(sort, SORTS["newest"])[1]
    ids = [r[0] for r in store.db.conn.execute(
        f"SELECT t.id FROM tasks t WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, size, (max(number, 1) - 1) * size))]
    return store.tasks_by_id(ids)


def iter_tasks(store: Store, filters: Filters, batch: int = 500) -> Iterator[dict]:
    """Every task the filters select, oldest first, each with `outputs` and the team's review
    (`store.team_review`: `votes`, `average`, `count`, `winner`, `notes`); read `batch` at a time
    so memory stays flat."""
    where, params = filters.where()
    last = 0
    while True:
        ids = [r[0] for r in store.db.conn.execute(
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
    where, params = filters.where()
    files, size = store.db.conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(o.size), 0) FROM outputs o JOIN tasks t ON t.id = o.task_id "
        f"WHERE o.path IS NOT NULL AND {where}", params).fetchone()
    return files, size


def distinct_values(store: Store, column: str) -> list[str]:
    """The distinct values of an indexed column (model, teammate, task_type), by hopping
    through its index: one lookup per value rather than a scan of every task."""
    if column not in ("model", "teammate", "task_type"):
        raise ValueError(column)
    rows = store.db.conn.execute(
        f"WITH RECURSIVE v(x) AS (SELECT MIN({column}) FROM tasks UNION ALL "
        f"SELECT (SELECT MIN({column}) FROM tasks WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL) "
        f"SELECT x FROM v WHERE x IS NOT NULL")
    return [r[0] for r in rows]


def recent_groups(store: Store, limit: int = 50) -> list[dict]:
    """Comparison groups in view, newest first: `group_id`, how many `tasks`, which `models`, its
    `prompt` (the first task's), who submitted it (`teammates`) and when (`last_at`)."""
    rows = store.db.conn.execute(
        "SELECT group_id, COUNT(*) AS tasks, MAX(created_at) AS last_at, group_concat(DISTINCT model) AS models, "
        "group_concat(DISTINCT NULLIF(teammate, '')) AS teammates, "
        "(SELECT json_extract(f.request_json, '$.promptText') FROM tasks f WHERE f.group_id = t.group_id "
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


# ---------------------------------------------------------------- describing a request

def describe_uri(uri: str) -> str:
    """Where a media input came from, short: an upload, a Runway upload, or the URL's host and file."""
    if uri.startswith(("data:", "stored:")):
        return "uploaded file"
    if uri.startswith("runway://"):
        return "Runway upload"
    parts = urlsplit(uri)
    name = parts.path.rsplit("/", 1)[-1]
    return f"{parts.netloc}/…/{name}" if name and parts.path.count("/") > 1 else f"{parts.netloc}{parts.path}"


def source_task(task: dict, uri: str) -> int | None:
    """The earlier task whose output this media input of the task is (known by its content,
    `Store.with_input_sources`), if it is one."""
    digest = input_digest(uri)
    return (task.get("inputs_from") or {}).get(digest) if digest else None


def describe_input(task: dict, uri: str) -> str:
    """Where one of the task's media inputs came from: `output of #N`, else as `describe_uri` says."""
    source = source_task(task, uri)
    return f"output of #{source}" if source else describe_uri(uri)


def run_seconds(task: dict) -> float | None:
    """From Runway accepting the task to its end, queue included, for a finished task. (The
    start of the run itself is only known to a poll interval, so it is not the reference.)"""
    start, end = task.get("submitted_at") or task.get("created_at"), task.get("finished_at")
    if not start or not end:
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def input_summary(task: dict) -> list[str]:
    """A task's inputs other than the prompt, one short phrase each (ratio, duration, seed, sources)."""
    return [phrase for _, phrases in input_phrases(task).values() for phrase in phrases]


def input_phrases(task: dict) -> dict[str, tuple[str, list[str]]]:
    """What `input_summary` says, by request property: (the field's label, its phrases). A switch
    that is off has no phrase."""
    request = task.get("request") or {}
    try:
        model = catalog.find_model(task["task_type"], task["model"])
    except KeyError:
        model = None
    found: dict[str, tuple[str, list[str]]] = {}
    media = catalog.media_fields(task["task_type"], task["model"])
    for key, value in request.items():
        if key in ("model", "promptText") or key in media or value in (None, "", []):
            continue
        f = model.field(key) if model else None
        label = (f.label if f else key).lower()
        if key == "duration":
            phrase = f"{value:g} s" if isinstance(value, (int, float)) else f"{value} s"
        elif key == "ratio":
            phrase = str(value)
        elif isinstance(value, bool):
            phrase = label if value else ""
        elif isinstance(value, dict):
            phrase = f"{label}: " + ", ".join(str(v) for v in value.values())
        else:
            phrase = f"{label} {value}"
        found[key] = (label, [phrase] if phrase else [])
    for f, uri in catalog.media_inputs(task):
        found.setdefault(f.name, (f.label.lower(), []))[1].append(f"{f.label.lower()}: {describe_input(task, uri)}")
    return found


def reuse_targets(mime: str | None) -> list[catalog.TaskType]:
    """Task types that work on an output of this type (a video into Video Upscale, say): some
    model of the type requires it, so an optional reference somewhere does not make a target."""
    kind = media.kind_of(mime)
    if kind is None:
        return []
    return [t for t in catalog.TASK_TYPES
            if any(kind in f.media for m in t.models for f in m.fields if f.kind in catalog.MEDIA_KINDS and f.required)]


# ---------------------------------------------------------------- actions

def can_cancel(task: dict) -> bool:
    return (task["status"] in lifecycle.UNFINISHED and task.get("submit_state") == SUBMITTED
            and bool(task.get("task_uuid")) and not task.get("cancel_requested_at"))


def can_rerun(task: dict) -> bool:
    """Finished tasks may run again, except safety rejections (the same inputs would be refused again)."""
    if not lifecycle.is_terminal(task["status"]) or not lifecycle.retry_allowed(task.get("failure_code")):
        return False
    try:
        catalog.find_model(task["task_type"], task["model"])
    except KeyError:
        return False
    return True


def can_remove(task: dict) -> bool:
    """Only finished tasks: an unfinished one would keep running, unseen; cancel it first."""
    return lifecycle.is_terminal(task["status"])


def cancel(store: Store, backend: Backend, task_id: int, teammate: str = "") -> None:
    """Ask Runway to cancel the task. The poller then reads it again at once and records
    CANCELLED, or whatever state it reached first."""
    task = store.task(task_id)
    if task is None or not can_cancel(task):
        raise ActionRefused(f"Task #{task_id} cannot be cancelled: it has finished, was never created, "
                            "or a cancel is already on its way.")
    if task["backend"] != backend.name:
        raise ActionRefused(f"Task #{task_id} belongs to {task['backend']}; the dashboard now uses "
                            f"{backend.label}, so it cannot cancel it.")
    try:
        with backend.client() as client:
            client.cancel_task(task["task_uuid"])
    except RunwayError as exc:
        raise ActionRefused(exc.user_message) from exc
    store.mark_cancel_requested(task_id, "cancel requested" + (f" by {teammate}" if teammate else ""))


def rerun(store: Store, backend: Backend, task_id: int, teammate: str = "") -> SubmitResult:
    """Submit the task again with the same inputs, as a child of the original, in the same group."""
    task = store.task(task_id)
    if task is None or not can_rerun(task):
        raise ActionRefused(f"Task #{task_id} cannot be re-run: it is unfinished, or its inputs were "
                            "refused by Runway's safety checks.")
    try:
        request = store.restore_request(task["request"])
    except OSError as exc:
        raise ActionRefused(f"An uploaded input of task #{task_id} is no longer stored; "
                            "submit it again from its page.") from exc
    inputs = {k: v for k, v in request.items() if k != "model"}
    return submit_task(store, backend, task_type=task["task_type"], model_id=task["model"], inputs=inputs,
                       teammate=teammate, group_id=task.get("group_id"), parent_task_id=task_id)


def remove(store: Store, task_id: int, static_dir: Path = archive.STATIC_DIR, teammate: str = "") -> int:
    """Remove a finished task from the history: hidden from every page, still counted in the
    record of spend (the CSV of all rows lists it, marked removed, with its credits). Its own
    archived files (and their posters) are deleted; returns how many outputs' files went. A file
    another task's output also uses stays; so does an uploaded input another task uses."""
    task = store.task(task_id)
    if task is None or task.get("removed_at"):
        return 0
    if not can_remove(task):
        raise ActionRefused(f"Task #{task_id} is still running; cancel it before removing it.")
    return sum(archive.delete_archived(path, static_dir) for path in store.remove_task(task_id, teammate))
