"""The catalog: every task type, its models and their input fields, as the
dashboard presents them. The fields, models and allowed values are Runway's
contract (`lib.contract`, extracted from the official SDK, plus the seed's own
simulator-only rows); this module only layers presentation over it: task
types and their pages, labels, help, which fields come first, defaults, the
maker of each model, and the prices Runway publishes.

Requests are validated with the contract first (the API's own rules) and then
with the dashboard's friendlier checks (prompt length in UTF-16 units, media
that Runway would refuse to fetch), so a problem reads as something a user
can act on.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from lib import contract, media

PROMPT_MAX = 1000  # UTF-16 code units, Runway's limit on promptText
SEED_MAX = 4_294_967_295  # the SDK documents seeds as uint32
SIMULATOR_ONLY = "simulator only"


@dataclass(frozen=True)
class Field:
    """One input of a model's request body, with its contract shape and how it is shown."""

    name: str  # the API's camelCase property
    # text | int | number | choice | bool | media | frames | media_list | object | list | union | const | any
    kind: str
    label: str
    required: bool = False
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None  # text: UTF-16 code units
    media: tuple[str, ...] = ()  # media kinds accepted (image, video, audio)
    typed: bool = False  # media sent as {"type": kind, "uri": uri}
    default: Any = None
    help: str = ""
    shape: dict = dc_field(default_factory=dict, compare=False)  # the contract's shape
    more: bool = False  # shown under "More options"
    item_fields: tuple = ()  # media_list: the item's own fields beside uri (tag, position, ...)
    last_frame: bool = False  # frames: the model also takes a last frame
    alternative: Any = None  # int/number: a word the field takes instead of a number ("auto")


@dataclass(frozen=True)
class Model:
    id: str
    task_type: str
    endpoint: str  # e.g. /v1/text_to_video
    fields: tuple[Field, ...]
    output: str  # video | image | audio
    live: bool = True  # offered by Runway's API today
    note: str = ""
    maker: str = ""
    credits_per_second: float | None = None
    credits_per_output: float | None = None
    default_duration: float = 5

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def ratios(self) -> tuple[str, ...]:
        f = self.field("ratio")
        return f.choices if f else ()

    @property
    def runway_own(self) -> bool:
        return self.maker == "Runway"

    @property
    def price_known(self) -> bool:
        return self.credits_per_output is not None or self.credits_per_second is not None \
            or self.id in PRICED_BY_TEXT


@dataclass(frozen=True)
class TaskType:
    key: str  # e.g. text_to_video
    name: str  # e.g. Text to Video
    output: str  # video | image | audio
    description: str
    models: tuple[Model, ...] = dc_field(default=())

    def model(self, model_id: str) -> Model:
        for m in self.models:
            if m.id == model_id:
                return m
        raise KeyError(f"{self.name} has no model {model_id!r}")


@dataclass(frozen=True)
class Issue:
    """One problem with one field, in words a user can act on."""

    field: str
    message: str


# ---------------------------------------------------------------- presentation

# Task types in page order: the seed's nine, then the endpoints Runway added. Each names the
# endpoints whose models it offers; a (endpoint, model) pair can be moved to another type below.
_TASK_TYPES = (
    ("text_to_video", "Text to Video", "Generate a video from a text prompt.", ("/v1/text_to_video",)),
    ("image_to_video", "Image to Video", "Animate an image, guided by a prompt.", ("/v1/image_to_video",)),
    ("video_to_video", "Video to Video", "Restyle or edit a video with a prompt.", ("/v1/video_to_video",)),
    ("text_to_image", "Text to Image", "Generate an image from a text prompt.", ("/v1/text_to_image",)),
    ("character_performance", "Character Performance",
     "Drive a character image or video with a performance video.", ("/v1/character_performance",)),
    ("lip_sync", "Lip Sync", "Make a face in an image or video speak an audio track.", ("/v1/lip_sync",)),
    ("video_upscale", "Video Upscale", "Upscale a video to a higher resolution.", ("/v1/video_upscale",)),
    ("frame_interpolation", "Frame Interpolation", "Add in-between frames for smoother or slower motion.",
     ("/v1/frame_interpolation",)),
    ("sound_effect", "Sound Effect", "Generate a sound effect from a description.", ("/v1/sound_effect",)),
    ("image_upscale", "Image Upscale", "Upscale an image to a higher resolution.", ("/v1/image_upscale",)),
    ("text_to_speech", "Text to Speech", "Speak a text in one of Runway's preset voices.", ("/v1/text_to_speech",)),
    ("speech_to_speech", "Speech to Speech", "Say what a recording says in another voice.",
     ("/v1/speech_to_speech",)),
    ("voice_dubbing", "Voice Dubbing", "Dub speech into another language.", ("/v1/voice_dubbing",)),
    ("voice_isolation", "Voice Isolation", "Separate a voice from background noise.", ("/v1/voice_isolation",)),
    ("video_to_audio", "Video to Audio", "Generate a soundtrack that fits a video.", ("/v1/video_to_audio",)),
    ("video_to_hdr", "Video to HDR", "Convert a video to high dynamic range.", ("/v1/video_to_hdr",)),
    ("avatar_video", "Avatar Video", "Make an avatar speak a script or an audio track.", ("/v1/avatar_videos",)),
)
# Frame-rate interpolation is a model of Runway's upscale endpoint; the seed's page offers it.
_MOVED = {("/v1/video_upscale", "enhance_frame_rate"): "frame_interpolation"}

