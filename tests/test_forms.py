"""Task forms in AppTest against the built-in simulator: each task type submits exactly what was
entered, bad input is refused with nothing sent, media come from uploads, URLs or earlier outputs,
and one submission can fan out into a comparison group."""
import time

import pytest

from lib import catalog, media, settings
from lib.backend import current_backend
from lib.poller import Poller
from lib.store import Store
from lib.ui import PAGE_FILES
from tests.support import apptest, media_samples
from tests.support.simulator import simulator_requests

# Per task type: what a user fills in, and the request body the simulator must receive.
CASES = {
    "text_to_video": ({"prompt": "A lighthouse at dawn"},
                      {"model": "gen4.5", "promptText": "A lighthouse at dawn", "ratio": "1280:720", "duration": 5}),
    "image_to_video": ({"prompt": "The fox turns its head", "promptImage": ("fox.png", "png")},
                       {"model": "gen4.5", "promptText": "The fox turns its head", "ratio": "1280:720",
                        "duration": 5, "promptImage": "png"}),
    "video_to_video": ({"prompt": "Make it snow", "videoUri": ("street.mp4", "mp4")},
                       {"model": "aleph2", "promptText": "Make it snow", "videoUri": "mp4"}),
    "text_to_image": ({"prompt": "A teapot in the style of a blueprint"},
                      {"model": "gen4_image", "promptText": "A teapot in the style of a blueprint",
                       "ratio": "1024:1024"}),
    "character_performance": ({"character": ("face.png", "png"), "reference": ("act.mp4", "mp4")},
                              {"model": "act_two", "character": {"type": "image", "uri": "png"},
                               "reference": {"type": "video", "uri": "mp4"}, "bodyControl": False}),
    "lip_sync": ({"input": ("face.png", "png"), "audio": ("line.wav", "wav")},
                 {"model": "gen4", "input": "png", "audio": "wav"}),
    "video_upscale": ({"videoUri": ("clip.mp4", "mp4")},
                      {"model": "magnific_video_upscaler_creative", "videoUri": "mp4"}),
    "frame_interpolation": ({"videoUri": ("clip.mp4", "mp4")},
                            {"model": "enhance_frame_rate", "videoUri": "mp4", "targetFramerate": "60"}),
    "sound_effect": ({"prompt": "Rain on a tin roof"},
                     {"model": "eleven_text_to_sound_v2", "promptText": "Rain on a tin roof", "loop": False}),
}
SAMPLES = {"png": ("image/png", media_samples.png), "mp4": ("video/mp4", media_samples.mp4),
           "wav": ("audio/wav", media_samples.wav)}


@pytest.fixture
def env(app_env):
    return app_env


def simulator_log():
    return simulator_requests()


def creates():
    return simulator_requests(creates_only=True)


def open_page(task_type, **query):
    return apptest.open_page(PAGE_FILES[task_type], **query)


def fill(at, task_type, values):
    """Type into the form as a user would: prompt, then one upload per media field."""
    uploads = [v for k, v in values.items() if k != "prompt"]
    if "prompt" in values:
        at.text_area(key=f"{task_type}_promptText").input(values["prompt"])
    for field_name, (filename, sample) in ((k, v) for k, v in values.items() if k != "prompt"):
        mime, make = SAMPLES[sample]
        at.file_uploader(key=f"{task_type}_{field_name}_file").set_value((filename, make(), mime))
    return uploads


def generate(at):
    return at.button(key=at.button[-1].key).click().run()


def expected_body(expected, task):
    """The expected body with sample names replaced by the data URIs the form must have sent."""
    def resolve(value):
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if value in SAMPLES:
            mime, make = SAMPLES[value]
            return media.encode_data_uri(mime, make())
        return value
    return {k: resolve(v) for k, v in expected.items()}


@pytest.mark.parametrize("task_type", list(CASES))
def test_valid_submission_records_exactly_the_inputs(env, task_type):
    values, expected = CASES[task_type]
    at = open_page(task_type, teammate="Ana")
    fill(at, task_type, values)
    generate(at)
    assert not at.exception, at.exception
    assert [s.value for s in at.success][0].startswith("Task #1 submitted"), [e.value for e in at.error]
    store = Store(env / "dashboard.db")
    [task] = store.recent_tasks()
    assert store.restore_request(task["request"]) == expected_body(expected, task)
    assert task["teammate"] == "Ana" and task["task_uuid"]
    [create] = creates()
    assert create["path"] == catalog.task_type(task_type).model(expected["model"]).endpoint


