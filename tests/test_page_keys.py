"""A widget's key belongs to one page. The session keeps widget state across page links, so two
pages drawing different widgets under one key hand each other values the other cannot take:
Models' single "Task type" left None where History's multiselect wanted a list, and History
failed to draw after a visit to Models."""
import re
from collections import defaultdict
from pathlib import Path

from playwright.sync_api import expect

from lib.store import Store
from tests.support.history import insert_task

ROOT = Path(__file__).resolve().parent.parent
KEY = re.compile(r"""\bkey=["']([^"'{}]+)["']""")


def test_no_two_pages_draw_a_widget_under_one_key():
    pages = defaultdict(set)
    for script in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        for key in KEY.findall(script.read_text()):
            pages[key].add(script.name)
    assert {key: sorted(names) for key, names in pages.items() if len(names) > 1} == {}


def test_moving_between_the_review_pages_keeps_every_page_drawable(dashboard, page, tmp_path):
    store = Store(tmp_path / "dashboard.db")  # the dashboard's own: with a task, every page draws its filters
    insert_task(store, prompt="A lighthouse at dawn", teammate="Maya")
    store.close()
    page.goto(dashboard)
    page.get_by_role("textbox", name="Your name").wait_for(timeout=60_000)
    for name in ("Spend", "Models", "History", "Models", "Spend", "Compare", "History"):
        page.get_by_test_id("stSidebar").get_by_role("link", name=name, exact=True).click()
        expect(page).to_have_title(re.compile(f"{name} · "), timeout=30_000)
        page.wait_for_timeout(1500)
        assert page.get_by_test_id("stException").count() == 0, f"{name} failed to draw"
        expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
