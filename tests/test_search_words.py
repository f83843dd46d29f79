"""History's prompt search matches every word typed, in any order: "lighthouse drone" finds the
prompts that hold both words, wherever they are, and no prompt that holds only one."""
import pytest

from lib.store import queries
from lib.store.queries import Filters
from tests.support.history import insert_tasks, task_row

PROMPTS = ["A lighthouse at dawn, seen from a drone", "drone shot circling the old LIGHTHOUSE",
           "Lighthouse keeper's drone flies at night", "a lighthouse in fog", "a drone over the sea",
           "lighthouses and drones at dusk", "a red fox in snow"]


@pytest.fixture
def ids(store):
    """The prompts, on each backend (SQLite's FTS5 trigram table; PostgreSQL's pg_trgm index)."""
    return store, insert_tasks(store, [task_row(prompt=p) for p in PROMPTS])


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


def test_only_ascii_letters_ignore_case_on_both_backends(store):
    """SQLite's LIKE folds ASCII letters only; PostgreSQL's ILIKE over the byte-wise collation does the same."""
    ids = insert_tasks(store, [task_row(prompt=p) for p in ("Éclair at night", "éclair bakery", "STRASSE", "straße")])
    assert found(store, "éclair") == [ids[1]] and found(store, "ÉCLAIR") == [ids[0]]
    assert found(store, "clair") == ids[:2]
    assert found(store, "strasse") == [ids[2]] and found(store, "ß") == [ids[3]]


def test_each_word_of_three_letters_or_more_can_be_answered_by_the_prompt_index(store):
    """SQLite: the FTS5 trigram table; PostgreSQL: the pg_trgm GIN index (with sequential scans
    priced out, the plan shows whether the index can answer the words at all)."""
    insert_tasks(store, [task_row(prompt=p) for p in PROMPTS * 3])
    where, params = Filters(prompt="lighthouse at").where(dialect=store.dialect)
    sql = f"SELECT t.id FROM tasks t WHERE {where}"
    if store.postgres:
        store.conn.execute("SET enable_seqscan = off")
        plan = " ".join(r[0] for r in store.conn.execute(f"EXPLAIN {sql}", params))
        store.conn.execute("RESET enable_seqscan")
        assert "tasks_prompt_search" in plan, plan
    else:
        plan = " ".join(r[3] for r in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "VIRTUAL TABLE INDEX" in plan, plan
    assert found(store, "lighthouse at") == found(store, "at lighthouse") != []
