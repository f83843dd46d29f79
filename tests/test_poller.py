"""The poller: each unfinished task is read at most once per interval however many pollers run,
answers land in the store, and succeeded outputs are archived (or kept at risk and retried)."""
import hashlib
import threading
import time

import httpx

from lib import lifecycle
from lib.poller import Poller
from lib.tasks import submit_task


def _submit(store, backend, n):
    ids = []
    for i in range(n):
        result = submit_task(store, backend, task_type="text_to_video", model_id="gen4.5",
                             inputs={"promptText": f"shot {i}", "ratio": "1280:720", "duration": 5})
        assert result.ok, result
        ids.append(result.task_id)
    return ids


def test_several_pollers_read_each_task_once_per_interval(store, fake_backend, fake_runway, tmp_path):
    ids = _submit(store, fake_backend, 12)
    store.conn.execute("UPDATE tasks SET next_poll_at = 0")
    pollers = [Poller(store.location, [fake_backend], interval=5, static_dir=tmp_path / "static") for _ in range(3)]
    start = 1_000_000.0
    # Three pollers race over 4 intervals, each trying every half second of (simulated) time.
    for step in range(40):
        now = start + step * 0.5
        threads = [threading.Thread(target=p.poll_once, args=(now,)) for p in pollers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    uuids = [store.task(i)["task_uuid"] for i in ids]
    assert [fake_runway.gets(u) for u in uuids] == [4] * 12
    for p in pollers:
        p.stop()


def test_a_read_that_comes_back_late_is_not_doubled_by_another_poller(store, fake_backend, fake_runway, tmp_path):
    """On a busy machine a read can take longer than the interval. The claim holds the task until
    the read comes back, so another process's poller does not read it meanwhile; the next read is
    planned an interval after the answer."""
    [task_id] = _submit(store, fake_backend, 1)
    store.conn.execute("UPDATE tasks SET next_poll_at = 0")
    answer, sent, release = fake_runway.handler, threading.Event(), threading.Event()

    def held_up(request):
        sent.set()
        release.wait(10)
        return answer(request)

    fake_runway.handler = held_up
    slow = Poller(store.location, [fake_backend], interval=0.2, static_dir=tmp_path / "static")
    fake_runway.handler = answer
    other = Poller(store.location, [fake_backend], interval=0.2, static_dir=tmp_path / "static")
    reading = threading.Thread(target=slow.poll_once)
    reading.start()
    assert sent.wait(10)
    read_meanwhile = []
    for _ in range(8):  # four intervals while the first read is out
        time.sleep(0.1)
        read_meanwhile.append(other.poll_once())
    release.set()
    reading.join()
    uuid = store.task(task_id)["task_uuid"]
    assert read_meanwhile == [0] * 8 and fake_runway.gets(uuid) == 1
    time.sleep(0.3)
    assert other.poll_once() == 1 and fake_runway.gets(uuid) == 2
    slow.stop()
    other.stop()


def test_poll_answers_update_rows(store, fake_backend, fake_runway, tmp_path):
    [task_id] = _submit(store, fake_backend, 1)
    uuid = store.task(task_id)["task_uuid"]
    poller = Poller(store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    fake_runway.tasks[uuid].update(status="RUNNING", progress=0.25)
    poller.poll_once(now=2e9)
    task = store.task(task_id)
    assert (task["status"], task["api_status"], task["progress"]) == (lifecycle.PROCESSING, "RUNNING", 0.25)
    fake_runway.tasks[uuid].update(status="FAILED", failure="Flagged by moderation", failureCode="SAFETY.INPUT.TEXT",
                                   cost={"credits": 0})
    poller.poll_once(now=2e9 + 5)
    task = store.task(task_id)
    assert (task["status"], task["failure_code"], task["cost_credits"]) == ("FAILED", "SAFETY.INPUT.TEXT", 0)
    poller.poll_once(now=2e9 + 100)
    assert fake_runway.gets(uuid) == 2  # finished tasks are not read again
    poller.stop()


def test_succeeded_outputs_are_archived_with_checksum(store, fake_backend, fake_runway, tmp_path):
    [task_id] = _submit(store, fake_backend, 1)
    uuid = store.task(task_id)["task_uuid"]
    # A real box structure: an ftyp box (brand isom, two compatible brands), then an mdat box.
    video = (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
             + (8 + 5000).to_bytes(4, "big") + b"mdat" + b"\x01" * 5000)
    poller = Poller(store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    poller._http = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, content=video, headers={"content-type": "video/mp4"})))
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["https://cdn.test/out.mp4?_jwt=x"],
                                   cost={"credits": 60})
    poller.poll_once(now=2e9)
    assert poller.archive_once() == 1
    [output] = store.outputs_for([task_id])[task_id]
    assert output["state"] == "archived" and output["mime"] == "video/mp4" and output["size"] == len(video)
    saved = tmp_path / output["path"]
    assert saved.read_bytes() == video and len(saved.stem) >= 20
    assert output["sha256"] == hashlib.sha256(video).hexdigest()
    poller.stop()


