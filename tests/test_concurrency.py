"""Concurrency: two `streamlit run` processes and many browser sessions share one
SQLite database while teammates submit at the same moment and History pages
refresh every second.

No "database is locked" (or any other error) ever reaches a page, no update is
lost (every task is there once, with its own teammate, and ends SUCCEEDED with
every output archived exactly once), and each unfinished task is still read at
most once per poll interval, whichever process reads it.
"""
from __future__ import annotations

import threading
from collections import defaultdict

from lib import lifecycle
from lib.backend import Backend
from lib.store import Store
from lib.tasks import submit_task
from tests.support import ROOT
from tests.support.launch import start_app, start_simulator, stop
from tests.support.simulator import SimulatorAdmin
from tests.support.simulator_env import base_env
from tests.support.waiting import wait_until

INTERVAL = 1.0  # DASHBOARD_POLL_INTERVAL of both app processes
ROUNDS = 2  # form submissions per submitting tab
BROWSER_TEAMMATES = ["ana", "bo", "chen", "dara"]  # one submitting tab each, alternating between the processes
SCRIPT_TEAMMATES = ["eli", "fay", "gus"]  # three more sessions writing through lib at the same time
SCRIPT_TASKS = 4  # per script teammate


def _problems_shown(page) -> list[str]:
    """Errors a user would see: an exception box, or a database error in any text."""
    found = []
    if page.locator('[data-testid="stException"]').count():
        found.append(page.locator('[data-testid="stException"]').first.inner_text())
    text = page.inner_text("body")
    for phrase in ("database is locked", "OperationalError", "Traceback"):
        if phrase in text:
            found.append(phrase)
    return found


