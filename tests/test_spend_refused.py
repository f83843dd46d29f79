"""A request Runway refused never became a task there and was charged nothing: Spend does not
count it among the finished tasks, while one whose outcome is unknown (it may have been created)
still counts, as a task with no cost reported."""
from __future__ import annotations

from datetime import date

from lib import spend
from lib.store import Store


def _submission(store: Store, teammate: str) -> int:
    return store.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                   endpoint="/v1/text_to_video", teammate=teammate, estimated_credits=60.0,
                                   body={"model": "gen4.5", "promptText": "a fox", "ratio": "1280:720", "duration": 5})


def test_a_refused_request_is_no_finished_task_of_the_spend(tmp_path):
    store = Store(tmp_path / "dashboard.db")
    today = date.today()
    store.mark_not_created(_submission(store, "Ana"), unknown=False, message="Runway refused the ratio")
    store.mark_not_created(_submission(store, "Leo"), unknown=True, message="The connection dropped")

    totals = spend.totals(store, spend.table(store, today, today), today, today)
    assert (totals.tasks, totals.no_cost_reported, totals.credits) == (1, 1, 0)
    rows = [tuple(r) for r in store.db.conn.execute("SELECT teammate, tasks FROM spend_days WHERE tasks > 0")]
    assert rows == [("Leo", 1)]
    store.close()


def test_spend_s_counter_moves_when_spend_does_not_on_progress_or_reviews(tmp_path):
    store = Store(tmp_path / "dashboard.db")
    conn = store.db.conn
    task = _submission(store, "Ana")
    before, pages_before = store.spend_version(), store.change_version()
    conn.execute("UPDATE tasks SET status = 'RUNNING', progress = 0.4 WHERE id = ?", (task,))
    store.set_rating(task, 4, "Leo")
    assert store.spend_version() == before and store.change_version() > pages_before  # History redraws, Spend not
    conn.execute("UPDATE tasks SET status = 'SUCCEEDED', cost_credits = 60, finished_at = '2026-03-02T10:00:00.000Z'"
                 " WHERE id = ?", (task,))
    assert store.spend_version() > before
    refused = _submission(store, "Ana")
    moved = store.spend_version()
    store.mark_not_created(refused, unknown=False, message="Runway refused the ratio")
    assert store.spend_version() == moved  # nothing was spent
    store.close()
