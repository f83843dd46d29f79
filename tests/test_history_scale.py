"""History at scale, on both databases: the counts kept in `task_days` (schema.m016) equal what
the tasks hold through every kind of change; a page past the middle read from the far end, Best
rated without an average per task, and a prompt search that stops counting at COUNT_CAP and
walks the newest tasks first: each gives the same tasks as the plain query. How fast, at a million
tasks, is measured in benchmarks/bench_history.py, not asserted."""
from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from lib.store import queries
from lib.store.queries import Filters
from tests.support.apptest import open_page
from tests.support.history import START, insert_tasks, task_row

MODELS = [("text_to_video", "gen4.5"), ("text_to_video", "veo3.1"), ("text_to_image", "gen4_image")]
PEOPLE = ["Ana", "Bo", None, ""]
STATUSES = ["SUCCEEDED", "SUCCEEDED", "FAILED", "CANCELLED", "PENDING", "PROCESSING"]


def _rows(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        task_type, model = rnd.choice(MODELS)
        rows.append(task_row(task_type=task_type, model=model, status=rnd.choice(STATUSES),
                             teammate=rnd.choice(PEOPLE), prompt=f"a {rnd.choice(['kite', 'fox', 'boat'])} {i}",
                             created=START + timedelta(hours=7 * i), cost_credits=float(rnd.randint(1, 9))))
    return rows


def _counted_directly(store, filters: Filters) -> int:
    where, params = filters.where(dialect=store.dialect)
    return store.conn.execute(f"SELECT COUNT(*) FROM tasks t WHERE {where}", params).fetchone()[0]


FILTERS = [Filters(), Filters(statuses=("SUCCEEDED",)), Filters(statuses=("FAILED", "PENDING"), models=("veo3.1",)),
           Filters(task_types=("text_to_image",), teammates=("Ana", "Bo")),
           Filters(created_from=date(2026, 1, 3), created_to=date(2026, 1, 9)),
           Filters(created_to=date(2026, 1, 5), statuses=("CANCELLED",))]


def test_task_days_counts_what_the_tasks_hold_through_every_change(store):
    ids = insert_tasks(store, _rows(120, seed=4))
    rnd = random.Random(5)
    with store.immediate() as conn:
        for task_id in rnd.sample(ids, 30):  # polls finish tasks, edits move them between keys
            conn.execute("UPDATE tasks SET status = ?, teammate = ?, model = ? WHERE id = ?",
                         (rnd.choice(STATUSES), rnd.choice(PEOPLE), rnd.choice(["gen4.5", "veo3.1"]), task_id))
        conn.execute("UPDATE tasks SET created_at = ? WHERE id = ?", ("2026-01-04T23:59:59.000Z", ids[0]))
        conn.execute("UPDATE tasks SET progress = 0.5 WHERE id = ?", (ids[1],))  # no counted column: no change
    for task_id in ids[10:20]:
        store.remove_task(task_id)
    with store.immediate() as conn:
        conn.execute("UPDATE tasks SET removed_at = NULL WHERE id = ?", (ids[10],))  # back in view
        conn.execute("DELETE FROM events WHERE task_id = ?", (ids[2],))
        conn.execute("DELETE FROM tasks WHERE id = ?", (ids[2],))
    for filters in FILTERS:
        assert filters.counted
        assert queries.count(store, filters) == _counted_directly(store, filters), filters
    assert queries.count(store, Filters()) == 120 - 9 - 1
    # The table itself, key by key, against a GROUP BY of the tasks in view.
    kept = {tuple(r[:5]): r[5] for r in store.conn.execute(
        "SELECT status, task_type, model, teammate, day, tasks FROM task_days WHERE tasks <> 0")}
    grouped = {tuple(r[:5]): r[5] for r in store.conn.execute(
        "SELECT status, task_type, model, COALESCE(teammate, ''), substr(created_at, 1, 10), COUNT(*) FROM tasks "
        "WHERE removed_at IS NULL GROUP BY 1, 2, 3, 4, 5")}
    assert kept == grouped


def test_filters_task_days_cannot_answer_are_counted_from_the_tasks(store):
    insert_tasks(store, _rows(60, seed=6))
    for filters in (Filters(teammates=("",)), Filters(group_id="g1"), Filters(task_ids=(3, 4, 99)),
                    Filters(prompt="kite"), Filters(removed=True)):
        assert not filters.counted
        assert queries.count(store, filters) == _counted_directly(store, filters)
    assert queries.count(store, Filters(teammates=("",))) == sum(1 for r in _rows(60, seed=6) if r["teammate"] == "")


@pytest.mark.parametrize("sort", ["newest", "oldest", "cost", "model"])
def test_a_page_past_the_middle_read_from_the_far_end_is_the_same_page(store, sort):
    insert_tasks(store, _rows(97, seed=8))
    filters = Filters(statuses=("SUCCEEDED", "FAILED"))
    total = queries.count(store, filters)
    for number in range(1, -(-total // 10) + 2):
        plain = [t["id"] for t in queries.page(store, filters, sort, number, 10)]
        assert [t["id"] for t in queries.page(store, filters, sort, number, 10, total=total)] == plain, number


def test_best_rated_is_the_teams_average_then_every_other_task_newest_first(store):
    ids = insert_tasks(store, _rows(40, seed=9))
    votes = {ids[3]: [5, 3], ids[7]: [4], ids[8]: [4], ids[20]: [2, 2, 5], ids[30]: [1]}
    for task_id, ratings in votes.items():
        for n, rating in enumerate(ratings):
            store.set_rating(task_id, rating, f"mate{n}")
    store.set_rating(ids[9], 5, "mate0")
    store.set_rating(ids[9], None, "mate0")  # a rating taken back: unrated again
    store.set_rating(ids[20], 2, "mate2")  # a vote changed: 2, 2, 2
    votes[ids[20]] = [2, 2, 2]
    store.set_winner([ids[5], ids[6]], ids[5], "mate0")  # a winner vote, no rating: unrated
    store.remove_task(ids[30])  # a removed task's votes leave the order with it
    averages = {i: sum(r) / len(r) for i, r in votes.items() if i != ids[30]}
    in_view = [i for i in ids if i != ids[30]]
    expected = sorted(averages, key=lambda i: (-averages[i], -i)) + sorted(
        (i for i in in_view if i not in averages), reverse=True)
    walked = [t["id"] for n in range(1, 6) for t in queries.page(store, Filters(), "rating", n, 3)]
    assert walked == expected[:15]
    assert [t["id"] for t in queries.page(store, Filters(), "rating", 1, 100)] == expected
    assert queries.page(store, Filters(), "rating", 50, 3) == []
    # task_ratings, row by row, against the averages of the reviews themselves.
    kept = {r[0]: (r[1], r[2], r[3]) for r in store.conn.execute(
        "SELECT task_id, rating_sum, votes, average FROM task_ratings")}
    assert kept == {r[0]: (r[1], r[2], r[1] / r[2]) for r in store.conn.execute(
        "SELECT task_id, SUM(rating), COUNT(rating) FROM review_rows WHERE rating IS NOT NULL GROUP BY task_id")}


def test_a_prompt_search_stops_counting_at_the_cap_and_pages_the_same(store, monkeypatch):
    rows = _rows(80, seed=10)
    insert_tasks(store, rows)
    kites = sum(1 for r in rows if '"a kite ' in r["request_json"])
    assert 20 < kites < 60
    assert queries.total(store, Filters(prompt="kite")) == (kites, False)
    monkeypatch.setattr(queries, "COUNT_CAP", 12)
    assert queries.total(store, Filters(prompt="kite")) == (12, True)
    assert queries.total(store, Filters(prompt="kite", statuses=("FAILED",))) == (
        _counted_directly(store, Filters(prompt="kite", statuses=("FAILED",))), False)
    assert queries.total(store, Filters(prompt="nothing-like-it")) == (0, False)
    expected = {sort: [t["id"] for n in range(1, 9) for t in queries.page(store, Filters(prompt="kite"), sort, n, 5)]
                for sort in ("newest", "oldest", "cost", "model")}
    assert len(expected["newest"]) == kites
    # The walk over the newest tasks holds the first pages; past it, the search index serves the rest.
    monkeypatch.setattr(queries, "WALK", 15)
    for sort, ids in expected.items():
        assert [t["id"] for n in range(1, 9) for t in queries.page(store, Filters(prompt="kite"), sort, n, 5)] == ids


def test_history_says_more_than_when_a_search_stops_counting(app_env, monkeypatch):
    from lib.store import Store

    insert_tasks(Store(app_env / "dashboard.db"), _rows(60, seed=11))
    monkeypatch.setattr(queries, "COUNT_CAP", 10)
    at = open_page("pages/10_History.py", q="kite")
    captions = " ".join(c.value for c in at.caption)
    assert "More than 10 tasks match: the first 1 pages are shown" in captions, captions
    at = open_page("pages/10_History.py", q="fox", status="FAILED")
    assert "task(s) match the filters" in " ".join(c.value for c in at.caption)


def test_a_rare_word_counted_in_full_is_found_through_the_index_not_by_walking_every_task(tmp_path):
    """SQLite's virtual machine steps, counted: a page of a word in 3 of 3,000 tasks reads those
    3, where walking the history newest first would read all 3,000."""
    from lib.store import Store

    store = Store(tmp_path / "dashboard.db")
    rows = _rows(3000, seed=12)
    for i in (5, 6, 7):  # the oldest: a walk from the newest end meets them last
        rows[i] = {**rows[i], "request_json": rows[i]["request_json"].replace('"a ', '"a zebra ')}
    insert_tasks(store, rows)
    filters = Filters(prompt="zebra")
    total, more = queries.total(store, filters)
    assert (total, more) == (3, False)
    steps = []
    store.conn.set_progress_handler(lambda: steps.append(1), 100)
    found = [t["id"] for t in queries.page(store, filters, "newest", 1, total=total)]
    store.conn.set_progress_handler(None, 0)
    assert found == [8, 7, 6]
    assert len(steps) < 300, len(steps)  # walking 3,000 tasks, each prompt read, takes several times that
    store.close()
