"""History: filters, sort orders and pages done in SQL over thousands of tasks; and the
actions on a task (cancel, re-run, remove) against the simulator and a fake Runway."""
from __future__ import annotations

import contextlib
import json
import random
import re
import time
import uuid
from datetime import date, timedelta

import httpx
import pytest

from lib import archive, history, lifecycle, media, tasks
from lib.backend import Backend
from lib.poller import Poller
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.store import TaskUpdate, queries
from lib.store.queries import Filters
from lib.tasks import submit_task
from tests.support import services
from tests.support.apptest import open_page
from tests.support.history import START, insert_output, insert_task, insert_tasks, task_row

MODELS = [("text_to_video", "gen4.5"), ("text_to_video", "veo3.1"), ("image_to_video", "gen4_turbo"),
          ("text_to_image", "gen4_image"), ("sound_effect", "eleven_text_to_sound_v2")]
PEOPLE = ["Ana", "Bo", "Chen", ""]
WORDS = ["fox", "kite", "boat", "lighthouse"]


def _history(n: int, seed: int = 7) -> list[dict]:
    """n varied tasks, one a minute from START, as rows."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        task_type, model = MODELS[i % len(MODELS)]
        status = rnd.choice(["SUCCEEDED"] * 6 + ["FAILED", "CANCELLED", "PENDING", "PROCESSING"])
        rows.append(task_row(task_type=task_type, model=model, status=status, teammate=rnd.choice(PEOPLE),
                             prompt=f"shot {i}: a {rnd.choice(WORDS)} at dusk", group_id=f"g{i // 4}" if i % 3 == 0
                             else None, created=START + timedelta(minutes=i), cost_credits=float(rnd.randint(1, 99))))
    return rows


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big(request, tmp_path_factory):
    """A store with 3,000 tasks, and the rows as inserted (ids 1..3000), on each backend."""
    from lib.store import Store

    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            store = Store(tmp_path_factory.mktemp("big") / "dashboard.db")
        else:
            store = Store(stack.enter_context(services.fresh_postgres()))
        stack.callback(store.close)
        rows = _history(3000)
        insert_tasks(store, rows)
        yield store, rows


def _expect(rows, keep) -> list[int]:
    """The ids (1-based insertion order) of the rows `keep` accepts."""
    return [i for i, r in enumerate(rows, start=1) if keep({**r, "id": i})]


def _prompt(row) -> str:
    return json.loads(row["request_json"]).get("promptText") or ""


def _all_pages(store, filters, sort, size=250) -> list[int]:
    ids, number = [], 1
    while page := queries.page(store, filters, sort, number, size):
        ids += [t["id"] for t in page]
        number += 1
    return ids


@pytest.mark.parametrize("filters, keep", [
    (Filters(statuses=("FAILED", "CANCELLED")), lambda r: r["status"] in ("FAILED", "CANCELLED")),
    (Filters(task_types=("text_to_video",)), lambda r: r["task_type"] == "text_to_video"),
    (Filters(models=("veo3.1",), teammates=("Chen",)), lambda r: r["model"] == "veo3.1" and r["teammate"] == "Chen"),
    (Filters(teammates=("",)), lambda r: r["teammate"] == ""),
    (Filters(group_id="g30"), lambda r: r["group_id"] == "g30"),
    (Filters(created_from=date(2026, 3, 2), created_to=date(2026, 3, 2)),
     lambda r: r["created_at"].startswith("2026-03-02")),
    (Filters(prompt="KITE at"), lambda r: all(w in _prompt(r).lower() for w in ("kite", "at"))),
    (Filters(prompt="shot 12:"), lambda r: all(w in _prompt(r) for w in ("shot", "12:"))),
    (Filters(task_ids=(5, 17, 2999, 999_999)), lambda r: r["id"] in (5, 17, 2999)),
])
def test_filters_select_exactly_the_matching_tasks(big, filters, keep):
    store, rows = big
    expected = _expect(rows, keep)
    assert expected, "the sample history must contain matches"
    assert queries.count(store, filters) == len(expected)
    assert sorted(_all_pages(store, filters, "newest")) == expected


def test_pages_walk_every_task_once_in_each_sort_order(big):
    store, rows = big
    filters = Filters(statuses=("SUCCEEDED",))
    expected = _expect(rows, lambda r: r["status"] == "SUCCEEDED")
    newest = _all_pages(store, filters, "newest")
    assert newest == sorted(expected, reverse=True)  # one a minute: newest first is highest id first
    assert _all_pages(store, filters, "oldest") == sorted(expected)
    by_cost = _all_pages(store, filters, "cost")
    assert sorted(by_cost) == expected
    costs = [rows[i - 1]["cost_credits"] for i in by_cost]
    assert costs == sorted(costs, reverse=True)
    by_model = [rows[i - 1]["model"] for i in _all_pages(store, filters, "model")]
    assert by_model == sorted(by_model)
    page_two = queries.page(store, filters, "newest", 2, 20)
    assert [t["id"] for t in page_two] == newest[20:40]
    assert queries.page(store, filters, "newest", 10_000, 20) == []


def test_best_rated_first_puts_unrated_last(big):
    store, _ = big
    store.set_rating(10, 5)
    store.set_rating(11, 2)
    ids = [t["id"] for t in queries.page(store, Filters(task_ids=(9, 10, 11, 12)), "rating")]
    assert ids[:2] == [10, 11] and set(ids[2:]) == {9, 12}


def test_prompt_search_is_literal_text(store):
    prompts = ['100% "real" fox', "100 foxes", "a_b snake", "ab snake", "new\nline", "灯台の夜明け",
               "back\\slash", "=SUM(A1)"]
    ids = insert_tasks(store, [task_row(prompt=p) for p in prompts])
    found = lambda text: [t["id"] for t in queries.page(store, Filters(prompt=text), "oldest")]
    assert found("100%") == [ids[0]]
    assert found('"real"') == [ids[0]]
    assert found("a_b") == [ids[2]]
    assert found("w\nli") == [ids[4]]
    assert found("灯台") == [ids[5]]
    assert found("k\\s") == [ids[6]]
    assert found("=sum") == [ids[7]]
    assert found("model") == []  # only the prompt is searched, not the rest of the request


def test_filter_queries_use_indexes(tmp_path):
    """Every History filter is answered from an index, not a scan of the table (prompt text from
    the trigram index); how long a render takes at 1,000 to 100,000 tasks is measured in
    benchmarks/, not asserted."""
    from lib.store import Store

    store = Store(tmp_path / "dashboard.db")
    insert_tasks(store, _history(5_000, seed=3))
    cases = [Filters(statuses=("FAILED",)), Filters(task_types=("text_to_video",), models=("veo3.1",)),
             Filters(teammates=("Chen",)), Filters(group_id="g1001"),
             Filters(created_from=date(2026, 4, 1), created_to=date(2026, 4, 3)), Filters(prompt="kite at")]
    for filters in cases:
        where, params = filters.where()
        plan = " ".join(r[3] for r in store.conn.execute(
            f"EXPLAIN QUERY PLAN SELECT t.id FROM tasks t WHERE {where} ORDER BY t.created_at DESC, t.id DESC "
            f"LIMIT 20", params))
        assert any(way in plan for way in ("USING INDEX", "USING COVERING INDEX", "VIRTUAL TABLE INDEX")), (
            filters, plan)
        total = queries.count(store, filters)
        last = max(1, -(-total // queries.PAGE_SIZE))
        assert len(queries.page(store, filters, "newest", last)) == total - (last - 1) * queries.PAGE_SIZE
    assert queries.distinct_values(store, "model") == sorted(m for _, m in MODELS)
    assert queries.distinct_values(store, "teammate") == sorted(PEOPLE)
    store.close()


def test_iter_tasks_walks_the_filtered_set_in_batches_with_outputs_and_reviews(big):
    store, rows = big
    store.set_notes(8, "keep this one", "Bo")
    store.set_winner([4, 8], 8, "Bo")
    insert_output(store, 8, path="static/eight.mp4")
    filters = Filters(group_id="g2")
    expected = _expect(rows, lambda r: r["group_id"] == "g2")
    got = list(queries.iter_tasks(store, filters, batch=1))
    assert [t["id"] for t in got] == expected
    everything = list(queries.iter_tasks(store, Filters(statuses=("FAILED",)), batch=97))
    assert [t["id"] for t in everything] == _expect(rows, lambda r: r["status"] == "FAILED")
    [eight] = [t for t in queries.iter_tasks(store, Filters(task_ids=(8,)))]
    assert eight["notes"] == "Bo: keep this one" and eight["winner"] == 1  # one vote, named
    assert [o["path"] for o in eight["outputs"]] == ["static/eight.mp4"]


def test_lineage_follows_parents_and_children(store):
    root = insert_task(store, prompt="root")
    child = insert_task(store, prompt="child", parent_task_id=root)
    grandchild = insert_task(store, prompt="grandchild", parent_task_id=child)
    sibling = insert_task(store, prompt="sibling", parent_task_id=root)
    parents, children = queries.lineage(store, store.task(grandchild))
    assert [p["id"] for p in parents] == [child, root] and children == []
    parents, children = queries.lineage(store, store.task(root))
    assert parents == [] and [c["id"] for c in children] == [child, sibling]
    tasks.remove(store, root)
    parents, _ = queries.lineage(store, store.task(child))
    assert parents == [root]  # a removed parent is still named, by number


def test_input_summary_and_reuse_targets():
    task = {"task_type": "image_to_video", "model": "gen4_turbo",
            "request": {"model": "gen4_turbo", "promptImage": "stored:image/png:abc.png", "promptText": "x",
                        "ratio": "960:960", "duration": 5, "seed": 42}}
    assert history.input_summary(task) == ["960:960", "5 s", "seed 42", "first frame image: uploaded file"]
    names = lambda mime: [t.key for t in history.reuse_targets(mime)]
    assert "image_to_video" in names("image/png") and "video_to_video" not in names("image/png")
    assert {"video_to_video", "video_upscale", "frame_interpolation"} <= set(names("video/mp4"))
    assert names("audio/mpeg") == ["lip_sync", "speech_to_speech", "voice_dubbing", "voice_isolation"]


# ---------------------------------------------------------------- actions

def test_remove_deletes_only_the_tasks_own_files(store, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    for name in ("own.mp4", "shared.mp4", "other.mp4"):
        (static / name).write_bytes(b"video")
    first, second, third = (insert_task(store, prompt=p) for p in ("first", "second", "third"))
    insert_output(store, first, path="static/own.mp4")
    insert_output(store, first, position=1, path="static/shared.mp4")
    insert_output(store, second, path="static/shared.mp4")
    insert_output(store, third, path="static/other.mp4")
    store.set_rating(first, 3)

    assert tasks.remove(store, first, static_dir=static) == 1
    # Hidden, not erased: the row keeps what it cost; its outputs and reviews go.
    assert store.task(first)["removed_at"] and store.outputs_for([first])[first] == []
    assert store.events_for(first)[-1]["note"] == "removed from the history"
    assert queries.page(store, Filters()) == store.tasks_by_id([third, second])
    assert store.reviews_for([first]) == {}
    assert sorted(p.name for p in static.iterdir()) == ["other.mp4", "shared.mp4"]
    assert store.task(second) and store.task(third)

    assert tasks.remove(store, second, static_dir=static) == 1  # now nobody else uses shared.mp4
    assert sorted(p.name for p in static.iterdir()) == ["other.mp4"]


def test_unfinished_tasks_are_cancelled_not_removed(store, tmp_path):
    running = insert_task(store, status="PROCESSING")
    with pytest.raises(tasks.ActionRefused):
        tasks.remove(store, running, static_dir=tmp_path)
    assert store.task(running)


@pytest.fixture
def start_simulator(tmp_path):
    """Start a simulator with short (or given) timings; stopped afterwards."""
    servers = []

    def start(**timings) -> SimulatorServer:
        options = {"pending_seconds": 0.3, "run_seconds": 0.8, "max_side": 96, **timings}
        server = SimulatorServer(SimulatorConfig(state_dir=tmp_path / f"simulator-{len(servers)}", **options))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def _sim_log(server, method):
    log = httpx.get(f"{server.url}/_simulator/requests", headers={"Authorization": f"Bearer {server.api_key}"}).json()
    entries = log["requests"] if isinstance(log, dict) else log
    return [e["path"] for e in entries if e["method"] == method]


def _poll_until(poller, store, task_id, done, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        store.conn.execute("UPDATE tasks SET next_poll_at = 0 WHERE next_poll_at IS NOT NULL")
        poller.poll_once()
        task = store.task(task_id)
        if done(task):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} stayed {store.task(task_id)['status']}")


def test_cancel_against_the_simulator(store, start_simulator, tmp_path):
    simulator = start_simulator(pending_seconds=0.2, run_seconds=30)
    backend = Backend(name="simulator", base_url=simulator.url, api_key=simulator.api_key)
    # Three tasks on a model limited to two at once: the third waits THROTTLED.
    ids = [submit_task(store, backend, task_type="text_to_video", model_id="gen4.5", teammate="Ana",
                       inputs={"promptText": f"slow shot {i}", "ratio": "1280:720", "duration": 10}).task_id
           for i in range(3)]
    poller = Poller(store.path, [backend], interval=0.2, static_dir=tmp_path / "static")
    target = ids[0]
    _poll_until(poller, store, target, lambda t: t["status"] == lifecycle.PROCESSING)

    tasks.cancel(store, backend, target, teammate="Ana")
    uuid = store.task(target)["task_uuid"]
    assert _sim_log(simulator, "DELETE") == [f"/v1/tasks/{uuid}"]
    assert not tasks.can_cancel(store.task(target))  # no second cancel while the first is on its way
    task = _poll_until(poller, store, target, lambda t: lifecycle.is_terminal(t["status"]), timeout=5)
    assert (task["status"], task["api_status"]) == ("CANCELLED", "CANCELLED")
    assert task["cost_credits"] is not None  # Runway's word on what the cancelled run cost
    notes = [e["note"] for e in store.events_for(target)]
    assert "cancel requested by Ana" in notes
    with pytest.raises(tasks.ActionRefused):
        tasks.cancel(store, backend, target)
    assert len(_sim_log(simulator, "DELETE")) == 1
    poller.stop()


def test_a_404_after_our_own_cancel_means_cancelled(store, fake_backend, fake_runway, tmp_path):
    result = submit_task(store, fake_backend, task_type="text_to_video", model_id="gen4.5",
                         inputs={"promptText": "x", "ratio": "1280:720", "duration": 5})
    uuid = store.task(result.task_id)["task_uuid"]
    tasks.cancel(store, fake_backend, result.task_id)
    fake_runway.tasks.pop(uuid)  # Runway deleted it: GET answers 404
    poller = Poller(store.path, [fake_backend], interval=5, static_dir=tmp_path / "static")
    assert poller.poll_once() == 1
    task = store.task(result.task_id)
    assert task["status"] == "CANCELLED" and task["failure_code"] is None
    poller.stop()


def test_rerun_against_the_simulator_links_to_the_original(store, start_simulator, tmp_path):
    simulator = start_simulator()
    backend = Backend(name="simulator", base_url=simulator.url, api_key=simulator.api_key)
    glitch = submit_task(store, backend, task_type="text_to_video", model_id="gen4.5", group_id="g1",
                         inputs={"promptText": "a #glitch at noon", "ratio": "720:1280", "duration": 2}).task_id
    unsafe = submit_task(store, backend, task_type="text_to_video", model_id="gen4.5",
                         inputs={"promptText": "an #unsafe scene", "ratio": "1280:720", "duration": 2}).task_id
    poller = Poller(store.path, [backend], interval=0.2, static_dir=tmp_path / "static")
    for task_id in (glitch, unsafe):
        _poll_until(poller, store, task_id, lambda t: t["status"] == lifecycle.FAILED)

    assert tasks.can_rerun(store.task(glitch))
    assert not tasks.can_rerun(store.task(unsafe))  # SAFETY.* is not offered again
    with pytest.raises(tasks.ActionRefused):
        tasks.rerun(store, backend, unsafe, teammate="Bo")

    result = tasks.rerun(store, backend, glitch, teammate="Bo")
    assert result.ok, result
    again = store.task(result.task_id)
    original = store.task(glitch)
    assert again["request"] == original["request"]
    assert (again["parent_task_id"], again["group_id"], again["teammate"]) == (glitch, "g1", "Bo")
    assert _sim_log(simulator, "POST").count("/v1/text_to_video") == 3
    _, children = queries.lineage(store, original)
    assert [c["id"] for c in children] == [result.task_id]
    poller.stop()


def test_rerun_sends_stored_uploads_byte_for_byte(store, fake_backend, fake_runway):
    image = media.encode_data_uri("image/png", b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(4000))
    assert len(image) > 2048  # large enough to be kept in the input stash, not inline
    first = submit_task(store, fake_backend, task_type="image_to_video", model_id="gen4_turbo",
                        inputs={"promptImage": image, "promptText": "pan left", "ratio": "960:960", "seed": 7})
    assert store.task(first.task_id)["request"]["promptImage"].startswith("stored:")
    store.conn.execute("UPDATE tasks SET status = 'FAILED', failure_code = 'INTERNAL.BAD_OUTPUT.CODE01' "
                          "WHERE id = ?", (first.task_id,))
    assert tasks.rerun(store, fake_backend, first.task_id).ok
    sent, resent = fake_runway.bodies()
    assert resent == sent and resent["promptImage"] == image


# ---------------------------------------------------------------- the pages

HISTORY_PAGE, TASK_PAGE = "pages/10_History.py", "pages/12_Task.py"


def _page(path, **query):
    return open_page(path, **query)


def _shown_ids(at) -> list[int]:
    """The task numbers of the cards on the page, top to bottom."""
    # Each card's heading links to its task (ui.link's stand-in where AppTest runs a page alone).
    return [int(m) for m in re.findall(r"\[#(\d+) · [^]]*\]\(Task\?task=\d+\)",
                                       " ".join(x.value for x in at.markdown))]


# The page tests take `store` (each backend) with `app_env`: the page opens the store's database.
def _app_store(app_env):
    from lib.store import Store

    return Store(app_env / "dashboard.db")


def test_history_page_filters_sorts_and_pages_from_the_address(store, app_env):
    insert_tasks(store, [task_row(prompt=f"shot {i} of a {'kite' if i % 2 else 'fox'}", teammate="Ana" if i < 30
                                  else "Bo", status="FAILED" if i % 5 == 0 else "SUCCEEDED",
                                  failure="Flagged" if i % 5 == 0 else None, created=START + timedelta(minutes=i))
                         for i in range(45)])
    at = _page(HISTORY_PAGE)
    assert not at.exception
    assert _shown_ids(at) == list(range(45, 20, -1))  # newest first, one page of 25
    assert any("45 task(s)" in c.value for c in at.caption)

    at = _page(HISTORY_PAGE, page="2")
    assert _shown_ids(at) == list(range(20, 0, -1))

    at = _page(HISTORY_PAGE, status="FAILED", by="Ana", sort="Oldest first")
    assert _shown_ids(at) == [1, 6, 11, 16, 21, 26]
    assert any("6 task(s) match the filters" in c.value for c in at.caption)
    assert [b.proto.label for b in at.get("link_button")] == ["Export CSV", "All rows"]

    at = _page(HISTORY_PAGE, q="kite", by="Bo")
    assert _shown_ids(at) == [44, 42, 40, 38, 36, 34, 32]
    at = _page(HISTORY_PAGE, q="nothing like this")
    assert _shown_ids(at) == [] and any("No task matches" in i.value for i in at.info)
    store.close()


def test_history_offers_what_each_task_allows(store, app_env):
    done = insert_task(store, prompt="a kite")
    archived = archive.STATIC_DIR / f"test-{uuid.uuid4().hex}.mp4"
    archived.parent.mkdir(exist_ok=True)
    archived.write_bytes(b"\x00\x00\x00\x18ftypisom")
    output = insert_output(store, done, path=f"static/{archived.name}")
    unsafe = insert_task(store, prompt="bad", status="FAILED", failure="Flagged by moderation.",
                         failure_code="SAFETY.INPUT.TEXT")
    running = insert_task(store, prompt="still going", status="PROCESSING", progress=0.4, api_status="RUNNING")
    try:
        at = _page(HISTORY_PAGE)
    finally:
        archived.unlink()
    keys = {b.key for b in at.button}
    assert f"rerun_{done}" in keys and f"remove_{done}" in keys
    assert f"rerun_{unsafe}" not in keys and f"remove_{unsafe}" in keys  # no re-run of a safety rejection
    assert f"cancel_{running}" in keys and f"remove_{running}" not in keys and f"rerun_{running}" not in keys
    texts = " ".join(m.value for m in at.markdown)
    assert "PROCESSING · 40%" in texts and [p.value for p in at.get("progress")] == [40]
    errors = " ".join(e.value for e in at.error)
    assert "Flagged by moderation" in errors and "SAFETY" in errors
    assert any(f"/app/static/{archived.name}" in h.proto.body for h in at.get("html"))  # a player, not st.video
    assert [b.proto.label for b in at.get("link_button")] == ["Export CSV", "Download"]
    reuse = re.findall(r"\]\((\w+)\?from_output=(\d+)\)", texts)
    assert ("Video_to_Video", str(output)) in reuse and ("Video_Upscale", str(output)) in reuse
    assert all(o == str(output) for _, o in reuse)
    store.close()


def test_history_removes_a_task_only_after_confirmation(store, app_env):
    keep, gone = insert_task(store, prompt="keep me"), insert_task(store, prompt="remove me")
    at = _page(HISTORY_PAGE)
    at.button(key=f"remove_{gone}").click().run()
    assert any(f"Remove #{gone} from the history" in w.value for w in at.warning)
    assert store.task(gone) is not None  # asking is not doing
    at.button(key=f"remove_no_{gone}").click().run()
    assert not at.warning and store.task(gone) is not None
    at.button(key=f"remove_{gone}").click().run()
    at.button(key=f"remove_yes_{gone}").click().run()
    assert not at.exception
    assert store.task(gone)["removed_at"] and not store.task(keep)["removed_at"]
    assert _shown_ids(at) == [keep]
    assert any(f"Removed #{gone}" in t.value for t in at.toast)
    store.close()


def test_history_cancel_and_rerun_buttons_drive_the_simulator(app_env, monkeypatch):
    monkeypatch.setenv("SIMULATOR_RUN_SECONDS", "30")  # long enough to cancel while it runs
    from lib.backend import current_backend
    from tests.support.simulator import simulator_requests

    store = _app_store(app_env)
    backend = current_backend()
    first = submit_task(store, backend, task_type="text_to_video", model_id="gen4.5", teammate="Ana",
                        inputs={"promptText": "a slow dolly shot", "ratio": "1280:720", "duration": 5}).task_id
    at = _page(HISTORY_PAGE, teammate="Ana")
    at.button(key=f"cancel_{first}").click().run()
    assert any(f"Cancel #{first}?" in w.value for w in at.warning) and not simulator_requests("DELETE")
    at.button(key=f"cancel_no_{first}").click().run()  # asking is not doing
    assert not at.warning and not simulator_requests("DELETE")
    at.button(key=f"cancel_{first}").click().run()
    at.button(key=f"cancel_yes_{first}").click().run()
    assert any(f"Cancel of #{first} sent" in t.value for t in at.toast)
    assert [r["path"] for r in simulator_requests("DELETE")] == [f"/v1/tasks/{store.task(first)['task_uuid']}"]
    assert "cancelling" in " ".join(m.value for m in at.markdown)

    poller = Poller(store.path, [backend], interval=0.2, static_dir=app_env / "static")
    _poll_until(poller, store, first, lambda t: t["status"] == lifecycle.CANCELLED, timeout=5)
    poller.stop()
    at.run()
    at.button(key=f"rerun_{first}").click().run()
    assert not at.exception
    second = store.task(first + 1)
    assert second["parent_task_id"] == first and second["request"] == store.task(first)["request"]
    assert second["teammate"] == "Ana" and second["task_uuid"]
    assert any(f"submitted as #{second['id']}" in t.value for t in at.toast)
    assert len(simulator_requests(creates_only=True)) == 2
    store.close()


def test_task_page_shows_request_timeline_outputs_and_lineage(store, app_env):
    parent = insert_task(store, prompt="a <b>bold</b> *kite*", task_type="text_to_image", model="gen4_image",
                         request={"model": "gen4_image", "promptText": "a <b>bold</b> *kite*", "ratio": "1360:768"})
    task = store.record_submission(backend="simulator", task_type="image_to_video", model="gen4_turbo",
                                   endpoint="/v1/image_to_video", parent_task_id=parent, teammate="Ana",
                                   body={"model": "gen4_turbo", "promptImage": "https://cdn.test/k.png",
                                         "promptText": "pan across", "seed": 9})
    store.mark_submitted(task, "uuid-9", 25, first_poll_in=5)
    store.apply_update(task, TaskUpdate("RUNNING", lifecycle.PROCESSING, progress=0.5))
    store.apply_update(task, TaskUpdate("SUCCEEDED", lifecycle.SUCCEEDED, output=("https://o.test/1.mp4",),
                                        cost_credits=25))
    child = insert_task(store, prompt="upscaled", parent_task_id=task)

    at = _page(TASK_PAGE, task=str(task))
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "SUCCEEDED" in text and "Ana" in text and "uuid\\-9" in text
    assert at.json[0].value and '"seed": 9' in at.json[0].value.replace(" ", " ")
    assert [t.value for t in at.text] == ["pan across"]
    [timeline] = [m.value for m in at.markdown if m.value.startswith("| at (UTC)")]
    assert [row.split("|")[2].strip() for row in timeline.splitlines()[2:]] == [
        "PENDING", "PENDING", "PROCESSING", "SUCCEEDED"]
    assert "created as uuid\\-9" in timeline
    assert re.search(rf"\[↑ from #{parent} [^]]*\]\(Task\?task={parent}\)", text)  # links to its parent and child
    assert re.search(rf"\[↓ #{child} [^]]*\]\(Task\?task={child}\)", text)
    captions = " ".join(c.value for c in at.caption)  # the parent's prompt is under its link
    assert "<b>" not in text + captions and "\\<b\\>bold\\</b\\> \\*kite\\*" in captions  # text, never HTML
    # The output is on its way to the archive (the app's poller may already have tried the fake URL).
    assert (any("Archiving the video" in c.value for c in at.caption)
            or any("Not archived yet" in w.value for w in at.warning))

    tasks.remove(store, parent)
    at = _page(TASK_PAGE, task=str(task))
    assert f"#{parent} (removed from the history)" in " ".join(m.value for m in at.markdown)
    at = _page(TASK_PAGE, task="999")
    assert any("no task #999" in w.value for w in at.warning)
    store.close()


def test_tasks_picked_on_history_open_compare_together(store, app_env):
    first, _, third = (insert_task(store, prompt=p) for p in ("one", "two", "three"))
    at = _page(HISTORY_PAGE)
    at.checkbox(key=f"pick_{third}").check().run()
    assert not any("Compare?tasks=" in m.value for m in at.markdown)  # one task is no comparison
    at.checkbox(key=f"pick_{first}").check().run()
    assert any(f"[Compare 2 →](Compare?tasks={third}%2C{first})" in m.value for m in at.markdown)
    at.checkbox(key=f"pick_{third}").uncheck().run()
    assert any(f"#{first}" in c.value and f"#{third}" not in c.value for c in at.caption
               if c.value.startswith("Picked"))
    store.close()


def test_prompt_search_follows_new_changed_and_removed_tasks_and_existing_ones(tmp_path):
    """The prompt index is kept by triggers in the same transaction as the task, and a history
    that predates it is indexed when it migrates."""
    import sqlite3

    from sqlite_utils import Database

    from lib.store import Store, migrations

    path = tmp_path / "dashboard.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m004_prompt_search")  # a database from before the index
    old = Store.__new__(Store)  # rows written as an older dashboard wrote them
    old.db, old.conn = db, db.conn
    insert_tasks(old, [task_row(prompt="an old lighthouse at dawn")])
    db.conn.close()

    store = Store(path)
    found = lambda text: [t["id"] for t in queries.page(store, Filters(prompt=text), "oldest")]
    assert found("LIGHTHOUSE") == [1]
    fox, kite = insert_tasks(store, [task_row(prompt="a red fox in the snow"), task_row(prompt="a kite at noon")])
    assert found("red fox") == [fox] and found("at") == [1, kite] and found("a ") == [1, fox, kite]
    store.conn.execute("UPDATE tasks SET request_json = ? WHERE id = ?",
                          (json.dumps({"model": "gen4.5", "promptText": "a blue fox"}), fox))
    assert found("red fox") == [] and found("blue fox") == [fox]
    store.remove_task(fox)
    assert found("fox") == [] and queries.count(store, Filters(prompt="kite")) == 1
    store.close()


def test_prompt_search_follows_new_changed_and_removed_tasks_on_both_backends(store):
    """SQLite's FTS5 table and PostgreSQL's `prompt_search` column are both kept by triggers."""
    found = lambda text: [t["id"] for t in queries.page(store, Filters(prompt=text), "oldest")]
    old, fox, kite = insert_tasks(store, [task_row(prompt=p) for p in (
        "an old lighthouse at dawn", "a red fox in the snow", "a kite at noon")])
    assert found("LIGHTHOUSE") == [old] and found("red fox") == [fox] and found("at") == [old, kite]
    store.conn.execute("UPDATE tasks SET request_json = ? WHERE id = ?",
                       (json.dumps({"model": "gen4.5", "promptText": "a blue fox"}), fox))
    assert found("red fox") == [] and found("blue fox") == [fox]
    store.remove_task(fox)
    assert found("fox") == [] and queries.count(store, Filters(prompt="kite")) == 1
