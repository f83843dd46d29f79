"""Server start-up: the poller starts with the Streamlit server itself, so
tasks are polled and archived while no browser is open and from the moment
the dashboard restarts, not from the first page view; its start also sets off
the posters that videos archived before posters existed still lack
(`Poller.backfill_posters`, on a thread of its own: the start never waits).

`app.py` hands `lifespan` to `st.App`; `streamlit run app.py` then runs it
once per server process.

With DASHBOARD_POLLING=off (web replicas beside a `python -m lib.worker`) the server starts its
backend but no poller: the worker polls and archives, and the pages only read the database.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from lib import settings
from lib.backend import current_backend
from lib.poller import ensure_poller

log = logging.getLogger(__name__)


def start_background_work() -> None:
    """The process's backend (starting the simulator when no key is set) and, unless polling is
    off, its poller."""
    # A key kept in .streamlit/secrets.toml reaches the environment only once Streamlit loads the file.
    if problem := settings.load_secrets():
        log.warning(problem)
    backend = current_backend()
    if not settings.polling():
        log.info("DASHBOARD_POLLING is off: this server polls nothing; a worker (python -m lib.worker) does")
        return
    ensure_poller(backend)


@contextlib.asynccontextmanager
async def lifespan(_app):
    try:
        await asyncio.to_thread(start_background_work)
    except Exception:  # the pages start it again on first view and show what is wrong
        log.exception("could not start the poller at server start")
    yield
