"""Shared page furniture: set-up every page calls first (backend, store,
poller, sidebar), and the pieces that show a task. Pages hold layout only.
"""
from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote, urlencode

import streamlit as st
import streamlit.components.v1 as components
from streamlit.errors import StreamlitPageNotFoundError

from lib import archive, auth, downloads, history, lifecycle, settings
from lib.backend import Backend, current_backend
from lib.catalog import TASK_TYPES
from lib.client import RunwayError
from lib.poller import Poller, ensure_poller
from lib.store import OUT_AT_RISK, Store, utcnow

log = logging.getLogger(__name__)

BADGE_COLOURS = {
    lifecycle.PENDING: "gray",
    lifecycle.PROCESSING: "blue",
    lifecycle.SUCCEEDED: "green",
    lifecycle.FAILED: "red",
    lifecycle.CANCELLED: "orange",
}
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


def link(page_file: str, label: str, query: dict[str, str] | None = None, icon: str | None = None) -> None:
    """A link to another page that opens in the same tab and the same session, so the name, a
    password entered and the picks stay; `query` goes in the new page's address."""
    try:
        st.page_link(page_file, label=label, query_params=query, icon=icon)
    except StreamlitPageNotFoundError:
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
    if problem := settings.load_secrets():
        st.sidebar.warning(problem)


def setup_page(title: str, icon: str = "🎬") -> Context:
    """Every page's first call: page config, backend, store, poller and the sidebar."""
    st.set_page_config(page_title=tab_title(title), page_icon=icon, layout="wide")
    auth.require_password()
    _load_secrets()
    backend = _backend()
    db_path = str(settings.db_path())
    try:
        poller = _poller(backend, db_path)
        store = st.session_state.get("_store")
        if store is None or str(store.path) != db_path:
            store = st.session_state["_store"] = Store(db_path)
        store.change_version()  # one row: a file damaged since it was opened shows here, not mid-page
    except sqlite3.DatabaseError as exc:
        # Forget the connection, so that a restored file is opened again on the next rerun.
        st.session_state.pop("_store", None)
        log.error("The task database %s cannot be read: %s", db_path, exc)
        st.error(DATABASE_UNREADABLE, icon="🛑")
        st.stop()
    teammate = _sidebar(backend, title)
    ctx = Context(backend=backend, store=store, poller=poller, teammate=teammate)
    with st.sidebar:
        _task_news(ctx, title)
    return ctx


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
    latest = history.page(store, history.Filters(teammates=(teammate,)), size=NEWS_WINDOW)
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
    components.html(f"<script>document.cookie = '{NEWS_COOKIE}=' + encodeURIComponent({script_text(since)}) + "
                    "'; path=/; SameSite=Strict';</script>", height=0)


NEWS_ICONS = {lifecycle.SUCCEEDED: "✅", lifecycle.FAILED: "❌", lifecycle.CANCELLED: "🛑"}


def _task_news(ctx: Context, title: str) -> None:
    """A toast on whatever page is open when one of the teammate's own tasks ends, and the count in
    the tab's title. A fragment that ticks with the pages' refresh: it reads the change counter
    (one row), and the teammate's latest tasks only when something changed."""
    if not ctx.teammate:
        return
    news = st.session_state.setdefault("news", {})
    if news.get("teammate") != ctx.teammate:  # a new name: news of that name from now on
        news.clear()
        news["teammate"] = ctx.teammate
    if "news_since" not in st.session_state:
        st.session_state["news_since"], st.session_state["news_since_write"] = news_since()
    if st.session_state["news_since_write"]:
        # Drawn on every rerun from then on, like the name's cookie, so it is not gone before it ran.
        _remember_news_since(st.session_state["news_since"])

    @st.fragment(run_every=refresh_interval_ms() / 1000)
    def watch() -> None:
        version = ctx.store.change_version()
        if news.get("version") != version:
            news["version"] = version
            news["done"] = history.finished_since(ctx.store, ctx.teammate, st.session_state["news_since"])
            for task in task_news(ctx.store, ctx.teammate, news):
                outcome = {lifecycle.SUCCEEDED: "is ready", lifecycle.FAILED: "failed"}.get(task["status"],
                                                                                          "was cancelled")
                st.toast(f"#{task['id']} · {plain(task['model'])} {outcome}: "
                         f"{plain(((task.get('request') or {}).get('promptText') or '')[:60])}",
                         icon=NEWS_ICONS.get(task["status"], "ℹ️"))
        if news.get("done"):
            # The page's own title is set again on every full rerun; between them this frame sets it.
            # A frame whose text is unchanged is not run again.
            components.html(f"<script>window.parent.document.title = {script_text(tab_title(title))};</script>",
                            height=0)

    watch()


