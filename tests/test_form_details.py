"""The task forms' details (issue #12, items 9 and 11), in AppTest against the built-in simulator:
a fan-out offers only the numbers every picked model takes and says before Generate where no
number would do; number fields show their range; an upload is previewed under its widget; an
input image whose shape is not the output's is warned about."""
import dataclasses

import pytest
from streamlit.testing.v1 import AppTest

from lib import catalog, forms, media
from lib.store import Store
from lib.ui import PAGE_FILES
from tests.support import apptest, media_samples
from tests.support.simulator import simulator_requests


@pytest.fixture
def env(app_env):
    return app_env


def open_page(task_type):
    return apptest.open_page(PAGE_FILES[task_type])


def generate(at):
    return at.button(key=at.button[-1].key).click().run()


def upload(at, key, name, data, mime):
    at.file_uploader(key=key).set_value((name, data, mime))
    return at.run()


def shown(at) -> str:
    return " ".join(e.value for kind in ("caption", "warning", "error", "info") for e in getattr(at, kind))


def unescaped(elements) -> list[str]:
    """What a markdown element reads as on the page (its source escapes punctuation)."""
    return [e.value.replace("\\", "") for e in elements]


def images(at) -> list:
    return at.get("image")


# ---------------------------------------------------------------- item 9: number ranges across a fan-out

def test_a_fan_out_offers_only_the_durations_every_picked_model_takes(env):
    at = open_page("text_to_video")
    duration = lambda: at.number_input(key="text_to_video_gen4.5_duration")
    assert (duration().proto.min, duration().proto.max) == (2, 10)
    at.multiselect(key="text_to_video_compare_models").select("gemini_omni_flash").run()
    # gemini_omni_flash takes 3–10 s: the field offers 3–10, and says so.
    assert (duration().proto.min, duration().proto.max) == (3, 10)
    assert duration().label == "Duration (s): 3–10"
    at.multiselect(key="text_to_video_compare_models").select("veo3.1").run()
    # veo3.1 takes a choice of 4, 6 or 8, not a range: the form still says what it will send it.
    duration().set_value(5).run()
    assert any("veo3.1 does not take every value above: duration (s) 5 → 6" in i.value for i in at.info)


def test_a_number_outside_the_range_a_new_model_takes_moves_into_it_and_says_so(env):
    at = open_page("text_to_video")
    at.number_input(key="text_to_video_gen4.5_duration").set_value(2).run()
    at.multiselect(key="text_to_video_compare_models").select("gemini_omni_flash").run()
    assert at.number_input(key="text_to_video_gen4.5_duration").value == 3
    assert "Duration (s) moved from 2 to 3: every picked model takes 3–10." in [c.value for c in at.caption]


def _submit_out_of_range():
    """A fan-out's submission given a duration outside the range both models take, as a client
    that ignores the widget's bounds would send it: the form's own last check."""
    from lib import catalog, forms, ui

    ctx = ui.setup_page("Text to Video")
    tt = catalog.task_type("text_to_video")
    plans = forms.plan_submissions(tt.model("gen4.5"), [tt.model("gemini_omni_flash")], [], [])
    values = {"promptText": "A kite over dunes", "ratio": "1280:720", "duration": 2}
    for plan in plans:  # as the form does: what each model is sent where it differs
        plan.overrides = forms.adjustments(plan.model, values)
    forms._submit(ctx, tt, plans, values, {}, [])


def test_a_fan_out_with_a_number_outside_the_shared_range_sends_nothing(env):
    at = AppTest.from_function(_submit_out_of_range, default_timeout=60).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "Duration (s) must be between 3 and 10 (got 2)" in errors and "Nothing was sent" in errors
    assert simulator_requests(creates_only=True) == [] and Store(env / "dashboard.db").recent_tasks() == []


def _with_duration(model: catalog.Model, lo: float, hi: float) -> catalog.Model:
    fields = tuple(dataclasses.replace(f, min=lo, max=hi) if f.name == "duration" else f for f in model.fields)
    return dataclasses.replace(model, id=f"{model.id}_{lo:g}", fields=fields)