@pytest.mark.parametrize("task_type", list(CASES))
def test_invalid_submission_shows_errors_and_sends_nothing(env, task_type):
    at = open_page(task_type)
    generate(at)  # nothing filled in: every required input is missing
    assert not at.exception
    model = catalog.task_type(task_type).models[0]
    required = [f.label for f in model.fields if f.required and f.kind not in ("choice", "int", "number")]
    errors = " ".join(e.value for e in at.error)
    for label in required:
        assert f"{label} is required" in errors.replace("\\", "")
    assert "Nothing was sent" in errors
    assert Store(env / "dashboard.db").count_tasks() == 0
    assert creates() == []


def test_wrong_file_type_is_refused_by_its_contents(env):
    at = open_page("image_to_video")
    at.text_area(key="image_to_video_promptText").input("x")
    at.file_uploader(key="image_to_video_promptImage_file").set_value(("photo.png", media_samples.wav(), "image/png"))
    generate(at)
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "photo.png is not a valid image file" in errors
    assert creates() == []


def test_large_upload_goes_through_the_upload_flow(env):
    big = media_samples.noisy_png(1400)
    assert len(big) > media.DATA_URI_MAX_BYTES
    at = open_page("image_to_video")
    at.text_area(key="image_to_video_promptText").input("Zoom into the noise")
    at.file_uploader(key="image_to_video_promptImage_file").set_value(("noise.png", big, "image/png"))
    generate(at)
    assert not at.exception and at.success, [e.value for e in at.error]
    [task] = Store(env / "dashboard.db").recent_tasks()
    assert task["request"]["promptImage"].startswith("runway://")
    assert [r["path"] for r in simulator_log() if r["method"] == "POST"][:1] == ["/v1/uploads"]


def test_https_url_is_sent_as_given_and_http_is_refused(env):
    at = open_page("video_upscale")
    at.radio(key="video_upscale_videoUri_source").set_value("HTTPS URL")
    at.run()
    at.text_input(key="video_upscale_videoUri_url").input("http://example.com/clip.mp4")
    generate(at)
    assert "only HTTPS URLs" in " ".join(e.value for e in at.error).replace("\\", "")
    assert creates() == []
    at.text_input(key="video_upscale_videoUri_url").input("https://example.com/clip.mp4")
    generate(at)
    [task] = Store(env / "dashboard.db").recent_tasks()
    assert task["request"]["videoUri"] == "https://example.com/clip.mp4"


def test_fan_out_creates_one_task_per_combination_in_a_group(env):
    at = open_page("text_to_video", teammate="Bo")
    at.text_area(key="text_to_video_promptText").input("A heron takes off")
    at.multiselect(key="text_to_video_compare_models").select("veo3.1")
    at.text_input(key="text_to_video_compare_seeds").input("7, 8")
    at.number_input(key="text_to_video_gen4.5_duration").set_value(8)  # a duration veo3.1 offers too
    at.run()
    captions = " ".join(c.value for c in at.caption)
    assert "4 tasks · up to about 512 credits" in captions  # gen4.5 2×(12×8) + veo3.1 without audio 2×(20×8)
    generate(at)
    assert not at.exception
    tasks = Store(env / "dashboard.db").recent_tasks()
    assert len(tasks) == 4 and len({t["group_id"] for t in tasks}) == 1 and tasks[0]["group_id"]
    assert sorted((t["model"], t["request"]["seed"]) for t in tasks) == [
        ("gen4.5", 7), ("gen4.5", 8), ("veo3.1", 7), ("veo3.1", 8)]
    assert {t["teammate"] for t in tasks} == {"Bo"}
    assert any(f"group={tasks[0]['group_id']}" in m.value for m in at.markdown)
    assert len(creates()) == 4


def test_fan_out_checks_every_model_before_sending_any(env):
    at = open_page("image_to_video")
    at.text_area(key="image_to_video_promptText").input("Pan left")
    at.multiselect(key="image_to_video_compare_models").select("veo3.1")
    at.run()
    # veo3.1 does not offer 960:960, so a fan-out with it does not either.
    assert "960:960" not in at.multiselect(key="image_to_video_gen4.5_compare_ratios").options
    at.multiselect(key="image_to_video_gen4.5_compare_ratios").select("1280:720")
    generate(at)  # no image: every model is checked, none is sent
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "veo3.1" in errors and "gen4.5" in errors and "Nothing was sent" in errors
    assert creates() == []


def test_output_of_one_task_feeds_the_next_with_lineage(env):
    at = open_page("text_to_image")
    at.text_area(key="text_to_image_promptText").input("A paper crane")
    generate(at)
    store = Store(env / "dashboard.db")
    poller = Poller(store.path, [current_backend()], interval=0.2, static_dir=env / "static")
    # The form reads archived files from the project's static/ folder.
    from lib import archive
    poller.static_dir = archive.STATIC_DIR
    deadline = time.time() + 30
    while time.time() < deadline and not store.archived_outputs(["image"]):
        poller.poll_once()
        poller.archive_once()
        time.sleep(0.2)
    [output] = store.archived_outputs(["image"])
    try:
        at = open_page("image_to_video", from_output=str(output["id"]))
        assert at.radio(key="image_to_video_promptImage_source").value == "Earlier output"
        at.text_area(key="image_to_video_promptText").input("The crane flies away")
        generate(at)
        assert not at.exception and at.success, [e.value for e in at.error]
        child = store.recent_tasks()[0]
        assert child["task_type"] == "image_to_video" and child["parent_task_id"] == output["task_id"]
        sent = store.restore_request(child["request"])["promptImage"]
        assert sent == media.encode_data_uri("image/png", (settings.ROOT / output["path"]).read_bytes())
    finally:
        (settings.ROOT / output["path"]).unlink(missing_ok=True)
        poller.stop()


