"""Task, output and review rows written straight into SQLite, for tests and benchmarks that need a
big or precisely shaped history fast (submitting through the API would take minutes): a few rows
shaped by hand, comparison groups with reviews, or years of generated tasks.

Archived outputs written here go to static/; `launch.remove_archived_outputs` removes exactly
the ones a database lists."""
from __future__ import annotations

import contextlib
import hashlib
import json
import random
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
    sql = f"INSERT INTO tasks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) RETURNING id"
    with store.immediate() as conn:
        # Each row's own id: ids are never reused, so they need not follow MAX(id).
        return [conn.execute(sql, tuple(r[c] for c in COLUMNS)).fetchone()[0] for r in rows]


def insert_task(store: Store, **fields) -> int:
    return insert_tasks(store, [task_row(**fields)])[0]


def insert_output(store: Store, task_id: int, *, position: int = 0, path: str | None = None,
                  mime: str = "video/mp4", size: int = 1000, url: str | None = None) -> int:
    """An output row; archived when it has a path."""
    cur = store.conn.execute(
        "INSERT INTO outputs (task_id, position, url, state, path, mime, size, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (task_id, position, url or f"https://cdn.test/{task_id}/{position}.mp4?_jwt=x",
         OUT_ARCHIVED if path else "pending", path, mime if path else None, size if path else None,
         "ab" * 32 if path else None))
    return cur.fetchone()[0]


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


TASK_MIX = [  # (task_type, model, output kind, ratio, has duration)
    ("text_to_video", "gen4.5", "video/mp4", "1280:720", True),
    ("image_to_video", "gen4_turbo", "video/mp4", "1280:720", True),
    ("image_to_video", "veo3.1", "video/mp4", "1920:1080", True),
    ("video_to_video", "aleph2", "video/mp4", "1280:720", False),
    ("text_to_image", "gen4_image", "image/png", "1920:1080", False),
    ("text_to_image", "gen4_image_turbo", "image/png", "1024:1024", False),
    ("sound_effect", "eleven_text_to_sound_v2", "audio/mpeg", None, True),
    ("video_upscale", "upscale_v1", "video/mp4", None, False),
]
TEAMMATES = ["Ana", "Bilal", "Chen", "Dara", "Eli", "Farah"]
WORDS = ["lighthouse", "dawn", "kite", "dunes", "paper", "boat", "rain", "street", "neon", "city", "forest", "fog",
         "drone", "orbit", "portrait", "studio", "light", "slow", "push", "macro", "water", "glass", "desert",
         "night", "market", "crowd", "cat", "piano", "ocean"]


