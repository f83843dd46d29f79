"""The Models page: in AppTest, a table per task type with the leaderboard's figures, filters that
narrow them (the teammate's own reviews), and an empty state; in a real Chromium, the quality
against cost chart is drawn."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.store import Store
from tests.support.apptest import open_page
from tests.support.history import comparison_history, insert_task
from tests.test_browser import _screenshot

PAGE = "pages/22_Models.py"


def _planted(db: Path | Store, groups: int = 30) -> None:
    """Comparisons into the store (or the SQLite file) the page will open."""
    store = db if isinstance(db, Store) else Store(db)
    try:
        comparison_history(store, groups)
        insert_task(store, task_type="text_to_image", model="gen4_image", cost_credits=8.0,
                    request={"model": "gen4_image", "ratio": "1920:1080", "promptText": "a kite"})
    finally:
        if store is not db:
            store.close()


def _run(**query) -> AppTest:
    return open_page(PAGE, **query)


def _table(at: AppTest, n: int = 0):
    return at.dataframe[n].value


def test_the_page_shows_a_ranked_table_and_a_chart_per_task_type(store, app_env):
    _planted(store)  # the page opens the same database: the SQLite file, or PostgreSQL
    at = _run()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["Text to Video", "Text to Image"]
    video = _table(at)
    assert list(video["model"]) == ["gen4.5", "veo3.1", "gen4_turbo"]
    assert list(video["standing"]) == ["#1", "#2", "#3"] and list(video["tasks"]) == [30, 30, 30]
    assert len(at.get("vega_lite_chart")) == 1  # the image model has no score, so no chart
    image = _table(at, 1)
    assert list(image["standing"]) == ["not ranked (0 comparisons, needs 10)"]
    assert "no chart" in " ".join(c.value for c in at.caption)


def test_filters_narrow_the_figures_to_a_teammates_own_reviews(store, app_env):
    _planted(store)
    everyone, maya = _table(_run()), _table(_run(board_by="Maya"))
    # Maya judged half the groups (and submitted those tasks): half the comparisons and ratings.
    assert maya["rating_count"].sum() * 2 == everyone["rating_count"].sum()
    assert maya["comparisons"].sum() < everyone["comparisons"].sum() and list(maya["tasks"]) == [15, 15, 15]
    at = _run(board_type="Text to Image")
    assert [h.value for h in at.subheader] == ["Text to Image"]
    at = _run(board_ratio="720:1280")
    assert not at.dataframe and "No task or comparison matches" in at.info[0].value


@pytest.mark.browser
def test_the_chart_of_quality_against_cost_is_drawn_in_a_browser(dashboard, page, tmp_path):
    _planted(tmp_path / "dashboard.db", groups=20)
    page.goto(f"{dashboard}/Models")
    chart = page.get_by_test_id("stVegaLiteChart").first
    chart.locator("canvas, svg").first.wait_for(timeout=30_000)
    box = chart.locator("canvas, svg").first.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 200  # drawn, not an empty frame
    assert page.get_by_text("Text to Video", exact=True).count() and page.get_by_text("Text to Image", exact=True)
    _screenshot(page, "models_page")
