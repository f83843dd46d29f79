import streamlit as st
from streamlit_autorefresh import st_autorefresh

from lib import catalog, export, ui
from lib.store import Store

PAGE_SIZE = 25

ctx = ui.setup_page("History", "📜")
st.title("📜 History")

unfinished = ctx.store.unfinished_count()
archiving = ctx.store.pending_archive_count()
if unfinished or archiving:
    # Reruns only redraw from SQLite; the server's poller is what talks to the API.
    st_autorefresh(interval=ui.refresh_interval_ms(), key="history_refresh")
    st.caption(f"Updating live: {unfinished} unfinished, {archiving} output(s) being archived.")

total = ctx.store.count_tasks()
if total == 0:
    st.info("No tasks yet. Submit one from a task page in the sidebar, for example Text to Video.")
    ui.link(ui.PAGE_FILES["text_to_video"], "Text to Video")
    st.stop()

pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
top = st.columns([3, 1, 1])
page = top[1].number_input("Page", min_value=1, max_value=pages, value=1, step=1) if pages > 1 else 1
top[0].caption(f"{total} task(s), newest first.")


def _csv() -> bytes:
    # Runs on another thread: it opens its own connection.
    store = Store(ctx.store.path)
    try:
        return "".join(export.csv_chunks(store.iter_export_rows())).encode("utf-8-sig")
    finally:
        store.close()


top[2].download_button("Export CSV", data=_csv, file_name="runway-tasks.csv", mime="text/csv", icon="⬇️")

tasks = ctx.store.recent_tasks(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
outputs = ctx.store.outputs_for([t["id"] for t in tasks])
for task in tasks:
    kind = catalog.task_type(task["task_type"]).output
    ui.task_card(task, outputs[task["id"]], kind)
