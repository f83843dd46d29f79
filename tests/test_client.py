"""lib/client.py against httpx.MockTransport: the requests it sends, what it
makes of each answer, and when it sends a request again."""
from __future__ import annotations

import json

import httpx
import pytest

from lib import lifecycle
from lib.client import (
    AuthenticationError,
    BadRequest,
    ConnectionFailed,
    CreatedTask,
    CreateOutcomeUnknown,
    MalformedResponse,
    NotFound,
    RateLimited,
    RunwayClient,
    RunwayError,
    ServerError,
    Timeout,
)

KEY = "key_" + "0123456789abcdef" * 8
BASE = "http://runway.test"
TASK_ID = "17f20503-6c24-4c16-946b-35dbbce2af2f"
CREATED_AT = "2026-11-02T10:00:00.000Z"


class Script:
    """A MockTransport handler: answers from a list in order and records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer


def make(*answers, **options):
    script, delays = Script(*answers), []
    client = RunwayClient(BASE, KEY, transport=httpx.MockTransport(script), sleep=delays.append, **options)
    return client, script, delays


def expect(error_class, call):
    """Run `call`, which must raise `error_class`; check the key leaks nowhere in the error."""
    with pytest.raises(error_class) as info:
        call()
    error = info.value
    for shown in (str(error), repr(error), repr(error.args), error.message, error.user_message,
                  repr(error.issues)):
        assert KEY not in shown
    assert error.user_message.strip()
    return error


def ok(body, status=200, headers=None):
    return httpx.Response(status, json=body, headers=headers)


def task(status, **fields):
    return ok({"id": TASK_ID, "status": status, "createdAt": CREATED_AT, **fields})


def fail(status, body=None, headers=None):
    if body is None or isinstance(body, dict):
        return httpx.Response(status, json=body or {"error": f"status {status}"}, headers=headers)
    return httpx.Response(status, text=body, headers=headers)


# ---------------------------------------------------------------- headers and shapes

def test_every_api_call_sends_the_key_the_version_and_json_headers():
    client, script, _ = make(
        ok({"id": TASK_ID, "estimatedCost": {"credits": 60}}),
        task("PENDING"),
        httpx.Response(204),
        ok({"creditBalance": 1000}),
        ok({"uploadUrl": "/storage", "fields": {}, "runwayUri": "runway://x"}),
        httpx.Response(204),
    )
    client.create_task("/v1/text_to_video", {"model": "gen4.5"})
    client.get_task(TASK_ID)
    client.cancel_task(TASK_ID)
    client.organization()
    client.upload("a.png", b"png", "image/png")

    api_requests = [r for r in script.requests if r.url.path.startswith("/v1/")]
    assert [(r.method, r.url.path) for r in api_requests] == [
        ("POST", "/v1/text_to_video"), ("GET", f"/v1/tasks/{TASK_ID}"), ("DELETE", f"/v1/tasks/{TASK_ID}"),
        ("GET", "/v1/organization"), ("POST", "/v1/uploads"),
    ]
    for request in api_requests:
        assert request.url.host == "runway.test"
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert request.headers["X-Runway-Version"] == "2024-11-06"
        assert request.headers["Accept"] == "application/json"
        assert request.headers["Content-Type"] == "application/json"


def test_create_posts_the_body_and_returns_id_and_estimate():
    client, script, _ = make(ok({"id": TASK_ID, "estimatedCost": {"credits": 60}}))
    body = {"model": "gen4.5", "promptText": "a fox", "ratio": "1280:720", "duration": 5}

    created = client.create_task("/v1/text_to_video", body)

    assert created == CreatedTask(id=TASK_ID, estimated_credits=60.0)
    [request] = script.requests
    assert (request.method, request.url.path) == ("POST", "/v1/text_to_video")
    assert json.loads(request.content) == body


def test_create_without_an_estimate_gives_none():
    client, _, _ = make(ok({"id": TASK_ID}))
    assert client.create_task("/v1/text_to_image", {}).estimated_credits is None


@pytest.mark.parametrize("answer, expected", [
    (task("PENDING", estimatedCost={"credits": 60}),
     dict(api_status="PENDING", status=lifecycle.PENDING, progress=None, estimated_credits=60.0)),
    (task("THROTTLED", estimatedCost={"credits": 60}),
     dict(api_status="THROTTLED", status=lifecycle.PENDING, progress=None)),
    (task("RUNNING", progress=0.42, estimatedCost={"credits": 60}),
     dict(api_status="RUNNING", status=lifecycle.PROCESSING, progress=0.42)),
    (task("SUCCEEDED", output=["https://cdn.test/a.mp4", "https://cdn.test/b.wav"], cost={"credits": 48}),
     dict(status=lifecycle.SUCCEEDED, output=["https://cdn.test/a.mp4", "https://cdn.test/b.wav"],
          cost_credits=48.0, estimated_credits=None)),
    (task("FAILED", failure="The prompt was rejected.", failureCode="SAFETY.INPUT.TEXT", cost={"credits": 0}),
     dict(status=lifecycle.FAILED, failure="The prompt was rejected.", failure_code="SAFETY.INPUT.TEXT",
          cost_credits=0.0, output=[])),
    (task("CANCELLED", cost={"credits": 0}), dict(status=lifecycle.CANCELLED, cost_credits=0.0)),
    (task("PROCESSING"), dict(api_status="PROCESSING", status=lifecycle.PROCESSING, progress=None,
                              estimated_credits=None, cost_credits=None)),
    (task("ARCHIVED"), dict(api_status="ARCHIVED", status=lifecycle.PENDING)),
])
def test_get_task_reads_every_status_shape(answer, expected):
    client, script, _ = make(answer)

    state = client.get_task(TASK_ID)

    assert (state.id, state.created_at) == (TASK_ID, CREATED_AT)
    assert state.raw == answer.json()
    for name, value in expected.items():
        assert getattr(state, name) == value, name
    assert [(r.method, r.url.path) for r in script.requests] == [("GET", f"/v1/tasks/{TASK_ID}")]


def test_get_task_of_the_seed_without_created_at_or_costs():
    client, _, _ = make(ok({"id": TASK_ID, "status": "SUCCEEDED", "output": ["https://cdn.test/a.png"]}))
    state = client.get_task(TASK_ID)
    assert (state.created_at, state.cost_credits, state.output) == (None, None, ["https://cdn.test/a.png"])


def test_organization_returns_the_parsed_body():
    body = {"creditBalance": 1200, "tier": {"maxMonthlyCreditSpend": 10000, "models": {}}, "usage": {"models": {}}}
    client, script, _ = make(ok(body))
    assert client.organization() == body
    assert script.requests[0].url.path == "/v1/organization"


def test_context_manager_closes_the_connection():
    with make(ok({"creditBalance": 1}))[0] as client:
        client.organization()
    with pytest.raises(RuntimeError):
        client.organization()


# ---------------------------------------------------------------- retries of reads

def test_503_is_retried_with_growing_bounded_delays_then_succeeds():
    client, script, delays = make(fail(503), fail(503), task("RUNNING", progress=0.5))

    assert client.get_task(TASK_ID).progress == 0.5

    assert len(script.requests) == 3
    assert all(r.url.path == f"/v1/tasks/{TASK_ID}" for r in script.requests)
    assert len(delays) == 2
    assert 0.5 <= delays[0] <= 0.75  # 0.5 s plus up to 50 % jitter
    assert 1.0 <= delays[1] <= 1.5
    assert delays[0] < delays[1]


def test_delays_stop_growing_at_the_cap_and_it_gives_up_with_server_error():
    client, script, delays = make(*[fail(503)] * 5, max_retries=4, backoff_base=1.0, backoff_cap=2.0)

    error = expect(ServerError, lambda: client.get_task(TASK_ID))

    assert error.status == 503
    assert len(script.requests) == 5  # the first try plus max_retries
    assert 1.0 <= delays[0] <= 1.5
    assert all(2.0 <= d <= 3.0 for d in delays[1:])


def test_backoff_delays_carry_random_jitter():
    delays = []
    for _ in range(20):
        client, _, some = make(fail(503), task("PENDING"))
        client.get_task(TASK_ID)
        delays += some
    assert len(set(delays)) > 1 and all(0.5 <= d <= 0.75 for d in delays)


@pytest.mark.parametrize("headers, delay", [
    ({"Retry-After": "2"}, 2.0),
    ({"Retry-After": "0"}, 0.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
])
def test_retry_after_is_honoured(headers, delay):
    client, _, delays = make(fail(503, headers=headers), task("PENDING"))
    client.get_task(TASK_ID)
    assert delays == [delay]


def test_a_retry_after_beyond_a_minute_is_reported_at_once():
    client, script, delays = make(fail(429, headers={"Retry-After": "3600"}))

    error = expect(RateLimited, lambda: client.get_task(TASK_ID))

    assert error.retry_after == 3600.0
    assert len(script.requests) == 1 and delays == []


def test_an_unreadable_retry_after_falls_back_to_backoff():
    client, _, delays = make(fail(503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}), task("PENDING"))
    client.get_task(TASK_ID)
    assert 0.5 <= delays[0] <= 0.75


@pytest.mark.parametrize("first", [
    fail(429), fail(500), fail(502), fail(504),
    httpx.ConnectError("refused"), httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("dropped"),
    httpx.Response(200, text="<html>proxy</html>"),
    ok({"unexpected": True}),
], ids=["429", "500", "502", "504", "connect", "read-timeout", "dropped", "not-json", "wrong-json"])
def test_reads_are_retried_on_transient_failures(first):
    client, script, delays = make(first, task("SUCCEEDED", output=["https://cdn.test/a.mp4"]))
    assert client.get_task(TASK_ID).status == lifecycle.SUCCEEDED
    assert len(script.requests) == 2 and len(delays) == 1


@pytest.mark.parametrize("status, error_class", [
    (400, BadRequest), (401, AuthenticationError), (403, AuthenticationError), (404, NotFound),
    (405, RunwayError),
])
def test_reads_are_not_retried_on_final_answers(status, error_class):
    client, script, delays = make(fail(status))
    error = expect(error_class, lambda: client.get_task(TASK_ID))
    assert error.status == status
    assert len(script.requests) == 1 and delays == []


def test_network_failures_exhausted_give_connection_failed_and_timeout():
    client, script, _ = make(*[httpx.ConnectError("refused")] * 4)
    error = expect(ConnectionFailed, lambda: client.organization())
    assert len(script.requests) == 4
    assert error.status is None and "runway.test" in error.user_message

    client, script, _ = make(*[httpx.ReadTimeout("timed out")] * 2, max_retries=1)
    expect(Timeout, lambda: client.organization())
    assert len(script.requests) == 2


def test_a_malformed_body_exhausted_gives_malformed_response():
    client, script, _ = make(*[httpx.Response(200, text="{not json")] * 2, max_retries=1)
    error = expect(MalformedResponse, lambda: client.get_task(TASK_ID))
    assert error.status == 200 and len(script.requests) == 2


# ---------------------------------------------------------------- error bodies

def test_429_gives_rate_limited_with_retry_after():
    client, _, _ = make(fail(429, {"error": "Daily generation limit reached"}, headers={"Retry-After": "7"}),
                        max_retries=0)

    error = expect(RateLimited, lambda: client.create_task("/v1/text_to_video", {}))

    assert (error.status, error.retry_after, error.message) == (429, 7.0, "Daily generation limit reached")
    assert "in about 7 s" in error.user_message


def test_400_carries_the_message_and_the_issues():
    body = {"error": "Invalid parameter 'promptText'", "docUrl": "https://docs.test",
            "issues": [{"code": "too_big", "path": ["promptText"], "message": "Too long"},
                       {"path": "ratio", "message": "Not allowed"}, "junk"]}
    client, script, _ = make(fail(400, body))

    error = expect(BadRequest, lambda: client.create_task("/v1/text_to_video", {"promptText": "x" * 2000}))

    assert error.status == 400
    assert error.message == "Invalid parameter 'promptText'"
    assert error.issues == [{"path": ["promptText"], "message": "Too long"},
                            {"path": ["ratio"], "message": "Not allowed"}]
    assert "Invalid parameter 'promptText'" in error.user_message
    assert len(script.requests) == 1


def test_422_is_a_bad_request_too():
    client, _, _ = make(fail(422, {"error": "Unprocessable"}))
    assert expect(BadRequest, lambda: client.create_task("/v1/text_to_image", {})).issues == []


def test_401_explains_what_to_check():
    client, _, _ = make(fail(401, {"error": "Unauthorized"}))
    error = expect(AuthenticationError, lambda: client.organization())
    assert error.status == 401
    assert error.user_message == "Runway rejected the API key. Check RUNWAYML_API_SECRET."


@pytest.mark.parametrize("status, body, error_class, message", [
    (502, "<html><body>Bad gateway</body></html>", ServerError, "502 Bad Gateway"),
    (400, "bad input", BadRequest, "400 Bad Request"),
    (404, {"detail": "no error key"}, NotFound, "404 Not Found"),
    (500, {"error": ""}, ServerError, "500 Internal Server Error"),
])
def test_error_bodies_without_a_usable_error_string(status, body, error_class, message):
    client, _, _ = make(fail(status, body), max_retries=0)
    error = expect(error_class, lambda: client.get_task(TASK_ID))
    assert (error.status, error.message, error.issues) == (status, message, [])


# ---------------------------------------------------------------- creates are never sent twice by accident

@pytest.mark.parametrize("answer", [
    fail(500), fail(502), fail(504), httpx.Response(500, text="oops"),
    httpx.ReadTimeout("timed out"), httpx.WriteTimeout("timed out"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."), httpx.ReadError("reset"),
    httpx.Response(200, text="<html>"), ok({"estimatedCost": {"credits": 5}}),
], ids=["500", "502", "504", "500-text", "read-timeout", "write-timeout", "disconnected", "read-error",
        "200-not-json", "200-no-id"])
def test_a_create_that_may_have_reached_runway_is_not_sent_again(answer):
    client, script, delays = make(answer, ok({"id": "would-be-a-duplicate"}))

    error = expect(CreateOutcomeUnknown, lambda: client.create_task("/v1/image_to_video", {"model": "gen4.5"}))

    assert isinstance(error, RunwayError)
    assert len(script.requests) == 1 and delays == []
    assert "may or may not" in error.user_message and "unknown" in error.user_message


@pytest.mark.parametrize("first", [
    httpx.ConnectError("refused"), httpx.ConnectTimeout("timed out"), fail(503), fail(429),
], ids=["connect-error", "connect-timeout", "503", "429"])
def test_a_create_that_certainly_created_nothing_is_retried(first):
    client, script, delays = make(first, ok({"id": TASK_ID, "estimatedCost": {"credits": 25}}))

    assert client.create_task("/v1/text_to_video", {"model": "veo3.1"}).id == TASK_ID

    assert [(r.method, r.url.path) for r in script.requests] == [("POST", "/v1/text_to_video")] * 2
    assert script.requests[0].content == script.requests[1].content
    assert len(delays) == 1


def test_a_create_refused_with_503_every_time_is_a_server_error_not_unknown():
    client, script, _ = make(*[fail(503)] * 3, max_retries=2)
    error = expect(ServerError, lambda: client.create_task("/v1/text_to_video", {}))
    assert not isinstance(error, CreateOutcomeUnknown)
    assert len(script.requests) == 3


# ---------------------------------------------------------------- cancel

def test_cancel_sends_delete_and_accepts_204():
    client, script, _ = make(httpx.Response(204))
    assert client.cancel_task(TASK_ID) is None
    [request] = script.requests
    assert (request.method, request.url.path, request.content) == ("DELETE", f"/v1/tasks/{TASK_ID}", b"")


def test_cancel_of_a_task_already_gone_returns_normally():
    client, script, _ = make(fail(404, {"error": "Task not found"}))
    assert client.cancel_task(TASK_ID) is None
    assert len(script.requests) == 1


def test_cancel_retried_after_a_500_finds_the_task_gone():
    client, script, delays = make(fail(500), fail(404))
    client.cancel_task(TASK_ID)
    assert [r.method for r in script.requests] == ["DELETE", "DELETE"] and len(delays) == 1


def test_cancel_with_a_bad_key_still_raises():
    client, _, _ = make(fail(401))
    expect(AuthenticationError, lambda: client.cancel_task(TASK_ID))


# ---------------------------------------------------------------- uploads

UPLOAD_URL = "https://uploads.storage.test/bucket"
SLOT = {"uploadUrl": UPLOAD_URL, "fields": {"key": "uploads/abc/clip.mp4", "policy": "cG9saWN5"},
        "runwayUri": "runway://uploads/abc/clip.mp4"}


def test_upload_asks_for_a_slot_then_posts_the_file_to_storage_without_the_key():
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4
    client, script, _ = make(ok(SLOT), httpx.Response(204))

    uri = client.upload("clip.mp4", video, "video/mp4")

    assert uri == "runway://uploads/abc/clip.mp4"
    slot_request, storage_request = script.requests
    assert (slot_request.method, slot_request.url.path) == ("POST", "/v1/uploads")
    assert json.loads(slot_request.content) == {"filename": "clip.mp4", "type": "ephemeral"}
    assert slot_request.headers["Authorization"] == f"Bearer {KEY}"

    assert (storage_request.method, str(storage_request.url)) == ("POST", UPLOAD_URL)
    assert "Authorization" not in storage_request.headers
    assert "X-Runway-Version" not in storage_request.headers
    assert storage_request.extensions["timeout"]["read"] == 30  # the client's timeout still applies
    assert KEY.encode() not in storage_request.content
    assert storage_request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = storage_request.content
    assert b'name="key"\r\n\r\nuploads/abc/clip.mp4' in body
    assert b'name="policy"\r\n\r\ncG9saWN5' in body
    assert b'name="file"; filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n' + video in body
    assert body.index(b'name="policy"') < body.index(b'name="file"')  # storage wants the file last


def test_upload_refused_by_storage_is_not_blamed_on_the_api_key():
    client, script, _ = make(ok(SLOT), httpx.Response(403, text="<Error>Policy expired</Error>"))
    error = expect(RunwayError, lambda: client.upload("clip.mp4", b"x" * 600, "video/mp4"))
    assert not isinstance(error, AuthenticationError)
    assert error.status == 403 and "storage" in error.user_message
    assert len(script.requests) == 2


def test_upload_slot_without_a_runway_uri_is_malformed():
    client, _, _ = make(ok({"uploadUrl": UPLOAD_URL, "fields": {}}), max_retries=0)
    expect(MalformedResponse, lambda: client.upload("a.png", b"x", "image/png"))


# ---------------------------------------------------------------- the key stays secret

def echo_key(status):
    """A server (or proxy) that repeats the Authorization header back in its error body."""
    def answer(request):
        auth = request.headers["Authorization"]
        return httpx.Response(status, json={"error": f"bad header {auth}",
                                            "issues": [{"path": [auth], "message": auth}]},
                              headers={"Retry-After": "1"})
    return answer


def test_the_key_appears_in_no_repr_or_str_of_the_client():
    client, _, _ = make()
    assert KEY not in repr(client) and KEY not in str(client)
    assert "runway.test" in repr(client)


@pytest.mark.parametrize("status, error_class", [
    (400, BadRequest), (401, AuthenticationError), (404, NotFound), (429, RateLimited), (500, ServerError),
    (418, RunwayError),
])
def test_the_key_echoed_by_a_server_appears_in_no_error(status, error_class):
    client, _, _ = make(echo_key(status), max_retries=0)
    error = expect(error_class, lambda: client.get_task(TASK_ID))
    assert "[redacted]" in error.message


def test_the_key_appears_in_no_create_or_network_error():
    client, _, _ = make(echo_key(502))
    expect(CreateOutcomeUnknown, lambda: client.create_task("/v1/text_to_video", {}))
    client, _, _ = make(httpx.ConnectError("refused"), max_retries=0)
    expect(ConnectionFailed, lambda: client.create_task("/v1/text_to_video", {}))
