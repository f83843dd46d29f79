"""Which Runway the dashboard talks to: the real API when RUNWAYML_API_SECRET
is set (environment or `.streamlit/secrets.toml`), otherwise the built-in
simulator, started on loopback on first use.

A task belongs to the backend that created it: rows record `Backend.name`,
"simulator" or the live base URL, and are only ever polled there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lib import settings
from lib.client import RunwayClient

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


def current_backend() -> Backend:
    key = settings.api_secret()
    if key:
        base_url = settings.base_url()
        return Backend(name=base_url, base_url=base_url, api_key=key)
    from lib.simulator import ensure_simulator  # only the simulator backend needs it loaded

    url, sim_key = ensure_simulator(settings.simulator_state_dir())
    return Backend(name=SIMULATOR, base_url=url, api_key=sim_key)
