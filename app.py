import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lib import catalog, downloads, guard, server, ui

# `streamlit run app.py` finds this and runs the lifespan once per server: the
# poller starts with the server, before any browser connects. The guard sees every request
# first: foreign host names and other sites' pages are refused before Streamlit runs anything.
app = st.App("app.py", lifespan=server.lifespan, routes=downloads.ROUTES, middleware=guard.MIDDLEWARE)


def home() -> None:
    ctx = ui.setup_page("Home", "🎬")
    st.title("🎬 Runway task dashboard")
    st.write("Submit generation tasks to Runway's models, follow them to the end, and compare what comes out. "
             "Every task is kept in the team's history with an archived copy of its outputs.")

    balance_col, tasks_col, unfinished_col = st.columns(3)
    tasks_col.metric("Tasks in history", ctx.store.count_tasks())
    unfinished_col.metric("Unfinished", ctx.store.unfinished_count())
    organization = ui.organization(ctx.backend)
    if organization is None:
        balance_col.metric("Credit balance", "—")
        st.error(ui.plain(ui.organization_problem(ctx.backend) or "Could not read the organization from the API."),
                 icon="⚠️")
    else:
        balance_col.metric("Credit balance", f"{organization.get('creditBalance', 0):,}")

    st.subheader("New task")
    columns = st.columns(3)
    for i, task_type in enumerate(catalog.TASK_TYPES):
        with columns[i % 3]:
            ui.link(ui.PAGE_FILES[task_type.key], task_type.name)
            st.caption(task_type.description)

    st.subheader("Recent tasks")
    recent = ctx.store.recent_tasks(limit=5)
    if not recent:
        st.info("No tasks yet: start with Text to Video.")
    outputs = ctx.store.outputs_for([t["id"] for t in recent])
    for task in recent:
        ui.task_card(task, outputs[task["id"]], catalog.task_type(task["task_type"]).output)
    ui.link(ui.HISTORY_PAGE, "All tasks on History")


if get_script_run_ctx() is not None:  # a page view, not the server importing this file
    home()