def make_history(db_path: Path, n_tasks: int, *, unfinished: int = 0, seed: int = 6) -> Path:
    """A dashboard database holding `n_tasks` tasks spread over two years, written straight into
    SQLite in one transaction (100,000 tasks take a few seconds). Most succeeded with one archived
    output, some failed or were cancelled; the newest `unfinished` are still running but are not due
    for a poll, so no poller reads them."""
    Store(db_path).close()  # the schema, through the real migrations
    rng = random.Random(seed)
    start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    step = timedelta(days=730) / max(n_tasks, 1)
    tasks, outputs, events = [], [], []
    for i in range(1, n_tasks + 1):
        task_type, model, mime, ratio, timed = TASK_MIX[i % len(TASK_MIX)]
        created = start + step * i
        if i > n_tasks - unfinished:
            status, api_status = "PROCESSING", "RUNNING"
        else:
            roll = rng.random()
            status = "SUCCEEDED" if roll < 0.85 else "FAILED" if roll < 0.95 else "CANCELLED"
            api_status = status
        request = {"model": model, "promptText": " ".join(rng.choices(WORDS, k=rng.randint(4, 12)))}
        if ratio:
            request["ratio"] = ratio
        if timed:
            request["duration"] = rng.choice([5, 8, 10])
        request["seed"] = rng.randint(0, 2 ** 31)
        finished = iso(created + timedelta(seconds=40)) if status != "PROCESSING" else None
        failure = ("The output failed internal quality checks.", "INTERNAL.BAD_OUTPUT.CODE01") \
            if status == "FAILED" else (None, None)
        tasks.append((i, secrets.token_hex(16), "simulator", task_type, model, f"/v1/{task_type}",
                      json.dumps(request), "submitted", status, api_status,
                      1.0 if status == "SUCCEEDED" else 0.4, failure[0], failure[1], 60.0,
                      60.0 if status == "SUCCEEDED" else 0.0, rng.choice(TEAMMATES),
                      f"g{i // 4}" if i % 10 < 4 else None, iso(created), iso(created + timedelta(seconds=1)),
                      iso(created + timedelta(seconds=3)), finished, finished or iso(created)))
        events.append((i, iso(created), "PENDING", None, "recorded, sending to the API"))
        if status == "SUCCEEDED":
            name = secrets.token_urlsafe(18) + {"video/mp4": ".mp4", "image/png": ".png"}.get(mime, ".mp3")
            outputs.append((i, 0, f"http://127.0.0.1:9/outputs/{name}", "archived", f"static/{name}", mime,
                            5_000_000, secrets.token_hex(32), 1, finished))
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executemany(
            "INSERT INTO tasks (id, task_uuid, backend, task_type, model, endpoint, request_json, submit_state, "
            "status, api_status, progress, failure, failure_code, estimated_credits, cost_credits, teammate, "
            "group_id, created_at, submitted_at, started_at, finished_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tasks)
        conn.executemany("INSERT INTO outputs (task_id, position, url, state, path, mime, size, sha256, attempts, "
                         "archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", outputs)
        conn.executemany("INSERT INTO events (task_id, at, status, api_status, note) VALUES (?, ?, ?, ?, ?)", events)
    conn.execute("ANALYZE")
    conn.close()
    return db_path


def rate_history(db_path: Path, share: float = 0.15, seed: int = 3) -> int:
    """Ratings on a generated history, as a team leaves them: `share` of the tasks rated by one or
    two of four teammates, 1 to 5 stars. Returns how many reviews it wrote."""
    conn = sqlite3.connect(db_path)
    rng = random.Random(seed)
    ids = [r[0] for r in conn.execute("SELECT id FROM tasks")]
    rows = [(task_id, who, rng.randint(1, 5), "2026-01-01T00:00:00.000Z")
            for task_id in rng.sample(ids, int(len(ids) * share))
            for who in rng.sample(["Ana", "Bo", "Chen", "Dee"], rng.choice([1, 1, 2]))]
    with conn:
        conn.executemany("INSERT INTO review_rows (task_id, reviewer, rating, updated_at) VALUES (?, ?, ?, ?)", rows)
    conn.execute("ANALYZE")
    conn.close()
    return len(rows)


@contextlib.contextmanager
def archived_videos(db_path: Path, source: Path, count: int, label: str, posters: bool = False) -> Iterator[list[Path]]:
    """`count` succeeded text-to-video tasks, each with its own archived copy of the video in static/
    (and its poster, made as the archive makes it, when `posters`); yields the files written and
    removes them on the way out."""
    files = _archive_videos(db_path, source, count, label, posters)
    try:
        yield files
    finally:
        for path in files:
            path.unlink(missing_ok=True)


def _archive_videos(db_path: Path, source: Path, count: int, label: str, posters: bool) -> list[Path]:
    from lib import archive

    Store(db_path).close()
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    files = []
    conn = sqlite3.connect(db_path)
    with conn:
        for i in range(1, count + 1):
            name = f"{secrets.token_urlsafe(18)}.mp4"
            target = archive.STATIC_DIR / name
            shutil.copyfile(source, target)
            files.append(target)
            if posters:
                poster = archive.make_poster(target)
                if poster is None:
                    raise SystemExit("ffmpeg made no poster for the sample video")
                files.append(poster)
            created = f"2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00.000Z"
            conn.execute(
                "INSERT INTO tasks (id, task_uuid, backend, task_type, model, endpoint, request_json, submit_state, "
                "status, api_status, progress, estimated_credits, cost_credits, teammate, created_at, submitted_at, "
                "started_at, finished_at, updated_at) VALUES (?, ?, 'simulator', 'text_to_video', 'gen4.5', "
                "'/v1/text_to_video', ?, 'submitted', 'SUCCEEDED', 'SUCCEEDED', 1, 60, 60, 'bench', ?, ?, ?, ?, ?)",
                (i, secrets.token_hex(16), json.dumps({"model": "gen4.5", "promptText": f"{label} {i}",
                                                       "ratio": "1280:720", "duration": 10}),
                 created, created, created, created, created))
            conn.execute("INSERT INTO outputs (task_id, position, url, state, path, mime, size, sha256, attempts, "
                         "archived_at) VALUES (?, 0, ?, 'archived', ?, 'video/mp4', ?, ?, 1, ?)",
                         (i, f"http://127.0.0.1:9/outputs/{name}", f"static/{name}", len(data), digest, created))
    conn.close()
    return files
