"""Task and output rows written straight into SQLite, for tests that need a big or
precisely shaped history fast (submitting through the API would take minutes)."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

from lib.store import OUT_ARCHIVED, REVIEW_ROWS, SUBMITTED, Store

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
COLUMNS = ("backend", "task_type", "model", "endpoint", "request_json", "submit_state", "status", "api_status",
           "progress", "failure", "failure_code", "estimated_credits", "cost_credits", "teammate", "group_id",
           "parent_task_id", "created_at", "submitted_at", "started_at", "finished_at", "updated_at", "task_uuid")


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_row(**fields) -> dict:
    """A succeeded text-to-video task unless told otherwise; `prompt` and `request` shape the request."""
    model = fields.pop("model", "gen4.5")
    request = fields.pop("request", None) or {"model": model, "promptText": fields.pop("prompt", "a red fox"),
                                              "ratio": "1280:720", "duration": 5}
    created = fields.pop("created", START)
    status = fields.pop("status", "SUCCEEDED")
    row = {
        "backend": "simulator", "task_type": "text_to_video", "model": model, "endpoint": "/v1/text_to_video",
        "request_json": json.dumps(request, ensure_ascii=False), "submit_state": SUBMITTED, "status": status,
        "api_status": status, "progress": None, "failure": None, "failure_code": None, "estimated_credits": 60.0,
        "cost_credits": 60.0 if status == "SUCCEEDED" else None, "teammate": "", "group_id": None,
        "parent_task_id": None, "created_at": iso(created), "submitted_at": iso(created + timedelta(seconds=1)),
        "started_at": iso(created + timedelta(seconds=5)),
        "finished_at": iso(created + timedelta(seconds=30)) if status in ("SUCCEEDED", "FAILED", "CANCELLED")
        else None,
        "updated_at": iso(created), "task_uuid": f"uuid-{created.timestamp()}-{model}",
    }
    row.update(fields)
    return row


def insert_tasks(store: Store, rows: list[dict]) -> list[int]:
    """Insert task rows (from task_row) in one transaction; returns their ids in order."""
    sql = f"INSERT INTO tasks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    with store.immediate() as conn:
        # Each row's own id: ids are never reused, so they need not follow MAX(id).
        return [conn.execute(sql, tuple(r[c] for c in COLUMNS)).lastrowid for r in rows]


def insert_task(store: Store, **fields) -> int:
    return insert_tasks(store, [task_row(**fields)])[0]


def insert_output(store: Store, task_id: int, *, position: int = 0, path: str | None = None,
                  mime: str = "video/mp4", size: int = 1000, url: str | None = None) -> int:
    """An output row; archived when it has a path."""
    cur = store.db.conn.execute(
        "INSERT INTO outputs (task_id, position, url, state, path, mime, size, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (task_id, position, url or f"https://cdn.test/{task_id}/{position}.mp4?_jwt=x",
         OUT_ARCHIVED if path else "pending", path, mime if path else None, size if path else None,
         "ab" * 32 if path else None))
    return cur.lastrowid


REVIEW_COLUMNS = ("task_id", "reviewer", "rating", "notes", "winner", "compared", "updated_at")


def insert_reviews(store: Store, rows: list[dict]) -> None:
    """Review rows (task_id, reviewer and any of rating, notes, winner, compared) in one transaction."""
    sql = (f"INSERT INTO {REVIEW_ROWS} ({', '.join(REVIEW_COLUMNS)}) VALUES ({', '.join('?' * len(REVIEW_COLUMNS))})")
    with store.immediate() as conn:
        conn.executemany(sql, [tuple({"winner": 0, "updated_at": iso(START), **r}.get(c) for c in REVIEW_COLUMNS)
                               for r in rows])


def comparison_history(store: Store, groups: int, models: tuple[str, ...] = ("gen4.5", "veo3.1", "gen4_turbo"),
                       reviewers: tuple[str, ...] = ("Maya", "Leo"), strength: tuple[float, ...] = (0.6, 0.3, 0.1),
                       seed: int = 13) -> list[int]:
    """`groups` comparison groups of text-to-video tasks, one task per model, each judged by one
    reviewer: a winner vote drawn by `strength` and a rating of each task. Returns the task ids."""
    rng = random.Random(seed)
    rows = [task_row(model=m, group_id=f"cmp-{g}", teammate=reviewers[g % len(reviewers)],
                     created=START + timedelta(minutes=g), cost_credits=60.0 + 20 * i,
                     started_at=iso(START + timedelta(minutes=g, seconds=2 + i)),
                     finished_at=iso(START + timedelta(minutes=g, seconds=20 + 15 * i + rng.random() * 10)))
            for g in range(groups) for i, m in enumerate(models)]
    ids = insert_tasks(store, rows)
    reviews = []
    for g in range(groups):
        members = ids[g * len(models):(g + 1) * len(models)]
        winner = rng.choices(members, weights=strength)[0]
        reviewer = reviewers[g % len(reviewers)]
        for task_id, weight in zip(members, strength):
            rating = min(5, 1 + round(weight * 6 + rng.random()))
            reviews.append({"task_id": task_id, "reviewer": reviewer, "rating": rating,
                            "winner": int(task_id == winner),
                            "compared": json.dumps(members) if task_id == winner else None})
    insert_reviews(store, reviews)
    return ids
