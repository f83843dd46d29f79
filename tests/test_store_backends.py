"""What must hold on both backends, and what PostgreSQL adds: claims made at the same moment from
several connections take each due task and each output exactly once (PostgreSQL: row locks,
`FOR UPDATE SKIP LOCKED`); ids are never given twice; three processes opening a fresh database
migrate it once, and the two migration chains cannot drift apart; a connection the server drops
(as a restart does) is made again, and a poll round cut short by it loses no task and reads none
twice in an interval; a connection that cannot be made says so without the URL or its password.

The PostgreSQL-only tests get a schema of their own (`tests/support/services.py`): on a machine
without PostgreSQL they skip, under CI they fail.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from sqlite_utils import Database

from lib import lifecycle
from lib.poller import Poller
from lib.store import Store, connect, postgres, schema
from lib.store.connect import UnreachableDatabase
from lib.tasks import submit_task
from tests.support import ROOT, services
from tests.support.net import free_port
from tests.support.waiting import wait_until

CLAIMERS = 4  # connections claiming at the same moment, each its own Store, as replicas are


@pytest.fixture
def pg_store(tmp_path, monkeypatch):
    """A fresh PostgreSQL store, for what only PostgreSQL has (its sessions, its row locks)."""
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    with services.fresh_postgres() as url:
        monkeypatch.setenv("DASHBOARD_DATABASE_URL", url)
        s = Store(url)
        yield s
        s.close()


def _admin():
    return psycopg.connect(services.postgres_url(), autocommit=True, connect_timeout=5)


def _record(store: Store, n: int) -> list[int]:
    ids = []
    for i in range(n):
        task_id = store.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                          endpoint="/v1/text_to_video", body={"promptText": f"shot {i}"})
        store.mark_submitted(task_id, f"uuid-{task_id}", None, first_poll_in=0)
        ids.append(task_id)
    return ids


def _at_once(store: Store, claim) -> list[list]:
    """What each of CLAIMERS connections claimed, claiming in a loop from the same moment until
    nothing is left: one list per connection."""
    stores = [Store(store.location) for _ in range(CLAIMERS)]
    start = threading.Barrier(CLAIMERS)
    taken: list[list] = [[] for _ in stores]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            while batch := claim(stores[n]):
                taken[n].extend(batch)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    return taken


# ---------------------------------------------------------------- claims


def test_polls_claimed_at_once_take_every_due_task_exactly_once(store):
    ids = _record(store, 60)
    taken = _at_once(store, lambda s: [r["id"] for r in s.claim_due_polls(["simulator"], hold=600, limit=4,
                                                                          now=2e9)])
    claimed = [task_id for each in taken for task_id in each]
    assert sorted(claimed) == ids  # each due task once: none twice, none left out
    assert store.claim_due_polls(["simulator"], hold=600, now=2e9) == []  # all held now


def test_outputs_claimed_at_once_are_each_downloaded_by_one_claim(store):
    ids = _record(store, 15)
    with store.immediate() as conn:
        for task_id in ids:
            for position in range(3):
                conn.execute("INSERT INTO outputs (task_id, position, url, next_attempt_at) VALUES (?, ?, ?, 0)",
                             (task_id, position, f"https://cdn.test/{task_id}/{position}.mp4"))
    taken = _at_once(store, lambda s: s.claim_due_archives(limit=2, lease=600, now=2e9))
    claimed = sorted(c["id"] for each in taken for c in each)
    assert len(claimed) == 45 and len(set(claimed)) == 45
    leases = {c["id"]: c["lease"] for each in taken for c in each}
    # Each output holds the lease of the one claim that took it.
    assert {r["id"]: r["lease"] for r in store.conn.execute("SELECT id, lease FROM outputs")} == leases


def test_a_claim_passes_over_the_rows_another_replica_holds(pg_store):
    """A replica in the middle of its claim holds its rows; another claims the rest at once,
    neither waiting for it (the lock timeout turns any wait into an error) nor taking its rows."""
    ids = _record(pg_store, 6)
    other = Store(pg_store.location)
    pg_store.conn.execute("SET lock_timeout = '5s'")
    with other.immediate(serialized=False) as conn:
        held = [r[0] for r in conn.execute(
            f"SELECT id FROM tasks ORDER BY id LIMIT 2 {other.dialect.skip_locked()}").fetchall()]
        claimed = [r["id"] for r in pg_store.claim_due_polls(["simulator"], hold=600, now=2e9)]
        assert held == ids[:2] and claimed == ids[2:]
    assert [r["id"] for r in pg_store.claim_due_polls(["simulator"], hold=600, now=2e9)] == ids[:2]
    other.close()


def test_a_download_recorded_again_after_its_answer_was_lost_is_still_its_own(store):
    """A restart can drop the answer to a write that went through: the archive records the file
    again, and must not take "no row changed" for "not yours" and delete the file it recorded."""
    [task_id] = _record(store, 1)
    store.conn.execute("INSERT INTO outputs (task_id, position, url, next_attempt_at) VALUES (?, 0, ?, 0)",
                       (task_id, "https://cdn.test/a.mp4"))
    [claim] = store.claim_due_archives(lease=60, now=2e9)
    file = {"path": "static/Qx81.mp4", "mime": "video/mp4", "size": 10, "sha256": "ab" * 32}
    assert store.record_archived(claim["id"], **file, claim=claim)
    assert store.record_archived(claim["id"], **file, claim=claim)  # the same file, once more: still recorded
    assert not store.record_archived(claim["id"], **{**file, "path": "static/Zz02.mp4"}, claim=claim)  # another's
    [output] = store.outputs_for([task_id])[task_id]
    assert (output["state"], output["path"], output["attempts"]) == ("archived", "static/Qx81.mp4", 1)


# ---------------------------------------------------------------- ids


def test_ids_are_never_given_again_even_after_the_newest_rows_are_deleted(store):
    first, newest = _record(store, 2)
    [output] = store.conn.execute("INSERT INTO outputs (task_id, position, url) VALUES (?, 0, 'https://cdn.test/a') "
                                  "RETURNING id", (newest,)).fetchall()
    with store.immediate() as conn:  # gone for good, not only out of view
        for table in ("outputs", "events", "tasks"):
            conn.execute(f"DELETE FROM {table} WHERE {'id' if table == 'tasks' else 'task_id'} = ?", (newest,))
    [again] = _record(store, 1)
    assert again > newest
    [new_output] = store.conn.execute("INSERT INTO outputs (task_id, position, url) VALUES (?, 0, "
                                      "'https://cdn.test/b') RETURNING id", (again,)).fetchall()
    assert new_output[0] > output[0]
    assert [t["id"] for t in store.recent_tasks()] == [again, first]


# ---------------------------------------------------------------- migrations

OPEN_AT_ONCE = """
import json, sys, time
from pathlib import Path
from lib.store import Store
url, go = sys.argv[1], Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
store = Store(url)
print(json.dumps(store.migrated), flush=True)
store.close()
"""


@pytest.mark.subprocess
def test_three_replicas_starting_at_once_migrate_a_fresh_database_once(tmp_path):
    go = tmp_path / "go"
    with services.fresh_postgres() as url:
        processes = []
        for n in range(3):
            env = {**os.environ, "PYTHONPATH": str(ROOT), "DASHBOARD_DB": str(tmp_path / f"r{n}" / "dashboard.db")}
            env.pop("DASHBOARD_DATABASE_URL", None)
            processes.append(subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, url, str(go)], cwd=ROOT, env=env,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for p in processes:
            assert p.stdout.readline().strip() == "ready"
        go.touch()  # all three open the store from here, at the same moment
        outcomes = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in outcomes]
        assert all(err.strip() == "" for _, err in outcomes), [err for _, err in outcomes]
        applied = [name for out, _ in outcomes for name in json.loads(out)]
        names = [name for name, _ in postgres.MIGRATIONS]
        assert sorted(applied) == sorted(names)  # each migration by exactly one of the three
        with psycopg.connect(url, autocommit=True) as conn:
            recorded = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY applied_at, name")]
        assert recorded == names


def test_the_two_migration_chains_agree():
    """PostgreSQL's chain starts with the schema SQLite reaches at m015, under m015's name; every
    later migration has both halves, under one name, in one order. A migration written for one
    backend only fails here."""
    sqlite_names = [m.name for m in schema.migrations.pending(Database(memory=True))]
    pg_names = [name for name, _ in postgres.MIGRATIONS]
    assert pg_names[0] == "m015_leaderboard_columns" and pg_names[0] in sqlite_names
    assert pg_names == sqlite_names[sqlite_names.index(pg_names[0]):]


# ---------------------------------------------------------------- a restart of PostgreSQL


def _drop_connection(store: Store) -> None:
    """End the store's session from outside, as a restart of the server does."""
    pid = store.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with _admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(lambda: admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None,
                   10, "the session to end")


