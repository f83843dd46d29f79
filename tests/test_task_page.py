"""The Task page shows a request as a person reads it: each input under the label the task's own
model gives it, values in words, media inputs as thumbnails with where they came from, times in
the viewer's own time zone; the raw request is still there, folded away."""
from __future__ import annotations

import hashlib

import pytest
from streamlit.testing.v1 import AppTest

from lib import media, task_view, timefmt
from lib.store import Store
from tests.support.apptest import open_page
from tests.support.history import insert_output, insert_task
from tests.support.media_samples import mp4, noisy_png, png, wav

TASK_PAGE = "pages/12_Task.py"
WJ = "\u2060"  # the invisible word joiner ui.plain puts where an address (an @) would link


def _stash(store: Store, data: bytes, mime: str, extension: str) -> str:
    """An uploaded input as the store keeps it: a file in the input stash, named by its content."""
    name = hashlib.sha256(data).hexdigest() + extension
    store.stash_dir.mkdir(parents=True, exist_ok=True)
    (store.stash_dir / name).write_bytes(data)
    return f"stored:{mime}:{name}"


def _open(task_id: int) -> AppTest:
    at = open_page(TASK_PAGE, task=str(task_id))
    assert not at.exception, at.exception
    return at


def _markdown(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown).replace("\\", "").replace(WJ, "")


def _images(at: AppTest) -> list:
    return at.get("image")


def test_a_text_to_video_request_reads_as_labelled_fields(app_env):
    store = Store(app_env / "dashboard.db")
    task = insert_task(store, model="veo3.1", request={
        "model": "veo3.1", "promptText": "a heron lifts off", "ratio": "1280:720", "duration": 8, "audio": False,
        "seed": 4242})
    at = _open(task)
    shown = _markdown(at)
    for line in ("**Ratio:** 1280 × 720 (16:9, landscape)", "**Duration:** 8 s", "**Generate audio:** no",
                 "**Seed:** 4242"):
        assert line in shown, shown
    assert [t.value for t in at.text] == ["a heron lifts off"]  # the prompt stands alone, as text
    [raw] = at.expander
    assert raw.label == "Request as sent to the API"
    assert '"seed": 4242' in raw.json[0].value  # the raw request is inside the folded expander
    assert len(at.json) == 1  # and nowhere else
    store.close()


def test_an_uploaded_first_frame_is_a_thumbnail_marked_uploaded(app_env):
    store = Store(app_env / "dashboard.db")
    image = _stash(store, png(320, 180), "image/png", ".png")
    task = insert_task(store, task_type="image_to_video", model="gen4_turbo", request={
        "model": "gen4_turbo", "promptText": "pan across", "promptImage": image, "ratio": "1280:720", "duration": 5})
    at = _open(task)
    shown = _markdown(at)
    assert "**First frame image** · uploaded file" in shown and "**Duration:** 5 s" in shown
    assert len(_images(at)) == 1  # the stashed upload, drawn as a thumbnail
    store.close()


def test_an_earlier_output_as_input_says_output_of_and_shows_it(app_env):
    store = Store(app_env / "dashboard.db")
    frame = png(320, 180, colour=(20, 120, 200))
    first = insert_task(store, task_type="text_to_image", model="gen4_image",
                        request={"model": "gen4_image", "promptText": "a harbour", "ratio": "1360:768"})
    output = insert_output(store, first, path="static/harbour-test.png", mime="image/png", size=len(frame))
    store.conn.execute("UPDATE outputs SET sha256 = ? WHERE id = ?", (hashlib.sha256(frame).hexdigest(), output))
    task = insert_task(store, task_type="image_to_video", model="gen4.5", parent_task_id=first, request={
        "model": "gen4.5", "promptText": "the boats drift", "promptImage": _stash(store, frame, "image/png", ".png"),
        "ratio": "1280:720"})
    at = _open(task)
    assert f"**First frame image** · output of #{first}" in _markdown(at)
    # The earlier task's archived output, served like every output (not the stash's copy).
    assert [i.proto.imgs[0].url for i in _images(at)] == ["/app/static/harbour-test.png"]
    store.close()


def test_lip_sync_audio_is_its_own_speech_field_not_veos_switch(app_env):
    store = Store(app_env / "dashboard.db")
    task = insert_task(store, task_type="lip_sync", model="gen4", request={
        "model": "gen4", "input": _stash(store, png(200, 200), "image/png", ".png"),
        "audio": _stash(store, wav(0.5), "audio/wav", ".wav"), "seed": 7})
    at = _open(task)
    shown = _markdown(at)
    assert "**Face (image or video)** · uploaded file" in shown
    assert "**Speech audio** · uploaded file" in shown and "Generate audio" not in shown
    assert "**Seed:** 7" in shown
    assert len(_images(at)) == 1 and len(at.get("audio")) == 1  # the face's thumbnail, the speech's player
    store.close()


def test_an_address_elsewhere_is_text_never_fetched(app_env):
    store = Store(app_env / "dashboard.db")
    task = insert_task(store, task_type="image_to_video", model="gen4_turbo", request={
        "model": "gen4_turbo", "promptText": "x", "promptImage": "https://cdn.example/frames/k.png",
        "ratio": "1280:720"})
    at = _open(task)
    assert not _images(at)
    captions = " ".join(c.value for c in at.caption).replace("\\", "").replace(WJ, "")
    assert "https://cdn.example/frames/k.png" in captions
    store.close()


def test_without_a_browser_zone_times_are_utc_and_say_so(app_env):
    store = Store(app_env / "dashboard.db")
    task = insert_task(store)  # created 1 Mar 2026, 00:00:00 UTC
    at = _open(task)
    shown = _markdown(at)
    assert "**Created:** 1 Mar 2026, 00:00:00 (UTC)" in shown
    assert any(c.value.startswith("Times are UTC") for c in at.caption)
    store.close()


