"""Which Runway the dashboard talks to: the real API when RUNWAYML_API_SECRET
is set (environment or `.streamlit/secrets.toml`), otherwise the built-in
simulator, started on loopback on first use (design.md §4).

A task belongs to the backend that created it: rows record `Backend.name`,
"simulator" or the live base URL, and are only ever polled there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lib.client import RunwayClient
from lib.store import default_db_path

LIVE_BASE_URL = "https://api.dev.runwayml.com"
SIMULATOR = "simulator"


@dataclass(frozen=True)
class Backend:
    name: str  # what task rows record: "simulator" or the live base URL
    base_url: str
    api_key: str = field(repr=False)

    @property
    def is_simulator(self) -> bool:
        return self.name == SIMULATOR

    @property
    def label(self) -> str:
        return "Simulator (no API key set)" if self.is_simulator else f"Live Runway API ({self.base_url})"

    def client(self, **options) -> RunwayClient:
        return RunwayClient(self.base_url, self.api_key, **options)


def simulator_state_dir() -> Path:
    return Path(os.environ.get("SIMULATOR_STATE_DIR") or default_db_path().parent / "simulator")


def current_backend() -> Backend:
    key = os.environ.get("RUNWAYML_API_SECRET", "").strip()
    if key:
        base_url = (os.environ.get("RUNWAYML_BASE_URL") or LIVE_BASE_URL).rstrip("/")
        return Backend(name=base_url, base_url=base_url, api_key=key)
    from lib.simulator import ensure_simulator  # only the simulator backend needs it loaded

    url, sim_key = ensure_simulator(simulator_state_dir())
    return Backend(name=SIMULATOR, base_url=url, api_key=sim_key)
