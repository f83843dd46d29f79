"""Every setting the dashboard takes from its environment, in one table.

A setting is read each time it is asked for, never at import: a test, a benchmark or
`.streamlit/secrets.toml` (whose top-level keys Streamlit exports to the environment when it
loads the file, `load_secrets`) may set it after the code that uses it was imported. An empty
value counts as unset. A number that does not read as one (or is negative, or, where a count is
asked for, not whole) is a `SettingError` naming the variable; whatever reads a setting in the
background (the poller, the archive) reads it where it starts, so a bad value stops that start
with the message rather than failing task by task. `inf` is a number: "no deadline".

`SETTINGS` is the README's configuration table, row for row; `tests/test_settings.py` holds the
two to each other, and holds every other module in `lib/` to reading its settings here.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from lib.media import MB

ROOT = Path(__file__).resolve().parent.parent  # the checkout: data/, static/ and .streamlit/ sit in it


class SettingError(ValueError):
    """A setting whose value cannot be used; the message names the variable and what it takes."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # as the README's table gives it; "" is unset

    def given(self) -> str:
        """What the environment sets, as set (a password may start or end with a space)."""
        return os.environ.get(self.name, "")

    def text(self) -> str:
        """The value, or the default when it is unset or only spaces."""
        return self.given() if self.given().strip() else self.default

    def number(self) -> float:
        raw = self.text()
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isnan(value) or value < 0:
            raise SettingError(f"{self.name} takes a number of 0 or more; it is set to {raw[:40]!r}.")
        return value

    def whole(self) -> int:
        value = self.number()
        if not math.isfinite(value) or not value.is_integer():
            raise SettingError(f"{self.name} takes a whole number; it is set to {self.text()[:40]!r}.")
        return int(value)

    def bytes(self, unit: int) -> int:
        """A size given in `unit`s (MB, KB), in bytes."""
        value = self.number()
        if not math.isfinite(value):
            raise SettingError(f"{self.name} takes a size; it is set to {self.text()[:40]!r}.")
        return int(value * unit)


API_SECRET = Setting("RUNWAYML_API_SECRET", "")
BASE_URL = Setting("RUNWAYML_BASE_URL", "https://api.dev.runwayml.com")
DATABASE = Setting("DASHBOARD_DB", "data/dashboard.db")
POLL_INTERVAL = Setting("DASHBOARD_POLL_INTERVAL", "5")
REFRESH_SECONDS = Setting("DASHBOARD_REFRESH_SECONDS", "2")
ARCHIVE_MAX_MB = Setting("DASHBOARD_ARCHIVE_MAX_MB", "512")
ARCHIVE_LEASE = Setting("DASHBOARD_ARCHIVE_LEASE_SECONDS", "30")
ARCHIVE_DEADLINE = Setting("DASHBOARD_ARCHIVE_DEADLINE_SECONDS", "600")
ARCHIVE_MIN_RATE = Setting("DASHBOARD_ARCHIVE_MIN_KB_PER_SECOND", "16")
MIN_FREE_MB = Setting("DASHBOARD_MIN_FREE_MB", "100")
API_TIMEOUT = Setting("DASHBOARD_API_TIMEOUT", "30")
PASSWORD = Setting("DASHBOARD_PASSWORD", "")
DATABASE_URL = Setting("DASHBOARD_DATABASE_URL", "")
STORAGE_URL = Setting("DASHBOARD_STORAGE_URL", "")
AWS_ENDPOINT_URL = Setting("AWS_ENDPOINT_URL", "")
AWS_REGION = Setting("AWS_REGION", "")
AWS_ACCESS_KEY_ID = Setting("AWS_ACCESS_KEY_ID", "")
AWS_SECRET_ACCESS_KEY = Setting("AWS_SECRET_ACCESS_KEY", "")
POLLING = Setting("DASHBOARD_POLLING", "on")
SIMULATOR_STATE_DIR = Setting("SIMULATOR_STATE_DIR", "")
SIMULATOR_PENDING = Setting("SIMULATOR_PENDING_SECONDS", "2")
SIMULATOR_RUN = Setting("SIMULATOR_RUN_SECONDS", "8")
SIMULATOR_CONCURRENCY = Setting("SIMULATOR_CONCURRENCY", "2")
SIMULATOR_OUTPUT_TTL = Setting("SIMULATOR_OUTPUT_TTL_SECONDS", "86400")
SIMULATOR_CREDITS = Setting("SIMULATOR_CREDITS", "10000")
SIMULATOR_DAILY_LIMIT = Setting("SIMULATOR_DAILY_LIMIT", "500")
SIMULATOR_MAX_SIDE = Setting("SIMULATOR_MAX_SIDE", "480")
ARROW_MEMORY_POOL = Setting("ARROW_DEFAULT_MEMORY_POOL", "system")
MALLOC_ARENA_MAX = Setting("MALLOC_ARENA_MAX", "2")

