"""The contract (lib/contract) is the official SDK's, and validate() holds bodies to it.

The SDK (runwayml, pinned in requirements-test.txt) is read here in two ways
that do not share code with the extractor: the contract file is regenerated
and compared, and sample bodies are sent through the SDK's own create methods
at an httpx.MockTransport, mapped key by key onto its TypedDicts.
"""
from __future__ import annotations

import copy
import importlib
import json
import re
import typing
from pathlib import Path

import httpx
import pytest
import runwayml
import typing_extensions

from lib import contract
from lib.contract import extract

SDK_PAIRS = [(e, m) for e, m, spec in contract.models() if not spec["simulator_only"]]
ALL_PAIRS = [(e, m) for e, m, _ in contract.models()]


def _fields(endpoint, model_id):
    return contract.model(endpoint, model_id)["fields"]


# ---------------------------------------------------------------- the file is the SDK's

def test_the_contract_file_is_what_the_installed_sdk_says(tmp_path):
    carried = json.loads(extract.CONTRACT_FILE.read_text())
    extract.main([str(tmp_path / "runway.json")])
    regenerated = json.loads((tmp_path / "runway.json").read_text())
    changes = extract.diff(carried, regenerated)
    assert not changes, ("The SDK's types differ from lib/contract/runway.json "
                         "(run `python -m lib.contract.extract`):\n" + "\n".join(changes))
    assert (tmp_path / "runway.json").read_text() == extract.CONTRACT_FILE.read_text()


def test_a_changed_value_is_named_by_endpoint_model_and_field():
    old = json.loads(extract.CONTRACT_FILE.read_text())
    new = copy.deepcopy(old)
    upscaler = new["endpoints"]["/v1/video_upscale"]["models"]["magnific_video_upscaler_creative"]["fields"]
    upscaler["resolution"]["shape"]["values"] = ["720p", "1080p", "2k", "4k"]
    del upscaler["flavor"]
    new["endpoints"]["/v1/text_to_image"]["models"]["gen4_image"]["fields"]["promptText"]["required"] = False
    assert extract.diff(old, new) == [
        "/v1/text_to_image model gen4_image field promptText: now optional",
        "/v1/video_upscale model magnific_video_upscaler_creative field flavor: removed",
        '/v1/video_upscale model magnific_video_upscaler_creative field resolution: values removed "1k"',
        '/v1/video_upscale model magnific_video_upscaler_creative field resolution: values added "1080p"',
    ]


def test_the_sdk_pin_counts_15_endpoints_99_pairs_62_models():
    runway = json.loads(extract.CONTRACT_FILE.read_text())
    assert runway["source"] == "runwayml 5.24.0" == f"runwayml {runwayml.__version__}"
    assert len(runway["endpoints"]) == 15
    assert sum(len(e["models"]) for e in runway["endpoints"].values()) == 99 == len(SDK_PAIRS)
    assert len({m for e in runway["endpoints"].values() for m in e["models"]}) == 62


def test_the_seed_adds_only_simulator_only_models():
    seed_only = {(e, m) for e, m, spec in contract.models() if spec["simulator_only"]}
    assert seed_only == {
        ("/v1/image_to_video", "gen4"), ("/v1/video_to_video", "gen4_aleph"),
        ("/v1/lip_sync", "gen4"), ("/v1/lip_sync", "gen4_turbo"),
        ("/v1/video_upscale", "upscale_v1"), ("/v1/frame_interpolation", "frame_interpolation_v1"),
        ("/v1/sound_effect", "sound_effect_v1"),
    }
    assert all(spec["endpoint"] == e for e, _, spec in contract.models())


def test_every_endpoint_says_what_it_outputs():
    assert {e: contract.output_kind(e, m) for e, m in ALL_PAIRS} == contract.OUTPUT_KINDS
    assert contract.output_kind("/v1/text_to_speech", "eleven_v3") == "audio"
    assert contract.output_kind("/v1/image_upscale", "magnific_precision_upscaler_v2") == "image"


# ---------------------------------------------------------------- what the issue found wrong

def test_the_video_upscaler_takes_720p_1k_2k_4k_and_flavor_fps_boost_smart_grain():
    fields = _fields("/v1/video_upscale", "magnific_video_upscaler_creative")
    assert fields["resolution"]["shape"] == {"type": "enum", "values": ["720p", "1k", "2k", "4k"]}
    assert fields["flavor"]["shape"]["type"] == "enum"
    assert fields["fpsBoost"]["shape"] == {"type": "bool"}
    assert fields["smartGrain"]["shape"] == {"type": "integer"}


