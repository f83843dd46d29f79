"""Ids are never reused, a download lands only on the row it was leased for, and a removal
leaves nothing behind: no orphaned archive file, no stashed input nobody uses. What the
store keeps is readable by its owner only.

The late-download scenario runs through the real simulator with a download stalled half way
(the `slow_body` fault) and the poller's own threads, on a temporary database and static dir.
"""
from __future__ import annotations

import hashlib
import sqlite3
import stat
import time
from pathlib import Path

import httpx
from sqlite_utils import Database

from lib import media, tasks
from lib.store import Store, migrations, queries
from tests.support.history import insert_output, insert_tasks, task_row
from tests.support.waiting import wait_until
from tests.test_faults import TASKS, Rig

IMAGE = TASKS[1]  # a text-to-image task: one small PNG output


def _record(store: Store, prompt: str = "a red fox", **body) -> int:
    return store.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                   endpoint="/v1/text_to_video", body={"promptText": prompt, **body})


def _succeed(store: Store, task_id: int, url: str) -> dict:
    store.mark_submitted(task_id, f"uuid-{task_id}", None, first_poll_in=0)
    store.conn.execute("UPDATE tasks SET status = 'SUCCEEDED' WHERE id = ?", (task_id,))
    return dict(store.conn.execute(
        "INSERT INTO outputs (task_id, position, url, next_attempt_at) VALUES (?, 0, ?, 0) RETURNING *",
        (task_id, url)).fetchone())


# ---------------------------------------------------------------- ids

def test_the_newest_task_removed_leaves_its_ids_unused(store):
    first, newest = _record(store, "first"), _record(store, "newest")
    old_output = _succeed(store, newest, "https://cdn.test/newest.png")
    store.remove_task(newest)
    again = _record(store, "again")
    assert again > newest and store.task(newest)["removed_at"]  # hidden, kept for its spend
    assert _succeed(store, again, "https://cdn.test/again.png")["id"] > old_output["id"]
    assert [t["id"] for t in store.recent_tasks()] == [again, first]


