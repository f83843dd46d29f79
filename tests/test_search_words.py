"""History's prompt search matches every word typed, in any order: "lighthouse drone" finds the
prompts that hold both words, wherever they are, and no prompt that holds only one."""
import pytest

from lib.store import Store, queries
from lib.store.queries import Filters
from tests.support.history import insert_tasks, task_row

PROMPTS = ["A lighthouse at dawn, seen from a drone", "drone shot circling the old LIGHTHOUSE",
           "Lighthouse keeper's drone flies at night", "a lighthouse in fog", "a drone over the sea",
           "lighthouses and drones at dusk", "a red fox in snow"]


@pytest.fixture
def ids(tmp_path):
    store = Store(tmp_path / "dashboard.db")
    yield store, insert_tasks(store, [task_row(prompt=p) for p in PROMPTS])
    store.close()


def found(store, text: str) -> list[int]:
    filters = Filters(prompt=text)
    assert queries.count(store, filters) == len(page := queries.page(store, filters, "oldest"))
    return [t["id"] for t in page]


def test_all_words_in_any_order(ids):
    store, ids = ids
    both = [ids[0], ids[1], ids[2], ids[5]]  # "lighthouses"/"drones" hold the words too
    assert found(store, "lighthouse drone") == both
    assert found(store, "drone lighthouse") == both
    assert found(store, "  DRONE   Lighthouse ") == both  # spaces and ASCII case do not matter
    assert found(store, "lighthouse drone dawn") == [ids[0]]
    assert found(store, "lighthouse drone whale") == []


def test_short_words_count_too(ids):
    store, ids = ids
    assert found(store, "at drone") == [ids[0], ids[2], ids[5]]  # "at" is a word shorter than a trigram
    assert found(store, "fox a") == [ids[6]]
    assert found(store, "lighthouse lighthouse") == found(store, "lighthouse")  # a repeated word is one word


def test_one_word_is_still_a_substring(ids):
    store, ids = ids
    assert found(store, "house") == [ids[0], ids[1], ids[2], ids[3], ids[5]]
    assert found(store, "") == ids