def test_going_over_the_balance_is_warned_before_sending(env, monkeypatch):
    monkeypatch.setenv("SIMULATOR_CREDITS", "100")
    at = open_page("text_to_video")
    at.text_area(key="text_to_video_promptText").input("An expensive idea")
    at.multiselect(key="text_to_video_compare_models").select("veo3.1")
    at.run()
    warnings = " ".join(w.value for w in at.warning)
    assert "up to 180 credits; the balance is 100" in warnings  # gen4.5 12×5 + veo3.1 without audio 20×6 (5 s → 6 s)
    assert at.button(key="text_to_video_submit").disabled
    assert creates() == []


def test_teammate_name_is_kept_in_the_address(env):
    at = open_page("text_to_video")
    at.sidebar.text_input(key="teammate_input").input("Chiara").run()
    assert at.query_params["teammate"] == ["Chiara"] or at.query_params["teammate"] == "Chiara"


def test_api_rejection_is_shown_and_recorded(env):
    at = open_page("video_upscale")
    at.radio(key="video_upscale_videoUri_source").set_value("HTTPS URL")
    at.run()
    # Passes our checks (an upload URI), but the simulator knows no such upload and answers 400.
    at.text_input(key="video_upscale_videoUri_url").input("runway://uploads/does-not-exist")
    generate(at)
    assert not at.exception
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "Recorded as task #1" in errors
    [task] = Store(env / "dashboard.db").recent_tasks()
    assert task["submit_state"] == "rejected" and task["status"] == "FAILED" and task["failure"]
    assert task["request"]["videoUri"] == "runway://uploads/does-not-exist"


def test_daily_limit_is_warned_before_sending(env, monkeypatch):
    monkeypatch.setenv("SIMULATOR_DAILY_LIMIT", "1")
    at = open_page("text_to_image")
    at.text_area(key="text_to_image_promptText").input("Two variations")
    at.text_input(key="text_to_image_compare_seeds").input("1 2")
    at.run()
    assert "gen4_image: 0 of 1 daily generations are used; 2 more" in " ".join(w.value for w in at.warning)
    at.checkbox(key="text_to_image_over_limit").check().run()
    generate(at)
    tasks = Store(env / "dashboard.db").recent_tasks()
    assert sorted(t["submit_state"] for t in tasks) == ["rejected", "submitted"]  # Runway's 429 for the second


def test_prompt_counter_shows_the_limit(env):
    at = open_page("text_to_video")
    assert at.text_area(key="text_to_video_promptText").max_chars == catalog.PROMPT_MAX
    assert [o for o in at.selectbox(key="text_to_video_gen4.5_ratio").options] == ["1280:720", "720:1280"]


def test_a_fan_out_offers_only_the_values_every_picked_model_takes(env):
    at = open_page("text_to_video")
    at.selectbox(key="text_to_video_model").select("veo3.1").run()
    assert len(at.selectbox(key="text_to_video_veo3.1_ratio").options) > 2
    at.multiselect(key="text_to_video_compare_models").select("gen4.5").run()
    # gen4.5 offers two of veo3.1's four ratios: only those two are offered.
    assert [o for o in at.selectbox(key="text_to_video_veo3.1_ratio").options if ":" in o] == ["1280:720", "720:1280"]


def test_a_fan_out_says_which_model_requires_a_field_before_generate_and_once(env):
    at = open_page("text_to_image")
    at.text_area(key="text_to_image_promptText").input("A paper crane")
    at.run()
    label = lambda: at.radio(key="text_to_image_referenceImages_source").label
    assert label() == "Reference images (optional)"
    at.multiselect(key="text_to_image_compare_models").select("gen4_image_turbo")
    at.text_input(key="text_to_image_compare_seeds").input("1 2")
    at.run()
    assert label() == "Reference images (required by gen4_image_turbo)"
    generate(at)
    errors = [e.value.replace("\\", "") for e in at.error]
    assert sum("gen4_image_turbo" in e for e in errors if "Nothing was sent" not in e) == 1
    assert sum(e.count("gen4_image_turbo") for e in errors) == 1  # said once, not once per seed
    assert creates() == []
