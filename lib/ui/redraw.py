"""Keeping pages live: the redraw when the store changes (or a minute passes), and the news of the
teammate's own tasks (a toast when one ends, the count in the tab's title, and the cookie that
says since when it counts)."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import unquote

import streamlit as st

from lib import lifecycle, settings
from lib.store import Store, queries, utcnow
from lib.ui.teammate import run_in_page
from lib.ui.text import plain, script_text

REDRAW_AT_LEAST_S = 60  # a page's ages ("3 min ago") are never more than a minute old


def refresh_interval_ms() -> int:
    return int(settings.refresh_seconds() * 1000)


def redraw_on_change(store: Store, key: str, since: int | None = None,
                     version: Callable[[], int] | None = None) -> None:
    """Keep a page live without redrawing it for nothing. Every refresh interval a fragment reads
    the store's change counter (one row) and reruns the page only if the tasks, outputs or
    reviews changed since the page was drawn, or a minute has passed (so the ages shown,
    "3 min ago", stay true); an unchanged page costs that read and no redraw.
    The counter must be read before the page reads what it shows, so that a change made while
    the page is drawn shows on the next tick: call this first, or pass `since`, the
    `store.change_version()` read before the page's reads. `version` is another counter to watch
    (Spend watches `store.spend_version`, which moves only when spend does)."""
    # Imported here, in a script run: app.py imports this module before the server's runtime
    # exists, and a component declared then is never served (its frame answers 404).
    from streamlit_autorefresh import st_autorefresh

    version = version or store.change_version
    st.session_state[key] = (version() if since is None else since, time.monotonic())

    @st.fragment
    def watch() -> None:
        # The autorefresh component inside a fragment reruns the fragment alone on each tick.
        st_autorefresh(interval=refresh_interval_ms(), key=f"{key}_tick")
        drawn, drawn_at = st.session_state.get(key, (None, 0.0))
        if version() != drawn or time.monotonic() - drawn_at >= REDRAW_AT_LEAST_S:
            st.rerun()

    watch()


def tab_title(title: str) -> str:
    """The browser tab's title: how many of the teammate's tasks ended since this browser opened
    the dashboard comes first, so a tab in the background shows it."""
    done = st.session_state.get("news", {}).get("done", 0)
    return f"{f'({done} done) ' if done else ''}{title} · Runway dashboard"


NEWS_WINDOW = 20  # the teammate's latest tasks that a tick looks at


def task_news(store: Store, teammate: str, news: dict) -> list[dict]:
    """The teammate's tasks that finished or failed since `news` last looked, and `news` brought
    up to date (`seen`: each task's status then; `after`: the newest id when the session opened,
    so a task made later counts even if it was finished before the first look). The first look
    only takes note."""
    latest = queries.page(store, queries.Filters(teammates=(teammate,)), size=NEWS_WINDOW)
    seen = news.setdefault("seen", {})
    if "after" not in news:
        news["after"] = max((t["id"] for t in latest), default=0)
        seen.update({t["id"]: t["status"] for t in latest})
        return []
    finished = [t for t in latest if lifecycle.is_terminal(t["status"]) and not lifecycle.is_terminal(seen.get(t["id"]))
                and (t["id"] in seen or t["id"] > news["after"])]
    seen.update({t["id"]: t["status"] for t in latest})
    return finished


NEWS_COOKIE = "dashboard_news_since"
_STORE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def news_since() -> tuple[str, bool]:
    """Since when the tab title counts the teammate's finished tasks: when this browser first
    opened the dashboard, kept in a cookie that lasts until the browser is closed, so a reload or
    another tab keeps the count (a session alone would start again from nothing). Also whether
    the cookie still has to be written. A cookie that is not a past time in the store's format
    (anything on this host can set one) counts from now."""
    value = st.context.cookies.get(NEWS_COOKIE)
    value = unquote(value) if isinstance(value, str) else ""  # not a string where no browser is (AppTest)
    now = utcnow()
    if _STORE_TIME.fullmatch(value) and value <= now:
        return value, False
    return now, True


def _remember_news_since(since: str) -> None:
    """Write the cookie of `news_since` (no max-age: the browser forgets it when it closes)."""
    run_in_page(f"document.cookie = '{NEWS_COOKIE}=' + encodeURIComponent({script_text(since)}) + "
                "'; path=/; SameSite=Strict';")


NEWS_ICONS = {lifecycle.SUCCEEDED: "✅", lifecycle.FAILED: "❌", lifecycle.CANCELLED: "🛑"}


def watch_task_news(store: Store, teammate: str, title: str) -> None:
    """A toast on whatever page is open when one of the teammate's own tasks ends, and the count in
    the tab's title. A fragment that ticks with the pages' refresh: it reads the change counter
    (one row), and the teammate's latest tasks only when something changed."""
    if not teammate:
        return
    news = st.session_state.setdefault("news", {})
    if news.get("teammate") != teammate:  # a new name: news of that name from now on
        news.clear()
        news["teammate"] = teammate
    if "news_since" not in st.session_state:
        st.session_state["news_since"], st.session_state["news_since_write"] = news_since()
    if st.session_state["news_since_write"]:
        # Drawn on every rerun from then on, like the name's cookie, so it is not gone before it ran.
        _remember_news_since(st.session_state["news_since"])

    @st.fragment(run_every=refresh_interval_ms() / 1000)
    def watch() -> None:
        version = store.change_version()
        if news.get("version") != version:
            news["version"] = version
            news["done"] = queries.finished_since(store, teammate, st.session_state["news_since"])
            for task in task_news(store, teammate, news):
                outcome = {lifecycle.SUCCEEDED: "is ready", lifecycle.FAILED: "failed"}.get(task["status"],
                                                                                          "was cancelled")
                st.toast(f"#{task['id']} · {plain(task['model'])} {outcome}: "
                         f"{plain(((task.get('request') or {}).get('promptText') or '')[:60])}",
                         icon=NEWS_ICONS.get(task["status"], "ℹ️"))
        if news.get("done"):
            # The page's own title is set again on every full rerun; between them this script sets it.
            # A script whose text is unchanged is not run again.
            run_in_page(f"document.title = {script_text(tab_title(title))};")

    watch()