# Model makers, by id prefix. Only makers the model's name states; anything else says "Other".
_MAKERS = (
    ("Runway", ("gen4", "gen3", "aleph", "act_two", "gwm1", "upscale_v1", "frame_interpolation_v1",
                "sound_effect_v1")),
    ("Google", ("veo", "gemini", "nano_banana")),
    ("Kling", ("kling",)),
    ("MiniMax", ("hailuo",)),
    ("ByteDance", ("seedance", "seedream", "seed_audio")),
    ("Alibaba", ("wan",)),
    ("xAI", ("grok",)),
    ("OpenAI", ("gpt_image",)),
    ("Bria", ("bria",)),
    ("Ideogram", ("ideogram",)),
    ("Recraft", ("recraft",)),
    ("ElevenLabs", ("eleven",)),
    ("Mirelo", ("mirelo",)),
    ("Magnific", ("magnific",)),
)
OTHER_MAKER = "Other"
# The models a page offers first, in this order (the first is the one it opens with); the
# rest follow, Runway's own first, then by maker.
_FIRST = ("gen4.5", "gen4", "gen4_turbo", "gen4_image", "gen4_image_turbo", "aleph2", "act_two",
          "eleven_text_to_sound_v2", "eleven_multilingual_v2")

# Notes on the seed's simulator-only rows (docs/runway-api.md §8).
_NOTES = {
    ("/v1/image_to_video", "gen4"): "The user's spec lists gen4; Runway's API never had a plain gen4 video model. "
                                    "Runs on the simulator; use gen4_turbo or gen4.5 live.",
    ("/v1/image_to_video", "gen4_aleph"): "The user's spec lists gen4_aleph here; Runway's gen4_aleph was a video "
                                          "to video model (retired June 2026) and never took images. "
                                          "Runs on the simulator only.",
    ("/v1/video_to_video", "gen4_aleph"): "Retired from Runway's API in June 2026 (replaced by aleph2); "
                                          "runs on the simulator.",
    ("/v1/video_upscale", "upscale_v1"): "Retired from Runway's API in January 2026; runs on the simulator.",
    ("/v1/sound_effect", "sound_effect_v1"): "The user's spec names sound_effect_v1; Runway's API offers "
                                             "eleven_text_to_sound_v2. Runs on the simulator.",
}
_NO_ENDPOINT = "Runway's API has no {} endpoint; this model runs on the simulator only."

# Published prices (docs/runway-api.md §6); a model not listed has no known price, and the API's
# estimatedCost is what the dashboard shows once the task is created.
_PER_SECOND = {"gen4.5": 12, "gen4_turbo": 5, "gen4_aleph": 15, "act_two": 5, "seedance2": 36}
_PER_SECOND_AUDIO = {"veo3.1": (20, 40), "veo3.1_fast": (10, 15)}  # (without, with) generated audio
_PER_OUTPUT = {"gen4_image_turbo": 2, "gemini_2.5_flash": 5, "eleven_text_to_sound_v2": 2}
_GEN4_IMAGE = (5, 8)  # ratios up to 1280x720 pixels, larger ratios
_PER_CHARACTERS = {m: 50 for m in ("eleven_multilingual_v2", "eleven_v3", "eleven_v4")}  # 1 credit per 50
# Priced per second of the input, which is not known before it is sent.
PRICED_BY_TEXT = {"eleven_voice_isolation": "1 credit per 6 s of input audio",
                  "eleven_voice_dubbing": "1 credit per 2 s of input audio",
                  "eleven_multilingual_sts_v2": "1 credit per 3 s of input"}

