"""The simulated API's state and behaviour, with no HTTP in it: tasks and their
lifecycle (PENDING, THROTTLED past the per-model concurrency, RUNNING with
progress, SUCCEEDED, FAILED, CANCELLED), credits and daily limits, uploads,
signed output URLs that expire, and the rendering of each task's output.

State lives on disk (SQLite plus media files under the state dir), and a
task's status is worked out from stored timestamps on each request rather
than by a ticking thread, so a restarted simulator still knows its tasks.
"""
from __future__ import annotations

import contextlib
import hashlib
import heapq
import hmac
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lib import contract, media, settings
from lib.simulator import pricing, render
from lib.simulator.faults import FaultRule

UPLOAD_TTL_SECONDS = 24 * 3600  # runway:// URIs are valid 24 h (docs/runway-api.md §6)
DAILY_WINDOW_SECONDS = 24 * 3600  # daily limits are a rolling 24 h
MONTHLY_SPEND_CAP = 10_000  # tier 1: $100
USAGE_MAX_DAYS = 90  # POST /v1/organization/usage: beforeDate at most 90 days after startDate
USAGE_DEFAULT_DAYS = 30
SPOKEN_CHARACTERS_PER_SECOND = 15  # how long a text takes to say, for speech made from text
UNSAFE_TAG, GLITCH_TAG = "#unsafe", "#glitch"
OUTPUT_EXTENSIONS = {"video": ".mp4", "image": ".png", "audio": ".mp3"}
OUTPUT_NAME = re.compile(r"[\w-]+\.\w+")

log = logging.getLogger(__name__)


def _env(setting: settings.Setting, kind: type = float) -> Callable[[], Any]:
    return setting.whole if kind is int else setting.number


@dataclass
class SimulatorConfig:
    api_key: str | None = None  # None: generated once and kept in the state dir
    state_dir: Path = Path("data/simulator")
    pending_seconds: float = field(default_factory=_env(settings.SIMULATOR_PENDING))
    run_seconds: float = field(default_factory=_env(settings.SIMULATOR_RUN))
    concurrency: int = field(default_factory=_env(settings.SIMULATOR_CONCURRENCY, int))
    output_ttl_seconds: float = field(default_factory=_env(settings.SIMULATOR_OUTPUT_TTL))
    credits: int = field(default_factory=_env(settings.SIMULATOR_CREDITS, int))
    daily_limit: int = field(default_factory=_env(settings.SIMULATOR_DAILY_LIMIT, int))
    max_side: int = field(default_factory=settings.simulator_max_side)
    clock: Callable[[], float] = time.time  # injectable so tests can move time


