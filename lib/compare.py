"""Comparing outputs side by side: a group's tasks (or any chosen tasks), one
column per task, players of equal size whose play, pause and seek follow each
other across the row; and each teammate's own rating, notes and winner vote,
kept in SQLite, shown with the team's average and who voted what.

The players are small HTML documents embedded with `st.iframe`, one per column
(so a phone stacks each output with its rating): plain <video>/<audio>/<img>
elements on `/app/static/...` URLs. A bar above each row holds a few lines of
JavaScript that find the row's players in those frames (same origin) and mirror
one player's play, pause and seek onto the others. Everything written into them
is escaped; they never contain a prompt.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

import streamlit as st

from lib import archive, catalog, history, lifecycle, media
from lib.store import Store, queries
from lib.store.queries import Filters
from lib.ui import age, credits_text, parse_id, plain, script_text

MAX_TASKS = 20
PER_ROW = 4  # more columns than this make each player too small to judge


@dataclass(frozen=True)
class Column:
    """One task's place in a comparison row: `differs`, what sets it apart from the other columns."""

    task: dict
    outputs: tuple[dict, ...]
    differs: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return " · ".join((f"#{self.task['id']}", self.task["model"], *self.differs))

    @property
    def facts(self) -> str:
        """Run time and what it cost, the figures every column is weighed by."""
        run = history.run_seconds(self.task)
        return " · ".join(p for p in (f"ran {run:.1f} s" if run is not None else "", credits_text(self.task)) if p)


TASK_NUMBER = re.compile(r"\d+")


def parse_task_ids(text: str) -> list[int]:
    """`12, 15 18` -> [12, 15, 18]: task numbers in the order given, each once, at most MAX_TASKS
    (the page shows no more, so the rest of a long address is never read). Numbers that cannot
    be task ids (0, past 64 bits) are left out."""
    ids: dict[int, None] = {}  # a dict keeps the order and answers "seen?" at once
    for match in TASK_NUMBER.finditer(text or ""):
        task_id = parse_id(match.group())
        if task_id is not None:
            ids.setdefault(task_id)
            if len(ids) == MAX_TASKS:
                break
    return list(ids)


def selection(group_id: str = "", task_ids: list[int] | None = None) -> Filters:
    return Filters(task_ids=tuple(task_ids)) if task_ids else Filters(group_id=group_id)


def columns(store: Store, filters: Filters) -> list[Column]:
    """The tasks to compare, oldest first (at most MAX_TASKS), with their outputs."""
    tasks = queries.page(store, filters, "oldest", 1, MAX_TASKS)
    outputs = store.outputs_for([t["id"] for t in tasks])
    differs = differences(tasks)
    return [Column(task, tuple(outputs[task["id"]]), differs[task["id"]]) for task in tasks]


def differences(tasks: list[dict]) -> dict[int, tuple[str, ...]]:
    """For each task, its parameters that are not the same across the set (seed, ratio, duration,
    options), as `history.input_summary` words them; "no <field>" where a task's model takes one
    another has but the task left it unset (a model without such a field says nothing: an image
    has no duration). The model is in every column's label already; the prompt and media are
    shown apart."""
    said, takes = {}, {}
    for t in tasks:
        media_fields = catalog.media_fields(t["task_type"], t["model"])
        said[t["id"]] = {k: v for k, v in history.input_phrases(t).items() if k not in media_fields}
        try:
            takes[t["id"]] = {f.name for f in catalog.find_model(t["task_type"], t["model"]).fields}
        except KeyError:  # a model the catalog no longer lists: say what it lacks
            takes[t["id"]] = None
    keys = list(dict.fromkeys(k for phrases in said.values() for k in phrases))
    found: dict[int, list[str]] = {t["id"]: [] for t in tasks}
    for key in keys:
        values = {task_id: phrases.get(key, ("", []))[1] for task_id, phrases in said.items()}
        if len({tuple(v) for v in values.values()}) < 2:
            continue
        label = next(phrases[key][0] for phrases in said.values() if key in phrases)
        for task_id, value in values.items():
            if value or takes[task_id] is None or key in takes[task_id]:
                found[task_id] += value or [f"no {label}"]
    return {task_id: tuple(phrases) for task_id, phrases in found.items()}


