"""The catalog agrees with the contract exactly: every contract pair is offered, each model's
fields, required flags and allowed values are the contract's, and the values issue 11 found
wrong are right."""
import pytest

from lib import catalog, contract

PAIRS = [(endpoint, model_id, spec) for endpoint, model_id, spec in contract.models()]
OFFERED = {(m.endpoint, m.id): m for t in catalog.TASK_TYPES for m in t.models}


def test_every_contract_pair_is_in_the_catalog_and_nothing_else():
    assert set(OFFERED) == {(endpoint, model_id) for endpoint, model_id, _ in PAIRS}


@pytest.mark.parametrize("endpoint, model_id, spec", PAIRS, ids=[f"{e}:{m}" for e, m, _ in PAIRS])
def test_each_model_offers_exactly_its_contract_fields_and_values(endpoint, model_id, spec):
    model = OFFERED[(endpoint, model_id)]
    fields = {n: s for n, s in spec["fields"].items() if n != "model"}
    assert {f.name for f in model.fields} == set(fields)
    for f in model.fields:
        assert f.required == fields[f.name]["required"], f.name
        assert f.shape == fields[f.name]["shape"], f.name
        if f.kind in ("choice", "const"):
            assert set(f.choices) == set(fields[f.name]["shape"]["values"]), f.name
    assert model.live is not spec["simulator_only"]
    assert model.output == contract.output_kind(endpoint, model_id)


@pytest.mark.parametrize("endpoint, model_id, spec", PAIRS, ids=[f"{e}:{m}" for e, m, _ in PAIRS])
def test_the_contract_minimal_body_is_valid_in_the_catalog(endpoint, model_id, spec):
    uris = {"image": "https://example.com/a.png", "video": "https://example.com/a.mp4",
            "audio": "https://example.com/a.mp3"}
    body = contract.minimal_body(endpoint, model_id, uris)
    assert catalog.validate_request(OFFERED[(endpoint, model_id)], body) == []


def test_the_video_upscaler_offers_the_sdk_resolutions_not_1080p():
    resolution = catalog.find_model("video_upscale", "magnific_video_upscaler_creative").field("resolution")
    assert set(resolution.choices) == {"720p", "1k", "2k", "4k"}
    upscaler = catalog.find_model("video_upscale", "magnific_video_upscaler_creative")
    assert {"flavor", "fpsBoost", "smartGrain"} <= {f.name for f in upscaler.fields}


def test_gen4_aleph_is_not_offered_on_image_to_video():
    assert "gen4_aleph" not in {m.id for m in catalog.task_type("image_to_video").models}
    assert not catalog.find_model("video_to_video", "gen4_aleph").live


def test_fields_the_issue_found_missing_are_offered():
    veo = catalog.find_model("image_to_video", "veo3.1")
    assert veo.field("promptImage").kind == "frames" and veo.field("promptImage").last_frame
    assert veo.field("negativePrompt") is not None
    gen45 = catalog.find_model("text_to_video", "gen4.5")
    assert gen45.field("outputFormat") and gen45.field("proresProfile")
    assert not catalog.find_model("image_to_video", "gen4.5").field("promptImage").last_frame
    aleph2 = catalog.find_model("video_to_video", "aleph2")
    assert {"keyframes", "ratio", "targetAspectRatio"} <= {f.name for f in aleph2.fields}
    refs = catalog.find_model("text_to_image", "gen4_image").field("referenceImages")
    assert refs.kind == "media_list" and "tag" in dict(refs.item_fields)


def test_an_empty_content_moderation_is_accepted():
    model = catalog.find_model("text_to_video", "gen4.5")
    body = {"promptText": "a", "ratio": "1280:720", "duration": 5, "contentModeration": {}}
    assert catalog.validate_request(model, body) == []


def test_unknown_prices_are_unknown_not_zero():
    assert catalog.estimate_credits(catalog.find_model("text_to_video", "seedance2"), {"duration": 5}) == 180
    unpriced = catalog.find_model("video_to_video", "aleph2")
    assert catalog.estimate_credits(unpriced, {}) is None and not unpriced.price_known
    assert "No published price" in catalog.price_text(unpriced)


def test_the_picker_names_the_maker_and_runway_own_models_come_first():
    models = catalog.task_type("text_to_video").models
    assert models[0].id == "gen4.5" and catalog.model_label(models[0]) == "gen4.5 · Runway's own"
    assert catalog.model_label(catalog.find_model("text_to_video", "veo3.1")) == "veo3.1 · Google"


@pytest.mark.parametrize("endpoint, model_id", [(e, m) for e, m, _ in contract.models()])
def test_every_field_the_sdk_allows_can_be_built_and_passes_the_catalog(endpoint, model_id):
    """The body with every optional field too, given as the forms give their inputs, is built
    unchanged and passes the dashboard's own checks: nothing the SDK allows is refused."""
    body = contract.full_body(endpoint, model_id)
    model = catalog.models_for_endpoint(endpoint)[model_id]
    assert catalog.build_body(model, {k: v for k, v in body.items() if k != "model"}) == body
    assert catalog.validate_request(model, body) == []


def test_a_label_follows_the_fields_own_shape_not_a_same_named_field_elsewhere():
    # veo's yes/no `audio` asks for a soundtrack; lip sync's and an avatar's `audio` is the sound itself.
    assert catalog.find_model("text_to_video", "veo3.1").field("audio").label == "Generate audio"
    assert catalog.find_model("lip_sync", "gen4").field("audio").label == "Speech audio"
    assert catalog.label_of("audio", {"type": "media", "kind": "audio"}) == "Audio"
