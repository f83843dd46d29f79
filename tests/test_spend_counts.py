"""What Spend counts: a request Runway refused never became a task there and was charged nothing
(one whose outcome is unknown may have been, so it counts); spend and budgets are of one backend;
Spend's counter moves when spend does, not on progress or reviews."""
from __future__ import annotations

from datetime import date, datetime, timezone

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
    rows = [tuple(r) for r in store.conn.execute("SELECT teammate, tasks FROM spend_days WHERE tasks > 0")]
    assert rows == [("Leo", 1)]
    store.close()


def test_spend_s_counter_moves_when_spend_does_not_on_progress_or_reviews(tmp_path):
    store = Store(tmp_path / "dashboard.db")
    conn = store.conn
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


def test_spend_and_budgets_are_of_one_backend_the_simulator_s_credits_are_not_the_account_s(tmp_path):
    store = Store(tmp_path / "dashboard.db")
    live = "https://api.example.test"
    for backend, cost in ((live, 100.0), ("simulator", 400.0)):
        task = store.record_submission(backend=backend, task_type="text_to_video", model="gen4.5",
                                       endpoint="/v1/text_to_video", teammate="Ana", estimated_credits=cost,
                                       body={"model": "gen4.5", "promptText": "a fox"})
        store.conn.execute("UPDATE tasks SET submit_state = 'submitted', status = 'SUCCEEDED', cost_credits = ?, "
                              "finished_at = ? WHERE id = ?", (cost, datetime.now(timezone.utc).isoformat(), task))
    store.set_budget("Ana", 300.0)
    today = date.today()
    assert spend.month_spend(store, "Ana", backend=live) == 100
    assert spend.budget_overrun(store, "Ana", 150, backend=live) is None
    assert spend.budget_overrun(store, "Ana", 150) is not None  # every backend together: 500 + 150
    assert spend.totals(store, spend.table(store, today, today, backend=live), today, today, live).credits == 100
    assert spend.balance_history(1000.0, store, today, today, backend=live).values.tolist() == [
        [today.isoformat(), 1000.0]]
    assert spend.credits_since(store, today, backend="simulator").tolist() == [400.0]
    rows = b"".join(spend.csv_bytes(store, today, today, backend=live)).decode("utf-8-sig").splitlines()
    assert [row.split(",")[5] for row in rows] == ["credits", "100.0"]  # the live task only
    store.close()
