"""The archive's storage (issue 17, part 3), one suite run on both: the local folders and an
S3-compatible bucket (moto's server on loopback, tests/support/services.py). Each test goes
through the configured storage, as the dashboard does: DASHBOARD_STORAGE_URL unset, or set to a
fresh bucket.

Output servers are the simulator (a real HTTP server) or httpx.MockTransport at the network
boundary; the storage is always real."""
from __future__ import annotations

import hashlib
import io
import os
import secrets
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from lib import archive, downloads, storage
from lib.poller import Poller
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.store import queries
from lib.tasks import submit_task
from tests.support import media_samples, services
from tests.support.launch import Dashboard
from tests.support.net import free_port

VIDEO = media_samples.mp4(2)
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>" + b" " * 200


@dataclass
class Kept:
    kind: str
    storage: storage.Storage
    bucket: str | None = None
    server: services.S3Server | None = None

    def objects(self) -> list[str]:
        """Every object or file the storage holds (the test's own eyes, not the dashboard's)."""
        if self.kind == "s3":
            listed = _s3(self.server).list_objects_v2(Bucket=self.bucket)
            return sorted(o["Key"] for o in listed.get("Contents", []))
        return sorted(f"{area}/{p.name}" for area, folder in self.storage.dirs.items() if folder.is_dir()
                      for p in folder.iterdir() if p.name not in self.before)

    before: frozenset = frozenset()
    env: dict = None  # the settings that name this storage, for a dashboard process of its own

    def key(self, key: str) -> str:
        """Where a key lands: `<prefix>/key` in the bucket, the key itself on disk."""
        return f"dashboard/{key}" if self.kind == "s3" else key


def _s3(server: services.S3Server):
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=services.S3_KEY_ID, aws_secret_access_key=services.S3_SECRET)


@pytest.fixture(params=["local", "s3"])
def kept(request, tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    monkeypatch.delenv("DASHBOARD_STORAGE_URL", raising=False)
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = server.make_bucket()
        env = server.env(bucket)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Kept("s3", storage.current(), bucket, server, env=env)
        return
    local = storage.current()
    before = frozenset(p.name for p in storage.STATIC_DIR.iterdir()) if storage.STATIC_DIR.is_dir() else frozenset()
    yield Kept("local", local, before=before)
    for name in {p.name for p in storage.STATIC_DIR.iterdir()} - before:  # the checkout's static/, as it was
        (storage.STATIC_DIR / name).unlink(missing_ok=True)


def _mock_http(content: bytes, mime: str) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, content=content, headers={"content-type": mime})))


def _download(content: bytes, mime: str = "video/mp4", **options) -> archive.ArchivedFile:
    return archive.download("https://cdn.test/out?_jwt=x", _mock_http(content, mime),
                            backend_url="https://api.dev.runwayml.com", **options)


# ---------------------------------------------------------------- the archive

def test_a_real_simulator_output_is_archived_with_its_poster(kept, tmp_path):
    with SimulatorServer(SimulatorConfig(state_dir=tmp_path / "sim", pending_seconds=0.1, run_seconds=0.2,
                                         max_side=96)) as server:
        client = httpx.Client(base_url=server.url, timeout=30, headers={
            "Authorization": f"Bearer {server.api_key}", "X-Runway-Version": "2024-11-06"})
        created = client.post("/v1/text_to_video", json={"model": "gen4.5", "promptText": "a kite over dunes",
                                                         "ratio": "1280:720", "duration": 5})
        assert created.status_code == 200, created.text
        for _ in range(600):
            task = client.get(f"/v1/tasks/{created.json()['id']}").json()
            if task["status"] == "SUCCEEDED":
                break
            time.sleep(0.05)
        [url] = task["output"]
        original = httpx.get(url).content
        saved = archive.download(url, archive.http_client(), backend_url=server.url)
    assert saved.mime == "video/mp4" and saved.size == len(original)
    assert saved.sha256 == hashlib.sha256(original).hexdigest()
    assert kept.storage.read_bytes(saved.path) == original
    poster = archive.poster_path(saved.path)
    assert archive.poster_url(saved.path) == archive.static_url(poster)
    assert kept.storage.read_bytes(poster)[:3] == b"\xff\xd8\xff"
    # Only the two, under their final keys: nothing partial, nothing left behind in the scratch folder.
    assert kept.objects() == sorted([kept.key(saved.path), kept.key(poster)])
    assert not list(kept.storage.scratch().glob(".*.part"))
    if kept.kind == "local":
        assert stat.S_IMODE(os.stat(storage.STATIC_DIR / Path(saved.path).name).st_mode) == 0o600


