"""The archive against hostile output servers (issue 10, items 6, 9 and 12): a server that
trickles bytes gives its download slot up, a compressed output is archived as the file it
is, an output URL of a live task never reaches a private address whatever its name
resolves to, and what lands in `static/` is the owner's alone.

The hostile server is a real HTTP server on loopback; names are resolved by a resolver the
test passes in, so no test needs the network."""
from __future__ import annotations

import gzip
import os
import socket
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import imageio_ffmpeg
import pytest

from lib import archive
from lib.backend import SIMULATOR
from lib.poller import Poller
from lib.tasks import submit_task
from tests.support import media_samples
from tests.support.fake_runway import FakeBackend

PNG = media_samples.png()
LIVE = "https://api.dev.runwayml.com"
ON_LOOPBACK = "http://127.0.0.1:8800"
TRICKLED_LENGTH = 100_000  # at the trickle's 5 bytes a second, 5.5 hours of one download slot
INTERNAL_SECRET = b"internal admin console: db password hunter2"


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[str, dict]] = []
        self.trickles_started = 0
        self.finished = threading.Event()
        self.port = self.server_address[1]

    def process_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with self.server.lock:
            self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = self.path.split("?")[0].strip("/").split("/")[0]
        getattr(self, "_" + route.replace("-", "_").replace(".", "_"))()

    def _send(self, body: bytes, status: int = 200, **headers):
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("content_type", "image/png"))
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _image_png(self):
        self._send(PNG)

    def _gzip_png(self):  # compressed whatever the client asked for
        self._send(gzip.compress(PNG), content_encoding="gzip")

    def _gzip_twice_png(self):  # each layer multiplies what a small body becomes
        self._send(gzip.compress(gzip.compress(PNG)), content_encoding="gzip, gzip")

    def _cut_gzip_png(self):  # the declared length is sent, but the gzip stream inside stops half way
        self._send(gzip.compress(PNG)[:60], content_encoding="gzip")

    def _admin(self):
        self._send(INTERNAL_SECRET, status=500, content_type="text/plain")

    def _trickle(self):
        """A byte every 0.2 s of a large image, until the client goes or the test ends."""
        with self.server.lock:
            self.server.trickles_started += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(TRICKLED_LENGTH))
        self.end_headers()
        body = PNG + b"\0" * (TRICKLED_LENGTH - len(PNG))
        try:
            for byte in range(TRICKLED_LENGTH):
                self.wfile.write(body[byte:byte + 1])
                self.wfile.flush()
                if self.server.finished.wait(0.2):
                    return
        except OSError:  # the archive hung up: the slot is free
            return

    def _slow_headers(self):
        """The status line at once, then a header one byte every 0.2 s (8 s in all), then a PNG."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        try:
            for _ in range(40):
                self.wfile.write(b"a")
                self.wfile.flush()
                if self.server.finished.wait(0.2):
                    return
            self.wfile.write(b"\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(PNG) + PNG)
        except OSError:
            return


@pytest.fixture
def hostile():
    server = HostileServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.finished.set()
    server.shutdown()
    server.server_close()


def _until(condition, seconds: float) -> bool:
    """Whether `condition` holds within `seconds` (a bound for a test that would otherwise hang)."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _resolver(*answer: str, calls: list | None = None):
    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(answer)
    return resolve


def _visible(static_dir) -> list[str]:
    return sorted(p.name for p in static_dir.iterdir() if not p.name.startswith("."))


# ---------------------------------------------------------------- item 6: starving the archive

def _submit(store, backend, n):
    ids = []
    for i in range(n):
        result = submit_task(store, backend, task_type="text_to_image", model_id="gen4_image",
                             inputs={"promptText": f"lamp {i}", "ratio": "1024:1024"})
        assert result.ok, result
        ids.append(result.task_id)
    return ids


