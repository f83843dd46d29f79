"""Download links (issue 10, item 14): a link is a random token whose payload
stays in the database, so a link History handed out on one app process works
on another over the same database and after a restart, and the link itself
says nothing of the filters or the prompt search behind it."""
from __future__ import annotations

import base64
import re
import time
from urllib.parse import quote, quote_plus

import httpx

from lib import downloads
from lib.store import Store, queries
from tests.support.launch import start_app, stop
from tests.support.simulator_env import base_env

SEARCH = "lighthouse7f3q"
PROMPT = f"A {SEARCH} at dawn"
TOKEN_LINK = re.compile(r"/downloads/[\w.%-]+\?t=[A-Za-z0-9_-]{32}")


def _encodings(text: str) -> set[str]:
    raw = text.encode()
    found = {text, quote(text), quote_plus(text), raw.hex(), raw.hex().upper()}
    for shift in range(3):  # base64 of the text at any alignment inside a longer payload
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.add(encode(b"\0" * shift + raw).decode()[4 if shift else 0:].rstrip("=")[:-4])
    return {f for f in found if len(f) >= 6}


def reveals(link: str, *texts: str) -> list[str]:
    return [f"{text!r} as {shown!r}" for text in texts for shown in _encodings(text) if shown in link]


def test_a_link_is_a_token_that_names_none_of_its_filters(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    filters = queries.Filters(prompt=SEARCH, statuses=("FAILED",), teammates=("Ana Lima",), group_id="g-secret42")
    for link in (downloads.csv_link(filters), downloads.zip_link(filters), downloads.output_link(
            {"id": 41, "model": "gen4.5", "request": {}}, {"id": 41, "position": 0, "path": "static/x.mp4"})):
        assert TOKEN_LINK.fullmatch(link), link
        assert reveals(link, SEARCH, "FAILED", "Ana Lima", "g-secret42", '"output":41', '"kind":"zip"') == []
    # The same download shown again (a page redraw) is the same link, not another row.
    assert downloads.csv_link(filters) == downloads.csv_link(filters)
    assert downloads.csv_link(filters) != downloads.csv_link(queries.Filters(prompt=SEARCH))


def test_a_link_works_on_every_process_over_the_database_and_after_a_restart(tmp_path, page):
    db = tmp_path / "dashboard.db"
    store = Store(db)
    for prompt in (PROMPT, "a harbour at night"):
        task = store.record_submission(backend="https://elsewhere.test", task_type="text_to_video", model="gen4.5",
                                       endpoint="/v1/text_to_video", body={"promptText": prompt})
        store.mark_not_created(task, unknown=False, message="kept")
    env = base_env(DASHBOARD_DB=str(db), SIMULATOR_STATE_DIR=str(tmp_path / "simulator"))
    running = []
    try:
        first, first_url = start_app(env, tmp_path / "first.log")
        running.append(first)
        second, second_url = start_app(env, tmp_path / "second.log")
        running.append(second)

        # History on the first process, filtered by a prompt search, hands out its Export CSV link.
        page.goto(f"{first_url}/History?q={SEARCH}")
        page.get_by_text("1 task(s) match the filters").wait_for(timeout=30_000)
        link = page.get_by_role("link", name="Export CSV").get_attribute("href")
        link = link.removeprefix(first_url)
        assert TOKEN_LINK.fullmatch(link) and reveals(link, SEARCH, PROMPT) == [], link

        def exported(url: str) -> httpx.Response:
            return httpx.get(url + link, headers={"Accept-Encoding": "identity"})

        for url in (first_url, second_url):
            answer = exported(url)
            assert answer.status_code == 200, (url, answer.text)
            assert PROMPT in answer.text and "harbour" not in answer.text  # the filtered rows, on both

        for proc in running:
            stop(proc)
        running.clear()
        restarted, restarted_url = start_app(env, tmp_path / "restarted.log")
        running.append(restarted)
        answer = exported(restarted_url)
        assert answer.status_code == 200 and PROMPT in answer.text and "harbour" not in answer.text

        # Unknown and expired tokens are refused, by any process.
        store.save_link("x" * 32, {"kind": "csv", "name": "old.csv", "filters": {}}, expires_at=time.time() - 1)
        for token in ("x" * 32, "y" * 32, "", link.rsplit("=", 1)[1][:-1]):
            answer = httpx.get(f"{restarted_url}/downloads/old.csv?t={token}")
            assert answer.status_code == 403 and "harbour" not in answer.text and SEARCH not in answer.text
    finally:
        for proc in running:
            stop(proc)
        store.close()