def test_gen4_aleph_is_no_image_to_video_model():
    assert "gen4_aleph" not in [m for _, m, _ in contract.models("/v1/image_to_video")]
    assert contract.validate("/v1/image_to_video", {"model": "gen4_aleph"})[0]["path"] == ["model"]


def test_veo_takes_first_and_last_frames_and_a_negative_prompt():
    fields = _fields("/v1/image_to_video", "veo3.1")
    frames = {"type": "list", "items": {"type": "object", "fields": {
        "position": {"required": True, "shape": {"type": "enum", "values": ["first", "last"]},
                     "doc": fields["promptImage"]["shape"]["options"][1]["items"]["fields"]["position"]["doc"]},
        "uri": {"required": True, "shape": {"type": "media", "kind": "image"},
                "doc": fields["promptImage"]["shape"]["options"][1]["items"]["fields"]["uri"]["doc"]}}}}
    assert fields["promptImage"]["shape"]["options"] == [{"type": "media", "kind": "image"}, frames]
    for endpoint in ("/v1/image_to_video", "/v1/text_to_video"):
        for model_id in ("veo3.1", "veo3.1_fast"):
            assert _fields(endpoint, model_id)["negativePrompt"]["shape"] == {"type": "string"}
    body = {"model": "veo3.1", "ratio": "1280:720", "promptImage": [
        {"uri": "https://example.com/a.png", "position": "first"},
        {"uri": "https://example.com/b.png", "position": "last"}]}
    assert contract.validate("/v1/image_to_video", body) == []


def test_gen4_5_takes_output_format_and_prores_profile():
    for endpoint in ("/v1/image_to_video", "/v1/text_to_video"):
        fields = _fields(endpoint, "gen4.5")
        assert {"mp4", "prores"} <= set(fields["outputFormat"]["shape"]["values"])
        assert {"422", "422 HQ", "4444"} <= set(fields["proresProfile"]["shape"]["values"])


def test_aleph2_takes_keyframes_ratio_and_target_aspect_ratio():
    fields = _fields("/v1/video_to_video", "aleph2")
    keyframe = fields["keyframes"]["shape"]["items"]
    assert [sorted(o["fields"]) for o in keyframe["options"]] == [["range", "seconds", "uri"], ["at", "range", "uri"]]
    assert fields["ratio"]["shape"] == {"type": "string"}
    assert "16:9" in fields["targetAspectRatio"]["shape"]["values"]
    body = {"model": "aleph2", "videoUri": "https://example.com/v.mp4", "targetAspectRatio": "9:16",
            "keyframes": [{"seconds": 1.5, "uri": "https://example.com/k.png"},
                          {"at": 0.5, "uri": "https://example.com/k.png",
                           "range": {"start_seconds": 0, "end_seconds": 2}}]}
    assert contract.validate("/v1/video_to_video", body) == []


def test_reference_images_carry_a_tag():
    item = _fields("/v1/text_to_image", "gen4_image")["referenceImages"]["shape"]["items"]
    assert item["fields"]["uri"]["shape"] == {"type": "media", "kind": "image"}
    assert item["fields"]["tag"]["shape"] == {"type": "string"}
    body = {"model": "gen4_image", "promptText": "@cat on a sofa", "ratio": "1024:1024",
            "referenceImages": [{"uri": "https://example.com/cat.png", "tag": "cat"}]}
    assert contract.validate("/v1/text_to_image", body) == []


def test_an_empty_content_moderation_is_valid():
    body = {**contract.minimal_body("/v1/text_to_video", "gen4.5"), "contentModeration": {}}
    assert contract.validate("/v1/text_to_video", body) == []


# ---------------------------------------------------------------- validate, model by model

@pytest.mark.parametrize("endpoint,model_id", ALL_PAIRS)
def test_minimal_and_full_bodies_validate_clean(endpoint, model_id):
    minimal = contract.minimal_body(endpoint, model_id)
    full = contract.full_body(endpoint, model_id)
    assert contract.validate(endpoint, minimal) == []
    assert contract.validate(endpoint, full) == []
    fields = _fields(endpoint, model_id)
    assert set(minimal) == {n for n, f in fields.items() if f["required"]}
    assert set(full) == set(fields)
    assert minimal["model"] == full["model"] == model_id


