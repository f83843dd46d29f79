"""Scale-out on one machine: replicas behind HAProxy, a worker beside web replicas with polling
off, all on one database and one Runway (the simulator as its own process, in live mode), as
`python -m deploy.cluster` starts them (tests/support/cluster.py).

- a worker polls and archives while the web replicas, with polling off, only read;
- a task submitted on one replica shows on another's History;
- 3 replicas with 9 open tabs read each task from Runway as often as 1 replica with 1 tab;
- end to end through the balancer: Chromium uploads an image on Image to Video, the video plays,
  and a replica killed with SIGKILL mid-download costs nothing: the output lands exactly once.

Runs on SQLite and the local folder; the end-to-end test also runs on PostgreSQL and an S3 server
(tests/support/services.py), where it must not skip under CI.
"""
from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import pytest

from lib import archive, lifecycle
from lib.store import Store
from lib.tasks import submit_task
from tests.support import ROOT, chromium
from tests.support.cluster import local_cluster
from tests.support.waiting import wait_until

STATIC = ROOT / "static"
ARTIFACTS = ROOT / "test-artifacts"
INTERVAL = 1.0  # DASHBOARD_POLL_INTERVAL of every replica (tests/support/simulator_env.FAST_SIMULATOR)


@contextlib.contextmanager
def _browser():
    if not chromium.installed():
        pytest.fail("Debian's chromium is not installed; run `bash tests/run.sh`, which installs it.")
    with chromium.browser() as browser:
        yield browser


