"""The catalog: every task type, its models, their endpoints and input fields,
and each model's constraints. It is data; the forms, the validation and the
simulator all read it, so adding a model or a ratio is an edit here alone.

Requests are validated in the API's own shape (camelCase body, typed media as
``{"type": ..., "uri": ...}``), so the dashboard and the simulator check
exactly the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any

from lib import media

PROMPT_MAX = 1000  # UTF-16 code units, Runway's limit on promptText
SEED_MAX = 4_294_967_295


@dataclass(frozen=True)
class Field:
    """One input of a model's request body."""

    name: str  # the API's camelCase property
    kind: str  # text | int | number | choice | bool | media | media_list | moderation
    label: str
    required: bool = False
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None  # text: UTF-16 code units
    media: tuple[str, ...] = ()  # media: accepted kinds (image, video, audio)
    typed: bool = False  # media sent as {"type": kind, "uri": uri}
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class Model:
    id: str
    task_type: str
    endpoint: str  # e.g. /v1/text_to_video
    fields: tuple[Field, ...]
    output: str  # video | image | audio
    live: bool = True  # offered by Runway's API today
    note: str = ""
    credits_per_second: float | None = None
    credits_per_output: float | None = None
    default_duration: float = 5

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def ratios(self) -> tuple[str, ...]:
        f = self.field("ratio")
        return f.choices if f else ()


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


# ---------------------------------------------------------------- fields

def prompt(required: bool = True, label: str = "Prompt") -> Field:
    return Field("promptText", "text", label, required=required, max_length=PROMPT_MAX,
                 help=f"Up to {PROMPT_MAX} characters.")


def ratio(*choices: str, required: bool = True) -> Field:
    return Field("ratio", "choice", "Ratio", required=required, choices=choices,
                 default=choices[0] if required else None,
                 help="Width:height in pixels.")


def duration_range(lo: float, hi: float, required: bool = True, default: float = 5, step_int: bool = True) -> Field:
    return Field("duration", "int" if step_int else "number", "Duration (s)", required=required,
                 min=lo, max=hi, default=default)


def duration_choice(*choices: int, required: bool = False) -> Field:
    return Field("duration", "choice", "Duration (s)", required=required, choices=choices, default=choices[-1])


def media_in(name: str, label: str, *kinds: str, required: bool = True, typed: bool = False) -> Field:
    return Field(name, "media", label, required=required, media=kinds, typed=typed,
                 help="An HTTPS URL, an upload, or an earlier task's output.")


SEED = Field("seed", "int", "Seed", min=0, max=SEED_MAX, help="Leave empty for a random seed.")
MODERATION = Field("contentModeration", "moderation", "Public figure threshold", choices=("auto", "low"),
                   help="How strictly Runway's moderation treats recognisable public figures.")

GEN45_I2V_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
IMAGE_RATIOS = ("1024:1024", "1080:1080", "1168:880", "1360:768", "1440:1080", "1080:1440", "1808:768",
                "1920:1080", "1080:1920", "2112:912", "1280:720", "720:1280", "720:720", "960:720",
                "720:960", "1680:720")
ACT_TWO_RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
FRAME_RATES = ("24", "25", "30", "48", "50", "60", "120", "23_98", "29_97", "59_94")

RETIRED_ALEPH = "Retired from Runway's API in June 2026 (replaced by aleph2); runs on the simulator."
NO_ENDPOINT = "Runway's API has no {} endpoint; this model runs on the simulator only."


