"""The worker: `python -m lib.worker` polls and archives for the configured backend and
database, with no Streamlit server and no pages.

A team that scales out runs one (or a few: claims and leases keep them from reading a task
twice or downloading an output twice) beside web replicas started with DASHBOARD_POLLING=off.
It reads the same settings as the dashboard (environment, then `.streamlit/secrets.toml`), and
stops cleanly on SIGTERM or SIGINT: the threads finish their round, and a download cut short
is taken up again by the next worker within one lease. Its log names the database with the
password masked, and never the API key or the bucket's credentials.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path

from lib import settings

log = logging.getLogger("lib.worker")
RETRY_START = 5.0  # seconds between two tries to open a database that is not reachable yet


def where(location: str | Path) -> str:
    """The database as a log line may name it: a URL with its password masked, or the file."""
    from lib.store.connect import masked

    return masked(location) if isinstance(location, str) else str(location)


def run(stop: threading.Event) -> int:
    """Poll and archive until `stop` is set; returns the process's exit status."""
    from lib.backend import current_backend
    from lib.poller import Poller

    if problem := settings.load_secrets():
        log.warning(problem)
    try:
        location = settings.database()
        settings.storage_url()  # a bad URL stops the start with its message, not task by task
        backend = current_backend()
    except settings.SettingError as exc:
        log.error("not started: %s", exc)
        return 2
    poller = None
    while poller is None:
        try:
            poller = Poller(location, [backend]).start()
        except settings.SettingError as exc:
            log.error("not started: %s", exc)
            return 2
        except sqlite3.DatabaseError as exc:  # a database not up yet: wait for it, as the pages do
            log.warning("the database %s cannot be used yet (%s); trying again in %g s", where(location),
                        type(exc).__name__, RETRY_START)
            if stop.wait(RETRY_START):
                return 0
    log.info("worker polling %s for %s (every %g s)", where(location), backend.label, poller.interval)
    try:
        stop.wait()
    finally:
        poller.stop()
        log.info("worker stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m lib.worker",
                            description="Poll Runway and archive outputs for the dashboard, with no web server. "
                                        "Settings come from the environment, as for `streamlit run app.py`.",
                            ).parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return run(stop)


if __name__ == "__main__":
    sys.exit(main())
