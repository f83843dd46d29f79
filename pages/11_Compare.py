import streamlit as st

from lib import compare, downloads, export, lifecycle, ui
from lib.store import OUT_ARCHIVED, queries

ctx = ui.setup_page("Compare", "⚖️")
version = ctx.store.change_version()  # before any read, for ui.redraw_on_change
st.title("⚖️ Compare")

groups = {g["group_id"]: g for g in queries.recent_groups(ctx.store)}


def _clear(key: str) -> None:
    st.session_state[key] = None if key == "compare_group" else ""


# Groups listed as people know them (prompt, size, models, owner, age); the address keeps the id.
pick_group, pick_tasks = st.columns([3, 2])
from_address = st.query_params.get("group")
options = list(groups) + ([from_address] if from_address and from_address not in groups else [])
group = ui.in_address("group", "compare_group", lambda: pick_group.selectbox(
    "Group", options, index=None, key="compare_group", accept_new_options=True,
    format_func=lambda g: compare.group_label(groups[g]) if g in groups else g,
    placeholder="Pick a comparison group", on_change=_clear, args=("tasks",)))
typed = pick_tasks.text_input("…or any tasks", key="tasks", bind="query-params",
                              placeholder="Task numbers: 12, 15, 18", on_change=_clear, args=("compare_group",))
task_ids = compare.parse_task_ids(typed)
if group and not task_ids:
    pick_group.caption(f"Group {ui.plain(group)}")
if typed and not task_ids:
    st.warning(f"“{ui.quoted(typed)}” names no task: task numbers are whole numbers from 1 to {ui.ID_MAX}.",
               icon="⚠️")
if not task_ids and not group:
    st.info("Pick a group of tasks submitted together, or type task numbers. On History, tick "
            "“Compare” on a few tasks to compare them here.")
    if groups:
        st.markdown("**Recent groups**")
        for group_id, found in list(groups.items())[:15]:
            ui.link(ui.COMPARE_PAGE, ui.plain(compare.group_label(found)), {"group": group_id})
    st.stop()

filters = compare.selection(group or "", task_ids)
cols = compare.columns(ctx.store, filters)
if not cols:
    st.warning("No task matches; it may have been removed from the history.")
    st.stop()
if any(not lifecycle.is_terminal(c.task["status"]) or any(o["state"] != OUT_ARCHIVED for o in c.outputs)
       for c in cols):
    # Only while something is on its way; a finished comparison is left alone to be watched.
    ui.redraw_on_change(ctx.store, "compare_version", since=version)

prompts = {(c.task.get("request") or {}).get("promptText") or "" for c in cols}
shared_prompt = len(prompts) == 1
if shared_prompt and prompts != {""}:
    st.markdown("**Prompt**")
    st.text(next(iter(prompts)))  # not markdown: shown, and copied, exactly as written

reviews = ctx.store.reviews_for([c.task["id"] for c in cols])
ratio = compare.aspect(cols)
for start in range(0, len(cols), compare.PER_ROW):
    row = cols[start:start + compare.PER_ROW]
    row_key = f"row-{start}"
    if compare.has_players(row):
        st.iframe(compare.bar_html(row_key), height=compare.BAR_HEIGHT, alt="Play the row together")
    for col, place in zip(row, st.columns(len(row), gap="small")):
        with place:
            st.iframe(compare.cell_html(col, ratio, row_key), height="content", alt=f"Output of #{col.task['id']}")
            ui.task_heading(col.task)
            if col.differs:
                st.markdown("**" + ui.plain(" · ".join(col.differs)) + "**")
            st.caption(" · ".join(p for p in (col.facts, ui.age(col.task["created_at"])) if p))
            if not shared_prompt and (col.task.get("request") or {}).get("promptText"):
                st.text(col.task["request"]["promptText"])
            ui.show_failure(col.task)
            compare.review_column(ctx.store, col, reviews.get(col.task["id"], {}), ctx.teammate)

compare.winner_picker(ctx.store, cols, reviews, ctx.teammate, compare.selection_key(filters))


files, size = queries.archived_totals(ctx.store, filters)
st.link_button(f"Download the {files} output file(s) as ZIP ({size / 1e6:.1f} MB)",
               downloads.zip_link(filters, f"runway-compare-{group or 'tasks'}.zip"), icon="🗜️",
               disabled=files == 0 or size > export.ZIP_MAX_BYTES)
