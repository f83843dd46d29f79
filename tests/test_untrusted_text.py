"""Text from people or from the API never becomes a link, an image or markup, and reads as
written. Streamlit's markdown turns bare `https://…`, `www.…` and e-mail addresses into links
even when every markdown character is escaped, so this drives real Chromium over every page that
shows such text (Home, History, Compare, Task, and a task form's credits caption, read from a
hostile organization answer on a live backend) and looks at the DOM the browser built."""
from __future__ import annotations

import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lib import ui
from lib.store import Store, TaskUpdate
from lib.ui import PAGE_FILES
from tests.support.apptest import open_page
from tests.support.launch import start_app, stop
from tests.support.simulator_env import base_env

KEY = "key_" + secrets.token_hex(64)
ELSEWHERE = "https://elsewhere.example"  # the seeded tasks' backend: no poller reads it
WJ = "\u2060"  # the invisible word joiner ui.plain puts where an address would link

LINKY = {
    "prompt": "Night market, see https://evil.test/x and www.evil.test, or ops@evil.test (mailto:ops@evil.test)",
    "teammate": "eve@evil.test",
    "failure": "Refused: read http://evil.test/why or WWW.evil.test/help, write to mailto:help@evil.test",
    "api_status": "www.evil.test",
    "last_error": "upstream https://evil.test/status said no",
    "group": "www.evil.test",
    "reviewer": "rev@evil.test",
    "notes": "compare with https://evil.test/notes",
    "image": "https://www.evil.test/in.png",  # the Task page's request shows it whole
    "image_source": "www.evil.test/in.png",  # cards and details show the host and file
}
ORGANIZATION = {  # a live API's answer whose limits are text made to look like links
    "creditBalance": 4321,
    "tier": {"models": {"gen4.5": {"maxDailyGenerations": "www.evil.test",
                                   "maxConcurrentGenerations": "https://evil.test/at-once"}}},
    "usage": {"models": {"gen4.5": {"dailyGenerations": "ops@evil.test"}}},
}
CAPTION = "gen4.5: ops@evil.test/www.evil.test today, https://evil.test/at-once at once"

# Streamlit 1.67's own autolink-literal patterns (from its markdown bundle), which it runs over the
# text once markdown escapes are undone; without the bundle's check of the character before a match,
# so these find every link it would make, and more.
GFM_AUTOLINKS = [re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.I),
                 re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")]


class FakeRunway(BaseHTTPRequestHandler):
    """A live API on loopback that answers only GET /v1/organization, with ORGANIZATION."""

    organization: dict = ORGANIZATION

    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._send(401, {"error": "Unauthorized"})
        elif self.path == "/v1/organization":
            self._send(200, self.organization)
        else:
            self._send(404, {"error": "Not found"})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def live_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRunway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _seed(store: Store) -> dict[str, int]:
    """Tasks whose every text came from a teammate or from the API, and looks like an address."""
    failed = store.record_submission(
        backend=ELSEWHERE, task_type="image_to_video", model="gen4.5", endpoint="/v1/image_to_video",
        teammate=LINKY["teammate"], group_id=LINKY["group"],
        body={"model": "gen4.5", "promptText": LINKY["prompt"], "promptImage": LINKY["image"], "ratio": "1280:720"})
    store.mark_not_created(failed, unknown=False, message=LINKY["failure"])
    store.set_notes(failed, LINKY["notes"], LINKY["reviewer"])
    odd = store.record_submission(backend=ELSEWHERE, task_type="text_to_video", model="gen4.5",
                                  endpoint="/v1/text_to_video", teammate=LINKY["teammate"], group_id=LINKY["group"],
                                  body={"model": "gen4.5", "promptText": "Odd status"})
    store.mark_submitted(odd, "0000-odd", None, first_poll_in=3600)
    store.apply_update(odd, TaskUpdate(api_status=LINKY["api_status"], status="PENDING"))
    store.record_poll_error(odd, LINKY["last_error"], 3600)
    return {"failed": failed, "odd": odd}


def _made_from_text(page, app_url: str) -> list[str]:
    """Links and media the browser made from text: every link that leaves the dashboard's own
    pages (the dashboard links to its pages, some with a group id in the address), and any image,
    player or frame whose markup mentions the hostile addresses."""
    return page.evaluate("""(app) => [
        ...[...document.querySelectorAll('a')].filter(a => !a.href.startsWith(app + '/')),
        ...[...document.querySelectorAll('img, video, audio, source, iframe, area, form, svg')]
            .filter(e => /evil|mailto:/i.test(e.outerHTML)),
    ].map(e => e.outerHTML)""", app_url)


