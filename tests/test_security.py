"""Security: the API key never leaves the server process (SQLite, CSV, logs,
page HTML, websocket traffic, error messages); the server listens on loopback
only and calls nothing outside it; DASHBOARD_PASSWORD gates every page; the
archive writes only media, under random names, within a size cap, from http(s)
URLs the backend gave; and text from people or from Runway is shown as text,
never as HTML or active markdown."""
from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from lib import archive, auth, export
from lib.poller import Poller
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.store import Store, TaskUpdate, queries
from lib.ui import HISTORY_PAGE, PAGE_FILES
from tests.support import ROOT, media_samples
from tests.support.apptest import open_page
from tests.support.launch import start_app, stop
from tests.support.net import listening_addresses
from tests.support.simulator import SimulatorAdmin
from tests.support.simulator_env import base_env
from tests.support.waiting import wait_until

KEY = "key_" + secrets.token_hex(64)  # the shape of a real Runway key: key_ + 128 hex
PASSWORD = "correct horse battery staple " + secrets.token_hex(4)
ELSEWHERE = "https://elsewhere.example"  # a backend no poller in these tests reads

HOSTILE = {
    "prompt": "<img src=x onerror=alert(1)>**bold** [link](javascript:alert(2)) `code` $x^2$",
    "teammate": "<b>eve</b>_sly_",
    "failure": "<script>alert(3)</script> *not italic* <a href='javascript:alert(4)'>here</a>",
    "status": "**RAW**<i>x</i>",
    "last_error": "[retry](javascript:alert(5)) <svg onload=alert(6)>",
}


def _leaks(blob: bytes | str, where: str) -> list[str]:
    """Where the key, or any 16-character piece of it, appears in `blob`."""
    text = blob if isinstance(blob, str) else blob.decode("latin-1")
    pieces = [KEY] + [KEY[i:i + 16] for i in range(4, len(KEY) - 15, 8)]
    return [f"{where}: {piece}" for piece in pieces if piece in text]


def _seed_hostile_rows(store: Store) -> None:
    """Rows whose text came from people or from the API, planted to see how pages show them."""
    failed = store.record_submission(backend=ELSEWHERE, task_type="text_to_video", model="gen4.5",
                                     endpoint="/v1/text_to_video", teammate=HOSTILE["teammate"],
                                     body={"model": "gen4.5", "promptText": HOSTILE["prompt"], "ratio": "1280:720"})
    store.mark_not_created(failed, unknown=False, message=HOSTILE["failure"])
    odd = store.record_submission(backend=ELSEWHERE, task_type="text_to_video", model="gen4.5",
                                  endpoint="/v1/text_to_video", body={"model": "gen4.5", "promptText": "Odd status"})
    store.mark_submitted(odd, "0000-odd", None, first_poll_in=3600)
    store.apply_update(odd, TaskUpdate(api_status=HOSTILE["status"], status="PENDING"))
    store.record_poll_error(odd, HOSTILE["last_error"], 3600)


def _watch(page) -> dict:
    """Record what the page receives and asks for: websocket frames, request hosts, dialogs."""
    seen = {"frames": [], "hosts": set(), "dialogs": []}
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: seen["frames"].append(payload)))
    page.on("request", lambda request: seen["hosts"].add(urlparse(request.url).hostname))

    def dialog(d):
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    return seen


# ---------------------------------------------------------------- the key, end to end