class ApiError(Exception):
    """An answer other than success: its HTTP status, message and (for 400s) the field issues."""

    def __init__(self, status: int, message: str, issues: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.issues = status, message, issues


def new_api_key() -> str:
    return "key_" + secrets.token_hex(64)


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Simulator:
    """One simulated Runway account, kept in its state dir."""

    def __init__(self, config: SimulatorConfig | None = None):
        self.config = config or SimulatorConfig()
        self.clock = self.config.clock
        self.state_dir = Path(self.config.state_dir)
        self.media_dir = self.state_dir / "media"
        self.upload_dir = self.state_dir / "uploads"
        for folder in (self.media_dir, self.upload_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.instance = uuid.uuid4().hex
        self.uvicorn_server = None  # set when served, so faults can drop connections
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.state_dir / "simulator.db", check_same_thread=False,
                                   isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps this crash-safe; tasks are polled often
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self.api_key = self.config.api_key or self._meta("api_key", new_api_key)
        self._secret = self._meta("signing_secret", lambda: secrets.token_hex(32)).encode()
        self.fault_rules: list[FaultRule] = []
        self.request_log: deque[dict] = deque(maxlen=10_000)
        self._renderer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="simulator-render")
        self._settled_until = -math.inf  # see _advance
        # Renders that a stopped simulator left unfinished start again.
        for row in self._db.execute("SELECT id FROM tasks WHERE status IS NULL AND outcome = 'success' "
                                    "AND rendered_at IS NULL"):
            self._renderer.submit(self._render, row["id"])

    def close(self) -> None:
        self._renderer.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._db.close()

    def _meta(self, key: str, make: Callable[[], str]) -> str:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row:
                return row["value"]
            self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, make()))
            return self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()["value"]

    # ------------------------------------------------------------ lifecycle

    def _timeline(self, task: sqlite3.Row) -> tuple[float, str | None, str | None, str | None]:
        """When an admitted task ends and how: (end, status, failureCode, failure).
        The end is infinite while a successful task's media is still rendering."""
        run_start = task["admitted_at"] + self.config.pending_seconds
        if task["outcome"] == "unsafe":
            return run_start, "FAILED", "SAFETY.INPUT.TEXT", "The prompt was flagged by content moderation."
        done = run_start + self.config.run_seconds
        if task["outcome"] == "glitch":
            return done, "FAILED", "INTERNAL.BAD_OUTPUT.CODE01", "The output failed internal quality checks."
        if task["rendered_at"] is None:
            return math.inf, None, None, None
        end = max(done, task["rendered_at"])
        if task["render_error"]:
            return end, "FAILED", "ASSET.INVALID", f"An input could not be used: {task['render_error']}."
        return end, "SUCCEEDED", None, None

    def _advance(self, now: float) -> None:
        """Bring stored state up to `now`: admit throttled tasks into free
        concurrency slots in submission order, and settle tasks that ended.

        Nothing can change before the next admission or ending found by the
        last pass, unless a task is created, cancelled or rendered (they call
        `_unsettle`), so until then this returns at once: a poll of 500 tasks
        is 500 lookups, not 500 passes over every unfinished task.
        """
        with self._lock:
            if now < self._settled_until:
                return
            with self._transaction():
                self._settled_until = self._advance_unlocked(now)

    def _unsettle(self) -> None:
        """A task was created, cancelled or rendered: the next `_advance` makes a full pass."""
        self._settled_until = -math.inf

    @contextlib.contextmanager
    def _transaction(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _advance_unlocked(self, now: float) -> float:
        """Returns when the next admission or ending is due (infinity: none is known yet)."""
        next_change = math.inf
        unfinished: dict[str, list[dict]] = {}
        for row in self._db.execute("SELECT * FROM tasks WHERE status IS NULL ORDER BY seq"):
            unfinished.setdefault(row["model"], []).append(dict(row))
        for model, tasks in unfinished.items():
            active = [t for t in tasks if t["admitted_at"] is not None]
            free = max(0, self.config.concurrency - len(active))
            # A slot that is free now was freed by one of the latest endings (a cancel, say).
            freed = [r[0] for r in self._db.execute(
                "SELECT finished_at FROM tasks WHERE model = ? AND admitted_at IS NOT NULL AND status IS NOT NULL "
                "ORDER BY finished_at DESC LIMIT ?", (model, free))]
            slots = [self._timeline(t)[0] for t in active] + freed + [-math.inf] * (free - len(freed))
            heapq.heapify(slots)
            for task in (t for t in tasks if t["admitted_at"] is None):
                start = max(task["created_at"], slots[0])
                if start > now:
                    next_change = min(next_change, start)
                    break
                heapq.heappop(slots)
                task["admitted_at"] = start
                self._db.execute("UPDATE tasks SET admitted_at = ? WHERE id = ?", (start, task["id"]))
                heapq.heappush(slots, self._timeline(task)[0])
                active.append(task)
            for task in active:
                end, status, code, failure = self._timeline(task)
                if end <= now:
                    cost = math.ceil(task["estimate"] - 1e-9) if status == "SUCCEEDED" else 0
                    self._db.execute("UPDATE tasks SET status = ?, finished_at = ?, cost = ?, failure_code = ?, "
                                     "failure = ? WHERE id = ?", (status, end, cost, code, failure, task["id"]))
                else:
                    next_change = min(next_change, end)
        return next_change

    def _task(self, task_id: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM tasks WHERE id = ? AND deleted = 0", (task_id,)).fetchone()

    def _task_json(self, task: sqlite3.Row, now: float, base_url: str) -> dict:
        body: dict[str, Any] = {"id": task["id"], "createdAt": iso_time(task["created_at"])}
        status = task["status"]
        if status is None:
            body["estimatedCost"] = {"credits": task["estimate"]}
            if task["admitted_at"] is None:
                body["status"] = "THROTTLED"
            elif now < task["admitted_at"] + self.config.pending_seconds:
                body["status"] = "PENDING"
            else:
                # Capped below 1: a task whose render runs late keeps RUNNING instead of looking done.
                elapsed = now - task["admitted_at"] - self.config.pending_seconds
                progress = min(0.99, elapsed / max(self.config.run_seconds, 1e-6))
                body.update(status="RUNNING", progress=round(progress, 3))
            return body
        body["status"] = status
        if status == "SUCCEEDED":
            body["output"] = [self._output_url(base_url, task["output"], now)]
        elif status == "FAILED":
            body.update(failure=task["failure"], failureCode=task["failure_code"])
        body["cost"] = {"credits": task["cost"]}
        return body

    def balance(self) -> int:
        spent = self._db.execute("SELECT COALESCE(SUM(cost), 0) FROM tasks").fetchone()[0]
        return int(self.config.credits - spent)

    def _daily_generations(self, now: float) -> dict[str, int]:
        rows = self._db.execute("SELECT model, COUNT(*) FROM tasks WHERE created_at > ? GROUP BY model",
                                (now - DAILY_WINDOW_SECONDS,))
        return {model: count for model, count in rows}

    # ------------------------------------------------------------ media

    def _output_url(self, base_url: str, name: str, now: float) -> str:
        expires = math.ceil(now + self.config.output_ttl_seconds)
        return f"{base_url}/outputs/{name}?exp={expires}&sig={self.sign(f'{name}:{expires}')}"

    def sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()[:40]

    def output_file(self, name: str, expires: str, signature: str) -> Path:
        """The file behind a signed output URL; ApiError 403 or 404 if it cannot be had."""
        if not expires.isdigit() or not hmac.compare_digest(self.sign(f"{name}:{expires}"), signature):
            raise ApiError(403, "Access denied: the signature is invalid.")
        if int(expires) < self.clock():
            raise ApiError(403, "Access denied: the URL has expired.")
        path = self.media_dir / name
        if not OUTPUT_NAME.fullmatch(name) or not path.is_file():
            raise ApiError(404, "The output no longer exists.")
        return path

    def _upload_row(self, uri: str) -> sqlite3.Row | None:
        """The stored file behind a runway:// URI, if it was uploaded and has not expired."""
        upload_id = uri.removeprefix("runway://uploads/")
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE id = ? AND file IS NOT NULL", (upload_id,)).fetchone()
        if row is None or row["created_at"] + UPLOAD_TTL_SECONDS < self.clock():
            return None
        return row

    def _input(self, uri: str) -> tuple[str | None, bytes | None]:
        """An input's media kind and bytes, trusting the bytes over the declared type;
        (None, None) for an https URL, which there is no internet to fetch."""
        if uri.startswith("data:"):
            mime, data = media.decode_data_uri(uri)
        elif uri.startswith("runway://") and (row := self._upload_row(uri)):
            mime, data = row["mime"], (self.upload_dir / row["file"]).read_bytes()
        else:
            return None, None
        return media.kind_of(media.sniff_mime(data[:64]) or mime), data

    def _render(self, task_id: str) -> None:
        with self._lock:
            task = self._task(task_id)
        if task is None:
            return
        endpoint, model_id = task["endpoint"], task["model"]
        body = json.loads(task["body"])
        out = self.media_dir / task["output"]
        problem = None
        try:
            self._make_output(out, endpoint, model_id, body)
        except render.RenderError as exc:
            problem = str(exc)
        except Exception:  # a simulator bug must fail the task, not leave it RUNNING forever
            log.exception("render of task %s failed", task_id)
            problem = "the simulator could not render this output"
        with self._lock:
            self._db.execute("UPDATE tasks SET rendered_at = ?, render_error = ? WHERE id = ?",
                             (self.clock(), problem, task_id))
            self._unsettle()  # the task's end is known now
            task = self._db.execute("SELECT status, deleted FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if task["deleted"] or task["status"] == "CANCELLED":
                out.unlink(missing_ok=True)

    def _make_output(self, out: Path, endpoint: str, model_id: str, body: dict) -> None:
        """Render a task's output from its request: media of the kind its endpoint produces,
        started from its first picture, as long as it asks (or as its first timed input)."""
        kind = contract.output_kind(endpoint, model_id)
        label = _words(body) or model_id
        visual: dict[str, bytes] = {}  # the first image or video input, which the output starts from
        timed = None  # the first video or sound input, whose length an output without a duration follows
        heard = False  # a sound input: a video made with one has a sound track
        for _, uri, _ in contract.body_media(contract.model(endpoint, model_id)["fields"], body):
            found, data = self._input(uri)
            if found in ("image", "video") and not visual:
                visual = {found: data}
            if found in ("video", "audio") and timed is None:
                timed = data
            heard = heard or found == "audio"
        seconds = pricing.requested_seconds(body)
        if seconds is None and timed is not None:
            seconds = min(render.media_duration(timed) or pricing.DEFAULT_SECONDS, render.MAX_DERIVED_SECONDS)
        if seconds is None and kind != "image" and (spoken := _spoken_text(endpoint, body)):
            seconds = min(max(1.0, len(spoken) / SPOKEN_CHARACTERS_PER_SECOND), render.MAX_DERIVED_SECONDS)
        seconds = seconds or pricing.DEFAULT_SECONDS
        size = render.parse_ratio(body.get("ratio")) or (None, None)
        if kind == "video":
            render.render_video(out, *size, seconds, label=label, max_side=self.config.max_side,
                                audio="tone" if body.get("audio") is True or heard else None, **visual)
        elif kind == "image" and endpoint == "/v1/image_upscale" and "image" in visual:
            render.render_upscale(out, visual["image"], body.get("scaleFactor", 2), max_side=self.config.max_side)
        elif kind == "image":
            render.render_image(out, *size, label=label, image=visual.get("image"), max_side=self.config.max_side)
        else:
            render.render_audio(out, seconds, label=label)

    # ------------------------------------------------------------ operations

    def endpoints(self) -> list[str]:
        return contract.endpoints()

    def _issues(self, endpoint: str, body: dict) -> list[dict]:
        """What is wrong with a create request: the contract's types first, then what the
        types leave to the API (prompt lengths its docs state, media that can be used)."""
        issues = contract.validate(endpoint, body)
        known = contract.load()["endpoints"][endpoint]["models"]
        if not isinstance(body.get("model"), str) or body["model"] not in known:
            return issues
        fields = known[body["model"]]["fields"]
        for name, spec in fields.items():
            limit = _PROMPT_LIMIT.search(spec["doc"])
            if limit and isinstance(body.get(name), str):
                length = len(body[name].encode("utf-16-le")) // 2
                if length > int(limit[1].replace(",", "")):
                    issues.append({"path": [name], "message": f"{name} is {length} characters; "
                                                               f"the limit is {limit[1]}."})
        for path, uri, kind in contract.body_media(fields, body):  # a uri of the wrong type is a type issue
            if isinstance(uri, str) and (problem := self._media_problem(uri, kind)):
                issues.append({"path": list(path), "message": f"{'.'.join(map(str, path))}: {problem}"})
        return issues

    def _media_problem(self, uri: str, kind: str) -> str | None:
        """Why a media input cannot be used, or None: an https URL, a live upload or a data URI of its kind."""
        if uri.startswith("data:"):
            info = media.parse_data_uri(uri)
            if info is None or not info.base64:
                return "the data URI is malformed; it must be base64."
            if media.kind_of(info.mime) != kind:
                return f"{info.mime} is not accepted here; use {', '.join(media.MIME_TYPES[kind])}."
            if info.size > media.DATA_URI_MAX_BYTES:
                return f"{info.size / media.MB:.1f} MB is over the 5 MB limit for inline files; upload it instead."
            return None
        if uri.startswith("runway://"):
            row = self._upload_row(uri)
            if row is None:
                return "unknown or expired runway:// URI; upload the file first."
            if media.kind_of(row["mime"]) != kind:
                return f"the uploaded file is {row['mime'] or 'not a known type'}, not {kind}."
            return None
        if uri.startswith("https://"):
            return f"the URL is longer than {media.URL_MAX_LENGTH} characters." if len(uri) > media.URL_MAX_LENGTH \
                else None
        return f"only HTTPS URLs, runway:// uploads and data URIs are accepted (got {uri.split(':', 1)[0]}:)."

    def create_task(self, endpoint: str, body: dict) -> dict:
        """Validate and start a task; its create answer, or ApiError."""
        issues = self._issues(endpoint, body)
        if issues:
            raise ApiError(400, issues[0]["message"], [{"code": "invalid", **issue} for issue in issues])
        model_id = body["model"]
        kind = contract.output_kind(endpoint, model_id)
        prompt = _words(body).lower()
        outcome = "unsafe" if UNSAFE_TAG in prompt else "glitch" if GLITCH_TAG in prompt else "success"
        estimate = pricing.estimate(endpoint, model_id, kind, body)
        task_id = str(uuid.uuid4())
        with self._lock:
            now = self.clock()
            self._advance(now)
            if self._daily_generations(now).get(model_id, 0) >= self.config.daily_limit:
                raise ApiError(429, f"Daily generation limit reached for {model_id}")
            if estimate > self.balance():
                raise ApiError(400, f"Not enough credits: this task may cost {estimate:g} credits and the "
                                    f"balance is {self.balance()}.")
            self._db.execute(
                "INSERT INTO tasks (id, model, endpoint, body, created_at, estimate, outcome, output) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, model_id, endpoint, json.dumps(body), now, estimate, outcome,
                 secrets.token_urlsafe(24) + OUTPUT_EXTENSIONS[kind]))
            self._unsettle()
            self._advance(now)
        if outcome == "success":
            self._renderer.submit(self._render, task_id)
        return {"id": task_id, "estimatedCost": {"credits": estimate}}

    def _task_now(self, task_id: str) -> tuple[float, sqlite3.Row]:
        """The time, and the task as it stands then; 404 if there is no such task. Lock held."""
        now = self.clock()
        self._advance(now)
        task = self._task(task_id)
        if task is None:
            raise ApiError(404, "Task not found")
        return now, task

    def get_task(self, task_id: str, base_url: str) -> dict:
        with self._lock:
            now, task = self._task_now(task_id)
            return self._task_json(task, now, base_url)

    def delete_task(self, task_id: str) -> None:
        """Cancel an unfinished task (charged only once running) or delete a finished one."""
        with self._lock:
            now, task = self._task_now(task_id)
            if task["status"] is None:
                running = task["admitted_at"] is not None and now >= task["admitted_at"] + self.config.pending_seconds
                cost = math.ceil(task["estimate"] - 1e-9) if running else 0
                self._db.execute("UPDATE tasks SET status = 'CANCELLED', finished_at = ?, cost = ? WHERE id = ?",
                                 (now, cost, task["id"]))
                self._unsettle()
                self._advance(now)  # the freed slot goes to the next throttled task
            else:
                self._db.execute("UPDATE tasks SET deleted = 1 WHERE id = ?", (task["id"],))
            (self.media_dir / task["output"]).unlink(missing_ok=True)

    def organization(self) -> dict:
        with self._lock:
            now = self.clock()
            self._advance(now)
            used = self._daily_generations(now)
            balance = self.balance()
        ids = sorted({model_id for _, model_id, _ in contract.models()})
        limits = {"maxConcurrentGenerations": self.config.concurrency, "maxDailyGenerations": self.config.daily_limit}
        return {
            "creditBalance": balance,
            "tier": {"maxMonthlyCreditSpend": MONTHLY_SPEND_CAP, "models": {m: dict(limits) for m in ids}},
            "usage": {"models": {m: {"dailyGenerations": used.get(m, 0)} for m in ids}},
        }

    def usage(self, body: dict) -> dict:
        """Credits spent per model per UTC day, in POST /v1/organization/usage's shape: from
        `startDate` (default 29 days ago, so that the default 30 days end with today) to
        `beforeDate` (exclusive; default 30 days on, at most 90)."""
        issues = [{"code": "invalid", "path": [name], "message": f"Unrecognized key {json.dumps(name)}."}
                  for name in body if name not in ("startDate", "beforeDate")]
        today = datetime.fromtimestamp(self.clock(), timezone.utc).date()
        dates = {}
        for name, default in (("startDate", today - timedelta(days=USAGE_DEFAULT_DAYS - 1)), ("beforeDate", None)):
            value = body.get(name)
            try:
                dates[name] = default if value is None else date.fromisoformat(value)
            except (TypeError, ValueError):
                issues.append({"code": "invalid", "path": [name],
                               "message": f"{name} must be a date as YYYY-MM-DD (got {json.dumps(value)})."})
        if not issues:
            start = dates["startDate"]
            before = dates["beforeDate"] or start + timedelta(days=USAGE_DEFAULT_DAYS)
            if not start < before <= start + timedelta(days=USAGE_MAX_DAYS):
                issues.append({"code": "invalid", "path": ["beforeDate"],
                               "message": f"beforeDate must be after startDate and at most {USAGE_MAX_DAYS} days "
                                          f"after it (got {start} to {before})."})
        if issues:
            raise ApiError(400, issues[0]["message"], issues)
        first = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
        last = datetime(before.year, before.month, before.day, tzinfo=timezone.utc).timestamp()
        with self._lock:
            self._advance(self.clock())
            rows = self._db.execute(
                "SELECT date(finished_at, 'unixepoch') AS day, model, SUM(cost) AS credits FROM tasks "
                "WHERE cost > 0 AND finished_at >= ? AND finished_at < ? GROUP BY day, model ORDER BY day, model",
                (first, last)).fetchall()
        by_day: dict[str, list[dict]] = {}
        for row in rows:
            by_day.setdefault(row["day"], []).append({"model": row["model"], "amount": int(row["credits"])})
        return {"models": sorted({row["model"] for row in rows}),
                "results": [{"date": day, "usedCredits": used} for day, used in by_day.items()]}

    # ------------------------------------------------------------ uploads

    def open_upload(self, filename: str) -> str:
        """A new upload's id; its file arrives later through `finish_upload`."""
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute("INSERT INTO uploads (id, filename, created_at) VALUES (?, ?, ?)",
                             (upload_id, filename, self.clock()))
        return upload_id

    def upload_filename(self, upload_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT filename FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return row["filename"] if row else None

    def finish_upload(self, upload_id: str, mime: str | None, size: int) -> None:
        with self._lock:
            self._db.execute("UPDATE uploads SET file = ?, mime = ?, size = ? WHERE id = ?",
                             (upload_id, media.normalise_mime(mime), size, upload_id))




_PROMPT_LIMIT = re.compile(r"up to ([\d,]+) characters")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _words(body: dict) -> str:
    """The request's own words, for the output's label and the simulated moderation."""
    speech = body.get("speech")
    return _text(body.get("promptText")) or (_text(speech.get("text")) if isinstance(speech, dict) else "")


def _spoken_text(endpoint: str, body: dict) -> str:
    """The text a speech output says: text to speech's prompt, an avatar's script."""
    return _words(body) if endpoint in ("/v1/text_to_speech", "/v1/avatar_videos") else ""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- submission order, for admission past the concurrency limit
    id TEXT UNIQUE NOT NULL,
    model TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    estimate REAL NOT NULL,
    outcome TEXT NOT NULL,      -- success | unsafe | glitch, decided from the prompt at creation
    output TEXT NOT NULL,       -- unguessable file name under media/
    admitted_at REAL,           -- when it got a concurrency slot; NULL while THROTTLED
    rendered_at REAL,
    render_error TEXT,
    status TEXT,                -- set once terminal; NULL means derive it from the times above
    finished_at REAL,
    cost INTEGER,
    failure TEXT,
    failure_code TEXT,
    deleted INTEGER NOT NULL DEFAULT 0  -- kept, so costs and daily counts survive a delete
);
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (status, model);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, created_at REAL NOT NULL, file TEXT, mime TEXT, size INTEGER
);
"""
