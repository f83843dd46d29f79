"""The pieces that show a task: its heading and links, its outputs, progress and failure, the
card History and Home list, and the row of what can be done with it."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lib import archive, downloads, history, lifecycle, media, tasks
from lib.store import OUT_AT_RISK
from lib.ui.actions import cancel_task, confirm_remove, remove_task, rerun_task, toggle_pick
from lib.ui.nav import COMPARE_PAGE, PAGE_FILES, TASK_PAGE, link
from lib.ui.page import Context
from lib.ui.text import age, badge_markdown, credits_text, plain


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


def show_output(output: dict, kind: str) -> None:
    """One output: the archived copy if there is one, else the state of its download."""
    url = archive.static_url(output.get("path"))
    if url:
        player = media.player_kind(output.get("mime"))
        if player == "image":
            st.image(url, width="stretch")
        elif player == "audio":
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


def output_tools(task: dict, outputs: list[dict]) -> None:
    """Open the task in its own form, to edit and send again; download each archived output, or
    open another task type's page with it as an input."""
    if task["task_type"] in PAGE_FILES:
        link(PAGE_FILES[task["task_type"]], "Open in form", {"from_task": str(task["id"])}, icon="✏️")
    for output in outputs:
        if not archive.has_archived(output.get("path")):
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
    cancelling = st.session_state.get("confirm_cancel") == task_id and tasks.can_cancel(task)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        if tasks.can_cancel(task) and not cancelling:
            st.button("Cancel…", key=f"cancel_{task_id}", icon="🛑", on_click=confirm_remove,
                      args=(task_id, "cancel"))
        if tasks.can_rerun(task):
            st.button("Re-run", key=f"rerun_{task_id}", icon="🔁", on_click=rerun_task, args=(ctx, task_id),
                      help="Same inputs, same model; the new task links back to this one.")
        output_tools(task, outputs)
        picks = st.session_state.setdefault("compare_picks", [])
        st.checkbox("Compare", key=f"pick_{task_id}", value=task_id in picks, on_change=toggle_pick,
                    args=(task_id,))
        if tasks.can_remove(task) and not confirming:
            st.button("Remove…", key=f"remove_{task_id}", type="tertiary", on_click=confirm_remove,
                      args=(task_id,))
    if confirming and tasks.can_remove(task):
        files = sum(1 for o in outputs if o.get("path"))
        st.warning(f"Remove #{task_id} from the history, with its {files} archived file(s) and its reviews? "
                   "What it cost stays in the record of spend (the CSV of all rows); other tasks and their "
                   "files stay.")
        with st.container(horizontal=True, gap="small"):
            st.button("Remove", key=f"remove_yes_{task_id}", type="primary", on_click=remove_task, args=(ctx, task_id))
            st.button("Keep", key=f"remove_no_{task_id}", on_click=confirm_remove, args=(None,))
    if cancelling:
        estimate = f" (est. {task['estimated_credits']:g} credits)" if task.get("estimated_credits") else ""
        st.warning(f"Cancel #{task_id}? It cannot be resumed; Runway may still charge{estimate} for a task "
                   "cancelled while it runs.")
        with st.container(horizontal=True, gap="small"):
            st.button("Cancel task", key=f"cancel_yes_{task_id}", type="primary", on_click=cancel_task,
                      args=(ctx, task_id))
            st.button("Keep running", key=f"cancel_no_{task_id}", on_click=confirm_remove, args=(None, "cancel"))