@pytest.mark.parametrize("name, offset, expected", [
    ("Europe/Paris", -60, "1 Dec 2026, 21:40:05 (CET)"),
    ("Europe/Paris", -120, "1 Dec 2026, 21:40:05 (CET)"),  # the name wins: it knows the date's own offset
    ("../../etc/passwd", -330, "2 Dec 2026, 02:10:05 (UTC+05:30)"),  # a name that is no zone: its offset
    (None, 180, "1 Dec 2026, 17:40:05 (UTC−03:00)"),
    (None, None, "1 Dec 2026, 20:40:05 (UTC)"),
    ("Mars/Olympus", 99_999, "1 Dec 2026, 20:40:05 (UTC)"),
])
def test_a_browsers_zone_is_checked_before_use(name, offset, expected):
    assert timefmt.local("2026-12-01T20:40:05.123Z", timefmt.zone_of(name, offset)) == expected


@pytest.mark.browser
def test_times_are_in_the_browsers_own_time_zone(dashboard, page, tmp_path):
    store = Store(tmp_path / "dashboard.db")
    task = insert_task(store, prompt="a lantern festival")  # created 1 Mar 2026, 00:00:00 UTC
    store.close()
    tokyo = page.context.browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="Asia/Tokyo")
    tab = tokyo.new_page()
    tab.goto(f"{dashboard}/Task?task={task}")
    tab.get_by_text("1 Mar 2026, 09:00:00 (JST)").first.wait_for(timeout=30_000)
    assert "Asia/Tokyo" in tab.inner_text("body")  # the caption and the timeline's heading name the zone
    tab.get_by_text("Request as sent to the API").click()  # the raw request, folded until asked
    tab.get_by_text('"promptText"').first.wait_for(timeout=10_000)
    tokyo.close()


def test_a_last_frame_and_a_tagged_reference_say_so(app_env):
    store = Store(app_env / "dashboard.db")
    first, last = (_stash(store, png(160, 90, colour=c), "image/png", ".png") for c in ((1, 2, 3), (4, 5, 6)))
    frames = insert_task(store, task_type="image_to_video", model="gen4_turbo", request={
        "model": "gen4_turbo", "promptText": "x", "ratio": "1280:720",
        "promptImage": [{"uri": first, "position": "first"}, {"uri": last, "position": "last"}]})
    shown = _markdown(_open(frames))
    assert "**First frame image** · uploaded file" in shown and "**Last frame image** · uploaded file" in shown
    tagged = insert_task(store, task_type="text_to_image", model="gen4_image", request={
        "model": "gen4_image", "promptText": "@cat on a sofa", "ratio": "1360:768",
        "referenceImages": [{"uri": first, "tag": "cat"}]})
    assert "**Reference images @cat** · uploaded file" in _markdown(_open(tagged))
    store.close()


def test_an_uploaded_video_shows_a_poster_and_a_broken_image_says_so(app_env):
    store = Store(app_env / "dashboard.db")
    video = insert_task(store, task_type="video_upscale", model="upscale_v1", request={
        "model": "upscale_v1", "videoUri": _stash(store, mp4(1.5), "video/mp4", ".mp4")})
    at = _open(video)
    assert "**Input video** · uploaded file" in _markdown(at)
    [poster] = _images(at)  # a frame of it, made without writing beside the stash
    assert not [p for p in store.stash_dir.iterdir() if p.suffix != ".mp4"]
    broken = insert_task(store, task_type="image_to_video", model="gen4_turbo", request={
        "model": "gen4_turbo", "promptText": "x", "ratio": "1280:720",
        "promptImage": _stash(store, b"<svg onload=alert(1)>" * 200, "image/png", ".png")})
    at = _open(broken)
    assert not _images(at) and any("cannot be shown" in c.value for c in at.caption)
    store.close()


def test_an_image_over_the_pixel_limit_is_refused_by_its_header_as_the_form_refuses_it(app_env):
    store = Store(app_env / "dashboard.db")
    huge = noisy_png(7000)  # 49 MP, a PNG Pillow would decode (its own bomb limit is 89 MP)
    assert media.over_pixel_limit(huge)  # the limit the form's upload check and preview hold to
    task = insert_task(store, task_type="image_to_video", model="gen4_turbo", request={
        "model": "gen4_turbo", "promptText": "x", "ratio": "1280:720",
        "promptImage": _stash(store, huge, "image/png", ".png")})
    at = _open(task)
    assert not _images(at) and any("cannot be shown" in c.value for c in at.caption)
    store.close()


def test_values_read_in_words_whatever_the_request_holds():
    speech = {"task_type": "text_to_speech", "model": "eleven_v3", "request": {
        "model": "eleven_v3", "promptText": "hello", "voice": {"type": "runway-preset", "presetId": "Maya"},
        "useSpeakerBoost": True, "speed": 1.25, "applyTextNormalization": "auto"}}
    assert task_view.request_fields(speech) == [
        ("Voice", "runway-preset, Preset: Maya"), ("Apply text normalization", "auto"), ("Speed", "1.25"),
        ("Use speaker boost", "yes")]
    odd = {"task_type": "text_to_video", "model": "retired_model", "request": {
        "model": "retired_model", "ratio": "²:1", "duration": 6, "extraThing": [1, 2],
        "contentModeration": {"publicFigureThreshold": "low"}}}
    assert task_view.request_fields(odd) == [  # a model the catalog no longer has: labels from the names
        ("Public figure threshold", "low"), ("Duration", "6 s"), ("Extra thing", "1; 2"), ("Ratio", "²:1")]