def test_html_is_refused_whatever_its_header_and_nothing_is_kept(kept):
    with pytest.raises(archive.ArchiveError, match="not an accepted media type"):
        _download(HTML, "image/png")
    assert kept.objects() == [] and not list(kept.storage.scratch().glob(".*.part"))


def test_an_output_over_the_cap_is_refused_and_nothing_is_kept(kept):
    with pytest.raises(archive.ArchiveError, match="cap"):
        _download(VIDEO + b"\0" * 300_000, max_bytes=200_000)
    assert kept.objects() == [] and not list(kept.storage.scratch().glob(".*.part"))


def test_a_large_output_goes_up_in_parts_and_reads_back_whole(kept):
    # Over one upload part: on S3 a multipart upload, whose object appears only once complete.
    big = VIDEO + os.urandom(storage.UPLOAD_PART + 1_000_000)
    saved = _download(big)
    assert kept.storage.size(saved.path) == len(big)
    assert hashlib.sha256(b"".join(kept.storage.read(saved.path))).hexdigest() == saved.sha256


def test_the_bucket_stays_private(kept):
    saved = _download(VIDEO)
    if kept.kind == "local":
        assert stat.S_IMODE(os.stat(storage.STATIC_DIR).st_mode) == 0o700
        return
    for key in (saved.path, archive.poster_path(saved.path)):
        grants = _s3(kept.server).get_object_acl(Bucket=kept.bucket, Key=kept.key(key))["Grants"]
        public = [g for g in grants if g["Grantee"].get("URI", "").endswith(("/AllUsers", "/AuthenticatedUsers"))]
        assert grants and public == [], grants
    # And nobody reaches the object without the credentials.
    assert httpx.get(f"{kept.server.url}/{kept.bucket}/{kept.key(saved.path)}").status_code == 403


def test_an_upload_leaves_its_file_and_never_replaces_an_object_when_asked_not_to(kept, tmp_path):
    # What the move command does with a team's archive folder: copy each file, keep the folder.
    small, big = tmp_path / "small.mp4", tmp_path / "big.mp4"
    small.write_bytes(VIDEO)
    big.write_bytes(VIDEO + os.urandom(storage.UPLOAD_PART + 300_000))  # in parts on S3
    keys = {}
    for source in (small, big):
        key = keys[source] = f"static/{secrets.token_urlsafe(18)}.mp4"
        sent = kept.storage.upload(key, source, if_absent=True, mime="video/mp4")
        assert sent == hashlib.sha256(source.read_bytes()).hexdigest()
        assert source.is_file()  # still there, unchanged
        assert storage.digest(kept.storage, key) == (source.stat().st_size, sent)
        # Asked again, with other bytes: the object stays as it was, and the caller is told.
        other = tmp_path / "other.mp4"
        other.write_bytes(b"someone else's")
        assert kept.storage.upload(key, other, if_absent=True) is None
        assert hashlib.sha256(b"".join(kept.storage.read(key))).hexdigest() == sent
    # Without if_absent an upload replaces the object (as `keep` does, which also removes the file).
    assert kept.storage.upload(keys[small], tmp_path / "other.mp4") == hashlib.sha256(b"someone else's").hexdigest()
    assert kept.storage.read_bytes(keys[small]) == b"someone else's"
    assert storage.digest(kept.storage, f"static/{secrets.token_urlsafe(18)}.mp4") is None
    assert sorted(kept.objects()) == sorted(kept.key(k) for k in keys.values())
    assert not list(kept.storage.scratch().glob(".*.part"))
    if kept.kind == "s3":  # the media type it was given, and only a media type
        head = _s3(kept.server).head_object(Bucket=kept.bucket, Key=kept.key(keys[big]))
        assert head["ContentType"] == "video/mp4"
        odd = f"static/{secrets.token_urlsafe(18)}.mp4"
        kept.storage.upload(odd, small, mime="video/mp4\r\nX-Amz-Acl: public-read")
        assert _s3(kept.server).head_object(Bucket=kept.bucket, Key=kept.key(odd))["ContentType"] != "video/mp4"
    else:
        assert stat.S_IMODE(os.stat(storage.STATIC_DIR / Path(keys[big]).name).st_mode) == 0o600
    with pytest.raises(ValueError):
        kept.storage.upload("static/../dashboard.db", small)


def test_an_upload_the_store_cannot_take_says_so_plainly(kept, tmp_path, monkeypatch):
    if kept.kind == "local":
        return
    source = tmp_path / "out.mp4"
    source.write_bytes(VIDEO)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(storage.StorageError) as raised:
        storage.current().upload(f"static/{secrets.token_urlsafe(18)}.mp4", source, if_absent=True)
    assert str(raised.value) == storage.DOWN and source.read_bytes() == VIDEO


