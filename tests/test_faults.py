"""Fault injection against the simulator: bursts of 429, 500/502/503/504, answers
slower than the client's timeout, dropped connections, malformed JSON, task ids
answering 404, statuses the client has never seen and output links that expire
before the archive runs.

After each: no task is lost, every task ends in the state the simulator itself
reports, retries stay bounded (counted in the simulator's request log, round by
round), and the page tells the user what happened.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from lib import lifecycle
from lib.backend import Backend, current_backend
from lib.client import RunwayClient
from lib.poller import Poller
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.store import Store
from lib.tasks import submit_task
from lib.ui import HISTORY_PAGE, PAGE_FILES
from tests.support.apptest import open_page
from tests.support.simulator import SimulatorAdmin
from tests.support.waiting import wait_until

MAX_RETRIES = 3  # RunwayClient's default: one request plus three retries at most
TIMEOUT = 2.0  # the client's timeout in these tests; "slow" answers take longer

# What the team submits in every scenario: (task type, model, inputs, true end state, failure code).
TASKS = [
    ("text_to_video", "gen4.5", {"promptText": "A lighthouse at dusk", "ratio": "1280:720", "duration": 2},
     lifecycle.SUCCEEDED, None),
    ("text_to_image", "gen4_image", {"promptText": "A paper crane", "ratio": "1024:1024"}, lifecycle.SUCCEEDED, None),
    ("sound_effect", "eleven_text_to_sound_v2", {"promptText": "Rain on a tin roof", "duration": 1.0},
     lifecycle.SUCCEEDED, None),
    ("text_to_video", "gen4.5", {"promptText": "A riot #unsafe", "ratio": "1280:720", "duration": 2},
     lifecycle.FAILED, "SAFETY.INPUT.TEXT"),
    ("text_to_video", "gen4.5", {"promptText": "A broken reel #glitch", "ratio": "720:1280", "duration": 2},
     lifecycle.FAILED, "INTERNAL.BAD_OUTPUT.CODE01"),
]


@dataclass(frozen=True)
class QuickBackend(Backend):
    """The simulator as a backend of its own, with a short timeout and short backoff."""

    def client(self, **options) -> RunwayClient:
        options = {"timeout": httpx.Timeout(TIMEOUT), "backoff_base": 0.02, **options}
        return RunwayClient(self.base_url, self.api_key, **options)


class Rig:
    """A simulator, a store, a poller driven round by round, and the History page over the same database."""

    def __init__(self, tmp_path: Path, **simulator_options):
        options = {"pending_seconds": 0.2, "run_seconds": 0.5, "concurrency": 8, "max_side": 96,
                   **simulator_options}
        self.server = SimulatorServer(SimulatorConfig(state_dir=tmp_path / "simulator", **options)).start()
        self.admin = SimulatorAdmin(self.server.url, self.server.api_key)
        # Named by its URL, so the page's own poller (for the built-in "simulator") never touches these rows.
        self.backend = QuickBackend(name=self.server.url, base_url=self.server.url, api_key=self.server.api_key)
        self.store = Store(tmp_path / "dashboard.db")
        self.static = tmp_path / "static"
        self.poller = Poller(self.store.path, [self.backend], interval=0.2, static_dir=self.static)
        self.ids: list[int] = []
        self.rounds = 0

    def close(self) -> None:
        self.poller.stop()
        self.server.stop()

    def submit(self, tasks=TASKS) -> list[int]:
        for task_type, model, inputs, _, _ in tasks:
            result = submit_task(self.store, self.backend, task_type=task_type, model_id=model, inputs=inputs)
            assert result.ok, result
            self.ids.append(result.task_id)
        return self.ids

    def uuid(self, task_id: int) -> str:
        return self.store.task(task_id)["task_uuid"]

    def poll_round(self) -> dict[str, int]:
        """One round: every unfinished task is due and read once. Returns GETs per task id in this round,
        after checking that none took more than one request plus MAX_RETRIES retries."""
        before = len(self.admin.requests())
        self.store.conn.execute("UPDATE tasks SET next_poll_at = 0 WHERE next_poll_at IS NOT NULL")
        self.poller.poll_once()
        self.rounds += 1
        reads = self.admin.reads(self.admin.requests()[before:])
        assert max(reads.values(), default=0) <= 1 + MAX_RETRIES, reads
        return dict(reads)

    def settle(self, timeout: float = 60) -> None:
        """Rounds (with waits between) until every task is finished and every output archived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll_round()
            # Time passes between rounds: downloads that failed are due again.
            self.store.conn.execute("UPDATE outputs SET next_attempt_at = 0 WHERE state != 'archived'")
            self.poller.archive_once()
            tasks = [self.store.task(i) for i in self.ids]
            outputs = self.store.outputs_for(self.ids)
            if all(lifecycle.is_terminal(t["status"]) for t in tasks) and all(
                    outputs[t["id"]] and all(o["state"] == "archived" for o in outputs[t["id"]])
                    for t in tasks if t["status"] == lifecycle.SUCCEEDED):
                return
            time.sleep(0.15)
        raise AssertionError(f"not settled: {[(t['id'], t['status'], t['last_error']) for t in tasks]}")

    def assert_nothing_lost(self, tasks=TASKS) -> None:
        """Every task is in the store once, was created once, and ends where the simulator says it is."""
        assert self.store.count_tasks() == len(tasks)
        uuids = [self.uuid(i) for i in self.ids]
        assert len(set(uuids)) == len(tasks) and all(uuids)
        assert self.admin.created() == len(tasks)
        for task_id, (_, _, _, status, code) in zip(self.ids, tasks):
            row = self.store.task(task_id)
            truth = self.admin.task(row["task_uuid"])
            assert (row["status"], row["failure_code"]) == (truth["status"], truth.get("failureCode")) \
                == (status, code), (row, truth)
            if status == lifecycle.SUCCEEDED:
                [output] = self.store.outputs_for([task_id])[task_id]
                archived = self.static / Path(output["path"]).name
                original = httpx.get(truth["output"][0]).content
                assert archived.read_bytes() == original
                assert output["sha256"] == hashlib.sha256(original).hexdigest() and output["size"] == len(original)
        assert not list(self.static.glob(".*.part"))


