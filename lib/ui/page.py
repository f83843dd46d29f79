"""Every page's set-up: page config, password, secrets, the backend, the store and the poller (one
backend and one poller per server, cached; no poller with DASHBOARD_POLLING=off, where a worker
process polls), then the sidebar and the task news."""
from __future__ import annotations

import gc
import logging
import sqlite3
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from lib import auth, settings
from lib.backend import Backend, current_backend
from lib.poller import Poller, ensure_poller
from lib.store import Store
from lib.store.connect import masked
from lib.ui.nav import sidebar
from lib.ui.redraw import tab_title, watch_task_news

log = logging.getLogger(__name__)


# The server's own path stays in its log: the page names the setting instead.
DATABASE_UNREADABLE = ("The task database cannot be read. Check the file that the DASHBOARD_DB setting names "
                       "(data/dashboard.db when it is not set) or restore it from a backup, then reload the page.")
DATABASE_UNREACHABLE = ("The task database (PostgreSQL, at DASHBOARD_DATABASE_URL) does not answer. Nothing is lost: "
                        "tasks are kept there and polling resumes once it is back. Check that the server is up and "
                        "the setting is right, then reload the page.")


@dataclass
class Context:
    backend: Backend
    store: Store
    poller: Poller | None  # None with DASHBOARD_POLLING=off: a worker polls
    teammate: str


@st.cache_resource(show_spinner=False)
def _backend() -> Backend:
    return current_backend()


@st.cache_resource(show_spinner=False)
def _poller(_backend: Backend, _location: str | Path, key: str) -> Poller:
    return ensure_poller(_backend, _location)


def _load_secrets() -> None:
    if problem := settings.load_secrets():
        st.sidebar.warning(problem)


_frozen = {"modules": 0}
_freezing = threading.Lock()


def _freeze_the_long_lived() -> None:
    """Once the pages' modules are loaded, set what they made aside from the garbage collector
    (`gc.freeze`): Streamlit, pandas, pyarrow and Altair make about a million objects that live as
    long as the server, and each full collection walked all of them, 50-150 ms stalls at random
    in the middle of a page. Done again only when more modules were loaded since (the first visit
    of another page), after a collection, so that no garbage of the moment is kept."""
    if len(sys.modules) <= _frozen["modules"] or not _freezing.acquire(blocking=False):
        return
    try:
        gc.collect()
        gc.freeze()
        _frozen["modules"] = len(sys.modules)
    finally:
        _freezing.release()


def setup_page(title: str, icon: str = "🎬") -> Context:
    """Every page's first call: page config, backend, store, poller and the sidebar."""
    _freeze_the_long_lived()
    st.set_page_config(page_title=tab_title(title), page_icon=icon, layout="wide")
    auth.require_password()
    _load_secrets()
    backend = _backend()
    try:
        location = settings.database()
        polling = settings.polling()
    except settings.SettingError as exc:  # names the variable, never its value
        st.error(str(exc), icon="🛑")
        st.stop()
    where = masked(location) if isinstance(location, str) else str(location)  # never a password
    try:
        poller = _poller(backend, location, str(location)) if polling else None
        store = st.session_state.get("_store")
        if store is None or store.location != location:
            store = st.session_state["_store"] = Store(location)
        store.change_version()  # one row: a file damaged since it was opened shows here, not mid-page
    except sqlite3.DatabaseError as exc:
        # Forget the connection, so that a restored file is opened again on the next rerun.
        st.session_state.pop("_store", None)
        log.error("The task database %s cannot be read: %s", where, exc)
        st.error(DATABASE_UNREACHABLE if isinstance(location, str) else DATABASE_UNREADABLE, icon="🛑")
        st.stop()
    teammate = sidebar(backend, title)
    ctx = Context(backend=backend, store=store, poller=poller, teammate=teammate)
    with st.sidebar:
        watch_task_news(ctx.store, ctx.teammate, title)
    return ctx