def test_two_processes_and_many_sessions_share_one_database(tmp_path, page, monkeypatch):
    monkeypatch.setenv("DASHBOARD_POLL_INTERVAL", f"{INTERVAL:g}")  # the script sessions schedule like the apps
    db = tmp_path / "dashboard.db"
    # Tasks run 4 s, so each is read several times while unfinished.
    env = base_env(DASHBOARD_DB=str(db), SIMULATOR_CONCURRENCY="32", SIMULATOR_RUN_SECONDS="4",
                   DASHBOARD_POLL_INTERVAL=f"{INTERVAL:g}")
    simulator, sim_url, key = start_simulator(tmp_path / "simulator", tmp_path / "simulator.log", env)
    admin = SimulatorAdmin(sim_url, key)
    app_env = {**env, "RUNWAYML_BASE_URL": sim_url, "RUNWAYML_API_SECRET": key}
    apps = []
    store = Store(db)
    try:
        apps = [start_app(app_env, tmp_path / f"app-{n}.log") for n in range(2)]
        urls = [url for _, url in apps]
        browser = page.context.browser
        # Two watchers per process on History, one submitting tab per teammate.
        watchers = []
        for url in urls * 2:
            watcher = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            watcher.goto(f"{url}/History")
            watchers.append(watcher)
        submitters = []
        for n, name in enumerate(BROWSER_TEAMMATES):
            tab = page if n == 0 else browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            tab.goto(f"{urls[n % 2]}/Text_to_Video?teammate={name}")
            tab.get_by_role("textbox", name="Prompt").wait_for(timeout=30_000)
            submitters.append((name, tab))

        def script_session(name: str, errors: list) -> None:
            own = Store(db)  # a session's own connection, as each Streamlit session has
            backend = Backend(name=sim_url, base_url=sim_url, api_key=key)
            try:
                for i in range(SCRIPT_TASKS):
                    result = submit_task(own, backend, task_type="text_to_image", model_id="gen4_image",
                                         inputs={"promptText": f"{name} still life {i}", "ratio": "1024:1024"},
                                         teammate=name)
                    if not result.ok:
                        errors.append(result)
            except Exception as exc:  # surfaced below: nothing may escape, "database is locked" least of all
                errors.append(exc)
            finally:
                own.close()

        script_errors: list = []
        scripts = [threading.Thread(target=script_session, args=(name, script_errors)) for name in SCRIPT_TEAMMATES]
        for thread in scripts:
            thread.start()
        shown: list[str] = []
        for round_ in range(ROUNDS):
            # Everyone presses Generate at nearly the same moment, on both processes.
            for name, tab in submitters:
                tab.get_by_role("textbox", name="Prompt").fill(f"{name}'s lighthouse, take {round_}")
            for _, tab in submitters:
                tab.get_by_role("button", name="Generate").click()
            wait_until(lambda: sum(1 for t in store.recent_tasks(limit=100) if t["teammate"] in BROWSER_TEAMMATES)
                       == len(BROWSER_TEAMMATES) * (round_ + 1), 60, "this round's submissions")  # noqa: B023
            for _, tab in submitters:
                tab.get_by_text("submitted to gen4.5").first.wait_for(timeout=30_000)
                shown += _problems_shown(tab)
            for watcher in watchers:
                shown += _problems_shown(watcher)
        for thread in scripts:
            thread.join()
        assert script_errors == []

        total = len(BROWSER_TEAMMATES) * ROUNDS + len(SCRIPT_TEAMMATES) * SCRIPT_TASKS

        def all_done():
            for watcher in watchers:
                shown.extend(_problems_shown(watcher))
            tasks = store.recent_tasks(limit=100)
            outputs = store.outputs_for([t["id"] for t in tasks])
            return len(tasks) == total and all(t["status"] == lifecycle.SUCCEEDED for t in tasks) and all(
                outputs[t["id"]] and all(o["state"] == "archived" for o in outputs[t["id"]]) for t in tasks)

        wait_until(all_done, 150, "every task to succeed and be archived", every=1.0)
        assert shown == []
        for n in range(2):
            log = (tmp_path / f"app-{n}.log").read_text()
            assert "database is locked" not in log and "Traceback" not in log, log[-3000:]

        # No update lost: every task once, with its own teammate and prompt, created once on the simulator.
        tasks = store.recent_tasks(limit=100)
        assert len(tasks) == total == len({t["task_uuid"] for t in tasks})
        assert len(admin.creates()) == total == admin.created()
        by_teammate = defaultdict(list)
        for task in tasks:
            by_teammate[task["teammate"]].append(task["request"]["promptText"])
        for name in BROWSER_TEAMMATES:
            assert sorted(by_teammate[name]) == [f"{name}'s lighthouse, take {r}" for r in range(ROUNDS)]
        for name in SCRIPT_TEAMMATES:
            assert sorted(by_teammate[name]) == [f"{name} still life {i}" for i in range(SCRIPT_TASKS)]
        for task in tasks:
            statuses = [e["status"] for e in store.events_for(task["id"])]
            ranks = [lifecycle.STATES.index(s) if s in lifecycle.UNFINISHED else 2 for s in statuses]
            assert ranks == sorted(ranks) and statuses[-1] == lifecycle.SUCCEEDED, statuses

        # Each output was downloaded once, by one of the two processes.
        outputs = [o for t in tasks for o in store.outputs_for([t["id"]])[t["id"]]]
        downloads = [r for r in admin.requests() if r["method"] == "GET" and r["path"].startswith("/outputs/")]
        assert len(downloads) == len(outputs) == total
        assert len({o["path"] for o in outputs}) == total

        # Each unfinished task was read at most once per interval, whichever process read it.
        reads = defaultdict(list)
        for r in admin.requests():
            if r["method"] == "GET" and r["path"].startswith("/v1/tasks/"):
                reads[r["path"].rsplit("/", 1)[1]].append(r["time"])
        assert set(reads) == {t["task_uuid"] for t in tasks}
        gaps = [b - a for times in reads.values() for a, b in zip(times, times[1:])]
        assert len(gaps) >= 40 and min(gaps) >= INTERVAL * 0.9, sorted(gaps)[:5]
        for task in tasks:
            times = reads[task["task_uuid"]]
            assert len(times) <= (times[-1] - times[0]) / INTERVAL + 1.5
    finally:
        for proc, _ in apps:
            stop(proc)
        stop(simulator)
        for row in store.conn.execute("SELECT path FROM outputs WHERE path IS NOT NULL"):
            (ROOT / row[0]).unlink(missing_ok=True)
        store.close()