def script_text(text: str) -> str:
    """A JavaScript string literal of `text` that cannot close the script it stands in."""
    return json.dumps(text).replace("<", "\\u003c")


# The server's own path stays in its log: the page names the setting instead.
DATABASE_UNREADABLE = ("The task database cannot be read. Check the file that the DASHBOARD_DB setting names "
                       "(data/dashboard.db when it is not set) or restore it from a backup, then reload the page.")


NAV_GROUPS = (("video", "Video"), ("image", "Images"), ("audio", "Sound and voice"))


def _navigation(current: str) -> None:
    """The sidebar's page list, drawn here rather than by Streamlit (`client.showSidebarNavigation`
    is off): Streamlit's own folds pages past ten under "View N more", names the home page after
    its file ("app") and lists pages by file number, so History would sit among the task types.
    The page being shown (`current`, its title) is greyed out."""
    def entry(label: str, page: str) -> None:
        try:
            # st.page_link moves within the session (the name, a password entered, picks stay).
            st.page_link(page, label=label, disabled=label == current)
        except StreamlitPageNotFoundError:
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


NAME_COOKIE = "dashboard_teammate"
NAME_COOKIE_DAYS = 400  # the longest a browser keeps a cookie
NAME_MAX = 200  # characters of a name taken from a cookie, which anything on this host could set


def remembered_name() -> str:
    """The name this browser was last given, from its cookie (sent when the session opened)."""
    value = st.context.cookies.get(NAME_COOKIE)
    # Not a string where no browser is behind the session (AppTest): nothing is remembered there.
    return unquote(value).strip()[:NAME_MAX] if isinstance(value, str) else ""


def _remember_name(name: str) -> None:
    """Store the name in this browser's cookie, or forget it when emptied. Streamlit only reads
    cookies, so a zero-height component frame (same origin as the page) writes it; a frame whose
    text does not change is not run again. Not HttpOnly: a name is no secret, and the password's cookie is another one."""
    age = NAME_COOKIE_DAYS * 86400 if name else 0
    components.html(f"<script>document.cookie = '{NAME_COOKIE}=' + encodeURIComponent({script_text(name)}) + "
                    f"'; path=/; max-age={age}; SameSite=Strict';</script>", height=0)


def _sidebar(backend: Backend, current: str) -> str:
    with st.sidebar:
        # The name first: it is what every task is recorded under, and the page list is long.
        entered = _name_input()
        _navigation(current)
        if backend.is_simulator:
            st.info("**Simulator.** No `RUNWAYML_API_SECRET` is set, so tasks run on the built-in Runway "
                    "simulator: free, fast, real media.", icon="🧪")
        else:
            st.success(f"**Live Runway API.** Tasks cost real credits.  \n{plain(backend.base_url)}", icon="🟢")
    return entered


