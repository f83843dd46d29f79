"""Task forms drawn from the catalog. The chosen model decides which widgets
appear and which values they offer; media come from an upload, an HTTPS URL
or an earlier task's output; a submission can fan out to several models,
seeds and ratios as one comparison group. Inputs are checked before anything
is sent, and every problem is shown under its own field.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import streamlit as st

from lib import archive, catalog, history, media, spend, ui
from lib.catalog import Field, Issue, Model
from lib.store import STASH_PREFIX, queries
from lib.tasks import submit_task
from lib.ui import Context, plain

DEFAULT_OPTION = "(model default)"
UPLOAD, URL, EARLIER, ORIGINAL = "Upload a file", "HTTPS URL", "Earlier output", "As in the original"


@dataclass
class MediaChoice:
    """What the user gave for one media input, before it becomes a URI."""

    name: str = ""
    data: bytes | None = None
    url: str = ""
    output: dict | None = None  # an archived output of an earlier task
    sent: object = None  # the value as the task opened in the form sent it, sent again as it was
    extra: dict = field(default_factory=dict)  # a list item's own fields beside its uri (tag, position, ...)


@dataclass
class Plan:
    """One task of a submission: a model and the inputs that differ from the form."""

    model: Model
    overrides: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"{self.model.id} {extra}".strip()


# ---------------------------------------------------------------- widgets

def _key(task_type: str, model: Model, f: Field) -> str:
    # Text and media keep their value when the model changes; choices differ per model.
    shared = f.kind in ("text", "media", "frames", "media_list", "bool")
    return f"{task_type}_{f.name}" if shared else f"{task_type}_{model.id}_{f.name}"


# What the prompt box asks for: by task type where the prompt is not a description, else by output.
_PROMPT_PLACEHOLDERS = {"text_to_speech": "The words to speak…", "speech_to_speech": "The words to speak…",
                        "video": "Describe what you want to see…", "image": "Describe the image…",
                        "audio": "Describe the sound…"}


def _widget(ctx: Context, model: Model, f: Field, key: str, preset: dict | None):
    """Draw one field's widget and return its raw value."""
    help_text = f.help or None
    label = f.label + ("" if f.required else " (optional)")
    if f.kind == "const":
        return f.default
    if f.kind == "text":
        if f.name in ("promptText", "negativePrompt"):
            asks = _PROMPT_PLACEHOLDERS.get(model.task_type, _PROMPT_PLACEHOLDERS[model.output])
            return st.text_area(label, key=key, max_chars=f.max_length, help=help_text,
                                placeholder=asks if f.name == "promptText" else None)
        return st.text_input(label, key=key, max_chars=f.max_length, help=help_text) or None
    if f.kind == "choice":
        options = list(f.choices) if f.required else [DEFAULT_OPTION, *f.choices]
        index = options.index(f.default) if f.default in options else 0
        value = st.selectbox(label, options, index=index, key=key, help=help_text)
        return None if value == DEFAULT_OPTION else value
    if f.kind in ("int", "number"):
        if f.alternative is not None and st.checkbox(f"{f.label}: {f.alternative}", key=f"{key}_{f.alternative}",
                                                     help=f"Let the model choose ({f.alternative!r})."):
            return f.alternative
        cast = int if f.kind == "int" else float
        default = cast(f.default) if f.required and f.default is not None else None
        if default is not None:  # a fan-out may have narrowed the range past the model's own default
            default = cast(_within(f, default))
        bound = lambda v: None if v is None else cast(v)  # bounds the contract may not give
        shown = catalog.range_text(f)
        held = st.session_state.get(key)
        if isinstance(held, (int, float)) and not isinstance(held, bool) and _within(f, held) != held:
            # A model added to the fan-out narrowed the range: the nearest value that fits, said, rather
            # than Streamlit's silent return to the default.
            st.session_state[key] = cast(_within(f, held))
            st.caption(f"{f.label} moved from {held:g} to {_within(f, held):g}: every picked model takes {shown}.")
        label = f"{f.label}: {shown}" if shown else f.label
        label += "" if f.required else " (optional)"
        return st.number_input(label, min_value=bound(f.min), max_value=bound(f.max), value=default,
                               step=cast(1 if f.kind == "int" else 0.5 if f.max is None or f.max > 2 else 0.05),
                               key=key, help=help_text,
                               placeholder="Leave empty for the model's choice" if not f.required else None)
    if f.kind == "bool":
        if f.more and not f.required:  # under More options, unset means the model's own default
            value = st.selectbox(label, [DEFAULT_OPTION, "Yes", "No"], key=key, help=help_text)
            return None if value == DEFAULT_OPTION else value == "Yes"
        return st.checkbox(f.label, value=bool(f.default), key=key, help=help_text)
    if f.kind in ("media", "media_list"):
        return _media_widget(ctx, f, key, label, preset)
    if f.kind == "frames":
        first = _media_widget(ctx, f, key, label, preset)
        if not f.last_frame:
            return first
        last = _media_widget(ctx, f, f"{key}_last", "Last frame image (optional)", None)
        return [first, last]
    return _shape_widget(label, f.shape, key, f.required, help_text)


