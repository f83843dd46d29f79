"""A Runway API simulator: a real HTTP server that speaks the contract of
runway-api.md and returns real, playable media made from the inputs.

It owns everything behind the simulator's URL: tasks and their lifecycle
(PENDING, THROTTLED past the per-model concurrency, RUNNING with progress,
SUCCEEDED, FAILED, CANCELLED), credits and daily limits, uploads, signed
output URLs that expire, and switchable faults plus a request log for tests.

State lives on disk (SQLite plus media files under the state dir), and a
task's status is worked out from stored timestamps on each request rather
than by a ticking thread, so a restarted simulator still knows its tasks.

    python -m lib.simulator --port 8800 [--state-dir data/simulator]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import hashlib
import heapq
import hmac
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from lib import catalog, media, render

API_VERSION = "2024-11-06"
UPLOAD_TTL_SECONDS = 24 * 3600  # runway:// URIs are valid 24 h (runway-api.md §6)
DAILY_WINDOW_SECONDS = 24 * 3600  # daily limits are a rolling 24 h
MONTHLY_SPEND_CAP = 10_000  # tier 1: $100
UNSAFE_TAG, GLITCH_TAG = "#unsafe", "#glitch"
OUTPUT_EXTENSIONS = {"video": ".mp4", "image": ".png", "audio": ".mp3"}

log = logging.getLogger(__name__)


def _env(name: str, default: float, kind: type = float) -> Callable[[], Any]:
    return lambda: kind(os.environ.get(name, default))


@dataclass
class SimulatorConfig:
    api_key: str | None = None  # None: generated once and kept in the state dir
    state_dir: Path = Path("data/simulator")
    pending_seconds: float = field(default_factory=_env("SIMULATOR_PENDING_SECONDS", 2))
    run_seconds: float = field(default_factory=_env("SIMULATOR_RUN_SECONDS", 8))
    concurrency: int = field(default_factory=_env("SIMULATOR_CONCURRENCY", 2, int))
    output_ttl_seconds: float = field(default_factory=_env("SIMULATOR_OUTPUT_TTL_SECONDS", 86400))
    credits: int = field(default_factory=_env("SIMULATOR_CREDITS", 10000, int))
    daily_limit: int = field(default_factory=_env("SIMULATOR_DAILY_LIMIT", 500, int))
    max_side: int = field(default_factory=render.default_max_side)
    clock: Callable[[], float] = time.time  # injectable so tests can move time


def new_api_key() -> str:
    return "key_" + secrets.token_hex(64)


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


# ---------------------------------------------------------------- faults

@dataclass
class FaultRule:
    """Applies to the next `count` requests whose path starts with `path_prefix`
    (and whose method is `method`, if given): wait `delay` seconds, then answer
    `status`, drop the connection or send a malformed body; report
    `status_value` as the task's status (task reads only); or send half of the
    real body and pause `slow_body` seconds before the rest (a download caught
    half written). A `delay` on its own handles the request and answers late,
    as a slow server does: a slow create still creates its task."""

    count: int = 1
    path_prefix: str = "/v1/"
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    malformed: bool = False
    status_value: str | None = None
    slow_body: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> FaultRule:
        if not isinstance(data, dict) or set(data) - {f.name for f in fields(cls)}:
            raise ValueError(f"a rule takes only {', '.join(f.name for f in fields(cls))}")
        rule = cls(**data)
        for name in ("status", "retry_after", "delay", "slow_body"):
            value = getattr(rule, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{name} must be a number")
        if not (rule.status or rule.delay or rule.drop or rule.malformed or rule.status_value or rule.slow_body):
            raise ValueError("a rule needs one of status, delay, drop, malformed, status_value, slow_body")
        if not isinstance(rule.count, int) or rule.count < 1:
            raise ValueError("count must be a positive integer")
        return rule

    def matches(self, method: str, path: str) -> bool:
        if self.status_value and not (method == "GET" and path.startswith("/v1/tasks/")):
            return False
        return (self.count > 0 and path.startswith(self.path_prefix)
                and (self.method is None or self.method.upper() == method))


# ---------------------------------------------------------------- the simulator

class Simulator:
    """The simulated API's state and its ASGI app (`simulator.app`)."""

    def __init__(self, config: SimulatorConfig | None = None):
        self.config = config or SimulatorConfig()
        self.clock = self.config.clock
        self.state_dir = Path(self.config.state_dir)
        self.media_dir = self.state_dir / "media"
        self.upload_dir = self.state_dir / "uploads"
        for folder in (self.media_dir, self.upload_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.instance = uuid.uuid4().hex
        self.uvicorn_server: uvicorn.Server | None = None  # set when served, so faults can drop connections
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
        self.app = _Frontdoor(self, self._routes())
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
        return f"{base_url}/outputs/{name}?exp={expires}&sig={self._sign(f'{name}:{expires}')}"

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()[:40]

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
        model = catalog.models_for_endpoint(task["endpoint"])[task["model"]]
        body = json.loads(task["body"])
        label = body.get("promptText") or model.id
        out = self.media_dir / task["output"]
        problem = None
        try:
            visual: dict[str, bytes] = {}  # the first image or video input, which the output starts from
            video_input = None  # the first video input, whose length an output without a duration follows
            for _, uri, _ in _media_refs(model, body):
                kind, data = self._input(uri)
                if kind in ("image", "video") and not visual:
                    visual = {kind: data}
                if kind == "video" and video_input is None:
                    video_input = data
            size = render.parse_ratio(body.get("ratio")) or (None, None)
            if model.output == "video":
                seconds = body.get("duration")
                if seconds is None and not model.field("duration") and video_input is not None:
                    seconds = min(render.media_duration(video_input) or model.default_duration,
                                  render.MAX_DERIVED_SECONDS)
                render.render_video(out, *size, seconds or model.default_duration, label=label,
                                    max_side=self.config.max_side,
                                    audio="tone" if body.get("audio") is True else None, **visual)
            elif model.output == "image":
                render.render_image(out, *size, label=label, image=visual.get("image"),
                                    max_side=self.config.max_side)
            else:
                render.render_audio(out, body.get("duration") or model.default_duration, label=label)
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

    # ------------------------------------------------------------ handlers

    def _routes(self) -> Starlette:
        routes = [Route(endpoint, self.create_task, methods=["POST"]) for endpoint in catalog.ENDPOINTS]
        routes += [
            Route("/v1/tasks/{task_id}", self.get_task, methods=["GET"]),
            Route("/v1/tasks/{task_id}", self.delete_task, methods=["DELETE"]),
            Route("/v1/organization", self.organization, methods=["GET"]),
            Route("/v1/uploads", self.create_upload, methods=["POST"]),
            Route("/uploads", self.receive_upload, methods=["POST"]),
            Route("/outputs/{name}", self.output_file, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/_simulator/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route("/_simulator/requests", self.requests, methods=["GET", "DELETE"]),
        ]

        async def http_error(request: Request, exc: HTTPException) -> Response:
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error})

    async def create_task(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return error(400, "The request body must be a JSON object.")
        endpoint = request.url.path
        models = catalog.models_for_endpoint(endpoint)
        model = models.get(body.get("model")) if isinstance(body.get("model"), str) else None
        if model is None:
            message = f"Invalid parameter 'model': choose one of {', '.join(models)}."
            return error(400, message, issues=[{"code": "invalid", "path": ["model"], "message": message}])
        issues = [(i.field, i.message) for i in catalog.validate_request(model, body)]
        if not issues:
            for where, uri, kinds in _media_refs(model, body):
                if uri.startswith("runway://"):
                    row = self._upload_row(uri)
                    if row is None:
                        issues.append((where, f"{where}: unknown or expired runway:// URI; upload the file first."))
                    elif media.kind_of(row["mime"]) not in kinds:
                        issues.append((where, f"{where}: the uploaded file is {row['mime'] or 'not a known type'}, "
                                              f"not {' or '.join(kinds)}."))
        if issues:
            return error(400, issues[0][1], issues=[
                {"code": "invalid", "path": [int(p) if p.isdigit() else p for p in where.split(".")],
                 "message": message} for where, message in issues])

        prompt = (body.get("promptText") or "").lower()
        outcome = "unsafe" if UNSAFE_TAG in prompt else "glitch" if GLITCH_TAG in prompt else "success"
        estimate = catalog.estimate_credits(model, body)
        task_id = str(uuid.uuid4())
        with self._lock:
            now = self.clock()
            self._advance(now)
            if self._daily_generations(now).get(model.id, 0) >= self.config.daily_limit:
                return error(429, f"Daily generation limit reached for {model.id}")
            if estimate > self.balance():
                return error(400, f"Not enough credits: this task may cost {estimate:g} credits and the "
                                  f"balance is {self.balance()}.")
            self._db.execute(
                "INSERT INTO tasks (id, model, endpoint, body, created_at, estimate, outcome, output) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, model.id, endpoint, json.dumps(body), now, estimate, outcome,
                 secrets.token_urlsafe(24) + OUTPUT_EXTENSIONS[model.output]))
            self._unsettle()
            self._advance(now)
        if outcome == "success":
            self._renderer.submit(self._render, task_id)
        return JSONResponse({"id": task_id, "estimatedCost": {"credits": estimate}})

    async def get_task(self, request: Request) -> Response:
        with self._lock:
            now = self.clock()
            self._advance(now)
            task = self._task(request.path_params["task_id"])
            if task is None:
                return error(404, "Task not found")
            body = self._task_json(task, now, str(request.base_url).rstrip("/"))
        if status_value := request.scope.get("state", {}).get("status_value"):
            body["status"] = status_value
        return JSONResponse(body)

    async def delete_task(self, request: Request) -> Response:
        with self._lock:
            now = self.clock()
            self._advance(now)
            task = self._task(request.path_params["task_id"])
            if task is None:
                return error(404, "Task not found")
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
        return Response(status_code=204)

    async def organization(self, request: Request) -> Response:
        with self._lock:
            now = self.clock()
            self._advance(now)
            used = self._daily_generations(now)
            balance = self.balance()
        ids = sorted({m.id for t in catalog.TASK_TYPES for m in t.models})
        limits = {"maxConcurrentGenerations": self.config.concurrency, "maxDailyGenerations": self.config.daily_limit}
        return JSONResponse({
            "creditBalance": balance,
            "tier": {"maxMonthlyCreditSpend": MONTHLY_SPEND_CAP, "models": {m: dict(limits) for m in ids}},
            "usage": {"models": {m: {"dailyGenerations": used.get(m, 0)} for m in ids}},
        })

    async def create_upload(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return error(400, "The request body must be a JSON object.")
        issues = []
        filename = body.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            issues.append({"code": "invalid", "path": ["filename"], "message": "filename is required."})
        if body.get("type") != "ephemeral":
            issues.append({"code": "invalid", "path": ["type"], "message": "type must be 'ephemeral'."})
        if issues:
            return error(400, issues[0]["message"], issues=issues)
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute("INSERT INTO uploads (id, filename, created_at) VALUES (?, ?, ?)",
                             (upload_id, filename, self.clock()))
        # Shaped like an S3 presigned POST: the fields carry a signed policy naming the upload.
        policy = base64.urlsafe_b64encode(json.dumps({"upload": upload_id}).encode()).decode()
        safe_name = re.sub(r"[^\w.-]", "_", filename)[-100:]
        return JSONResponse({
            "uploadUrl": f"{str(request.base_url).rstrip('/')}/uploads",
            "fields": {"key": f"uploads/{upload_id}/{safe_name}", "policy": policy, "signature": self._sign(policy)},
            "runwayUri": f"runway://uploads/{upload_id}",
        })

    async def receive_upload(self, request: Request) -> Response:
        declared = int(request.headers.get("content-length") or 0)
        if declared > media.UPLOAD_MAX_BYTES + media.MB:
            return error(400, "The file is larger than 200 MB.")
        async with request.form() as form:
            policy, signature, upload = form.get("policy"), form.get("signature"), form.get("file")
            if not isinstance(policy, str) or not hmac.compare_digest(self._sign(policy), str(signature or "")):
                return error(403, "The upload policy is missing or its signature does not match.")
            upload_id = json.loads(base64.urlsafe_b64decode(policy))["upload"]
            with self._lock:
                row = self._db.execute("SELECT filename FROM uploads WHERE id = ?", (upload_id,)).fetchone()
            if row is None:
                return error(403, "The upload policy names an unknown upload.")
            if not isinstance(upload, UploadFile):
                return error(400, "The form has no file part.")
            size = upload.size or 0
            if not media.UPLOAD_MIN_BYTES <= size <= media.UPLOAD_MAX_BYTES:
                return error(400, f"Files must be between 512 bytes and 200 MB (got {size} bytes).")
            head = await upload.read(64)
            await upload.seek(0)
            mime = media.sniff_mime(head) or media.mime_from_name(row["filename"]) or upload.content_type
            with open(self.upload_dir / upload_id, "wb") as target:
                await asyncio.to_thread(shutil.copyfileobj, upload.file, target)
        with self._lock:
            self._db.execute("UPDATE uploads SET file = ?, mime = ?, size = ? WHERE id = ?",
                             (upload_id, media.normalise_mime(mime), size, upload_id))
        return Response(status_code=204)

    async def output_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        expires = request.query_params.get("exp", "")
        signature = request.query_params.get("sig", "")
        if not expires.isdigit() or not hmac.compare_digest(self._sign(f"{name}:{expires}"), signature):
            return error(403, "Access denied: the signature is invalid.")
        if int(expires) < self.clock():
            return error(403, "Access denied: the URL has expired.")
        path = self.media_dir / name
        if not re.fullmatch(r"[\w-]+\.\w+", name) or not path.is_file():
            return error(404, "The output no longer exists.")
        return FileResponse(path, media_type=media.mime_from_name(name))

    async def health(self, request: Request) -> Response:
        return JSONResponse({"simulator": True, "instance": self.instance})

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                rules = [FaultRule.from_json(rule) for rule in json.loads(await request.body())["rules"]]
            except (ValueError, KeyError, TypeError) as exc:
                return error(400, f"Expected {{\"rules\": [...]}}: {exc}")
            self.fault_rules = rules  # the posted list replaces the active one
        elif request.method == "DELETE":
            self.fault_rules = []
        return JSONResponse({"rules": [asdict(rule) for rule in self.fault_rules]})

    async def requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.request_log.clear()
        return JSONResponse({"requests": list(self.request_log)})

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        """The first active rule matching a request, used up by one."""
        for rule in self.fault_rules:
            if rule.matches(method, path):
                rule.count -= 1
                return rule
        return None


class _Frontdoor:
    """What every request passes before the routes: the request log, injected
    faults, then the API's header checks."""

    def __init__(self, simulator: Simulator, routes: Starlette):
        self.simulator = simulator
        self.routes = routes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.routes(scope, receive, send)
        sim = self.simulator
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        admin = path.startswith("/_simulator/")
        entry = {"method": method, "path": path, "time": sim.clock(),
                 "auth": "authorization" in headers, "status": None}

        async def logged_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        if not admin:
            sim.request_log.append(entry)
            rule = sim.take_fault(method, path)
            if rule is not None:
                if rule.delay and (rule.status or rule.drop or rule.malformed):
                    await asyncio.sleep(rule.delay)
                elif rule.delay:  # a slow server: the request is handled, the answer comes late
                    logged_send = _answer_late(logged_send, rule.delay)
                if rule.drop and await self._drop(scope):
                    return
                if rule.status:
                    retry = {"Retry-After": f"{rule.retry_after:g}"} if rule.retry_after is not None else {}
                    response = JSONResponse({"error": f"Simulated fault: HTTP {rule.status}."},
                                            status_code=rule.status, headers=retry)
                    return await response(scope, receive, logged_send)
                if rule.malformed:
                    response = Response(b'{"id": "', media_type="application/json")
                    return await response(scope, receive, logged_send)
                if rule.status_value:
                    scope.setdefault("state", {})["status_value"] = rule.status_value
                if rule.slow_body:
                    logged_send = _pause_halfway(logged_send, rule.slow_body)

        if path.startswith("/v1/") or admin:
            token = headers.get("authorization", "")
            if not hmac.compare_digest(token.encode(), f"Bearer {sim.api_key}".encode()):
                problem = "Missing API key" if not token else "Invalid API key"
                return await error(401, f"{problem}: send Authorization: Bearer <key>.")(scope, receive, logged_send)
            if not admin and headers.get("x-runway-version") != API_VERSION:
                return await error(400, f"Missing or unsupported X-Runway-Version header; use {API_VERSION}.")(
                    scope, receive, logged_send)
        await self.routes(scope, receive, logged_send)

    async def _drop(self, scope: dict) -> bool:
        """Close the client's connection with no response at all (uvicorn only)."""
        server = self.simulator.uvicorn_server
        client = tuple(scope.get("client") or ())
        for connection in list(server.server_state.connections if server else ()):
            if getattr(connection, "client", None) == client:
                connection.transport.abort()
                await asyncio.sleep(0.01)  # lets uvicorn notice, so it sends no error page
                return True
        return False


def _answer_late(send: Callable, seconds: float) -> Callable:
    """A `send` that holds the response back for `seconds` after the request was handled."""
    async def late_send(message: dict) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(seconds)
        await send(message)

    return late_send


def _pause_halfway(send: Callable, seconds: float) -> Callable:
    """A `send` that delivers the first half of the first body chunk, then waits before the rest."""
    paused = False

    async def pausing_send(message: dict) -> None:
        nonlocal paused
        body = message.get("body", b"")
        if message["type"] != "http.response.body" or paused or len(body) < 2:
            return await send(message)
        paused = True
        await send({"type": "http.response.body", "body": body[:len(body) // 2], "more_body": True})
        await asyncio.sleep(seconds)
        await send({**message, "body": body[len(body) // 2:]})

    return pausing_send


async def _json_object(request: Request) -> dict | None:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _media_refs(model: catalog.Model, body: dict):
    """(field path, uri, accepted kinds) for every media input in a request body."""
    for f in model.fields:
        value = body.get(f.name)
        if value is None:
            continue
        if f.kind == "media" and f.typed and isinstance(value, dict):
            yield f.name, str(value.get("uri", "")), (value.get("type"),)
        elif f.kind in ("media", "media_list") and isinstance(value, list):
            for i, item in enumerate(value):
                uri = item.get("uri") if isinstance(item, dict) else item
                yield f"{f.name}.{i}", str(uri or ""), f.media
        elif f.kind == "media" and isinstance(value, str):
            yield f.name, value, f.media


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


# ---------------------------------------------------------------- serving

class SimulatorServer:
    """The simulator served by uvicorn on a daemon thread."""

    def __init__(self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.config = config or SimulatorConfig()
        self.host, self.port = host, port
        self.simulator: Simulator | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.simulator.api_key

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def start(self) -> SimulatorServer:
        # Binding here, not in uvicorn, gives the real port when asked for port 0. The protocol is
        # named because asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP;
        # with it on, every answer waited ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.simulator = Simulator(self.config)
        self._server = uvicorn.Server(uvicorn.Config(self.simulator.app, log_level="warning", access_log=False,
                                                     lifespan="off", http="h11", timeout_keep_alive=5))
        self.simulator.uvicorn_server = self._server
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"simulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and finish the render in progress; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
            self.simulator.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_embedded: dict[Path, SimulatorServer] = {}
_embedded_lock = threading.Lock()


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _publish(state_dir: Path, server: SimulatorServer) -> None:
    """Write simulator.json so other processes find this simulator instead of starting a stranger."""
    target = state_dir / "simulator.json"
    partial = target.with_suffix(".json.part")
    partial.write_text(json.dumps({"port": server.port, "api_key": server.api_key,
                                   "instance": server.simulator.instance, "pid": os.getpid()}))
    os.chmod(partial, 0o600)
    os.replace(partial, target)


def _reachable(info: dict) -> bool:
    try:
        answer = httpx.get(f"http://127.0.0.1:{info['port']}/health", timeout=2).json()
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return (isinstance(answer, dict) and answer.get("simulator") is True
            and answer.get("instance") == info.get("instance"))


def ensure_simulator(state_dir: str | Path) -> tuple[str, str]:
    """(url, api_key) of the simulator for `state_dir`: the one already running
    for it (in this process or another), or a new one on a daemon thread here."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with _embedded_lock, _file_lock(state_dir / "simulator.lock"):
        server = _embedded.get(state_dir)
        if server is not None and server.running:
            return server.url, server.api_key
        try:
            info = json.loads((state_dir / "simulator.json").read_text())
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and _reachable(info):
            return f"http://127.0.0.1:{info['port']}", info["api_key"]
        server = SimulatorServer(SimulatorConfig(state_dir=state_dir)).start()
        _embedded[state_dir] = server
        _publish(state_dir, server)
        return server.url, server.api_key


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-dir", type=Path, default=Path("data/simulator"))
    args = parser.parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    server = SimulatorServer(SimulatorConfig(state_dir=args.state_dir), host=args.host, port=args.port)
    with _file_lock(args.state_dir / "simulator.lock"):
        server.start()
        _publish(args.state_dir, server)
    print(f"Runway simulator on {server.url} (state in {args.state_dir})\n"
          f"  RUNWAYML_BASE_URL={server.url}\n  RUNWAYML_API_SECRET={server.api_key}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops it as cleanly as Ctrl-C
    try:
        while server.running:
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
