"""The task store: rows written before the call, forward-only statuses, outputs, and two writers at once."""
import subprocess
import sys
import threading

from lib import lifecycle, media
from lib.store import OUTCOME_UNKNOWN_CODE, Store, TaskUpdate


def _record(store, **extra):
    return store.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                   endpoint="/v1/text_to_video",
                                   body={"model": "gen4.5", "promptText": "a red fox", "ratio": "1280:720",
                                         "duration": 5}, teammate="ana", estimated_credits=60, **extra)


def test_submission_is_recorded_before_the_call(store):
    task_id = _record(store)
    task = store.task(task_id)
    assert task["submit_state"] == "submitting" and task["task_uuid"] is None
    assert task["request"]["promptText"] == "a red fox"
    assert task["teammate"] == "ana" and task["estimated_credits"] == 60
    store.mark_submitted(task_id, "uuid-1", 60.0, first_poll_in=5)
    assert store.task(task_id)["task_uuid"] == "uuid-1"
    assert [e["note"] for e in store.events_for(task_id)][-1] == "created as uuid-1"


def test_statuses_only_move_forward(store):
    task_id = _record(store)
    store.mark_submitted(task_id, "uuid-1", None, first_poll_in=0)
    assert store.apply_update(task_id, TaskUpdate("RUNNING", lifecycle.PROCESSING, progress=0.4))
    assert not store.apply_update(task_id, TaskUpdate("PENDING", lifecycle.PENDING))
    assert store.task(task_id)["status"] == lifecycle.PROCESSING
    assert store.apply_update(task_id, TaskUpdate("SUCCEEDED", lifecycle.SUCCEEDED, output=("https://o/1.mp4",),
                                                  cost_credits=60))
    assert not store.apply_update(task_id, TaskUpdate("FAILED", lifecycle.FAILED, failure="late"))
    task = store.task(task_id)
    assert task["status"] == lifecycle.SUCCEEDED and task["failure"] is None
    assert task["started_at"] and task["finished_at"] and task["cost_credits"] == 60
    assert [o["url"] for o in store.outputs_for([task_id])[task_id]] == ["https://o/1.mp4"]
    assert [e["status"] for e in store.events_for(task_id)] == ["PENDING", "PENDING", "PROCESSING", "SUCCEEDED"]


def test_raw_and_unknown_statuses_are_kept(store):
    task_id = _record(store)
    store.mark_submitted(task_id, "uuid-1", None, first_poll_in=0)
    store.apply_update(task_id, TaskUpdate("THROTTLED", lifecycle.from_api("THROTTLED")))
    assert (store.task(task_id)["status"], store.task(task_id)["api_status"]) == ("PENDING", "THROTTLED")
    store.apply_update(task_id, TaskUpdate("BRAND_NEW", lifecycle.from_api("BRAND_NEW")))
    assert (store.task(task_id)["status"], store.task(task_id)["api_status"]) == ("PENDING", "BRAND_NEW")


def test_failure_and_code_are_kept(store):
    task_id = _record(store)
    store.mark_submitted(task_id, "uuid-1", None, first_poll_in=0)
    store.apply_update(task_id, TaskUpdate("FAILED", lifecycle.FAILED, failure="Flagged",
                                           failure_code="SAFETY.INPUT.TEXT", cost_credits=0))
    task = store.task(task_id)
    assert (task["failure"], task["failure_code"], task["cost_credits"]) == ("Flagged", "SAFETY.INPUT.TEXT", 0)


def test_large_data_uris_are_stashed_not_inlined(store):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    uri = media.encode_data_uri("image/png", png)
    task_id = store.record_submission(backend="simulator", task_type="image_to_video", model="gen4_turbo",
                                      endpoint="/v1/image_to_video", body={"promptImage": uri, "ratio": "1280:720"})
    row = store.conn.execute("SELECT request_json FROM tasks WHERE id = ?", (task_id,)).fetchone()[0]
    assert len(row) < 200 and "base64" not in row
    assert store.restore_request(store.task(task_id)["request"])["promptImage"] == uri


def test_interrupted_submission_becomes_unknown_not_resent(store):
    task_id = _record(store)
    assert store.settle_interrupted_submissions(older_than_s=-1) == 1
    task = store.task(task_id)
    assert task["submit_state"] == "unknown" and task["failure_code"] == OUTCOME_UNKNOWN_CODE
    assert task["request"]["promptText"] == "a red fox"


