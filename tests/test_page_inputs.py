"""What a page does with what arrives in its address or on disk: ids that are no ids, a
Compare link with tens of thousands of task numbers, a task database that cannot be read,
and a shared link that names someone else. Every page answers in plain words, never with a
traceback, and a session's own name is the one its tasks are recorded under."""
from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from lib import compare
from lib.store import Store
from lib.ui import COMPARE_PAGE, HISTORY_PAGE, PAGE_FILES, TASK_PAGE
from tests.support.apptest import open_page

HUGE = "99999999999999999999999"  # past SQLite's 64-bit integers
SHOWN = ("markdown", "caption", "error", "warning", "info", "success", "text", "code", "json", "title",
         "header", "subheader", "metric", "toast")


@pytest.fixture
def env(app_env):
    return app_env


def _open(path: str, **query: str) -> AppTest:
    return open_page(path, **query)


def _shown(at: AppTest) -> str:
    """Every piece of text the page shows, main area and sidebar."""
    pieces = []
    for kind in SHOWN:
        for element in at.get(kind):
            value = getattr(element, "value", None)
            pieces.append(value if isinstance(value, str) else repr(value))
    for exc in at.exception:
        pieces += [exc.message, *exc.stack_trace]
    return "\n".join(pieces)


def _calm(at: AppTest, tmp_path) -> str:
    """The page ran to the end and shows no stack frame or server path; returns what it shows."""
    assert not at.exception, [e.message for e in at.exception]
    shown = _shown(at)
    for trace in ("Traceback", 'File "', "Error:", str(tmp_path), "/site-packages/", ".py"):
        assert trace not in shown, (trace, shown[:2000])
    return shown


# ---------------------------------------------------------------- Compare: task numbers from the address

class CountingPattern:
    """The task-number pattern, counting the numbers a parse reads."""

    def __init__(self, pattern: re.Pattern):
        self.pattern, self.read = pattern, 0

    def finditer(self, text: str):
        for match in self.pattern.finditer(text):
            self.read += 1
            yield match


def test_a_compare_link_with_75000_task_numbers_reads_only_as_many_as_the_page_shows(monkeypatch):
    counting = CountingPattern(compare.TASK_NUMBER)
    monkeypatch.setattr(compare, "TASK_NUMBER", counting)
    text = ",".join(str(i) for i in range(1, 75_001))
    assert compare.parse_task_ids(text) == list(range(1, compare.MAX_TASKS + 1))
    assert counting.read == compare.MAX_TASKS  # the other 74,980 numbers are never looked at

    counting.read = 0
    repeats = "7," * 75_000 + "8"  # duplicates are dropped in one pass: every number read once
    assert compare.parse_task_ids(repeats) == [7, 8]
    assert counting.read == 75_001


def test_compare_task_numbers_are_positive_64_bit_integers():
    assert compare.parse_task_ids(f"12, 15 18 12 0 {HUGE} 9223372036854775807 9223372036854775808 "
                                  + "9" * 5000) == [12, 15, 18, 9223372036854775807]


# ---------------------------------------------------------------- ids in the address

def test_an_output_number_past_64_bits_presets_nothing_and_says_so(env):
    at = _open(PAGE_FILES["text_to_video"], from_output=HUGE)
    shown = _calm(at, env)
    assert any("not an output number" in w.value for w in at.warning), shown
    assert at.button(key="text_to_video_submit")  # the form is there, empty


def test_an_output_number_that_is_not_archived_says_so(env):
    at = _open(PAGE_FILES["image_to_video"], from_output="41")
    _calm(at, env)
    assert any("no archived output #41" in w.value for w in at.warning)


@pytest.mark.parametrize("value", [HUGE, "0", "-3", "twelve", "9223372036854775808"])
def test_a_task_number_that_is_no_task_number_is_answered_in_words(env, value):
    at = _open(TASK_PAGE, task=value)
    shown = _calm(at, env)
    assert any("not a task number" in w.value for w in at.warning), shown


def test_a_task_number_in_range_that_is_not_there_is_answered_in_words(env):
    at = _open(TASK_PAGE, task="9223372036854775807")
    shown = _calm(at, env)
    assert "no task #9223372036854775807" in shown


def test_a_compare_link_past_64_bits_is_answered_in_words(env):
    at = _open(COMPARE_PAGE, tasks=f"{HUGE},{'9' * 5000}")
    shown = _calm(at, env)
    assert any("names no task" in w.value for w in at.warning), shown


# ---------------------------------------------------------------- a task database that cannot be read

def _not_a_database(path):
    path.write_bytes(b"this is not a database\n" * 500)


def _malformed(path):
    """A real task database whose schema page was overwritten."""
    Store(path).close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 3000)


@pytest.mark.parametrize("damage", [_not_a_database, _malformed])
@pytest.mark.parametrize("path", ["app.py", HISTORY_PAGE, COMPARE_PAGE, TASK_PAGE, PAGE_FILES["text_to_video"]])
def test_a_database_that_cannot_be_read_is_one_plain_sentence(env, path, damage):
    damage(env / "dashboard.db")
    at = _open(path, task="1", tasks="1,2")
    shown = _calm(at, env)
    [error] = at.error
    assert "task database" in error.value and "DASHBOARD_DB" in error.value
    assert "dashboard.db" not in error.value.replace("data/dashboard.db", "")  # no server path
    assert not at.button and not at.metric  # nothing else of the dashboard, which would need the data
    assert shown.count("task database") == 1


def test_a_restored_database_is_used_again_in_the_same_session(env):
    db = env / "dashboard.db"
    _not_a_database(db)
    at = _open(HISTORY_PAGE)
    assert at.error
    db.unlink()
    Store(db).close()
    at.run()
    assert not at.exception and not at.error
    assert any("No tasks yet" in i.value for i in at.info)


# ---------------------------------------------------------------- the teammate's name

def _address_name(at: AppTest) -> str:
    value = at.query_params.get("teammate")
    return value[-1] if isinstance(value, list) else value


def _submit(at: AppTest, prompt: str) -> None:
    at.text_area[0].input(prompt)
    at.button(key="text_to_video_submit").click().run()
    assert not at.exception
    assert any("submitted to" in s.value for s in at.success)


def test_a_shared_link_does_not_rename_a_session_that_has_a_name(env):
    at = _open("app.py")
    at.sidebar.text_input(key="teammate_input").input("Bea").run()
    at.query_params["teammate"] = "Ana"  # the session then opens a teammate's link
    at.switch_page(PAGE_FILES["text_to_video"]).run()
    assert at.sidebar.text_input(key="teammate_input").value == "Bea"
    assert _address_name(at) == "Bea"  # the address now says who is submitting
    _submit(at, "A lighthouse at dawn")
    [task] = Store(env / "dashboard.db").recent_tasks()
    assert task["teammate"] == "Bea"


def test_a_session_with_no_name_takes_it_from_the_address_and_says_where_it_came_from(env):
    at = _open(PAGE_FILES["text_to_video"], teammate="Ana").run()  # and still on the next rerun
    assert at.sidebar.text_input(key="teammate_input").value == "Ana"
    assert any("from the page address" in c.value for c in at.sidebar.caption)
    _submit(at, "A kite over dunes")
    assert Store(env / "dashboard.db").recent_tasks()[0]["teammate"] == "Ana"
    at.sidebar.text_input(key="teammate_input").input("Cy").run()  # typed here: the note goes
    assert not any("from the page address" in c.value for c in at.sidebar.caption)
    assert _address_name(at) == "Cy"