@contextlib.contextmanager
def _kept_on_failure(tab, name: str):
    """A failing step leaves a screenshot of the tab in test-artifacts/, to see which one it was."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):
            tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


def _tab(browser):
    """A tab of its own browser profile: its own cookies, so the balancer may pin it to any replica."""
    return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def _submit(store: Store, backend, prompt: str, task_type: str = "text_to_video") -> int:
    inputs = {"promptText": prompt, "ratio": "1280:720", "duration": 2}
    result = submit_task(store, backend, task_type=task_type, model_id="gen4.5", inputs=inputs)
    assert result.ok, result
    return result.task_id


def _task(location, task_id: int) -> dict:
    store = Store(location)
    try:
        return store.task(task_id)
    finally:
        store.close()


def _outputs(location, task_id: int) -> list[dict]:
    store = Store(location)
    try:
        return [dict(r) for r in store.conn.execute("SELECT * FROM outputs WHERE task_id = ?", (task_id,))]
    finally:
        store.close()


def _archived(location, task_id: int) -> list[dict] | None:
    rows = _outputs(location, task_id)
    return rows if rows and all(r["state"] == "archived" for r in rows) else None


# ---------------------------------------------------------------- a worker, and web replicas with polling off

def test_with_polling_off_neither_the_server_start_nor_the_pages_read_runway(app_env, monkeypatch):
    from lib import server
    from lib.backend import current_backend
    from tests.support.apptest import open_page
    from tests.support.simulator import SimulatorAdmin

    monkeypatch.setenv("DASHBOARD_POLLING", "off")
    monkeypatch.setenv("DASHBOARD_POLL_INTERVAL", "0.2")
    server.start_background_work()  # what `streamlit run` does at start
    backend = current_backend()
    store = Store(app_env / "dashboard.db")
    task_id = _submit(store, backend, "A quiet harbour")
    uuid = store.task(task_id)["task_uuid"]
    for _ in range(4):  # four page views, well over the task's whole run in the simulator
        at = open_page("pages/10_History.py")
        shown = " ".join(str(e.value) for kind in (at.markdown, at.caption, at.subheader, at.text) for e in kind)
        assert not at.exception and "A quiet harbour" in shown.replace("\\", "")
        time.sleep(0.3)  # the poll interval is 0.2 s: a poller would have read it by now
    admin = SimulatorAdmin(backend.base_url, backend.api_key)
    assert admin.reads()[uuid] == 0
    assert store.task(task_id)["status"] not in lifecycle.TERMINAL

    monkeypatch.setenv("DASHBOARD_POLLING", "sometimes")
    at = open_page("pages/10_History.py")
    assert [e.value for e in at.error] == ["DASHBOARD_POLLING takes on or off; it is set to 'sometimes'."]


@pytest.mark.subprocess
@pytest.mark.browser
def test_a_worker_polls_and_archives_while_pages_with_polling_off_only_read(tmp_path):
    with local_cluster(tmp_path, replicas=1, worker=True) as cluster, _browser() as browser:
        admin = cluster.admin()
        worker = cluster.workers[0]
        worker.proc.send_signal(signal.SIGTERM)  # stops cleanly: its threads end, it says so
        assert worker.proc.wait(timeout=20) == 0
        assert "worker stopped" in worker.log.read_text()

        store = cluster.store()
        task_id = _submit(store, cluster.backend(), "A lighthouse seen from a worker")
        uuid = store.task(task_id)["task_uuid"]
        tab = _tab(browser)
        tab.goto(f"{cluster.url}/History")  # a page view on the replica: with polling off it starts no poller
        tab.get_by_text("A lighthouse seen from a worker").first.wait_for(timeout=30_000)
        tab.wait_for_timeout(int(4 * INTERVAL * 1000))
        assert admin.reads()[uuid] == 0, "a replica with DASHBOARD_POLLING=off read a task from Runway"
        assert _task(cluster.location(), task_id)["status"] not in lifecycle.TERMINAL

        cluster.start_worker()  # now the task is polled to the end and archived, by the worker alone
        wait_until(lambda: _archived(cluster.location(), task_id), 60, "the worker to archive the output")
        assert _task(cluster.location(), task_id)["status"] == lifecycle.SUCCEEDED
        tab.get_by_text("SUCCEEDED").first.wait_for(timeout=30_000)  # and the page shows what the worker wrote
        log = "".join(p.log.read_text() for p in cluster.workers)
        assert cluster.simulator_key not in log and "worker polling" in log


# ---------------------------------------------------------------- one history across replicas

@pytest.mark.subprocess
@pytest.mark.browser
def test_a_task_submitted_on_one_replica_shows_on_another_replicas_history(tmp_path):
    with local_cluster(tmp_path, replicas=3) as cluster, _browser() as browser:
        watcher = _tab(browser)
        watcher.goto(f"{cluster.web[1].url}/History")
        watcher.get_by_text("No tasks").first.wait_for(timeout=30_000)

        submitter = _tab(browser)
        submitter.goto(f"{cluster.web[0].url}/Text_to_Video")
        submitter.get_by_role("textbox", name="Prompt").fill("A harbour crane at dawn")
        submitter.get_by_role("button", name="Generate").click()
        submitter.get_by_text("submitted to gen4.5").wait_for(timeout=30_000)

        # Replica B's open History redraws itself (every DASHBOARD_REFRESH_SECONDS) with A's task.
        watcher.get_by_text("A harbour crane at dawn").first.wait_for(timeout=20_000)
        watcher.get_by_text("SUCCEEDED").first.wait_for(timeout=60_000)


@pytest.mark.subprocess
def test_a_replica_killed_mid_poll_leaves_the_task_to_another_which_finishes_it(tmp_path):
    # A read holds its task for one interval plus one request's timeout: 1 + 4 s here.
    with local_cluster(tmp_path, replicas=3, DASHBOARD_API_TIMEOUT="4") as cluster:
        admin = cluster.admin()
        admin.faults({"path_prefix": "/v1/tasks/", "method": "GET", "delay": 3, "count": 1})  # the first read hangs
        store = cluster.store()
        task_id = _submit(store, cluster.backend(), "A ferry crossing at night")
        uuid = store.task(task_id)["task_uuid"]
        first = wait_until(lambda: [r for r in admin.requests() if r["path"] == f"/v1/tasks/{uuid}"], 30,
                           "the first read")[0]
        [victim] = wait_until(lambda: [i for i in [cluster.sender(first)] if i is not None], 10,
                              "the reading replica's connection")
        cluster.kill(victim)  # mid-poll: its read is in flight, its claim on the task unanswered

        rows = wait_until(lambda: _archived(cluster.location(), task_id), 90, "another replica to finish the task")
        assert _task(cluster.location(), task_id)["status"] == lifecycle.SUCCEEDED
        assert len(rows) == 1
        store.close()


# ---------------------------------------------------------------- polling reads do not grow with replicas or tabs

READ_TIMINGS = {"SIMULATOR_PENDING_SECONDS": "1", "SIMULATOR_RUN_SECONDS": "10"}  # ~12 reads a task
READ_TASKS = 4


def _reads_per_task(tmp: Path, replicas: int, tabs: int) -> float:
    with local_cluster(tmp, replicas=replicas, **READ_TIMINGS) as cluster, _browser() as browser:
        pages = [_tab(browser) for _ in range(tabs)]
        for tab in pages:
            tab.goto(f"{cluster.url}/History")
        store = cluster.store()
        ids = [_submit(store, cluster.backend(), f"A kite, number {i}") for i in range(READ_TASKS)]
        uuids = [store.task(i)["task_uuid"] for i in ids]
        for task_id in ids:
            wait_until(lambda task_id=task_id: _archived(cluster.location(), task_id), 90, "every task to finish")
        for tab in pages:  # every tab stayed open and drew the tasks
            tab.get_by_text("A kite, number 0").first.wait_for(timeout=30_000)
        reads = cluster.admin().reads()
        store.close()
    return sum(reads[u] for u in uuids) / len(uuids)


@pytest.mark.subprocess
@pytest.mark.browser
def test_polling_reads_per_task_with_3_replicas_and_9_tabs_stay_those_of_one(tmp_path):
    one = _reads_per_task(tmp_path / "one", replicas=1, tabs=1)
    many = _reads_per_task(tmp_path / "many", replicas=3, tabs=9)
    assert one >= 5  # the tasks ran long enough for the ratio to mean something
    assert many <= 1.05 * one, f"{many:.2f} reads a task with 3 replicas and 9 tabs, {one:.2f} with one"


# ---------------------------------------------------------------- end to end, with a replica killed mid-download

def _scale_out_params():
    """SQLite and the local folder, the default; PostgreSQL and an S3 bucket, the scaled-out set-up."""
    return [pytest.param(("", False), id="sqlite-folder"), pytest.param(("postgresql", True), id="postgresql-s3")]


@pytest.fixture
def scale_out(request):
    """(database URL or "", storage settings or {}) for the backends under test."""
    database, bucket = request.param
    from tests.support.services import S3Server, fresh_postgres

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if database else ""
        storage = {}
        if bucket:
            s3 = S3Server()
            stack.callback(s3.stop)
            storage = s3.env(s3.make_bucket())
        yield url, storage


def _bucket_names(storage: dict) -> set[str]:
    """The archive's object names in the bucket the settings name (`<prefix>/static/<name>`)."""
    import boto3

    bucket, _, prefix = storage["DASHBOARD_STORAGE_URL"].removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=storage["AWS_ENDPOINT_URL"], region_name=storage["AWS_REGION"],
                      aws_access_key_id=storage["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=storage["AWS_SECRET_ACCESS_KEY"])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/static/").get("Contents", [])
    return {f"static/{o['Key'].rsplit('/', 1)[1]}" for o in listed}


