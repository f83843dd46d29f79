"""The Runway simulator, driven over real HTTP like any client would: headers,
validation, the task lifecycle, media outputs, limits, uploads, faults and
restarts."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from lib import media
from lib.contract import API_VERSION
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.simulator.render import probe

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def start(tmp_path):
    """Start a simulator with short timings; every one started is stopped afterwards."""
    servers = []

    def start(state_dir: Path | None = None, **overrides) -> SimulatorServer:
        options = {"pending_seconds": 0.2, "run_seconds": 0.6, "max_side": 160, **overrides}
        state_dir = state_dir or tmp_path / f"simulator-{len(servers)}"
        server = SimulatorServer(SimulatorConfig(state_dir=state_dir, **options)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def api(server: SimulatorServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10, headers={
        "Authorization": f"Bearer {server.api_key}", "X-Runway-Version": API_VERSION})


def wait_for(client: httpx.Client, task_id: str, *statuses: str, timeout: float = 10) -> tuple[dict, list[str]]:
    """Poll a task until it reaches one of `statuses`; returns it and the statuses seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/v1/tasks/{task_id}").json()
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] in statuses:
            return task, seen
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} never reached {statuses}; saw {seen}")


def text_to_video(client: httpx.Client, prompt: str = "a red fox in the snow", **extra) -> httpx.Response:
    return client.post("/v1/text_to_video", json={
        "model": "gen4.5", "promptText": prompt, "ratio": "1280:720", "duration": 2, **extra})