def test_two_connections_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "shared.db"
    Store(path).close()
    errors = []

    def writer(name):
        s = Store(path)
        try:
            for i in range(50):
                task_id = s.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                              endpoint="/v1/text_to_video", body={"promptText": f"{name}{i}"},
                                              teammate=name)
                s.mark_submitted(task_id, f"{name}-{i}", None, first_poll_in=0)
        except Exception as exc:  # surfaced below: no "database is locked" may escape
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = Store(path)
    assert s.count_tasks() == 100
    assert s.conn.execute("SELECT COUNT(*) FROM tasks WHERE submit_state = 'submitted'").fetchone()[0] == 100


def test_claims_share_work_without_overlap(tmp_path):
    path = tmp_path / "claims.db"
    first, second = Store(path), Store(path)
    for i in range(10):
        task_id = first.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                          endpoint="/v1/text_to_video", body={})
        first.mark_submitted(task_id, f"u{i}", None, first_poll_in=0)
    a = first.claim_due_polls(["simulator"], hold=5, limit=6, now=1e10)
    b = second.claim_due_polls(["simulator"], hold=5, limit=6, now=1e10)
    assert len(a) == 6 and len(b) == 4
    assert not {r["id"] for r in a} & {r["id"] for r in b}
    assert second.claim_due_polls(["simulator"], hold=5, now=1e10 + 4.9) == []
    assert len(first.claim_due_polls(["simulator"], hold=5, now=1e10 + 5)) == 10
    assert first.claim_due_polls(["https://api.example"], hold=5, now=2e10) == []


def test_schema_migrates_an_existing_database(tmp_path):
    path = tmp_path / "old.db"
    Store(path).close()
    again = Store(path)
    assert again.db["tasks"].exists() and again.count_tasks() == 0


def test_the_change_counter_moves_with_what_pages_show_and_only_then(store):
    """Pages redraw when `change_version` moves: every shown change moves it (in another process
    too), and the poll and archive schedules, rewritten on every read, do not."""
    moves = []

    def step(action):
        before = store.change_version()
        action()
        moves.append(store.change_version() != before)

    task_id = _record(store)
    step(lambda: store.mark_submitted(task_id, "uuid-1", 60.0, first_poll_in=0))
    step(lambda: store.claim_due_polls(["simulator"], hold=5, now=10 ** 10))  # schedule only
    step(lambda: store.plan_polls({task_id: 10 ** 11}))  # schedule only
    step(lambda: store.apply_update(task_id, TaskUpdate("RUNNING", lifecycle.PROCESSING, progress=0.5)))
    step(lambda: store.apply_update(task_id, TaskUpdate("RUNNING", lifecycle.PROCESSING, progress=0.5)))  # same
    step(lambda: store.apply_update(task_id, TaskUpdate("SUCCEEDED", lifecycle.SUCCEEDED,
                                                        output=("https://cdn.test/a.mp4",))))
    [output] = store.outputs_for([task_id])[task_id]
    step(lambda: store.claim_due_archives(now=10 ** 10))  # a lease: schedule only
    step(lambda: store.record_archived(output["id"], path="static/a.mp4", mime="video/mp4", size=1, sha256="x"))
    other = Store(store.location)  # another connection, as another app process would be
    step(lambda: other.set_rating(task_id, 5, "Bo"))
    step(lambda: other.remove_task(task_id))
    assert moves == [True, False, False, True, False, True, False, True, True, True]


def test_text_that_only_starts_like_a_stashed_input_is_kept_as_text(store):
    body = {"model": "gen4.5", "promptText": "stored:foo", "promptImage": "stored:image/png:not-a-digest.png"}
    task_id = store.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                      endpoint="/v1/text_to_video", body=body)
    stored = store.task(task_id)["request"]
    assert store.restore_request(stored) == body  # nothing read from the stash, nothing raised
    assert store.remove_task(task_id) == []


def test_opening_the_store_loads_neither_pandas_nor_pyarrow(pytestconfig, tmp_path):
    """sqlite-utils would import pandas, and pandas 3 pyarrow: about 70 MB in every process that
    opens the store, the Streamlit server included."""
    script = ("import sys, lib.store; lib.store.Store(sys.argv[1]).close(); "
              "print(sorted({'pandas', 'pyarrow'} & set(sys.modules)))")
    opened = subprocess.run([sys.executable, "-c", script, str(tmp_path / "fresh.db")], cwd=pytestconfig.rootpath,
                            capture_output=True, text=True, check=True)
    assert opened.stdout.strip() == "[]"