_LABELS = {
    "promptText": "Prompt", "promptImage": "First frame image", "videoUri": "Input video", "imageUri": "Input image",
    "audioUri": "Input audio", "promptVideo": "Input video", "ratio": "Ratio", "duration": "Duration (s)",
    "seed": "Seed", "contentModeration": "Public figure threshold",
    "negativePrompt": "Negative prompt", "referenceImages": "Reference images", "referenceVideos": "Reference videos",
    "referenceAudio": "Reference audio", "referenceAudios": "Reference audio", "references": "References",
    "character": "Character (image or video)", "reference": "Performance video (3–30 s)",
    "input": "Face (image or video)",
    "voice": "Voice", "targetLang": "Target language", "targetFramerate": "Target frame rate",
    "outputFormat": "Output format", "proresProfile": "ProRes profile", "providerSettings": "Provider settings",
    "keyframes": "Keyframes", "targetAspectRatio": "Target aspect ratio", "media": "Speech (audio or video)",
    "loop": "Seamless loop", "bodyControl": "Body control", "expressionIntensity": "Expression intensity",
    "scaleFactor": "Scale factor", "resolution": "Resolution", "avatar": "Avatar", "speech": "Speech",
    "presetId": "Preset",
}
# Names whose meaning depends on their shape: veo's yes/no `audio` asks for a soundtrack, where
# lip sync's or an avatar's `audio` is the sound itself.
_SHAPE_LABELS = {("audio", "bool"): "Generate audio"}
_MEDIA_LABELS = {"sound_effect_v1": {"videoUri": "Video to score (optional)"}, "lip_sync": {"audio": "Speech audio"}}
# Fields shown before "More options", besides every required field.
_COMMON = {"promptText", "promptImage", "videoUri", "imageUri", "audioUri", "promptVideo", "ratio", "duration",
           "referenceImages", "character", "reference", "input", "audio", "voice", "media", "targetLang",
           "scaleFactor", "resolution", "targetFramerate", "avatar", "speech", "loop", "bodyControl",
           "expressionIntensity", "keyframes"}
_DEFAULTS = {("frame_interpolation", "targetFramerate"): "60"}
_HELP = {
    "promptText": f"Up to {PROMPT_MAX} characters.",
    "ratio": "Width:height in pixels.",
    "seed": "Leave empty for a random seed.",
    "referenceImages": "Give a reference a tag and write @tag in the prompt to refer to it.",
}
_RANGE = re.compile(r"(?:from |between |\()(-?\d+(?:\.\d+)?)(?: \([^)]*\))?\s*(?:–|-|to|and)\s*(-?\d+(?:\.\d+)?)")
_MAX_CHARS = re.compile(r"up to (\d+) characters")


def maker_of(model_id: str) -> str:
    for maker, prefixes in _MAKERS:
        if model_id.startswith(prefixes):
            return maker
    return OTHER_MAKER


def label_of(name: str, shape: dict | None = None) -> str:
    if (name, (shape or {}).get("type")) in _SHAPE_LABELS:
        return _SHAPE_LABELS[(name, shape["type"])]
    if name in _LABELS:
        return _LABELS[name]
    words = re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).lower()
    return words[:1].upper() + words[1:]


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split())
    return text if len(text) <= 240 else text[:240].rsplit(" ", 1)[0] + "…"


def _media_kinds(shape: dict) -> tuple[tuple[str, ...], bool]:
    """The media kinds a shape carries as a single input, and whether it is sent as {type, uri}."""
    if shape.get("type") == "media":
        return (shape["kind"],), False
    if shape.get("type") == "object" and set(shape["fields"]) == {"type", "uri"}:
        uri = shape["fields"]["uri"]["shape"]
        if uri.get("type") == "media":
            return (uri["kind"],), True
    if shape.get("type") == "union":
        found = [_media_kinds(o) for o in shape["options"]]
        for typed in (True, False):  # every option {type, uri}, or every option a plain URI
            if found and all(kinds and t == typed for kinds, t in found):
                return tuple(dict.fromkeys(k for kinds, _ in found for k in kinds)), typed
    return (), False