@pytest.fixture
def page_env(app_env, monkeypatch):
    """The pages read the rig's database; their own backend is a separate built-in simulator."""
    monkeypatch.setenv("SIMULATOR_STATE_DIR", str(app_env / "page-simulator"))
    return app_env


@pytest.fixture
def rig(page_env):
    rig = Rig(page_env)
    yield rig
    rig.close()


def page_text(path: str = HISTORY_PAGE, **query) -> str:
    """Everything a page shows as text (markdown, captions, alerts), with markdown escapes removed."""
    at = open_page(path, **query)
    assert not at.exception, at.exception
    return shown(at)


def shown(at: AppTest) -> str:
    kinds = ("title", "markdown", "caption", "error", "warning", "info", "success")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind)).replace("\\", "")


def tasks_rule(**fault) -> dict:
    return {"path_prefix": "/v1/tasks/", "method": "GET", **fault}


# ---------------------------------------------------------------- reads that fail for a whole round

READ_FAULTS = {
    "429 burst": ({"status": 429, "retry_after": 0.05}, "Runway is limiting requests"),
    "500": ({"status": 500}, "Runway is having trouble (HTTP 500)"),
    "502": ({"status": 502}, "Runway is having trouble (HTTP 502)"),
    "503": ({"status": 503}, "Runway is having trouble (HTTP 503)"),
    "504": ({"status": 504}, "Runway is having trouble (HTTP 504)"),
    "slower than the timeout": ({"delay": TIMEOUT + 0.5}, "127.0.0.1 did not answer in time"),
    "dropped connection": ({"drop": True}, "Could not reach 127.0.0.1"),
    "malformed JSON": ({"malformed": True}, "Runway sent an answer the dashboard could not read"),
}


@pytest.mark.parametrize("name", list(READ_FAULTS))
def test_a_round_of_failed_reads_is_retried_boundedly_shown_and_recovered(rig, name):
    fault, message = READ_FAULTS[name]
    rig.submit()
    # Enough faults that every read of the first round fails, retries included.
    rig.admin.faults(tasks_rule(count=len(TASKS) * (1 + MAX_RETRIES), **fault))

    reads = rig.poll_round()

    assert sorted(reads.values()) == [1 + MAX_RETRIES] * len(TASKS)  # bounded: 1 try + 3 retries, no more
    for task_id in rig.ids:
        task = rig.store.task(task_id)
        assert task["status"] == lifecycle.PENDING and task["poll_errors"] == 1  # kept, not failed
        assert message in task["last_error"]
    assert rig.admin.active_faults() == []
    history = page_text()
    assert f"Last poll failed: {message}" in history

    rig.settle()
    rig.assert_nothing_lost()
    history = page_text()
    assert "Last poll failed" not in history
    assert history.count("SUCCEEDED") >= 3 and "FAILED" in history