def _video_models(task_type: str, endpoint: str, image: bool) -> tuple[Model, ...]:
    """Text-to-video and image-to-video share their models; image adds promptImage."""
    first = (media_in("promptImage", "First frame image", "image"),) if image else ()
    veo_fields = first + (
        prompt(required=not image),
        ratio(*VEO_RATIOS),
        duration_choice(4, 6, 8),
        Field("audio", "bool", "Generate audio", default=False, help="Changes the price."),
        SEED,
    )
    models = [
        Model("gen4.5", task_type, endpoint,
              first + (prompt(), ratio(*(GEN45_I2V_RATIOS if image else ("1280:720", "720:1280"))),
                       duration_range(2, 10), SEED, MODERATION),
              "video", credits_per_second=12),
    ]
    if image:
        models += [
            Model("gen4_turbo", task_type, endpoint,
                  first + (prompt(required=False), ratio(*GEN4_RATIOS), duration_range(2, 10, required=False),
                           SEED, MODERATION),
                  "video", credits_per_second=5),
            Model("gen4", task_type, endpoint,
                  first + (prompt(), ratio(*GEN4_RATIOS), duration_range(2, 10), SEED),
                  "video", live=False, credits_per_second=5,
                  note="The user's spec lists gen4; Runway's API never had a plain gen4 video model. "
                       "Runs on the simulator; use gen4_turbo or gen4.5 live."),
            Model("gen4_aleph", task_type, endpoint,
                  first + (prompt(), ratio(*GEN4_RATIOS), duration_range(2, 10), SEED, MODERATION),
                  "video", live=False, credits_per_second=15, note=RETIRED_ALEPH),
        ]
    models += [
        Model("veo3.1", task_type, endpoint, veo_fields, "video", credits_per_second=40, default_duration=8),
        Model("veo3.1_fast", task_type, endpoint, veo_fields, "video", credits_per_second=15, default_duration=8),
    ]
    return tuple(models)


def _image_models() -> tuple[Model, ...]:
    refs = lambda required: Field(  # noqa: E731 - two variants of one field
        "referenceImages", "media_list", "Reference images", required=required, media=("image",),
        min=1 if required else 0, max=3, help="Up to three; refer to a tagged one as @tag in the prompt.")
    common = (prompt(), ratio(*IMAGE_RATIOS), SEED, MODERATION)
    return (
        Model("gen4_image", "text_to_image", "/v1/text_to_image", common + (refs(False),), "image",
              credits_per_output=8),
        Model("gen4_image_turbo", "text_to_image", "/v1/text_to_image", common + (refs(True),), "image",
              credits_per_output=2),
    )