def test_a_planted_key_appears_nowhere_and_hostile_text_stays_text(tmp_path, page):
    server = SimulatorServer(SimulatorConfig(api_key=KEY, state_dir=tmp_path / "runway", pending_seconds=0.3,
                                             run_seconds=1, max_side=96)).start()
    admin = SimulatorAdmin(server.url, KEY)
    data = tmp_path / "team"
    db = data / "dashboard.db"
    store = Store(db)
    _seed_hostile_rows(store)
    env = base_env(DASHBOARD_DB=str(db), RUNWAYML_API_SECRET=KEY, RUNWAYML_BASE_URL=server.url,
                   DASHBOARD_API_TIMEOUT="2")
    app = None
    seen = _watch(page)
    pages: dict[str, str] = {}
    try:
        app, url = start_app(env, tmp_path / "app.log")
        page.goto(url)
        page.get_by_text("10,000").wait_for(timeout=30_000)  # the credit balance, read with the key
        pages["home"] = page.content()

        page.goto(f"{url}/Image_to_Video")
        page.get_by_role("textbox", name="Prompt").fill("A quiet harbour")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
            files=[{"name": "harbour.png", "mimeType": "image/png", "buffer": media_samples.noisy_png(48)}])
        page.wait_for_timeout(1000)
        admin.faults({"path_prefix": "/v1/tasks/", "method": "GET", "status": 503, "count": 4})
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("submitted to gen4.5").wait_for(timeout=30_000)
        pages["form submitted"] = page.content()

        admin.faults({"path_prefix": "/v1/image_to_video", "method": "POST", "status": 502})
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("may or may not have created this task").wait_for(timeout=30_000)
        pages["form error"] = page.content()

        wait_until(lambda: store.outputs_for([3]).get(3) and store.outputs_for([3])[3][0]["state"] == "archived",
                   120, "the task to succeed and be archived")

        page.goto(f"{url}/History")
        page.get_by_text("A quiet harbour").first.wait_for(timeout=30_000)
        page.get_by_text("Odd status").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        pages["history"] = page.content()
        shown = page.inner_text("body")

        # Text stays text: every hostile string is shown literally, and none of it became markup.
        for name in ("prompt", "teammate", "failure", "status", "last_error"):
            assert HOSTILE[name] in shown, name
        assert page.locator('img[src="x"], svg[onload], script:has-text("alert(3)")').count() == 0
        assert page.locator('a[href^="javascript"]').count() == 0
        assert page.locator("strong", has_text="bold").count() == 0 and page.locator("em", has_text="sly").count() == 0
        assert seen["dialogs"] == []

        # The CSV export: every row and column History's export writes.
        csv = b"".join(export.csv_bytes(store, queries.Filters())).decode("utf-8-sig")
        assert "A quiet harbour" in csv and HOSTILE["prompt"] in csv
    finally:
        if app is not None:
            stop(app)
        server.stop()

    leaks = []
    for name, html in pages.items():
        leaks += _leaks(html, f"page {name}")
    for n, frame in enumerate(seen["frames"]):
        leaks += _leaks(frame, f"websocket frame {n}")
    leaks += _leaks((tmp_path / "app.log").read_bytes(), "streamlit log")
    leaks += _leaks(csv, "CSV export")
    for path in sorted(data.rglob("*")):  # the database, its WAL, the input stash: everything the team keeps
        if path.is_file():
            leaks += _leaks(path.read_bytes(), str(path.relative_to(tmp_path)))
    for task in store.recent_tasks(limit=10):
        leaks += _leaks(repr(task), f"task #{task['id']}")
        for output in store.outputs_for([task["id"]])[task["id"]]:
            leaks += _leaks((ROOT / output["path"]).read_bytes(), output["path"])
    assert leaks == []
    assert len(seen["frames"]) > 20 and len(list(data.rglob("*"))) >= 3  # the scan saw real traffic and files
    assert seen["hosts"] == {"127.0.0.1"}  # the page called nothing outside this machine
    for row in store.conn.execute("SELECT path FROM outputs WHERE path IS NOT NULL"):
        (ROOT / row[0]).unlink(missing_ok=True)
    store.close()


# ---------------------------------------------------------------- password, loopback, no usage statistics

