"""In a real Chromium against a real `streamlit run`: a name typed once stays on every task,
through the sidebar, Home's links, a form's "Open History" and History's "Use as input", and
this browser remembers it on its next visit, over a shared link that names someone else."""
import sqlite3

from playwright.sync_api import expect

from tests.test_browser import _screenshot


def _has_name(page, name: str) -> bool:
    """Whether the sidebar's "Your name" holds `name` (waiting out a rerun still being drawn)."""
    expect(page.get_by_role("textbox", name="Your name")).to_have_value(name, timeout=20_000)
    return True


def _submit(page, prompt: str) -> None:
    page.get_by_role("textbox", name="Prompt").fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("submitted to").wait_for(timeout=20_000)


def test_a_name_typed_once_stays_on_every_task_and_in_this_browser(dashboard, page, tmp_path):
    # A deep link is the server's first page: its sidebar links still work.
    page.goto(f"{dashboard}/History")
    page.get_by_role("textbox", name="Your name").fill("Maya")
    page.get_by_role("textbox", name="Your name").press("Enter")
    page.wait_for_url("**teammate=Maya**", timeout=20_000)
    sidebar, main = page.get_by_test_id("stSidebar"), page.get_by_test_id("stMain")

    sidebar.get_by_role("link", name="Home", exact=True).click()
    page.get_by_role("heading", name="Runway task dashboard").wait_for(timeout=20_000)
    assert _has_name(page, "Maya")
    _screenshot(page, "home_with_name")

    main.get_by_role("link", name="Text to Image", exact=True).click()  # Home's task grid
    page.get_by_role("textbox", name="Prompt").wait_for(timeout=20_000)
    assert _has_name(page, "Maya") and len(page.context.pages) == 1  # the same tab
    _submit(page, "A brass lighthouse on a cliff")

    main.get_by_role("link", name="Open History", exact=True).click()
    page.wait_for_url("**/History?**", timeout=20_000)
    page.get_by_role("heading", name="History").wait_for(timeout=20_000)
    page.get_by_text("A brass lighthouse on a cliff").first.wait_for(timeout=20_000)
    assert _has_name(page, "Maya")
    use = main.get_by_role("button", name="Use as input")
    use.wait_for(timeout=45_000)  # once the image is archived
    use.click()
    page.get_by_test_id("stPopoverBody").get_by_role("link", name="Image to Video", exact=True).click()
    page.wait_for_url("**/Image_to_Video?**from_output=**", timeout=20_000)
    page.get_by_role("textbox", name="Prompt").wait_for(timeout=20_000)
    assert _has_name(page, "Maya") and len(page.context.pages) == 1
    _submit(page, "The lighthouse beam sweeps the sea")

    with sqlite3.connect(tmp_path / "dashboard.db") as db:
        tasks = db.execute("SELECT task_type, teammate, parent_task_id FROM tasks ORDER BY id").fetchall()
    assert tasks == [("text_to_image", "Maya", None), ("image_to_video", "Maya", 1)]

    assert {c["name"]: c["value"] for c in page.context.cookies()}.get("dashboard_teammate") == "Maya"
    # The next visit in this browser, by a teammate's link that names Leo: still Maya.
    again = page.context.new_page()
    again.goto(f"{dashboard}/Text_to_Video?teammate=Leo")
    again.get_by_role("textbox", name="Prompt").wait_for(timeout=20_000)
    assert _has_name(again, "Maya")
    again.wait_for_url("**teammate=Maya**", timeout=20_000)  # the address says who is submitting
    assert not again.get_by_text("Name taken from the page address").count()

    # Another browser, with no name yet, takes Leo's from the link, and says so.
    other = page.context.browser.new_context().new_page()
    other.goto(f"{dashboard}/Text_to_Video?teammate=Leo")
    other.get_by_text("Name taken from the page address").wait_for(timeout=20_000)
    assert _has_name(other, "Leo")
