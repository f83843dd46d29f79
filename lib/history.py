"""A task in words: where each media input came from ("output of #12", "uploaded
file", a URL's host and file), its other inputs as short phrases under its own
model's labels, how long it ran, and which task types can take one of its
outputs as input. History, the Task page, Compare, the forms and the CSV all
say it this way.
"""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from lib import catalog, media
from lib.store import input_digest


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
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
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