# ---------------------------------------------------------------- the media route

def _client() -> TestClient:
    return TestClient(Starlette(routes=downloads.ROUTES))


def test_media_is_served_with_ranges_so_a_video_seeks(kept):
    data = VIDEO + os.urandom(700_000)
    saved = _download(data)
    url = archive.static_url(saved.path)
    with _client() as client:
        whole = client.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/mp4"
        part = client.get(url, headers={"Range": "bytes=100000-299999"})
        assert part.status_code == 206 and part.content == data[100000:300000]
        assert part.headers["content-range"] == f"bytes 100000-299999/{len(data)}"
        assert part.headers["content-length"] == "200000"
        tail = client.get(url, headers={"Range": "bytes=-1000"})
        assert tail.status_code == 206 and tail.content == data[-1000:]
        rest = client.get(url, headers={"Range": f"bytes={len(data) - 10}-"})
        assert rest.status_code == 206 and rest.content == data[-10:]
        beyond = client.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
        poster = client.get(archive.poster_url(saved.path))
        assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
        # Only a name the archive writes, and never a listing.
        for wrong in (f"/app/static/{secrets.token_urlsafe(18)}.mp4", "/app/static/", "/app/static/..%2Fdashboard.db",
                      "/app/static/.hidden.part", "/app/static/a/b.mp4"):
            assert client.get(wrong).status_code == 404, wrong


def test_a_single_output_download_streams_from_the_store(kept, sqlite_store, fake_backend, fake_runway):
    task_id, output = _archived_task(sqlite_store, fake_backend, fake_runway, VIDEO)
    link = downloads.output_link(sqlite_store.task(task_id), output)
    with _client() as client:
        answer = client.get(link)
    assert answer.status_code == 200 and answer.content == VIDEO
    assert answer.headers["content-disposition"].startswith("attachment;")


# ---------------------------------------------------------------- the ZIP

def _archived_task(store, backend, fake_runway, content: bytes, mime: str = "video/mp4"):
    result = submit_task(store, backend, task_type="text_to_video", model_id="gen4.5",
                         inputs={"promptText": "a kite", "ratio": "1280:720", "duration": 5})
    assert result.ok, result
    uuid = store.task(result.task_id)["task_uuid"]
    poller = Poller(store.path, [backend], interval=5)
    poller._http = _mock_http(content, mime)
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["https://cdn.test/out.mp4?_jwt=x"],
                                   cost={"credits": 60})
    try:
        poller.poll_once(now=2e9)
        assert poller.archive_once() == 1
    finally:
        poller.stop()
    [output] = store.outputs_for([result.task_id])[result.task_id]
    return result.task_id, output


def test_the_zip_export_is_made_from_the_store(kept, sqlite_store, fake_backend, fake_runway):
    task_id, output = _archived_task(sqlite_store, fake_backend, fake_runway, VIDEO)
    with _client() as client:
        answer = client.get(downloads.zip_link(queries.Filters()))
    assert answer.status_code == 200
    bundle = zipfile.ZipFile(io.BytesIO(answer.content))
    [video] = [n for n in bundle.namelist() if n.endswith(".mp4")]
    assert bundle.read(video) == VIDEO and "manifest.csv" in bundle.namelist()


# ---------------------------------------------------------------- the input stash

def test_a_stashed_input_round_trips_and_goes_with_its_last_task(kept, sqlite_store):
    image = media_samples.noisy_png(96)
    uri = "data:image/png;base64," + __import__("base64").b64encode(image).decode()
    body = {"promptImage": uri, "promptText": "a kite"}
    stored = sqlite_store.stash_request(body)
    name = f"{hashlib.sha256(image).hexdigest()}.png"
    assert stored["promptImage"] == f"stored:image/png:{name}"
    assert kept.storage.read_bytes(f"inputs/{name}") == image
    assert kept.key(f"inputs/{name}") in kept.objects()
    assert sqlite_store.restore_request(stored) == body
    sqlite_store._remove_unused_inputs({name})
    assert kept.key(f"inputs/{name}") not in kept.objects()


# ---------------------------------------------------------------- a store that does not answer