def group_label(group: dict) -> str:
    """A comparison group as a person finds it: prompt, size, models, who and when."""
    prompt = " ".join((group.get("prompt") or "(no prompt)").split())
    prompt = prompt if len(prompt) <= 60 else prompt[:60].rstrip() + "…"
    who = f"by {group['teammates'].replace(',', ', ')}" if group.get("teammates") else ""
    return " · ".join(p for p in (f"“{prompt}”", f"{group['tasks']} tasks", group["models"].replace(",", ", "),
                                  who, age(group.get("last_at"))) if p)


def aspect(cols: list[Column]) -> float:
    """Width over height of the players: the first requested ratio, else the media's usual shape."""
    for col in cols:
        ratio = (col.task.get("request") or {}).get("ratio")
        if isinstance(ratio, str) and re.fullmatch(r"\d+:\d+", ratio):
            w, h = (int(x) for x in ratio.split(":"))
            if w and h:
                return w / h
    kinds = {catalog.task_type(c.task["task_type"]).output for c in cols}
    return 1.0 if kinds == {"image"} else 16 / 9


def _cell(col: Column) -> str:
    # Only the number and the model, both the dashboard's own words: what sets a column apart may
    # hold text a person or the API wrote, which stays out of the frame and is shown under it.
    label = html.escape(f"#{col.task['id']} · {col.task['model']}")
    archived = [(archive.static_url(o.get("path")), media.player_kind(o.get("mime"))) for o in col.outputs]
    archived = [(url, player) for url, player in archived if url]
    if not archived:
        status = col.task["status"]
        why = ("failed" if status == lifecycle.FAILED else "cancelled" if status == lifecycle.CANCELLED
               else "archiving…" if status == lifecycle.SUCCEEDED else "not finished yet")
        return f'<figure><figcaption>{label}</figcaption><div class="box empty">{why}</div></figure>'
    players = []
    for url, player in archived:
        src = html.escape(url, quote=True)
        if player == "image":
            players.append(f'<div class="box"><img src="{src}" alt="{label}"></div>')
        elif player == "audio":
            players.append(f'<div class="box audio"><audio src="{src}" controls preload="auto"></audio></div>')
        else:
            players.append(f'<div class="box"><video src="{src}" controls playsinline preload="auto" '
                           f'data-task="{col.task["id"]}"></video></div>')
    return f'<figure><figcaption>{label}</figcaption>{"".join(players)}</figure>'


_SYNC = """
// The row's players sit in the frames of its columns (same origin as the page), so that on a
// phone each stacks with its own rating under it; this frame finds them there, and finds them
// again when a column's frame is drawn anew.
const ROW = %s;
let players = [];
let lead = null;  // the player the user touched last; the others follow it
const wired = new WeakSet();
// A seek we make ourselves is marked, so its own 'seeked' is not mirrored back (no ping-pong).
const follow = (o, time) => {
  if (Math.abs(o.currentTime - time) > 0.04) { o.dataset.following = '1'; o.currentTime = time; }
};
const wire = p => {
  p.muted = document.getElementById('mute').checked;  // several soundtracks at once are noise
  p.addEventListener('play', () => {
    lead = lead || p;
    players.forEach(o => { if (o !== p && o.paused) { follow(o, p.currentTime); o.play().catch(() => {}); } });
  });
  p.addEventListener('pause', () => { if (!p.ended) players.forEach(o => { if (o !== p && !o.paused) o.pause(); }); });
  p.addEventListener('seeked', () => {
    if (p.dataset.following) { delete p.dataset.following; return; }
    players.forEach(o => { if (o !== p) follow(o, p.currentTime); });
  });
  p.addEventListener('pointerdown', () => { lead = p; });
  p.addEventListener('timeupdate', () => {  // keep the row together if one player drifts
    if (p !== lead || p.paused) return;
    players.forEach(o => {
      if (o !== p && !o.paused && !o.ended && Math.abs(o.currentTime - p.currentTime) > 0.3) follow(o, p.currentTime);
    });
  });
};
const scan = () => {
  const found = [];
  for (const frame of window.parent.document.querySelectorAll('iframe')) {
    let doc = null;
    try { doc = frame.contentDocument; } catch (e) { continue; }
    if (doc && doc.body && doc.body.dataset.row === ROW) found.push(...doc.querySelectorAll('video, audio'));
  }
  players = found;
  found.forEach(p => { if (!wired.has(p)) { wired.add(p); wire(p); } });
};
scan();
setInterval(scan, 500);
document.getElementById('play').onclick = () => { lead = players[0]; players.forEach(p => p.play().catch(() => {})); };
document.getElementById('pause').onclick = () => players.forEach(p => p.pause());
document.getElementById('restart').onclick = () => players.forEach(p => follow(p, 0));
document.getElementById('mute').onchange = e => players.forEach(p => { p.muted = e.target.checked; });
"""

