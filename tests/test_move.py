"""`python -m lib.store.move`: a team's SQLite history, archive folder and input stash moved into a
fresh PostgreSQL schema and a moto bucket, as its user sees it: what the command prints and
exits with, the rows PostgreSQL then holds (ids kept, the next id past every one), the objects the
bucket then holds; run again, interrupted, or met with something that differs."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from lib import settings, storage
from lib.store import REVIEW_ROWS, Store, TaskUpdate, move
from lib.store.schema import SPEND_KEY
from tests.support import history, services
from tests.support.history import insert_output, insert_reviews, insert_task
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("tasks", "outputs", "events", REVIEW_ROWS, "budgets")
PREFIX = "team"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Planted:
    """A SQLite history as a team leaves it: tasks of several teammates with costs, archived
    outputs with their files (one large enough for a multipart upload) and a poster, a task whose
    image input was stashed, reviews (of a removed task too), budgets, a removed task whose
    outputs went (so SQLite's output sequence is past the largest output id)."""

    def __init__(self, root: Path):
        self.root = root
        self.db = root / "data" / "dashboard.db"
        self.static = root / "static"
        self.static.mkdir()
        self.files: dict[str, bytes] = {}  # bucket key -> bytes
        store = Store(self.db)
        try:
            self._plant(store)
        finally:
            store.close()

    def _output(self, store: Store, task_id: int, name: str, data: bytes, position: int = 0,
                mime: str = "video/mp4") -> int:
        (self.static / name).write_bytes(data)
        output_id = insert_output(store, task_id, position=position, path=f"static/{name}", mime=mime,
                                  size=len(data))
        store.conn.execute("UPDATE outputs SET sha256 = ? WHERE id = ?", (_sha(data), output_id))
        self.files[f"static/{name}"] = data
        return output_id

    def _plant(self, store: Store) -> None:
        at = history.START
        self.task_ids = []
        for i, (teammate, cost) in enumerate([("Maya", 60.0), ("Leo", 12.5), ("Maya", 0.1), ("", None)]):
            self.task_ids.append(insert_task(store, teammate=teammate, cost_credits=cost, prompt=f"a fox {i} 100%",
                                             created=at.replace(day=1 + i), task_uuid=f"uuid-{i}"))
        video = os.urandom(200_000)
        self._output(store, self.task_ids[0], "aaaaaaaaaaaaaaaaaaaaaaaa.mp4", video)
        poster = os.urandom(5000)
        (self.static / "aaaaaaaaaaaaaaaaaaaaaaaa.poster.jpg").write_bytes(poster)
        self.files["static/aaaaaaaaaaaaaaaaaaaaaaaa.poster.jpg"] = poster
        self._output(store, self.task_ids[1], "bbbbbbbbbbbbbbbbbbbbbbbb.png", os.urandom(3000), mime="image/png")
        # Larger than one PUT: goes up in parts.
        self._output(store, self.task_ids[2], "cccccccccccccccccccccccc.mp4", os.urandom(storage.UPLOAD_PART + 1234))
        # A task submitted with an image too big to keep inline: the request holds its stashed name.
        image = os.urandom(4000)
        body = {"model": "gen4_turbo", "promptText": "the fox runs",
                "promptImage": "data:image/png;base64," + base64.b64encode(image).decode()}
        self.stashed_id = store.record_submission(backend="simulator", task_type="image_to_video", model="gen4_turbo",
                                                  endpoint="/v1/image_to_video", body=body, teammate="Leo")
        name = f"{_sha(image)}.png"
        assert (self.db.parent / "inputs" / name).is_file()
        self.files[f"inputs/{name}"] = image
        # Removed: its outputs (and their ids) go, its row and reviews stay.
        self.removed_id = insert_task(store, teammate="Leo", cost_credits=30.0, created=at.replace(day=9))
        for position in range(2):
            self._output(store, self.removed_id, f"gone{position}gone{position}gone{position}.mp4", b"x" * 10, position)
            del self.files[f"static/gone{position}gone{position}gone{position}.mp4"]
        store.remove_task(self.removed_id, teammate="Maya")
        # Removed too, and its stashed input with it (no task in view used it): nothing to move.
        other = {**body, "promptImage": "data:image/png;base64," + base64.b64encode(os.urandom(4000)).decode()}
        dropped = store.record_submission(backend="simulator", task_type="image_to_video", model="gen4_turbo",
                                          endpoint="/v1/image_to_video", body=other, teammate="Leo")
        store.remove_task(dropped)
        assert len(list((self.db.parent / "inputs").iterdir())) == 1
        for position in range(2):
            (self.static / f"gone{position}gone{position}gone{position}.mp4").unlink()
        insert_reviews(store, [
            {"task_id": self.task_ids[0], "reviewer": "Maya", "rating": 5, "notes": "crisp", "winner": 1,
             "compared": json.dumps(self.task_ids[:2])},
            {"task_id": self.task_ids[0], "reviewer": "Leo", "rating": 3},
            {"task_id": self.task_ids[1], "reviewer": "", "notes": "ünïcode ✓"},
            {"task_id": self.removed_id, "reviewer": "Leo", "rating": 1},
        ])
        store.set_budget("Maya", 500.0)
        store.set_budget("Leo", 120.5)

    def sqlite_rows(self, table: str) -> list[tuple]:
        conn = sqlite3.connect(self.db)
        try:
            columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
            return conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2").fetchall()
        finally:
            conn.close()

    def sequence(self, table: str) -> int:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()[0]
        finally:
            conn.close()


@pytest.fixture
def planted(tmp_path):
    return Planted(tmp_path)


@pytest.fixture
def target(tmp_path, monkeypatch, s3_server, quiet_process):
    """A fresh PostgreSQL schema and an empty bucket, named by the settings the command reads. No
    poller of an earlier test runs on (`quiet_process`): one archiving its own outputs would
    read these settings and write into this bucket, which the tests count."""
    bucket = s3_server.make_bucket()
    with services.fresh_postgres() as url:
        env = {**s3_server.env(bucket, PREFIX), "DASHBOARD_DATABASE_URL": url,
               "DASHBOARD_DB": str(tmp_path / "data" / "dashboard.db")}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env, bucket


def _move(planted: Planted, *extra: str) -> list[str]:
    return ["--from", str(planted.db), "--static", str(planted.static), *extra]


def _run(capsys, planted: Planted, *extra: str) -> tuple[int, str]:
    code = move.main(_move(planted, *extra))
    return code, capsys.readouterr().out


def _pg(env) -> Store:
    return Store(env["DASHBOARD_DATABASE_URL"])


def _pg_rows(store: Store, table: str, columns: list[str]) -> list[tuple]:
    return [tuple(r) for r in store.tuples(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2")]


def _bucket_objects(s3_server, bucket: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1",
                          aws_access_key_id=services.S3_KEY_ID, aws_secret_access_key=services.S3_SECRET)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _columns(planted: Planted, table: str) -> list[str]:
    conn = sqlite3.connect(planted.db)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def test_a_history_moves_with_its_ids_and_files_and_verifies(planted, target, capsys, s3_server):
    env, bucket = target
    code, out = _run(capsys, planted)
    assert code == 0, out
    assert "Moved and verified." in out
    assert "PROBLEM" not in out
    password = urlsplit_password(env["DASHBOARD_DATABASE_URL"])
    assert f":{password}@" not in out and env["AWS_SECRET_ACCESS_KEY"] not in out
    assert "tasks        7 rows: 7 copied, 0 already there" in out
    assert "outputs      3 rows: 3 copied" in out
    assert f"{REVIEW_ROWS:<12} 4 rows: 4 copied" in out
    assert "budgets      2 rows: 2 copied" in out
    assert "outputs  3 files: 3 uploaded" in out and "posters  1 files: 1 uploaded" in out
    assert "inputs   2 files: 1 uploaded (3.9 KB), 0 already there (0 B), 1 gone with removed tasks" in out

    store = _pg(env)
    try:
        for table in TABLES:  # every row, ids and all, as SQLite has it
            columns = _columns(planted, table)
            assert _pg_rows(store, table, columns) == planted.sqlite_rows(table), table
        # What each day cost, as SQLite counted it (PostgreSQL's triggers built it from the tasks).
        assert _pg_rows(store, "spend_days", _columns(planted, "spend_days")) == \
            [r for r in planted.sqlite_rows("spend_days") if r[len(SPEND_KEY)]]
        # The pages read the moved history as they read SQLite's.
        assert store.task(planted.stashed_id)["teammate"] == "Leo"
        assert store.task(planted.removed_id)["removed_at"] is not None
        assert store.budgets() == {"Leo": 120.5, "Maya": 500.0}
        assert store.reviews_for([planted.task_ids[0]])[planted.task_ids[0]]["count"] == 2
        # Ids are never given twice: past every id SQLite gave, the removed task's outputs' too.
        new_task = store.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                           endpoint="/v1/text_to_video", body={"promptText": "after the move"})
        assert new_task > max(r[0] for r in planted.sqlite_rows("tasks"))
        store.mark_submitted(new_task, "uuid-new", 60.0, first_poll_in=0)
        store.apply_update(new_task, TaskUpdate(api_status="SUCCEEDED", status="SUCCEEDED",
                                                output=("https://cdn.test/new.mp4",)))
        new_output = store.outputs_for([new_task])[new_task][0]["id"]
        assert new_output > planted.sequence("outputs") > max(r[0] for r in planted.sqlite_rows("outputs"))
        new_event = store.events_for(new_task)[-1]["id"]
        assert new_event > max(r[0] for r in planted.sqlite_rows("events"))
    finally:
        store.close()
    assert _bucket_objects(s3_server, bucket) == {f"{PREFIX}/{k}": v for k, v in planted.files.items()}
    # The team's own folders are left as they were: copied, never moved out.
    for key, data in planted.files.items():
        area, name = key.split("/")
        folder = planted.static if area == "static" else planted.db.parent / "inputs"
        assert (folder / name).read_bytes() == data, key
    client = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1",
                          aws_access_key_id=services.S3_KEY_ID, aws_secret_access_key=services.S3_SECRET)
    kinds = {key: client.head_object(Bucket=bucket, Key=f"{PREFIX}/{key}")["ContentType"] for key in planted.files}
    assert kinds["static/aaaaaaaaaaaaaaaaaaaaaaaa.mp4"] == kinds["static/cccccccccccccccccccccccc.mp4"] == "video/mp4"
    assert kinds["static/aaaaaaaaaaaaaaaaaaaaaaaa.poster.jpg"] == "image/jpeg"
    assert {kinds[k] for k in planted.files if k.startswith("inputs/")} == {"image/png"}


def urlsplit_password(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).password


def test_run_again_moves_nothing_and_verifies_as_a_real_command(planted, target, capsys, s3_server):
    env, bucket = target
    assert _run(capsys, planted)[0] == 0
    before = _bucket_objects(s3_server, bucket)
    # The documented command, in a process of its own, the settings naming the target.
    done = subprocess.run([sys.executable, "-m", "lib.store.move", *_move(planted)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Moved and verified." in out
    assert "tasks        7 rows: 0 copied, 7 already there" in out
    assert "outputs  3 files: 0 uploaded (0 B), 3 already there" in out
    assert "tasks        7 rows, sha256" in out and ": equal" in out
    assert urlsplit_password(env["DASHBOARD_DATABASE_URL"]) + "@" not in out
    assert _bucket_objects(s3_server, bucket) == before
    store = _pg(env)
    try:
        assert store.tuples("SELECT COUNT(*) FROM tasks")[0][0] == 7
    finally:
        store.close()


def test_an_interrupted_move_keeps_what_it_committed_and_a_rerun_completes(planted, target, capsys, s3_server):
    env, bucket = target
    # A row PostgreSQL refuses (text with a NUL character) stops the move partway through tasks.
    conn = sqlite3.connect(planted.db)
    with conn:
        conn.execute("UPDATE tasks SET last_error = ? WHERE id = ?", ("bad\x00byte", planted.task_ids[3]))
    conn.close()
    code, out = _run(capsys, planted, "--batch", "2")
    assert code == 1
    assert f"PROBLEM: tasks id {planted.task_ids[3]}:" in out
    assert "NOT DONE" in out and "Moved and verified." not in out
    store = _pg(env)
    try:
        moved = [r[0] for r in store.tuples("SELECT id FROM tasks ORDER BY id")]
        assert moved == planted.task_ids[:3]  # the pages before it, and the rows before it in its page
        assert store.tuples("SELECT COUNT(*) FROM outputs")[0][0] == 0
    finally:
        store.close()
    assert _bucket_objects(s3_server, bucket) == {}

    conn = sqlite3.connect(planted.db)
    with conn:
        conn.execute("UPDATE tasks SET last_error = 'bad byte' WHERE id = ?", (planted.task_ids[3],))
    conn.close()
    code, out = _run(capsys, planted, "--batch", "2")
    assert code == 0, out
    assert "tasks        7 rows: 4 copied, 3 already there" in out
    assert "Moved and verified." in out
    assert _bucket_objects(s3_server, bucket) == {f"{PREFIX}/{k}": v for k, v in planted.files.items()}


def test_a_killed_move_is_picked_up_by_the_next(planted, target, s3_server):
    env, bucket = target
    # SIGKILL once the tasks are in and the outputs on their way, a row per transaction.
    process = subprocess.Popen([sys.executable, "-m", "lib.store.move", *_move(planted), "--batch", "1"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})
    said = []
    for line in process.stdout:
        said.append(line)
        if line.startswith("  tasks "):
            process.kill()
            break
    process.wait(60)
    process.stdout.close()
    assert process.returncode == -9, "".join(said)
    rerun = subprocess.run([sys.executable, "-m", "lib.store.move", *_move(planted)], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env={**os.environ, **env})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "tasks        7 rows: 0 copied, 7 already there" in rerun.stdout
    assert "Moved and verified." in rerun.stdout
    assert _bucket_objects(s3_server, bucket) == {f"{PREFIX}/{k}": v for k, v in planted.files.items()}


def test_a_row_that_differs_is_reported_and_never_overwritten(planted, target, capsys):
    env, _ = target
    assert _run(capsys, planted)[0] == 0
    conn = sqlite3.connect(planted.db)
    with conn:
        conn.execute("UPDATE tasks SET cost_credits = 999 WHERE id = ?", (planted.task_ids[0],))
        conn.execute("UPDATE budgets SET monthly_credits = 1 WHERE teammate = 'Maya'")
    conn.close()
    code, out = _run(capsys, planted)
    assert code == 1
    assert f"PROBLEM: tasks id {planted.task_ids[0]}: the SQLite row differs from PostgreSQL's" in out
    assert "PROBLEM: budgets teammate 'Maya': the SQLite row differs" in out
    assert "PROBLEM: tasks " in out.split("verification:")[1]  # its checksum differs too
    assert "PROBLEM: spend_days" in out  # and what the day cost
    store = _pg(env)
    try:
        assert store.task(planted.task_ids[0])["cost_credits"] == 60.0
        assert store.budget("Maya") == 500.0
    finally:
        store.close()


def test_a_different_object_under_a_key_is_left_and_reported(planted, target, capsys, s3_server):
    env, bucket = target
    client = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1",
                          aws_access_key_id=services.S3_KEY_ID, aws_secret_access_key=services.S3_SECRET)
    key = f"{PREFIX}/static/bbbbbbbbbbbbbbbbbbbbbbbb.png"
    client.put_object(Bucket=bucket, Key=key, Body=b"someone else's")
    code, out = _run(capsys, planted)
    assert code == 1
    assert "PROBLEM: static/bbbbbbbbbbbbbbbbbbbbbbbb.png: the bucket holds a different object" in out
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"someone else's"
    objects = _bucket_objects(s3_server, bucket)
    assert objects[f"{PREFIX}/static/aaaaaaaaaaaaaaaaaaaaaaaa.mp4"] == \
        planted.files["static/aaaaaaaaaaaaaaaaaaaaaaaa.mp4"]  # the rest moved


def test_a_local_file_that_is_not_what_was_archived_is_not_moved(planted, target, capsys, s3_server):
    env, bucket = target
    (planted.static / "aaaaaaaaaaaaaaaaaaaaaaaa.mp4").write_bytes(b"damaged")
    (planted.static / "bbbbbbbbbbbbbbbbbbbbbbbb.png").unlink()
    code, out = _run(capsys, planted)
    assert code == 1
    assert "PROBLEM: static/aaaaaaaaaaaaaaaaaaaaaaaa.mp4: the local file's SHA-256 is not the one recorded" in out
    assert "PROBLEM: static/bbbbbbbbbbbbbbbbbbbbbbbb.png: not in the local folder" in out
    assert f"{PREFIX}/static/aaaaaaaaaaaaaaaaaaaaaaaa.mp4" not in _bucket_objects(s3_server, bucket)


def test_settings_name_the_target_and_a_wrong_one_is_refused(planted, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DASHBOARD_DB", str(planted.db))
    monkeypatch.delenv("DASHBOARD_DATABASE_URL", raising=False)
    assert move.main(["--static", str(planted.static)]) == 2
    assert "postgresql://" in capsys.readouterr().err
    monkeypatch.setenv("DASHBOARD_DATABASE_URL", "postgresql://u:secret-pw@127.0.0.1:9/x")
    assert move.main(["--static", str(planted.static), "--to-storage", "gs://x"]) == 2
    assert "s3://" in capsys.readouterr().err
    # An unreachable database: said in words, its password never.
    code = move.main(["--static", str(planted.static), "--to-storage", ""])
    out = capsys.readouterr()
    assert code == 1
    assert "not reachable" in out.out and "secret-pw" not in out.out + out.err
    assert "u:***@127.0.0.1:9" in out.out
    assert settings.db_path() == planted.db


def test_an_unknown_sqlite_table_stops_the_move(planted, target, capsys):
    conn = sqlite3.connect(planted.db)
    with conn:
        conn.execute("CREATE TABLE labels (task_id INTEGER, label TEXT)")
    conn.close()
    code, out = _run(capsys, planted)
    assert code == 1
    assert "a table this command does not know ('labels')" in out
    store = _pg(target[0])
    try:
        assert store.tuples("SELECT COUNT(*) FROM tasks")[0][0] == 0
    finally:
        store.close()


def test_a_stored_path_outside_the_archive_is_never_read(planted, target, capsys, s3_server, tmp_path):
    env, bucket = target
    (tmp_path / "secret.txt").write_bytes(b"not an output")
    conn = sqlite3.connect(planted.db)
    with conn:
        conn.execute("UPDATE outputs SET path = 'static/../secret.txt' WHERE id = (SELECT MIN(id) FROM outputs)")
    conn.close()
    code, out = _run(capsys, planted)
    assert code == 1
    assert "PROBLEM: an output's path 'static/../secret.txt' is not an archived file's; not moved" in out
    assert b"not an output" not in _bucket_objects(s3_server, bucket).values()


def test_a_bucket_that_does_not_answer_is_said_plainly_and_a_rerun_completes(planted, target, capsys, s3_server,
                                                                             monkeypatch):
    env, bucket = target
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    code, out = _run(capsys, planted)
    assert code == 1 and "NOT DONE" in out
    assert "PROBLEM: static/aaaaaaaaaaaaaaaaaaaaaaaa.mp4: StorageError: The bucket did not answer" in out
    # The bucket layer's plain sentence: no endpoint, bucket name or credential in what the files say
    # (the first line names the target as given, its password masked).
    files = out.split("files:")[1]
    assert "127.0.0.1" not in files and bucket not in files and env["AWS_SECRET_ACCESS_KEY"] not in out
    assert all((planted.static / k.split("/")[1]).is_file() for k in planted.files if k.startswith("static/"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    code, out = _run(capsys, planted)
    assert code == 0, out
    assert _bucket_objects(s3_server, bucket) == {f"{PREFIX}/{k}": v for k, v in planted.files.items()}
