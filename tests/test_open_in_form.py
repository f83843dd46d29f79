"""Open in form: a task's own page opens with its model, prompt, options and media inputs filled
in, ready to edit and send; the new task's parent is the original. In a real Chromium after a
safety failure, and in AppTest for a media input."""
import sqlite3

from lib import media
from lib.store import Store
from lib.tasks import submit_task
from lib.ui import PAGE_FILES
from tests.support import media_samples
from tests.support.apptest import open_page
from tests.test_browser import _screenshot


def test_a_failed_task_opens_in_its_form_to_edit_and_send_again(dashboard, page, tmp_path):
    page.goto(f"{dashboard}/Text_to_Video?teammate=Maya")
    page.get_by_role("combobox", name="Ratio").click()
    page.get_by_role("option", name="720:1280").click()
    page.get_by_role("spinbutton", name="Duration (s)").fill("8")
    page.get_by_role("textbox", name="Prompt").fill("A storm over a lighthouse #unsafe")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("submitted to").wait_for(timeout=20_000)

    page.get_by_test_id("stSidebar").get_by_role("link", name="History", exact=True).click()
    page.get_by_text("FAILED").first.wait_for(timeout=30_000)
    page.get_by_role("link", name="Open in form").click()
    page.wait_for_url("**/Text_to_Video?**from_task=1**", timeout=10_000)
    prompt = page.get_by_role("textbox", name="Prompt")
    prompt.wait_for(timeout=10_000)
    assert prompt.input_value() == "A storm over a lighthouse #unsafe"
    assert page.get_by_role("combobox", name="Ratio").input_value() == "720:1280"
    assert page.get_by_role("spinbutton", name="Duration (s)").input_value() == "8"
    page.get_by_text("Filled in from task #1").wait_for()
    _screenshot(page, "open_in_form")

    prompt.fill("A calm sea under a lighthouse")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Task #2 submitted").wait_for(timeout=20_000)
    with sqlite3.connect(tmp_path / "dashboard.db") as db:
        row = db.execute("SELECT parent_task_id, teammate, json_extract(request_json, '$.promptText'), "
                         "json_extract(request_json, '$.ratio'), json_extract(request_json, '$.duration') "
                         "FROM tasks WHERE id = 2").fetchone()
    assert row == (1, "Maya", "A calm sea under a lighthouse", "720:1280", 8)


def test_a_media_input_is_sent_again_as_it_was(app_env):
    from lib.backend import current_backend

    store = Store(app_env / "dashboard.db")
    image = media.encode_data_uri("image/png", media_samples.png(64, 36, (200, 40, 40)))
    original = submit_task(store, current_backend(), task_type="image_to_video", model_id="gen4.5",
                           inputs={"promptText": "The red card flips", "promptImage": image, "ratio": "1280:720",
                                   "duration": 5}, teammate="Ana")
    assert original.ok
    at = open_page(PAGE_FILES['image_to_video'], from_task=str(original.task_id))
    assert not at.exception
    assert at.text_area(key="image_to_video_promptText").value == "The red card flips"
    assert at.radio(key="image_to_video_promptImage_source").value == "As in the original"
    at.text_area(key="image_to_video_promptText").input("The red card spins").run()
    at.button(key="image_to_video_submit").click().run()
    assert not at.exception and any("submitted to" in s.value for s in at.success)
    [child] = [t for t in store.recent_tasks() if t["id"] != original.task_id]
    sent = store.restore_request(child["request"])
    assert child["parent_task_id"] == original.task_id
    assert sent["promptImage"] == image and sent["promptText"] == "The red card spins"
