"""A task's inputs are named by the fields of its own model, and an input that was an earlier
output says so ("output of #N") on History, the Task page and in the CSV."""
from __future__ import annotations

import csv
import hashlib
import io

from lib import export, history, media
from lib.store import Store
from lib.store.queries import Filters
from tests.support.apptest import open_page
from tests.support.history import insert_task

VIDEO = b"\x00\x00\x00\x18ftypisom-an-earlier-output"
SHA = hashlib.sha256(VIDEO).hexdigest()


def _archived_output(store: Store, task_id: int, sha: str = SHA) -> None:
    store.conn.execute("INSERT INTO outputs (task_id, position, url, state, path, mime, size, sha256) "
                          "VALUES (?, 0, ?, 'archived', ?, 'video/mp4', 1, ?)",
                          (task_id, f"https://cdn.test/{task_id}.mp4", f"static/{task_id}.mp4", sha))


def _lineage(store: Store) -> tuple[int, int, int]:
    """A video made by #first, upscaled by #upscaled (stashed input) and lip-synced by #synced (inline)."""
    first = insert_task(store, prompt="a lighthouse")
    _archived_output(store, first)
    upscaled = insert_task(store, task_type="video_upscale", model="upscale_v1", parent_task_id=first,
                           request={"model": "upscale_v1", "videoUri": f"stored:video/mp4:{SHA}.mp4"})
    synced = insert_task(store, task_type="lip_sync", model="gen4", parent_task_id=first,
                         request={"model": "gen4", "input": media.encode_data_uri("video/mp4", VIDEO),
                                  "audio": "stored:audio/mpeg:" + "ab" * 32 + ".mp3"})
    return first, upscaled, synced


def test_inputs_are_labelled_by_the_tasks_own_model(store):
    first, upscaled, synced = _lineage(store)
    # `videoUri` is "Video to score (optional)" on sound effects; on an upscale it is the input video.
    assert history.input_summary(store.task(upscaled)) == [f"input video: output of #{first}"]
    # `audio` is a file on lip sync, a yes/no elsewhere: here both inputs are files, with their own labels.
    assert history.input_summary(store.task(synced)) == [f"face (image or video): output of #{first}",
                                                         "speech audio: uploaded file"]
    veo = insert_task(store, model="veo3.1", request={"model": "veo3.1", "promptText": "x", "audio": True})
    assert history.input_summary(store.task(veo)) == ["generate audio"]


def test_an_output_sent_on_is_named_in_the_csv(store):
    first, upscaled, synced = _lineage(store)
    upload = insert_task(store, task_type="video_upscale", model="upscale_v1",
                         request={"model": "upscale_v1", "videoUri": "stored:video/mp4:" + "cd" * 32 + ".mp4"})
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(
        b"".join(export.csv_bytes(store, Filters())).decode("utf-8-sig")))}
    assert rows[upscaled]["input_sources"] == f"videoUri=output of #{first}"
    assert rows[synced]["input_sources"] == f"input=output of #{first} audio=uploaded file"
    assert rows[upload]["input_sources"] == "videoUri=uploaded file"  # no output holds it: a file someone uploaded


def test_history_and_the_task_page_say_output_of(store, app_env):  # the page opens `store`
    first, upscaled, _ = _lineage(store)
    at = open_page("pages/10_History.py")
    assert not at.exception
    captions = " ".join(c.value for c in at.caption).replace("\\", "")
    assert f"input video: output of #{first}" in captions and "video to score" not in captions
    task_page = open_page("pages/12_Task.py", task=str(upscaled))
    assert not task_page.exception
    assert f"output of #{first}" in " ".join(m.value for m in task_page.markdown).replace("\\", "")
    store.close()
