"""The simulator against Runway's own contract, spoken to by the official SDK:
every endpoint and model of lib/contract (the 99 pairs of runwayml 5.24.0 and
the seed's simulator-only ones) is accepted with a minimal body and with every
optional field, runs to SUCCEEDED and gives media of its kind; a value outside
an enum is refused under its field; the usage endpoint adds up what the tasks
cost."""
from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import runwayml
from PIL import Image

from lib import contract, media
from lib.contract import API_VERSION
from lib.simulator import SimulatorConfig, SimulatorServer
from tests.support import media_samples

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [(endpoint, model_id) for endpoint, model_id, _ in contract.models()]
LIVE = [(endpoint, model_id) for endpoint, model_id, spec in contract.models() if not spec["simulator_only"]]
INPUT_IMAGE = (64, 48)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = SimulatorConfig(state_dir=tmp_path_factory.mktemp("simulator"), pending_seconds=0.1, run_seconds=0.1,
                             max_side=64, concurrency=100, credits=10_000_000, daily_limit=1000)
    with SimulatorServer(config) as running:
        yield running


@pytest.fixture(scope="module")
def inputs():
    """Tiny real media for every media field, as data URIs."""
    return {"image": media.encode_data_uri("image/png", media_samples.png(*INPUT_IMAGE)),
            "video": media.encode_data_uri("video/mp4", media_samples.mp4(1.0)),
            "audio": media.encode_data_uri("audio/wav", media_samples.wav(1.0))}


@pytest.fixture(scope="module")
def sdk(server):
    return runwayml.RunwayML(api_key=server.api_key, base_url=server.url, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def http(server):
    return httpx.Client(base_url=server.url, timeout=30, headers={
        "Authorization": f"Bearer {server.api_key}", "X-Runway-Version": API_VERSION})


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def create(sdk: runwayml.RunwayML, http: httpx.Client, endpoint: str, body: dict) -> str:
    """A task made through the SDK's own method for the endpoint, or plain HTTP where it has
    none (or for a simulator-only model, whose fields the SDK's types do not take)."""
    resource = getattr(sdk, endpoint.removeprefix("/v1/"), None)
    if resource is None or contract.model(endpoint, body["model"])["simulator_only"]:
        answer = http.post(endpoint, json=body)
        assert answer.status_code == 200, (endpoint, body["model"], answer.text)
        created = answer.json()
        task_id, cost = created["id"], created["estimatedCost"]["credits"]
    else:
        # Nested objects keep their JSON names: the SDK passes keys it has no alias for as they are.
        created = resource.create(**{snake(name): value for name, value in body.items()}).to_dict()
        # Every create answers with its estimate, though the SDK's avatar type does not name it.
        task_id, cost = created["id"], created["estimatedCost"]["credits"]
    assert cost > 0
    return task_id


def kind_of_output(data: bytes) -> str | None:
    """The media kind a downloaded output's first bytes say it is."""
    if data[4:8] == b"ftyp":
        return "video"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio"
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "audio"
    return None


def run(sdk, http, endpoint: str, body: dict) -> tuple[str, str, dict, bytes]:
    """Create a task, wait until it ends, and download its output."""
    task_id = create(sdk, http, endpoint, body)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        task = sdk.tasks.retrieve(task_id)
        if task.status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.1)
    assert task.status == "SUCCEEDED", (endpoint, body["model"], task)
    output = httpx.get(task.output[0], timeout=30)
    assert output.status_code == 200
    return endpoint, body["model"], task.to_dict(), output.content


def run_all(sdk, http, bodies: list[tuple[str, dict]]) -> list[tuple[str, str, dict, bytes]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda job: run(sdk, http, *job), bodies))


@pytest.fixture(scope="module")
def minimal_runs(sdk, http, inputs):
    return run_all(sdk, http, [(e, contract.minimal_body(e, m, inputs)) for e, m in PAIRS])


def test_the_contract_has_the_sdks_99_pairs_and_the_seeds_own():
    assert len(LIVE) == 99 and len({m for _, m in LIVE}) == 62
    assert len(PAIRS) > len(LIVE)


def test_every_pair_with_a_minimal_body_succeeds_with_media_of_its_kind(minimal_runs):
    assert len(minimal_runs) == len(PAIRS)
    wrong = [(e, m, kind_of_output(data), contract.output_kind(e, m)) for e, m, _, data in minimal_runs
             if kind_of_output(data) != contract.output_kind(e, m)]
    assert wrong == []
    kinds = {e: kind_of_output(data) for e, _, _, data in minimal_runs}
    assert {e: kinds[e] for e in ("/v1/text_to_speech", "/v1/speech_to_speech", "/v1/voice_dubbing",
                                  "/v1/voice_isolation", "/v1/video_to_audio")} == dict.fromkeys(
        ("/v1/text_to_speech", "/v1/speech_to_speech", "/v1/voice_dubbing", "/v1/voice_isolation",
         "/v1/video_to_audio"), "audio")
    assert kinds["/v1/video_to_hdr"] == kinds["/v1/avatar_videos"] == "video"