def _schema(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL")}


def _rows(conn: sqlite3.Connection, columns: dict[str, list[str]] | None = None) -> dict[str, list[dict]]:
    """Every row of the tables that hold ids, by column (only `columns`, if given: a later
    migration may add some)."""
    found = {}
    for table in ("tasks", "outputs", "events", "reviews"):
        cursor = conn.execute(f"SELECT * FROM {table} ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        found[table] = [{k: v for k, v in zip(names, row) if columns is None or k in columns[table]}
                        for row in cursor]
    return found


def test_an_older_database_keeps_every_row_and_id_and_never_gives_an_id_again(tmp_path):
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m007_ids_never_reused")  # tables as a dashboard before AUTOINCREMENT made them
    old = Store.__new__(Store)
    old.db, old.conn = db, db.conn
    ids = insert_tasks(old, [task_row(prompt=p) for p in ("a lighthouse", "a red fox", "a kite", "a tram")])
    # The newest task was removed, but a re-run of it still names it as its parent.
    db.conn.execute("UPDATE tasks SET parent_task_id = ? WHERE id = ?", (ids[-1] + 5, ids[1]))
    db.conn.execute("DELETE FROM tasks WHERE id = ?", (ids[-1],))
    output = insert_output(old, ids[0], path="static/a.mp4")
    db.conn.execute("INSERT INTO events (task_id, at, status) VALUES (?, 'then', 'SUCCEEDED')", (ids[0],))
    db.conn.execute("INSERT INTO reviews (task_id, rating, updated_at) VALUES (?, 4, 'then')", (ids[2],))
    db.conn.commit()
    rows, schema = _rows(db.conn), _schema(db.conn)
    version = db.conn.execute("SELECT version FROM changes").fetchone()[0]
    db.conn.close()

    store = Store(path)
    conn = store.conn
    columns = {table: list(table_rows[0]) for table, table_rows in rows.items()}
    rows["reviews"] = [{**r, "reviewer": r["reviewer"] or ""} for r in rows["reviews"]]  # m010: nameless is ""
    now = _schema(conn)
    # Every row, id, index and trigger as it was; later migrations rebuild the change-counting
    # triggers over the columns they add.
    assert _rows(conn, columns) == rows and set(schema) <= set(now)
    assert all(now[name] == sql for name, sql in schema.items() if not name.endswith("_counted"))
    assert conn.execute("SELECT version FROM changes").fetchone()[0] == version
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    for table in ("tasks", "outputs"):
        create = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        assert '"id" INTEGER PRIMARY KEY AUTOINCREMENT' in create
    assert [t["id"] for t in queries.page(store, queries.Filters(prompt="red fox"), "oldest")] == [ids[1]]

    new = _record(store, "a new kite")
    assert new == ids[-1] + 6  # past the largest id anything still refers to, not merely the largest row
    assert [t["id"] for t in queries.page(store, queries.Filters(prompt="kite"), "oldest")] == [ids[2], new]
    before = store.change_version()
    new_output = _succeed(store, new, "https://cdn.test/new.png")
    assert new_output["id"] > output and store.change_version() > before
    store.remove_task(new)
    assert _record(store, "after a removal") == new + 1
    store.close()
    assert Store(path).count_tasks() == 4  # opening again migrates nothing twice


# ---------------------------------------------------------------- leases

def test_a_download_is_recorded_only_on_the_claim_it_was_made_for(store):
    task_id = _record(store)
    _succeed(store, task_id, "https://cdn.test/first.png")
    file = {"path": "static/x.png", "mime": "image/png", "size": 1, "sha256": "ab"}

    [claim] = store.claim_due_archives(lease=30, now=1_000)
    store.refresh_expired_outputs(task_id, ["https://cdn.test/fresh.png"])  # a new link while it downloads
    assert not store.record_archived(claim["id"], **file, claim=claim)
    assert not store.record_archive_failure(claim["id"], "late", 10, claim=claim)

    [first] = store.claim_due_archives(lease=30)
    assert store.claim_due_archives(lease=30) == []  # leased: nobody else starts it
    [second] = store.claim_due_archives(lease=30, now=time.time() + 31)  # the first worker's lease ran out
    assert second["lease"] != first["lease"]
    assert not store.record_archived(first["id"], **file, claim=first)
    assert store.record_archived(second["id"], **file, claim=second)
    [output] = store.outputs_for([task_id])[task_id]
    assert (output["state"], output["url"], output["path"]) == (
        "archived", "https://cdn.test/fresh.png", "static/x.png")


def _files(static: Path) -> list[str]:
    return sorted(p.name for p in static.iterdir()) if static.exists() else []


def test_a_removed_tasks_late_download_lands_nowhere_and_leaves_no_file(tmp_path):
    """Stall a download, remove its task, submit another, let the download finish: the new task
    shows only its own output, the old ids stay unused, and static/ holds only the new file."""
    rig = Rig(tmp_path)
    try:
        rig.admin.faults({"path_prefix": "/outputs/", "slow_body": 8, "count": 1})
        rig.poller.start()
        [old] = rig.submit([IMAGE])
        rig.store.conn.execute("UPDATE tasks SET next_poll_at = 0")
        wait_until(lambda: [p for p in rig.static.glob(".*.part") if p.stat().st_size], 60, "a stalled download")
        [old_output] = rig.store.outputs_for([old])[old]
        tasks.remove(rig.store, old, static_dir=rig.static)

        task_type, model, inputs, _, _ = IMAGE
        [_, new] = rig.submit([(task_type, model, {**inputs, "promptText": "A paper boat"}, None, None)])
        assert new != old and rig.store.task(old)["removed_at"]
        rig.store.conn.execute("UPDATE tasks SET next_poll_at = 0 WHERE next_poll_at IS NOT NULL")

        def archived():
            outputs = rig.store.outputs_for([new])[new]
            return outputs if outputs and outputs[0]["state"] == "archived" else None
        [output] = wait_until(archived, 60, "the new task's output to be archived")
        assert list(rig.static.glob(".*.part")), "the stalled download ended too early for this test"
        assert output["id"] != old_output["id"]

        # The stalled download finishes; what it brought is no task's, so it is deleted.
        wait_until(lambda: not list(rig.static.glob(".*.part")), 60, "the stalled download to finish")
        wait_until(lambda: _files(rig.static) == [Path(output["path"]).name], 20,
                   f"static/ to hold only the new task's file (holds {_files(rig.static)})")
        [output] = rig.store.outputs_for([new])[new]
        original = httpx.get(rig.admin.task(rig.uuid(new))["output"][0]).content
        assert output["sha256"] == hashlib.sha256(original).hexdigest()
        assert (rig.static / Path(output["path"]).name).read_bytes() == original
        assert rig.store.conn.execute("SELECT COUNT(*) FROM outputs").fetchone()[0] == 1
    finally:
        rig.close()


# ---------------------------------------------------------------- what a removal leaves, who can read it

def _png(seed: int) -> str:
    return media.encode_data_uri("image/png", b"\x89PNG\r\n\x1a\n" + bytes([seed]) * 4000)


def _image_task(store: Store, *images: str) -> int:
    return store.record_submission(
        backend="simulator", task_type="image_to_video", model="gen4_turbo", endpoint="/v1/image_to_video",
        body={"promptImage": images[0], "referenceImages": [{"uri": u} for u in images[1:]], "ratio": "1280:720"})


def test_removing_a_task_deletes_the_stashed_inputs_no_other_task_uses(store):
    shared, own, other = _png(1), _png(2), _png(3)
    first, second = _image_task(store, shared, own), _image_task(store, shared, other)
    for task_id in (first, second):
        store.conn.execute("UPDATE tasks SET status = 'SUCCEEDED' WHERE id = ?", (task_id,))
    stash = store.stash_dir
    assert len(list(stash.iterdir())) == 3

    tasks.remove(store, first, static_dir=store.data_dir / "static")
    assert store.restore_request(store.task(second)["request"])["promptImage"] == shared  # still there
    assert len(list(stash.iterdir())) == 2
    tasks.remove(store, second, static_dir=store.data_dir / "static")
    assert list(stash.iterdir()) == []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_stashed_inputs_are_readable_by_their_owner_only(tmp_path):
    store = Store(tmp_path / "data" / "dashboard.db")
    _image_task(store, _png(1))
    db = store.path
    assert _mode(db.parent) == 0o700
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), *store.stash_dir.iterdir()):
        assert _mode(path) == 0o600, path
    assert _mode(store.stash_dir) == 0o700
    store.close()


def test_files_an_older_dashboard_left_readable_by_all_are_narrowed(tmp_path):
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m009_owner_only_inputs")
    db.conn.close()
    stash = tmp_path / "inputs"
    stash.mkdir()
    (stash / "old.png").write_bytes(b"x")
    for leftover in (path, stash / "old.png"):
        leftover.chmod(0o644)
    stash.chmod(0o755)

    Store(path).close()
    assert (_mode(path), _mode(stash), _mode(stash / "old.png")) == (0o600, 0o700, 0o600)
