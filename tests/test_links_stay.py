"""In a real Chromium against a real `streamlit run`: every link inside the pages to another
dashboard page (a task's number on History's cards, in the gallery and on Compare's columns, a
card's group and parent, "Compare N →") opens in the same tab and the same session, so the name
stays; Compare lists groups by what they are while its address keeps the group's id; and the
count of finished tasks in the tab's title survives a reload."""
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

from playwright.sync_api import expect

from lib.store import Store, utcnow
from tests.support.history import insert_task


def _seed(tmp_path) -> dict[str, int]:
    """Two comparison groups (a fox by Maya, an owl by Leo) and a task made from the first fox."""
    store = Store(tmp_path / "dashboard.db")
    try:
        recent = datetime.now(timezone.utc) - timedelta(hours=1)
        fox = insert_task(store, prompt="A red fox in the snow", group_id="g-fox", teammate="Maya", created=recent)
        fox2 = insert_task(store, model="veo3.1", prompt="A red fox in the snow", group_id="g-fox", teammate="Maya",
                           created=recent)
        child = insert_task(store, prompt="The fox runs", parent_task_id=fox, created=recent)
        owl = insert_task(store, prompt="An owl at night", group_id="g-owl", teammate="Leo", created=recent)
    finally:
        store.close()
    return {"fox": fox, "fox2": fox2, "child": child, "owl": owl}


def _at(path: str, **query: str):
    """Whether a page address is `path` with (at least) `query` in it."""
    def check(url: str) -> bool:
        parts = urlsplit(url)
        return parts.path == path and query.items() <= dict(parse_qsl(parts.query)).items()
    return check


def _stays(page, path: str, name: str = "Maya", **query: str) -> None:
    """The link led to `path` with `query` in this very tab, and the session kept the name."""
    page.wait_for_url(_at(path, **query), timeout=20_000)
    expect(page.get_by_role("textbox", name="Your name")).to_have_value(name, timeout=20_000)
    assert len(page.context.pages) == 1, [p.url for p in page.context.pages]


def _to_history(page, view: str = "List") -> None:
    page.get_by_test_id("stSidebar").get_by_role("link", name="History", exact=True).click()
    page.get_by_role("heading", name="History").wait_for(timeout=20_000)
    if view != "List":
        page.get_by_test_id("stMain").get_by_text(view, exact=True).click()
    page.get_by_text("The fox runs").first.wait_for(timeout=20_000)


def test_links_to_dashboard_pages_stay_in_the_tab_and_keep_the_name(dashboard, page, tmp_path):
    ids = _seed(tmp_path)
    main = page.get_by_test_id("stMain")
    page.goto(f"{dashboard}/History")
    page.get_by_role("textbox", name="Your name").fill("Maya")
    page.get_by_role("textbox", name="Your name").press("Enter")
    page.wait_for_url("**teammate=Maya**", timeout=20_000)
    page.get_by_text("The fox runs").first.wait_for(timeout=20_000)

    # A card's task number, then its parent.
    main.get_by_role("link", name=f"#{ids['child']} · Text to video · gen4.5", exact=True).click()
    _stays(page, "/Task", task=str(ids['child']))
    _to_history(page)
    main.get_by_role("link", name=f"From #{ids['fox']}").click()
    _stays(page, "/Task", task=str(ids['fox']))

    # A card's group opens Compare, whose column numbers open the task.
    _to_history(page)
    main.get_by_role("link", name="Compare group g-fox").first.click()
    _stays(page, "/Compare", group="g-fox")
    main.get_by_role("link", name=f"#{ids['fox2']} · Text to video · veo3.1", exact=True).click()
    _stays(page, "/Task", task=str(ids['fox2']))

    # Two picks, then "Compare 2 →".
    _to_history(page)
    main.locator(f".st-key-pick_{ids['owl']}").get_by_text("Compare").click()
    main.get_by_text(f"Picked for comparison: #{ids['owl']}").wait_for(timeout=10_000)
    main.locator(f".st-key-pick_{ids['fox']}").get_by_text("Compare").click()
    main.get_by_role("link", name="Compare 2 →").click()
    _stays(page, "/Compare", tasks=f"{ids['owl']},{ids['fox']}")

    # The gallery's cells.
    _to_history(page, "Gallery")
    main.get_by_role("link", name=f"#{ids['owl']} · gen4.5", exact=True).click()
    _stays(page, "/Task", task=str(ids['owl']))


def test_compare_lists_groups_by_name_while_the_address_keeps_the_id(dashboard, page, tmp_path):
    _seed(tmp_path)
    page.goto(f"{dashboard}/Compare?group=g-fox")
    picker = page.get_by_role("combobox", name="Group")
    expect(picker).to_have_value("“A red fox in the snow” · 2 tasks · gen4.5, veo3.1 · by Maya · 1 h ago",
                                 timeout=20_000)
    page.get_by_test_id("stMain").get_by_text("A red fox in the snow", exact=True).wait_for()

    picker.click()
    options = page.get_by_role("option")
    assert sorted(o.split(" · ")[0] for o in options.all_inner_texts()) == ["“A red fox in the snow”",
                                                                          "“An owl at night”"]
    options.filter(has_text="An owl at night").click()
    page.wait_for_url(_at("/Compare", group="g-owl"), timeout=20_000)  # the id, never the label
    expect(picker).to_have_value("“An owl at night” · 1 tasks · gen4.5 · by Leo · 1 h ago")
    page.get_by_test_id("stMain").get_by_text("An owl at night", exact=True).wait_for()  # its prompt

    page.reload()  # the address alone brings the group back
    expect(page.get_by_role("combobox", name="Group")).to_have_value(
        "“An owl at night” · 1 tasks · gen4.5 · by Leo · 1 h ago", timeout=20_000)
    assert "group=g-owl" in page.url and "%E2%80%9C" not in page.url


def test_the_count_of_finished_tasks_in_the_tab_title_survives_a_reload(dashboard, page, tmp_path):
    page.goto(f"{dashboard}/Compare?teammate=Maya")
    page.get_by_role("textbox", name="Your name").wait_for(timeout=20_000)
    page.wait_for_function("document.cookie.includes('dashboard_news_since=')", timeout=10_000)
    assert page.title() == "Compare · Runway dashboard"

    # One of Maya's tasks and one of Leo's end while the tab is open.
    store = Store(tmp_path / "dashboard.db")
    try:
        now = datetime.now(timezone.utc)
        for teammate in ("Maya", "Leo"):
            insert_task(store, prompt=f"{teammate}'s heron", teammate=teammate, created=now - timedelta(minutes=1),
                        finished_at=utcnow())
    finally:
        store.close()
    page.wait_for_function("document.title.startsWith('(1 done) Compare')", timeout=20_000)

    page.reload()
    page.get_by_role("textbox", name="Your name").wait_for(timeout=20_000)
    page.wait_for_function("document.title.startsWith('(1 done) Compare')", timeout=20_000)
    # Another tab of this browser says the same; another browser counts from its own first visit.
    other_tab = page.context.new_page()
    other_tab.goto(f"{dashboard}/History")
    other_tab.wait_for_function("document.title.startsWith('(1 done) History')", timeout=20_000)
    other_browser = page.context.browser.new_context().new_page()
    other_browser.goto(f"{dashboard}/History?teammate=Maya")
    other_browser.get_by_text("heron").first.wait_for(timeout=20_000)
    other_browser.wait_for_timeout(1500)  # a tick of the news
    assert other_browser.title() == "History · Runway dashboard"