def _name_input() -> str:
    """The teammate's name. Kept in the session (across pages), in this browser (a cookie, across
    visits and new tabs) and in the address (across reloads and bookmarks). A name this session or
    this browser already has wins over the address, so a teammate's shared link cannot make
    someone submit under the teammate's name; only a browser with no name yet takes it."""
    remembered = remembered_name()
    own = st.session_state.get("teammate", remembered)
    from_address = st.query_params.get("teammate", "")
    if from_address and not own:
        st.session_state["teammate_from_address"] = True
    entered = st.text_input("Your name", value=own or from_address, key="teammate_input",
                            on_change=st.session_state.pop, args=("teammate_from_address", None),
                            help="Recorded on every task you submit; this browser remembers it.").strip()
    if entered != remembered or st.session_state.get("name_written"):
        # Drawn on every rerun from then on, unchanged unless the name is: one that vanished
        # on the next rerun could go before its script had run.
        _remember_name(entered)
        st.session_state["name_written"] = True
    if entered and st.session_state.get("teammate_from_address"):
        st.caption("Name taken from the page address; change it if it is not yours.")
    st.session_state["teammate"] = entered
    if from_address != entered:
        st.query_params["teammate"] = entered
    return entered


# Where GitHub-flavoured markdown would make a link out of bare text: `www.`, `http(s)://` and an
# e-mail's `@` (which `mailto:` needs too). Streamlit finds these in the text after markdown
# escapes are undone, so escaping alone does not stop them; an invisible word joiner does.
_AUTOLINK = re.compile(r"(?i)www(?=\.)|:/(?=/)|@")
WORD_JOINER = "\u2060"


def plain(text: str | None) -> str:
    """Text shown as written inside markdown: no character of it becomes markup, a link or an image.
    Markdown and HTML characters are escaped; a word joiner, which shows as nothing, goes where a
    bare address would otherwise become a link (copied text keeps it). Text that stands alone is
    shown with st.text instead, which is exact."""
    unlinked = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, text or "")
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])", r"\\\1", unlinked)


# The ids a page address can name: SQLite's integers are 64-bit, and ids start at 1.
ID_MAX = 2 ** 63 - 1


def parse_id(text: str | None) -> int | None:
    """A task or output number from a page address, or None if the text is not one."""
    if not text or not re.fullmatch(r"[0-9]{1,19}", text):
        return None
    number = int(text)
    return number if 1 <= number <= ID_MAX else None


def quoted(text: str, limit: int = 40) -> str:
    """Something a visitor typed, shortened and made safe to repeat back on the page."""
    return plain(text if len(text) <= limit else text[:limit] + "…")




def age(iso: str | None) -> str:
    if not iso:
        return ""
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # a page redraws at least once a minute: seconds would go stale


def status_label(task: dict) -> str:
    """The lifecycle status with what Runway's raw status adds: throttled, progress, a cancel on its way."""
    status = task["status"]
    label = status
    if task.get("cancel_requested_at") and not lifecycle.is_terminal(status):
        label += " · cancelling"
    elif task.get("api_status") == "THROTTLED":
        label += " · throttled"
    elif task.get("api_status") and not lifecycle.is_known(task["api_status"]):
        label += f" · {task['api_status']}"  # before the progress, which is from an older answer
    elif status == lifecycle.PROCESSING and task.get("progress") is not None:
        label += f" · {task['progress']:.0%}"
    return label


def badge_markdown(task: dict) -> str:
    return f":{BADGE_COLOURS.get(task['status'], 'gray')}-badge[{plain(status_label(task))}]"


def task_title(task: dict) -> str:
    """`#12 · Text to video · gen4.5` in bold markdown, for a heading. A link to the task is
    `task_link`, never markdown (a markdown link opens a new tab, a new session without the name)."""
    return f"**#{task['id']} · {task['task_type'].replace('_', ' ').capitalize()} · {plain(task['model'])}**"


def task_link(task: dict, before: str = "", after: str = "") -> None:
    """A link to the task's own page, in the same tab and session: `#12 · Text to video · gen4.5`
    between `before` and `after` (markdown, made safe by the caller)."""
    kind = task["task_type"].replace("_", " ").capitalize()
    link(TASK_PAGE, f"{before}#{task['id']} · {kind} · {plain(task['model'])}{after}", {"task": str(task["id"])})