def _uri_item(shape: dict) -> dict | None:
    """The fields of a list item that is a media input with extras ({uri, tag}, {uri, position}, ...)."""
    if shape.get("type") == "media":
        return {}
    if shape.get("type") == "object" and "uri" in shape["fields"] and \
            shape["fields"]["uri"]["shape"].get("type") == "media":
        return shape["fields"]
    return None


def _item_kind(shape: dict) -> str:
    return shape["kind"] if shape.get("type") == "media" else shape["fields"]["uri"]["shape"]["kind"]


def _field(task_key: str, model_id: str, name: str, spec: dict) -> Field:
    shape, doc, required = spec["shape"], spec.get("doc", ""), spec["required"]
    label = (_MEDIA_LABELS.get(model_id, _MEDIA_LABELS.get(task_key, {})).get(name)
             or label_of(name, spec["shape"]))
    help_text = _HELP.get(name) or _first_sentence(doc)
    more = not required and name not in _COMMON
    common = dict(name=name, label=label, required=required, help=help_text, shape=shape, more=more,
                  default=_DEFAULTS.get((task_key, name)))
    kind = shape["type"]
    kinds, typed = _media_kinds(shape)
    if kinds:
        return Field(kind="media", media=kinds, typed=typed,
                     **{**common, "help": help_text or "An HTTPS URL, an upload, or an earlier task's output."})
    if kind == "union":
        numbers = [o for o in shape["options"] if o.get("type") in ("integer", "number")]
        words = [o for o in shape["options"] if o.get("type") == "enum" and len(o["values"]) == 1]
        if len(numbers) == 1 and len(words) == 1 and len(shape["options"]) == 2:
            number = _field(task_key, model_id, name, {**spec, "shape": numbers[0]})
            return Field(**{**number.__dict__, "shape": shape, "alternative": words[0]["values"][0]})
        plain = [o for o in shape["options"] if o.get("type") == "media"]
        lists = [o for o in shape["options"] if o.get("type") == "list" and _uri_item(o["items"]) is not None]
        if plain and lists and len(shape["options"]) == 2:
            position = _uri_item(lists[0]["items"]).get("position", {}).get("shape", {})
            return Field(kind="frames", media=(plain[0]["kind"],), last_frame="last" in position.get("values", ()),
                         **common)
        return Field(kind="union", **common)
    if kind == "list" and _uri_item(shape["items"]) is not None:
        extras = tuple((k, v) for k, v in _uri_item(shape["items"]).items() if k != "uri")
        typed = any(k == "type" for k, _ in extras)
        return Field(kind="media_list", media=(_item_kind(shape["items"]),), typed=typed, item_fields=extras,
                     **common)
    if kind == "enum":
        values = tuple(shape["values"])
        if len(values) == 1:
            return Field(kind="const", choices=values, **{**common, "default": values[0]})
        default = common["default"] if common["default"] in values else (values[0] if required else None)
        return Field(kind="choice", choices=values, **{**common, "default": default})
    if kind in ("integer", "number"):
        found = _RANGE.search(doc)
        lo, hi = (float(found.group(1)), float(found.group(2))) if found else (None, None)
        if name == "seed":
            lo, hi = 0, SEED_MAX
        default = lo if required and lo is not None else None
        if name == "duration" and required:
            default = 5 if lo is not None and lo <= 5 <= hi else default
        return Field(kind="int" if kind == "integer" else "number", min=lo, max=hi, **{**common, "default": default})
    if kind == "string":
        found = _MAX_CHARS.search(doc)
        limit = int(found.group(1)) if found else None
        if name == "promptText" and limit is None and maker_of(model_id) == "Runway":
            limit = PROMPT_MAX
        return Field(kind="text", max_length=limit, **{**common, "help": help_text if limit is None or
                                                       name != "promptText" else f"Up to {limit} characters."})
    return Field(kind={"bool": "bool", "object": "object", "list": "list"}.get(kind, "any"), **common)


def _field_order(f: Field) -> tuple:
    order = ["promptText", "promptImage", "videoUri", "imageUri", "audioUri", "promptVideo", "character", "reference",
             "input", "audio", "media", "voice", "referenceImages"]
    return (f.more, order.index(f.name) if f.name in order else len(order), not f.required)


