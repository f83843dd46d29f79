"""Runway's request contract: every task-creating endpoint, its models, each
model's fields and their allowed values, as data the dashboard carries.

`runway.json` is generated from the official SDK's request types
(`python -m lib.contract.extract`; tests/test_contract.py fails when it no
longer matches the pinned SDK). `seed.json` is written by hand from the
user's seed spec for the models and endpoints the live API lacks; they are
"simulator only". Both have one shape:

    {"source": ..., "endpoints": {path: {"params": name, "models": {model_id:
        {"fields": {json_name: {"required": bool, "shape": SHAPE, "doc": str}}}}}}}

SHAPE is {"type": "string" | "integer" | "number" | "bool" | "any"},
{"type": "enum", "values": [...]}, {"type": "media", "kind": image|video|audio},
{"type": "list", "items": SHAPE}, {"type": "object", "fields": {...}} or
{"type": "union", "options": [SHAPE, ...]}.

This module reads the contract and checks request bodies against it, in the
API's 400 shape (`[{"path": [...], "message": ...}]`). It checks types only:
whether a media string is a reachable, well-formed file of the right kind is
for the simulator and the forms.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
API_VERSION = "2024-11-06"  # the X-Runway-Version every request carries, and the simulator requires
KINDS = ("image", "video", "audio")

# What each endpoint's task produces. The SDK's types do not say; a new
# endpoint has no entry here, and tests/test_contract.py asks for one.
OUTPUT_KINDS = {
    "/v1/avatar_videos": "video",
    "/v1/character_performance": "video",
    "/v1/frame_interpolation": "video",
    "/v1/image_to_video": "video",
    "/v1/image_upscale": "image",
    "/v1/lip_sync": "video",
    "/v1/sound_effect": "audio",
    "/v1/speech_to_speech": "audio",
    "/v1/text_to_image": "image",
    "/v1/text_to_speech": "audio",
    "/v1/text_to_video": "video",
    "/v1/video_to_audio": "audio",
    "/v1/video_to_hdr": "video",
    "/v1/video_to_video": "video",
    "/v1/video_upscale": "video",
    "/v1/voice_dubbing": "audio",
    "/v1/voice_isolation": "audio",
}


def name_kind(name: str) -> str | None:
    """The media kind a field's JSON name ends in (promptImage, referenceAudios)."""
    return next((k for k in KINDS if re.search(rf"{k}s?$", name, re.I)), None)


# ---------------------------------------------------------------- reading

@functools.lru_cache(maxsize=1)
def load() -> dict:
    """Both files merged: {"sources": [...], "endpoints": {path: {"params", "models"}}}.

    Each model dict also has "endpoint" and "simulator_only". Shared and cached:
    read it, never change it.
    """
    merged: dict[str, Any] = {"sources": [], "endpoints": {}}
    for name, simulator_only in (("runway.json", False), ("seed.json", True)):
        part = json.loads((HERE / name).read_text())
        merged["sources"].append(part["source"])
        for path, endpoint in part["endpoints"].items():
            target = merged["endpoints"].setdefault(path, {"params": endpoint["params"], "models": {}})
            for model_id, model in endpoint["models"].items():
                if model_id in target["models"]:
                    raise ValueError(f"{name}: {path} {model_id} is in the SDK's contract already")
                target["models"][model_id] = dict(model, endpoint=path, simulator_only=simulator_only)
    return merged


def endpoints() -> list[str]:
    return sorted(load()["endpoints"])


def models(endpoint: str | None = None) -> list[tuple[str, str, dict]]:
    """(endpoint, model id, model dict) for every model, or one endpoint's."""
    found = []
    for path, spec in sorted(load()["endpoints"].items()):
        if endpoint is None or path == endpoint:
            found += [(path, model_id, spec["models"][model_id]) for model_id in sorted(spec["models"])]
    return found


def model(endpoint: str, model_id: str) -> dict:
    return load()["endpoints"][endpoint]["models"][model_id]


def output_kind(endpoint: str, model_id: str) -> str:
    model(endpoint, model_id)  # an unknown pair is a KeyError, not a guess
    return OUTPUT_KINDS[endpoint]


def coverage_markdown() -> str:
    """The README's coverage table: per endpoint, its models, live or simulator only, and what it outputs."""
    rows = ["| Endpoint | Live models (Runway's API) | Simulator only | Output |", "| --- | --- | --- | --- |"]
    for path in endpoints():
        found = models(path)
        live = ", ".join(f"`{m}`" for _, m, spec in found if not spec["simulator_only"]) or "none"
        seed = ", ".join(f"`{m}`" for _, m, spec in found if spec["simulator_only"]) or "none"
        rows.append(f"| `POST {path}` | {live} | {seed} | {OUTPUT_KINDS[path]} |")
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------- validation