def test_the_password_gates_every_page_and_the_server_keeps_to_loopback(tmp_path, page):
    db = tmp_path / "dashboard.db"
    store = Store(db)
    secret = store.record_submission(backend=ELSEWHERE, task_type="text_to_video", model="gen4.5",
                                     endpoint="/v1/text_to_video", body={"promptText": "Top secret storyboard"})
    store.mark_not_created(secret, unknown=False, message="kept")
    env = base_env(DASHBOARD_DB=str(db), SIMULATOR_STATE_DIR=str(tmp_path / "simulator"), DASHBOARD_PASSWORD=PASSWORD)
    seen = _watch(page)
    archived = ROOT / "static" / f"{secrets.token_urlsafe(18)}.png"
    app = None
    try:
        app, url = start_app(env, tmp_path / "app.log")
        wait_until(lambda: (tmp_path / "simulator" / "simulator.json").exists(), 30, "the embedded simulator")

        # Loopback only, for the dashboard and for the simulator it started.
        addresses = wait_until(lambda: len(listening_addresses(app.pid)) >= 2 and listening_addresses(app.pid),
                               10, "both servers to listen")
        assert {a.rsplit(":", 1)[0] for a in addresses} == {"127.0.0.1"}, addresses
        log = (tmp_path / "app.log").read_text()
        assert f"URL: {url}" in log and "Network URL" not in log and "External URL" not in log

        # Every page, opened directly, shows the password field and nothing else of the dashboard.
        for path in ["", "History", *(Path(p).stem.split("_", 1)[1] for p in PAGE_FILES.values())]:
            page.goto(f"{url}/{path}")
            page.get_by_label("Password", exact=True).wait_for(timeout=30_000)
            page.wait_for_timeout(300)
            body = page.inner_text('[data-testid="stMain"]')
            for private in ("Top secret storyboard", "Generate", "Credit balance", "Simulator", "Your name"):
                assert private not in body, (path, private)

        page.get_by_label("Password", exact=True).fill("wrong-guess-7d1f")
        page.get_by_role("button", name="Enter").click()
        page.get_by_text("Wrong password").wait_for(timeout=15_000)
        assert "wrong-guess-7d1f" not in page.content()
        assert page.get_by_label("Password", exact=True).input_value() == ""  # not kept in the field either

        page.goto(f"{url}/History")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Enter").click()
        page.get_by_text("Top secret storyboard").wait_for(timeout=30_000)
        # Remembered for the session: another page of the same tab opens without asking.
        page.get_by_role("link", name="Text to Video").first.click()
        page.get_by_role("button", name="Generate").wait_for(timeout=30_000)
        assert page.get_by_label("Password", exact=True).count() == 0
        assert PASSWORD not in page.content()

        # A new browser session is asked again.
        other = page.context.browser.new_context().new_page()
        other.goto(f"{url}/History")
        other.get_by_label("Password", exact=True).wait_for(timeout=30_000)
        assert "Top secret storyboard" not in other.inner_text("body")

        # What the gate does not cover: archived files, by their unguessable names.
        archived.write_bytes(media_samples.png())
        assert httpx.get(f"{url}/app/static/{archived.name}").status_code == 200
        assert httpx.get(f"{url}/app/static/").status_code == 404  # no listing to find the names
        assert httpx.get(f"{url}/app/static/{secrets.token_urlsafe(18)}.png").status_code == 404
    finally:
        archived.unlink(missing_ok=True)
        if app is not None:
            stop(app)
        store.close()
    log = (tmp_path / "app.log").read_text()
    assert PASSWORD not in log and "wrong-guess-7d1f" not in log
    for frame in seen["frames"]:  # the server never sends a password back to a browser
        text = frame if isinstance(frame, str) else frame.decode("latin-1")
        assert PASSWORD not in text and "wrong-guess-7d1f" not in text
    assert seen["hosts"] == {"127.0.0.1"}  # no usage statistics, no font or script CDN: nothing leaves


@pytest.fixture
def gated(app_env, monkeypatch):
    monkeypatch.setenv("DASHBOARD_PASSWORD", PASSWORD)
    store = Store(app_env / "dashboard.db")
    task = store.record_submission(backend=ELSEWHERE, task_type="text_to_video", model="gen4.5",
                                   endpoint="/v1/text_to_video", body={"promptText": "Top secret storyboard"})
    store.mark_not_created(task, unknown=False, message="kept")
    return app_env