def _price(model_id: str) -> tuple[float | None, float | None]:
    if model_id in _PER_SECOND:
        return float(_PER_SECOND[model_id]), None
    if model_id in _PER_SECOND_AUDIO:
        return float(_PER_SECOND_AUDIO[model_id][1]), None
    if model_id in _PER_OUTPUT:
        return None, float(_PER_OUTPUT[model_id])
    if model_id == "gen4_image":
        return None, float(_GEN4_IMAGE[1])
    return None, None


def _model(task_key: str, output: str, endpoint: str, model_id: str, spec: dict) -> Model:
    fields = tuple(sorted((_field(task_key, model_id, n, s) for n, s in spec["fields"].items() if n != "model"),
                          key=_field_order))
    simulator_only = spec.get("simulator_only", False)
    note = _NOTES.get((endpoint, model_id), "")
    if simulator_only and not note:
        note = _NO_ENDPOINT.format(endpoint.removeprefix("/v1/").replace("_", " "))
    per_second, per_output = _price(model_id)
    duration = next((f for f in fields if f.name == "duration"), None)
    default_duration = 5.0
    if duration is not None and duration.choices:
        default_duration = float(max(c for c in duration.choices if isinstance(c, (int, float))))
    return Model(model_id, task_key, endpoint, fields, output, live=not simulator_only, note=note,
                 maker=maker_of(model_id), credits_per_second=per_second, credits_per_output=per_output,
                 default_duration=default_duration)


def _model_order(m: Model) -> tuple:
    first = _FIRST.index(m.id) if m.id in _FIRST else len(_FIRST)
    return (not m.live, first, not m.runway_own, m.maker == OTHER_MAKER, m.maker, m.id)


def _build() -> tuple[TaskType, ...]:
    by_type: dict[str, list[Model]] = {key: [] for key, *_ in _TASK_TYPES}
    endpoint_type = {ep: key for key, _, _, endpoints in _TASK_TYPES for ep in endpoints}
    for endpoint, model_id, spec in contract.models():
        key = _MOVED.get((endpoint, model_id)) or endpoint_type.get(endpoint)
        if key is None:
            raise KeyError(f"the contract's {endpoint} has no task type in the catalog")
        by_type[key].append(_model(key, contract.output_kind(endpoint, model_id), endpoint, model_id, spec))
    types = []
    for key, name, description, _ in _TASK_TYPES:
        models = tuple(sorted(by_type[key], key=_model_order))
        outputs = {m.output for m in models}
        types.append(TaskType(key, name, outputs.pop() if len(outputs) == 1 else "video", description, models))
    return tuple(types)


TASK_TYPES: tuple[TaskType, ...] = _build()

_BY_KEY = {t.key: t for t in TASK_TYPES}


def task_type(key: str) -> TaskType:
    return _BY_KEY[key]


def models_for_endpoint(endpoint: str) -> dict[str, Model]:
    """Models a POST to `endpoint` accepts, by id."""
    found: dict[str, Model] = {}
    for t in TASK_TYPES:
        for m in t.models:
            if m.endpoint == endpoint:
                found.setdefault(m.id, m)
    return found


ENDPOINTS: tuple[str, ...] = tuple(sorted({m.endpoint for t in TASK_TYPES for m in t.models}))


def find_model(task_type_key: str, model_id: str) -> Model:
    return task_type(task_type_key).model(model_id)


# ---------------------------------------------------------------- media inputs

MEDIA_KINDS = ("media", "frames", "media_list")  # the catalog's kinds of field that carry media
# Request properties that carry media on some model: only a first, cheap test of whether a request may
# hold media. What a property is comes from the task's own model (`media_fields`): one name means
# different things on different models (`audio` is a file on lip sync, a yes/no on veo).
MEDIA_NAMES = frozenset(f.name for t in TASK_TYPES for m in t.models for f in m.fields if f.kind in MEDIA_KINDS)


def media_fields(task_type_key: str, model_id: str) -> dict[str, Field]:
    """The media fields of a task's own model, by request property. A model the catalog no longer
    lists falls back to its task type's models, then to none."""
    try:
        models = [find_model(task_type_key, model_id)]
    except KeyError:
        try:
            models = list(task_type(task_type_key).models)
        except KeyError:
            models = []
    found: dict[str, Field] = {}
    for model in models:
        for f in model.fields:
            if f.kind in MEDIA_KINDS:
                found.setdefault(f.name, f)
    return found


