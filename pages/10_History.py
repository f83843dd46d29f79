import streamlit as st

from lib import catalog, downloads, export, gallery, lifecycle, ui
from lib.store import queries

ctx = ui.setup_page("History", "📜")
st.title("📜 History")

# Redrawn whenever a task, output or review changes, by this session, a teammate or the server's
# poller (which alone talks to the API); reruns only read SQLite.
ui.redraw_on_change(ctx.store, "history_version")
unfinished = ctx.store.unfinished_count()
archiving = ctx.store.pending_archive_count()

if not ctx.store.has_tasks():
    st.info("No tasks yet. Submit one from a task page in the sidebar, for example Text to Video.")
    ui.link(ui.PAGE_FILES["text_to_video"], "Text to Video")
    st.stop()


def _first_page() -> None:
    st.session_state["page"] = 1


# Every filter lives in the page address too, so a filtered view can be bookmarked or shared.
bound = {"bind": "query-params", "on_change": _first_page}
FILTER_DEFAULTS = {"q": "", "status": [], "type": [], "model": [], "by": [], "group": "", "from": None, "to": None}


def _clear_filters() -> None:
    for key, empty in FILTER_DEFAULTS.items():
        st.session_state[key] = empty
    _first_page()


task_types = {t.key: t.name for t in catalog.TASK_TYPES}
# Counted before the widgets are drawn: a filter is in the session, or only in the address on a first load.
on = sum(1 for key, empty in FILTER_DEFAULTS.items()
         if st.session_state.get(key, st.query_params.get(key, empty)) not in ("", [], None))
# Folded unless a filter is on, so a phone's first screen shows tasks rather than ten empty fields.
with st.expander(f"Filters ({on} on)" if on else "Filters", expanded=bool(on), icon="🔎"):
    row = st.columns([3, 2, 2, 2])
    prompt = row[0].text_input("Prompt contains", key="q", help="Every word, in any order.", **bound)
    statuses = row[1].multiselect("Status", lifecycle.STATES, key="status", **bound)
    types = row[2].multiselect("Task type", list(task_types), format_func=task_types.get, key="type", **bound)
    models = row[3].multiselect("Model", queries.distinct_values(ctx.store, "model"), key="model", **bound)
    row = st.columns([2, 2, 1.5, 1.5, 2])
    teammates = row[0].multiselect("Teammate", queries.distinct_values(ctx.store, "teammate"), key="by",
                                   format_func=lambda name: name or "(no name)", **bound)
    # Kept in the address by hand: bound, its name would strip `?group=` from links to Compare.
    group = ui.in_address("group", "group", lambda: row[1].text_input(
        "Group", key="group", help="A comparison group's id.", on_change=_first_page), empty="")
    created_from = row[2].date_input("From (UTC)", value=None, key="from", **bound)
    created_to = row[3].date_input("To (UTC)", value=None, key="to", **bound)
    sorts = {label: key for key, (label, _) in queries.SORTS.items()}  # the address shows the label
    sort = sorts[row[4].selectbox("Sort", list(sorts), key="sort", bind="query-params")]
    st.button("Clear filters", icon="✖️", on_click=_clear_filters, disabled=not on, type="tertiary")
filters = queries.Filters(statuses=tuple(statuses), task_types=tuple(types), models=tuple(models),
                          teammates=tuple(teammates), group_id=group, created_from=created_from,
                          created_to=created_to, prompt=prompt)

# A prompt search stops counting at queries.COUNT_CAP ("more than"); everything else is exact.
total, more = queries.total(ctx.store, filters)
pages = max(1, -(-total // queries.PAGE_SIZE))
summary, actions_row = st.columns([3, 2], vertical_alignment="bottom")
with summary:
    shown = (f"More than {total:,} tasks match: the first {pages:,} pages are shown; narrow the search, or "
             "change the sort, to reach the others" if more else
             f"{total:,} task(s)" + (" match the filters" if filters.active else ""))
    live = f" · updating live: {unfinished} unfinished, {archiving} output(s) being archived" if (
        unfinished or archiving) else ""
    st.caption(shown + live)
    number = st.pagination(pages, key="page", bind="query-params", max_visible_pages=7) if pages > 1 else 1
    view = st.segmented_control("View", ["List", "Gallery"], key="view", default="List", required=True,
                                bind="query-params", label_visibility="collapsed")


with actions_row:
    buttons = st.columns(3 if filters.active else 2)
    # "Export CSV" writes what the filters show; with filters on, "All rows" writes everything.
    buttons[0].link_button("Export CSV", downloads.csv_link(filters), icon="⬇️", width="stretch",
                           disabled=total == 0)
    if filters.active:
        buttons[1].link_button("All rows", downloads.csv_link(queries.Filters(), "runway-tasks-all.csv"),
                               icon="⬇️", width="stretch")
    # Counting the archived files is a join over the filtered outputs: done only when asked.
    buttons[-1].toggle("ZIP of outputs", key="zip_open", help="The archived outputs of the tasks shown, "
                       "with a manifest.csv.")

if st.session_state.get("zip_open"):
    files, size = queries.archived_totals(ctx.store, filters)
    if size > export.ZIP_MAX_BYTES:
        st.warning(f"The {files} archived file(s) of these tasks come to {size / 1e6:,.0f} MB, too much for one "
                   "download; narrow the filters first.")
    else:
        st.link_button(f"Download the {files} archived file(s) as ZIP ({size / 1e6:,.1f} MB)",
                       downloads.zip_link(filters), icon="🗜️", disabled=files == 0)

picked = st.session_state.setdefault("compare_picks", [])
if picked:
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(f"Picked for comparison: {', '.join(f'#{i}' for i in picked)}")
    if len(picked) >= 2:
        with right:
            ui.link(ui.COMPARE_PAGE, f"Compare {len(picked)} →", {"tasks": ",".join(str(i) for i in picked)})

tasks = queries.page(ctx.store, filters, sort, number, total=None if more else total)
if not tasks:
    st.info("No task matches these filters.")
outputs = ctx.store.outputs_for([t["id"] for t in tasks])
reviews = ctx.store.reviews_for([t["id"] for t in tasks])
if view == "Gallery":
    gallery.show(tasks, outputs, {t["id"]: catalog.task_type(t["task_type"]).output for t in tasks}, reviews)
else:
    for task in tasks:
        ui.task_card(task, outputs[task["id"]], catalog.task_type(task["task_type"]).output,
                     review=reviews.get(task["id"]), actions=lambda t, o: ui.task_actions(ctx, t, o))


def _to_page() -> None:
    st.session_state["page"] = st.session_state["page_bottom"]


if pages > 1 and tasks:
    # The same pager below the tasks, so the next page is at hand after scrolling through 25.
    st.session_state["page_bottom"] = number
    st.pagination(pages, key="page_bottom", max_visible_pages=7, on_change=_to_page)
