"""Shared fixtures: a fresh SQLite store per test, and a Runway fake at the
network boundary (httpx.MockTransport) for unit tests."""
from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass

import httpx
import pytest

from lib.backend import Backend
from lib.client import RunwayClient
from lib.store import Store


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """AppTest runs on a fresh database and built-in simulator; nothing cached from an earlier test."""
    import streamlit as st

    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    monkeypatch.setenv("SIMULATOR_STATE_DIR", str(tmp_path / "simulator"))
    monkeypatch.setenv("SIMULATOR_PENDING_SECONDS", "0.2")
    monkeypatch.setenv("SIMULATOR_RUN_SECONDS", "0.4")
    monkeypatch.setenv("SIMULATOR_MAX_SIDE", "96")
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    st.cache_resource.clear()
    st.cache_data.clear()


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


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "dashboard.db")
    yield s
    s.close()


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


@pytest.fixture
def quiet_process():
    """No poller of an earlier test running in this process: for a test that measures the
    process's own allocations (tracemalloc counts every thread's). Pages started pollers through
    their resource cache; it is cleared too, so a later page starts a fresh one."""
    import streamlit as st

    from lib import poller

    with poller._lock:
        running = list(poller._running.values())
        poller._running.clear()
    for each in running:
        each.stop()
    st.cache_resource.clear()


@pytest.fixture
def fake_runway():
    return FakeRunway()


@pytest.fixture
def fake_backend(fake_runway):
    return FakeBackend(name="https://fake.runway.test", base_url="https://fake.runway.test",
                       api_key="key_" + "ab" * 64, fake=fake_runway)


# ---------------------------------------------------------------- a real dashboard in a real browser

import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--autoplay-policy=no-user-gesture-required"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAST_SIMULATOR = {
    "SIMULATOR_PENDING_SECONDS": "0.5",
    "SIMULATOR_RUN_SECONDS": "2",
    "SIMULATOR_MAX_SIDE": "192",
    "DASHBOARD_POLL_INTERVAL": "1",
    "DASHBOARD_REFRESH_SECONDS": "1",
}


@pytest.fixture
def dashboard(tmp_path):
    """`streamlit run app.py` on a free port, on the built-in simulator, with its own database."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RUNWAYML_API_SECRET", "RUNWAYML_BASE_URL")}
    env.update(FAST_SIMULATOR, DASHBOARD_DB=str(tmp_path / "dashboard.db"),
               SIMULATOR_STATE_DIR=str(tmp_path / "simulator"))
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not start: " + (tmp_path / "streamlit.log").read_text()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    # Remove only the files this dashboard archived: another run may share static/.
    import sqlite3

    with sqlite3.connect(tmp_path / "dashboard.db") as db:
        archived = [row[0] for row in db.execute("SELECT path FROM outputs WHERE path IS NOT NULL")]
    from lib import archive

    for path in archived:
        archive.delete_archived(path, ROOT / "static")


@pytest.fixture
def page():
    """A headless Debian chromium driven by Playwright. Missing chromium is a failure, never a skip."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; run `bash tests/run.sh`, which installs it.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


# ---------------------------------------------------------------- the slow kinds, marked for a quick loop

BROWSER_FIXTURES = {"page", "browser_at"}  # tests/conftest.py `page`; test_origins' own Chromium
SUBPROCESS_FIXTURES = {"dashboard"}


def pytest_collection_modifyitems(items):
    """Mark what drives Chromium `browser` and what starts a real server process `subprocess`,
    so that `pytest -m "not browser and not subprocess"` is a quick loop. CI runs everything."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        module = getattr(item, "module", None)
        if names & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if names & SUBPROCESS_FIXTURES or item.get_closest_marker("browser") or any(
                hasattr(module, name) for name in ("running", "start_app", "start_simulator")):
            item.add_marker(pytest.mark.subprocess)
