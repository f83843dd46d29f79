"""Each teammate's rating, note and winner vote is their own: one teammate's click never
replaces another's; pages show the average and who voted what; reviews made before
this kept every value. The last test is two teammates in two Chromium sessions."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from lib.store import Store, migrations
from tests.support.history import insert_output, insert_task

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def test_one_teammates_review_never_replaces_anothers(store):
    ids = [insert_task(store, prompt=p, group_id="g") for p in ("a fox", "a kite")]
    store.set_rating(ids[0], 4, "Maya")
    store.set_notes(ids[0], "warm light", "Maya")
    store.set_winner(ids, ids[0], "Maya")
    store.set_rating(ids[0], 1, "Leo")  # Leo's one star is his own
    store.set_winner(ids, ids[1], "Leo")

    review = store.reviews_for(ids)[ids[0]]
    assert [(v["reviewer"], v["rating"], v["notes"], v["winner"]) for v in review["votes"]] == [
        ("Leo", 1, None, 0), ("Maya", 4, "warm light", 1)]
    assert (review["average"], review["count"], review["rating"], review["winner"]) == (2.5, 2, 3, 1)
    assert review["notes"] == "Maya: warm light"  # credited to who wrote it
    assert review["reviewer"] == "Leo: ★; Maya: ★★★★ · winner"
    assert store.reviews_for(ids)[ids[1]]["reviewer"] == "Leo: winner"

    store.set_winner(ids, None, "Maya")  # Maya takes her vote back; Leo's stays
    store.set_rating(ids[0], None, "Leo")
    first, second = store.reviews_for(ids)[ids[0]], store.reviews_for(ids)[ids[1]]
    assert (first["winner"], second["winner"], first["average"], first["count"]) == (0, 1, 4.0, 1)


def test_a_stale_page_cannot_review_a_task_a_teammate_removed(store, tmp_path):
    from lib import tasks

    task = insert_task(store, prompt="a kite")
    store.set_rating(task, 4, "Maya")
    tasks.remove(store, task, static_dir=tmp_path, teammate="Leo")
    # Maya's Compare tab, drawn before Leo's removal, still sends her clicks.
    store.set_rating(task, 5, "Maya")
    store.set_notes(task, "still here?", "Maya")
    store.set_winner([task], task, "Maya")
    assert store.conn.execute("SELECT COUNT(*) FROM reviews WHERE task_id = ?", (task,)).fetchone()[0] == 0


def test_reviews_from_before_keep_every_value_under_the_name_they_were_saved_with(tmp_path):
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m010_reviews_per_teammate")  # one shared review row per task
    old = Store.__new__(Store)
    old.db, old.conn = db, db.conn
    rated, noted, nameless = (insert_task(old, prompt=p) for p in ("a fox", "a kite", "a tram"))
    db.conn.executemany("INSERT INTO reviews (task_id, rating, notes, winner, reviewer, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [(rated, 4, "sharp", 1, "Maya", "2026-01-01T00:00:00.000Z"),
                         (noted, None, "too dark", 0, "Leo", "2026-01-02T00:00:00.000Z"),
                         (nameless, 2, None, 0, None, "2026-01-03T00:00:00.000Z")])
    db.conn.commit()
    db.conn.close()

    store = Store(path)  # the migration runs here
    try:
        reviews = store.reviews_for([rated, noted, nameless])
        assert [(v["reviewer"], v["rating"], v["notes"], v["winner"], v["updated_at"])
                for r in (rated, noted, nameless) for v in reviews[r]["votes"]] == [
            ("Maya", 4, "sharp", 1, "2026-01-01T00:00:00.000Z"),
            ("Leo", None, "too dark", 0, "2026-01-02T00:00:00.000Z"),
            ("", 2, None, 0, "2026-01-03T00:00:00.000Z")]
        before = store.change_version()
        store.set_rating(rated, 5, "Leo")  # a new teammate's vote sits beside the migrated one
        assert store.change_version() > before  # pages still see review changes
        assert [v["rating"] for v in store.reviews_for([rated])[rated]["votes"]] == [5, 4]
    finally:
        store.close()


def _rate(page, column: int, stars: int) -> None:
    feedback = page.locator("[data-testid='stFeedback']").nth(column)
    feedback.wait_for(timeout=30_000)
    feedback.get_by_role("radio", name=f"{stars} out of 5 stars").click()


def test_two_teammates_rate_one_task_each_keeps_their_own_and_sees_the_average(dashboard, page, tmp_path):
    store = Store(tmp_path / "dashboard.db")  # the database the dashboard under test uses
    ids = [insert_task(store, model=m, group_id="g-team", prompt="A lighthouse at dawn", teammate="Maya")
           for m in ("gen4.5", "veo3.1")]
    for task_id in ids:
        insert_output(store, task_id, path=f"static/team-{task_id}.mp4")
    maya = page
    leo = page.context.browser.new_context(viewport={"width": 1440, "height": 900}).new_page()

    maya.goto(f"{dashboard}/Compare?group=g-team&teammate=Maya")
    _rate(maya, 1, 4)
    maya.get_by_text("4.0 ★").wait_for(timeout=20_000)
    leo.goto(f"{dashboard}/Compare?group=g-team&teammate=Leo")
    leo.get_by_text("Maya: ★★★★").wait_for(timeout=30_000)  # Maya's vote, named, before Leo votes
    _rate(leo, 1, 1)
    leo.get_by_text("2.5 ★").wait_for(timeout=20_000)
    leo.get_by_text("Leo: ★; Maya: ★★★★").wait_for(timeout=20_000)

    maya.reload()  # Maya's own four stars stayed hers; she now sees Leo's vote too
    maya.get_by_text("Leo: ★; Maya: ★★★★").wait_for(timeout=30_000)
    assert "from 2 ratings" in maya.locator("[data-testid='stMain']").inner_text()
    assert store.reviews_for(ids)[ids[1]]["average"] == 2.5
    mine = {v["reviewer"]: v["rating"] for v in store.reviews_for(ids)[ids[1]]["votes"]}
    assert mine == {"Maya": 4, "Leo": 1}
    ARTIFACTS.mkdir(exist_ok=True)
    maya.get_by_text("Leo: ★; Maya: ★★★★").scroll_into_view_if_needed()
    maya.screenshot(path=str(ARTIFACTS / "compare_team_reviews.png"))
    store.close()
