"""Foreign web pages cannot drive the dashboard (issue 10, items 2 and 11): a
real `streamlit run` answers only its own host names and only its own pages,
to raw HTTP requests and websocket handshakes as to a real Chromium, and no
request makes it look anything up on the network.

The server runs with a sitecustomize that writes down every name the process
resolves (socket.getaddrinfo), so "no outbound lookup" is read from the
server process itself."""
from __future__ import annotations

import base64
import http.server
import os
import secrets
import socket
import threading
from pathlib import Path

import httpx
import pytest

from lib import downloads
from lib.store import Store, queries
from tests.support import chromium
from tests.support.launch import start_app, stop
from tests.support.simulator_env import base_env
from tests.support.waiting import wait_until

SECRET_PROMPT = "Top secret storyboard"
FOREIGN_ORIGINS = ["http://localhost:3000", "http://evil.test", "http://127.0.0.1:9999", "null"]
LOOKUP_LOGGER = r'''
import os, socket
_real, _log = socket.getaddrinfo, os.environ["LOOKUP_LOG"]
with open(_log, "a") as log:
    log.write("<watching>\n")
def getaddrinfo(host, *args, **kwargs):
    with open(_log, "a") as log:
        log.write(f"{host!r}\n")
    return _real(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
'''
WATCHING = "<watching>"  # the first line: the server process runs the watcher
LOOPBACK = {WATCHING, "'127.0.0.1'", "'localhost'", "b'127.0.0.1'", "b'localhost'", "None"}


class App:
    def __init__(self, url: str, db: Path, lookups: Path, log: Path):
        self.url, self.db, self.lookups, self.log = url, db, lookups, log
        self.port = int(url.rsplit(":", 1)[1])

    def looked_up(self) -> set[str]:
        return set(self.lookups.read_text().split()) if self.lookups.exists() else set()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("origins")
    db = tmp / "dashboard.db"
    store = Store(db)
    task = store.record_submission(backend="https://elsewhere.test", task_type="text_to_video", model="gen4.5",
                                   endpoint="/v1/text_to_video", body={"promptText": SECRET_PROMPT})
    store.mark_not_created(task, unknown=False, message="kept")
    store.close()
    (tmp / "hooks").mkdir()
    (tmp / "hooks" / "sitecustomize.py").write_text(LOOKUP_LOGGER)
    env = base_env(DASHBOARD_DB=str(db), SIMULATOR_STATE_DIR=str(tmp / "simulator"), LOOKUP_LOG=str(tmp / "lookups"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(tmp / "hooks"), os.environ.get("PYTHONPATH")])))
    proc, url = start_app(env, tmp / "app.log")
    try:
        yield App(url, db, tmp / "lookups", tmp / "app.log")
    finally:
        stop(proc)


@pytest.fixture
def csv_link(app, monkeypatch) -> str:
    """A download link to the whole history, as History hands it out."""
    monkeypatch.setenv("DASHBOARD_DB", str(app.db))
    return downloads.csv_link(queries.Filters())


