"""End to end in a real Chromium against a real `streamlit run` on the built-in simulator."""
import csv
import io
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_text_to_video_plays_on_history_without_a_click(dashboard, page):
    page.goto(f"{dashboard}/Text_to_Video")
    page.get_by_role("textbox", name="Prompt").fill("A paper boat drifting down a rainy street")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("submitted to gen4.5").wait_for(timeout=20_000)
    _screenshot(page, "text_to_video_submitted")

    page.goto(f"{dashboard}/History")
    page.get_by_text("A paper boat drifting down a rainy street").wait_for(timeout=20_000)
    # No clicks from here: the page refreshes itself until the archived video is embedded.
    playing = _wait_for_playing_video(page)
    assert playing["error"] is None and playing["time"] > 0.2
    assert playing["width"] / playing["height"] == 16 / 9 or abs(playing["width"] / playing["height"] - 16 / 9) < 0.02
    assert page.get_by_text("SUCCEEDED").count() >= 1
    _screenshot(page, "history_with_video")

    # The CSV export downloads in the browser, with the task in it.
    with page.expect_download(timeout=20_000) as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert [(r["prompt"], r["status"], r["model"]) for r in rows] == [
        ("A paper boat drifting down a rainy street", "SUCCEEDED", "gen4.5")]


def _wait_for_playing_video(page, timeout=45_000):
    video = page.locator("video").first
    video.wait_for(state="attached", timeout=timeout)
    assert "/app/static/" in video.get_attribute("src")
    # History's players fetch nothing until played (a poster shows meanwhile); play() loads the video.
    assert video.get_attribute("preload") == "none"
    return page.evaluate("""async () => {
        const v = document.querySelector('video');
        v.muted = true;
        await v.play();
        await new Promise(r => setTimeout(r, 800));
        return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight, error: v.error};
    }""")


def test_uploaded_image_becomes_a_video_that_plays_on_history(dashboard, page, tmp_path):
    from tests.support import media_samples

    image = tmp_path / "portrait.png"
    image.write_bytes(media_samples.png(90, 160, (30, 120, 200)))
    page.goto(f"{dashboard}/Image_to_Video?teammate=Dee")
    page.get_by_role("textbox", name="Prompt").fill("The portrait slowly smiles")
    page.locator("input[type=file]").first.set_input_files(str(image))
    page.get_by_text("portrait.png").wait_for(timeout=10_000)
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("submitted to gen4.5").wait_for(timeout=20_000)
    _screenshot(page, "image_to_video_submitted")

    page.goto(f"{dashboard}/History")
    page.get_by_text("The portrait slowly smiles").wait_for(timeout=20_000)
    playing = _wait_for_playing_video(page)
    assert playing["error"] is None and playing["time"] > 0.2
    _screenshot(page, "history_image_to_video")


def test_text_to_speech_audio_plays_on_history(dashboard, page):
    page.goto(f"{dashboard}/Text_to_Speech")
    page.get_by_role("textbox", name="Prompt").fill("Welcome aboard, the harbour tour starts now.")
    # The voice is required; the form starts on the model's first preset.
    assert page.get_by_role("combobox", name="Preset").input_value()
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("submitted to").wait_for(timeout=20_000)
    _screenshot(page, "text_to_speech_submitted")

    page.goto(f"{dashboard}/History")
    page.get_by_text("Welcome aboard, the harbour tour starts now.").wait_for(timeout=20_000)
    audio = page.locator("audio").first
    audio.wait_for(state="attached", timeout=45_000)
    assert "/app/static/" in audio.get_attribute("src")
    page.wait_for_function("document.querySelector('audio').readyState >= 2", timeout=20_000)
    played = page.evaluate("""async () => {
        const a = document.querySelector('audio');
        a.muted = true;
        await a.play();
        await new Promise(r => setTimeout(r, 800));
        return {time: a.currentTime, duration: a.duration, error: a.error};
    }""")
    assert played["error"] is None and played["time"] > 0.2 and played["duration"] > 0.5
    _screenshot(page, "history_with_speech")