def _option_name(shape: dict) -> str:
    """A union option in words: its constant (a `type`), else what it is."""
    if shape.get("type") == "object":
        consts = [spec["shape"]["values"][0] for spec in shape["fields"].values()
                  if spec["shape"].get("type") == "enum" and len(spec["shape"]["values"]) == 1]
        if consts:
            return str(consts[0])
        return ", ".join(shape["fields"])
    if shape.get("type") == "enum" and len(shape["values"]) == 1:
        return str(shape["values"][0])
    return {"media": f"a {shape.get('kind')} URL", "list": "a list", "integer": "a number",
            "number": "a number", "string": "text"}.get(shape.get("type"), shape.get("type", ""))


def _shape_widget(label: str, shape: dict, key: str, required: bool, help_text: str | None = None):
    """A widget for any contract shape, nested as deep as the shape is: objects as groups of
    fields, lists as a number of items, unions as a choice of which form. Returns None when
    nothing was given for an optional part."""
    kind = shape.get("type")
    if kind == "enum":
        if len(shape["values"]) == 1:
            return shape["values"][0]
        options = list(shape["values"]) if required else [DEFAULT_OPTION, *shape["values"]]
        value = st.selectbox(label, options, key=key, help=help_text)
        return None if value == DEFAULT_OPTION else value
    if kind in ("string", "media"):
        return st.text_input(label, key=key, help=help_text,
                             placeholder="https://…" if kind == "media" else None).strip() or None
    if kind in ("integer", "number"):
        value = st.number_input(label, value=None, step=1 if kind == "integer" else 0.1, key=key, help=help_text)
        return None if value is None else (int(value) if kind == "integer" else float(value))
    if kind == "bool":
        value = st.selectbox(label, [DEFAULT_OPTION, "Yes", "No"], key=key, help=help_text)
        return None if value == DEFAULT_OPTION else value == "Yes"
    if kind == "object":
        with st.container(border=True):
            st.caption(label)
            values = {name: _shape_widget(catalog.label_of(name, spec["shape"])
                                          + ("" if spec["required"] else " (optional)"),
                                          spec["shape"], f"{key}_{name}", spec["required"],
                                          spec.get("doc") or None)
                      for name, spec in shape["fields"].items()}
        given = {k: v for k, v in values.items() if v is not None}
        consts = {k for k, spec in shape["fields"].items()
                  if spec["shape"].get("type") == "enum" and len(spec["shape"]["values"]) == 1}
        return given if required or set(given) - consts else None
    if kind == "list":
        count = st.number_input(f"{label}: how many", min_value=0, max_value=10, value=0, step=1, key=f"{key}_count",
                                help=help_text)
        items = [_shape_widget(f"{label} {i + 1}", shape["items"], f"{key}_{i}", True) for i in range(int(count))]
        items = [i for i in items if i is not None]
        return items or None
    if kind == "union":
        names = [_option_name(o) for o in shape["options"]]
        choice = st.radio(label, ([] if required else [DEFAULT_OPTION]) + names, horizontal=True, key=f"{key}_form",
                          help=help_text)
        if choice == DEFAULT_OPTION:
            return None
        option = shape["options"][names.index(choice)]
        return _shape_widget(f"{label} ({choice})", option, f"{key}_{names.index(choice)}", True)
    text = st.text_input(f"{label} (JSON)", key=key, help=help_text).strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _media_widget(ctx: Context, f: Field, key: str, label: str, preset: dict | None):
    many = f.kind == "media_list"
    earlier = ctx.store.archived_outputs([media_kind for media_kind in f.media])
    fits_preset = preset is not None and media.kind_of(preset["mime"]) in f.media
    original = _original(key)
    sources = [ORIGINAL] if original is not None else []
    sources += [UPLOAD, URL] + ([EARLIER] if earlier or fits_preset else [])
    source = st.radio(label, sources, index=sources.index(EARLIER) if fits_preset else 0, horizontal=True,
                      key=f"{key}_source", help=f.help or None)
    if source == ORIGINAL:
        st.caption(f"The {f.label.lower()} task #{st.session_state['form_from'][1]} was given: "
                   + ", ".join(plain(history.describe_uri(c.sent if isinstance(c.sent, str) else c.sent["uri"]))
                               for c in (original if many else [original])))
        return original
    chosen = _media_source(f, key, preset, many, source, earlier, fits_preset)
    if many and f.item_fields:
        for i, choice in enumerate(chosen):
            choice.extra = _item_extras(f, f"{key}_{i}", i)
    return chosen


def _item_extras(f: Field, key: str, index: int) -> dict:
    """The fields of one list item beside its uri: a tag to write as @tag, a position, a type."""
    extras = {}
    for name, spec in f.item_fields:
        if name == "type" and f.typed:
            continue  # the item's media kind, filled from the file
        label = f"{catalog.label_of(name, spec['shape'])} of {f.label.lower()} {index + 1}"
        value = _shape_widget(label, spec["shape"], f"{key}_{name}", spec["required"],
                              "Write @tag in the prompt to refer to this reference." if name == "tag" else
                              spec.get("doc") or None)
        if value is not None:
            extras[name] = value
    return extras


