"""Bad input, case by case: each is answered with a clear message next to the field
it concerns, and nothing is sent (no request reaches the simulator, no row is
written). Also a missing or rejected key, an empty database file and a database
from an older schema."""
from __future__ import annotations

import io
import json
import sqlite3

import httpx
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from lib import catalog, media
from lib.backend import current_backend
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.store import Store, migrations
from lib.tasks import submit_task
from lib.ui import HISTORY_PAGE, PAGE_FILES
from tests.support import media_samples
from tests.support.apptest import open_page
from tests.support.simulator import simulator_requests


@pytest.fixture
def env(app_env, monkeypatch):
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    return app_env


def generate(at: AppTest) -> AppTest:
    return at.button(key=at.button[-1].key).click().run()


def error_next_to(at: AppTest, key: str) -> str:
    """The error shown right after the widget `key`, in the same container: its message, or ''."""
    def find(node):
        children = getattr(node, "children", None)
        if not children:
            return None
        siblings = list(children.values()) if isinstance(children, dict) else list(children)
        for i, child in enumerate(siblings):
            if getattr(child, "key", None) == key:
                following = siblings[i + 1] if i + 1 < len(siblings) else None
                return following.value if following is not None and following.type == "error" else ""
            found = find(child)
            if found is not None:
                return found
        return None
    return (find(at.main) or "").replace("\\", "")


def nothing_sent(env) -> None:
    assert simulator_requests(creates_only=True) == []
    assert [r for r in simulator_requests() if r["path"] == "/v1/uploads"] == []
    assert Store(env / "dashboard.db").count_tasks() == 0


# ---------------------------------------------------------------- ratio and duration

@pytest.mark.parametrize("task_type, model_id, inputs, field, message", [
    ("text_to_video", "gen4.5", {"ratio": "1104:832", "duration": 5}, "ratio",
     "Ratio '1104:832' is not available for this model; choose one of 1280:720, 720:1280."),
    ("text_to_video", "gen4.5", {"ratio": "1280:720", "duration": 11}, "duration",
     "Duration (s) must be between 2 and 10 (got 11)."),
    ("text_to_video", "veo3.1", {"ratio": "1280:720", "duration": 5}, "duration",
     "Duration (s) 5 is not available for this model; choose one of 4, 6, 8."),
    ("image_to_video", "gen4_turbo", {"ratio": "1920:1080", "promptImage": "https://example.com/a.png"}, "ratio",
     "Ratio '1920:1080' is not available for this model"),
    ("sound_effect", "eleven_text_to_sound_v2", {"duration": 45.0}, "duration",
     "Duration (s) must be between 0.5 and 30 (got 45)."),
])
def test_a_ratio_or_duration_the_model_does_not_take_is_refused_before_sending(
        store, fake_backend, fake_runway, task_type, model_id, inputs, field, message):
    result = submit_task(store, fake_backend, task_type=task_type, model_id=model_id,
                         inputs={"promptText": "A harbour at night", **inputs})
    assert [(i.field, i.message[:len(message)]) for i in result.issues] == [(field, message)]
    assert result.task_id is None and store.count_tasks() == 0 and fake_runway.requests == []


@pytest.mark.parametrize("model", [m for m in catalog.task_type("text_to_video").models if m.field("ratio")],
                         ids=lambda m: m.id)
def test_the_form_offers_only_the_ratios_and_durations_of_the_chosen_model(env, model):
    at = open_page(PAGE_FILES["text_to_video"])
    at.selectbox(key="text_to_video_model").select(model.id).run()
    # An optional ratio starts with "(model default)"; after it, exactly the model's own.
    options = at.selectbox(key=f"text_to_video_{model.id}_ratio").options
    assert options[-len(model.ratios):] == list(model.ratios)
    assert len(options) == len(model.ratios) + (0 if model.field("ratio").required else 1)
    duration = model.field("duration")
    if duration is None:
        return
    if duration.kind == "choice":
        assert at.selectbox(key=f"text_to_video_{model.id}_duration").options[-len(duration.choices):] == [
            str(c) for c in duration.choices]
    elif duration.kind in ("int", "number") and duration.min is not None:
        widget = at.number_input(key=f"text_to_video_{model.id}_duration")
        assert (widget.min, widget.max) == (duration.min, duration.max)


# ---------------------------------------------------------------- prompt

