"""Task forms drawn from the catalog: the chosen model decides which widgets
appear and which values they offer; inputs are checked before anything is
sent, and every problem is shown under its own field.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from lib import catalog, media
from lib.catalog import Field, Issue, Model
from lib.tasks import submit_task
from lib.ui import HISTORY_PAGE, Context, link, plain

DEFAULT_OPTION = "(model default)"


@dataclass
class MediaChoice:
    """What the user gave for a media field, before it becomes a URI."""

    name: str = ""
    data: bytes | None = None
    url: str = ""


def model_picker(task_type: catalog.TaskType, live: bool) -> Model:
    labels = {m.id: m.id + ("" if m.live or not live else " (simulator only)") for m in task_type.models}
    model_id = st.selectbox("Model", list(labels), format_func=labels.get, key=f"{task_type.key}_model")
    model = task_type.model(model_id)
    if model.note:
        st.caption(model.note)
    return model


def price_note(model: Model) -> str:
    if model.credits_per_output is not None:
        return f"About {model.credits_per_output:g} credits per {model.output}."
    return (f"About {model.credits_per_second:g} credits per second of video "
            f"({catalog.estimate_credits(model, {}):g} for {model.default_duration:g} s).")


def _widget(model: Model, f: Field, key: str):
    """Draw one field's widget and return its raw value."""
    help_text = f.help or None
    label = f.label + ("" if f.required else " (optional)")
    if f.kind == "text":
        return st.text_area(label, key=key, max_chars=f.max_length, help=help_text,
                            placeholder="Describe what you want to see…")
    if f.kind == "choice":
        options = list(f.choices) if f.required else [DEFAULT_OPTION, *f.choices]
        index = options.index(f.default) if f.default in options else 0
        value = st.selectbox(label, options, index=index, key=key, help=help_text)
        return None if value == DEFAULT_OPTION else value
    if f.kind in ("int", "number"):
        cast = int if f.kind == "int" else float
        default = cast(f.default) if f.required and f.default is not None else None
        return st.number_input(label, min_value=cast(f.min), max_value=cast(f.max), value=default,
                               step=cast(1 if f.kind == "int" else 0.5), key=key, help=help_text,
                               placeholder="Leave empty for the model's choice" if not f.required else None)
    if f.kind == "bool":
        return st.checkbox(f.label, value=bool(f.default), key=key, help=help_text)
    if f.kind == "moderation":
        value = st.selectbox(label, [DEFAULT_OPTION, *f.choices], key=key, help=help_text)
        return None if value == DEFAULT_OPTION else {"publicFigureThreshold": value}
    if f.kind in ("media", "media_list"):
        types = sorted({ext.lstrip(".") for kind in f.media for ext in media.MIME_TYPES[kind].values()})
        many = f.kind == "media_list"
        files = st.file_uploader(label, type=types, key=f"{key}_file", accept_multiple_files=many, help=help_text)
        url = st.text_input(f"…or an HTTPS URL for {f.label.lower()}", key=f"{key}_url",
                            placeholder="https://example.com/input" + (" (one per line)" if many else ""))
        if many:
            return [MediaChoice(name=x.name, data=x.getvalue()) for x in files or []] + [
                MediaChoice(url=u.strip()) for u in url.splitlines() if u.strip()]
        if files is not None:
            return MediaChoice(name=files.name, data=files.getvalue())
        return MediaChoice(url=url.strip()) if url.strip() else None
    raise ValueError(f"no widget for {f.kind}")


def _media_uri(ctx: Context, f: Field, choice: MediaChoice, where: str) -> tuple[object, list[Issue]]:
    """Turn an upload or URL into what the API takes; checks the bytes, not just the name."""
    if choice.data is None:
        uri = choice.url
        kind = media.kind_of(media.mime_from_name(uri.split("?")[0])) or f.media[0]
        return ({"type": kind, "uri": uri} if f.typed else uri), []
    named = media.mime_from_name(choice.name)
    sniffed = media.sniff_mime(choice.data[:32])
    kind = media.kind_of(sniffed)
    if sniffed is None or kind not in f.media:
        return None, [Issue(where, f"{f.label}: {plain(choice.name)} is not a valid "
                                   f"{' or '.join(f.media)} file (its contents do not match).")]
    if named and media.kind_of(named) != kind:
        return None, [Issue(where, f"{f.label}: {plain(choice.name)} is named like "
                                   f"{media.kind_of(named) or 'another type'} but contains {sniffed}.")]
    if len(choice.data) <= media.DATA_URI_MAX_BYTES:
        uri = media.encode_data_uri(sniffed, choice.data)
    elif len(choice.data) > media.UPLOAD_MAX_BYTES:
        return None, [Issue(where, f"{f.label}: {len(choice.data) / media.MB:.0f} MB is over the 200 MB limit.")]
    else:
        with ctx.backend.client() as client:
            uri = client.upload(choice.name, choice.data, sniffed)
    return ({"type": kind, "uri": uri} if f.typed else uri), []


def _inputs(ctx: Context, model: Model, raw: dict) -> tuple[dict, list[Issue]]:
    inputs, issues = {}, []
    for f in model.fields:
        value = raw.get(f.name)
        if isinstance(value, MediaChoice):
            value, problems = _media_uri(ctx, f, value, f.name)
            issues += problems
        elif isinstance(value, list) and value and isinstance(value[0], MediaChoice):
            items = []
            for i, choice in enumerate(value):
                uri, problems = _media_uri(ctx, f, choice, f"{f.name}.{i}")
                issues += problems
                items.append({"uri": uri})
            value = items
        if f.kind == "int" and isinstance(value, float):
            value = int(value)
        inputs[f.name] = value
    return inputs, issues


def task_form(ctx: Context, task_type_key: str) -> None:
    """The whole form of a task type: model, its fields, submit, and the outcome."""
    task_type = catalog.task_type(task_type_key)
    st.caption(task_type.description)
    model = model_picker(task_type, live=not ctx.backend.is_simulator)
    key = f"{task_type.key}_{model.id}"
    slots, raw = {}, {}
    with st.form(key=f"form_{key}"):
        for f in model.fields:
            raw[f.name] = _widget(model, f, f"{key}_{f.name}")
            slots[f.name] = st.empty()
        st.caption(price_note(model))
        submitted = st.form_submit_button("Generate", type="primary", key=f"{key}_submit")
    if not submitted:
        return
    inputs, issues = _inputs(ctx, model, raw)
    if not issues:
        result = submit_task(ctx.store, ctx.backend, task_type=task_type.key, model_id=model.id, inputs=inputs,
                             teammate=ctx.teammate)
        issues = result.issues
        if result.ok:
            st.success(f"Task #{result.task_id} submitted to {model.id}. It appears on History as it runs.",
                       icon="✅")
            link(HISTORY_PAGE, "Open History")
            return
        if result.error:
            st.error(plain(result.error) + (f"  \nRecorded as task #{result.task_id}." if result.task_id else ""))
    _show_issues(issues, slots)


def _show_issues(issues: list[Issue], slots: dict) -> None:
    """Each problem under its own field; anything not tied to a field at the bottom."""
    by_field: dict[str, list[str]] = {}
    for issue in issues:
        by_field.setdefault(issue.field.split(".")[0], []).append(issue.message)
    for name, messages in by_field.items():
        target = slots.get(name)
        text = "  \n".join(plain(m) for m in messages)
        if target is not None:
            target.error(text, icon="⚠️")
        else:
            st.error(text, icon="⚠️")
    if issues:
        st.error(f"Nothing was sent: fix the {len(issues)} problem{'s' if len(issues) > 1 else ''} above.")