def _issue(path: list, message: str) -> dict:
    return {"path": path, "message": message}


def describe(shape: dict) -> str:
    """A shape in a few words, for messages."""
    kind = shape["type"]
    if kind == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in shape["values"])
    if kind == "media":
        return f"an {shape['kind']} URI" if shape["kind"] == "image" else f"a {shape['kind']} URI"
    if kind == "list":
        return "a list of objects" if shape["items"]["type"] == "object" else f"a list of ({describe(shape['items'])})"
    if kind == "object":
        return "an object"
    if kind == "union":
        return " or ".join(describe(o) for o in shape["options"])
    return {"string": "a string", "integer": "an integer", "number": "a number", "bool": "true or false",
            "any": "any value"}[kind]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong(path: list, shape: dict, value: Any) -> list[dict]:
    return [_issue(path, f"Expected {describe(shape)}, got {_json_type(value)}.")]


def check(shape: dict, value: Any, path: list) -> list[dict]:
    """Every issue with `value` against `shape`; `path` is where it sits in the body."""
    kind = shape["type"]
    if kind == "any":
        return []
    if kind in ("string", "media"):
        return [] if isinstance(value, str) else _wrong(path, shape, value)
    if kind == "bool":
        return [] if isinstance(value, bool) else _wrong(path, shape, value)
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _wrong(path, shape, value)
        if kind == "integer" and not float(value).is_integer():
            return [_issue(path, f"Expected an integer, got {value}.")]
        return []
    if kind == "enum":
        same_type = [v for v in shape["values"] if isinstance(v, bool) == isinstance(value, bool)
                     and isinstance(v, str) == isinstance(value, str)]
        if value in same_type:
            return []
        return [_issue(path, f"Invalid value {json.dumps(value)}: expected {describe(shape)}.")]
    if kind == "list":
        if not isinstance(value, list):
            return _wrong(path, shape, value)
        return [i for n, item in enumerate(value) for i in check(shape["items"], item, path + [n])]
    if kind == "object":
        if not isinstance(value, dict):
            return _wrong(path, shape, value)
        return check_fields(shape["fields"], value, path)
    if kind == "union":
        results = [check(option, value, path) for option in shape["options"]]
        if any(not r for r in results):
            return []
        # Report against the options of the value's own JSON type, the closest first,
        # so a list of frames with one bad position names that position.
        typed = [r for r, o in zip(results, shape["options"]) if not _is_type_mismatch(r, path)]
        return min(typed, key=len) if typed else _wrong(path, shape, value)
    raise ValueError(f"unknown shape {kind!r}")


def _is_type_mismatch(issues: list[dict], path: list) -> bool:
    return len(issues) == 1 and issues[0]["path"] == path and issues[0]["message"].startswith("Expected ")


def check_fields(fields: dict, body: dict, path: list) -> list[dict]:
    issues = []
    for name, spec in fields.items():
        if name not in body:
            if spec["required"]:
                issues.append(_issue(path + [name], f"Required: {describe(spec['shape'])}."))
            continue
        issues += check(spec["shape"], body[name], path + [name])
    for name in body:
        if name not in fields:
            issues.append(_issue(path + [name], f"Unrecognized key {json.dumps(name)}."))
    return issues


def media_refs(shape: dict, value: Any, path: tuple = (),
               chooses: Callable[[dict, Any], bool] | None = None) -> Iterator[tuple[tuple, Any, str]]:
    """(path, value, kind) of every media value inside `value`, walked along `shape`: the one walk
    of a request's media, which the forms' checks, the simulator and the Task page share. A union
    is walked along the first option `chooses` (default `fits`: its form, its constants); a value
    of the wrong type is still yielded where the shape says media, for the caller's check to refuse."""
    chooses = chooses or fits
    kind = shape.get("type")
    if kind == "media":
        yield path, value, shape["kind"]
    elif kind == "object" and isinstance(value, dict):
        for name, spec in shape["fields"].items():
            if name in value:
                yield from media_refs(spec["shape"], value[name], (*path, name), chooses)
    elif kind == "list" and isinstance(value, list):
        for n, item in enumerate(value):
            yield from media_refs(shape["items"], item, (*path, n), chooses)
    elif kind == "union":
        option = next((o for o in shape["options"] if chooses(o, value)), None)
        if option is not None:
            yield from media_refs(option, value, path, chooses)