def handshake(port: int, host: str, origin: str | None) -> tuple[int, bytes]:
    """A websocket opening handshake to Streamlit's session endpoint: the status and all the server sent."""
    lines = ["GET /_stcore/stream HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {base64.b64encode(secrets.token_bytes(16)).decode()}", "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while b"\r\n\r\n" not in received and (chunk := conn.recv(65536)):
            received += chunk
        status = int(received.split(b" ", 2)[1])
        if status != 101:  # a refusal: read to the end, to see everything it said
            while chunk := conn.recv(65536):
                received += chunk
    return status, received


def test_the_dashboard_s_own_names_and_pages_are_served(app, csv_link):
    for name in ("127.0.0.1", "localhost"):
        own = f"{name}:{app.port}"
        assert httpx.get(app.url, headers={"Host": own}).status_code == 200
        assert handshake(app.port, own, f"http://{own}")[0] == 101
        answer = httpx.get(app.url + csv_link, headers={"Host": own, "Origin": f"http://{own}"})
        assert answer.status_code == 200 and SECRET_PROMPT in answer.text
    assert "frame-ancestors 'self'" in httpx.get(app.url).headers["content-security-policy"]


@pytest.mark.parametrize("host", ["evil.test:{port}", "evil.test", "127.0.0.1.evil.test:{port}", "localhost.:1@evil"])
def test_a_foreign_host_name_gets_no_page_and_no_data(app, csv_link, host):
    host = host.format(port=app.port)
    for path in ("/", "/History", "/_stcore/health", "/_stcore/host-config", csv_link, "/app/static/x.png"):
        answer = httpx.get(app.url + path, headers={"Host": host})
        assert answer.status_code == 400, (path, answer.status_code)
        assert SECRET_PROMPT not in answer.text and "<script" not in answer.text
    # DNS rebinding: the page's origin and the Host agree, and both are foreign.
    status, said = handshake(app.port, host, f"http://{host}")
    assert status == 403 and SECRET_PROMPT.encode() not in said


@pytest.mark.parametrize("origin", [*FOREIGN_ORIGINS, "http://localhost:{port}", "https://127.0.0.1.evil.test:{port}"])
def test_a_page_of_another_origin_gets_no_session_and_no_data(app, csv_link, origin):
    origin = origin.format(port=app.port)
    own = f"127.0.0.1:{app.port}"
    status, said = handshake(app.port, own, origin)
    assert status == 403 and SECRET_PROMPT.encode() not in said
    answer = httpx.get(app.url + csv_link, headers={"Host": own, "Origin": origin})
    assert answer.status_code == 403 and SECRET_PROMPT not in answer.text
    # Another site's image tag or no-cors fetch sends no Origin, only Sec-Fetch-Site.
    answer = httpx.get(app.url + csv_link, headers={"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"})
    assert answer.status_code == 403 and SECRET_PROMPT not in answer.text


def test_no_request_makes_the_server_look_anything_up(app, csv_link):
    """Streamlit 1.67 checks a foreign websocket Origin against the machine's external IP, which it
    fetches from a public web service: a DNS lookup and an HTTP request, on the event loop."""
    own = f"127.0.0.1:{app.port}"
    for origin in FOREIGN_ORIGINS:
        handshake(app.port, own, origin)
        handshake(app.port, f"evil.test:{app.port}", origin)
        httpx.get(app.url + csv_link, headers={"Origin": origin})
    handshake(app.port, own, f"http://{own}")
    assert WATCHING in app.looked_up()
    assert app.looked_up() <= LOOPBACK, app.looked_up() - LOOPBACK


# ---------------------------------------------------------------- in a real browser

class _AttackPage(http.server.BaseHTTPRequestHandler):
    """A page on another loopback port that tries to open the dashboard's websocket and read a link."""
    target = ""
    link = ""

    def do_GET(self):
        body = f"""<!doctype html><script>
        window.result = {{ws: "pending", fetched: "pending"}};
        const ws = new WebSocket("ws://{self.target}/_stcore/stream");
        ws.onopen = () => {{ window.result.ws = "open"; }};
        ws.onmessage = () => {{ window.result.ws = "data"; }};
        ws.onclose = () => {{ if (window.result.ws === "pending") window.result.ws = "refused"; }};
        fetch("http://{self.target}{self.link}").then(r => r.text())
          .then(t => {{ window.result.fetched = t; }}, () => {{ window.result.fetched = "nothing"; }});
        </script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def browser_at(app):
    """Chromium with evil.test resolving to this machine, as a DNS-rebinding attacker arranges."""
    if not chromium.installed():
        pytest.fail("Debian's chromium is not installed; run `bash tests/run.sh`, which installs it.")
    with chromium.browser([*chromium.CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"]) as browser:
        yield browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def test_a_dns_rebinding_page_in_chromium_sees_nothing(app, browser_at, csv_link):
    page = browser_at
    answer = page.goto(f"http://evil.test:{app.port}/History")
    assert answer.status == 400
    page.wait_for_timeout(3000)  # long enough for a page, had one been served, to connect and draw
    assert SECRET_PROMPT not in page.content()
    answer = page.goto(f"http://evil.test:{app.port}{csv_link}")
    assert answer.status == 400 and SECRET_PROMPT not in answer.text()

    # The same browser at the dashboard's own address gets the dashboard.
    page.goto(f"{app.url}/History")
    page.get_by_text(SECRET_PROMPT).first.wait_for(timeout=30_000)


def test_a_page_on_another_loopback_port_cannot_open_a_session_or_read_a_link(app, browser_at, csv_link):
    _AttackPage.target, _AttackPage.link = f"127.0.0.1:{app.port}", csv_link
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AttackPage)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        for host in ("127.0.0.1", "localhost"):
            page = browser_at
            page.goto(f"http://{host}:{attacker.server_address[1]}/")
            result = wait_until(lambda: (r := page.evaluate("window.result"))["ws"] != "pending"  # noqa: B023
                                and r["fetched"] != "pending" and r, 20, "the attack page to finish")
            assert result == {"ws": "refused", "fetched": "nothing"}, (host, result)
    finally:
        attacker.shutdown()
