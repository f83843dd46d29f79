import streamlit as st

from lib import catalog, compare, history, lifecycle, task_view, timefmt, ui
from lib.store import OUT_ARCHIVED, queries

ctx = ui.setup_page("Task", "🔎")
version = ctx.store.change_version()  # before any read, for ui.redraw_on_change

# Read before the widget: a number the widget cannot take (0, past 64 bits, not a number) is dropped
# from the address by it without a word.
asked = st.query_params.get("task", "")
task_id = st.number_input("Task #", min_value=1, step=1, value=None, key="task", bind="query-params",
                          placeholder="A task number, e.g. 12", width=220)
if task_id is None and asked and ui.parse_id(asked) is not None:
    task_id = ui.parse_id(asked)  # past what the browser's number field holds, but an id all the same
if task_id is None:
    if asked:
        st.warning(f"“{ui.quoted(asked)}” is not a task number (a whole number from 1 to {ui.ID_MAX}).",
                   icon="⚠️")
    st.info("Open a task from History (its number is a link), or type its number above.")
    ui.link(ui.HISTORY_PAGE, "Open History")
    st.stop()
task = ctx.store.task(int(task_id))
if task is None:
    st.warning(f"There is no task #{int(task_id)}.")
    st.stop()
if task.get("removed_at"):
    # Kept for the record of spend (the CSV of all rows lists it); its files and reviews are gone.
    st.info(f"Task #{task['id']} was removed from the history on {task['removed_at'][:10]}. What it was "
            "charged stays in the record.")
    st.stop()

outputs = ctx.store.outputs_for([task["id"]])[task["id"]]
kind = catalog.task_type(task["task_type"]).output
if not lifecycle.is_terminal(task["status"]) or any(o["state"] != OUT_ARCHIVED for o in outputs):
    ui.redraw_on_change(ctx.store, "task_version", since=version)

st.markdown(f"## {ui.task_title(task)} &nbsp; {ui.badge_markdown(task)}")
if not lifecycle.is_terminal(task["status"]):
    ui.show_progress(task)
ui.show_failure(task)

THUMB_WIDTH = 220  # pixels of an input's thumbnail
zone = timefmt.viewer_zone()

left, right = st.columns([3, 2], gap="large")
with left:
    for output in outputs:
        ui.show_output(output, kind)
    if not outputs:
        st.caption(f"No {kind} yet." if not lifecycle.is_terminal(task["status"]) else f"No {kind}.")
    prompt = task["request"].get("promptText")
    if prompt:
        st.markdown("**Prompt**")
        st.text(prompt)
    fields, inputs = task_view.request_fields(task), task_view.media_inputs(ctx.store, task)
    if fields or inputs:
        st.markdown("**Inputs**")
    if fields:
        st.markdown("  \n".join(f"**{ui.plain(label)}:** {ui.plain(value)}" for label, value in fields))
    if inputs:
        # Thumbnails of one width in a row that wraps: three across on a laptop, one or two on a phone.
        with st.container(horizontal=True, gap="medium"):
            for item in inputs:
                with st.container(width=THUMB_WIDTH):
                    task_view.show_media_input(item)
    elif not fields and not prompt:
        st.caption("No inputs but the model.")
    with st.expander("Request as sent to the API"):
        st.caption("Exactly as sent; `stored:` marks an uploaded file kept in the dashboard's input stash.")
        st.json(task["request"], expanded=True)

with right:
    st.markdown("**Actions**")
    ui.task_actions(ctx, task, outputs)

    st.markdown("**Details**")
    run = history.run_seconds(task)

    def _when(iso: str | None, with_age: bool = False) -> str:
        if not iso:
            return ""
        return timefmt.local(iso, zone) + (f" · {ui.age(iso)}" if with_age and timefmt.parse(iso) else "")

    facts = {
        "Teammate": task.get("teammate") or "(no name)",
        "Group": task.get("group_id") or "",
        "Backend": task["backend"],
        "Runway task id": task.get("task_uuid") or "(not created)",
        "Raw API status": task.get("api_status") or "",
        "Created": _when(task["created_at"], with_age=True),
        "Started": _when(task.get("started_at")),
        "Finished": _when(task.get("finished_at"), with_age=True),
        "Run time": f"{run:.1f} s from submission to the end" if run is not None else "",
        "Credits": ui.credits_text(task),
    }
    st.markdown("  \n".join(f"**{name}:** {ui.plain(value)}" for name, value in facts.items() if value))
    st.caption(timefmt.zone_caption(zone))

    review = ctx.store.reviews_for([task["id"]]).get(task["id"])
    if review and (review.get("count") or review.get("notes") or review.get("winner")):
        st.markdown("**Review**")
        st.markdown(compare.team_text(review))  # the average, how many rated, who said what
        if review.get("notes"):
            st.text(review["notes"])

    st.markdown("**Lineage**")
    parents, children = queries.lineage(ctx.store, task)

    def _line(relative, before: str) -> None:
        if isinstance(relative, int):
            st.markdown(f"{before}#{relative} (removed from the history)")
            return
        prompt = (relative.get("request") or {}).get("promptText") or ""
        short = prompt if len(prompt) <= 80 else prompt[:80] + "…"
        ui.task_link(relative, before, f" · {relative['status']}")
        if short:
            st.caption(ui.plain(short))  # under the link, which keeps to one line

    if not parents and not children:
        st.caption("Made from scratch; nothing was made from it yet.")
    for parent in parents:
        _line(parent, "↑ from ")
    for child in children:
        _line(child, "↓ ")

st.markdown("**Timeline**")
# A markdown table, not st.dataframe: that would load pandas and pyarrow into the server for a few rows.
rows = [f"| {ui.plain(timefmt.local(e['at'], zone))} | {e['status']} | {ui.plain(e['api_status'])} "
        f"| {ui.plain(' '.join((e['note'] or '').split()))} |" for e in ctx.store.events_for(task["id"])]
header = f"| at ({ui.plain(zone.name or 'your time')}) | status | API status | note |"
st.markdown("\n".join([header, "|---|---|---|---|", *rows]))
