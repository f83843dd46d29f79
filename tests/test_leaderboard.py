"""The Models leaderboard on planted histories: ranks by the team's pairwise judgements with
confidence, never ranks thin evidence, keeps a removed task's votes, filters judgements by the
teammate who gave them, and reads runs, failures, times and prices per model."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from lib import export, leaderboard, tasks
from lib.leaderboard import MIN_COMPARISONS, Filters, board
from lib.store import REVIEW_ROWS
from lib.store.queries import Filters as HistoryFilters
from tests.support.history import START, insert_output, insert_tasks, iso, task_row


def _duel(store, winner: str, loser: str, times: int, *, reviewer: str = "Maya", by: str = "Ana",
          group: str = "g") -> list[list[int]]:
    """`times` comparison groups of two tasks, one per model, each won by `winner`'s task."""
    rows = [task_row(model=m, teammate=by, group_id=f"{group}-{winner}-{loser}-{i}")
            for i in range(times) for m in (winner, loser)]
    ids = insert_tasks(store, rows)
    pairs = [ids[i:i + 2] for i in range(0, len(ids), 2)]
    for pair in pairs:
        store.set_winner(pair, pair[0], reviewer)
    return pairs


def _row(frame, model: str) -> dict:
    return frame[frame["model"] == model].iloc[0].to_dict()


def test_the_model_that_wins_70_percent_of_its_comparisons_ranks_first(store):
    _duel(store, "gen4.5", "veo3", 21)
    _duel(store, "veo3", "gen4.5", 9)
    _duel(store, "gen4.5", "veo3.1", 21)
    _duel(store, "veo3.1", "gen4.5", 9)
    _duel(store, "veo3", "veo3.1", 10)
    _duel(store, "veo3.1", "veo3", 10)
    frame = board(store)["text_to_video"]
    assert list(frame["model"]) == ["gen4.5", "veo3", "veo3.1"][:1] + sorted(["veo3", "veo3.1"],
                                                                           key=lambda m: -_row(frame, m)["bt_score"])
    best = _row(frame, "gen4.5")
    assert best["standing"] == "#1" and best["win_rate"] == pytest.approx(0.70) and best["comparisons"] == 60
    # Beats both others with confidence: its interval sits above theirs.
    for other in ("veo3", "veo3.1"):
        assert best["bt_low"] > _row(frame, other)["bt_score"] and _row(frame, other)["win_rate"] == pytest.approx(
            (9 + 10) / 50)
    # Bradley–Terry's odds: 70 % wins against equals reads ~log(7/3) above them, shrunk a little by the prior.
    gap = (best["bt_score"] - _row(frame, "veo3")["bt_score"]) / leaderboard.ELO
    assert 0.6 < gap < np.log(7 / 3) + 0.05


def test_two_comparisons_are_not_ranked_above_fifty(store):
    _duel(store, "gen4_turbo", "veo3", 2)  # two wins out of two
    _duel(store, "gen4.5", "veo3", 30)
    _duel(store, "veo3", "gen4.5", 20)
    frame = board(store)["text_to_video"]
    thin, solid = _row(frame, "gen4_turbo"), _row(frame, "gen4.5")
    assert thin["win_rate"] == 1.0 and np.isnan(thin["rank"])
    assert thin["standing"] == f"not ranked (2 comparisons, needs {MIN_COMPARISONS})"
    assert solid["standing"] == "#1" and solid["comparisons"] == 50
    assert list(frame["model"])[-1] == "gen4_turbo"  # listed after every ranked model
    # Finite, with an interval wide enough to say how little two votes tell.
    assert np.isfinite(thin["bt_score"])
    assert thin["bt_high"] - thin["bt_low"] > 1.5 * (solid["bt_high"] - solid["bt_low"])


def test_a_removed_tasks_votes_stay_in_the_figures_but_leave_every_page(store, tmp_path):
    pairs = _duel(store, "gen4.5", "veo3", 12)
    store.set_rating(pairs[0][0], 5, "Maya")
    store.set_rating(pairs[0][1], 2, "Maya")
    before = board(store)["text_to_video"]
    for task_id in pairs[0] + [pairs[1][0]]:
        tasks.remove(store, task_id, static_dir=tmp_path, teammate="Leo")
    after = board(store)["text_to_video"]
    assert after.equals(before)
    assert _row(after, "gen4.5")["comparisons"] == 13 and _row(after, "gen4.5")["rating_count"] == 1
    # Out of view everywhere reviews are read: Compare, History and Task (reviews_for), the CSV.
    gone = pairs[0]
    assert store.reviews_for(gone + [pairs[1][0]]) == {}
    rows = csv.DictReader(io.StringIO(b"".join(export.csv_bytes(store, HistoryFilters())).decode("utf-8-sig")))
    assert [(r["rating_count"], r["winner_votes"]) for r in rows if int(r["id"]) in gone] == [("0", "0")] * 2
    # A Compare tab drawn before the removal cannot change a kept vote.
    store.set_rating(gone[0], 1, "Maya")
    store.set_winner(gone, gone[1], "Maya")
    kept = store.conn.execute(f"SELECT rating, winner FROM {REVIEW_ROWS} WHERE task_id = ? AND reviewer = ?",
                                 (gone[0], "Maya")).fetchone()
    assert tuple(kept) == (5, 1) and board(store)["text_to_video"].equals(before)


