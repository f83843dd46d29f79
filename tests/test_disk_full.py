"""A full disk loses no paid task: nothing is sent while the database's disk is nearly full,
and a task Runway created (and bills) keeps its Runway id even when SQLite cannot write it.

The disk fills for real, as far as SQLite can tell: the database's pages are used up and
`PRAGMA max_page_count` stops it growing, so writes fail with SQLite's own "database or disk
is full". The create goes to the real simulator; the disk fills the moment its answer arrives.
"""
from __future__ import annotations

import sqlite3
import stat

import httpx
import pytest

from lib import lifecycle
from lib.store import Store
from lib.tasks import submit_task
from tests.test_faults import TASKS, Rig

IMAGE = TASKS[1]  # a text-to-image task: one small PNG output


def fill_disk(store: Store) -> None:
    """Use up every page the database has and stop it growing, for `store`'s connection too."""
    filler = sqlite3.connect(store.path, isolation_level=None)
    filler.execute("PRAGMA synchronous = OFF")
    filler.execute("PRAGMA max_page_count = 1")  # raised to the pages the file has: it cannot grow
    rows = 4096
    while rows:  # ever fewer small rows, until not one more fits in the last page of the events table
        try:
            filler.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                           "INSERT INTO events (task_id, at, status) SELECT 0, '', '' FROM n", (rows,))
        except sqlite3.OperationalError as exc:
            assert "database or disk is full" in str(exc)
            rows //= 2
    filler.close()
    store.conn.execute("PRAGMA max_page_count = 1")


def free_disk(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM events WHERE task_id = 0")


class DiskFillsOnCreate(httpx.HTTPTransport):
    """The real network; the disk fills as Runway's answer to a create arrives."""

    def __init__(self, store: Store):
        super().__init__()
        self.store = store
        self.created: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and response.status_code == 200:
            response.read()
            self.created.append(response.json()["id"])
            fill_disk(self.store)
        return response


@pytest.fixture
def rig(tmp_path):
    rig = Rig(tmp_path)
    yield rig
    rig.close()


def _submit(rig, client=None):
    task_type, model, inputs, _, _ = IMAGE
    return submit_task(rig.store, rig.backend, task_type=task_type, model_id=model, inputs=inputs, client=client)


def _row(rig, task_id: int) -> dict:
    """The row as another process reads it."""
    other = Store(rig.store.path)
    try:
        return other.task(task_id)
    finally:
        other.close()


def test_a_task_created_on_a_full_disk_keeps_its_runway_id_and_is_followed(rig):
    log_file = rig.store.path.with_name(rig.store.path.name + ".created")  # beside the database
    results = []
    for _ in range(2):
        transport = DiskFillsOnCreate(rig.store)
        with rig.backend.client(transport=transport) as client:
            result = _submit(rig, client)
        [uuid] = transport.created
        results.append((result, uuid))
        # The user is told the task exists on Runway, with its id; the id waits beside the database.
        assert not result.ok and result.task_id
        assert f"Runway task id {uuid}" in result.error and "disk is full" in result.error
        assert uuid in log_file.read_text() and stat.S_IMODE(log_file.stat().st_mode) == 0o600
        assert rig.store.conn.execute("SELECT task_uuid FROM tasks WHERE id = ?",
                                         (result.task_id,)).fetchone()[0] is None
        free_disk(rig.store.path)
        rig.store.conn.execute("PRAGMA max_page_count = 4294967294")
        if len(results) == 1:
            Store(rig.store.path).close()  # a start-up replays the kept ids
        else:
            # A poller's periodic settle replays them before it settles anything as interrupted.
            assert rig.poller.store.settle_interrupted_submissions(older_than_s=-1) == 0
        row = _row(rig, result.task_id)
        assert (row["task_uuid"], row["submit_state"], row["status"]) == (uuid, "submitted", lifecycle.PENDING)
        assert not log_file.exists()

    rig.ids = [result.task_id for result, _ in results]
    rig.settle()
    rig.assert_nothing_lost([IMAGE, IMAGE])  # created once each, followed to the end, archived


def test_a_full_disk_before_the_create_sends_nothing(rig):
    fill_disk(rig.store)
    result = _submit(rig)
    assert result.task_id is None and result.error.startswith("Nothing was sent")
    assert "database or disk is full" in result.error
    assert rig.admin.creates() == []


def test_a_nearly_full_disk_sends_nothing_and_says_how_much_is_left(rig, monkeypatch):
    free_mb = rig.store.free_bytes() // 2 ** 20
    monkeypatch.setenv("DASHBOARD_MIN_FREE_MB", str(free_mb + 1024))  # this disk is "nearly full"
    result = _submit(rig)
    assert result.task_id is None and result.error.startswith("Nothing was sent")
    assert "MB free" in result.error and "DASHBOARD_MIN_FREE_MB" in result.error
    assert rig.admin.creates() == [] and rig.store.count_tasks() == 0

    monkeypatch.delenv("DASHBOARD_MIN_FREE_MB")  # the default reserve, 100 MB, is free here
    assert _submit(rig).ok and len(rig.admin.creates()) == 1