def _partial_of(pids: list[int]) -> int | None:
    """The replica whose download is half written in static/ right now, if any."""
    for partial in STATIC.glob(".*.part"):
        pid = partial.name.split(".")[-2]
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(pid) in pids and partial.stat().st_size > 0:
                return int(pid)
    return None


def _wait_for_playing_video(tab) -> dict:
    video = tab.locator("video").first
    video.wait_for(state="attached", timeout=60_000)
    return tab.evaluate("""async () => {
        const v = document.querySelector('video');
        v.muted = true;
        await v.play();
        const start = v.currentTime;
        await new Promise(r => setTimeout(r, 1000));
        return {start, time: v.currentTime, ready: v.readyState, error: v.error && v.error.code};
    }""")


@pytest.mark.subprocess
@pytest.mark.browser
@pytest.mark.parametrize("scale_out", _scale_out_params(), indirect=True)
def test_image_to_video_through_the_balancer_survives_a_replica_killed_mid_download(tmp_path, scale_out):
    from tests.support import media_samples

    database_url, storage = scale_out
    image = tmp_path / "portrait.png"
    image.write_bytes(media_samples.png(90, 160, (30, 120, 200)))
    before = set(STATIC.iterdir()) if STATIC.exists() else set()
    # A short lease: the killed replica's download is taken up by another within seconds.
    with local_cluster(tmp_path, replicas=3, database_url=database_url, storage=storage,
                       DASHBOARD_ARCHIVE_LEASE_SECONDS="4") as cluster, _browser() as browser:
        admin = cluster.admin()
        # The first download of an output stalls half written, long enough to kill its replica.
        admin.faults({"path_prefix": "/outputs/", "method": "GET", "slow_body": 60, "count": 1})
        tab = _tab(browser)
        with _kept_on_failure(tab, "cluster_image_to_video"):
            tab.goto(f"{cluster.url}/Image_to_Video?teammate=Dee")
            tab.get_by_role("textbox", name="Prompt").fill("The portrait slowly smiles")
            tab.locator("input[type=file]").first.set_input_files(str(image))
            tab.get_by_text("portrait.png").wait_for(timeout=30_000)
            tab.get_by_role("button", name="Generate").click()
            tab.get_by_text("submitted to gen4.5").wait_for(timeout=30_000)

            store = cluster.store()
            task_id = store.recent_tasks(limit=1)[0]["id"]
            # The stalled download, and the replica whose connection it is on (every replica polls and archives).
            stalled = wait_until(lambda: [r for r in admin.requests() if r["path"].startswith("/outputs/")], 60,
                                 "a replica to start the download")[0]
            [victim] = wait_until(lambda: [i for i in [cluster.sender(stalled)] if i is not None], 10,
                                  "the downloading replica's connection")
            if not storage:  # the half-written file is there, in the victim's name
                assert wait_until(lambda: _partial_of([cluster.web[victim].proc.pid]), 30, "the half-written file")
            cluster.kill(victim)

            rows = wait_until(lambda: _archived(cluster.location(), task_id), 90,
                              "another replica to archive the output")
            assert _task(cluster.location(), task_id)["status"] == lifecycle.SUCCEEDED
            assert len(rows) == 1 and rows[0]["size"] > 0  # one output, archived once
            downloads = [r for r in admin.requests() if r["method"] == "GET" and r["path"].startswith("/outputs/")]
            assert len(downloads) == 2  # the one cut short by the kill, and the one that finished

            tab.goto(f"{cluster.url}/History")
            tab.get_by_text("The portrait slowly smiles").first.wait_for(timeout=30_000)
            playing = _wait_for_playing_video(tab)
            assert playing["error"] is None and playing["ready"] >= 2 and playing["time"] > playing["start"]
        store.close()
        if storage:  # exactly one object was archived (and its poster beside it), in the bucket
            names = _bucket_names(storage)
            assert rows[0]["path"] in names and names <= {rows[0]["path"], archive.poster_path(rows[0]["path"])}
        else:
            # Exactly one file was archived (and its poster beside it); the killed replica's half file is
            # a hidden .part, never served, removed by the next start (and by local_cluster on its way out).
            new = {f"static/{p.name}" for p in set(STATIC.iterdir()) - before if not p.name.startswith(".")}
            assert rows[0]["path"] in new and new <= {rows[0]["path"], archive.poster_path(rows[0]["path"])}