def test_the_teammate_filter_takes_each_reviews_own_teammate(store):
    # Ana submitted every task; Maya and Leo judged them differently.
    pairs = _duel(store, "gen4.5", "veo3", 12, reviewer="Maya", by="Ana")
    for pair in pairs:
        store.set_winner(pair, pair[1], "Leo")
    maya = board(store, Filters(teammate="Maya"))["text_to_video"]
    leo = board(store, Filters(teammate="Leo"))["text_to_video"]
    assert _row(maya, "gen4.5")["win_rate"] == 1.0 and _row(leo, "gen4.5")["win_rate"] == 0.0
    assert _row(maya, "gen4.5")["standing"] == "#1" and _row(leo, "veo3")["standing"] == "#1"
    # Task figures follow the task's own teammate: Maya and Leo ran none of them.
    assert _row(maya, "gen4.5")["tasks"] == 0 and _row(leo, "veo3")["tasks"] == 0
    ana = board(store, Filters(teammate="Ana"))["text_to_video"]
    assert _row(ana, "gen4.5")["tasks"] == 12 and _row(ana, "gen4.5")["comparisons"] == 0
    assert _row(board(store)["text_to_video"], "gen4.5")["win_rate"] == 0.5
    assert leaderboard.teammates(store) == ["Ana", "Leo", "Maya"]


def test_a_vote_beats_each_other_finished_task_it_was_compared_with(store):
    # Compared by a list of ids (no group): the vote records the set; a failed task is not beaten.
    won, lost, failed = insert_tasks(store, [task_row(model="gen4.5"), task_row(model="veo3"),
                                             task_row(model="veo3.1", status="FAILED")])
    store.set_winner([won, lost, failed], won, "Maya")
    frame = board(store)["text_to_video"]
    assert (_row(frame, "gen4.5")["votes"], _row(frame, "veo3")["votes"], _row(frame, "veo3.1")["votes"]) == (1, 1, 0)
    # A vote made before the set was recorded counts against the winner's group.
    a, b = insert_tasks(store, [task_row(model="gen4.5", group_id="old"), task_row(model="veo3", group_id="old")])
    store.set_winner([a, b], b, "Leo")
    store.conn.execute(f"UPDATE {REVIEW_ROWS} SET compared = NULL WHERE task_id = ?", (b,))
    assert _row(board(store)["text_to_video"], "veo3")["win_rate"] == 0.5
    # Taking the vote back takes its pairs back.
    store.set_winner([won, lost, failed], None, "Maya")
    assert _row(board(store)["text_to_video"], "gen4.5")["votes"] == 1


def test_ratings_of_one_comparison_by_one_teammate_are_pairs(store):
    a, b, c, other = insert_tasks(store, [task_row(model=m, group_id="g") for m in ("gen4.5", "veo3", "veo3.1")]
                                  + [task_row(model="veo3", group_id="h")])
    for task_id, rating in ((a, 5), (b, 3), (c, 5), (other, 1)):
        store.set_rating(task_id, rating, "Maya")
    store.set_rating(b, 4, "Leo")  # alone: Leo rated nothing else of the group
    frame = board(store)["text_to_video"]
    # gen4.5 beat veo3 and tied veo3.1; veo3.1 beat veo3; the task of another group is no pair.
    assert (_row(frame, "gen4.5")["comparisons"], _row(frame, "veo3")["comparisons"]) == (2, 2)
    assert _row(frame, "gen4.5")["bt_score"] == pytest.approx(_row(frame, "veo3.1")["bt_score"])
    assert _row(frame, "veo3")["bt_score"] < _row(frame, "gen4.5")["bt_score"]
    assert np.isnan(_row(frame, "gen4.5")["win_rate"])  # no winner vote was cast
    assert _row(frame, "veo3")["rating_average"] == pytest.approx((3 + 1 + 4) / 3)
    assert _row(frame, "veo3")["rating_count"] == 3


