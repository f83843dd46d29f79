"""The pages of the task types Runway added: each renders its models, refuses an empty form with
nothing sent, and a text to speech submission goes through the page to the simulator."""
import pytest

from lib import catalog
from lib.store import Store
from lib.ui import PAGE_FILES
from tests.support import apptest
from tests.support.simulator import simulator_requests

NEW = ["image_upscale", "text_to_speech", "speech_to_speech", "voice_dubbing", "voice_isolation",
       "video_to_audio", "video_to_hdr", "avatar_video"]


@pytest.fixture
def env(app_env):
    return app_env


def open_page(task_type):
    return apptest.open_page(PAGE_FILES[task_type])


@pytest.mark.parametrize("task_type", NEW)
def test_the_page_offers_its_models_and_refuses_an_empty_form(env, task_type):
    at = open_page(task_type)
    assert not at.exception, at.exception
    assert at.selectbox(key=f"{task_type}_model").options == [
        catalog.model_label(m, live_backend=False) for m in catalog.task_type(task_type).models]
    at.button(key=f"{task_type}_submit").click().run()
    assert not at.exception, at.exception
    assert "Nothing was sent" in " ".join(e.value for e in at.error)
    assert simulator_requests(creates_only=True) == []


def test_text_to_speech_submits_the_chosen_voice_through_the_page(env):
    at = open_page("text_to_speech")
    at.selectbox(key="text_to_speech_model").select("eleven_multilingual_v2").run()
    at.text_area(key="text_to_speech_promptText").input("Welcome aboard.")
    voice = at.selectbox(key="text_to_speech_eleven_multilingual_v2_voice_presetId")
    preset = voice.options[1]
    voice.select(preset)
    at.run()
    assert "up to about 1 credits" in " ".join(c.value for c in at.caption)  # 1 credit per 50 characters
    at.button(key="text_to_speech_submit").click().run()
    assert not at.exception, at.exception
    assert at.success, [e.value for e in at.error]
    [task] = Store(env / "dashboard.db").recent_tasks()
    assert task["model"] == "eleven_multilingual_v2"
    assert task["request"] == {"model": "eleven_multilingual_v2", "promptText": "Welcome aboard.",
                               "voice": {"type": "runway-preset", "presetId": preset}}
    [create] = simulator_requests(creates_only=True)
    assert create["path"] == "/v1/text_to_speech"


def test_a_model_without_a_published_price_shows_runways_estimate_once_created(env):
    at = apptest.open_page(PAGE_FILES["text_to_video"])
    at.selectbox(key="text_to_video_model").select("wan3").run()
    at.text_area(key="text_to_video_promptText").input("A kite over the dunes")
    at.run()
    assert "no published price" in " ".join(c.value for c in at.caption).lower()
    at.button(key="text_to_video_submit").click().run()
    assert not at.exception, at.exception
    assert at.success, [e.value for e in at.error]
    [task] = Store(env / "dashboard.db").recent_tasks()
    # The estimate is the simulator's own answer to the create, not a price the dashboard guessed.
    assert task["model"] == "wan3" and task["estimated_credits"] and task["estimated_credits"] > 0
    history = apptest.open_page("pages/10_History.py")
    shown = " ".join(c.value for c in history.caption)
    assert f"{task['estimated_credits']:g} credits (est.)" in shown