def _media_source(f: Field, key: str, preset: dict | None, many: bool, source: str, earlier: list,
                  fits_preset: bool):
    if source == UPLOAD:
        types = sorted({ext.lstrip(".") for kind in f.media for ext in media.MIME_TYPES[kind].values()})
        files = st.file_uploader(f"{f.label} file", type=types, key=f"{key}_file", accept_multiple_files=many,
                                 label_visibility="collapsed")
        uploaded = (files or []) if many else [files] if files is not None else []
        chosen = [MediaChoice(name=x.name, data=x.getvalue()) for x in uploaded]
        _upload_previews(f, key, [(x.file_id, c) for x, c in zip(uploaded, chosen)])
        return chosen if many else (chosen[0] if chosen else None)
    if source == URL:
        text = st.text_area(f"{f.label} URLs", key=f"{key}_urls", label_visibility="collapsed",
                            placeholder="https://… (one per line)") if many else \
            st.text_input(f"{f.label} URL", key=f"{key}_url", label_visibility="collapsed",
                          placeholder="https://example.com/input")
        urls = [u.strip() for u in text.splitlines() if u.strip()]
        if many:
            return [MediaChoice(url=u) for u in urls]
        return MediaChoice(url=urls[0]) if urls else None
    options = {o["id"]: o for o in earlier}
    if fits_preset:
        options.setdefault(preset["id"], preset)
    chosen = st.multiselect if many else st.selectbox
    default = [preset["id"]] if many and fits_preset else None
    picked = chosen(f"{f.label} from history", list(options), format_func=lambda i: _output_label(options[i]),
                    key=f"{key}_earlier", label_visibility="collapsed",
                    **({"default": default} if many else {"index": list(options).index(preset["id"])
                                                          if fits_preset else 0}))
    for i in (picked if many else [] if picked is None else [picked]):
        ui.show_output(options[i], media.kind_of(options[i]["mime"]) or "file")
    if many:
        return [MediaChoice(output=options[i]) for i in picked]
    return None if picked is None else MediaChoice(output=options[picked])


