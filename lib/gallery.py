"""History's gallery: a dense grid of outputs, one cell per task, with a tick box to pick it for
Compare; and the light video player that History and the Task page show.

A video is a plain <video> with `preload="none"` and its poster (archive.poster_path): the
browser fetches the poster, a few tens of KB, and not a byte of the video until it is played.
(`st.video` fetches part of every file as soon as it is drawn: 25 videos of 12.6 MB cost 96 MB.)
Everything written into the player's HTML is escaped; st.html sanitises it again.
"""
from __future__ import annotations

import html

import streamlit as st

from lib import archive, lifecycle, media, ui

COLUMNS = 5  # cells in a row at 1440 px: large enough to judge a shot, small enough to scan 25


def player_html(output: dict, label: str, *, box: bool = False) -> str:
    """A video player that loads nothing but its poster until played. `box`: a 16:9 frame that
    the video fits in, so a grid's cells line up whatever each video's shape."""
    src = html.escape(archive.static_url(output.get("path")) or "", quote=True)
    poster = archive.poster_url(output.get("path"))
    poster_attr = f' poster="{html.escape(poster, quote=True)}"' if poster else ""
    fit = "aspect-ratio:16/9;object-fit:contain;background:#0e1117;" if box else ""
    return (f'<video src="{src}"{poster_attr} controls playsinline preload="none" '
            f'aria-label="{html.escape(label, quote=True)}" '
            f'style="width:100%;display:block;border-radius:0.4rem;{fit}"></video>')


def image_html(output: dict, label: str) -> str:
    """An image that the browser fetches only when it scrolls near the screen."""
    src = html.escape(archive.static_url(output.get("path")) or "", quote=True)
    return (f'<img src="{src}" alt="{html.escape(label, quote=True)}" loading="lazy" '
            'style="width:100%;aspect-ratio:16/9;object-fit:contain;background:#0e1117;border-radius:0.4rem;">')


def _cell_media(task: dict, outputs: list[dict], kind: str) -> None:
    label = f"#{task['id']} · {task['model']}"
    archived = [o for o in outputs if archive.static_url(o.get("path"))]
    if not archived:
        if outputs:
            ui.show_output(outputs[0], kind)  # its download's state
        elif lifecycle.is_terminal(task["status"]):
            st.caption(f"No {kind}.")
        else:
            ui.show_progress(task)
        return
    first = archived[0]  # one output a cell; the list view and the task's page show them all
    player = media.player_kind(first.get("mime"))
    if player == "image":
        st.html(image_html(first, label))
    elif player == "audio":
        st.audio(archive.static_url(first.get("path")))
    else:
        st.html(player_html(first, label, box=True))


def show(tasks: list[dict], outputs: dict[int, list[dict]], kinds: dict[int, str],
         reviews: dict[int, dict]) -> None:
    """The grid: each task's first output, its number, model and status, the start of its prompt,
    and "Pick" (the same picks as the list's "Compare" boxes)."""
    picks = st.session_state.setdefault("compare_picks", [])
    for start in range(0, len(tasks), COLUMNS):
        cells = st.columns(COLUMNS, gap="small")
        for cell, task in zip(cells, tasks[start:start + COLUMNS]):
            with cell, st.container(border=True, gap="small"):
                _cell_media(task, outputs[task["id"]], kinds[task["id"]])
                # Number and model only: a cell is too narrow for the task type too.
                ui.link(ui.TASK_PAGE, f"#{task['id']} · {ui.plain(task['model'])}", {"task": str(task["id"])})
                st.markdown(ui.badge_markdown(task))
                prompt = (task.get("request") or {}).get("promptText") or ""
                stars = (reviews.get(task["id"]) or {}).get("rating")
                line = ui.plain(prompt[:80].rstrip() + ("…" if len(prompt) > 80 else ""))
                st.caption(line + (f"  \n{'★' * stars}" if stars else ""))
                st.checkbox("Pick for Compare", key=f"pick_{task['id']}", value=task["id"] in picks,
                            on_change=ui.toggle_pick, args=(task["id"],))