def _shown(page) -> str:
    return page.inner_text("body")


def test_addresses_in_untrusted_text_are_never_links_in_the_browser(tmp_path, page, live_api):
    db = tmp_path / "dashboard.db"
    store = Store(db)
    ids = _seed(store)
    store.close()
    env = base_env(DASHBOARD_DB=str(db), RUNWAYML_API_SECRET=KEY, RUNWAYML_BASE_URL=live_api,
                   DASHBOARD_API_TIMEOUT="2")
    app, url = start_app(env, tmp_path / "app.log")
    try:
        visits = {
            "Home": ("", "4,321", ["prompt", "teammate", "failure", "api_status", "last_error"]),
            "History": ("/History", "Odd status", ["prompt", "teammate", "failure", "api_status", "last_error",
                                                   "image_source"]),
            "Compare": (f"/Compare?group={LINKY['group']}", "Odd status", ["prompt", "failure", "api_status"]),
            "Task": (f"/Task?task={ids['failed']}", "Timeline", ["prompt", "teammate", "failure", "group",
                                                                 "reviewer", "notes", "image", "image_source"]),
        }
        for name, (path, ready, expected) in visits.items():
            page.goto(url + path)
            page.get_by_text(ready).first.wait_for(timeout=30_000)
            page.wait_for_timeout(1500)  # every element of the run drawn
            assert _made_from_text(page, url) == [], name
            shown = _shown(page)
            for key in expected:
                assert LINKY[key] in shown.replace(WJ, ""), (name, key)
            # A prompt stands alone, in an element that does not read markdown: copied, it is exact.
            assert LINKY["prompt"] in shown, name

        page.goto(f"{url}/Text_to_Video")
        page.get_by_text("at once").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        assert _made_from_text(page, url) == []
        caption = page.get_by_text("at once").first.inner_text()
        assert "Balance 4,321 credits" in caption and CAPTION in caption.replace(WJ, "")
    finally:
        stop(app)


# ---------------------------------------------------------------- the same, at the markdown Streamlit is sent

def _unescaped(markdown: str) -> str:
    """The text markdown makes of `plain`'s output: backslash escapes undone."""
    return re.sub(r"\\(.)", r"\1", markdown)


@pytest.mark.parametrize("text", [*LINKY.values(), "HTTPS://EVIL.TEST", "a.b+c@evil.test", "xmpp:me@evil.test",
                                  "<https://evil.test>", "[x](https://evil.test)", "![x](https://evil.test/i.png)"])
def test_plain_leaves_no_autolink_and_reads_the_same(text):
    shown = _unescaped(ui.plain(text))
    assert [p.pattern for p in GFM_AUTOLINKS if p.search(shown)] == []
    assert shown.replace(WJ, "") == text


@pytest.fixture
def hostile_live(app_env, monkeypatch, live_api):
    monkeypatch.setenv("RUNWAYML_API_SECRET", KEY)
    monkeypatch.setenv("RUNWAYML_BASE_URL", live_api)
    return app_env


def test_a_credit_balance_that_is_not_a_number_is_no_balance(hostile_live, monkeypatch):
    monkeypatch.setattr(FakeRunway, "organization", {**ORGANIZATION, "creditBalance": "https://evil.test/c"})
    home = open_page("app.py")
    assert not home.exception
    assert {m.label: m.value for m in home.metric}["Credit balance"] == "—"
    assert any("no credit balance" in e.value for e in home.error)
    form = open_page(PAGE_FILES["text_to_video"])
    assert not form.exception
    assert any("Credit balance and limits are unavailable" in c.value for c in form.caption)


def test_the_credits_caption_sends_api_values_as_plain_text(hostile_live):
    form = open_page(PAGE_FILES["text_to_video"])
    assert not form.exception
    [caption] = [c.value for c in form.caption if "at once" in c.value]
    assert _unescaped(caption).replace(WJ, "").endswith(CAPTION)
    assert [p.pattern for p in GFM_AUTOLINKS if p.search(_unescaped(caption))] == []
