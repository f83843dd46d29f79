"""Just enough of Runway for unit tests, at the network boundary (httpx.MockTransport), and a
backend whose client talks to it."""
from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass

import httpx

from lib.backend import Backend
from lib.client import RunwayClient


class FakeRunway:
    """Just enough of Runway for unit tests: creates tasks, answers GETs from a script, counts calls."""

    def __init__(self):
        self.tasks: dict[str, dict] = {}
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        if request.method == "POST" and request.url.path.startswith("/v1/"):
            task_id = str(uuid.uuid4())
            self.tasks[task_id] = {"id": task_id, "status": "PENDING", "createdAt": "2026-11-30T00:00:00Z"}
            return httpx.Response(200, json={"id": task_id, "estimatedCost": {"credits": 60}})
        match = re.fullmatch(r"/v1/tasks/(.+)", request.url.path)
        if request.method == "GET" and match:
            task = self.tasks.get(match.group(1))
            return httpx.Response(200, json=task) if task else httpx.Response(404, json={"error": "Task not found"})
        if request.method == "GET" and request.url.path == "/v1/organization":
            return httpx.Response(200, json={"creditBalance": 1234, "tier": {"models": {}}, "usage": {"models": {}}})
        return httpx.Response(404, json={"error": "no route"})

    def gets(self, task_id: str) -> int:
        return sum(1 for r in self.requests if r.method == "GET" and r.url.path == f"/v1/tasks/{task_id}")

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


@dataclass(frozen=True)
class FakeBackend(Backend):
    fake: FakeRunway = None

    def client(self, **options) -> RunwayClient:
        return RunwayClient(self.base_url, self.api_key, transport=httpx.MockTransport(self.fake.handler),
                            sleep=lambda s: None, **options)