def test_trickling_downloads_give_their_slots_up_and_a_normal_output_is_archived(
        store, fake_runway, hostile, tmp_path, monkeypatch):
    # The defaults (a 20 s window, 16 KB/s, 10 minutes in all) shrunk to test size.
    monkeypatch.setattr(archive, "RATE_WINDOW", 0.5)
    monkeypatch.setenv("DASHBOARD_ARCHIVE_MIN_KB_PER_SECOND", "1")
    monkeypatch.setenv("DASHBOARD_ARCHIVE_DEADLINE_SECONDS", "5")
    backend = FakeBackend(name=SIMULATOR, base_url="http://127.0.0.1:9", api_key="key_" + "cd" * 64,
                          fake=fake_runway)
    *trickled, normal = _submit(store, backend, 5)
    store.conn.execute("UPDATE tasks SET next_poll_at = 0")  # read at once, not an interval after submitting
    for i, task_id in enumerate(trickled):
        fake_runway.tasks[store.task(task_id)["task_uuid"]].update(
            status="SUCCEEDED", output=[hostile.url(f"/trickle/{i}")])
    poller = Poller(store.path, [backend], interval=0.2, static_dir=tmp_path / "static").start()
    try:
        # All four download slots are taken by the trickles before the normal output is due.
        assert _until(lambda: hostile.trickles_started == 4, 10)
        fake_runway.tasks[store.task(normal)["task_uuid"]].update(status="SUCCEEDED",
                                                                   output=[hostile.url("/image.png")])
        assert _until(lambda: store.outputs_for([normal])[normal]
                      and store.outputs_for([normal])[normal][0]["state"] == "archived", 20)
        assert _until(lambda: all(store.outputs_for([t])[t][0]["state"] == "at_risk" for t in trickled), 10)
    finally:
        poller.stop()
    [output] = store.outputs_for([normal])[normal]
    assert (tmp_path / output["path"]).read_bytes() == PNG
    for task_id in trickled:
        [given_up] = store.outputs_for([task_id])[task_id]
        assert given_up["state"] == "at_risk" and "sent under 1 KB/s" in given_up["last_error"]
    assert _visible(tmp_path / "static") == [output["path"].split("/")[-1]]


def test_headers_trickled_a_byte_at_a_time_end_at_the_deadline(hostile, tmp_path):
    with pytest.raises(archive.ArchiveError, match="took longer than the archive's 1 s limit"):
        archive.download(hostile.url("/slow-headers"), archive.http_client(), backend_url=ON_LOOPBACK,
                         static_dir=tmp_path, deadline=1, rate_window=0.5)
    assert list(tmp_path.iterdir()) == []


def test_a_gzipped_output_is_archived_as_the_file_it_is(hostile, tmp_path):
    saved = archive.download(hostile.url("/gzip.png"), archive.http_client(), backend_url=ON_LOOPBACK,
                             static_dir=tmp_path)
    assert saved.mime == "image/png" and saved.size == len(PNG)
    assert (tmp_path / saved.path.split("/")[-1]).read_bytes() == PNG
    [(_, headers)] = hostile.requests
    assert headers["accept-encoding"] == "identity"  # it asked for the bytes as they are