@pytest.mark.parametrize("prompt, message", [
    ("", "Prompt is required."),
    ("   \n\t  ", "Prompt is required."),
    # 600 characters get past the field's own 1000-character cap, but Runway counts UTF-16 units: 1200.
    ("🎬" * 600, "Prompt is 1200 characters; the limit is 1000."),
], ids=["empty", "whitespace", "too long in UTF-16"])
def test_a_bad_prompt_is_answered_under_the_prompt_and_nothing_is_sent(env, prompt, message):
    at = open_page(PAGE_FILES["text_to_video"])
    at.text_area(key="text_to_video_promptText").input(prompt)
    generate(at)
    assert not at.exception
    assert error_next_to(at, "text_to_video_promptText") == message
    assert "Nothing was sent" in " ".join(e.value for e in at.error)
    nothing_sent(env)


def test_the_prompt_field_stops_at_the_limit_and_a_longer_prompt_is_refused_anyway(env, store, fake_backend,
                                                                                  fake_runway):
    at = open_page(PAGE_FILES["text_to_video"])
    assert at.text_area(key="text_to_video_promptText").max_chars == catalog.PROMPT_MAX == 1000
    result = submit_task(store, fake_backend, task_type="text_to_video", model_id="gen4.5",
                         inputs={"promptText": "x" * 1001, "ratio": "1280:720", "duration": 5})
    assert [(i.field, i.message) for i in result.issues] == [
        ("promptText", "Prompt is 1001 characters; the limit is 1000.")]
    assert fake_runway.requests == [] and store.count_tasks() == 0


# ---------------------------------------------------------------- files

def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


PNG = media_samples.png()
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>'