def test_ranges_that_share_no_value_say_which_models_disagree_and_what_each_takes():
    tt = catalog.task_type("text_to_video")
    gen45, long_only = tt.model("gen4.5"), _with_duration(tt.model("gemini_omni_flash"), 12, 20)
    [issue] = forms.range_conflicts([gen45, long_only, gen45])  # a seed fan-out names a model once
    assert issue.field == "duration"
    assert issue.message == ("Duration (s): no value suits every picked model (gen4.5 takes 2–10, "
                             "gemini_omni_flash_12 takes 12–20). Run them in separate comparisons.")
    # The form keeps the chosen model's own range then, and the value it has is not called wrong twice.
    [field] = [f for f, _ in forms.form_fields(gen45, [long_only]) if f.name == "duration"]
    assert (field.min, field.max) == (2, 10)
    assert forms.range_issues([field], [gen45, long_only], {"duration": 5}) == [issue]
    # Ranges that meet are no conflict: the form offers where they meet.
    assert forms.range_conflicts([gen45, _with_duration(gen45, 8, 30)]) == []
    [field] = [f for f, _ in forms.form_fields(gen45, [_with_duration(gen45, 8, 30)]) if f.name == "duration"]
    assert (field.min, field.max) == (8, 10)


# ---------------------------------------------------------------- item 11: ranges in the labels

@pytest.mark.parametrize("task_type, key, label", [
    ("text_to_video", "text_to_video_gen4.5_duration", "Duration (s): 2–10"),
    ("sound_effect", "sound_effect_eleven_text_to_sound_v2_duration", "Duration (s): 0.5–30 (optional)"),
    ("character_performance", "character_performance_act_two_expressionIntensity",
     "Expression intensity: 1–5 (optional)"),
])
def test_number_fields_show_the_range_the_contract_gives(env, task_type, key, label):
    at = open_page(task_type)
    assert at.number_input(key=key).label == label


def test_range_text_reads_as_a_person_writes_it():
    seed = catalog.find_model("text_to_video", "gen4.5").field("seed")
    assert catalog.range_text(seed) == f"0–{catalog.SEED_MAX:,}"
    assert catalog.range_text(catalog.find_model("text_to_video", "kling3.0_pro").field("cfgScale")) == ""


# ---------------------------------------------------------------- item 11: previews of uploads

def test_an_uploaded_image_is_previewed_under_its_widget_with_its_name_as_text(env):
    at = open_page("image_to_video")
    hostile = "<img src=x onerror=alert(1)>**fox**.png"
    at = upload(at, "image_to_video_promptImage_file", hostile, media_samples.png(640, 360), "image/png")
    assert not at.exception
    assert len(images(at)) == 1
    caption = next(c.value for c in at.caption if "fox" in c.value)
    assert "\\<img" in caption and "\\*\\*fox\\*\\*" in caption  # escaped: shown as typed, not as markup
    assert "KB" in caption


def test_an_uploaded_video_is_previewed_as_a_frame_not_a_player(env):
    at = open_page("video_to_video")
    at = upload(at, "video_to_video_videoUri_file", "street.mp4", media_samples.mp4(), "video/mp4")
    assert not at.exception
    assert len(images(at)) == 1 and not at.get("video")
    assert any(c.startswith("A frame of street.mp4 · ") for c in unescaped(at.caption))


def test_an_uploaded_sound_gets_a_player(env):
    at = open_page("lip_sync")
    at = upload(at, "lip_sync_audio_file", "line.wav", media_samples.wav(), "audio/wav")
    assert not at.exception
    assert len(at.get("audio")) == 1 and any(c.startswith("line.wav · ") for c in unescaped(at.caption))


def test_an_upload_that_will_not_do_gets_no_preview(env):
    at = open_page("image_to_video")
    at = upload(at, "image_to_video_promptImage_file", "fox.png", b"not a picture at all" * 40, "image/png")
    assert not at.exception and not images(at)
    assert not any("fox.png" in c for c in unescaped(at.caption))  # why is said under the field on Generate


def test_a_thumbnail_is_small_and_never_made_from_an_image_over_the_pixel_limit():
    small = media.thumbnail(media_samples.png(1280, 720))
    assert media.image_size(small) == (media.PREVIEW_BOX, 180)
    assert media.thumbnail(media_samples.noisy_png(7000)) is None  # 49 MP: its header alone refuses it
    assert media.thumbnail(b"\x89PNG\r\n\x1a\n" + b"\0" * 100) is None


