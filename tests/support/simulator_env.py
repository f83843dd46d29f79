"""The environments the dashboard and its built-in simulator run in under test: short simulated
timings, so a task ends in seconds, and nothing inherited that would point a test at the live API
or at someone's database."""
from __future__ import annotations

import os

# A page run in this process by AppTest: tasks end within a second, media stays tiny.
IN_PROCESS = {
    "SIMULATOR_PENDING_SECONDS": "0.2",
    "SIMULATOR_RUN_SECONDS": "0.4",
    "SIMULATOR_MAX_SIDE": "96",
}
# A `streamlit run` the reliability tests start, kill and restart: a 1 s poll interval keeps them quick.
FAST = {
    "SIMULATOR_PENDING_SECONDS": "0.3",
    "SIMULATOR_RUN_SECONDS": "1",
    "SIMULATOR_MAX_SIDE": "96",
    "DASHBOARD_POLL_INTERVAL": "1",
    "DASHBOARD_REFRESH_SECONDS": "1",
}
# A `streamlit run` the browser tests drive (the `dashboard` fixture): a task runs long enough to be seen running.
FAST_SIMULATOR = {
    "SIMULATOR_PENDING_SECONDS": "0.5",
    "SIMULATOR_RUN_SECONDS": "2",
    "SIMULATOR_MAX_SIDE": "192",
    "DASHBOARD_POLL_INTERVAL": "1",
    "DASHBOARD_REFRESH_SECONDS": "1",
}
INHERITED = ("RUNWAYML_API_SECRET", "RUNWAYML_BASE_URL", "DASHBOARD_PASSWORD", "DASHBOARD_DB", "SIMULATOR_STATE_DIR",
             "DASHBOARD_DATABASE_URL", "DASHBOARD_STORAGE_URL", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "DASHBOARD_POLLING")


def clean_env(**extra: str) -> dict:
    """The environment of a child process: no key, base URL, password, database or simulator
    state inherited from the caller."""
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env.update(extra)
    return env


def base_env(**extra: str) -> dict:
    """`clean_env` with the FAST timings, which `extra` may override."""
    return clean_env(**{**FAST, **extra})