def media_inputs(task: dict) -> list[tuple[Field, str]]:
    """(field of the task's own model, URI) of every media input, in the request's order: the one
    walk of a request's media that History, the Task page and the CSV share."""
    fields = media_fields(task["task_type"], task["model"])
    found = []
    for key, value in (task.get("request") or {}).items():
        if key in fields:
            found += [(fields[key], uri) for _, uri, _ in contract.media_refs(fields[key].shape, value)
                      if isinstance(uri, str) and uri]
    return found


def model_label(model: Model, live_backend: bool = True) -> str:
    """How the picker names a model: its id, its maker, and whether it runs only on the simulator."""
    maker = "Runway's own" if model.runway_own else model.maker
    suffix = f" ({SIMULATOR_ONLY})" if not model.live and live_backend else ""
    return f"{model.id} · {maker}{suffix}"


# ---------------------------------------------------------------- validation

def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_uri(label: str, uri: Any, kinds: tuple[str, ...], where: str) -> list[Issue]:
    if not isinstance(uri, str) or not uri.strip():
        return [Issue(where, f"{label}: give a file, an HTTPS URL or an earlier output.")]
    if uri.startswith("data:"):
        info = media.parse_data_uri(uri)
        if info is None or not info.base64:
            return [Issue(where, f"{label}: the data URI is malformed; it must be base64.")]
        kind = media.kind_of(info.mime)
        if kind not in kinds:
            allowed = ", ".join(m for k in kinds for m in media.MIME_TYPES[k])
            return [Issue(where, f"{label}: {info.mime} is not accepted here; use {allowed}.")]
        if info.size > media.DATA_URI_MAX_BYTES:
            return [Issue(where, f"{label}: {info.size / media.MB:.1f} MB is over the 5 MB limit for inline "
                                 "files; upload it instead.")]
        return []
    if uri.startswith("runway://"):
        return []
    if uri.startswith("https://"):
        if len(uri) > media.URL_MAX_LENGTH:
            return [Issue(where, f"{label}: the URL is longer than {media.URL_MAX_LENGTH} characters.")]
        return []
    return [Issue(where, f"{label}: only HTTPS URLs are accepted (got {uri.split(':', 1)[0]}:).")]


def _media_issues(label: str, shape: dict, value: Any, where: str) -> list[Issue]:
    """The media checks for every media URI inside `value`, wherever the shape puts them; an
    issue's place counts list items (`frames.1`), not the object fields between."""
    return [issue for path, uri, kind in contract.media_refs(shape, value)
            for issue in _check_uri(label, uri, (kind,), where + "".join(f".{p}" for p in path if isinstance(p, int)))]


def range_text(f: Field) -> str:
    """A number field's range as the contract gives it ("2–10", "0.5–30"); "" where it gives none."""
    shown = lambda v: f"{int(v):,}" if float(v).is_integer() else f"{v:g}"
    if f.min is not None and f.max is not None:
        return f"{shown(f.min)}–{shown(f.max)}"
    if f.min is not None:
        return f"{shown(f.min)} or more"
    return "" if f.max is None else f"up to {shown(f.max)}"


def check_number(f: Field, value: Any) -> list[Issue]:
    """The problems with a value for an int or number field: not a number, not whole, out of range."""
    n = f.name
    if f.alternative is not None and value == f.alternative:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [Issue(n, f"{f.label} must be a number.")]
    if f.kind == "int" and value != int(value):
        return [Issue(n, f"{f.label} must be a whole number.")]
    if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
        # A fan-out's shared range may be bounded on one side only.
        bound = (f"between {f.min:g} and {f.max:g}" if f.min is not None and f.max is not None
                 else f"at least {f.min:g}" if f.min is not None else f"at most {f.max:g}")
        return [Issue(n, f"{f.label} must be {bound} (got {value:g}).")]
    return []