@pytest.mark.parametrize("path, message", [
    ("/gzip-twice.png", "an encoding the archive does not decode"),
    ("/cut-gzip.png", "stopped before the end of the compressed file"),
])
def test_compressed_outputs_that_are_not_one_whole_gzip_are_refused(hostile, tmp_path, path, message):
    with pytest.raises(archive.ArchiveError, match=message):
        archive.download(hostile.url(path), archive.http_client(), backend_url=ON_LOOPBACK, static_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- item 12: owner-only files

def test_archived_and_half_written_files_are_the_owner_s_alone(hostile, tmp_path):
    static_dir = tmp_path / "static"
    failure = []

    def trickled():
        try:
            archive.download(hostile.url("/trickle/0"), archive.http_client(), backend_url=ON_LOOPBACK,
                             static_dir=static_dir, deadline=1, min_rate=1, rate_window=10)
        except archive.ArchiveError as exc:
            failure.append(str(exc))

    thread = threading.Thread(target=trickled)
    thread.start()
    assert _until(lambda: static_dir.is_dir() and list(static_dir.glob(".*.part")), 10)
    [partial] = static_dir.glob(".*.part")
    assert stat.S_IMODE(partial.stat().st_mode) == 0o600
    thread.join()
    assert failure and "took longer than the archive's 1 s limit" in failure[0]
    saved = archive.download(hostile.url("/image.png"), archive.http_client(), backend_url=ON_LOOPBACK,
                             static_dir=static_dir)
    assert stat.S_IMODE((static_dir / saved.path.split("/")[-1]).stat().st_mode) == 0o600
    assert stat.S_IMODE(static_dir.stat().st_mode) == 0o700  # its listing names the files


# ---------------------------------------------------------------- item 9: probing internal services

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.7", "172.16.4.4", "192.168.1.20", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.7", "::ffff:169.254.169.254", "64:ff9b::a00:7", "2002:a00:7::1",
    "::7f00:1",
])
def test_an_address_that_is_not_public_is_refused(address):
    assert not archive.allowed_address(address, loopback_ok=False)
    if address not in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert not archive.allowed_address(address, loopback_ok=True)  # private stays private


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808"])
def test_public_addresses_are_allowed(address):
    assert archive.allowed_address(address, loopback_ok=False)


@pytest.mark.parametrize("base_url, on_loopback", [
    ("http://127.0.0.1:8800", True), ("http://localhost:8800", True), ("http://[::1]:8800", True),
    ("https://api.dev.runwayml.com", False), ("http://10.0.0.7:8800", False), (SIMULATOR, False), ("", False),
])
def test_only_a_backend_on_loopback_gets_loopback_outputs(base_url, on_loopback):
    assert archive.on_loopback(base_url) is on_loopback


@pytest.mark.parametrize("answer", [
    ["127.0.0.1"], ["10.0.0.7"], ["169.254.169.254"], ["::ffff:127.0.0.1"], ["fd00::1"],
    ["93.184.215.14", "127.0.0.1"],  # every address is checked, not only the first
])
def test_a_name_that_resolves_inside_is_refused_before_any_connection(hostile, tmp_path, answer):
    http = archive.http_client(resolve=_resolver(*answer))
    with pytest.raises(archive.ArchiveError) as refused:
        archive.download(f"https://cdn.test:{hostile.port}/admin", http, backend_url=LIVE, static_dir=tmp_path)
    assert str(refused.value) == archive.REFUSED  # nothing of what the name led to
    assert hostile.connections == 0 and list(tmp_path.iterdir()) == []


