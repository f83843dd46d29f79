"""In a real Chromium against a real `streamlit run`: a teammate hears of their own tasks, and
only theirs, on whatever page is open: a toast when one is ready or failed, the count of them in
the tab's title, and the list under each form follows each task's status."""
import time

from tests.test_browser import _screenshot


def _tab(page, url: str):
    tab = page.context.browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    tab.goto(url)
    tab.get_by_role("textbox", name="Your name").wait_for(timeout=20_000)
    return tab


def _submit(tab, prompt: str) -> None:
    tab.get_by_role("textbox", name="Prompt").fill(prompt)
    tab.get_by_role("button", name="Generate", exact=True).click()
    tab.get_by_text("submitted to").wait_for(timeout=20_000)


def _recent(tab, task_id: int):
    return tab.locator(f".st-key-yours_{task_id}")  # the task's row under the form


def test_a_teammate_hears_of_their_own_tasks_on_any_open_page(dashboard, page):
    page.goto(f"{dashboard}/Compare?teammate=Maya")  # Maya has Compare open
    page.get_by_role("textbox", name="Your name").wait_for(timeout=20_000)
    assert page.title() == "Compare · Runway dashboard"

    # Leo's task, from his own browser, ends without a word to Maya.
    leo = _tab(page, f"{dashboard}/Text_to_Image?teammate=Leo")
    leo.get_by_text("Your recent tasks").wait_for()
    _submit(leo, "A paper kite over the dunes")
    _recent(leo, 1).filter(has_text="SUCCEEDED").wait_for(timeout=30_000)  # his list follows his task

    # Maya's own, from another tab: the list under her form goes from waiting to done.
    maya = _tab(page, f"{dashboard}/Text_to_Video?teammate=Maya")
    _submit(maya, "A paper boat on a rainy street")
    row = _recent(maya, 2)
    row.wait_for(timeout=10_000)
    assert not _recent(maya, 1).count()  # Leo's is not in her list
    row.filter(has_text="SUCCEEDED").wait_for(timeout=30_000)
    _screenshot(maya, "form_with_recent_tasks")

    toasts = page.get_by_test_id("stToast")
    toasts.filter(has_text="#2").filter(has_text="is ready").wait_for(timeout=30_000)
    assert not toasts.filter(has_text="kite").count()  # Leo's task is not Maya's news
    page.wait_for_function("document.title.startsWith('(1 done) Compare')", timeout=10_000)
    _screenshot(page, "compare_with_toast")

    _submit(maya, "A storm at sea #unsafe")
    toasts.filter(has_text="#3").filter(has_text="failed").wait_for(timeout=30_000)
    page.wait_for_function("document.title.startsWith('(2 done) Compare')", timeout=10_000)

    # A task in her list opens its own page in the same tab.
    _recent(maya, 2).get_by_role("link", name="#2 · Text to video · gen4.5").click()
    maya.get_by_role("heading", name="#2 · Text to video · gen4.5").wait_for(timeout=10_000)
    assert "/Task?task=2" in maya.url and len(maya.context.pages) == 1


def test_news_is_a_teammates_own_tasks_that_ended_since_the_last_look(store, fake_backend):
    from lib import lifecycle, ui
    from lib.store import TaskUpdate, queries, utcnow
    from lib.tasks import submit_task

    def submit(teammate: str) -> int:
        result = submit_task(store, fake_backend, task_type="text_to_image", model_id="gen4_image",
                             inputs={"promptText": f"{teammate}'s crane", "ratio": "1024:1024"}, teammate=teammate)
        assert result.ok
        return result.task_id

    def finish(task_id: int, status: str = lifecycle.SUCCEEDED) -> None:
        store.apply_update(task_id, TaskUpdate(api_status=status, status=status))

    running, done_before = submit("Maya"), submit("Maya")
    finish(done_before)
    time.sleep(0.002)  # the store's times are to the millisecond: the first look comes after this end
    since = utcnow()  # the tab title counts from the first look
    news: dict = {}
    assert ui.task_news(store, "Maya", news) == []  # the first look only takes note
    later, leos = submit("Maya"), submit("Leo")
    finish(later, lifecycle.FAILED)  # made after the first look and ended before the next: news too
    finish(running)
    finish(leos)
    assert sorted(t["id"] for t in ui.task_news(store, "Maya", news)) == [running, later]
    assert ui.task_news(store, "Maya", news) == []  # each said once
    # The title's count: Maya's tasks that ended since the first look, whoever looks again.
    assert queries.finished_since(store, "Maya", since) == 2 and queries.finished_since(store, "Leo", since) == 1