def _check_field(f: Field, value: Any) -> list[Issue]:
    n = f.name
    if f.kind == "text":
        if not isinstance(value, str):
            return [Issue(n, f"{f.label} must be text.")]
        length = utf16_length(value)
        if f.max_length and length > f.max_length:
            return [Issue(n, f"{f.label} is {length} characters; the limit is {f.max_length}.")]
        return []
    if f.kind in ("int", "number"):
        return check_number(f, value)
    if f.kind in ("choice", "const"):
        if value not in f.choices:
            shown = ", ".join(str(c) for c in f.choices)
            return [Issue(n, f"{f.label} {value!r} is not available for this model; choose one of {shown}.")]
        return []
    if f.kind == "media" and f.typed:
        if not isinstance(value, dict) or value.get("type") not in f.media:
            return [Issue(n, f"{f.label} must be {{type, uri}} with type {' or '.join(f.media)}.")]
        return _check_uri(f.label, value.get("uri"), (value["type"],), n)
    return _media_issues(f.label, f.shape, value, n)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def validate_request(model: Model, body: dict) -> list[Issue]:
    """Every problem with a request body for `model`, all at once; empty means valid.

    The dashboard's own checks speak first; the contract's (Runway's rules, recursively) add
    whatever they did not already report for that field.
    """
    issues: list[Issue] = []
    for f in model.fields:
        value = body.get(f.name)
        if _missing(value):
            if f.required:
                issues.append(Issue(f.name, f"{f.label} is required."))
            continue
        issues += _check_field(f, value)
    reported = {i.field.split(".")[0] for i in issues}
    sent = {k: v for k, v in body.items() if not _missing(v)} | {"model": model.id}
    for problem in contract.validate(model.endpoint, sent):
        path = [str(p) for p in problem.get("path") or []]
        where = ".".join(path) or "request"
        if path and path[0] in reported:
            continue
        f = model.field(path[0]) if path else None
        if f is None and path and path[0] != "model":
            message = f"{path[0]} is not an input of {model.id}."
        else:
            detail = ".".join(path[1:])
            message = f"{f.label if f else where}{f' ({detail})' if detail else ''}: {problem['message']}"
        issues.append(Issue(where, message))
    return issues


def build_body(model: Model, inputs: dict) -> dict:
    """The JSON body for a create call: model plus the inputs that were given."""
    body: dict[str, Any] = {"model": model.id}
    for f in model.fields:
        value = inputs.get(f.name)
        if _missing(value):
            continue
        body[f.name] = value
    return body


def estimate_credits(model: Model, body: dict) -> float | None:
    """Our estimate of a task's maximum cost from Runway's published prices; None when the price
    is not known. The API's own estimatedCost wins once the task is created."""
    if model.id in _PER_CHARACTERS:
        text = body.get("promptText") or ""
        return float(math.ceil(utf16_length(text) / _PER_CHARACTERS[model.id])) if text else None
    if model.id == "gen4_image":
        w, _, h = str(body.get("ratio") or "").partition(":")
        small = w.isdigit() and h.isdigit() and int(w) * int(h) <= 1280 * 720
        return float(_GEN4_IMAGE[0] if small else _GEN4_IMAGE[1])
    if model.credits_per_output is not None:
        return float(model.credits_per_output)
    per_second = model.credits_per_second
    if model.id in _PER_SECOND_AUDIO:
        per_second = float(_PER_SECOND_AUDIO[model.id][0 if body.get("audio") is False else 1])
    if per_second is None:
        return None
    seconds = body.get("duration")
    seconds = seconds if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else \
        model.default_duration
    return float(per_second) * float(seconds)


def price_text(model: Model) -> str:
    """The published price of a model in words, or that none is known."""
    if model.id in PRICED_BY_TEXT:
        return PRICED_BY_TEXT[model.id]
    if model.id in _PER_CHARACTERS:
        return f"1 credit per {_PER_CHARACTERS[model.id]} characters"
    if model.id in _PER_SECOND_AUDIO:
        lo, hi = _PER_SECOND_AUDIO[model.id]
        return f"{lo} credits per second, {hi} with audio"
    if model.id == "gen4_image":
        return f"{_GEN4_IMAGE[0]} credits per image at 720p, {_GEN4_IMAGE[1]} at 1080p"
    if model.credits_per_output is not None:
        return f"{model.credits_per_output:g} credits per output"
    if model.credits_per_second is not None:
        return f"{model.credits_per_second:g} credits per second"
    return "No published price: the cost is shown once Runway answers with its estimate."