def test_reads_recover_within_one_round_when_the_fault_is_shorter_than_the_retries(rig):
    rig.submit()
    # Two faults for each task's own path: the third request of each read gets through. (One
    # rule shared by all the tasks let a task meet four in a row while the others were quick.)
    rig.admin.faults(*(tasks_rule(path_prefix=f"/v1/tasks/{rig.uuid(i)}", status=503, count=2, retry_after=0)
                       for i in rig.ids))
    reads = rig.poll_round()
    assert sorted(reads.values()) == [3] * len(TASKS), reads
    assert all(rig.store.task(i)["last_error"] is None for i in rig.ids)
    rig.settle()
    rig.assert_nothing_lost()


# ---------------------------------------------------------------- 404s

def test_a_transient_404_is_not_taken_for_a_lost_task(rig):
    rig.submit()
    rig.admin.faults(tasks_rule(status=404, count=2 * len(TASKS)))
    for expected_errors in (1, 2):
        reads = rig.poll_round()
        assert sorted(reads.values()) == [1] * len(TASKS)  # a 404 is a final answer: never retried at once
        assert {rig.store.task(i)["poll_errors"] for i in rig.ids} == {expected_errors}
    assert "Runway has no such task" in page_text()
    rig.settle()
    rig.assert_nothing_lost()


def test_a_task_deleted_or_cancelled_elsewhere_ends_as_runway_says(rig):
    rig.submit(TASKS[:1])
    deleted = rig.uuid(rig.ids[0])
    wait_until(lambda: rig.admin.task(deleted)["status"] == "SUCCEEDED", 60, "the first task to succeed")
    rig.admin.delete(deleted)  # a finished task is deleted: Runway answers 404 from now on
    rig.submit(TASKS[1:2])
    cancelled = rig.uuid(rig.ids[1])
    rig.admin.delete(cancelled)  # an unfinished one is cancelled
    before = len(rig.admin.requests())
    for _ in range(4):
        rig.poll_round()
    reads = rig.admin.reads(rig.admin.requests()[before:])
    assert reads[deleted] == 3  # three 404s in a row, then the task is given up, and never read again
    assert reads[cancelled] == 1
    gone, stopped = (rig.store.task(i) for i in rig.ids)
    assert (gone["status"], gone["failure_code"]) == (lifecycle.FAILED, "DASHBOARD.NOT_FOUND")
    assert rig.admin.http.get(f"/v1/tasks/{deleted}").status_code == 404
    assert stopped["status"] == lifecycle.CANCELLED == rig.admin.task(cancelled)["status"]
    history = page_text()
    assert "Runway no longer knows this task (404)" in history and "CANCELLED" in history


# ---------------------------------------------------------------- statuses nobody has seen

def test_an_unknown_status_is_kept_raw_shown_and_never_moves_a_task_backwards(page_env):
    rig = Rig(page_env, run_seconds=3)  # long enough to catch the video RUNNING
    try:
        _unknown_status(rig)
    finally:
        rig.close()


def _unknown_status(rig):
    rig.submit()
    rig.admin.faults(tasks_rule(status_value="PAUSED", count=len(TASKS)))
    rig.poll_round()
    for task_id in rig.ids:
        task = rig.store.task(task_id)
        assert (task["status"], task["api_status"]) == (lifecycle.PENDING, "PAUSED")
    assert "PENDING · PAUSED" in page_text()

    [video] = rig.ids[:1]
    wait_until(lambda: rig.admin.task(rig.uuid(video))["status"] == "RUNNING", 30, "the video to run")
    rig.poll_round()
    assert rig.store.task(video)["status"] == lifecycle.PROCESSING
    rig.admin.faults(tasks_rule(status_value="ON_HOLD", count=len(TASKS)))
    rig.poll_round()
    task = rig.store.task(video)
    assert (task["status"], task["api_status"]) == (lifecycle.PROCESSING, "ON_HOLD")  # not back to PENDING
    assert "PROCESSING · ON_HOLD" in page_text()  # not a progress figure from an older answer
    assert "ON_HOLD" in [e["api_status"] for e in rig.store.events_for(video)]
    rig.settle()
    rig.assert_nothing_lost()