def download(url: str, path: Path) -> Path:
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    path.write_bytes(answer.content)
    return path


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    pixels = np.zeros((size[1], size[0], 3), np.uint8) + np.array(colour, np.uint8)
    if noise:  # noise keeps the PNG above the 512-byte upload minimum
        pixels[..., 2] = np.random.default_rng(1).integers(200, 256, size=(size[1], size[0]))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def centre_of_first_frame(video: Path) -> tuple[int, int, int]:
    frame = video.with_suffix(".frame.png")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(video),
                    "-frames:v", "1", str(frame)], check=True)
    image = Image.open(frame).convert("RGB")
    return image.getpixel((image.width // 2, image.height // 2))


# ---------------------------------------------------------------- headers and validation

def test_requests_need_the_right_key(start):
    server = start()
    assert re.fullmatch(r"key_[0-9a-f]{128}", server.api_key)
    version = {"X-Runway-Version": API_VERSION}
    missing = httpx.get(f"{server.url}/v1/organization", headers=version)
    wrong = httpx.get(f"{server.url}/v1/organization", headers={**version, "Authorization": "Bearer key_" + "0" * 128})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"] and wrong.json()["error"]
    health = httpx.get(f"{server.url}/health").json()
    assert health["simulator"] is True and health["instance"]


def test_requests_need_the_version_header(start):
    server = start()
    auth = {"Authorization": f"Bearer {server.api_key}"}
    assert httpx.get(f"{server.url}/v1/organization", headers=auth).status_code == 400
    old = httpx.get(f"{server.url}/v1/organization", headers={**auth, "X-Runway-Version": "2024-09-13"})
    assert old.status_code == 400 and "X-Runway-Version" in old.json()["error"]


def test_invalid_inputs_are_reported_field_by_field(start):
    client = api(start())
    answer = client.post("/v1/text_to_video", json={
        "model": "gen4.5", "promptText": "x" * 1001, "ratio": "960:960", "duration": 5})
    assert answer.status_code == 400
    body = answer.json()
    paths = [issue["path"] for issue in body["issues"]]
    assert ["ratio"] in paths and ["promptText"] in paths
    assert body["error"] == body["issues"][0]["message"]
    assert all(issue["code"] == "invalid" for issue in body["issues"])
    assert "960:960" in next(i["message"] for i in body["issues"] if i["path"] == ["ratio"])


def test_unknown_model_and_non_json_bodies_are_400(start):
    client = api(start())
    unknown = client.post("/v1/text_to_video", json={"model": "gen9", "promptText": "hi"})
    assert unknown.status_code == 400 and unknown.json()["issues"][0]["path"] == ["model"]
    garbage = client.post("/v1/text_to_video", content=b"not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["error"]


def test_unknown_task_is_404(start):
    answer = api(start()).get("/v1/tasks/00000000-0000-4000-8000-000000000000")
    assert answer.status_code == 404 and answer.json() == {"error": "Task not found"}


# ---------------------------------------------------------------- lifecycle and outputs

def test_text_to_video_runs_to_a_playable_mp4(start, tmp_path):
    client = api(start(pending_seconds=0.5, run_seconds=2))  # a RUNNING window a busy machine still sees
    created = text_to_video(client)
    assert created.status_code == 200
    assert created.json()["estimatedCost"] == {"credits": 24}
    task_id = created.json()["id"]

    first = client.get(f"/v1/tasks/{task_id}").json()
    assert first["status"] == "PENDING" and first["estimatedCost"] == {"credits": 24}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["createdAt"])
    running, _ = wait_for(client, task_id, "RUNNING")
    assert 0 <= running["progress"] < 1
    done, seen = wait_for(client, task_id, "SUCCEEDED", "FAILED")
    assert seen[0] == "RUNNING" and seen[-1] == "SUCCEEDED"
    assert "model" not in done and "progress" not in done and "estimatedCost" not in done
    assert done["cost"] == {"credits": 24}

    url = done["output"][0]
    video = download(url, tmp_path / "out.mp4")
    info = probe(video)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["width"] <= 160 and info["width"] % 2 == 0 and info["height"] % 2 == 0
    assert abs(info["width"] / info["height"] - 16 / 9) < 0.05
    assert abs(info["duration"] - 2) < 0.2

    head = httpx.head(url)
    assert head.headers["content-type"] == "video/mp4"
    assert int(head.headers["content-length"]) == video.stat().st_size
    part = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == video.read_bytes()[:100]


def test_image_to_video_starts_from_the_prompt_image(start, tmp_path):
    client = api(start())
    created = client.post("/v1/image_to_video", json={
        "model": "gen4_turbo", "promptImage": media.encode_data_uri("image/png", png_bytes((220, 20, 20))),
        "ratio": "960:960", "duration": 2})
    assert created.status_code == 200, created.text
    done, _ = wait_for(client, created.json()["id"], "SUCCEEDED", "FAILED")
    video = download(done["output"][0], tmp_path / "i2v.mp4")
    info = probe(video)
    assert info["codec"] == "h264" and info["width"] == info["height"] == 160
    red, green, blue = centre_of_first_frame(video)
    assert red > 170 and green < 70 and blue < 70


def test_text_to_image_gives_a_png(start, tmp_path):
    client = api(start())
    created = client.post("/v1/text_to_image", json={
        "model": "gen4_image", "promptText": "a lighthouse at dusk", "ratio": "1360:768"})
    done, _ = wait_for(client, created.json()["id"], "SUCCEEDED", "FAILED")
    assert done["cost"] == {"credits": 8}
    answer = httpx.get(done["output"][0])
    assert answer.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(answer.content))
    assert image.format == "PNG" and image.width == 160 and abs(image.width / image.height - 1360 / 768) < 0.05


def test_sound_effect_gives_an_mp3(start, tmp_path):
    client = api(start())
    created = client.post("/v1/sound_effect", json={
        "model": "eleven_text_to_sound_v2", "promptText": "a door creaks", "duration": 1.5})
    done, _ = wait_for(client, created.json()["id"], "SUCCEEDED", "FAILED")
    assert httpx.head(done["output"][0]).headers["content-type"] == "audio/mpeg"
    info = probe(download(done["output"][0], tmp_path / "sfx.mp3"))
    assert info["codec"] == "mp3" and abs(info["duration"] - 1.5) < 0.15


def test_an_unreadable_input_fails_the_task(start):
    client = api(start())
    created = client.post("/v1/image_to_video", json={
        "model": "gen4_turbo", "promptImage": media.encode_data_uri("image/png", b"not a picture" * 10),
        "ratio": "1280:720"})
    assert created.status_code == 200
    done, _ = wait_for(client, created.json()["id"], "SUCCEEDED", "FAILED")
    assert done["status"] == "FAILED" and done["failureCode"] == "ASSET.INVALID"
    assert done["cost"] == {"credits": 0}


def test_tasks_past_the_concurrency_limit_are_throttled_in_order(start):
    client = api(start(concurrency=2, pending_seconds=0.5, run_seconds=0.6))
    ids = [text_to_video(client, f"shot {n}").json()["id"] for n in range(3)]
    other_model = client.post("/v1/image_to_video", json={
        "model": "gen4_turbo", "promptImage": media.encode_data_uri("image/png", png_bytes((0, 0, 200))),
        "ratio": "1280:720"}).json()["id"]
    statuses = [client.get(f"/v1/tasks/{task_id}").json()["status"] for task_id in ids]
    assert statuses == ["PENDING", "PENDING", "THROTTLED"]
    assert client.get(f"/v1/tasks/{other_model}").json()["status"] == "PENDING"  # limits are per model

    wait_for(client, ids[0], "SUCCEEDED")
    third = client.get(f"/v1/tasks/{ids[2]}").json()
    assert third["status"] in ("PENDING", "RUNNING")
    assert wait_for(client, ids[2], "SUCCEEDED", "FAILED")[0]["status"] == "SUCCEEDED"


def test_flagged_prompt_fails_with_a_safety_code(start):
    client = api(start())
    task_id = text_to_video(client, "something #unsafe").json()["id"]
    done, seen = wait_for(client, task_id, "SUCCEEDED", "FAILED")
    assert "RUNNING" not in seen
    assert done["failureCode"] == "SAFETY.INPUT.TEXT"
    assert done["failure"] == "The prompt was flagged by content moderation."
    assert done["cost"] == {"credits": 0} and "output" not in done


def test_glitch_prompt_runs_then_fails(start):
    client = api(start())
    task_id = text_to_video(client, "a #glitch in the matrix").json()["id"]
    done, seen = wait_for(client, task_id, "SUCCEEDED", "FAILED")
    assert "RUNNING" in seen
    assert done["failureCode"] == "INTERNAL.BAD_OUTPUT.CODE01" and done["cost"] == {"credits": 0}


def test_cancel_charges_only_once_running(start):
    client = api(start(credits=1000, pending_seconds=0.5))
    pending = text_to_video(client, "cancel me early").json()["id"]
    assert client.delete(f"/v1/tasks/{pending}").status_code == 204
    cancelled = client.get(f"/v1/tasks/{pending}").json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cost"] == {"credits": 0}

    running = text_to_video(client, "cancel me late").json()["id"]
    wait_for(client, running, "RUNNING")
    delete = client.delete(f"/v1/tasks/{running}")
    assert delete.status_code == 204 and delete.content == b""
    assert client.get(f"/v1/tasks/{running}").json()["cost"] == {"credits": 24}
    assert client.get("/v1/organization").json()["creditBalance"] == 1000 - 24


def test_deleting_a_finished_task_removes_it(start):
    client = api(start())
    task_id = text_to_video(client).json()["id"]
    done, _ = wait_for(client, task_id, "SUCCEEDED")
    assert client.delete(f"/v1/tasks/{task_id}").status_code == 204
    assert client.get(f"/v1/tasks/{task_id}").status_code == 404
    assert client.delete(f"/v1/tasks/{task_id}").status_code == 404
    assert httpx.get(done["output"][0]).status_code == 404


def test_output_urls_expire_and_are_signed_afresh(start):
    clock = FakeClock()
    client = api(start(clock=clock, output_ttl_seconds=3600))
    task_id = text_to_video(client).json()["id"]
    clock.now += 5
    done, _ = wait_for(client, task_id, "SUCCEEDED")
    url = done["output"][0]
    assert httpx.get(url).status_code == 200
    assert httpx.get(url.replace("sig=", "sig=0")).status_code == 403

    clock.now += 3601
    assert httpx.get(url).status_code == 403
    fresh = client.get(f"/v1/tasks/{task_id}").json()["output"][0]
    assert fresh != url and httpx.get(fresh).status_code == 200


def test_organization_reports_balance_limits_and_usage(start):
    client = api(start(credits=500, concurrency=3, daily_limit=40))
    before = client.get("/v1/organization").json()
    assert before["creditBalance"] == 500
    assert before["tier"]["models"]["gen4.5"] == {"maxConcurrentGenerations": 3, "maxDailyGenerations": 40}
    assert isinstance(before["tier"]["maxMonthlyCreditSpend"], int)

    wait_for(client, text_to_video(client).json()["id"], "SUCCEEDED")
    after = client.get("/v1/organization").json()
    assert after["creditBalance"] == 500 - 24
    assert after["usage"]["models"]["gen4.5"] == {"dailyGenerations": 1}


def test_daily_limit_answers_429_for_a_rolling_day(start):
    clock = FakeClock()
    client = api(start(clock=clock, daily_limit=1))
    assert text_to_video(client).status_code == 200
    refused = text_to_video(client)
    assert refused.status_code == 429 and refused.json() == {"error": "Daily generation limit reached for gen4.5"}
    clock.now += 24 * 3600 + 1
    assert text_to_video(client).status_code == 200


def test_a_task_costing_more_than_the_balance_is_refused(start):
    answer = text_to_video(api(start(credits=10)))
    assert answer.status_code == 400 and "credits" in answer.json()["error"]


def test_uploaded_file_can_be_used_by_its_runway_uri(start, tmp_path):
    server = start()
    client = api(server)
    grant = client.post("/v1/uploads", json={"filename": "blue.png", "type": "ephemeral"}).json()
    assert grant["runwayUri"].startswith("runway://")

    too_small = httpx.post(grant["uploadUrl"], data=grant["fields"], files={"file": ("blue.png", b"x" * 100)})
    assert too_small.status_code == 400
    picture = png_bytes((0, 0, 255), noise=True)
    assert len(picture) >= 512
    stored = httpx.post(grant["uploadUrl"], data=grant["fields"], files={"file": ("blue.png", picture, "image/png")})
    assert stored.status_code == 204

    created = client.post("/v1/image_to_video", json={
        "model": "gen4_turbo", "promptImage": grant["runwayUri"], "ratio": "1280:720", "duration": 2})
    assert created.status_code == 200, created.text
    done, _ = wait_for(client, created.json()["id"], "SUCCEEDED", "FAILED")
    red, green, blue = centre_of_first_frame(download(done["output"][0], tmp_path / "from-upload.mp4"))
    assert blue > 170 and red < 70 and green < 70

    unknown = client.post("/v1/image_to_video", json={
        "model": "gen4_turbo", "promptImage": "runway://uploads/nope", "ratio": "1280:720"})
    assert unknown.status_code == 400 and unknown.json()["issues"][0]["path"] == ["promptImage"]


# ---------------------------------------------------------------- faults and the request log

def test_fault_rules_apply_to_the_next_matching_requests(start):
    server = start()
    client = api(server)
    assert httpx.post(f"{server.url}/_simulator/faults", json={"rules": []}).status_code == 401
    rules = [{"path_prefix": "/v1/tasks", "method": "GET", "status": 503, "count": 2, "retry_after": 1}]
    assert client.post("/_simulator/faults", json={"rules": rules}).status_code == 200
    client.delete("/_simulator/requests")

    answers = [client.get("/v1/tasks/00000000-0000-4000-8000-000000000000") for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 404]
    assert answers[0].headers["retry-after"] == "1"
    assert client.get("/v1/organization").status_code == 200  # other paths are untouched

    log = client.get("/_simulator/requests")
    entries = log.json()["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/v1/tasks/00000000-0000-4000-8000-000000000000", 503),
        ("GET", "/v1/tasks/00000000-0000-4000-8000-000000000000", 503),
        ("GET", "/v1/tasks/00000000-0000-4000-8000-000000000000", 404),
        ("GET", "/v1/organization", 200)]
    assert all(e["auth"] is True and isinstance(e["time"], float) for e in entries)
    assert server.api_key not in log.text