TASK_TYPES: tuple[TaskType, ...] = (
    TaskType("text_to_video", "Text to Video", "video", "Generate a video from a text prompt.",
             _video_models("text_to_video", "/v1/text_to_video", image=False)),
    TaskType("image_to_video", "Image to Video", "video", "Animate an image, guided by a prompt.",
             _video_models("image_to_video", "/v1/image_to_video", image=True)),
    TaskType("video_to_video", "Video to Video", "video", "Restyle or edit a video with a prompt.", (
        Model("aleph2", "video_to_video", "/v1/video_to_video",
              (media_in("videoUri", "Input video", "video"), prompt(required=False), SEED, MODERATION),
              "video", credits_per_second=15),
        Model("gen4_aleph", "video_to_video", "/v1/video_to_video",
              (media_in("videoUri", "Input video", "video"), prompt(),
               ratio(*GEN4_RATIOS, required=False), SEED, MODERATION),
              "video", live=False, credits_per_second=15, note=RETIRED_ALEPH),
    )),
    TaskType("text_to_image", "Text to Image", "image", "Generate an image from a text prompt.", _image_models()),
    TaskType("character_performance", "Character Performance", "video",
             "Drive a character image or video with a performance video.", (
        Model("act_two", "character_performance", "/v1/character_performance",
              (media_in("character", "Character (image or video)", "image", "video", typed=True),
               media_in("reference", "Performance video (3–30 s)", "video", typed=True),
               ratio(*ACT_TWO_RATIOS, required=False),
               Field("bodyControl", "bool", "Body control", default=False),
               Field("expressionIntensity", "int", "Expression intensity", min=1, max=5, default=3),
               SEED, MODERATION),
              "video", credits_per_second=5),
    )),
    TaskType("lip_sync", "Lip Sync", "video", "Make a face in an image or video speak an audio track.", tuple(
        Model(model_id, "lip_sync", "/v1/lip_sync",
              (media_in("input", "Face (image or video)", "image", "video"),
               media_in("audio", "Speech audio", "audio"), SEED),
              "video", live=False, credits_per_second=5, note=NO_ENDPOINT.format("lip sync"))
        for model_id in ("gen4", "gen4_turbo")
    )),
    TaskType("video_upscale", "Video Upscale", "video", "Upscale a video to a higher resolution.", (
        Model("magnific_video_upscaler_creative", "video_upscale", "/v1/video_upscale",
              (media_in("videoUri", "Input video", "video"),
               Field("resolution", "choice", "Resolution", choices=("720p", "1080p", "2k", "4k"),
                     help="Runway's default is 2k."),
               Field("creativity", "int", "Creativity", min=0, max=100),
               Field("sharpen", "int", "Sharpen", min=0, max=100)),
              "video", credits_per_second=2),
        Model("upscale_v1", "video_upscale", "/v1/video_upscale", (media_in("videoUri", "Input video", "video"),),
              "video", live=False, credits_per_second=2,
              note="Retired from Runway's API in January 2026; runs on the simulator."),
    )),
    TaskType("frame_interpolation", "Frame Interpolation", "video",
             "Add in-between frames for smoother or slower motion.", (
        Model("enhance_frame_rate", "frame_interpolation", "/v1/video_upscale",
              (media_in("videoUri", "Input video", "video"),
               Field("targetFramerate", "choice", "Target frame rate", required=True, choices=FRAME_RATES,
                     default="60")),
              "video", credits_per_second=2),
        Model("frame_interpolation_v1", "frame_interpolation", "/v1/frame_interpolation",
              (media_in("videoUri", "Input video", "video"),),
              "video", live=False, credits_per_second=2, note=NO_ENDPOINT.format("frame interpolation")),
    )),
    TaskType("sound_effect", "Sound Effect", "audio", "Generate a sound effect from a description.", (
        Model("eleven_text_to_sound_v2", "sound_effect", "/v1/sound_effect",
              (prompt(), duration_range(0.5, 30, required=False, default=None, step_int=False),
               Field("loop", "bool", "Seamless loop", default=False)),
              "audio", credits_per_output=2, default_duration=4),
        Model("sound_effect_v1", "sound_effect", "/v1/sound_effect",
              (prompt(), media_in("videoUri", "Video to score (optional)", "video", required=False),
               duration_range(0.5, 30, required=False, default=None, step_int=False)),
              "audio", live=False, credits_per_output=2, default_duration=4,
              note="The user's spec names sound_effect_v1; Runway's API offers eleven_text_to_sound_v2. "
                   "Runs on the simulator."),
    )),
)

_BY_KEY = {t.key: t for t in TASK_TYPES}


def task_type(key: str) -> TaskType:
    return _BY_KEY[key]


def models_for_endpoint(endpoint: str) -> dict[str, Model]:
    """Models a POST to `endpoint` accepts, by id (used by the simulator)."""
    found: dict[str, Model] = {}
    for t in TASK_TYPES:
        for m in t.models:
            if m.endpoint == endpoint:
                found.setdefault(m.id, m)
    return found


ENDPOINTS: tuple[str, ...] = tuple(sorted({m.endpoint for t in TASK_TYPES for m in t.models}))


def find_model(task_type_key: str, model_id: str) -> Model:
    return task_type(task_type_key).model(model_id)


# ---------------------------------------------------------------- validation

def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_uri(f: Field, uri: Any, kinds: tuple[str, ...], where: str) -> list[Issue]:
    if not isinstance(uri, str) or not uri.strip():
        return [Issue(where, f"{f.label}: give a file, an HTTPS URL or an earlier output.")]
    if uri.startswith("data:"):
        info = media.parse_data_uri(uri)
        if info is None or not info.base64:
            return [Issue(where, f"{f.label}: the data URI is malformed; it must be base64.")]
        kind = media.kind_of(info.mime)
        if kind not in kinds:
            allowed = ", ".join(m for k in kinds for m in media.MIME_TYPES[k])
            return [Issue(where, f"{f.label}: {info.mime} is not accepted here; use {allowed}.")]
        if info.size > media.DATA_URI_MAX_BYTES:
            return [Issue(where, f"{f.label}: {info.size / media.MB:.1f} MB is over the 5 MB limit for inline "
                                 "files; upload it instead.")]
        return []
    if uri.startswith("runway://"):
        return []
    if uri.startswith("https://"):
        if len(uri) > media.URL_MAX_LENGTH:
            return [Issue(where, f"{f.label}: the URL is longer than {media.URL_MAX_LENGTH} characters.")]
        return []
    return [Issue(where, f"{f.label}: only HTTPS URLs are accepted (got {uri.split(':', 1)[0]}:).")]