# ---------------------------------------------------------------- output links

def test_output_links_that_expire_before_the_archive_runs_are_renewed(page_env):
    rig = Rig(page_env, output_ttl_seconds=3)
    try:
        rig.submit()
        succeeded = [i for i, t in zip(rig.ids, TASKS) if t[3] == lifecycle.SUCCEEDED]
        wait_until(lambda: rig.poll_round() is not None and all(
            lifecycle.is_terminal(rig.store.task(i)["status"]) for i in rig.ids), 60, "the tasks to finish")
        time.sleep(4.1)  # every signed link is now past its expiry
        assert rig.poller.archive_once() == 0
        outputs = [o for i in succeeded for o in rig.store.outputs_for([i])[i]]
        assert {o["state"] for o in outputs} == {"at_risk"}
        assert all("expired (HTTP 403)" in o["last_error"] for o in outputs)
        assert "Not archived yet: the output link has expired (HTTP 403)" in page_text()
        assert not list(rig.static.iterdir())  # nothing half-written is left behind

        before = len(rig.admin.requests())
        rig.poll_round()  # each finished task is read once more, for a fresh link
        assert rig.admin.reads(rig.admin.requests()[before:]) == {rig.uuid(i): 1 for i in succeeded}
        assert rig.poller.archive_once() == len(succeeded)
        rig.settle()
        rig.assert_nothing_lost()
        assert "Not archived yet" not in page_text()
    finally:
        rig.close()


def test_downloads_that_fail_or_drop_are_retried_until_archived(rig):
    rig.submit()
    rig.admin.faults({"path_prefix": "/outputs/", "status": 503, "count": 3})
    succeeded = [i for i, t in zip(rig.ids, TASKS) if t[3] == lifecycle.SUCCEEDED]
    wait_until(lambda: rig.poll_round() is not None and all(rig.store.outputs_for([i])[i] for i in succeeded),
               60, "the outputs to be known")
    assert rig.poller.archive_once() == 0
    assert "Not archived yet: the output server answered HTTP 503" in page_text()
    rig.admin.faults({"path_prefix": "/outputs/", "drop": True, "count": 1},
                     {"path_prefix": "/outputs/", "malformed": True, "count": 1})
    rig.settle()
    rig.assert_nothing_lost()
    outputs = [o for i in rig.ids for o in rig.store.outputs_for([i])[i]]
    assert sum(o["attempts"] for o in outputs) == len(outputs) + 5  # three 503s, a drop, a non-media body


# ---------------------------------------------------------------- everything at once

def _numbered(i: int) -> tuple:
    task_type, model, inputs, status, code = TASKS[i % len(TASKS)]
    return task_type, model, {**inputs, "promptText": f"{inputs['promptText']} (take {i})"}, status, code


CAMPAIGN_TASKS = [_numbered(i) for i in range(20)]
CAMPAIGN_FAULTS = [
    # Creates: at most three refusals in a row, so every create gets through within its retries.
    {"path_prefix": "/v1/", "method": "POST", "status": 429, "count": 2, "retry_after": 0.05},
    {"path_prefix": "/v1/", "method": "POST", "status": 503, "count": 1},
    *(tasks_rule(**fault, count=count) for fault, count in (
        ({"status": 404}, 3), ({"status": 500}, 3), ({"status": 502}, 3), ({"status": 503}, 3),
        ({"status": 504}, 3), ({"status": 429, "retry_after": 0.05}, 4), ({"delay": TIMEOUT + 0.5}, 2),
        ({"drop": True}, 3), ({"malformed": True}, 3), ({"status_value": "PAUSED"}, 4))),
    {"path_prefix": "/outputs/", "status": 503, "count": 2},
    {"path_prefix": "/outputs/", "drop": True, "count": 2},
]
CAMPAIGN_FAULT_COUNT = 38


def test_a_campaign_of_every_fault_loses_no_task(rig):
    """The README's figure: 20 tasks through 38 injected faults, none lost, none created twice."""
    assert sum(rule["count"] for rule in CAMPAIGN_FAULTS) == CAMPAIGN_FAULT_COUNT
    rig.admin.faults(*CAMPAIGN_FAULTS)
    rig.submit(CAMPAIGN_TASKS)
    assert len(rig.admin.creates()) == len(CAMPAIGN_TASKS) + 3  # each refused create sent once more, no more
    rig.settle(timeout=120)
    assert rig.admin.active_faults() == []  # every fault was met
    rig.assert_nothing_lost(CAMPAIGN_TASKS)


