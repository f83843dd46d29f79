"""Moving between pages: the page files and their addresses, links that keep the session, widgets
whose value lives in the address, and the sidebar (the name, the page list, which API runs)."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lib.backend import Backend
from lib.catalog import TASK_TYPES
from lib.ui.teammate import name_input
from lib.ui.text import plain

# The seed's nine task pages are 1-9 and History, Compare and Task 10-12 (their addresses are
# kept); the task types Runway added follow from 13.
PAGE_FILES = {t.key: f"pages/{i if i <= 9 else i + 3}_{t.name.replace(' ', '_')}.py"
              for i, t in enumerate(TASK_TYPES, start=1)}
HISTORY_PAGE = "pages/10_History.py"
COMPARE_PAGE = "pages/11_Compare.py"
TASK_PAGE = "pages/12_Task.py"  # one task by deep link: ?task=<id>
SPEND_PAGE = "pages/21_Spend.py"
MODELS_PAGE = "pages/22_Models.py"


def page_url(page_file: str) -> str:
    """The relative URL Streamlit gives a page file (`pages/10_History.py` -> `History`)."""
    stem = page_file.rsplit("/", 1)[-1].removesuffix(".py")
    return re.sub(r"^\d+_", "", stem)


@functools.cache
def _page_object(main_folder: Path, page_file: str) -> st.Page | None:
    """The page file as a Page, made once per process (None: no such file beside the main
    script): `st.page_link` given a file name resolves it on disk each time (a realpath, an lstat
    per folder, the main script's folder), and History draws some eighty links a run."""
    try:
        # The main script is the default page, whose address is the app's root.
        return st.Page(page_file, default=page_file == "app.py")
    except StreamlitPageNotFoundError:
        return None


def _registered(page_file: str) -> st.Page | None:
    """The page file as this app registered it, or None where it is not one of the app's pages
    (a page run as its own entry point, as AppTest runs one)."""
    ctx = get_script_run_ctx()
    page = ctx and _page_object(ctx.pages_manager.main_script_parent, page_file)
    if not page:
        return None
    urls = {p.get("url_pathname") for p in ctx.pages_manager.get_pages().values()}
    return page if page.url_path in urls else None


def _page_link(page_file: str, label: str, query: dict[str, str] | None = None, icon: str | None = None,
               disabled: bool = False) -> bool:
    """`st.page_link` to a registered page (False, and nothing drawn, if the page is not one)."""
    page = _registered(page_file)
    if page is None:
        return False
    st.page_link(page, label=label, query_params=query, icon=icon, disabled=disabled)
    return True


def link(page_file: str, label: str, query: dict[str, str] | None = None, icon: str | None = None) -> None:
    """A link to another page that opens in the same tab and the same session, so the name, a
    password entered and the picks stay; `query` goes in the new page's address."""
    if not _page_link(page_file, label, query, icon):
        # Only where a page runs as its own entry point (AppTest): a plain link instead.
        st.markdown(f"[{label}]({page_url(page_file)}{'?' + urlencode(query) if query else ''})")


def in_address(param: str, key: str, draw: Callable[[], str | None], empty: str | None = None) -> str | None:
    """Draw a widget (`draw`, keyed `key`) whose value the page keeps in the address at `param`
    itself rather than with `bind="query-params"`. A bound widget's name is dropped from the
    address on the way to any other page that takes the same name (History's group filter
    stripped Compare's `?group=`), and a bound selectbox writes its label there, not its value.
    What the address says wins when it changed since this session wrote it (a link followed, a
    reload); otherwise the widget's own state stands."""
    value = st.query_params.get(param) or empty
    seen = f"_{key}_address"
    if key not in st.session_state or st.session_state.get(seen, value) != value:
        st.session_state[key] = value
    chosen = draw() or empty
    if (st.query_params.get(param) or empty) != chosen:
        if chosen:
            st.query_params[param] = chosen
        else:
            st.query_params.pop(param, None)
    st.session_state[seen] = chosen
    return chosen


NAV_GROUPS = (("video", "Video"), ("image", "Images"), ("audio", "Sound and voice"))


def _navigation(current: str) -> None:
    """The sidebar's page list, drawn here rather than by Streamlit (`client.showSidebarNavigation`
    is off): Streamlit's own folds pages past ten under "View N more", names the home page after
    its file ("app") and lists pages by file number, so History would sit among the task types.
    The page being shown (`current`, its title) is greyed out."""
    def entry(label: str, page: str) -> None:
        # st.page_link moves within the session (the name, a password entered, picks stay).
        if not _page_link(page, label, disabled=label == current):
            # Only where a page runs as its own entry point (AppTest): a plain link instead.
            url = "./" if page == "app.py" else page_url(page)
            st.markdown(f"**{label}**" if label == current else f"[{label}]({url})")

    # Review first, so History and Compare are on screen however short the window. The Task page
    # needs a task's number, so it is reached from a task, never from here.
    entry("Home", "app.py")
    st.markdown("**Review**")
    for label, page in (("History", HISTORY_PAGE), ("Compare", COMPARE_PAGE), ("Spend", SPEND_PAGE),
                        ("Models", MODELS_PAGE)):
        entry(label, page)
    st.markdown("**New task**")
    for kind, heading in NAV_GROUPS:
        st.caption(heading)
        for t in TASK_TYPES:
            if t.output == kind:
                entry(t.name, PAGE_FILES[t.key])


def sidebar(backend: Backend, current: str) -> str:
    with st.sidebar:
        # The name first: it is what every task is recorded under, and the page list is long.
        entered = name_input()
        _navigation(current)
        if backend.is_simulator:
            st.info("**Simulator.** No `RUNWAYML_API_SECRET` is set, so tasks run on the built-in Runway "
                    "simulator: free, fast, real media.", icon="🧪")
        else:
            st.success(f"**Live Runway API.** Tasks cost real credits.  \n{plain(backend.base_url)}", icon="🟢")
    return entered