def test_failed_download_is_kept_at_risk_and_retried(store, fake_backend, fake_runway, tmp_path):
    [task_id] = _submit(store, fake_backend, 1)
    uuid = store.task(task_id)["task_uuid"]
    answers = [httpx.Response(503), httpx.Response(200, content=b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
                                                   headers={"content-type": "image/png"})]
    poller = Poller(store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    poller._http = httpx.Client(transport=httpx.MockTransport(lambda r: answers.pop(0)))
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["https://cdn.test/out.png"])
    poller.poll_once(now=2e9)
    assert poller.archive_once() == 0
    [output] = store.outputs_for([task_id])[task_id]
    assert output["state"] == "at_risk" and "503" in output["last_error"]
    assert list((tmp_path / "static").iterdir()) == []  # nothing half-written is left to be served
    store.conn.execute("UPDATE outputs SET next_attempt_at = 0")
    assert poller.archive_once() == 1
    assert store.outputs_for([task_id])[task_id][0]["state"] == "archived"
    poller.stop()


def test_html_is_never_archived(store, fake_backend, fake_runway, tmp_path):
    [task_id] = _submit(store, fake_backend, 1)
    uuid = store.task(task_id)["task_uuid"]
    poller = Poller(store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    poller._http = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, content=b"<html><script>alert(1)</script></html>",
                                 headers={"content-type": "text/html"})))
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["https://cdn.test/out.mp4"])
    poller.poll_once(now=2e9)
    poller.archive_once()
    [output] = store.outputs_for([task_id])[task_id]
    assert output["state"] == "at_risk" and output["path"] is None
    assert list((tmp_path / "static").iterdir()) == []
    poller.stop()


def test_expired_link_asks_for_fresh_urls(store, fake_backend, fake_runway, tmp_path):
    [task_id] = _submit(store, fake_backend, 1)
    uuid = store.task(task_id)["task_uuid"]
    poller = Poller(store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    poller._http = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(403) if "old" in str(r.url) else httpx.Response(
            200, content=b"ID3" + b"\0" * 200, headers={"content-type": "audio/mpeg"})))
    fake_runway.tasks[uuid].update(status="SUCCEEDED", output=["https://cdn.test/old.mp3"])
    poller.poll_once(now=2e9)
    poller.archive_once()
    assert store.outputs_for([task_id])[task_id][0]["state"] == "at_risk"
    fake_runway.tasks[uuid]["output"] = ["https://cdn.test/new.mp3"]
    poller.poll_once()  # the finished task is read once more for its fresh link
    store.conn.execute("UPDATE outputs SET next_attempt_at = 0")
    assert poller.archive_once() == 1
    [output] = store.outputs_for([task_id])[task_id]
    assert output["state"] == "archived" and output["url"].endswith("new.mp3")
    poller.stop()


def test_rows_only_poll_their_own_backend(store, fake_backend, fake_runway, tmp_path):
    [task_id] = _submit(store, fake_backend, 1)
    store.conn.execute("UPDATE tasks SET backend = 'simulator', next_poll_at = 0")
    poller = Poller(store.location, [fake_backend], interval=5, static_dir=tmp_path / "static")
    assert poller.poll_once(now=2e9) == 0
    assert fake_runway.gets(store.task(task_id)["task_uuid"]) == 0
    poller.stop()