def test_delay_drop_malformed_and_unknown_status_faults(start):
    server = start()
    client = api(server)
    task_id = text_to_video(client).json()["id"]
    client.post("/_simulator/faults", json={"rules": [
        {"delay": 0.5, "count": 1}, {"drop": True, "count": 1}, {"malformed": True, "count": 1},
        {"status_value": "WEIRD_NEW_STATUS", "count": 1}]})

    began = time.monotonic()
    assert client.get(f"/v1/tasks/{task_id}").status_code == 200
    assert time.monotonic() - began >= 0.5
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"/v1/tasks/{task_id}")
    with pytest.raises(json.JSONDecodeError):
        client.get(f"/v1/tasks/{task_id}").json()
    assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "WEIRD_NEW_STATUS"
    assert client.get(f"/v1/tasks/{task_id}").json()["status"] in ("PENDING", "RUNNING", "SUCCEEDED")

    client.post("/_simulator/faults", json={"rules": [{"status": 500, "count": 5}]})
    assert client.delete("/_simulator/faults").json() == {"rules": []}
    assert client.get(f"/v1/tasks/{task_id}").status_code == 200


# ---------------------------------------------------------------- persistence and sharing

def test_a_restarted_simulator_still_knows_its_tasks(start, tmp_path):
    state_dir = tmp_path / "shared-state"
    first = start(state_dir)
    client = api(first)
    finished = text_to_video(client, "before the restart").json()["id"]
    wait_for(client, finished, "SUCCEEDED")
    unfinished = text_to_video(client, "across the restart").json()["id"]
    key = first.api_key
    first.stop()

    second = start(state_dir)
    assert second.api_key == key
    client = api(second)
    done = client.get(f"/v1/tasks/{finished}").json()
    assert done["status"] == "SUCCEEDED" and done["output"][0].startswith(second.url)
    assert httpx.get(done["output"][0]).status_code == 200
    assert wait_for(client, unfinished, "SUCCEEDED", "FAILED")[0]["status"] == "SUCCEEDED"


