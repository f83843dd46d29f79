"""What was spent stays on record: a removed task is hidden, not erased, so the CSV of all
rows adds up to what the account was charged; a failed or cancelled task says what it was
actually charged, never its estimate as if spent."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from lib import archive, export, lifecycle, tasks, ui
from lib.store import Store, queries
from lib.store.queries import Filters
from tests.support.apptest import open_page
from tests.support.history import insert_output, insert_task


def _csv(store: Store, filters: Filters) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(export.csv_bytes(store, filters)).decode("utf-8-sig"))))


def test_a_removed_task_is_hidden_but_its_credits_stay_in_the_csv_of_all_rows(store, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    kept = insert_task(store, prompt="a fox", cost_credits=60.0)
    gone = insert_task(store, prompt="a kite", cost_credits=40.0, group_id="g")
    cancelled = insert_task(store, prompt="a tram", status=lifecycle.CANCELLED, cost_credits=0.0)
    (static / "kite.mp4").write_bytes(b"video")
    (static / Path(archive.poster_path("static/kite.mp4")).name).write_bytes(b"jpeg")
    insert_output(store, gone, path="static/kite.mp4")
    store.set_rating(gone, 5, "Maya")

    assert tasks.remove(store, gone, static_dir=static, teammate="Leo") == 1
    assert list(static.iterdir()) == []  # the video and its poster went
    # Out of view: History, its count, Compare's groups and the Home page's recent tasks.
    assert [t["id"] for t in queries.page(store, Filters())] == [cancelled, kept]
    assert queries.count(store, Filters()) == 2 and queries.recent_groups(store) == []
    assert [t["id"] for t in store.recent_tasks()] == [cancelled, kept] and store.count_tasks() == 2
    # In the record: the CSV of all rows lists it, marked removed, and the credits add up.
    rows = _csv(store, Filters())
    assert [int(r["id"]) for r in rows] == [kept, gone, cancelled]
    assert sum(float(r["cost_credits"]) for r in rows) == 100.0
    [removed] = [r for r in rows if int(r["id"]) == gone]
    assert removed["removed_at"] and removed["rating_count"] == "0" and removed["archived_urls"] == ""
    assert store.events_for(gone)[-1]["note"] == "removed from the history by Leo"
    # A filtered export writes what History shows, which a removed task is not part of.
    assert [int(r["id"]) for r in _csv(store, Filters(statuses=("SUCCEEDED",)))] == [kept]
    assert tasks.remove(store, gone, static_dir=static) == 0  # removing twice changes nothing


def test_credits_say_what_was_charged():
    task = {"status": lifecycle.PROCESSING, "estimated_credits": 60.0, "cost_credits": None}
    assert ui.credits_text(task) == "60 credits (est.)"  # may still be charged
    assert ui.credits_text({**task, "status": lifecycle.SUCCEEDED, "cost_credits": 60.0}) == "60 credits charged"
    for status in (lifecycle.FAILED, lifecycle.CANCELLED):
        assert ui.credits_text({**task, "status": status}) == "0 credits charged"
        assert ui.credits_text({**task, "status": status, "cost_credits": 12.0}) == "12 credits charged"


def test_history_shows_a_cancelled_tasks_charge_not_its_estimate(store, app_env):  # the page opens `store`
    insert_task(store, prompt="stopped early", status=lifecycle.CANCELLED, cost_credits=None, estimated_credits=60.0)
    at = open_page("pages/10_History.py")
    assert not at.exception
    shown = " ".join(c.value for c in at.caption)
    assert "0 credits charged" in shown and "60 credits" not in shown
    store.close()


def test_a_removed_tasks_own_link_says_it_was_removed_and_shows_nothing_else(store, app_env):
    gone = insert_task(store, prompt="a kite", cost_credits=40.0)
    tasks.remove(store, gone, static_dir=app_env / "static", teammate="Leo")
    at = open_page("pages/12_Task.py", task=str(gone))
    assert not at.exception
    assert [i.value for i in at.main.info] == [
        f"Task #{gone} was removed from the history on {store.task(gone)['removed_at'][:10]}. What it was charged "
        "stays in the record."]
    assert "a kite" not in " ".join(t.value for t in at.text)