def _enum_paths(shape, value, path):
    """Every path in a sample body where an enum value sits."""
    if shape["type"] == "enum":
        yield path, "no-such-value" if isinstance(shape["values"][0], str) else 12345
    elif shape["type"] == "object":
        for name, spec in shape["fields"].items():
            if name in value:
                yield from _enum_paths(spec["shape"], value[name], path + [name])
    elif shape["type"] == "list":
        for n, item in enumerate(value):
            yield from _enum_paths(shape["items"], item, path + [n])
    elif shape["type"] == "union" and {"type": "string"} not in shape["options"]:  # else any text goes
        option = next(o for o in shape["options"] if not contract.check(o, value, path))
        yield from _enum_paths(option, value, path)


def _set(body, path, value):
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@pytest.mark.parametrize("endpoint,model_id", ALL_PAIRS)
def test_a_value_outside_each_enum_is_refused_at_its_path(endpoint, model_id):
    full = contract.full_body(endpoint, model_id)
    paths = list(_enum_paths({"type": "object", "fields": _fields(endpoint, model_id)}, full, []))
    assert (["model"], "no-such-value") in paths
    for path, outside in paths:
        body = copy.deepcopy(full)
        _set(body, path, outside)
        issues = contract.validate(endpoint, body)
        assert issues and all(i["path"][:len(path)] == path for i in issues), (path, issues)


@pytest.mark.parametrize("endpoint,model_id", ALL_PAIRS)
def test_a_missing_required_field_an_unknown_field_and_a_wrong_type_are_refused(endpoint, model_id):
    minimal = contract.minimal_body(endpoint, model_id)
    for name in minimal:
        if name != "model":
            body = {k: v for k, v in minimal.items() if k != name}
            assert [i["path"] for i in contract.validate(endpoint, body)] == [[name]]
    assert contract.validate(endpoint, {**minimal, "colour": "red"}) == [
        {"path": ["colour"], "message": 'Unrecognized key "colour".'}]
    for name, spec in _fields(endpoint, model_id).items():
        if spec["shape"]["type"] != "any":
            issues = contract.validate(endpoint, {**minimal, name: {"noSuchKey": 1}})
            assert issues and issues[0]["path"][0] == name, (name, issues)


def test_issues_come_in_the_api_shape_for_each_kind_of_mistake():
    assert contract.validate("/v1/text_to_video", {"model": "gen5"}) == [{"path": ["model"], "message": (
        'Invalid value "gen5": /v1/text_to_video takes ' + ", ".join(sorted(
            m for _, m, _ in contract.models("/v1/text_to_video"))) + ".")}]
    assert contract.validate("/v1/text_to_video", ["gen4.5"]) == [
        {"path": [], "message": "Expected a JSON object, got array."}]
    body = {"model": "gen4.5", "promptText": 5, "ratio": "1280:720", "duration": 5.5, "seed": True}
    assert contract.validate("/v1/text_to_video", body) == [
        {"path": ["duration"], "message": "Expected an integer, got 5.5."},
        {"path": ["promptText"], "message": "Expected a string, got number."},
        {"path": ["seed"], "message": "Expected an integer, got boolean."},
    ]
    frames = {"model": "veo3.1", "ratio": "1280:720", "promptImage": [{"uri": "https://x/a.png", "position": "middle"}]}
    assert contract.validate("/v1/image_to_video", frames) == [{
        "path": ["promptImage", 0, "position"], "message": 'Invalid value "middle": expected one of "first", "last".'}]
    assert contract.validate("/v1/image_to_video", {**frames, "promptImage": 7}) == [{
        "path": ["promptImage"],
        "message": "Expected an image URI or a list of objects, got number."}]
    with pytest.raises(KeyError):
        contract.validate("/v1/no_such_endpoint", {"model": "gen4.5"})


def test_a_media_field_is_only_checked_to_be_a_string():
    body = {"model": "magnific_video_upscaler_creative", "videoUri": "not even a url"}
    assert contract.validate("/v1/video_upscale", body) == []
    assert contract.validate("/v1/video_upscale", {**body, "videoUri": None})[0]["path"] == ["videoUri"]


# ---------------------------------------------------------------- the SDK itself agrees

def _sdk_params(endpoint):
    name = contract.load()["endpoints"][endpoint]["params"]
    module = importlib.import_module("runwayml.types." + re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower())
    params = getattr(module, name)
    return list(typing.get_args(params)) if typing.get_origin(params) is typing.Union else [params]