def test_an_image_upscale_is_larger_than_its_input(minimal_runs):
    [(_, _, _, data)] = [run for run in minimal_runs if run[0] == "/v1/image_upscale"]
    picture = Image.open(io.BytesIO(data))
    assert picture.width > INPUT_IMAGE[0] and picture.height > INPUT_IMAGE[1]
    assert abs(picture.width / picture.height - INPUT_IMAGE[0] / INPUT_IMAGE[1]) < 0.05


@pytest.fixture(scope="module")
def full_runs(sdk, http, inputs):
    return run_all(sdk, http, [(e, contract.full_body(e, m, inputs)) for e, m in PAIRS])


def test_every_model_with_every_optional_field_is_accepted_and_succeeds(full_runs):
    assert len(full_runs) == len(PAIRS)
    assert [(e, m) for e, m, _, data in full_runs if kind_of_output(data) != contract.output_kind(e, m)] == []


def _enum_path(shape: dict, value, path: list) -> list | None:
    """The path of the first enum inside a sample value, walked along its shape."""
    kind = shape["type"]
    if kind == "enum":
        return path
    if kind == "object" and isinstance(value, dict):
        for name, spec in shape["fields"].items():
            if name in value and (found := _enum_path(spec["shape"], value[name], [*path, name])):
                return found
    if kind == "union":
        for option in shape["options"]:
            if not contract.check(option, value, path):
                return _enum_path(option, value, path)
    return None


def _invalid_enum(endpoint: str, model_id: str) -> tuple[dict, list]:
    """A full body with one enum value (a field's own first, then a nested one, then model) outside its Literal."""
    body = contract.full_body(endpoint, model_id)
    fields = contract.model(endpoint, model_id)["fields"]
    names = sorted(fields, key=lambda name: (name == "model", fields[name]["shape"]["type"] != "enum"))
    path = next(found for name in names if (found := _enum_path(fields[name]["shape"], body[name], [name])))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = -12345 if isinstance(target[path[-1]], (int, float)) else "not_a_runway_value"
    return body, path


@pytest.mark.parametrize("endpoint, model_id", PAIRS, ids=[f"{e.removeprefix('/v1/')}-{m}" for e, m in PAIRS])
def test_a_value_outside_an_enum_is_refused_under_its_field(http, endpoint, model_id):
    body, path = _invalid_enum(endpoint, model_id)
    answer = http.post(endpoint, json=body)
    assert answer.status_code == 400
    refused = answer.json()
    assert refused["error"] and any(issue["path"][:1] == path[:1] for issue in refused["issues"]), refused


def test_usage_adds_up_what_the_tasks_cost_per_model_and_day(sdk, minimal_runs, full_runs):
    spent: dict[str, int] = {}
    for _, model_id, task, _ in minimal_runs + full_runs:
        spent[model_id] = spent.get(model_id, 0) + task["cost"]["credits"]
    today = datetime.now(timezone.utc).date()
    usage = sdk.organization.retrieve_usage(start_date=today - timedelta(days=1), before_date=today + timedelta(days=1))
    counted: dict[str, int] = {}
    for day in usage.results:
        assert day.date in (today - timedelta(days=1), today)  # a run across midnight spans two days
        for used in day.used_credits:
            counted[used.model] = counted.get(used.model, 0) + used.amount
    assert counted == spent and all(credits > 0 for credits in spent.values())
    assert sorted(usage.models) == sorted(spent)


def test_usage_is_refused_past_90_days(sdk):
    start = datetime.now(timezone.utc).date() - timedelta(days=100)
    assert sdk.organization.retrieve_usage(start_date=start, before_date=start + timedelta(days=90)).results == []
    with pytest.raises(runwayml.BadRequestError) as refused:
        sdk.organization.retrieve_usage(start_date=start, before_date=start + timedelta(days=91))
    assert refused.value.status_code == 400 and refused.value.body["issues"][0]["path"] == ["beforeDate"]


def test_the_organization_lists_every_contract_models_limits(sdk, server):
    organization = sdk.organization.retrieve()
    ids = {model_id for _, model_id in PAIRS}
    assert set(organization.tier.models) == ids == set(organization.usage.models)
    assert organization.tier.models["gen4.5"].max_concurrent_generations == server.config.concurrency
    assert organization.tier.models["ruby"].max_daily_generations == server.config.daily_limit


def test_the_simulator_loads_the_contract_and_none_of_the_dashboard():
    script = "import sys, lib.simulator; print(' '.join(sorted(m for m in sys.modules if m.startswith('lib.'))))"
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    modules = set(loaded.stdout.split())
    # lib.settings is the one reader of the environment (SIMULATOR_*), and imports nothing of the dashboard.
    assert "lib.contract" in modules and modules <= {"lib.contract", "lib.media", "lib.settings"} | {
        m for m in modules if m.startswith("lib.simulator")}