# The dashboard's theme follows the system's light or dark setting, and so do these frames (their
# own documents: the page's colours do not reach them). Their background is the page's: no
# `color-scheme` here, which would make Chromium paint a frame whose scheme differs from the page's.
_STYLE = """
:root { --text: #31333f; --soft: #f0f2f6; --line: #d0d3da; --button: #ffffff; }
@media (prefers-color-scheme: dark) {
  :root { --text: #fafafa; --soft: #262730; --line: #4b4f5c; --button: #1c1e26; }
}
html, body { margin: 0; background: transparent; }
body { font-family: "Source Sans Pro", system-ui, sans-serif; color: var(--text); }
figure { margin: 0; }
figcaption { font-size: 0.9rem; font-weight: 600; margin: 0 0 0.3rem; white-space: nowrap; overflow: hidden;
             text-overflow: ellipsis; }
.box { aspect-ratio: RATIO; background: #0e1117; border-radius: 0.4rem; overflow: hidden;
       display: flex; align-items: center; justify-content: center; margin-bottom: 0.4rem; }
.box.audio { aspect-ratio: auto; height: 4rem; background: var(--soft); }
.box.empty { color: #aaa; font-size: 0.9rem; }
video, img { width: 100%; height: 100%; object-fit: contain; display: block; }
audio { width: 95%; }
.bar { display: flex; gap: 0.5rem; align-items: center; font-size: 0.9rem; white-space: nowrap; overflow-x: auto;
       height: BAR_HEIGHTpx; }
.bar button { border: 1px solid var(--line); background: var(--button); color: var(--text);
              border-radius: 0.4rem; padding: 0.25rem 0.7rem; cursor: pointer; font: inherit; }
@media (max-width: 420px) { .bar { gap: 0.3rem; } .bar button { padding: 0.25rem 0.4rem; } }
"""


def _document(body: str, ratio: float = 16 / 9, row: str = "") -> str:
    style = _STYLE.replace("RATIO", f"{ratio:.4f}").replace("BAR_HEIGHT", str(BAR_HEIGHT))
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{style}"
            f'</style></head><body data-row="{html.escape(row, quote=True)}">{body}</body></html>')


BAR_HEIGHT = 40  # pixels: one line of buttons, scrolled sideways on a phone rather than wrapped


def has_players(cols: list[Column]) -> bool:
    return any(archive.static_url(o.get("path")) and media.player_kind(o.get("mime")) != "image"
               for c in cols for o in c.outputs)


def cell_html(col: Column, ratio: float, row: str) -> str:
    """One column's outputs, players of the row's common shape, in a frame of their own: on a
    phone, where Streamlit stacks the columns, each comes with its own rating under it."""
    return _document(_cell(col), ratio, row)