def _unwrap(hint):
    required = typing.get_origin(hint) is typing.Required
    if required:
        hint = typing.get_args(hint)[0]
    alias = None
    if typing.get_origin(hint) is typing.Annotated:
        alias = next((m.alias for m in hint.__metadata__ if getattr(m, "alias", None)), None)
        hint = typing.get_args(hint)[0]
    return hint, alias, required


def _to_sdk(hint, value, where):
    """`value` (JSON names) as the SDK's Python arguments, failing where the SDK's type lacks a key."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        for option in typing.get_args(hint):
            try:
                return _to_sdk(option, value, where)
            except (AssertionError, TypeError):
                continue
        raise AssertionError(f"{where}: no option of {hint} takes {value!r}")
    if typing_extensions.is_typeddict(hint):
        assert isinstance(value, dict), where
        by_json = {}
        for py_name, member in typing.get_type_hints(hint, include_extras=True).items():
            inner, alias, required = _unwrap(member)
            by_json[alias or py_name] = (py_name, inner)
            assert not required or (alias or py_name) in value, f"{where}: SDK requires {alias or py_name}"
        unknown = set(value) - set(by_json)
        assert not unknown, f"{where}: the SDK's {hint.__name__} has no {sorted(unknown)}"
        return {by_json[k][0]: _to_sdk(by_json[k][1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        assert value in typing.get_args(hint), f"{where}: {value!r} not in {typing.get_args(hint)}"
        return value
    if origin is not None and typing.get_args(hint) and isinstance(value, list):
        return [_to_sdk(typing.get_args(hint)[0], item, f"{where}[]") for item in value]
    if hint in (str, int, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise TypeError(f"{where}: {value!r} is no {hint.__name__}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where}: {value!r} is no number")
        return value
    if hint is object:
        return value
    raise TypeError(f"{where}: {value!r} does not fit {hint}")


@pytest.fixture(scope="module")
def sdk_client():
    sent = []

    def runway(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"id": "00000000-0000-4000-8000-000000000000"})

    client = runwayml.RunwayML(api_key="key_test", base_url="http://runway.test", max_retries=0,
                               http_client=httpx.Client(transport=httpx.MockTransport(runway)))
    return client, sent


@pytest.mark.parametrize("sample", [contract.minimal_body, contract.full_body], ids=["minimal", "full"])
def test_the_sdk_sends_exactly_the_bodies_the_contract_builds(sdk_client, sample):
    client, sent = sdk_client
    for endpoint, model_id in SDK_PAIRS:
        body = sample(endpoint, model_id)
        member = next(m for m in _sdk_params(endpoint) if model_id in typing.get_args(
            _unwrap(typing.get_type_hints(m, include_extras=True)["model"])[0]))
        kwargs = _to_sdk(member, body, f"{endpoint} {model_id}")
        getattr(client, endpoint.removeprefix("/v1/")).create(**kwargs)
        assert sent[-1] == (endpoint, body)


def test_the_coverage_table_has_a_row_per_endpoint_naming_each_model_once():
    rows = contract.coverage_markdown().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [f"POST {e}" for e in contract.endpoints()]
    for row, endpoint in zip(rows, contract.endpoints()):
        _, _, live, seed, output, _ = [cell.strip() for cell in row.split("|")]
        assert output == contract.OUTPUT_KINDS[endpoint]
        for _, model_id, spec in contract.models(endpoint):
            assert f"`{model_id}`" in (seed if spec["simulator_only"] else live)
    lip_sync = next(r for r in rows if "/v1/lip_sync" in r)
    assert lip_sync == "| `POST /v1/lip_sync` | none | `gen4`, `gen4_turbo` | video |"


def test_the_readme_coverage_table_is_the_contracts():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert contract.coverage_markdown() in readme


def test_the_media_walk_follows_a_union_along_the_option_the_value_passes_or_its_form():
    # The API (and so the simulator) takes a union's option only when the value passes it in
    # full; the forms' checks take the option the value's form and constants point to.
    fields = contract.model("/v1/character_performance", "act_two")["fields"]
    body = {"model": "act_two", "character": {"uri": "data:video/mp4;base64,AAAA"},
            "reference": {"type": "video", "uri": "https://x.test/r.mp4"}}
    assert list(contract.body_media(fields, body)) == [(("reference", "uri"), "https://x.test/r.mp4", "video")]
    assert list(contract.media_refs({"type": "object", "fields": fields}, body)) == [
        (("character", "uri"), "data:video/mp4;base64,AAAA", "image"),
        (("reference", "uri"), "https://x.test/r.mp4", "video")]