def body_media(fields: dict, body: dict) -> Iterator[tuple[tuple, Any, str]]:
    """`media_refs` of a whole request body, from its model's fields, a union's option being the
    first the value passes in full (`check`), as the API judges a body."""
    return media_refs({"type": "object", "fields": fields}, body, chooses=lambda o, v: not check(o, v, []))


def fits(shape: dict, value: Any) -> bool:
    """Whether a value is of a union option's form (its constants agree), for choosing the option."""
    kind = shape.get("type")
    if kind in ("media", "string"):
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, list)
    if kind == "object":
        if not isinstance(value, dict):
            return False
        for name, spec in shape["fields"].items():
            values = spec["shape"].get("values") if spec["shape"].get("type") == "enum" else None
            if values and len(values) == 1 and name in value and value[name] != values[0]:
                return False
        return True
    return True


def validate(endpoint: str, body: Any) -> list[dict]:
    """Every issue with a create request's body, all at once; empty means valid.

    A model the endpoint lacks is an issue at ["model"]; an endpoint the
    contract lacks is a KeyError (the API answers 404 there, not 400).
    """
    spec = load()["endpoints"][endpoint]
    if not isinstance(body, dict):
        return [_issue([], f"Expected a JSON object, got {_json_type(body)}.")]
    model_id = body.get("model")
    if not isinstance(model_id, str) or model_id not in spec["models"]:
        offered = ", ".join(sorted(spec["models"]))
        if "model" not in body:
            return [_issue(["model"], f"Required: one of {offered}.")]
        return [_issue(["model"], f"Invalid value {json.dumps(model_id)}: {endpoint} takes {offered}.")]
    return check_fields(spec["models"][model_id]["fields"], body, [])


# ---------------------------------------------------------------- sample bodies (for tests)

SAMPLE_MEDIA = {"image": "https://example.com/input.png", "video": "https://example.com/input.mp4",
                "audio": "https://example.com/input.mp3"}
# Strings whose meaning the types leave open; everything else gets SAMPLE_TEXT.
SAMPLE_STRINGS = {"ratio": "1280:720", "languageCode": "en", "tag": "subject", "backgroundColor": "#FF8800",
                  "colors": "#FF8800", "draftTaskId": "00000000-0000-4000-8000-000000000000"}
SAMPLE_TEXT = "A lighthouse on a cliff at dawn"
_RANGE = re.compile(r"(?:from|between|\(|\[)\s*(-?\d+(?:\.\d+)?)\s*(?:to|and|–|-|,)\s*-?\d", re.I)


def _sample_number(doc: str, integer: bool) -> int | float:
    """The lower bound of a range the docstring states, else 1."""
    found = _RANGE.search(doc)
    low = float(found.group(1)) if found else 1.0
    return int(low) if integer or low.is_integer() else low


def _sample(shape: dict, name: str, doc: str, media: dict, full: bool) -> Any:
    kind = shape["type"]
    if kind == "enum":
        return shape["values"][0]
    if kind == "media":
        return media[shape["kind"]]
    if kind == "string":
        return SAMPLE_STRINGS.get(name, SAMPLE_TEXT)
    if kind in ("integer", "number"):
        return _sample_number(doc, kind == "integer")
    if kind == "bool":
        return False
    if kind == "any":
        return {"uri": media[name_kind(name)]} if name_kind(name) else {}
    if kind == "list":
        return [_sample(shape["items"], name, doc, media, full)]
    if kind == "object":
        return _sample_fields(shape["fields"], media, full)
    if kind == "union":
        return _sample(shape["options"][0], name, doc, media, full)
    raise ValueError(f"unknown shape {kind!r}")


def _sample_fields(fields: dict, media: dict, full: bool) -> dict:
    return {name: _sample(spec["shape"], name, spec["doc"], media, full)
            for name, spec in fields.items() if spec["required"] or full}


def minimal_body(endpoint: str, model_id: str, media: dict | None = None) -> dict:
    """A valid body with the required fields only: first enum values, the given media URIs by kind."""
    return _sample_fields(model(endpoint, model_id)["fields"], {**SAMPLE_MEDIA, **(media or {})}, full=False)


def full_body(endpoint: str, model_id: str, media: dict | None = None) -> dict:
    """A valid body with every field the model takes, optional ones too."""
    return _sample_fields(model(endpoint, model_id)["fields"], {**SAMPLE_MEDIA, **(media or {})}, full=True)