def bar_html(row: str) -> str:
    """Play all / Pause all / Start / muted for the row `row`, whose players (in its columns'
    frames, see cell_html) follow each other's play, pause and seek."""
    return _document('<div class="bar"><button id="play">▶ Play all</button>'
                     '<button id="pause">⏸ Pause all</button><button id="restart">⏮ Start</button>'
                     '<label><input type="checkbox" id="mute" checked> muted'
                     f"</label></div><script>{_SYNC % script_text(row)}</script>")


# ---------------------------------------------------------------- reviews

def can_review(col: Column) -> bool:
    """Only a finished output can be judged: a failed or cancelled task has nothing to rate."""
    return col.task["status"] == lifecycle.SUCCEEDED


def team_text(review: dict) -> str:
    """The team's view of a reviewed task in markdown: the average and how many rated, then who said what."""
    count = review.get("count") or 0
    average = (f"**{review['average']:.1f} ★** from {count} rating{'s' if count != 1 else ''}" if count
               else "No rating")
    return average + "  \n" + plain(review["reviewer"])


def review_column(store: Store, col: Column, review: dict, reviewer: str) -> None:
    """This teammate's own rating (1–5 stars) and notes for one task, saved as soon as they change,
    then the team's average and everyone's votes and notes."""
    task_id = col.task["id"]
    mine = next((v for v in review.get("votes", ()) if v["reviewer"] == (reviewer or "")), {})
    if can_review(col):
        st.caption(f"Your rating, {plain(reviewer)}" if reviewer else "Your rating (set your name in the sidebar)")
        rating = mine.get("rating")
        st.feedback("stars", key=f"rating_{task_id}", default=rating - 1 if rating else None,
                    on_change=_save_rating, args=(store, task_id, reviewer))
        st.text_area("Your notes", value=mine.get("notes") or "", key=f"notes_{task_id}", height=90,
                     placeholder="What works, what doesn't…", on_change=_save_notes, args=(store, task_id, reviewer))
    else:
        st.caption("Nothing to rate: only a finished output can be rated or win.")
    if review.get("votes"):
        st.markdown(team_text(review))
        for vote in review["votes"]:
            if vote.get("notes") and vote is not mine:
                st.caption(f"{plain(vote['reviewer'] or '(no name)')} notes:")
                st.text(vote["notes"])


def winner_picker(store: Store, cols: list[Column], reviews: dict[int, dict], reviewer: str, key: str) -> None:
    """This teammate's vote for the best of the finished outputs, and everyone's votes."""
    ids = [c.task["id"] for c in cols if can_review(c)]
    labels = {c.task["id"]: c.label for c in cols}
    voted = {i: [v["reviewer"] or "(no name)" for v in reviews.get(i, {}).get("votes", ()) if v.get("winner")]
             for i in labels}
    current = next((i for i in ids if any(v["reviewer"] == (reviewer or "") and v.get("winner")
                                          for v in reviews.get(i, {}).get("votes", ()))), None)
    st.radio("Your winner", [None, *ids], index=[None, *ids].index(current), horizontal=True, key=key,
             format_func=lambda i: "none yet" if i is None else plain(labels[i]),
             on_change=_save_winner, args=(store, ids, key, reviewer))
    votes = [f"{plain(labels[i])}: {plain(', '.join(names))}" for i, names in voted.items() if names]
    st.caption("Winner votes: " + ("; ".join(votes) if votes else "none yet"))


def _save_rating(store: Store, task_id: int, reviewer: str) -> None:
    value = st.session_state.get(f"rating_{task_id}")
    store.set_rating(task_id, None if value is None else value + 1, reviewer)


def _save_notes(store: Store, task_id: int, reviewer: str) -> None:
    store.set_notes(task_id, st.session_state.get(f"notes_{task_id}") or "", reviewer)


def _save_winner(store: Store, task_ids: list[int], key: str, reviewer: str) -> None:
    store.set_winner(task_ids, st.session_state.get(key), reviewer)


def selection_key(filters: Filters) -> str:
    """A widget key for one comparison, so each group or set keeps its own winner picker."""
    return "winner_" + re.sub(r"\W", "_", json.dumps([filters.group_id, list(filters.task_ids)]))
