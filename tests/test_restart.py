"""Crash and restart: a real `streamlit run` is killed with SIGKILL while tasks are in
flight and a download is half written, then started again. Every task still
finishes and is archived, the half-written file is never shown as archived, and
no task is created twice (the simulator's request log and task count say so).

The simulator runs as its own process (`python -m lib.simulator`), as the live
API would, so the crash takes only the dashboard down.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from lib import lifecycle
from lib.backend import Backend
from lib.store import Store
from lib.tasks import submit_task
from tests.support import ROOT
from tests.support.launch import start_app, start_simulator, stop
from tests.support.simulator import SimulatorAdmin
from tests.support.simulator_env import base_env
from tests.support.waiting import wait_until

STATIC = ROOT / "static"
FIRST = [  # submitted first; the first download of their outputs stalls half way
    ("text_to_video", "gen4.5", {"promptText": "A tram in the fog", "ratio": "1280:720", "duration": 2}),
    ("text_to_image", "gen4_image", {"promptText": "A compass rose", "ratio": "1024:1024"}),
    ("sound_effect", "eleven_text_to_sound_v2", {"promptText": "Footsteps on gravel", "duration": 1.0}),
]
IN_FLIGHT = [  # submitted just before the crash: unfinished when the process dies
    ("text_to_video", "gen4.5", {"promptText": "Kites over a beach", "ratio": "720:1280", "duration": 2}),
    ("text_to_video", "gen4.5", {"promptText": "A bonfire #unsafe", "ratio": "1280:720", "duration": 2}),
    ("text_to_image", "gen4_image", {"promptText": "A bicycle made of glass", "ratio": "1360:768"}),
]


def _submit(store, backend, tasks):
    ids = []
    for task_type, model, inputs in tasks:
        result = submit_task(store, backend, task_type=task_type, model_id=model, inputs=inputs)
        assert result.ok, result
        ids.append(result.task_id)
    return ids


def _partials(pid: int) -> list[Path]:
    found = []
    for partial in STATIC.glob(f".*.{pid}.part"):
        try:
            if partial.stat().st_size > 0:
                found.append(partial)
        except FileNotFoundError:  # it was completed (renamed) between the listing and the look
            pass
    return found


def _all_but_one_archived(store: Store) -> list | None:
    rows = store.conn.execute("SELECT * FROM outputs").fetchall()
    waiting = [r for r in rows if r["state"] != "archived"]
    return waiting if len(rows) == len(FIRST) and len(waiting) == 1 else None


MEDIA_SRCS = """() => [...document.querySelectorAll('video, audio, img')]
    .map(e => e.getAttribute('src') || '').filter(s => s.includes('/app/static/'))"""


def _media_on_history(page, url: str, expected: int = 5) -> list[str]:
    """The archived files History embeds, once it has drawn its task cards (on a busy machine
    the players can take a while after the text: wait for them rather than a fixed time)."""
    page.goto(f"{url}/History")
    page.get_by_text("A tram in the fog").first.wait_for(timeout=30_000)
    try:
        page.wait_for_function(f"() => ({MEDIA_SRCS})().length >= {expected}", timeout=30_000)
    except Exception:  # the assertion on the count below says what was found
        pass
    page.wait_for_timeout(500)  # a player beyond the expected ones would show up by now
    return page.evaluate(MEDIA_SRCS)


def _assert_embedded_files_are_whole(srcs: list[str], store: Store, app_url: str) -> None:
    """Every file the page embeds is an archived output whose bytes are complete and match its checksum."""
    archived = {Path(o["path"]).name: o for o in store.conn.execute(
        "SELECT * FROM outputs WHERE state = 'archived'").fetchall()}
    for src in srcs:
        name = src.rsplit("/", 1)[1].split("?")[0]
        assert name in archived, f"{name} is embedded but not archived"
        served = httpx.get(f"{app_url}/app/static/{name}").content
        assert len(served) == archived[name]["size"]
        assert hashlib.sha256(served).hexdigest() == archived[name]["sha256"]


def test_a_killed_app_finishes_every_task_and_creates_none_twice(tmp_path, page):
    db = tmp_path / "dashboard.db"
    env = base_env(DASHBOARD_DB=str(db), DASHBOARD_ARCHIVE_LEASE_SECONDS="3", SIMULATOR_CONCURRENCY="4")
    simulator, sim_url, key = start_simulator(tmp_path / "simulator", tmp_path / "simulator.log", env)
    admin = SimulatorAdmin(sim_url, key)
    app_env = {**env, "RUNWAYML_BASE_URL": sim_url, "RUNWAYML_API_SECRET": key}
    backend = Backend(name=sim_url, base_url=sim_url, api_key=key)
    store = Store(db)
    first_app = second_app = None
    try:
        first_app, first_url = start_app(app_env, tmp_path / "app.log")
        # The first output download gets half its bytes, then nothing for two minutes.
        admin.faults({"path_prefix": "/outputs/", "slow_body": 120, "count": 1})
        ids = _submit(store, backend, FIRST)
        [partial] = wait_until(lambda: _partials(first_app.pid), 60, "a download to stall half written")
        [stalled] = wait_until(lambda: _all_but_one_archived(store), 60, "the other outputs to be archived")

        # While it stalls, History embeds only whole files, and never the half-written one.
        archived_now = store.conn.execute("SELECT COUNT(*) FROM outputs WHERE state = 'archived'").fetchone()[0]
        srcs = _media_on_history(page, first_url, expected=archived_now)
        assert partial.name not in " ".join(srcs)
        _assert_embedded_files_are_whole(srcs, store, first_url)

        ids += _submit(store, backend, IN_FLIGHT)
        unfinished = store.unfinished_count()
        assert unfinished >= 1
        stop(first_app, kill=True)  # SIGKILL: no clean-up of any kind runs

        assert partial.exists() and partial.stat().st_size > 0  # half written, left by the crash
        assert store.conn.execute("SELECT state FROM outputs WHERE id = ?", (stalled["id"],)).fetchone()[0] \
            != "archived"

        second_app, second_url = start_app(app_env, tmp_path / "app.log")
        wait_until(lambda: not partial.exists(), 60, "the restarted app to remove the half-written file")

        def finished():
            tasks = [store.task(i) for i in ids]
            outputs = store.outputs_for(ids)
            return all(lifecycle.is_terminal(t["status"]) for t in tasks) and all(
                outputs[t["id"]] and all(o["state"] == "archived" for o in outputs[t["id"]])
                for t in tasks if t["status"] == lifecycle.SUCCEEDED)

        wait_until(finished, 120, "every task to finish and be archived after the restart")

        # No task was created twice: one create request per task, and the simulator holds exactly these.
        assert len(admin.creates()) == len(ids) == admin.created() == store.count_tasks()
        for task_id, (_, _, inputs) in zip(ids, FIRST + IN_FLIGHT):
            task = store.task(task_id)
            truth = admin.task(task["task_uuid"])
            assert task["status"] == truth["status"] == ("FAILED" if "#unsafe" in inputs["promptText"]
                                                         else "SUCCEEDED")
            for output in store.outputs_for([task_id])[task_id]:
                saved = STATIC / Path(output["path"]).name
                original = httpx.get(truth["output"][0]).content
                assert saved.read_bytes() == original and output["size"] == len(original)
        stalled_now = store.conn.execute("SELECT * FROM outputs WHERE id = ?", (stalled["id"],)).fetchone()
        assert stalled_now["state"] == "archived" and stalled_now["attempts"] >= 1

        srcs = _media_on_history(page, second_url)
        succeeded_outputs = store.conn.execute(
            "SELECT COUNT(*) FROM outputs o JOIN tasks t ON t.id = o.task_id WHERE t.status = 'SUCCEEDED'"
        ).fetchone()[0]
        assert len(srcs) == succeeded_outputs == 5
        _assert_embedded_files_are_whole(srcs, store, second_url)
        assert not list(STATIC.glob(f".*.{first_app.pid}.part"))
    finally:
        for proc in (first_app, second_app, simulator):
            if proc is not None:
                stop(proc)
        for row in store.conn.execute("SELECT path FROM outputs WHERE path IS NOT NULL"):
            (ROOT / row[0]).unlink(missing_ok=True)
        store.close()


# ---------------------------------------------------------------- what a crash leaves behind, one piece at a time

def _age_rows(store: Store, seconds: float) -> None:
    from datetime import datetime, timedelta, timezone

    then = (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    store.conn.execute("UPDATE tasks SET created_at = ?", (then.replace("+00:00", "Z"),))


def test_a_submission_cut_short_is_settled_as_unknown_while_running_and_never_resent(
        store, fake_backend, fake_runway, tmp_path, monkeypatch):
    import lib.poller

    monkeypatch.setattr(lib.poller, "SETTLE_EVERY", 0.1)
    poller = lib.poller.Poller(store.location, [fake_backend], interval=0.2, static_dir=tmp_path / "static").start()
    try:
        # Another process wrote the row, then died before Runway answered.
        task_id = store.record_submission(backend=fake_backend.name, task_type="text_to_video", model="gen4.5",
                                          endpoint="/v1/text_to_video", body={"promptText": "cut short"})
        _age_rows(store, 600)
        wait_until(lambda: store.task(task_id)["submit_state"] == "unknown", 5, "the row to be settled")
        task = store.task(task_id)
        assert (task["status"], task["failure_code"]) == (lifecycle.FAILED, "DASHBOARD.OUTCOME_UNKNOWN")
        assert "not sent again" in task["failure"]
        assert fake_runway.requests == []  # never resent
        assert store.unfinished_count() == 0  # History stops waiting for it
    finally:
        poller.stop()


def test_a_recent_submission_of_a_live_process_is_left_alone(store, fake_backend, tmp_path):
    from lib.poller import Poller

    task_id = store.record_submission(backend=fake_backend.name, task_type="text_to_video", model="gen4.5",
                                      endpoint="/v1/text_to_video", body={"promptText": "in progress"})
    poller = Poller(store.location, [fake_backend], interval=0.2, static_dir=tmp_path / "static").start()
    poller.stop()
    assert store.task(task_id)["submit_state"] == "submitting"


def test_a_create_that_answers_after_being_settled_is_followed_after_all(store, fake_backend, fake_runway, tmp_path):
    from lib.poller import Poller

    task_id = store.record_submission(backend=fake_backend.name, task_type="text_to_video", model="gen4.5",
                                      endpoint="/v1/text_to_video", body={"promptText": "slow create"})
    _age_rows(store, 600)
    assert store.settle_interrupted_submissions() == 1
    created = fake_backend.client().create_task("/v1/text_to_video", {"promptText": "slow create"})
    store.mark_submitted(task_id, created.id, 60.0, first_poll_in=0)  # the answer finally arrives
    task = store.task(task_id)
    assert (task["status"], task["submit_state"], task["failure"]) == (lifecycle.PENDING, "submitted", None)
    fake_runway.tasks[created.id].update(status="SUCCEEDED", output=[])
    poller = Poller(store.location, [fake_backend], interval=0.2, static_dir=tmp_path / "static")
    poller.poll_once(now=2e9)
    poller.stop()
    assert store.task(task_id)["status"] == lifecycle.SUCCEEDED


def test_only_a_dead_process_s_partial_downloads_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from lib import archive

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left_by_crash = tmp_path / f".abc.{int(dead.stdout)}.part"
    in_progress = tmp_path / f".def.{os.getpid()}.part"
    archived = tmp_path / "ghi.mp4"
    for path in (left_by_crash, in_progress, archived):
        path.write_bytes(b"\0" * 10)
    assert archive.remove_partial_files(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([in_progress.name, archived.name])