def task_heading(task: dict) -> None:
    """A task's number, type and model linking to its page, with its status badge beside it."""
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        task_link(task)
        st.markdown(badge_markdown(task), width="content")


def task_relations(task: dict) -> None:
    """Links from a task to its comparison group and to the task it was made from, in a row, each
    in the same tab and session (nothing when it has neither)."""
    group, parent = task.get("group_id"), task.get("parent_task_id")
    if not group and not parent:
        return
    with st.container(horizontal=True, gap="small"):
        if group:
            link(COMPARE_PAGE, f"Compare group {plain(group)}", {"group": group}, icon="⚖️")
        if parent:
            link(TASK_PAGE, f"From #{parent}", {"task": str(parent)}, icon="↩️")


def credits_text(task: dict) -> str:
    """What the task cost: what Runway charged once it says so, else the estimate while it may still
    be charged. A failed or cancelled task without a cost was charged nothing, so it never shows
    its estimate as if it had been spent."""
    if task.get("cost_credits") is not None:
        return f"{task['cost_credits']:g} credits charged"
    if task["status"] in (lifecycle.FAILED, lifecycle.CANCELLED):
        return "0 credits charged"
    if task.get("estimated_credits") is not None:
        return f"{task['estimated_credits']:g} credits (est.)"
    return ""


def show_output(output: dict, kind: str) -> None:
    """One output: the archived copy if there is one, else the state of its download."""
    url = archive.static_url(output.get("path"))
    if url:
        mime = output.get("mime") or ""
        if mime.startswith("image/"):
            st.image(url, width="stretch")
        elif mime.startswith("audio/"):
            st.audio(url)
        else:
            # Not st.video, which fetches part of every file as soon as it is drawn: a poster, and
            # the video only once played. (Imported here: the gallery is drawn with this module.)
            from lib import gallery

            st.html(gallery.player_html(output, f"the {kind}"))
    elif output.get("state") == OUT_AT_RISK:
        st.warning(f"Not archived yet: {plain(output.get('last_error'))}. Retrying; the original link lasts "
                   "24–48 h.", icon="⚠️")
    else:
        st.caption(f"Archiving the {kind}…")


def show_progress(task: dict) -> None:
    """Where an unfinished task is: a progress bar while it runs, a note while it waits."""
    if task["status"] == lifecycle.PROCESSING:
        progress = task.get("progress") or 0.0
        st.progress(min(max(progress, 0.0), 1.0), text=f"Generating… {progress:.0%}")
    elif task["status"] == lifecycle.PENDING and task.get("api_status") == "THROTTLED":
        st.caption("Throttled: waiting for a free slot, the model's concurrency limit is reached.")
    elif task["status"] == lifecycle.PENDING:
        st.caption("Waiting in Runway's queue…" if task.get("task_uuid") else "Sending to the API…")
    if task.get("last_error") and not lifecycle.is_terminal(task["status"]):
        st.caption(f"Last poll failed: {plain(task['last_error'])} Retrying.")


def show_failure(task: dict) -> None:
    if task["status"] == lifecycle.FAILED:
        code = f"  \nCode: {plain(task['failure_code'])}" if task.get("failure_code") else ""
        st.error(plain(task.get("failure") or "Failed without a reason.") + code)


PROMPT_PREVIEW = 280  # characters of a prompt a card shows; the task's page shows all of it