UPLOADS = {  # name, bytes, kinds, the problem check_upload reports (start of the message); None: accepted
    "png": ("photo.png", PNG, ("image",), None),
    "jpeg": ("photo.jpeg", _jpeg(), ("image",), None),
    "mp4": ("clip.mp4", media_samples.mp4(), ("video",), None),
    "wav as audio": ("line.wav", media_samples.wav(), ("audio",), None),
    "mp4 where image or video": ("clip.mp4", media_samples.mp4(), ("image", "video"), None),
    "empty": ("photo.png", b"", ("image",), "photo.png is empty."),
    "wrong type: a sound for an image": ("line.wav", media_samples.wav(), ("image",),
                                         "line.wav: .wav is not accepted here; use .jpeg, .jpg, .png or .webp."),
    "wrong type renamed": ("photo.png", media_samples.wav(), ("image",),
                           "photo.png contains audio (WAV), not image."),
    "html named .png": ("photo.png", HTML, ("image",),
                        "photo.png is not a valid image file: its contents are not JPEG, PNG or WebP data."),
    "svg": ("logo.svg", SVG, ("image",), "logo.svg: .svg is not accepted here"),
    "disallowed extension, valid body": ("photo.gif", PNG, ("image",), "photo.gif: .gif is not accepted here"),
    "allowed extension, other format": ("photo.jpg", PNG, ("image",),
                                        "photo.jpg is named as JPEG but contains PNG; rename it to .png."),
    "no extension": ("photo", PNG, ("image",), "photo: a name without an extension is not accepted here"),
    "truncated png": ("photo.png", PNG[:len(PNG) // 2], ("image",), "photo.png is incomplete"),
    "truncated jpeg": ("photo.jpg", _jpeg()[:-200], ("image",), "photo.jpg is incomplete"),
    "truncated mp4": ("clip.mp4", media_samples.mp4()[:-1000], ("video",), "clip.mp4 is incomplete"),
    "truncated wav": ("line.wav", media_samples.wav()[:-1000], ("audio",), "line.wav is incomplete"),
    "path in the name": ("../../etc/passwd.png", PNG, ("image",), None),
}


@pytest.mark.parametrize("case", list(UPLOADS))
def test_check_upload_names_what_is_wrong_with_a_file(case):
    name, data, kinds, problem = UPLOADS[case]
    problems = media.check_upload(name, data, kinds)
    if problem is None:
        assert problems == []
    else:
        assert problems and problems[0].startswith(problem), problems
        assert "/" not in problems[0].split(" ")[0]  # a name is shown, never a path


def test_a_file_over_the_upload_limit_is_refused_with_both_sizes(monkeypatch):
    monkeypatch.setattr(media, "UPLOAD_MAX_BYTES", 2 * media.MB)
    assert media.check_upload("big.png", PNG + b"\0" * (3 * media.MB), ("image",)) == [
        "big.png is 3.0 MB; the limit is 2.0 MB."]


FORM_UPLOADS = {  # file given to Image to Video's first-frame field -> what is said under the field
    "a sound renamed .png": (("photo.png", media_samples.wav(), "image/png"), "photo.png is not a valid image file"),
    "html renamed .png": (("photo.png", HTML, "image/png"), "photo.png is not a valid image file"),
    "a png named .jpg": (("photo.jpg", PNG, "image/jpeg"), "photo.jpg is named as JPEG but contains PNG"),
    "a truncated png": (("photo.png", PNG[:len(PNG) // 2], "image/png"), "photo.png is incomplete"),
    "an empty file": (("photo.png", b"", "image/png"), "photo.png is not a valid image file"),
    "too large": (("photo.png", media_samples.noisy_png(64), "image/png"), "photo.png is 12 KB; the limit is 10 KB"),
}


@pytest.mark.parametrize("case", list(FORM_UPLOADS))
def test_a_bad_file_is_answered_under_its_field_and_nothing_is_sent(env, monkeypatch, case):
    upload, message = FORM_UPLOADS[case]
    if case == "too large":
        monkeypatch.setattr(media, "UPLOAD_MAX_BYTES", 10 * 1024)
    at = open_page(PAGE_FILES["image_to_video"])
    at.text_area(key="image_to_video_promptText").input("The fox turns its head")
    at.file_uploader(key="image_to_video_promptImage_file").set_value(upload)
    generate(at)
    assert not at.exception
    shown = error_next_to(at, "image_to_video_promptImage_file")
    assert shown.startswith(f"First frame image: {message}"), shown
    nothing_sent(env)


# ---------------------------------------------------------------- URLs

@pytest.mark.parametrize("url", ["http://example.com/clip.mp4", "ftp://example.com/clip.mp4", "file:///etc/passwd",
                                 "javascript:alert(1)"])
def test_a_url_that_is_not_https_is_refused_under_its_field(env, url):
    at = open_page(PAGE_FILES["video_upscale"])
    at.radio(key="video_upscale_videoUri_source").set_value("HTTPS URL")
    at.run()
    at.text_input(key="video_upscale_videoUri_url").input(url)
    generate(at)
    assert not at.exception
    scheme = url.split(":", 1)[0]
    assert error_next_to(at, "video_upscale_videoUri_url") == (
        f"Input video: only HTTPS URLs are accepted (got {scheme}:).")
    nothing_sent(env)


# ---------------------------------------------------------------- the key

def test_a_missing_or_blank_key_means_the_simulator_and_the_pages_say_so(env, monkeypatch):
    monkeypatch.setenv("RUNWAYML_API_SECRET", "   ")
    assert current_backend().is_simulator
    at = open_page("app.py")
    assert any("No `RUNWAYML_API_SECRET` is set" in i.value for i in at.sidebar.info)


@pytest.fixture
def rejected_key(env, monkeypatch):
    """A live-style backend whose server does not accept the key the dashboard has."""
    server = SimulatorServer(SimulatorConfig(state_dir=env / "live", pending_seconds=0.2, run_seconds=0.4)).start()
    monkeypatch.setenv("RUNWAYML_BASE_URL", server.url)
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_" + "0" * 128)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield server
    server.stop()


def test_a_rejected_key_is_explained_on_the_home_page(rejected_key):
    at = open_page("app.py")
    assert not at.exception
    assert "Runway rejected the API key. Check RUNWAYML_API_SECRET." in [e.value.replace("\\", "") for e in at.error]
    assert {m.label: m.value for m in at.metric}["Credit balance"] == "—"


def test_a_rejected_key_is_explained_on_the_form_and_nothing_is_created(rejected_key, env):
    at = open_page(PAGE_FILES["text_to_video"])
    at.text_area(key="text_to_video_promptText").input("A lighthouse at dawn")
    generate(at)
    assert not at.exception
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "Runway rejected the API key. Check RUNWAYML_API_SECRET." in errors
    [task] = Store(env / "dashboard.db").recent_tasks()
    assert (task["submit_state"], task["status"]) == ("rejected", "FAILED")
    assert rejected_key.simulator.balance() == 10000  # nothing was created or charged
    [create] = [r for r in rejected_key.simulator.request_log if r["method"] == "POST"]
    assert create["status"] == 401


# ---------------------------------------------------------------- the database

def test_an_empty_database_file_is_set_up_and_every_page_says_there_is_nothing_yet(env):
    (env / "dashboard.db").write_bytes(b"")
    assert "No tasks yet" in " ".join(i.value for i in open_page("app.py").info)
    assert "No tasks yet" in " ".join(i.value for i in open_page(HISTORY_PAGE).info)
    store = Store(env / "dashboard.db")
    assert store.count_tasks() == 0 and migrations.pending(store.db) == []


def test_a_database_in_a_folder_that_does_not_exist_yet_is_created(env, monkeypatch):
    monkeypatch.setenv("DASHBOARD_DB", str(env / "new" / "team" / "dashboard.db"))
    at = open_page("app.py")
    assert not at.exception
    assert (env / "new" / "team" / "dashboard.db").exists()


def _first_schema_only(path) -> None:
    """A database as the first release left it: only m001 applied, with a finished task in it."""
    from sqlite_utils import Database

    db = Database(path)
    names = [m.name for m in migrations._migrations]
    migrations.apply(db, stop_before=names[1:] or None)
    assert [m.name for m in migrations.applied(db)] == ["m001_tasks"]
    body = {"model": "gen4.5", "promptText": "A lighthouse from the first release", "ratio": "1280:720",
            "duration": 5}
    db["tasks"].insert({"id": 1, "task_uuid": "0b5d-old", "backend": "https://elsewhere.example",
                        "task_type": "text_to_video", "model": "gen4.5", "endpoint": "/v1/text_to_video",
                        "request_json": json.dumps(body), "submit_state": "submitted", "status": "SUCCEEDED",
                        "api_status": "SUCCEEDED", "teammate": "ana", "cost_credits": 60,
                        "created_at": "2026-10-01T10:00:00.000Z", "finished_at": "2026-10-01T10:01:00.000Z"})
    db["outputs"].insert({"id": 1, "task_id": 1, "position": 0, "url": "https://cdn.example/o.mp4",
                          "state": "archived", "path": "static/old-release-output.mp4", "mime": "video/mp4",
                          "size": 1234, "sha256": "ab" * 32})
    db["events"].insert({"task_id": 1, "at": "2026-10-01T10:01:00.000Z", "status": "SUCCEEDED",
                         "api_status": "SUCCEEDED"})
    db.conn.close()


def test_a_database_from_an_older_schema_is_migrated_with_its_rows_intact(env):
    path = env / "dashboard.db"
    _first_schema_only(path)
    before = {table: [tuple(r) for r in sqlite3.connect(path).execute(f"SELECT * FROM {table} ORDER BY id")]
              for table in ("tasks", "outputs", "events")}

    history = open_page(HISTORY_PAGE)
    assert not history.exception
    assert "A lighthouse from the first release" in " ".join(t.value for t in history.text)

    store = Store(path)
    assert migrations.pending(store.db) == []
    assert [m.name for m in migrations.applied(store.db)] == [m.name for m in migrations._migrations]
    for table, rows in before.items():
        width = len(rows[0])
        after = [tuple(r)[:width] for r in store.conn.execute(f"SELECT * FROM {table} ORDER BY id")]
        assert after == rows, table  # every old column of every old row, unchanged
    task = store.task(1)
    assert (task["status"], task["teammate"], task["request"]["promptText"]) == (
        "SUCCEEDED", "ana", "A lighthouse from the first release")


def test_the_browser_uploader_refuses_a_disallowed_extension_at_the_field(dashboard, page, tmp_path):
    """A valid PNG named .gif never reaches the dashboard: the uploader refuses it where it was dropped."""
    page.goto(f"{dashboard}/Image_to_Video")
    uploader = page.locator('[data-testid="stFileUploader"]').first
    uploader.wait_for(timeout=30_000)
    uploader.locator('input[type="file"]').set_input_files(
        files=[{"name": "photo.gif", "mimeType": "image/gif", "buffer": PNG}])
    uploader.get_by_text("image/gif files are not allowed.").wait_for(timeout=10_000)
    page.get_by_role("textbox", name="Prompt").fill("The fox turns its head")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Nothing was sent").wait_for(timeout=20_000)
    assert "First frame image is required." in page.inner_text("body")
    info = json.loads((tmp_path / "simulator" / "simulator.json").read_text())
    log = httpx.get(f"http://127.0.0.1:{info['port']}/_simulator/requests",
                    headers={"Authorization": f"Bearer {info['api_key']}"}).json()["requests"]
    assert [r for r in log if r["method"] == "POST"] == []
    assert Store(tmp_path / "dashboard.db").count_tasks() == 0