def test_a_dropped_connection_is_made_again_by_the_next_call(pg_store):
    [task_id] = _record(pg_store, 1)
    _drop_connection(pg_store)
    assert pg_store.task(task_id)["id"] == task_id  # a read: read again on a new connection
    _drop_connection(pg_store)
    pg_store.set_rating(task_id, 4, "Maya")  # a write: its BEGIN meets the break, and is made again
    assert pg_store.reviews_for([task_id])[task_id]["average"] == 4
    assert pg_store.count_tasks() == 1


def test_a_poll_round_cut_short_by_a_restart_loses_no_task_and_reads_none_twice(pg_store, fake_backend, fake_runway,
                                                                                tmp_path):
    """The connection drops while a poll's answer waits to be written (inside its transaction,
    where nothing can be retried blind): the round fails with a plain UnreachableDatabase, the
    task stays claimed until its hold runs out, and is then read once more and recorded."""
    result = submit_task(pg_store, fake_backend, task_type="text_to_video", model_id="gen4.5",
                         inputs={"promptText": "a lighthouse", "ratio": "1280:720", "duration": 5})
    assert result.ok, result
    uuid = pg_store.task(result.task_id)["task_uuid"]
    fake_runway.tasks[uuid].update(status="RUNNING", progress=0.5)
    poller = Poller(pg_store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    pid = poller.store.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    start, failed = 2e9, []

    def first_round():
        try:
            poller.poll_once(now=start)
        except sqlite3.OperationalError as exc:
            failed.append(exc)

    with _admin() as writer:  # another replica's write holds the write lock meanwhile
        writer.execute("BEGIN")
        writer.execute("SELECT pg_advisory_xact_lock(%s)", (postgres.WRITE_LOCK,))
        round_one = threading.Thread(target=first_round)
        round_one.start()
        wait_until(lambda: writer.execute("SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'advisory' "
                                          "AND NOT granted", (pid,)).fetchone(), 20, "the answer to wait on the lock")
        with _admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        writer.execute("COMMIT")
        round_one.join(30)
    [error] = failed
    assert isinstance(error, UnreachableDatabase)
    assert fake_runway.gets(uuid) == 1 and pg_store.task(result.task_id)["status"] == lifecycle.PENDING
    # Still held by its claim: not read again within the interval, by this poller or another.
    other = Poller(pg_store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    assert poller.poll_once(now=start + 1) == 0 and other.poll_once(now=start + 4) == 0
    assert poller.poll_once(now=start + poller.hold) == 1  # the hold ran out: read again, recorded
    task = pg_store.task(result.task_id)
    assert (task["status"], task["progress"], fake_runway.gets(uuid)) == (lifecycle.PROCESSING, 0.5, 2)
    fake_runway.tasks[uuid].update(status="SUCCEEDED", progress=1, cost={"credits": 25})
    assert other.poll_once(now=start + poller.hold + 5) == 1
    assert pg_store.task(result.task_id)["status"] == lifecycle.SUCCEEDED and fake_runway.gets(uuid) == 3
    poller.stop()
    other.stop()


def test_a_submission_while_postgresql_is_down_sends_nothing_and_says_to_try_again(pg_store, fake_backend,
                                                                                    fake_runway):
    inputs = {"promptText": "a lighthouse", "ratio": "1280:720", "duration": 5}
    url = pg_store.conn.url
    pg_store.conn.url = _with(url, port=free_port())  # the server went away and has not come back
    _drop_connection(pg_store)
    result = submit_task(pg_store, fake_backend, task_type="text_to_video", model_id="gen4.5", inputs=inputs)
    assert result.task_id is None and fake_runway.bodies() == []  # nothing sent, nothing billed
    assert "not reachable" in result.error and "Submit again in a moment." in result.error
    assert urlsplit(url).password not in result.error and urlsplit(url).hostname not in result.error
    pg_store.conn.url = url  # it is back
    again = submit_task(pg_store, fake_backend, task_type="text_to_video", model_id="gen4.5", inputs=inputs)
    assert again.ok and len(fake_runway.bodies()) == 1 and pg_store.count_tasks() == 1


# ---------------------------------------------------------------- secrets


def _with(url: str, *, password: str | None = None, port: int | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    netloc = f"{user}:{password if password is not None else parts.password}@{parts.hostname}:{port or parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def test_a_connection_that_cannot_be_made_names_neither_the_url_nor_its_password(pg_store):
    url = pg_store.location
    secret = "Zq7-not-the-password-9xW"
    for bad, said in ((_with(url, password=secret), "user name or password"),
                      (_with(url, password=secret, port=free_port()), "not reachable"),
                      (_with(url, password=secret).replace(f":{urlsplit(url).port}/", ":notaport/"), "not a URL")):
        with pytest.raises(sqlite3.OperationalError) as caught:
            Store(bad)
        message = str(caught.value)
        assert said in message
        for leak in (secret, bad, connect.masked(bad), urlsplit(bad).hostname, urlsplit(bad).username):
            assert leak not in message, (leak, message)
        assert caught.value.__suppress_context__  # no traceback shows psycopg's own words either


def test_the_store_s_key_and_created_log_name_it_without_its_password(pg_store, tmp_path):
    """The key (in caches and logs) and the created log's name are the URL masked and a hash of
    it without the password: a password changed names the same database, and no hash of the
    password is ever written anywhere."""
    url = pg_store.location
    password = "Zq7-a-password-9xW"
    assert connect.identity(_with(url, password=password)) == connect.identity(url)  # the same database
    assert password not in connect.identity(_with(url, password=password))
    assert connect.identity(url + "&password=" + password) == connect.identity(url)
    digest = hashlib.sha256(connect.identity(url).encode()).hexdigest()[:12]
    assert pg_store.key == f"{connect.masked(url)}#{digest}"
    assert pg_store.created_log.name == f"postgresql-{digest}.created"
    other = services.postgres_url()  # the same server, another schema: another database to the store
    assert connect.identity(other) != connect.identity(url)