def _everything_shown(at: AppTest) -> str:
    kinds = ("title", "markdown", "caption", "error", "warning", "info", "success", "metric", "text_area",
             "selectbox", "button")
    parts = []
    for kind in kinds:
        for element in getattr(at, kind):
            parts.append(str(getattr(element, "value", "")) + " " + str(getattr(element, "label", "")))
    return " ".join(parts)


@pytest.mark.parametrize("path", ["app.py", HISTORY_PAGE, *PAGE_FILES.values()])
def test_every_page_asks_for_the_password_before_anything_else(gated, path):
    at = open_page(path)
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Password"]
    assert [b.label for b in at.button] == ["Enter"]
    shown = _everything_shown(at)
    for private in ("Top secret storyboard", "Generate", "Credit balance", "Simulator", "Tasks in history"):
        assert private not in shown
    assert len(at.sidebar.children) == 0  # not even the backend banner

    at.text_input[0].input("not it")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password. Ask a teammate for the dashboard's password."]
    assert [t.label for t in at.text_input] == ["Password"]

    at.text_input[0].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert "Password" not in [t.label for t in at.text_input]
    assert any("Simulator" in i.value for i in at.sidebar.info)
    assert PASSWORD not in [str(v) for v in at.session_state.values()]  # a fingerprint is kept, not the password


def test_the_password_is_asked_once_per_session(gated):
    at = open_page("app.py")
    at.text_input[0].input(PASSWORD)
    at.button[0].click().run()
    at.switch_page(HISTORY_PAGE).run()
    assert not at.exception
    assert "Password" not in [t.label for t in at.text_input]
    assert "Top secret storyboard" in " ".join(e.value for e in [*at.markdown, *at.text])


def test_no_password_set_means_no_gate(app_env, monkeypatch):
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    at = open_page("app.py")
    assert "Password" not in [t.label for t in at.text_input]
    assert any("Simulator" in i.value for i in at.sidebar.info)


def test_the_password_is_compared_in_constant_time_and_exactly():
    assert auth.password_matches(PASSWORD, PASSWORD)
    for wrong in ("", PASSWORD[:-1], PASSWORD + " ", PASSWORD.upper(), "x" * len(PASSWORD)):
        assert not auth.password_matches(wrong, PASSWORD)


def test_the_config_keeps_the_server_on_loopback_and_sends_no_statistics():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False


# ---------------------------------------------------------------- the archive

PNG = media_samples.png()
LIVE = "https://api.dev.runwayml.com"  # a backend on the internet: only public https outputs
ON_LOOPBACK = "http://127.0.0.1:8800"  # the simulator's kind: loopback and plain http too


def _serving(body: bytes, content_type: str, *, length: int | None = None, status: int = 200):
    requested = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        headers = {"content-type": content_type}
        if length is not None:
            headers["content-length"] = str(length)
        return httpx.Response(status, content=body, headers=headers)

    return httpx.Client(transport=httpx.MockTransport(handler)), requested


