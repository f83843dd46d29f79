"""A task's request as a person reads it, for the Task page: each field under the label its own
model gives it in the form, its value in words (a ratio, "5 s", yes/no, a choice by its name), and
each media input as a thumbnail with where it came from ("output of #N", "uploaded file").

Everything here comes from the stored request or the API, so none of it is trusted: values are
returned as text for the page to show with `ui.plain` or st.text, and only media the dashboard
holds itself (archived outputs, the input stash, inline data) is ever drawn. An address
elsewhere is shown as text and never fetched by the viewer's browser.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from lib import archive, catalog, history, media, storage, ui
from lib.store import Store, input_digest, stash, stashed

THUMB_SIDE = 480  # pixels: sharp at the page's 220 px on a screen of twice the density, a few tens of KB
PLAYABLE_UPLOAD_MAX = media.DATA_URI_MAX_BYTES  # an uploaded sound is played from memory up to this size
_SKIPPED = ("model", "promptText")  # the title names the model; the prompt is shown whole, as text


# ---------------------------------------------------------------- fields

def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def ratio_text(value: object) -> str:
    """`1280:720` -> `1280 × 720 (16:9, landscape)`; anything else as it came."""
    parsed = media.parse_ratio(value)
    if parsed is None:
        return str(value)
    w, h = parsed
    shape = "square" if w == h else "landscape" if w > h else "portrait"
    return f"{w} × {h} ({media.aspect_text(w, h)}, {shape})"


def value_text(name: str, value: object) -> str:
    """One request property's value in words, by what the property is and what the value is."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "duration" and isinstance(value, (int, float)):
        return f"{_number(value)} s"
    if name in ("ratio", "targetAspectRatio"):
        return ratio_text(value)
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, dict):
        # An object (a voice, the moderation settings): each part under its own label, its
        # constant `type` said by name only.
        return ", ".join(value_text(k, v) if k == "type" else f"{catalog.label_of(k)}: {value_text(k, v)}"
                         for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(value_text(name, v) for v in value)
    return "" if value is None else str(value)


def field_label(f: catalog.Field | None, key: str) -> str:
    """The label the form gives the field, without the unit the value now carries."""
    label = f.label if f else catalog.label_of(key)
    return label.removesuffix(" (s)")


def request_fields(task: dict) -> list[tuple[str, str]]:
    """(label, value in words) of every input of the request but its media, the model and the
    prompt, in the order the task's model lists its fields; properties it does not list last."""
    request = task.get("request") or {}
    try:
        model = catalog.find_model(task["task_type"], task["model"])
    except KeyError:
        model = None
    media_keys = catalog.media_fields(task["task_type"], task["model"])
    order = [f.name for f in model.fields] if model else []
    keys = sorted((k for k in request if k not in _SKIPPED and k not in media_keys),
                  key=lambda k: (order.index(k) if k in order else len(order), k))
    rows = []
    for key in keys:
        value = request[key]
        if value in (None, "", []):
            continue
        f = model.field(key) if model else None
        label = field_label(f, key)
        name = key
        if isinstance(value, dict) and len(value) == 1 and catalog.label_of(next(iter(value))) == label:
            name, value = next(iter(value.items()))  # {"publicFigureThreshold": "low"} under its own label
        rows.append((label, value_text(name, value)))
    return rows


# ---------------------------------------------------------------- media inputs

@dataclass(frozen=True)
class MediaInput:
    """One media input: its field's label, where it came from, and what the page can draw of it."""

    label: str
    source: str  # "output of #N", "uploaded file", a host and file name
    uri: str
    kind: str | None  # image, video, audio; None when not known
    output: dict | None = None  # the archived output of an earlier task it is
    file: str | None = None  # its copy in the input stash: the key there (inputs/<name>)
    stash_dir: Path | None = None  # the store's stash folder (its storage: `stash.inputs_storage`)
    inline: bytes | None = None  # carried in the request itself (a small data URI)

    @property
    def held(self) -> bool:
        """Whether the dashboard holds the input itself (and so can draw it)."""
        return self.output is not None or self.file is not None or self.inline is not None


def media_inputs(store: Store, task: dict) -> list[MediaInput]:
    """The task's media inputs (`catalog.media_inputs`, the one walk of them), each with the copy
    the dashboard holds: the earlier output it was, else the stashed or inline upload."""
    found = []
    for f, uri in catalog.media_inputs(task):
        kind, output, file, inline = None, None, None, None
        kept = stash.inputs_storage(store.stash_dir)
        if (source := history.source_task(task, uri)) is not None:
            digest = input_digest(uri)
            output = next((o for o in store.outputs_for([source])[source]
                           if o.get("sha256") == digest and archive.static_url(o.get("path"))), None)
        if output is not None:
            kind = media.kind_of(output.get("mime"))
        elif found_stash := stashed(uri):
            kind = media.kind_of(found_stash[0])
            key = stash.stash_key(found_stash[1])
            # On disk the file is looked at; in a bucket the request's record is trusted (a stashed
            # input stays while a task refers to it) rather than asking on every redraw.
            file = key if kept.kind != "local" or kept.exists(key) else None
        elif uri.startswith("data:"):
            try:
                mime, inline = media.decode_data_uri(uri)
                kind = media.kind_of(mime)
            except ValueError:
                pass  # not a data URI after all: its source line is all there is to show
        else:
            kind = next(iter(f.media), None) if len(f.media) == 1 else media.kind_of(media.mime_from_name(uri))
        found.append(MediaInput(_item_label(task, f, uri), history.describe_input(task, uri), uri, kind, output,
                                file, store.stash_dir, inline))
    return found


def _item_label(task: dict, f: catalog.Field, uri: str) -> str:
    """The field's label, with what the list item itself says: a last frame, a reference's @tag."""
    value = (task.get("request") or {}).get(f.name)
    item = next((i for i in value if isinstance(i, dict) and i.get("uri") == uri), {}) \
        if isinstance(value, list) else {}
    if f.kind == "frames" and item.get("position") == "last":
        return "Last frame image"  # the form's own label for it
    tag = item.get("tag")
    return f"{f.label} @{tag}" if isinstance(tag, str) and tag else f.label


def _stashed_bytes(stash_dir: str, key: str) -> bytes | None:
    try:
        return stash.inputs_storage(Path(stash_dir)).read_bytes(key)
    except (OSError, ValueError, storage.StorageError):
        return None


@st.cache_data(max_entries=64, show_spinner=False)
def _thumbnail(source: str, stash_dir: str = "") -> bytes | None:
    """`media.thumbnail` of an image (a stashed file's key, or a small data URI: both name their
    content, so they key the cache), at THUMB_SIDE; None if it cannot be shown."""
    try:
        data = media.decode_data_uri(source)[1] if source.startswith("data:") else _stashed_bytes(stash_dir, source)
    except ValueError:
        return None
    return media.thumbnail(data, THUMB_SIDE) if data else None


@st.cache_data(max_entries=64, show_spinner=False)
def _poster(key: str, stash_dir: str) -> bytes | None:
    """`archive.poster_of` a stashed video, cached by its key, which names the file by its content.
    A file on disk is read in place; one in a bucket is fetched first."""
    kept = stash.inputs_storage(Path(stash_dir))
    local = kept.local_path(key)
    if local is not None:
        return archive.poster_of(local)
    data = _stashed_bytes(stash_dir, key)
    return archive.poster_of(data) if data else None


def show_media_input(item: MediaInput) -> None:
    """The input as a thumbnail (an image, a video's poster or a player that loads nothing until
    played, a sound's player) over its label and source; only its label and address when the
    dashboard does not hold it."""
    if item.output is not None:
        ui.show_output(item.output, item.kind or "file")
    elif item.file is not None or item.inline is not None:
        _show_held(item)
    st.markdown(f"**{ui.plain(item.label)}** · {ui.plain(item.source)}")
    if not item.held and not item.uri.startswith(("data:", "stored:")):
        st.caption(ui.plain(item.uri))  # a URL elsewhere: shown whole, never fetched
    elif not item.held:
        st.caption("The uploaded file is no longer stored.")


def _show_held(item: MediaInput) -> None:
    data = item.inline
    if item.kind == "image":
        thumb = _thumbnail(item.uri if data is not None else item.file, str(item.stash_dir or ""))
        if thumb:
            st.image(thumb, width="stretch")
        else:
            st.caption("This image cannot be shown.")
    elif item.kind == "video":
        poster = _poster(item.file, str(item.stash_dir or "")) if item.file is not None else None
        if poster:
            st.image(poster, width="stretch")
        else:
            st.caption("No preview of this video.")
    elif item.kind == "audio":
        kept = stash.inputs_storage(item.stash_dir) if data is None else None
        try:
            size = len(data) if data is not None else kept.size(item.file) or 0
        except storage.StorageError:
            st.caption("The uploaded sound cannot be read now: the archive's storage did not answer.")
            return
        if size <= PLAYABLE_UPLOAD_MAX:
            sound = data if data is not None else _stashed_bytes(str(item.stash_dir), item.file)
            if sound is None:
                st.caption("The uploaded sound cannot be read now.")
                return
            st.audio(sound)
        else:
            st.caption(f"An uploaded sound of {size / media.MB:.1f} MB, too large to play here.")
