"""Shared fixtures: a fresh SQLite store per test, a Runway fake at the network boundary
(httpx.MockTransport) for unit tests, a real dashboard in a real browser; and the marking of
the slow kinds, so that `pytest -m "not browser and not subprocess"` is a quick loop.

What the fixtures are made of lives in tests/support/, which the benchmarks use too."""
from __future__ import annotations

import pytest

from lib.store import Store
from tests.support import chromium, services
from tests.support.fake_runway import FakeBackend, FakeRunway
from tests.support.launch import Dashboard
from tests.support.simulator_env import FAST_SIMULATOR, IN_PROCESS


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """AppTest runs on a fresh database and built-in simulator; nothing cached from an earlier test."""
    import streamlit as st

    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    monkeypatch.setenv("SIMULATOR_STATE_DIR", str(tmp_path / "simulator"))
    for name, value in IN_PROCESS.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, monkeypatch):
    """A fresh, empty store, once on each backend: a SQLite file, and a PostgreSQL schema of its own
    (tests/support/services.py). The rest of the test's settings point at its data folder."""
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    if request.param == "sqlite":
        s = Store(tmp_path / "dashboard.db")
        yield s
        s.close()
        return
    with services.fresh_postgres() as url:
        monkeypatch.setenv("DASHBOARD_DATABASE_URL", url)
        s = Store(url)
        yield s
        s.close()
        _stop_pollers_of(url)  # a page the test opened started one; its schema goes now


def _stop_pollers_of(location: str) -> None:
    from lib import poller

    with poller._lock:
        running = [poller._running.pop(key) for key in [k for k in poller._running if k[0] == location]]
    for each in running:
        each.stop()


@pytest.fixture
def sqlite_store(tmp_path):
    """A fresh SQLite store, for what only a file can show (its modes, its locks, its damage)."""
    s = Store(tmp_path / "dashboard.db")
    yield s
    s.close()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback, for the session."""
    server = services.S3Server()
    yield server
    server.stop()


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


@pytest.fixture
def dashboard(tmp_path):
    """`streamlit run app.py` on a free port, on the built-in simulator, with its own database."""
    with Dashboard(tmp_path, **FAST_SIMULATOR) as app:
        yield app.url


@pytest.fixture
def page():
    """A headless Debian chromium driven by Playwright. Missing chromium is a failure, never a skip."""
    if not chromium.installed():
        pytest.fail("Debian's chromium is not installed; run `bash tests/run.sh`, which installs it.")
    with chromium.browser() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()


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
                hasattr(module, name) for name in ("start_app", "start_simulator")):
            item.add_marker(pytest.mark.subprocess)
