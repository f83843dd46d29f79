"""The key is scrubbed from everything the API sends, after decoding: an answer that echoes
the key escaped (`\\u006bey_...` in JSON, percent-encoded in a URL, in upper case) reaches no
error, no task state and, through the poller, no SQLite row, page or CSV."""
from __future__ import annotations

import json
import sqlite3
from urllib.parse import quote

import httpx
import pytest

from lib import export
from lib.client import BadRequest, RunwayClient
from lib.poller import Poller
from lib.store import queries
from tests.support.fake_runway import FakeBackend, FakeRunway

KEY = "key_" + "0123456789abcdef" * 8
TASK_ID = "17f20503-6c24-4c16-946b-35dbbce2af2f"


def escaped(text: str) -> str:
    """Every character as a JSON \\u escape: decodes to `text`, contains none of it."""
    return "".join(f"\\u{ord(c):04x}" for c in text)


ECHOES = {
    "json-escaped": escaped(KEY),
    "upper case": KEY.upper(),
    "percent-encoded": quote(KEY, safe="").replace("k", "%6B"),
}


def raw_json(body: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body.encode(), headers={"content-type": "application/json"})


def client_for(handler) -> RunwayClient:
    return RunwayClient("https://runway.test", KEY, transport=httpx.MockTransport(handler), sleep=lambda s: None,
                        max_retries=0)


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
def test_a_task_answer_echoing_the_key_keeps_it_out_of_every_field(echo):
    body = ('{"id": "%s", "status": "FAILED", "failure": "bad header %s", "failureCode": "X.%s", '  # noqa: UP031 - JSON's braces
            '"output": ["https://cdn.test/a.mp4?k=%s"], "extra": {"%s": ["%s"]}}'
            % (TASK_ID, echo, echo, echo, echo, echo))
    state = client_for(lambda request: raw_json(body)).get_task(TASK_ID)
    seen = json.dumps([state.failure, state.failure_code, state.output, state.raw, state.api_status])
    assert KEY.lower() not in seen.lower()
    assert "[redacted]" in state.failure


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
def test_an_error_body_echoing_the_key_keeps_it_out_of_the_error(echo):
    body = '{"error": "Authorization %s is odd", "issues": [{"path": ["%s"], "message": "%s"}]}' % (echo, echo, echo)  # noqa: UP031
    with pytest.raises(BadRequest) as info:
        client_for(lambda request: raw_json(body, 400)).create_task("/v1/text_to_video", {})
    error = info.value
    shown = " ".join([str(error), repr(error.args), error.message, error.user_message, json.dumps(error.issues)])
    assert KEY.lower() not in shown.lower()


class EchoingRunway(FakeRunway):
    """Creates tasks like Runway, then fails each one with a failure text that echoes the key escaped."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.startswith("/v1/tasks/"):
            self.requests.append(request)
            task_id = request.url.path.rsplit("/", 1)[1]
            return raw_json('{"id": "%s", "status": "FAILED", "failure": "Header was %s", '  # noqa: UP031 - JSON's braces
                            '"failureCode": "INPUT.%s"}' % (task_id, escaped(KEY), escaped(KEY)))
        return super().handler(request)


def test_failure_texts_that_echo_the_key_reach_no_row_and_no_csv(tmp_path, store):
    from lib.tasks import submit_task

    fake = EchoingRunway()
    backend = FakeBackend(name="https://fake.runway.test", base_url="https://fake.runway.test", api_key=KEY,
                          fake=fake)
    result = submit_task(store, backend, task_type="text_to_image", model_id="gen4_image",
                         inputs={"promptText": "a lighthouse", "ratio": "1920:1080"})
    assert result.ok, result
    poller = Poller(store.location, [backend], interval=0.01, static_dir=tmp_path / "static")
    poller._clients = {backend.name: backend.client()}
    store.schedule_poll(result.task_id, 0)
    assert poller.poll_once() == 1
    task = store.task(result.task_id)
    assert task["status"] == "FAILED" and "[redacted]" in task["failure"]
    # Every row of every table, as the database hands it out (on either backend).
    tables = ["tasks", "outputs", "events", "review_rows", "download_links", "spend_days"]
    dumped = "\n".join(repr(tuple(row)) for table in tables for row in store.tuples(f"SELECT * FROM {table}"))
    assert "[redacted]" in dumped and KEY not in dumped
    store.close()
    poller.store.close()
    poller.archive_store.close()
    if not store.postgres:  # the file itself, and what SQLite would dump of it
        for name in ("dashboard.db", "dashboard.db-wal"):
            path = tmp_path / name
            if path.exists():
                assert KEY.encode() not in path.read_bytes()
        with sqlite3.connect(tmp_path / "dashboard.db") as db:
            assert KEY not in "\n".join(db.iterdump())
    from lib.store import Store

    again = Store(store.location)
    csv = b"".join(export.csv_bytes(again, queries.Filters())).decode("utf-8-sig")
    again.close()
    assert "[redacted]" in csv and KEY not in csv