def test_runs_failures_times_and_prices_per_model(store):
    rows = [task_row(model="gen4.5", cost_credits=50.0, request={"model": "gen4.5", "ratio": "1280:720",
                                                                 "duration": 5, "promptText": "x"},
                     finished_at=iso(START + timedelta(seconds=1 + s)),
                     started_at=iso(START + timedelta(seconds=1 + q)))
            for s, q in ((10, 2), (20, 4), (30, 6), (40, 8), (100, 10))]
    rows += [task_row(model="gen4.5", status="FAILED", failure_code=code) for code in ("SAFETY.INPUT.TEXT",) * 2
             + ("INTERNAL.BAD_OUTPUT.CODE01",)]
    rows += [task_row(model="gen4.5", status="PROCESSING", finished_at=None)]
    rows += [task_row(task_type="text_to_image", model="gen4_image", cost_credits=8.0,
                      request={"model": "gen4_image", "ratio": "1920:1080", "promptText": "x"})]
    ids = insert_tasks(store, rows)
    insert_output(store, ids[-1], position=0)
    insert_output(store, ids[-1], position=1)
    boards = board(store)
    video = _row(boards["text_to_video"], "gen4.5")
    assert video["tasks"] == 9 and video["success_rate"] == pytest.approx(5 / 8)  # of the finished ones
    assert video["failures"] == "SAFETY.INPUT.TEXT ×2, INTERNAL.BAD_OUTPUT.CODE01 ×1"
    # Times to the end are the succeeded tasks'; the queue is every started task's (the failed
    # ones waited 4 s): 2, 4, 4, 4, 4, 4, 6, 8, 10.
    assert (video["median_s"], video["p90_s"], video["queue_median_s"]) == (30.0, 100.0, 4.0)
    assert (video["credits_per_unit"], video["unit"]) == (10.0, "second")
    image = _row(boards["text_to_image"], "gen4_image")
    assert (image["credits_per_unit"], image["unit"]) == (4.0, "image")
    # Filters: ratio and period narrow the tasks counted.
    assert list(board(store, Filters(ratio="1920:1080"))) == ["text_to_image"]
    assert board(store, Filters(since=(START + timedelta(days=1)).date())) == {}
    assert list(board(store, Filters(task_type="text_to_image"))) == ["text_to_image"]


def test_bradley_terry_stays_finite_for_an_unbeaten_model():
    theta, error = leaderboard.bradley_terry(np.array([[0.0, 40.0], [0.0, 0.0]]))
    assert np.all(np.isfinite(theta)) and np.all(np.isfinite(error)) and theta[0] > theta[1]


def test_a_ratio_keeps_the_judgements_and_prices_of_its_own_tasks(store):
    def request(model, ratio, duration=5):
        return {"model": model, "promptText": "x", "ratio": ratio, "duration": duration}
    wide = insert_tasks(store, [task_row(model=m, group_id="wide", request=request(m, "1280:720"))
                                for m in ("gen4.5", "veo3")])
    mixed = insert_tasks(store, [task_row(model="gen4.5", group_id="mixed", request=request("gen4.5", "1280:720")),
                                 task_row(model="veo3", group_id="mixed", request=request("veo3", "720:1280"))])
    for pair in (wide, mixed):
        store.set_winner(pair, pair[0], "Maya")
        store.set_rating(pair[0], 5, "Leo")
        store.set_rating(pair[1], 2, "Leo")
    # A duration that is not a positive number buys no priced seconds.
    insert_tasks(store, [task_row(model="gen4.5", cost_credits=99.0, request=request("gen4.5", "1280:720", "5")),
                         task_row(model="gen4.5", cost_credits=99.0, request=request("gen4.5", "1280:720", 0))])
    everything = board(store)["text_to_video"]
    assert (_row(everything, "gen4.5")["votes"], _row(everything, "gen4.5")["comparisons"]) == (2, 4)
    wide_only = board(store, Filters(ratio="1280:720"))["text_to_video"]
    # Only the pair with both tasks in 1280:720 is judged: one vote and one pair of ratings.
    assert (_row(wide_only, "gen4.5")["votes"], _row(wide_only, "gen4.5")["comparisons"]) == (1, 2)
    assert _row(wide_only, "gen4.5")["win_rate"] == 1.0 and _row(wide_only, "veo3")["tasks"] == 1
    assert _row(wide_only, "gen4.5")["credits_per_unit"] == pytest.approx(60.0 / 5)
    tall = board(store, Filters(ratio="720:1280"))["text_to_video"]
    assert list(tall["model"]) == ["veo3"] and _row(tall, "veo3")["comparisons"] == 0


def test_both_backends_make_the_same_board(tmp_path):
    """One history of comparisons, ratings, failures and prices on SQLite and on PostgreSQL: the
    same leaderboard, filtered or not."""
    from lib.store import Store
    from tests.support import services
    from tests.support.history import comparison_history

    with services.fresh_postgres() as url:
        backends = [Store(tmp_path / "dashboard.db"), Store(url)]
        for store in backends:
            ids = comparison_history(store, 40)
            store.conn.execute("UPDATE tasks SET status = 'FAILED', failure_code = 'SAFETY.INPUT.TEXT' WHERE id = ?",
                               (ids[1],))
            insert_output(store, ids[2])
            tasks.remove(store, ids[3])
        for filters in (Filters(), Filters(teammate="Maya"), Filters(ratio="1280:720", task_type="text_to_video")):
            sqlite, postgres = (board(s, filters) for s in backends)
            assert list(sqlite) == list(postgres) != []
            for task_type, frame in sqlite.items():
                pd.testing.assert_frame_equal(frame, postgres[task_type], check_dtype=False, rtol=1e-9)
        for store in backends:
            store.close()
