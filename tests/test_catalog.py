"""The catalog: every seed task type and model is there, and requests are validated the way Runway does."""
import json
from pathlib import Path

import pytest

from lib import catalog, media

SEED = json.loads((Path(__file__).resolve().parents[2] / "shared" / "seed-task-structure.json").read_text()) \
    if (Path(__file__).resolve().parents[2] / "shared" / "seed-task-structure.json").exists() else None


def test_every_seed_task_type_and_model_is_in_the_catalog():
    names = {t.name: t for t in catalog.TASK_TYPES}
    expected = {
        "Text to Video": {"gen4.5", "veo3.1", "veo3.1_fast"},
        "Image to Video": {"gen4", "gen4_turbo", "gen4.5", "gen4_aleph"},
        "Video to Video": {"gen4_aleph"},
        "Text to Image": {"gen4_image"},
        "Character Performance": {"act_two"},
        "Lip Sync": {"gen4", "gen4_turbo"},
        "Video Upscale": {"upscale_v1"},
        "Frame Interpolation": {"frame_interpolation_v1"},
        "Sound Effect": {"sound_effect_v1"},
    }
    if SEED:
        expected = {t["name"]: set(t["models"]) for t in SEED["task_types"]}
    # The seed lists gen4_aleph under image to video, where Runway never offered it (issue 11):
    # the contract's seed rows leave it out, so the catalog does too.
    expected["Image to Video"] = expected["Image to Video"] - {"gen4_aleph"}
    assert set(expected) <= set(names)
    for name, models in expected.items():
        assert models <= {m.id for m in names[name].models}, name
    assert "gen4_aleph" not in {m.id for m in names["Image to Video"].models}


def test_live_models_of_design_are_offered():
    ids = {m.id for t in catalog.TASK_TYPES for m in t.models if m.live}
    assert {"aleph2", "gen4_image_turbo", "magnific_video_upscaler_creative", "enhance_frame_rate",
            "eleven_text_to_sound_v2"} <= ids


def test_models_that_the_live_api_lacks_say_so():
    lip = catalog.task_type("lip_sync")
    assert all(not m.live and m.note for m in lip.models)
    assert catalog.find_model("frame_interpolation", "enhance_frame_rate").endpoint == "/v1/video_upscale"


def test_gen45_text_to_video_accepts_only_two_ratios():
    model = catalog.find_model("text_to_video", "gen4.5")
    assert model.ratios == ("1280:720", "720:1280")
    issues = catalog.validate_request(model, {"model": "gen4.5", "promptText": "a cat", "ratio": "960:960",
                                              "duration": 5})
    assert [i.field for i in issues] == ["ratio"]
    assert "1280:720" in issues[0].message


def test_all_problems_are_reported_at_once():
    model = catalog.find_model("text_to_video", "gen4.5")
    issues = catalog.validate_request(model, {"model": "gen4.5", "promptText": "x" * 1001, "ratio": "1:1",
                                              "duration": 11, "colour": "red"})
    assert {i.field for i in issues} == {"promptText", "ratio", "duration", "colour"}


def test_prompt_length_counts_utf16_units():
    model = catalog.find_model("text_to_video", "gen4.5")
    body = {"promptText": "🎬" * 501, "ratio": "1280:720", "duration": 5}
    [issue] = catalog.validate_request(model, body)
    assert issue.field == "promptText" and "1002" in issue.message


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
def test_empty_or_blank_prompt_is_required(prompt):
    model = catalog.find_model("text_to_video", "veo3.1")
    [issue] = catalog.validate_request(model, {"promptText": prompt, "ratio": "1280:720"})
    assert issue.field == "promptText" and "required" in issue.message


def test_media_inputs_must_be_https_and_of_the_right_kind():
    model = catalog.find_model("image_to_video", "gen4_turbo")
    http = catalog.validate_request(model, {"promptImage": "http://example.com/a.png", "ratio": "1280:720"})
    assert "HTTPS" in http[0].message
    wav = media.encode_data_uri("audio/wav", b"RIFF0000WAVE" + b"\0" * 40)
    wrong = catalog.validate_request(model, {"promptImage": wav, "ratio": "1280:720"})
    assert "audio/wav is not accepted" in wrong[0].message
    ok = catalog.validate_request(model, {"promptImage": "https://example.com/a.png", "ratio": "1280:720"})
    assert ok == []


def test_data_uri_over_five_megabytes_is_refused():
    model = catalog.find_model("image_to_video", "gen4_turbo")
    big = media.encode_data_uri("image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * media.MB))
    [issue] = catalog.validate_request(model, {"promptImage": big, "ratio": "1280:720"})
    assert "5 MB" in issue.message


def test_typed_media_for_character_performance():
    model = catalog.find_model("character_performance", "act_two")
    body = {"character": {"type": "image", "uri": "https://x.test/face.png"},
            "reference": {"type": "video", "uri": "https://x.test/perf.mp4"}}
    assert catalog.validate_request(model, body) == []
    body["reference"] = {"type": "image", "uri": "https://x.test/perf.png"}
    assert [i.field for i in catalog.validate_request(model, body)] == ["reference"]


def test_build_body_drops_empty_optionals_and_adds_model():
    model = catalog.find_model("text_to_video", "gen4.5")
    body = catalog.build_body(model, {"promptText": "a", "ratio": "1280:720", "duration": 5, "seed": None,
                                      "contentModeration": None})
    assert body == {"model": "gen4.5", "promptText": "a", "ratio": "1280:720", "duration": 5}


def test_estimate_is_per_second_for_video_and_per_output_for_images():
    assert catalog.estimate_credits(catalog.find_model("text_to_video", "gen4.5"), {"duration": 10}) == 120
    assert catalog.estimate_credits(catalog.find_model("text_to_image", "gen4_image"), {}) == 8


@pytest.mark.parametrize("low, high, value, message", [
    (None, 5, 9, "Seed must be at most 5 (got 9)."),
    (2, None, 1, "Seed must be at least 2 (got 1)."),
    (2, 5, 9, "Seed must be between 2 and 5 (got 9)."),
])
def test_a_number_out_of_a_range_bounded_on_one_side_is_an_issue_not_a_crash(low, high, value, message):
    field = catalog.Field(name="seed", kind="int", label="Seed", min=low, max=high)  # a fan-out's shared range
    assert [issue.message for issue in catalog.check_number(field, value)] == [message]