def test_a_second_process_reuses_the_running_simulator(tmp_path):
    state_dir = tmp_path / "embedded"
    script = ("import sys, time; from lib.simulator import ensure_simulator; "
              "print(*ensure_simulator(sys.argv[1]), flush=True); time.sleep(float(sys.argv[2]))")
    env = {**os.environ, "SIMULATOR_MAX_SIDE": "160"}
    owner = subprocess.Popen([sys.executable, "-c", script, str(state_dir), "30"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        url, key = owner.stdout.readline().split()
        again = subprocess.run([sys.executable, "-c", script, str(state_dir), "0"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=30)
        assert again.stdout.split() == [url, key]
        assert json.loads((state_dir / "simulator.json").read_text())["port"] == int(url.rsplit(":", 1)[1])
    finally:
        owner.kill()
        owner.wait()


def test_config_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("SIMULATOR_PENDING_SECONDS", raising=False)
    monkeypatch.setenv("SIMULATOR_RUN_SECONDS", "3.5")
    monkeypatch.setenv("SIMULATOR_CONCURRENCY", "4")
    monkeypatch.setenv("SIMULATOR_MAX_SIDE", "320")
    config = SimulatorConfig()
    assert (config.run_seconds, config.concurrency, config.max_side, config.pending_seconds) == (3.5, 4, 320, 2)
