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
import ctypes
import logging

from lib import settings
from lib.backend import current_backend
from lib.poller import ensure_poller

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter for the number of arenas


def tune_memory() -> None:
    """Two allocator choices for the server process, each kept to whatever the environment says
    instead. Streamlit runs every page and every request on threads of its own, and the Spend and
    Models pages load pyarrow, whose default pool is mimalloc, which keeps a heap for every thread
    that allocated; glibc's malloc gives each thread an arena of its own as well, up to eight a
    core. Freed memory stays behind in each of them. So pyarrow allocates with malloc, and malloc
    keeps two arenas (the Spend page open in two sessions, benchmarks/bench_spend.py: 190-196 MB
    peak with neither, 183 MB with both; issue 13). Called before any page, so before anything
    loads pyarrow."""
    settings.choose_arrow_memory_pool()
    arenas = settings.malloc_arena_max()
    if arenas is None:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library other than glibc: its own defaults stand
        return
    mallopt(M_ARENA_MAX, arenas)


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
    tune_memory()  # before any page
    try:
        await asyncio.to_thread(start_background_work)
    except Exception:  # the pages start it again on first view and show what is wrong
        log.exception("could not start the poller at server start")
    yield