@pytest.mark.parametrize("body, content_type", [
    (b"<!doctype html><html><script>alert(1)</script></html>", "text/html"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml"),
    (b"<?xml version='1.0'?><x/>", "application/xml"),
    (b"alert(1)", "application/javascript"),
    (b"just text", "text/plain"),
    (b"\x00\x01\x02\x03" * 64, "application/octet-stream"),
    (b"<html><script>alert(1)</script></html>", "image/png"),  # a header claiming an image proves nothing
], ids=["html", "svg", "xml", "javascript", "text", "unknown bytes", "html sent as png"])
def test_only_media_is_ever_written_to_static(tmp_path, body, content_type):
    http, _ = _serving(body, content_type)
    with pytest.raises(archive.ArchiveError, match="not an accepted media type"):
        archive.download("https://cdn.example/output.png", http, backend_url=LIVE, static_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_archived_names_are_random_and_owe_nothing_to_the_url(tmp_path):
    http, _ = _serving(PNG, "text/html")  # the bytes decide the type, not the header
    names = set()
    for url in ("https://cdn.example/../../etc/passwd", "https://cdn.example/a/..%2F..%2Fapp.py",
                "https://cdn.example/index.html", "https://cdn.example/out.png?name=../../x.html"):
        saved = archive.download(url, http, backend_url=LIVE, static_dir=tmp_path)
        path = Path(saved.path)
        assert path.parent == Path("static") and path.suffix == ".png" and saved.mime == "image/png"
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}\.png", path.name)  # 144 random bits
        names.add(path.name)
    assert len(names) == 4 and sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert hashlib.sha256((tmp_path / names.pop()).read_bytes()).hexdigest() == hashlib.sha256(PNG).hexdigest()


def test_downloads_are_capped_whether_or_not_the_size_is_declared(tmp_path):
    big = PNG + b"\0" * 5000
    declared, _ = _serving(big, "image/png", length=len(big))
    with pytest.raises(archive.ArchiveError, match="over the archive's"):
        archive.download("https://cdn.example/big.png", declared, backend_url=LIVE, static_dir=tmp_path,
                         max_bytes=4096)

    def chunked(request):
        return httpx.Response(200, content=iter([big[i:i + 1000] for i in range(0, len(big), 1000)]),
                              headers={"content-type": "image/png"})

    streamed = httpx.Client(transport=httpx.MockTransport(chunked))
    with pytest.raises(archive.ArchiveError, match="over the archive's"):
        archive.download("https://cdn.example/big.png", streamed, backend_url=LIVE, static_dir=tmp_path,
                         max_bytes=4096)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://cdn.example/o.png", "data:image/png;base64,iVBO",
                                 "javascript:alert(1)", "runway://uploads/x", "/etc/passwd", "static/x.png"])
def test_only_http_urls_are_fetched(tmp_path, url):
    http, requested = _serving(PNG, "image/png")
    with pytest.raises(archive.ArchiveError, match="only https or http output URLs"):
        archive.download(url, http, backend_url=ON_LOOPBACK, static_dir=tmp_path)
    assert requested == [] and list(tmp_path.iterdir()) == []


def test_a_live_backend_s_outputs_are_fetched_over_https_only(store, fake_backend, fake_runway, tmp_path):
    from lib.tasks import submit_task

    result = submit_task(store, fake_backend, task_type="text_to_image", model_id="gen4_image",
                         inputs={"promptText": "A lamp", "ratio": "1024:1024"})
    uuid = store.task(result.task_id)["task_uuid"]
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["http://cdn.example/o.png"])
    poller = Poller(store.path, [fake_backend], interval=5, static_dir=tmp_path / "static")
    poller._http, requested = _serving(PNG, "image/png")
    poller.poll_once(now=2e9)
    assert poller.archive_once() == 0
    [output] = store.outputs_for([result.task_id])[result.task_id]
    assert output["state"] == "at_risk" and "only https output URLs" in output["last_error"]
    assert requested == []
    poller.stop()


def test_outputs_are_fetched_only_from_the_task_never_from_its_inputs(store, fake_backend, fake_runway, tmp_path):
    from lib.tasks import submit_task

    result = submit_task(store, fake_backend, task_type="image_to_video", model_id="gen4_turbo",
                         inputs={"promptImage": "https://inputs.example/face.png", "ratio": "1280:720"})
    uuid = store.task(result.task_id)["task_uuid"]
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["https://cdn.example/out.png"])
    poller = Poller(store.path, [fake_backend], interval=5, static_dir=tmp_path / "static")
    poller._http, requested = _serving(PNG, "image/png")
    poller.poll_once(now=2e9)
    assert poller.archive_once() == 1
    assert requested == ["https://cdn.example/out.png"]
    poller.stop()


def test_a_stored_input_name_cannot_reach_outside_the_stash(store, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)
    # Only stored:<mime>:<sha256><ext> names a stashed file; anything else is left as the text it is.
    for planted in ("stored:image/png:../../outside.png", f"stored:image/png:{outside}"):
        assert store.restore_request({"promptImage": planted}) == {"promptImage": planted}
    stash_name = "0" * 64 + ".png"  # the right shape, but no such file in the stash
    with pytest.raises(FileNotFoundError):
        store.restore_request({"promptImage": f"stored:image/png:{stash_name}"})
