"""Compare on a phone and in the dark, in a real Chromium against a real `streamlit run`: at
390 px the outputs stack one a row, each with its rating under it, the players still follow each
other; with the system in dark mode the dashboard and Compare's player frame are dark, their text light."""
from pathlib import Path

from tests.test_browser_compare import _players, _states, _submit_group

SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _open(browser, url: str, width: int, height: int, scheme: str):
    page = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme).new_page()
    page.goto(url)
    videos = _players(page)  # archived, embedded
    page.get_by_text("Your winner").wait_for(timeout=20_000)
    return page, videos


def _luminance(css_colour: str) -> float:
    r, g, b = (float(x) for x in css_colour[css_colour.index("(") + 1:].rstrip(")").split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_compare_stacks_on_a_phone_and_follows_a_dark_system(dashboard, page, tmp_path):
    ids = _submit_group(tmp_path)
    browser = page.context.browser
    url = f"{dashboard}/Compare?group=g-browser"
    phone, videos = _open(browser, url, 390, 844, "dark")

    # One output a row, as wide as the phone, each followed by its own rating, in order.
    boxes = [v.bounding_box() for v in videos]
    assert len({round(b["x"]) for b in boxes}) == 1 and boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"], boxes
    assert all(b["width"] > 300 for b in boxes), boxes
    stars = [phone.locator(f".st-key-rating_{i}").bounding_box() for i in ids]
    for k in range(3):
        below = boxes[k + 1]["y"] if k < 2 else float("inf")
        assert boxes[k]["y"] + boxes[k]["height"] < stars[k]["y"] < below, (boxes, stars)
    # The players still follow each other: Play all, from the bar above the row.
    videos[0].evaluate("v => new Promise(r => v.readyState >= 2 ? r() : v.addEventListener('loadeddata', r))")
    bar = phone.frame_locator("iframe[title='Play the row together']")
    phone.wait_for_timeout(1000)  # the bar's script finds the players (it looks every half second)
    bar.locator("#play").click()
    phone.wait_for_timeout(800)
    assert [s["paused"] for s in _states(videos)] == [False, False, False]
    bar.locator("#pause").click()
    phone.wait_for_timeout(300)
    assert [s["paused"] for s in _states(videos)] == [True, True, True]

    # Dark: the page's background, and the frames' own text and buttons.
    body = phone.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor")
    assert _luminance(body) < 0.2, body
    caption = phone.frame_locator("iframe[title^='Output of #']").first.locator("figcaption").evaluate(
        "e => getComputedStyle(e).color")
    button = bar.locator("#play").evaluate("e => getComputedStyle(e).backgroundColor")
    assert _luminance(caption) > 0.8 and _luminance(button) < 0.2, (caption, button)
    SHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SHOTS / "compare_phone_dark.png"))

    light, _ = _open(browser, url, 390, 844, "light")
    caption = light.frame_locator("iframe[title^='Output of #']").first.locator("figcaption").evaluate(
        "e => getComputedStyle(e).color")
    assert _luminance(caption) < 0.3, caption
    light.screenshot(path=str(SHOTS / "compare_phone_light.png"))
    light.get_by_test_id("stMain").evaluate("m => m.scrollTo(0, 700)")
    light.screenshot(path=str(SHOTS / "compare_phone_light_scrolled.png"))
    for scheme in ("light", "dark"):
        wide, _ = _open(browser, url, 1440, 900, scheme)
        wide.screenshot(path=str(SHOTS / f"compare_wide_{scheme}.png"))
        for view in ("List", "Gallery"):  # History's own HTML: players, badges, cards, the gallery
            wide.goto(f"{dashboard}/History?view={view}")
            wide.locator("video[poster]").nth(2).wait_for(timeout=30_000)
            wide.get_by_role("link", name=f"#{ids[0]} · ").first.wait_for(timeout=20_000)
            wide.wait_for_timeout(1000)  # the rest of the run drawn
            wide.screenshot(path=str(SHOTS / f"history_{view.lower()}_wide_{scheme}.png"))