def task_card(task: dict, outputs: list[dict], kind: str, *, review: dict | None = None,
              actions: Callable[[dict, list[dict]], None] | None = None) -> None:
    """A task as a compact row: its outputs on the left; what was asked, where it is, what it
    cost on the right, then (on History) what can be done with it."""
    with st.container(border=True):
        media, info = st.columns([2, 5], gap="medium")
        with media:
            for output in outputs:
                show_output(output, kind)
            if not outputs:
                if lifecycle.is_terminal(task["status"]):
                    st.caption(f"No {kind}.")
                else:
                    show_progress(task)
        with info:
            task_heading(task)
            if outputs and not lifecycle.is_terminal(task["status"]):
                show_progress(task)
            prompt = (task.get("request") or {}).get("promptText")
            if prompt:
                shown = prompt if len(prompt) <= PROMPT_PREVIEW else prompt[:PROMPT_PREVIEW].rstrip() + "…"
                st.text(shown)  # not markdown: shown, and copied, exactly as written
            summary = history.input_summary(task)
            meta = [age(task["created_at"]), credits_text(task)]
            if task.get("teammate"):
                meta.append(f"by {plain(task['teammate'])}")
            if review and review.get("count"):  # the team's average, how many rated, and winner votes
                votes = f" · {review['winner']} winner vote{'s' if review['winner'] != 1 else ''}" if review.get(
                    "winner") else ""
                meta.append(f"★ {review['average']:.1f} ({review['count']}){votes}")
            st.caption(" · ".join(plain(s) for s in summary) + ("  \n" if summary else "")
                       + " · ".join(m for m in meta if m))
            task_relations(task)
            show_failure(task)
            if actions:
                actions(task, outputs)


def output_tools(task: dict, outputs: list[dict], key: str) -> None:
    """Open the task in its own form, to edit and send again; download each archived output, or
    open another task type's page with it as an input."""
    if task["task_type"] in PAGE_FILES:
        link(PAGE_FILES[task["task_type"]], "Open in form", {"from_task": str(task["id"])}, icon="✏️")
    for output in outputs:
        path = archive.archived_file(output.get("path"))
        if path is None:
            continue
        number = f" {output['position'] + 1}" if len(outputs) > 1 else ""
        st.link_button(f"Download{number}", downloads.output_link(task, output), icon="⬇️")
        targets = history.reuse_targets(output.get("mime"))
        if targets:
            with st.popover(f"Use{number} as input"):
                for target in targets:
                    link(PAGE_FILES[target.key], target.name, {"from_output": str(output["id"])})


def task_actions(ctx: Context, task: dict, outputs: list[dict]) -> None:
    """The actions on one task, in a row. They run as callbacks, before the rerun draws the
    page, so the page always shows their effect; the outcome is a toast."""
    task_id = task["id"]
    confirming = st.session_state.get("confirm_remove") == task_id
    cancelling = st.session_state.get("confirm_cancel") == task_id and history.can_cancel(task)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        if history.can_cancel(task) and not cancelling:
            st.button("Cancel…", key=f"cancel_{task_id}", icon="🛑", on_click=_confirm_remove,
                      args=(task_id, "cancel"))
        if history.can_rerun(task):
            st.button("Re-run", key=f"rerun_{task_id}", icon="🔁", on_click=_rerun, args=(ctx, task_id),
                      help="Same inputs, same model; the new task links back to this one.")
        output_tools(task, outputs, "actions")
        picks = st.session_state.setdefault("compare_picks", [])
        st.checkbox("Compare", key=f"pick_{task_id}", value=task_id in picks, on_change=_toggle_pick,
                    args=(task_id,))
        if history.can_remove(task) and not confirming:
            st.button("Remove…", key=f"remove_{task_id}", type="tertiary", on_click=_confirm_remove,
                      args=(task_id,))
    if confirming and history.can_remove(task):
        files = sum(1 for o in outputs if o.get("path"))
        st.warning(f"Remove #{task_id} from the history, with its {files} archived file(s) and its reviews? "
                   "What it cost stays in the record of spend (the CSV of all rows); other tasks and their "
                   "files stay.")
        with st.container(horizontal=True, gap="small"):
            st.button("Remove", key=f"remove_yes_{task_id}", type="primary", on_click=_remove, args=(ctx, task_id))
            st.button("Keep", key=f"remove_no_{task_id}", on_click=_confirm_remove, args=(None,))
    if cancelling:
        estimate = f" (est. {task['estimated_credits']:g} credits)" if task.get("estimated_credits") else ""
        st.warning(f"Cancel #{task_id}? It cannot be resumed; Runway may still charge{estimate} for a task "
                   "cancelled while it runs.")
        with st.container(horizontal=True, gap="small"):
            st.button("Cancel task", key=f"cancel_yes_{task_id}", type="primary", on_click=_cancel,
                      args=(ctx, task_id))
            st.button("Keep running", key=f"cancel_no_{task_id}", on_click=_confirm_remove, args=(None, "cancel"))


