"""A running simulator seen from outside, over HTTP: its faults, its request log and the tasks it holds."""
from __future__ import annotations

from collections import Counter

import httpx

from lib import catalog
from lib.contract import API_VERSION


class SimulatorAdmin:
    """Faults and the request log of a running simulator, over HTTP."""

    def __init__(self, url: str, api_key: str):
        self.url = url
        self.api_key = api_key
        self.http = httpx.Client(base_url=url, timeout=30, headers={
            "Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION})

    def backend(self):
        """A backend that submits tasks to this simulator."""
        from lib.backend import Backend

        return Backend(name="simulator", base_url=self.url, api_key=self.api_key)

    def faults(self, *rules: dict) -> None:
        answer = self.http.post("/_simulator/faults", json={"rules": list(rules)})
        assert answer.status_code == 200, answer.text

    def clear_faults(self) -> None:
        self.http.delete("/_simulator/faults")

    def active_faults(self) -> list[dict]:
        return [r for r in self.http.get("/_simulator/faults").json()["rules"] if r["count"] > 0]

    def requests(self) -> list[dict]:
        return self.http.get("/_simulator/requests").json()["requests"]

    def clear_requests(self) -> None:
        self.http.delete("/_simulator/requests")

    def creates(self, entries: list[dict] | None = None) -> list[dict]:
        """POSTs to a generation endpoint: every attempt to create a task."""
        return [r for r in (self.requests() if entries is None else entries)
                if r["method"] == "POST" and r["path"] in catalog.ENDPOINTS]

    def reads(self, entries: list[dict] | None = None) -> Counter:
        """GET /v1/tasks/<id> per task id."""
        return Counter(r["path"].rsplit("/", 1)[1] for r in (self.requests() if entries is None else entries)
                       if r["method"] == "GET" and r["path"].startswith("/v1/tasks/"))

    def created(self) -> int:
        """How many tasks the simulator holds (every task it ever created in the last day)."""
        usage = self.http.get("/v1/organization").json()["usage"]["models"]
        return sum(m["dailyGenerations"] for m in usage.values())

    def task(self, task_id: str) -> dict:
        """The simulator's own answer for a task: the truth the dashboard must end up agreeing with."""
        return self.http.get(f"/v1/tasks/{task_id}").json()

    def delete(self, task_id: str) -> None:
        assert self.http.delete(f"/v1/tasks/{task_id}").status_code == 204

    def close(self) -> None:
        self.http.close()


def simulator_requests(method: str | None = None, creates_only: bool = False) -> list[dict]:
    """The request log of the simulator the app under test uses."""
    from lib.backend import current_backend

    backend = current_backend()
    answer = httpx.get(f"{backend.base_url}/_simulator/requests",
                       headers={"Authorization": f"Bearer {backend.api_key}"}).json()
    entries = answer["requests"] if isinstance(answer, dict) else answer
    if method:
        entries = [r for r in entries if r["method"] == method]
    if creates_only:
        entries = [r for r in entries if r["method"] == "POST" and r["path"].startswith("/v1/")
                   and r["path"] != "/v1/uploads"]
    return entries