def test_a_name_that_does_not_resolve_gets_the_same_answer(tmp_path):
    def unresolvable(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(archive.ArchiveError) as refused:
        archive.download("https://intranet.test/admin", archive.http_client(resolve=unresolvable),
                         backend_url=LIVE, static_dir=tmp_path)
    assert str(refused.value) == archive.REFUSED


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost", "0x7f000001", "2130706433", "127.1"])
def test_loopback_in_any_spelling_is_refused_for_a_live_backend(hostile, tmp_path, host):
    # The system's own resolver: these spellings resolve without any network.
    with pytest.raises(archive.ArchiveError) as refused:
        archive.download(f"https://{host}:{hostile.port}/admin", archive.http_client(), backend_url=LIVE,
                         static_dir=tmp_path)
    assert str(refused.value) == archive.REFUSED
    assert hostile.connections == 0


def test_a_live_task_cannot_make_the_archive_probe_a_local_service(store, fake_backend, fake_runway, hostile,
                                                                   tmp_path):
    [task_id] = _submit(store, fake_backend, 1)
    fake_runway.tasks[store.task(task_id)["task_uuid"]].update(
        status="SUCCEEDED", output=[f"https://127.0.0.1:{hostile.port}/admin"])
    poller = Poller(store.path, [fake_backend], interval=5, static_dir=tmp_path / "static")
    poller.poll_once(now=2e9)
    assert poller.archive_once() == 0
    poller.stop()
    [output] = store.outputs_for([task_id])[task_id]
    assert output["state"] == "at_risk" and output["last_error"] == archive.REFUSED
    assert hostile.connections == 0  # not even a connection: nothing to tell apart


def test_a_backend_on_loopback_fetches_from_the_address_it_checked(hostile, tmp_path):
    calls = []
    http = archive.http_client(resolve=_resolver("127.0.0.1", calls=calls))
    saved = archive.download(hostile.url("/image.png", host="media.test"), http, backend_url=ON_LOOPBACK,
                             static_dir=tmp_path)
    assert (tmp_path / saved.path.split("/")[-1]).read_bytes() == PNG
    # One lookup, checked, then connected to: no second answer could have been used instead.
    assert calls == ["media.test"]
    [(_, headers)] = hostile.requests
    assert headers["host"] == f"media.test:{hostile.port}"  # the server still sees the name


def test_a_backend_on_loopback_still_cannot_reach_the_private_network(hostile, tmp_path):
    http = archive.http_client(resolve=_resolver("192.168.1.20"))
    with pytest.raises(archive.ArchiveError) as refused:
        archive.download(hostile.url("/admin", host="printer.lan"), http, backend_url=ON_LOOPBACK,
                         static_dir=tmp_path)
    assert str(refused.value) == archive.REFUSED_LOOPBACK
    assert hostile.connections == 0



def _watch_for_a_reader(fifo) -> tuple[threading.Thread, list]:
    """A writer waiting on the named pipe `fifo`: its open returns only once something opens the pipe to read."""
    opened: list = []

    def wait():
        with open(fifo, "wb"):
            opened.append(True)

    watcher = threading.Thread(target=wait, daemon=True)
    watcher.start()
    return watcher, opened


def test_ffmpeg_is_told_the_format_so_an_upload_cannot_make_it_open_another_file(tmp_path, monkeypatch):
    # The file that must not be read is a named pipe: opening it to read is what a writer waits on.
    secret = tmp_path / "secret.ts"
    os.mkfifo(secret)
    watcher, opened = _watch_for_a_reader(secret)
    started = []
    real = imageio_ffmpeg.get_ffmpeg_exe
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: started.append(True) or real())
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:{secret}\n#EXT-X-ENDLIST\n".encode()
    manifest = (f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
                f'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" mediaPresentationDuration="PT1S">'
                f'<Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="1">'
                f'<BaseURL>file:{secret}</BaseURL></Representation></AdaptationSet></Period></MPD>').encode()
    ftyp = (24).to_bytes(4, "big") + b"ftypjp2 \0\0\0\0isommp41"  # an ftyp ffmpeg's own detection scores low

    bare = tmp_path / "playlist.mp4"
    bare.write_bytes(playlist)
    assert archive.make_poster(bare) is None
    assert started == []  # bytes that are no video we know never reach ffmpeg
    for name, body in [("hls.mp4", playlist), ("dash.mp4", manifest)]:
        behind = tmp_path / name
        behind.write_bytes(ftyp + (8 + len(body)).to_bytes(4, "big") + b"free" + body)
        assert archive.make_poster(behind) is None
    assert len(started) == 4  # both ran ffmpeg, twice each (a second in, then the first frame)
    watcher.join(1)
    assert opened == []  # ffmpeg read them as the MP4s they claim to be: nothing opened the pipe
    os.close(os.open(secret, os.O_RDONLY | os.O_NONBLOCK))  # let the watcher go
    watcher.join(5)

    video = tmp_path / "real.mp4"
    video.write_bytes(media_samples.mp4(1.0))
    poster = archive.make_poster(video)
    assert poster is not None and poster.read_bytes().startswith(b"\xff\xd8\xff")


def test_a_link_planted_in_the_archive_is_not_an_archived_file(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("not an output")
    (static / "planted.png").symlink_to(secret)
    (static / "real.png").write_bytes(media_samples.png())
    assert archive.archived_file("static/planted.png", static) is None
    assert archive.archived_file("static/real.png", static) == static / "real.png"
    assert [archive.archived_file(p, static) for p in ("static/..", "static/.", "static/", "x/real.png")] == [None] * 4