def _confirm_remove(task_id: int | None, action: str = "remove") -> None:
    """Ask (task id) or stop asking (None) whether to remove (or, `action` "cancel", cancel) a task;
    kept across auto-refreshes."""
    if task_id is None:
        st.session_state.pop(f"confirm_{action}", None)
    else:
        st.session_state[f"confirm_{action}"] = task_id


def _cancel(ctx: Context, task_id: int) -> None:
    st.session_state.pop("confirm_cancel", None)
    try:
        history.cancel(ctx.store, ctx.backend, task_id, ctx.teammate)
    except history.ActionRefused as exc:
        st.toast(plain(str(exc)), icon="⚠️")
        return
    st.toast(f"Cancel of #{task_id} sent; its status updates in a moment.", icon="🛑")


def _rerun(ctx: Context, task_id: int) -> None:
    try:
        result = history.rerun(ctx.store, ctx.backend, task_id, ctx.teammate)
    except history.ActionRefused as exc:
        st.toast(plain(str(exc)), icon="⚠️")
        return
    if result.ok:
        st.toast(f"Re-run of #{task_id} submitted as #{result.task_id}.", icon="🔁")
    else:
        problems = [result.error] if result.error else [i.message for i in result.issues]
        st.toast(plain(f"Re-run of #{task_id} was not sent: {' '.join(problems)}"), icon="⚠️")


def _remove(ctx: Context, task_id: int) -> None:
    st.session_state.pop("confirm_remove", None)
    try:
        deleted = history.remove(ctx.store, task_id, teammate=ctx.teammate)
    except history.ActionRefused as exc:
        st.toast(plain(str(exc)), icon="⚠️")
        return
    picks = st.session_state.get("compare_picks", [])
    if task_id in picks:
        picks.remove(task_id)
    st.toast(f"Removed #{task_id} from the history ({deleted} archived file(s) deleted); what it cost stays "
             "in the record of spend.", icon="🗑️")


def _toggle_pick(task_id: int) -> None:
    picks = st.session_state.setdefault("compare_picks", [])
    if st.session_state.get(f"pick_{task_id}"):
        if task_id not in picks:
            picks.append(task_id)
    elif task_id in picks:
        picks.remove(task_id)


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


@st.cache_data(ttl=30, show_spinner=False)
def _organization(backend_name: str, _backend: Backend) -> dict | str:
    try:
        with _backend.client() as client:
            return client.organization()
    except RunwayError as exc:
        return exc.user_message


def _is_organization(answer: dict | str) -> bool:
    # Everything shown of the answer hangs on the balance being a number; the API is not trusted to send one.
    balance = answer.get("creditBalance") if isinstance(answer, dict) else None
    return isinstance(balance, (int, float)) and not isinstance(balance, bool)


def organization(backend: Backend) -> dict | None:
    """The credit balance (a number) and per-model limits, read at most every 30 s; None if the API
    cannot say."""
    answer = _organization(backend.name, backend)
    return answer if _is_organization(answer) else None


def organization_problem(backend: Backend) -> str | None:
    """Why the organization could not be read (a rejected key, say), in words for people; None if it was."""
    answer = _organization(backend.name, backend)
    if isinstance(answer, str):
        return answer
    return None if _is_organization(answer) else "The API's answer about the organization has no credit balance."
