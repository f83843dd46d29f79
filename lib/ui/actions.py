"""What the buttons on a task do: ask before a cancel or a removal, cancel, re-run, remove, and
pick for Compare. They run as Streamlit callbacks, before the rerun draws the page, and say
the outcome in a toast."""
from __future__ import annotations

import streamlit as st

from lib import tasks
from lib.ui.page import Context
from lib.ui.text import plain


def confirm_remove(task_id: int | None, action: str = "remove") -> None:
    """Ask (task id) or stop asking (None) whether to remove (or, `action` "cancel", cancel) a task;
    kept across auto-refreshes."""
    if task_id is None:
        st.session_state.pop(f"confirm_{action}", None)
    else:
        st.session_state[f"confirm_{action}"] = task_id


def cancel_task(ctx: Context, task_id: int) -> None:
    st.session_state.pop("confirm_cancel", None)
    try:
        tasks.cancel(ctx.store, ctx.backend, task_id, ctx.teammate)
    except tasks.ActionRefused as exc:
        st.toast(plain(str(exc)), icon="⚠️")
        return
    st.toast(f"Cancel of #{task_id} sent; its status updates in a moment.", icon="🛑")


def rerun_task(ctx: Context, task_id: int) -> None:
    try:
        result = tasks.rerun(ctx.store, ctx.backend, task_id, ctx.teammate)
    except tasks.ActionRefused as exc:
        st.toast(plain(str(exc)), icon="⚠️")
        return
    if result.ok:
        st.toast(f"Re-run of #{task_id} submitted as #{result.task_id}.", icon="🔁")
    else:
        problems = [result.error] if result.error else [i.message for i in result.issues]
        st.toast(plain(f"Re-run of #{task_id} was not sent: {' '.join(problems)}"), icon="⚠️")


def remove_task(ctx: Context, task_id: int) -> None:
    st.session_state.pop("confirm_remove", None)
    try:
        deleted = tasks.remove(ctx.store, task_id, teammate=ctx.teammate)
    except tasks.ActionRefused as exc:
        st.toast(plain(str(exc)), icon="⚠️")
        return
    picks = st.session_state.get("compare_picks", [])
    if task_id in picks:
        picks.remove(task_id)
    st.toast(f"Removed #{task_id} from the history ({deleted} archived file(s) deleted); what it cost stays "
             "in the record of spend.", icon="🗑️")


def toggle_pick(task_id: int) -> None:
    picks = st.session_state.setdefault("compare_picks", [])
    if st.session_state.get(f"pick_{task_id}"):
        if task_id not in picks:
            picks.append(task_id)
    elif task_id in picks:
        picks.remove(task_id)
