"""A PostgreSQL restart in the middle of a run costs no task: a real `streamlit run` on
PostgreSQL polls and archives tasks on a standalone simulator while the database server is
restarted under it (every connection dropped). It reconnects, every task finishes and is archived
once, none is created twice, and nothing it logs names the database's URL or password."""
from __future__ import annotations

import pytest

from lib import lifecycle
from lib.backend import Backend
from lib.store import Store
from lib.tasks import submit_task
from tests.support import services
from tests.support.launch import start_app, start_simulator, stop
from tests.support.simulator import SimulatorAdmin
from tests.support.simulator_env import base_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.subprocess

TASKS = [
    ("text_to_video", "gen4.5", {"promptText": "A tram in the fog", "ratio": "1280:720", "duration": 2}),
    ("text_to_image", "gen4_image", {"promptText": "A compass rose", "ratio": "1024:1024"}),
    ("sound_effect", "eleven_text_to_sound_v2", {"promptText": "Footsteps on gravel", "duration": 1.0}),
    ("text_to_video", "gen4.5", {"promptText": "Kites over a beach", "ratio": "720:1280", "duration": 2}),
]


def _every_task_done(store: Store, ids: list[int]) -> bool:
    tasks = [store.task(i) for i in ids]
    outputs = store.outputs_for(ids)
    return all(t["status"] == lifecycle.SUCCEEDED for t in tasks) and all(
        outputs[i] and all(o["state"] == "archived" for o in outputs[i]) for i in ids)


def test_a_postgresql_restart_mid_run_loses_nothing(tmp_path):
    with services.fresh_postgres() as url:
        env = base_env(DASHBOARD_DB=str(tmp_path / "local.db"), SIMULATOR_RUN_SECONDS="8", SIMULATOR_CONCURRENCY="4")
        simulator, sim_url, key = start_simulator(tmp_path / "simulator", tmp_path / "simulator.log", env)
        admin = SimulatorAdmin(sim_url, key)
        app_log = tmp_path / "app.log"
        app = None
        store = Store(url)
        try:
            app, _ = start_app({**env, "RUNWAYML_BASE_URL": sim_url, "RUNWAYML_API_SECRET": key,
                                "DASHBOARD_DATABASE_URL": url}, app_log)
            backend = Backend(name=sim_url, base_url=sim_url, api_key=key)
            ids = []
            for task_type, model, inputs in TASKS:
                result = submit_task(store, backend, task_type=task_type, model_id=model, inputs=inputs)
                assert result.ok, result
                ids.append(result.task_id)
            # Mid-run: the app has read a task from Runway, and none has finished yet.
            wait_until(lambda: store.conn.execute(
                "SELECT COUNT(*) FROM tasks WHERE api_status IS NOT NULL").fetchone()[0] >= 1, 60,
                "the app to have read a task")
            assert store.unfinished_count() == len(ids)

            services.restart_postgres()  # every connection of the app (and of this test) drops

            wait_until(lambda: _every_task_done(store, ids), 120, "every task to finish and be archived after "
                                                                    "the restart")
            assert app.poll() is None, "the app survived the restart"
            assert len(admin.creates()) == len(ids) == admin.created()  # nothing was sent twice
            archived = store.conn.execute("SELECT task_id, position, COUNT(*) FROM outputs GROUP BY task_id, position "
                                          "HAVING COUNT(*) > 1").fetchall()
            assert archived == []
            log_text = app_log.read_text()
            # Its password is in neither URL form (the test role's name is its password: the masked
            # form, which names the role, is the only one allowed).
            assert url not in log_text and services.postgres_url() not in log_text
        finally:
            store.close()
            if app is not None:
                stop(app)
            stop(simulator)