def _upload_previews(f: Field, key: str, uploads: list[tuple[str, MediaChoice]]) -> None:
    """Under the upload widget, what was uploaded: a small copy of an image, a frame of a video (so
    the browser is sent a picture, not the file), a player for a sound, and the file's name as
    text. A file that will not do gets none (Generate says why, under the field). The checks and
    the picture are made once per uploaded file and kept in the session beside the upload itself."""
    made = st.session_state.get(f"{key}_previews", {})
    kept = {}
    for file_id, choice in uploads:
        mime = media.sniff_mime(choice.data[:64])
        if file_id not in made:
            problems = media.check_upload(choice.name, choice.data, f.media)
            picture = None if problems or media.kind_of(mime) == "audio" else _picture(mime, choice.data)
            made[file_id] = (problems, picture)
        problems, picture = kept[file_id] = made[file_id]
        if problems:
            continue
        if media.kind_of(mime) == "audio":
            st.audio(choice.data, format=mime)
        elif picture is not None:
            st.image(picture, width=media.PREVIEW_BOX if len(uploads) == 1 else media.PREVIEW_BOX // 2)
        framed = "A frame of " if media.kind_of(mime) == "video" and picture else ""
        st.caption(f"{framed}{plain(choice.name)} · {media.size_text(len(choice.data))}")
    st.session_state[f"{key}_previews"] = kept


def _picture(mime: str, data: bytes) -> bytes | None:
    """A preview picture of a checked image or video upload; None if none can be made from it."""
    return media.thumbnail(data) if media.kind_of(mime) == "image" else archive.poster_of(data)


def _output_label(output: dict) -> str:
    prompt = (output.get("prompt") or "").strip().replace("\n", " ")
    short = prompt[:50] + ("…" if len(prompt) > 50 else "")
    return f"#{output['task_id']} {output['task_type'].replace('_', ' ')} · {output['model']} · {short}"


# ---------------------------------------------------------------- inputs

def _media_uri(ctx: Context, f: Field, choice: MediaChoice, where: str) -> tuple[object, list[Issue]]:
    """Turn an upload, URL or earlier output into what the API takes; checks the bytes, not the name."""
    if choice.sent is not None:
        return choice.sent, []  # checked when it was first sent
    if choice.output is not None:
        data = archive.read_archived(choice.output.get("path"))
        if data is None:
            return None, [Issue(where, f"{f.label}: that output's archived file is missing.")]
        choice = MediaChoice(name=archive.archived_name(choice.output.get("path")), data=data)
    if choice.data is None:
        uri = choice.url
        kind = media.kind_of(media.mime_from_name(uri.split("?")[0])) or f.media[0]
        return ({"type": kind, "uri": uri} if f.typed else uri), []
    problems = media.check_upload(choice.name, choice.data, f.media)
    sniffed = media.sniff_mime(choice.data[:64])
    kind = media.kind_of(sniffed)
    if sniffed is None or kind not in f.media:
        problems = [f"{choice.name} is not a valid {' or '.join(f.media)} file (its contents do not match)."]
    named = media.mime_from_name(choice.name)
    if not problems and named and media.kind_of(named) != kind:
        problems = [f"{choice.name} is named like {media.kind_of(named) or 'another type'} but contains {sniffed}."]
    if not problems and len(choice.data) > media.UPLOAD_MAX_BYTES:
        problems = [f"{len(choice.data) / media.MB:.0f} MB is over the 200 MB limit."]
    if problems:
        return None, [Issue(where, f"{f.label}: {p}") for p in problems]
    if len(choice.data) <= media.DATA_URI_MAX_BYTES:
        uri = media.encode_data_uri(sniffed, choice.data)
    else:
        with ctx.backend.client() as client:
            uri = client.upload(choice.name, choice.data, sniffed)
    return ({"type": kind, "uri": uri} if f.typed else uri), []


def collect_inputs(ctx: Context, fields: list[Field], raw: dict) -> tuple[dict, list[Issue], int | None]:
    """The request inputs, problems found in files, and the task an earlier output came from."""
    inputs, issues, parent = {}, [], None

    def uri_of(f: Field, choice: MediaChoice, where: str):
        nonlocal parent
        if choice.output is not None and parent is None:
            parent = choice.output["task_id"]
        uri, problems = _media_uri(ctx, f, choice, where)
        issues.extend(problems)
        return uri

    for f in fields:
        value = raw.get(f.name)
        if f.kind == "frames" and isinstance(value, list):
            first, last = value
            if last is None:
                value = first
            else:
                frames = [(first, "first"), (last, "last")]
                value = [{"uri": uri_of(f, c, f"{f.name}.{i}"), "position": p}
                         for i, (c, p) in enumerate(frames) if c is not None]
        if isinstance(value, MediaChoice):
            value = uri_of(f, value, f.name)
        elif isinstance(value, list) and any(isinstance(c, MediaChoice) for c in value):
            items = []
            for i, choice in enumerate(value):
                uri = uri_of(f, choice, f"{f.name}.{i}")
                if choice.sent is not None:
                    items.append(uri)  # the item whole, its own fields with it
                elif f.typed and isinstance(uri, dict):
                    items.append({**uri, **choice.extra})
                elif f.item_fields:
                    items.append({"uri": uri, **choice.extra})
                else:
                    items.append(uri)
            value = items
        if f.kind == "int" and isinstance(value, float):
            value = int(value)
        inputs[f.name] = value
    return inputs, issues, parent


def _image_size(choice) -> tuple[int, int] | None:
    """An input image's width and height from its header: an upload's bytes or an earlier output's
    archived file; None for a URL, an input sent before, or anything whose header cannot be read."""
    if isinstance(choice, list):  # a first and a last frame: the first sets the shape
        choice = choice[0]
    if not isinstance(choice, MediaChoice) or choice.sent is not None:
        return None
    if choice.data is not None:
        return media.image_size(choice.data)
    head = archive.archived_head(choice.output.get("path"), media.IMAGE_HEADER_BYTES) if choice.output else None
    return media.image_size(head) if head else None


def ratio_warning(choice, ratios: list[str], output: str) -> str | None:
    """A warning when an input image's shape is not that of the output (every ratio it will be
    made at); None when they agree, or either is not known."""
    size = _image_size(choice)
    if size is None:
        return None
    width, height = size
    differ = []
    for ratio in ratios:
        parsed = media.parse_ratio(ratio)
        if parsed and abs(width / height - parsed[0] / parsed[1]) > 0.01 * parsed[0] / parsed[1]:
            differ.append(f"{media.aspect_text(*parsed)} ({ratio})")
    if not differ:
        return None
    return (f"The image is {media.aspect_text(width, height)} ({width}×{height}) but the {output} will be "
            f"{' or '.join(differ)}: it will be cropped or padded.")


def form_fields(model: Model, others: list[Model]) -> list[tuple[Field, Model]]:
    """The fields the form asks for: the chosen model's, then each field only another chosen model
    takes (asked once, with the first model that takes it). With several models a field offers
    only the choices every model that takes it has (where they share any) or the range of numbers
    every one of them takes (where the ranges meet: range_conflicts says where they do not), and
    is required if one of them requires it, its label saying which."""
    picked = [model, *others]
    fields, seen = [], set()
    for owner in picked:
        for f in owner.fields:
            if f.name in seen:
                continue
            seen.add(f.name)
            takers = [m.field(f.name) for m in picked if m.field(f.name) is not None]
            changes = {} if owner is model else {"label": f"{f.label} (for {owner.id})"}
            needs = [m.id for m in picked if m.field(f.name) is not None and m.field(f.name).required]
            if needs and not f.required:
                changes.update(required=True, label=f"{changes.get('label', f.label)} (required by {', '.join(needs)})")
            if f.kind == "choice":
                common = tuple(c for c in f.choices if all(c in t.choices for t in takers if t.kind == "choice"))
                if common and common != f.choices:
                    changes["choices"] = common
            if f.kind in ("int", "number"):
                lo, hi = _shared_range(takers)
                if (lo, hi) != (f.min, f.max) and (lo is None or hi is None or lo <= hi):
                    changes.update(min=lo, max=hi)
            fields.append((Field(**{**f.__dict__, **changes}) if changes else f, owner))
    return fields


def _shared_range(takers: list[Field]) -> tuple[float | None, float | None]:
    """The numbers every one of these fields takes: the highest minimum and the lowest maximum."""
    ranged = [t for t in takers if t.kind in ("int", "number")]
    return (max((t.min for t in ranged if t.min is not None), default=None),
            min((t.max for t in ranged if t.max is not None), default=None))


def range_conflicts(picked: list[Model]) -> list[Issue]:
    """The number fields whose ranges share no value across the picked models, each saying what
    every one of them takes: said before Generate, since no value the form offers would do."""
    issues, picked = [], list({m.id: m for m in picked}.values())  # a seed fan-out names each model once
    for name in dict.fromkeys(f.name for m in picked for f in m.fields if f.kind in ("int", "number")):
        ranged = [(m, m.field(name)) for m in picked if m.field(name) is not None
                  and m.field(name).kind in ("int", "number") and catalog.range_text(m.field(name))]
        lo, hi = _shared_range([f for _, f in ranged])
        if lo is not None and hi is not None and lo > hi:
            takes = ", ".join(f"{m.id} takes {catalog.range_text(f)}" for m, f in ranged)
            issues.append(Issue(name, f"{ranged[0][1].label}: no value suits every picked model ({takes}). "
                                      "Run them in separate comparisons."))
    return issues


def range_issues(fields: list[Field], picked: list[Model], values: dict) -> list[Issue]:
    """The form's numbers that are outside the range every picked model takes, and the fields
    where no such range exists."""
    conflicts = range_conflicts(picked)
    clashing = {i.field for i in conflicts}
    return conflicts + [i for f in fields if f.kind in ("int", "number") and f.name not in clashing
                        and values.get(f.name) is not None for i in catalog.check_number(f, values[f.name])]


def adjustments(model: Model, values: dict) -> dict:
    """What the form's values become for `model` where it does not take them as they are: the
    nearest duration it offers, a number within its range, an optional choice left to its default."""
    changed = {}
    for name, value in values.items():
        f = model.field(name)
        if f is None or value is None or isinstance(value, (bool, dict)):
            continue
        if f.kind == "choice" and value not in f.choices:
            numbers = [c for c in f.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if numbers and isinstance(value, (int, float)):
                changed[name] = min(numbers, key=lambda c: (abs(c - value), -c))
            elif not f.required:
                changed[name] = None
        elif (f.kind in ("int", "number") and isinstance(value, (int, float)) and value != f.alternative
              and _within(f, value) != value):
            changed[name] = _within(f, value)
    return changed


def _within(f: Field, value: float) -> float:
    """The value, or the nearest end of the field's range if it is outside it."""
    return min(max(value, f.min if f.min is not None else value), f.max if f.max is not None else value)


def adjustment_lines(plans: list[Plan], values: dict) -> list[str]:
    """Per model, what will be sent differently from the form, said before anything is sent."""
    lines = {}
    for plan in plans:
        changes = adjustments(plan.model, values)
        if changes:
            said = ", ".join(f"{catalog.label_of(k).lower()} {values[k]} → "
                             f"{'its default' if v is None else v}" for k, v in changes.items())
            lines.setdefault(plan.model.id, f"{plan.model.id} does not take every value above: {said}.")
    return list(lines.values())


def cost_text(plans: list[Plan], values: dict) -> str:
    """The estimate for a set of tasks; tasks with no published price are counted as unknown."""
    known = [catalog.estimate_credits(p.model, inputs_for(p, values)) for p in plans]
    total = sum(k for k in known if k is not None)
    unknown = sum(1 for k in known if k is None)
    if not unknown:
        return f"up to about {total:g} credits"
    priced = f"up to about {total:g} credits for the rest" if unknown < len(plans) else "cost not known yet"
    return f"{unknown} with no published price (Runway's estimate shows once created) · {priced}"


def plan_submissions(model: Model, others: list[Model], seeds: list[int], ratios: list[str]) -> list[Plan]:
    """Every combination of model × seed × ratio, in a stable order."""
    plans = []
    for m in [model, *others]:
        for seed in seeds or [None]:
            for ratio in ratios or [None]:
                overrides = {}
                if seed is not None:
                    overrides["seed"] = seed
                if ratio is not None:
                    overrides["ratio"] = ratio
                plans.append(Plan(m, overrides))
    return plans


def inputs_for(plan: Plan, inputs: dict) -> dict:
    """The form's inputs as `plan.model` takes them: its own fields only, plus the plan's overrides."""
    names = {f.name for f in plan.model.fields}
    return {k: v for k, v in {**inputs, **plan.overrides}.items() if k in names and v is not None}


def parse_seeds(text: str) -> tuple[list[int], list[Issue]]:
    seeds = []
    for part in text.replace(",", " ").split():
        if not part.isdigit() or int(part) > catalog.SEED_MAX:
            return [], [Issue("seed", f"Seeds must be whole numbers from 0 to {catalog.SEED_MAX}; "
                                      f"{part!r} is not.")]
        seeds.append(int(part))
    return list(dict.fromkeys(seeds)), []


# ---------------------------------------------------------------- limits

def _model_entry(organization: dict, section: str, model_id: str) -> dict:
    """One model's entry under the organization's `tier` or `usage`; {} where the answer has none."""
    models = organization.get(section)
    models = models.get("models") if isinstance(models, dict) else None
    entry = models.get(model_id) if isinstance(models, dict) else None
    return entry if isinstance(entry, dict) else {}


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def limit_warnings(organization: dict | None, plans: list[Plan], inputs: dict) -> list[str]:
    """What the organization's balance and daily limits say about this set, before it is sent."""
    if not organization:
        return []
    warnings = []
    estimates = [catalog.estimate_credits(p.model, inputs_for(p, inputs)) for p in plans]
    total = sum(e for e in estimates if e is not None)
    unknown = sum(1 for e in estimates if e is None)
    balance = organization["creditBalance"]
    if total > balance:
        more = f", plus {unknown} task{'s' if unknown > 1 else ''} of unknown price" if unknown else ""
        warnings.append(f"This would cost up to {total:g} credits{more}; the balance is {balance:g}.")
    for model_id in dict.fromkeys(p.model.id for p in plans):
        limit = _count(_model_entry(organization, "tier", model_id).get("maxDailyGenerations"))
        used = _count(_model_entry(organization, "usage", model_id).get("dailyGenerations")) or 0
        wanted = sum(1 for p in plans if p.model.id == model_id)
        if limit is not None and used + wanted > limit:
            warnings.append(f"{model_id}: {used} of {limit} daily generations are used; {wanted} more would go "
                            "over the limit and Runway would refuse them (429).")
    return warnings


def _limit_text(value) -> str:
    """A limit or count from the API as the caption shows it: a number, ∞ for none, else its text."""
    if value is None:
        return "∞"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return ui.quoted(str(value))


def _limits_caption(organization: dict | None, model_ids: list[str]) -> str:
    if not organization:
        return "Credit balance and limits are unavailable right now."
    parts = [f"Balance {organization['creditBalance']:,} credits"]
    for model_id in model_ids:
        limits = _model_entry(organization, "tier", model_id)
        used = _model_entry(organization, "usage", model_id).get("dailyGenerations", 0)
        parts.append(f"{model_id}: {_limit_text(used)}/{_limit_text(limits.get('maxDailyGenerations'))} today, "
                     f"{_limit_text(limits.get('maxConcurrentGenerations'))} at once")
    return " · ".join(parts)


# ---------------------------------------------------------------- the page

def _preset_output(ctx: Context) -> dict | None:
    """The earlier output named by `?from_output=<id>` (History's "use as input")."""
    value = st.query_params.get("from_output", "")
    if not value:
        return None
    output_id = ui.parse_id(value)
    if output_id is None:
        st.warning(f"“{ui.quoted(value)}” in the page address is not an output number; the form starts "
                   "without an earlier output.", icon="⚠️")
        return None
    output = ctx.store.archived_output(output_id)
    if output is None:
        st.warning(f"There is no archived output #{output_id}; it may have been removed from the history. "
                   "The form starts without it.", icon="⚠️")
    return output


def _preset_task(ctx: Context, task_type: catalog.TaskType) -> dict | None:
    """The task named by `?from_task=<id>` (a task's "Open in form"). Its model, fields and media
    inputs go into the form once, when the page is opened with it; edits made then are kept."""
    value = st.query_params.get("from_task", "")
    task_id = ui.parse_id(value)
    task = ctx.store.task(task_id) if task_id else None
    model = None
    if task is not None and task["task_type"] == task_type.key:
        model = next((m for m in task_type.models if m.id == task["model"]), None)
    if model is None:
        st.session_state.pop("form_from", None)
        if value:
            st.warning(f"“{ui.quoted(value)}” in the page address is not a {task_type.name} task of the history "
                       "whose model is still offered; the form starts empty.", icon="⚠️")
        return None
    if st.session_state.get("form_from") != (task_type.key, task["id"]):
        try:
            request = ctx.store.restore_request(task["request"])
        except OSError:  # an upload's stashed copy is gone: everything else is still filled in
            st.warning(f"An uploaded input of task #{task['id']} is no longer stored; give it again.", icon="⚠️")
            request = {k: v for k, v in task["request"].items() if STASH_PREFIX not in json.dumps(v)}
        st.session_state["form_unfilled"] = _fill(task_type, model, request)
        st.session_state["form_from"] = (task_type.key, task["id"])
    unfilled = st.session_state.get("form_unfilled")
    st.info(f"Filled in from task #{task['id']} ({task['status'].lower()}): edit it and press Generate; the new "
            "task links back to it." + (f" Not filled in: {plain(', '.join(unfilled))}." if unfilled else ""),
            icon="✏️")
    return task


def _fill(task_type: catalog.TaskType, model: Model, request: dict) -> list[str]:
    """Put a request's values into the form's widgets (through their keys); media inputs become the
    "As in the original" source. Returns the labels of the fields it could not fill in."""
    state = st.session_state
    state[f"{task_type.key}_model"] = model.id
    # The task alone, not a fan-out left from an earlier visit to the page.
    state[f"{task_type.key}_compare_models"] = []
    state[f"{task_type.key}_compare_seeds"] = ""
    originals, unfilled = {}, []
    for f in model.fields:
        value, key = request.get(f.name), _key(task_type.key, model, f)
        if value is None or f.kind == "const":
            continue
        if (f.kind == "text" and isinstance(value, str)) or (f.kind == "choice" and value in f.choices):
            state[key] = value
        elif f.kind in ("int", "number"):
            if f.alternative is not None:
                state[f"{key}_{f.alternative}"] = value == f.alternative
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                state[key] = int(value) if f.kind == "int" else float(value)
        elif f.kind == "bool":
            state[key] = ("Yes" if value else "No") if f.more and not f.required else bool(value)
        elif f.kind == "media":
            originals[key] = MediaChoice(sent=value)
        elif f.kind == "media_list" and isinstance(value, list):
            originals[key] = [MediaChoice(sent=v) for v in value]
        elif f.kind == "frames" and isinstance(value, str):
            originals[key] = MediaChoice(sent=value)
        elif f.kind == "frames" and isinstance(value, list):
            for item in value:
                originals[f"{key}_last" if item.get("position") == "last" else key] = MediaChoice(sent=item["uri"])
        else:
            unfilled.append(f.label)
    for key in originals:
        state[f"{key}_source"] = ORIGINAL
    state["form_originals"] = originals
    return unfilled


def _original(key: str) -> MediaChoice | list[MediaChoice] | None:
    """The media input of the task the form was filled in from, for the widget with this key."""
    return st.session_state.get("form_originals", {}).get(key) if st.session_state.get("form_from") else None


def task_form(ctx: Context, task_type_key: str) -> None:
    """The whole page body of a task type: model, inputs, comparison, submit and outcome, then
    the teammate's own recent tasks."""
    _form(ctx, catalog.task_type(task_type_key))
    your_tasks(ctx)


YOUR_TASKS = 5


def your_tasks(ctx: Context) -> None:
    """The teammate's latest tasks, of any type, with their status kept live: a fragment that
    ticks with the pages' refresh and reads them again only when something changed."""
    st.subheader("Your recent tasks")
    if not ctx.teammate:
        st.caption("Enter your name in the sidebar to follow your tasks here.")
        return

    @st.fragment(run_every=ui.refresh_interval_ms() / 1000)
    def recent() -> None:
        version = ctx.store.change_version()
        cached = st.session_state.get("your_tasks")
        if cached is None or cached[:2] != (ctx.teammate, version):
            tasks = queries.page(ctx.store, queries.Filters(teammates=(ctx.teammate,)), size=YOUR_TASKS)
            cached = st.session_state["your_tasks"] = (ctx.teammate, version, tasks)
        tasks = cached[2]
        if not tasks:
            st.caption("None yet: what you generate appears here as it runs.")
        for task in tasks:
            prompt = (task.get("request") or {}).get("promptText") or ""
            with st.container(horizontal=True, gap="small", vertical_alignment="center", key=f"yours_{task['id']}"):
                ui.task_link(task)
                st.markdown(ui.badge_markdown(task))
                st.caption(" · ".join(x for x in (ui.age(task["created_at"]), ui.plain(prompt[:80])) if x))

    recent()


def _form(ctx: Context, task_type: catalog.TaskType) -> None:
    st.caption(task_type.description)
    origin = _preset_task(ctx, task_type)
    preset = _preset_output(ctx)
    live = not ctx.backend.is_simulator
    labels = {m.id: catalog.model_label(m, live) for m in task_type.models}
    model = task_type.model(st.selectbox("Model", list(labels), format_func=labels.get,
                                         key=f"{task_type.key}_model",
                                         help="Grouped by maker; Runway's own models come first."))
    if model.note:
        st.caption(model.note)
    st.caption(f"Price: {catalog.price_text(model)}")
    # Chosen on the last run: their fields are asked for here too, once, and sent only where they apply.
    compare_key = f"{task_type.key}_compare_models"
    others = [task_type.model(i) for i in st.session_state.get(compare_key, []) if i != model.id
              and i in labels]

    slots, raw, notes = {}, {}, {}
    fields = form_fields(model, others)
    with st.container(border=True):
        # What to generate from on the left, how to generate it on the right.
        content, settings = st.columns([3, 2], gap="large")
        for f, owner in fields:
            if f.more:
                continue
            with content if f.kind in ("text", "media", "frames", "media_list") else settings:
                raw[f.name] = _widget(ctx, owner, f, _key(task_type.key, owner, f), preset)
                slots[f.name] = st.empty()
                if f.kind in ("media", "frames") and "image" in f.media:
                    notes[f.name] = st.empty()
        more = [(f, owner) for f, owner in fields if f.more]
        if more:
            with st.expander(f"More options ({len(more)})"):
                for f, owner in more:
                    raw[f.name] = _widget(ctx, owner, f, _key(task_type.key, owner, f), preset)
                    slots[f.name] = st.empty()

    seeds_text, ratios = "", []
    with st.expander("Compare: run the same inputs on several models, seeds or ratios"):
        alternatives = [m.id for m in task_type.models if m.id != model.id]
        if alternatives:
            others = [task_type.model(i) for i in st.multiselect(
                "Also run on", alternatives, key=compare_key, format_func=labels.get)]
        if model.field("seed"):
            seeds_text = st.text_input("Seeds", key=f"{task_type.key}_compare_seeds",
                                       placeholder="e.g. 1, 2, 3 — one task per seed")
        # Only the ratios every picked model that takes a ratio offers.
        shared = [r for r in model.ratios if all(r in o.ratios for o in others if o.ratios)]
        if shared:
            ratios = st.multiselect("Ratios", shared, key=f"{task_type.key}_{model.id}_compare_ratios",
                                    help="One task per ratio; only the ratios every picked model offers.")
    seeds, seed_issues = parse_seeds(seeds_text)
    plans = plan_submissions(model, others, seeds, ratios)
    for name, note in notes.items():
        warning = ratio_warning(raw[name], ratios or [r for r in [raw.get("ratio")] if r], model.output)
        if warning:
            note.warning(warning, icon="⚠️")
    numbers = range_issues([f for f, _ in form_fields(model, others)], [model, *others], raw)
    _show_issues(numbers, slots, summary=False)

    organization = ui.organization(ctx.backend)
    form_values = {k: v for k, v in raw.items() if not isinstance(v, (MediaChoice, list))}
    for plan in plans:
        plan.overrides = {**plan.overrides, **{k: v for k, v in adjustments(plan.model, form_values).items()
                                               if k not in plan.overrides}}
    for line in adjustment_lines(plans, form_values):
        st.info(line, icon="↔️")
    st.caption(f"{len(plans)} task{'s' if len(plans) > 1 else ''} · {cost_text(plans, form_values)} · "
               + _limits_caption(organization, list(dict.fromkeys(p.model.id for p in plans))))
    warnings = limit_warnings(organization, plans, form_values)
    # Past the teammate's monthly budget (lib/spend.py), Generate waits for "Send anyway" too.
    estimates = [catalog.estimate_credits(p.model, inputs_for(p, form_values)) for p in plans]
    if over_budget := spend.budget_overrun(ctx.store, ctx.teammate, sum(e for e in estimates if e),
                                            backend=ctx.backend.name):
        warnings.append(over_budget)
    for warning in warnings:
        st.warning(warning, icon="⚠️")
    confirmed = st.checkbox("Send anyway", key=f"{task_type.key}_over_limit") if warnings else True
    if not st.button("Generate", type="primary", key=f"{task_type.key}_submit",
                     disabled=not confirmed or bool(numbers)):
        return
    _submit(ctx, task_type, plans, raw, slots, seed_issues, origin)


def _submit(ctx: Context, task_type: catalog.TaskType, plans: list[Plan], raw: dict, slots: dict,
            issues: list[Issue], origin: dict | None = None) -> None:
    """Send the plans; the task the form was filled in from, else the earlier output's, is the parent."""
    fields = [f for f, _ in form_fields(plans[0].model, [p.model for p in plans[1:]])]
    inputs, file_issues, parent = collect_inputs(ctx, fields, raw)
    parent = origin["id"] if origin else parent
    issues = issues + file_issues
    issues += range_issues(fields, [p.model for p in plans], raw)
    several = len(plans) > 1
    if not issues:
        for plan in plans:
            body = catalog.build_body(plan.model, inputs_for(plan, inputs))
            for issue in catalog.validate_request(plan.model, body):
                # The model's own name, unless the problem is in what this plan sets (a seed or a
                # ratio of its own): a missing input is said once per model, not once per seed.
                owned = issue.field.split(".")[0] in plan.overrides
                prefix = f"{plan.label if owned else plan.model.id}: " if several else ""
                found = Issue(issue.field, prefix + issue.message)
                if found not in issues:
                    issues.append(found)
    if issues:
        _show_issues(issues, slots)
        return
    group_id = uuid.uuid4().hex[:12] if several else None
    created, failed = [], []
    for plan in plans:
        result = submit_task(ctx.store, ctx.backend, task_type=task_type.key, model_id=plan.model.id,
                             inputs=inputs_for(plan, inputs), teammate=ctx.teammate, group_id=group_id,
                             parent_task_id=parent)
        (created if result.ok else failed).append((plan, result))
    if created:
        ids = ", ".join(f"#{r.task_id}" for _, r in created)
        what = f"{len(created)} tasks" if several else f"Task {ids}"
        st.success(f"{what} submitted to {', '.join(dict.fromkeys(p.model.id for p, _ in created))}"
                   f"{f' ({ids})' if several else ''}. "
                   f"{'They appear' if several else 'It appears'} below and on History as "
                   f"{'they run' if several else 'it runs'}.",
                   icon="✅")
        ui.link(ui.HISTORY_PAGE, "Open History")
        if group_id:
            ui.link(ui.COMPARE_PAGE, "Compare this group side by side", {"group": group_id})
    for plan, result in failed:
        _show_issues(result.issues, slots, summary=False)
        recorded = f" Recorded as task #{result.task_id}." if result.task_id else ""
        st.error(f"{plain(plan.label)}: {plain(result.error or 'the request was refused.')}{recorded}")


def _show_issues(issues: list[Issue], slots: dict, summary: bool = True) -> None:
    """Each problem under its own field; anything not tied to a field at the bottom."""
    by_field: dict[str, list[str]] = {}
    for issue in issues:
        by_field.setdefault(issue.field.split(".")[0], []).append(issue.message)
    for name, messages in by_field.items():
        text = "  \n".join(plain(m) for m in messages)
        slots.get(name, st).error(text, icon="⚠️")
    if issues and summary:
        st.error(f"Nothing was sent: fix the {len(issues)} problem{'s' if len(issues) > 1 else ''} above.")