# ---------------------------------------------------------------- the pieces on their own

@pytest.mark.subprocess
def test_the_balancers_config_is_valid_haproxy_and_keeps_sessions_on_one_replica(tmp_path):
    import subprocess

    from deploy.cluster import HAPROXY, TEMPLATE, haproxy_config

    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(18500, [18601, 18602]))
    for path in (TEMPLATE, config):  # as checked in, and as the cluster writes it
        checked = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "bind 127.0.0.1:18500" in text and text.count("    server replica") == 2
    assert "cookie DASHBOARD_REPLICA insert" in text and "timeout tunnel" in text
    assert "uri /_stcore/health" in text


@pytest.mark.subprocess
def test_the_worker_stops_on_a_bad_setting_with_its_name_and_masks_the_database_password(tmp_path):
    import subprocess
    import sys

    from tests.support.simulator_env import clean_env

    def worker(**env):
        return subprocess.run([sys.executable, "-m", "lib.worker"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env=clean_env(RUNWAYML_API_SECRET="key-not-to-show", **env))

    bad = worker(DASHBOARD_POLL_INTERVAL="soon", DASHBOARD_DB=str(tmp_path / "d.db"))
    assert bad.returncode == 2 and "DASHBOARD_POLL_INTERVAL" in bad.stderr
    wrong = worker(DASHBOARD_DATABASE_URL="mysql://u:hunter2@127.0.0.1/db")
    assert wrong.returncode == 2 and "DASHBOARD_DATABASE_URL" in wrong.stderr
    assert "hunter2" not in wrong.stderr and "key-not-to-show" not in bad.stderr + wrong.stderr


@pytest.mark.subprocess
def test_the_worker_waits_for_an_unreachable_database_naming_it_masked_and_stops_on_sigint(tmp_path):
    import subprocess
    import sys

    from tests.support.net import free_port
    from tests.support.simulator_env import clean_env

    log = tmp_path / "worker.log"
    url = f"postgresql://dash:hunter2@127.0.0.1:{free_port()}/db"  # nothing listens there
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lib.worker"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=clean_env(RUNWAYML_API_SECRET="key-not-to-show", RUNWAYML_BASE_URL="http://127.0.0.1:9",
                                              DASHBOARD_DATABASE_URL=url))
    try:
        wait_until(lambda: "cannot be used yet" in log.read_text(), 60, "the worker to report the database")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "postgresql://dash:***@127.0.0.1" in text
    assert "hunter2" not in text and "key-not-to-show" not in text and "Traceback" not in text