# ---------------------------------------------------------------- item 11: the image's shape and the output's

def test_an_image_of_another_shape_than_the_output_is_warned_about(env):
    at = open_page("image_to_video")
    at = upload(at, "image_to_video_promptImage_file", "room.png", media_samples.png(1024, 768), "image/png")
    assert at.selectbox(key="image_to_video_gen4.5_ratio").value == "1280:720"
    assert ("The image is 4:3 (1024×768) but the video will be 16:9 (1280:720): it will be cropped or padded."
            in [w.value for w in at.warning])
    at.selectbox(key="image_to_video_gen4.5_ratio").select("720:1280").run()
    assert any("the video will be 9:16 (720:1280)" in w.value for w in at.warning)


def test_an_image_of_the_output_shape_is_not_warned_about(env):
    at = open_page("image_to_video")
    at = upload(at, "image_to_video_promptImage_file", "wide.png", media_samples.png(1280, 720), "image/png")
    assert not any("cropped or padded" in w.value for w in at.warning)
    # A fan-out over ratios warns about the ratios it does not fit.
    at.multiselect(key="image_to_video_gen4.5_compare_ratios").select("1280:720").select("720:1280").run()
    [warning] = [w.value for w in at.warning if "cropped or padded" in w.value]
    assert "16:9 (1280×720) but the video will be 9:16 (720:1280)" in warning and "(1280:720)" not in warning


def test_a_ratio_is_read_by_the_one_parser_the_task_page_uses_too():
    png = forms.MediaChoice(name="room.png", data=media_samples.png(1024, 768))
    # "²" is a digit to str.isdigit but not to int: such a ratio is no ratio, and warns of nothing.
    assert forms.ratio_warning(png, ["²:1"], "video") is None
    assert forms.ratio_warning(png, ["0:720", "1280:720x", "4:3"], "video") is None
    assert media.parse_ratio("1280:720") == (1280, 720) and media.parse_ratio("²:1") is None
    assert "16:9 (1280:720)" in forms.ratio_warning(png, ["1280:720"], "video")


# ---------------------------------------------------------------- earlier outputs as inputs

def _archived_image(env, prompt: str, ratio: str) -> dict:
    """A real Text to Image task on the simulator, polled and archived into static/ as the app does."""
    import time

    from lib import archive
    from lib.backend import current_backend
    from lib.poller import Poller

    at = open_page("text_to_image")
    at.text_area(key="text_to_image_promptText").input(prompt)
    at.selectbox(key="text_to_image_gen4_image_ratio").select(ratio)
    generate(at)
    store = Store(env / "dashboard.db")
    poller = Poller(store.path, [current_backend()], interval=0.2, static_dir=archive.STATIC_DIR)
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not store.archived_outputs(["image"]):
            poller.poll_once()
            poller.archive_once()
            time.sleep(0.2)
    finally:
        poller.stop()
    [output] = store.archived_outputs(["image"])
    return output


def test_earlier_outputs_picked_as_inputs_are_previewed_and_their_shape_checked(env):
    from lib import archive

    output = _archived_image(env, "A square lighthouse", "1024:1024")
    try:
        at = apptest.open_page(PAGE_FILES["image_to_video"], from_output=str(output["id"]))
        assert at.radio(key="image_to_video_promptImage_source").value == "Earlier output"
        # The archived copy, by its /app/static/ address: the server sends nothing it holds in memory.
        assert [i.proto.imgs[0].url for i in images(at)] == [archive.static_url(output["path"])]
        width, height = media.image_file_size(archive.STATIC_DIR / output["path"].rsplit("/", 1)[-1])
        assert any(f"The image is 1:1 ({width}×{height}) but the video will be 16:9 (1280:720)" in w.value
                   for w in at.warning)
        # A list input (reference images) previews every output picked for it.
        at = open_page("text_to_image")
        at.radio(key="text_to_image_referenceImages_source").set_value("Earlier output").run()
        at.multiselect(key="text_to_image_referenceImages_earlier").select(output["id"]).run()
        assert [i.proto.imgs[0].url for i in images(at)] == [archive.static_url(output["path"])]
    finally:
        archive.delete_archived(output["path"])