# ---------------------------------------------------------------- creates, as the form shows them

@pytest.fixture
def form_env(page_env, monkeypatch):
    monkeypatch.setenv("DASHBOARD_API_TIMEOUT", str(TIMEOUT))
    return page_env


def page_simulator() -> SimulatorAdmin:
    backend = current_backend()
    return SimulatorAdmin(backend.base_url, backend.api_key)


CREATE_FAULTS = {
    # fault on the create, what the form says, POSTs sent, tasks Runway created, how the row is kept
    "429 burst within the retries": ({"status": 429, "count": 3, "retry_after": 0.05}, "submitted to gen4.5",
                                     4, 1, "submitted"),
    "429 beyond the retries": ({"status": 429, "count": 9, "retry_after": 0.05}, "Runway is limiting requests",
                               4, 0, "rejected"),
    "503 beyond the retries": ({"status": 503, "count": 9, "retry_after": 0}, "Runway is having trouble (HTTP 503)",
                               4, 0, "rejected"),
    "500": ({"status": 500}, "may or may not have created this task", 1, 0, "unknown"),
    "502": ({"status": 502}, "may or may not have created this task", 1, 0, "unknown"),
    "504": ({"status": 504}, "may or may not have created this task", 1, 0, "unknown"),
    "dropped connection": ({"drop": True}, "may or may not have created this task", 1, 0, "unknown"),
    "malformed JSON": ({"malformed": True}, "may or may not have created this task", 1, 0, "unknown"),
    "slower than the timeout": ({"delay": TIMEOUT + 1}, "may or may not have created this task", 1, 1, "unknown"),
}


@pytest.mark.parametrize("name", list(CREATE_FAULTS))
def test_a_create_fault_is_told_on_the_form_and_never_sent_blind_twice(form_env, name):
    fault, message, posts, created, state = CREATE_FAULTS[name]
    at = open_page(PAGE_FILES["text_to_video"])
    simulator = page_simulator()
    simulator.faults({"path_prefix": "/v1/text_to_video", "method": "POST", **fault})
    at.text_area(key="text_to_video_promptText").input("A lighthouse at dawn")
    at.button(key=at.button[-1].key).click().run()
    assert not at.exception
    assert message in shown(at)
    assert len(simulator.creates()) == posts
    # A slow create still reaches the server after the client gave up: Runway made it, the dashboard
    # cannot know its id, so the row says "outcome unknown" instead of sending it again.
    wait_until(lambda: simulator.created() == created, 15, f"{created} task(s) on the simulator")
    time.sleep(0.3)
    assert simulator.created() == created and len(simulator.creates()) == posts
    [task] = Store(form_env / "dashboard.db").recent_tasks()
    assert task["submit_state"] == state
    if state != "submitted":
        assert task["status"] == lifecycle.FAILED and task["failure"]  # kept, with what happened, not resent
        assert "Recorded as task #1" in shown(at) or f"#{task['id']}" in shown(at)


def test_a_stalled_download_holds_up_neither_polling_nor_other_downloads(rig):
    rig.admin.faults({"path_prefix": "/outputs/", "slow_body": 8, "count": 1})
    rig.poller.start()
    try:
        rig.submit(TASKS[:1])
        rig.store.conn.execute("UPDATE tasks SET next_poll_at = 0")
        wait_until(lambda: [p for p in rig.static.glob(".*.part") if p.stat().st_size], 60, "a stalled download")
        rig.submit(TASKS[1:3])
        rig.store.conn.execute("UPDATE tasks SET next_poll_at = 0 WHERE next_poll_at IS NOT NULL")
        later = rig.ids[1:]
        wait_until(lambda: all(o["state"] == "archived" for i in later for o in rig.store.outputs_for([i])[i])
                   and all(rig.store.outputs_for([i])[i] for i in later), 60, "the later outputs to be archived")
        [stalled] = rig.store.outputs_for(rig.ids[:1])[rig.ids[0]]
        assert stalled["state"] == "pending" and stalled["path"] is None  # still downloading, never shown
    finally:
        rig.poller.stop()