def test_a_submission_whose_inputs_the_store_cannot_take_sends_nothing(kept, sqlite_store, fake_backend,
                                                                        fake_runway, tmp_path, monkeypatch):
    if kept.kind == "s3":
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    else:
        sqlite_store.stash_dir.write_text("not a folder")
    image = media_samples.noisy_png(96)
    uri = "data:image/png;base64," + __import__("base64").b64encode(image).decode()
    result = submit_task(sqlite_store, fake_backend, task_type="image_to_video", model_id="gen4_turbo",
                         inputs={"promptImage": uri, "ratio": "1280:720", "duration": 5})
    assert not result.ok and result.error.startswith("Nothing was sent"), result
    assert fake_runway.bodies() == []
    if kept.kind == "s3":
        assert storage.DOWN in result.error and "127.0.0.1" not in result.error


def test_a_store_that_does_not_answer_leaves_the_output_at_risk_and_it_is_retried(
        kept, sqlite_store, fake_backend, fake_runway, tmp_path, monkeypatch):
    result = submit_task(sqlite_store, fake_backend, task_type="text_to_video", model_id="gen4.5",
                         inputs={"promptText": "a kite", "ratio": "1280:720", "duration": 5})
    uuid = sqlite_store.task(result.task_id)["task_uuid"]
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["https://cdn.test/out.mp4?_jwt=x"])
    if kept.kind == "s3":  # nothing listens there: moto, as good as stopped
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        static_dir = None
    else:  # a folder that cannot be made: the disk refuses the write
        static_dir = tmp_path / "static"
        static_dir.write_text("not a folder")
    poller = Poller(sqlite_store.path, [fake_backend], interval=5, static_dir=static_dir)
    poller._http = _mock_http(VIDEO, "video/mp4")
    try:
        poller.poll_once(now=2e9)
        assert poller.archive_once() == 0
        [output] = sqlite_store.outputs_for([result.task_id])[result.task_id]
        assert output["state"] == "at_risk" and output["url"] and output["path"] is None
        if kept.kind == "s3":
            assert output["last_error"] == archive.STORE_DOWN
            assert "127.0.0.1" not in output["last_error"] and services.S3_SECRET not in output["last_error"]
            monkeypatch.setenv("AWS_ENDPOINT_URL", kept.server.url)
        else:
            assert "could not be written" in output["last_error"]
            static_dir.unlink()
        sqlite_store.conn.execute("UPDATE outputs SET next_attempt_at = 0")
        assert poller.archive_once() == 1
    finally:
        poller.stop()
    [output] = sqlite_store.outputs_for([result.task_id])[result.task_id]
    assert output["state"] == "archived"
    assert archive.storage_for(static_dir).read_bytes(output["path"]) == VIDEO


def test_the_media_route_says_plainly_when_the_store_does_not_answer(kept, monkeypatch):
    saved = _download(VIDEO)
    if kept.kind == "local":
        (storage.STATIC_DIR / Path(saved.path).name).unlink()
        with _client() as client:
            assert client.get(archive.static_url(saved.path)).status_code == 404
        return
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with _client() as client:
        answer = client.get(archive.static_url(saved.path))
    assert answer.status_code == 503 and answer.text == downloads.STORE_DOWN_PAGE


def test_errors_never_name_the_endpoint_or_the_credentials(kept, monkeypatch):
    if kept.kind == "local":
        return
    missing = f"missing-{secrets.token_hex(4)}"
    monkeypatch.setenv("DASHBOARD_STORAGE_URL", f"s3://{missing}/dashboard")
    with pytest.raises(archive.ArchiveError) as raised:
        _download(VIDEO)
    text = str(raised.value)
    assert kept.server.url not in text and missing not in text and services.S3_SECRET not in text
    assert "kept at Runway's URL" in text


# ---------------------------------------------------------------- in a browser

def test_chromium_plays_and_seeks_an_archived_video_through_the_app(kept, tmp_path, page):
    video = media_samples.mp4(6)
    path = f"static/{secrets.token_urlsafe(18)}.mp4"
    kept.storage.put_bytes(path, video)
    with Dashboard(tmp_path, **(kept.env or {})) as app:  # the storage settings of `kept` (a child inherits none)
        page.goto(app.url)
        page.get_by_text("Runway task dashboard").first.wait_for(timeout=60_000)
        duration, at, seekable = page.evaluate("""async src => {
            const v = document.createElement('video'); v.muted = true; v.preload = 'auto'; v.src = src;
            document.body.appendChild(v);
            await new Promise((ok, no) => { v.onloadedmetadata = ok;
                                            v.onerror = () => no(new Error('' + v.error.code)); });
            v.currentTime = 4;
            await new Promise(ok => { v.onseeked = ok; });
            return [v.duration, v.currentTime, v.seekable.length ? v.seekable.end(0) : 0]; }""",
                                               archive.static_url(path))
    assert duration > 5 and abs(at - 4) < 0.5 and seekable > 5