def _check_field(f: Field, value: Any) -> list[Issue]:
    n = f.name
    if f.kind == "text":
        if not isinstance(value, str):
            return [Issue(n, f"{f.label} must be text.")]
        if not value.strip():
            return [Issue(n, f"{f.label} is empty.")] if f.required else []
        length = utf16_length(value)
        if f.max_length and length > f.max_length:
            return [Issue(n, f"{f.label} is {length} characters; the limit is {f.max_length}.")]
        return []
    if f.kind in ("int", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [Issue(n, f"{f.label} must be a number.")]
        if f.kind == "int" and value != int(value):
            return [Issue(n, f"{f.label} must be a whole number.")]
        if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
            return [Issue(n, f"{f.label} must be between {f.min:g} and {f.max:g} (got {value:g}).")]
        return []
    if f.kind == "choice":
        if value not in f.choices:
            shown = ", ".join(str(c) for c in f.choices)
            return [Issue(n, f"{f.label} {value!r} is not available for this model; choose one of {shown}.")]
        return []
    if f.kind == "bool":
        return [] if isinstance(value, bool) else [Issue(n, f"{f.label} must be true or false.")]
    if f.kind == "moderation":
        threshold = value.get("publicFigureThreshold") if isinstance(value, dict) else None
        if threshold not in f.choices:
            return [Issue(n, f"{f.label} must be one of {', '.join(f.choices)}.")]
        return []
    if f.kind == "media":
        if f.typed:
            if not isinstance(value, dict) or value.get("type") not in f.media:
                return [Issue(n, f"{f.label} must be {{type, uri}} with type {' or '.join(f.media)}.")]
            return _check_uri(f, value.get("uri"), (value["type"],), n)
        return _check_uri(f, value, f.media, n)
    if f.kind == "media_list":
        if not isinstance(value, list):
            return [Issue(n, f"{f.label} must be a list.")]
        if f.min is not None and len(value) < f.min or f.max is not None and len(value) > f.max:
            return [Issue(n, f"{f.label}: give between {f.min:g} and {f.max:g}.")]
        issues = []
        for i, item in enumerate(value):
            uri = item.get("uri") if isinstance(item, dict) else item
            issues += _check_uri(f, uri, f.media, f"{n}.{i}")
        return issues
    raise ValueError(f"unknown field kind {f.kind}")


def validate_request(model: Model, body: dict) -> list[Issue]:
    """Every problem with a request body for `model`, all at once; empty means valid.

    Absent optional fields are fine; unknown fields are reported, as the API does.
    """
    issues: list[Issue] = []
    for f in model.fields:
        value = body.get(f.name)
        missing = value is None or (isinstance(value, str) and not value.strip()) or value == []
        if missing:
            if f.required:
                issues.append(Issue(f.name, f"{f.label} is required."))
            continue
        issues += _check_field(f, value)
    known = {f.name for f in model.fields} | {"model"}
    for name in body:
        if name not in known:
            issues.append(Issue(name, f"{name} is not an input of {model.id}."))
    return issues


def build_body(model: Model, inputs: dict) -> dict:
    """The JSON body for a create call: model plus the inputs that were given."""
    body: dict[str, Any] = {"model": model.id}
    for f in model.fields:
        value = inputs.get(f.name)
        if value is None or value == "" or value == []:
            continue
        body[f.name] = value
    return body


def estimate_credits(model: Model, body: dict) -> float:
    """Our estimate of a task's maximum cost; the API's own estimatedCost wins once known."""
    if model.credits_per_output is not None:
        return float(model.credits_per_output)
    seconds = body.get("duration") or model.default_duration
    return float(model.credits_per_second or 0) * float(seconds)