SETTINGS = (API_SECRET, BASE_URL, DATABASE, POLL_INTERVAL, REFRESH_SECONDS, ARCHIVE_MAX_MB, ARCHIVE_LEASE,
            ARCHIVE_DEADLINE, ARCHIVE_MIN_RATE, MIN_FREE_MB, API_TIMEOUT, PASSWORD, DATABASE_URL, STORAGE_URL,
            AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, POLLING, SIMULATOR_STATE_DIR,
            SIMULATOR_PENDING, SIMULATOR_RUN, SIMULATOR_CONCURRENCY, SIMULATOR_OUTPUT_TTL, SIMULATOR_CREDITS,
            SIMULATOR_DAILY_LIMIT, SIMULATOR_MAX_SIDE, ARROW_MEMORY_POOL,
            MALLOC_ARENA_MAX)


def load_secrets() -> str | None:
    """Export `.streamlit/secrets.toml`'s top-level keys to the environment, as Streamlit does when
    a page first reads `st.secrets`; returns why the file could not be read, if it could not."""
    import streamlit as st  # the simulator and the benchmarks read settings without Streamlit's start-up

    try:
        st.secrets.load_if_toml_exists()
    except Exception as exc:  # a malformed secrets.toml must not take the dashboard down
        return f"Could not read .streamlit/secrets.toml: {type(exc).__name__}"
    return None


def choose_arrow_memory_pool() -> None:
    """Have pyarrow allocate with the C library's malloc instead of its bundled mimalloc, unless
    the environment names its pool. pyarrow reads the variable when it first allocates, so this is
    set at the server's start, before a page loads it (`server.tune_memory`)."""
    os.environ[ARROW_MEMORY_POOL.name] = ARROW_MEMORY_POOL.text().strip()


def malloc_arena_max() -> int | None:
    """How many malloc arenas the server's threads share; None when the environment sets
    MALLOC_ARENA_MAX, which glibc then read itself when the process started."""
    return None if MALLOC_ARENA_MAX.given().strip() else MALLOC_ARENA_MAX.whole()


# ---------------------------------------------------------------- the API

def api_secret() -> str:
    """Runway's key: set, the live API; unset, the simulator. Never logged, stored or shown."""
    return API_SECRET.text().strip()  # a key pasted with a newline is still the key


def base_url() -> str:
    return BASE_URL.text().rstrip("/")


def api_timeout_seconds() -> float:
    return API_TIMEOUT.number()


# ---------------------------------------------------------------- the team's data

def db_path() -> Path:
    """The SQLite file; the input stash (`inputs/`) and the simulator's state sit beside it."""
    return Path(DATABASE.text()) if DATABASE.text() != DATABASE.default else ROOT / DATABASE.default


def database() -> str | Path:
    """Where the team's history lives: DASHBOARD_DATABASE_URL (`postgresql://...`) when set,
    else the SQLite file. Never shown or logged as it is: `lib.store.connect.masked` hides the
    password."""
    url = DATABASE_URL.text().strip()
    if url and url.partition("://")[0].lower() not in ("postgresql", "postgres"):
        raise SettingError("DASHBOARD_DATABASE_URL takes a postgresql://user:password@host:5432/database URL; "
                           "unset, the dashboard uses its SQLite file.")
    return url or db_path()


def storage_url() -> str:
    """Where archived outputs and uploaded inputs live: DASHBOARD_STORAGE_URL (`s3://bucket/prefix`)
    when set, else "" for the local folders."""
    url = STORAGE_URL.text().strip()
    if url and url.partition("://")[0].lower() != "s3":
        raise SettingError("DASHBOARD_STORAGE_URL takes an s3://bucket/prefix URL; unset, outputs are kept in "
                           "the local static/ folder.")
    return url


def s3_options() -> dict[str, str]:
    """The standard AWS variables a bucket is reached with, those that are set (the key never
    shown or logged)."""
    given = {"endpoint": AWS_ENDPOINT_URL, "region": AWS_REGION, "access_key_id": AWS_ACCESS_KEY_ID,
             "secret_access_key": AWS_SECRET_ACCESS_KEY}
    return {key: setting.text().strip() for key, setting in given.items() if setting.text().strip()}


def polling() -> bool:
    """Whether this process polls and archives (`on`, the default); web replicas beside a separate
    worker (`python -m lib.worker`) run with `off`."""
    value = POLLING.text().strip().lower()
    if value not in ("on", "off"):
        raise SettingError(f"DASHBOARD_POLLING takes on or off; it is set to {POLLING.text()[:40]!r}.")
    return value == "on"


def min_free_bytes() -> int:
    return MIN_FREE_MB.bytes(MB)


def password() -> str:
    return PASSWORD.given()  # as set: even spaces are a password someone chose


# ---------------------------------------------------------------- polling and archiving

def poll_interval() -> float:
    return POLL_INTERVAL.number()


def refresh_seconds() -> float:
    return REFRESH_SECONDS.number()


def archive_max_bytes() -> int:
    return ARCHIVE_MAX_MB.bytes(MB)


def archive_lease_seconds() -> float:
    return ARCHIVE_LEASE.number()


def archive_deadline_seconds() -> float:
    return ARCHIVE_DEADLINE.number()


def archive_min_rate() -> float:
    """Bytes a second a download must keep up over every window (`archive.RATE_WINDOW`)."""
    return ARCHIVE_MIN_RATE.number() * 1024


# ---------------------------------------------------------------- the simulator

def simulator_state_dir() -> Path:
    return Path(SIMULATOR_STATE_DIR.text() or db_path().parent / "simulator")


def simulator_max_side() -> int:
    return SIMULATOR_MAX_SIDE.whole()
