"""Shared page furniture: set-up every page calls first (backend, store,
poller, sidebar), and the pieces that show a task. Pages hold layout only.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import streamlit as st

from lib import archive, lifecycle
from lib.backend import Backend, current_backend
from lib.catalog import TASK_TYPES
from lib.client import RunwayError
from lib.poller import Poller, ensure_poller
from lib.store import Store, default_db_path

BADGE_COLOURS = {
    lifecycle.PENDING: "gray",
    lifecycle.PROCESSING: "blue",
    lifecycle.SUCCEEDED: "green",
    lifecycle.FAILED: "red",
    lifecycle.CANCELLED: "orange",
}
PAGE_FILES = {t.key: f"pages/{i}_{t.name.replace(' ', '_')}.py" for i, t in enumerate(TASK_TYPES, start=1)}
HISTORY_PAGE = "pages/10_History.py"
COMPARE_PAGE = "pages/11_Compare.py"


def page_url(page_file: str) -> str:
    """The relative URL Streamlit gives a page file (`pages/10_History.py` -> `History`)."""
    stem = page_file.rsplit("/", 1)[-1].removesuffix(".py")
    return re.sub(r"^\d+_", "", stem)


def link(page_file: str, label: str, query: str = "") -> None:
    """A link to another page. Not st.page_link: a page opened by deep link after a
    restart runs without app.py, and st.page_link then cannot resolve other pages."""
    st.markdown(f"[{label}]({page_url(page_file)}{query})")


@dataclass
class Context:
    backend: Backend
    store: Store
    poller: Poller
    teammate: str


@st.cache_resource(show_spinner=False)
def _backend() -> Backend:
    return current_backend()


@st.cache_resource(show_spinner=False)
def _poller(_backend: Backend, db_path: str) -> Poller:
    return ensure_poller(_backend, db_path)


def _load_secrets() -> None:
    # Streamlit exports secrets.toml's top-level keys to os.environ when it loads them.
    try:
        st.secrets.load_if_toml_exists()
    except Exception as exc:  # a malformed secrets.toml must not take the dashboard down
        st.sidebar.warning(f"Could not read .streamlit/secrets.toml: {type(exc).__name__}")


def setup_page(title: str, icon: str = "🎬") -> Context:
    """Every page's first call: page config, backend, store, poller and the sidebar."""
    st.set_page_config(page_title=f"{title} · Runway dashboard", page_icon=icon, layout="wide")
    _load_secrets()
    backend = _backend()
    db_path = str(default_db_path())
    poller = _poller(backend, db_path)
    store = st.session_state.get("_store")
    if store is None or str(store.path) != db_path:
        store = st.session_state["_store"] = Store(db_path)
    teammate = _sidebar(backend)
    return Context(backend=backend, store=store, poller=poller, teammate=teammate)


def _sidebar(backend: Backend) -> str:
    with st.sidebar:
        if backend.is_simulator:
            st.info("**Simulator.** No `RUNWAYML_API_SECRET` is set, so tasks run on the built-in Runway "
                    "simulator: free, fast, real media.", icon="🧪")
        else:
            st.success(f"**Live Runway API.** Tasks cost real credits.  \n{backend.base_url}", icon="🟢")
        # Kept in the session (across pages) and in the address (across reloads and bookmarks).
        name = st.query_params.get("teammate") or st.session_state.get("teammate", "")
        entered = st.text_input("Your name", value=name, key="teammate_input",
                                help="Recorded on every task you submit; kept in the page address.").strip()
        st.session_state["teammate"] = entered
        if st.query_params.get("teammate", "") != entered:
            st.query_params["teammate"] = entered
        return entered


def plain(text: str | None) -> str:
    """Text shown as written: markdown and HTML characters are escaped, never rendered."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])", r"\\\1", text or "")


def age(iso: str | None) -> str:
    if not iso:
        return ""
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def status_badge(task: dict) -> None:
    status = task["status"]
    label = status
    if task.get("api_status") == "THROTTLED":
        label += " · throttled"
    elif task.get("api_status") and not lifecycle.is_known(task["api_status"]):
        label += f" · {task['api_status']}"
    st.badge(label, color=BADGE_COLOURS.get(status, "gray"))


def show_output(output: dict, kind: str) -> None:
    """One output: the archived copy if there is one, else the state of its download."""
    url = archive.static_url(output.get("path"))
    if url:
        mime = output.get("mime") or ""
        if mime.startswith("image/"):
            st.image(url, use_container_width=True)
        elif mime.startswith("audio/"):
            st.audio(url)
        else:
            st.video(url)
    elif output.get("state") == "at_risk":
        st.warning(f"Not archived yet: {output.get('last_error')}. Retrying; the original link lasts 24–48 h.",
                   icon="⚠️")
    else:
        st.caption(f"Archiving the {kind}…")


def task_card(task: dict, outputs: list[dict], kind: str) -> None:
    """A task as History shows it: what was asked, where it is, what came out."""
    with st.container(border=True):
        head, badge = st.columns([5, 2])
        with head:
            title = f"**#{task['id']} · {task['task_type'].replace('_', ' ').capitalize()} · {plain(task['model'])}**"
            st.markdown(title)
            meta = [age(task["created_at"])]
            if task.get("teammate"):
                meta.append(f"by {plain(task['teammate'])}")
            credits = task.get("cost_credits") if task.get("cost_credits") is not None else task.get(
                "estimated_credits")
            if credits is not None:
                meta.append(f"{credits:g} credits" + ("" if task.get("cost_credits") is not None else " (est.)"))
            st.caption(" · ".join(meta))
        with badge:
            status_badge(task)
        prompt = task["request"].get("promptText")
        if prompt:
            st.markdown(plain(prompt))
        if task["status"] == lifecycle.PROCESSING:
            progress = task.get("progress") or 0.0
            st.progress(min(max(progress, 0.0), 1.0), text=f"Generating… {progress:.0%}")
        elif task["status"] == lifecycle.PENDING and task.get("api_status") == "THROTTLED":
            st.caption("Waiting for a free slot: the model's concurrency limit is reached.")
        if task["status"] == lifecycle.FAILED:
            st.error(f"{plain(task.get('failure'))}  \n`{plain(task.get('failure_code'))}`")
        if task.get("last_error") and not lifecycle.is_terminal(task["status"]):
            st.caption(f"Last poll failed: {plain(task['last_error'])} Retrying.")
        for output in outputs:
            show_output(output, kind)


def refresh_interval_ms() -> int:
    return int(float(os.environ.get("DASHBOARD_REFRESH_SECONDS", "2")) * 1000)



@st.cache_data(ttl=30, show_spinner=False)
def _organization(backend_name: str, _backend: Backend) -> dict | str:
    try:
        with _backend.client() as client:
            return client.organization()
    except RunwayError as exc:
        return exc.user_message


def organization(backend: Backend) -> dict | None:
    """The credit balance and per-model limits, read at most every 30 s; None if the API cannot say."""
    answer = _organization(backend.name, backend)
    return answer if isinstance(answer, dict) else None


def organization_problem(backend: Backend) -> str | None:
    """Why the organization could not be read (a rejected key, say), in words for people; None if it was."""
    answer = _organization(backend.name, backend)
    return answer if isinstance(answer, str) else None
