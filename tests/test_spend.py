"""The Spend page: totals that add up to what each task was charged (failed, cancelled and removed
tasks included), budgets that stop a form until the teammate confirms, Runway's usage read
through a real simulator in live mode, the CSV, and the page itself in AppTest and Chromium."""
from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from lib import downloads, lifecycle, spend, tasks
from lib.backend import Backend
from lib.client import MalformedResponse, RunwayClient
from lib.poller import Poller
from lib.simulator import SimulatorConfig, SimulatorServer
from lib.store import Store
from lib.tasks import submit_task
from lib.ui import PAGE_FILES, SPEND_PAGE
from tests.support.apptest import open_page
from tests.support.history import START, insert_task, insert_tasks, task_row
from tests.support.simulator import simulator_requests

MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def _plant(store: Store) -> dict[str, int]:
    """A month of tasks of every outcome, two teammates, three models; one removed."""
    day = timedelta(days=1)
    ids = {
        "ana_fox": insert_task(store, teammate="Ana", model="gen4.5", cost_credits=60.0),
        "ana_kite": insert_task(store, teammate="Ana", model="veo3.1", cost_credits=120.0, created=START + day),
        "leo_failed": insert_task(store, teammate="Leo", model="gen4.5", status=lifecycle.FAILED, cost_credits=0.0,
                                  failure_code="SAFETY.INPUT.TEXT", created=START + day),
        # Cancelled while running: Runway charged it in full.
        "leo_cancelled": insert_task(store, teammate="Leo", model="gen4.5", status=lifecycle.CANCELLED,
                                     cost_credits=25.0, created=START + 2 * day),
        "leo_removed": insert_task(store, teammate="Leo", model="gen4_image", task_type="text_to_image",
                                   cost_credits=8.0, created=START + 2 * day),
        "nameless": insert_task(store, model="gen4.5", cost_credits=12.5, created=START + 20 * day),
        "running": insert_task(store, teammate="Ana", status=lifecycle.PROCESSING, created=START + 3 * day),
        "april": insert_task(store, teammate="Ana", cost_credits=999.0,
                             created=datetime(2026, 4, 2, tzinfo=timezone.utc)),
    }
    assert tasks.remove(store, ids["leo_removed"], teammate="Leo") == 0
    return ids


def test_the_totals_equal_the_sum_of_what_each_task_was_charged(store):
    ids = _plant(store)
    frame = spend.table(store, *MARCH)
    in_march = [store.task(i) for k, i in ids.items() if k not in ("april", "running")]
    charged = sum(t["cost_credits"] for t in in_march)
    assert charged == 225.5
    totals = spend.totals(store, frame, *MARCH)
    assert (totals.credits, totals.tasks, totals.removed, totals.removed_credits) == (225.5, 6, 1, 8.0)
    # Every cut adds up to the same total, whatever it is cut by.
    for dimension in ("day", *spend.DIMENSIONS):
        assert spend.by(frame, dimension)["credits"].sum() == charged
    assert dict(spend.by(frame, "teammate")[["teammate", "credits"]].values) == {"Ana": 180.0, "Leo": 33.0,
                                                                                "": 12.5}
    assert dict(spend.by(frame, "model")[["model", "credits"]].values) == {"gen4.5": 97.5, "veo3.1": 120.0,
                                                                          "gen4_image": 8.0}
    # A failed task counts what it was charged (0), never its estimate of 60.
    failed = frame[(frame["teammate"] == "Leo") & (frame["day"] == "2026-03-02")]
    assert list(failed["credits"]) == [0.0] and store.task(ids["leo_failed"])["estimated_credits"] == 60.0
    assert frame["removed"].sum() == 1
    assert spend.daily(frame, "model")["credits"].sum() == charged
    assert set(spend.daily(frame, "model", top=1)["model"]) == {"veo3.1", spend.OTHERS}



def test_the_page_s_figures_grouped_by_fewer_columns_or_cut_to_the_newest_rows_are_the_same(store):
    _plant(store)
    frame = spend.table(store, *MARCH)
    for dimension in spend.DIMENSIONS:
        coarse = spend.table(store, *MARCH, keys=("day", dimension))
        assert len(coarse) == len(frame[["day", dimension]].drop_duplicates())
        assert spend.by(coarse, dimension).values.tolist() == spend.by(frame, dimension).values.tolist()
        assert spend.daily(coarse, dimension).values.tolist() == spend.daily(frame, dimension).values.tolist()
        coarse_totals = spend.totals(store, coarse, *MARCH)
        assert coarse_totals == spend.totals(store, frame, *MARCH)
    newest = spend.table(store, *MARCH, newest=3)
    assert newest.values.tolist() == frame.iloc[::-1].head(3).values.tolist()
    assert spend.table_rows(store, *MARCH) == len(frame) == 6

def test_the_per_day_totals_follow_every_change_of_a_task(store):
    ids = _plant(store)
    conn = store.conn
    # Runway's final word on a cost, a task finishing, one moved to another teammate, one deleted outright.
    conn.execute("UPDATE tasks SET cost_credits = 30.5 WHERE id = ?", (ids["leo_cancelled"],))
    conn.execute("UPDATE tasks SET status = 'SUCCEEDED', cost_credits = 7, finished_at = ? WHERE id = ?",
                 ("2026-03-31T23:59:59.999Z", ids["running"]))
    conn.execute("UPDATE tasks SET teammate = 'Maya' WHERE id = ?", (ids["ana_kite"],))
    conn.execute("DELETE FROM events WHERE task_id = ?", (ids["nameless"],))
    conn.execute("DELETE FROM tasks WHERE id = ?", (ids["nameless"],))
    kept = [tuple(r) for r in conn.execute(
        "SELECT day, model, task_type, teammate, SUM(tasks), SUM(credits), SUM(removed) FROM spend_days "
        "WHERE tasks > 0 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")]
    counted = [tuple(r) for r in conn.execute(
        "SELECT substr(finished_at, 1, 10), model, task_type, teammate, COUNT(*), SUM(COALESCE(cost_credits, 0)), "
        "SUM(CASE WHEN removed_at IS NOT NULL THEN 1 ELSE 0 END) FROM tasks WHERE finished_at IS NOT NULL "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")]
    assert kept == counted and len(kept) == 7
    assert spend.totals(store, spend.table(store, *MARCH), *MARCH).credits == 60 + 120 + 30.5 + 8 + 7


def test_a_history_from_before_the_per_day_totals_is_counted_when_they_arrive(sqlite_store):
    """SQLite's m013 over a history that had no per-day totals (PostgreSQL's schema starts with them)."""
    store = sqlite_store
    _plant(store)
    before = spend.table(store, *MARCH).values.tolist()
    conn = store.conn
    for trigger in ("insert", "update", "delete"):
        conn.execute(f"DROP TRIGGER tasks_spend_{trigger}")
    conn.execute("DROP TABLE spend_days")
    conn.execute("DROP TABLE budgets")
    conn.execute("ALTER TABLE changes DROP COLUMN spend")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm013_spend'")
    reopened = Store(store.path)  # the migration runs again, over the tasks already there
    assert spend.table(reopened, *MARCH).values.tolist() == before
    reopened.close()


def test_the_balance_is_walked_back_from_today_through_the_spend(store):
    _plant(store)
    balance = spend.balance_history(1000.0, store, date(2026, 3, 30), today=date(2026, 4, 3))
    # 999 credits were spent on April 2: before it the balance was that much higher.
    assert balance.values.tolist() == [["2026-03-30", 1999.0], ["2026-03-31", 1999.0], ["2026-04-01", 1999.0],
                                       ["2026-04-02", 1000.0], ["2026-04-03", 1000.0]]


def test_the_spend_csv_adds_up_and_is_safe_in_a_spreadsheet(store):
    _plant(store)
    insert_task(store, teammate="=HYPERLINK(\"https://evil.test\")", cost_credits=1.0, created=START)
    text = b"".join(spend.csv_bytes(store, *MARCH)).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert sum(float(r["credits"]) for r in rows) == 226.5
    assert sum(int(r["removed"]) for r in rows) == 1
    assert "'=HYPERLINK(\"https://evil.test\")" in [r["teammate"] for r in rows]
    assert not [r for r in rows if r["teammate"].startswith("=")]


def test_the_spend_table_is_a_download_link_that_streams_it(store, app_env):
    del store  # the link's route opens the store DASHBOARD_DB names
    route_store = Store()
    _plant(route_store)
    link = downloads.spend_link(*MARCH)
    with TestClient(Starlette(routes=downloads.ROUTES)) as client:
        answer = client.get(link)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content == b"".join(spend.csv_bytes(route_store, *MARCH))
    route_store.close()


def test_a_budget_says_when_a_submission_would_go_past_it_this_month(store):
    now = datetime(2026, 3, 25, tzinfo=timezone.utc)
    _plant(store)
    assert spend.budget_overrun(store, "Ana", 1000, now) is None  # no budget, no warning
    store.set_budget("Ana", 300)
    assert store.budgets() == {"Ana": 300.0}
    # Charged in March: 60 + 120; still running: its estimate of 60. April's 999 is another month.
    assert spend.month_spend(store, "Ana", now) == 240.0
    assert spend.budget_overrun(store, "Ana", 60, now) is None
    message = spend.budget_overrun(store, "Ana", 61, now)
    assert "301 this month (March 2026, UTC)" in message and "your budget is 300" in message
    assert spend.budget_overrun(store, "Leo", 10_000, now) is None  # budgets are each teammate's own
    assert spend.budget_overrun(store, "", 10_000, now) is None
    store.set_budget("Ana", None)
    assert store.budgets() == {} and spend.budget_overrun(store, "Ana", 61, now) is None
    with pytest.raises(ValueError):
        store.set_budget("Ana", -1)


def test_the_form_warns_past_the_budget_and_sends_nothing_until_confirmed(app_env):
    store = Store()
    store.set_budget("Ana", 50)
    at = open_page(PAGE_FILES["text_to_video"], teammate="Ana")
    at.text_area(key="text_to_video_promptText").input("A lighthouse at dawn").run()  # gen4.5, 5 s: 60 credits
    warnings = " ".join(w.value for w in at.warning)
    assert "Over your budget: 60 credits more would make 60 this month" in warnings, warnings
    assert at.button(key="text_to_video_submit").disabled
    assert simulator_requests(creates_only=True) == []
    at.checkbox(key="text_to_video_over_limit").check().run()
    at.button(key="text_to_video_submit").click().run()
    assert [r["path"] for r in simulator_requests(creates_only=True)] == ["/v1/text_to_video"]
    assert [t["teammate"] for t in store.recent_tasks()] == ["Ana"]
    store.close()


def test_the_spend_page_shows_the_figures_and_sets_a_budget(store, app_env):  # the page opens `store`
    # Both early today (UTC): in this month and this period whenever the test runs.
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=1, microsecond=0)
    insert_tasks(store, [task_row(teammate="Ana", cost_credits=60.0, created=today),
                         task_row(teammate="<b>Leo</b>", model="veo3.1", cost_credits=40.0, created=today)])
    at = open_page(SPEND_PAGE, teammate="Ana")
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Credits spent"] == "100"
    assert len(at.get("vega_lite_chart")) == 5  # by day, model, task type, teammate; the balance
    captions = " ".join(c.value for c in at.caption)
    assert "Removed tasks still count" in captions and "Top-ups are not known" in captions
    # The simulator has never heard of these planted tasks: the cross-check says so, per model per day.
    assert any("2 day and model pair(s) differ" in w.value for w in at.warning)
    at.number_input[0].set_value(500)
    at.button[0].click().run()  # the form's "Set budget"
    assert store.budgets() == {"Ana": 500.0}
    [budget] = at.dataframe[1].value.to_dict("records")
    assert (budget["teammate"], budget["budget"], budget["spent"]) == ("Ana", 500.0, 60.0)
    store.close()



def test_the_spend_page_follows_a_task_that_finishes_while_it_is_open(store, app_env):
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=1, microsecond=0)
    insert_tasks(store, [task_row(teammate="Ana", cost_credits=60.0, created=today)])
    at = open_page(SPEND_PAGE)
    assert {m.label: m.value for m in at.metric}["Credits spent"] == "60"
    # The figures are cached per change of the store: a new task is a change, and the next run shows it.
    insert_tasks(store, [task_row(teammate="Leo", model="veo3.1", cost_credits=40.0, created=today)])
    at.run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Credits spent"] == "100"
    assert at.dataframe[0].value["teammate"].tolist() == ["Leo", "Ana"]
    store.close()

@pytest.fixture
def live_simulator(tmp_path, monkeypatch, app_env):
    """A real simulator server used as the live API: RUNWAYML_BASE_URL and a key."""
    server = SimulatorServer(SimulatorConfig(state_dir=tmp_path / "live", pending_seconds=0.1, run_seconds=0.2,
                                             max_side=96)).start()
    monkeypatch.setenv("RUNWAYML_API_SECRET", server.api_key)
    monkeypatch.setenv("RUNWAYML_BASE_URL", server.url)
    yield server
    server.stop()


def _usage_calls(server) -> list[dict]:
    log = httpx.get(f"{server.url}/_simulator/requests", headers={"Authorization": f"Bearer {server.api_key}"}).json()
    entries = log["requests"] if isinstance(log, dict) else log
    return [e for e in entries if e["path"] == "/v1/organization/usage"]


def test_live_mode_reads_runways_usage_and_shows_spend_made_elsewhere(live_simulator, app_env):
    server = live_simulator
    backend = Backend(name=server.url, base_url=server.url, api_key=server.api_key)
    store = Store()
    ours = submit_task(store, backend, task_type="text_to_video", model_id="gen4.5", teammate="Ana",
                       inputs={"promptText": "ours", "ratio": "1280:720", "duration": 5}).task_id
    # Made with the same key outside the dashboard: Runway bills it, the dashboard never saw it.
    with RunwayClient(server.url, server.api_key) as client:
        elsewhere = client.create_task("/v1/text_to_video", {"model": "veo3.1", "promptText": "elsewhere",
                                                             "ratio": "1280:720", "duration": 4}).id
    poller = Poller(store.path, [backend], interval=0.1, static_dir=app_env / "static")
    deadline = datetime.now() + timedelta(seconds=20)
    while not lifecycle.is_terminal(store.task(ours)["status"]) and datetime.now() < deadline:
        store.conn.execute("UPDATE tasks SET next_poll_at = 0 WHERE next_poll_at IS NOT NULL")
        poller.poll_once()
    poller.stop()
    assert store.task(ours)["cost_credits"] == 60
    with RunwayClient(server.url, server.api_key) as client:
        while not lifecycle.is_terminal((other := client.get_task(elsewhere)).status) and datetime.now() < deadline:
            time.sleep(0.1)
    assert other.status == lifecycle.SUCCEEDED and other.cost_credits > 0
    today = datetime.now(timezone.utc).date()
    with backend.client() as client:
        theirs = spend.runway_usage(client, today - timedelta(days=200), today)
    assert len(_usage_calls(server)) == 3  # 201 days: 90 + 90 + 21
    assert sorted(theirs["model"]) == ["gen4.5", "veo3.1"]
    differences = spend.usage_differences(spend.dashboard_usage(store, backend.name, today, today), theirs)
    assert differences[["model", "dashboard", "runway"]].values.tolist() == [["veo3.1", 0.0, other.cost_credits]]

    at = open_page(SPEND_PAGE)
    assert not at.exception, at.exception
    assert any("1 day and model pair(s) differ" in w.value and f"(difference {other.cost_credits:+,.0f})" in w.value
               for w in at.warning), [w.value for w in at.warning]
    assert at.dataframe[-1].value[["model", "difference"]].values.tolist() == [["veo3.1", other.cost_credits]]
    store.close()


def test_a_usage_answer_that_fails_or_makes_no_sense_is_a_message_not_a_crash(app_env, monkeypatch):
    bodies = iter([{"results": [{"date": "yesterday", "usedCredits": []}]}])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(bodies, {"results": "none"}))

    client = RunwayClient("https://api.test", "key_secret", transport=httpx.MockTransport(handler),
                          sleep=lambda s: None, max_retries=0)
    with pytest.raises(MalformedResponse):
        client.usage(date(2026, 3, 1), date(2026, 3, 2))
    with pytest.raises(MalformedResponse):
        client.usage(date(2026, 3, 1), date(2026, 3, 2))
    refused = RunwayClient("https://api.test", "key_secret", sleep=lambda s: None, transport=httpx.MockTransport(
        lambda r: httpx.Response(403, json={"error": "key_secret is **not** allowed"})))
    with pytest.raises(Exception) as raised:
        refused.usage(date(2026, 3, 1), date(2026, 3, 2))
    assert "key_secret" not in str(raised.value)

    # On the page: one sentence, the rest of the page drawn.
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_secret")
    monkeypatch.setenv("RUNWAYML_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("DASHBOARD_API_TIMEOUT", "2")
    at = open_page(SPEND_PAGE, timeout=90)
    assert not at.exception, at.exception
    shown = [w.value.replace("\\", "") for w in at.warning]
    assert "Runway's usage could not be read: Could not reach 127.0.0.1; check the network connection and " \
           "RUNWAYML_BASE_URL." in shown, shown


def test_the_spend_page_draws_its_charts_in_a_browser(dashboard, page, tmp_path):
    store = Store(tmp_path / "dashboard.db")
    today = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0)
    insert_tasks(store, [task_row(teammate=name, model=model, cost_credits=credits, created=today - timedelta(days=d))
                         for d, (name, model, credits) in enumerate([("Ana", "gen4.5", 60.0), ("Leo", "veo3.1", 80.0),
                                                                     ("Ana", "veo3.1", 40.0)])])
    store.close()
    page.goto(f"{dashboard}/Spend")
    charts = page.locator("[data-testid='stVegaLiteChart']")
    charts.first.wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll(\"[data-testid='stVegaLiteChart'] canvas, "
                           "[data-testid='stVegaLiteChart'] svg.marks\").length >= 5", timeout=30_000)
    assert charts.count() == 5
    assert "180" in page.get_by_test_id("stMetric").first.inner_text()


def test_both_backends_make_the_same_spend_figures_and_csv(tmp_path):
    """One history on SQLite and on PostgreSQL: the same table, totals, balance and CSV, byte for byte."""
    from tests.support import services

    with services.fresh_postgres() as url:
        backends = [Store(tmp_path / "dashboard.db"), Store(url)]
        for store in backends:
            _plant(store)
            insert_task(store, teammate="=Eve", cost_credits=1 / 3, created=START + timedelta(days=4))
        sqlite, postgres = ({"table": spend.table(s, *MARCH).values.tolist(),
                             "newest": spend.table(s, *MARCH, keys=("day", "model"), newest=2).values.tolist(),
                             "rows": spend.table_rows(s, *MARCH),
                             "totals": spend.totals(s, spend.table(s, *MARCH), *MARCH),
                             "balance": spend.balance_history(100.0, s, date(2026, 3, 1), today=date(2026, 4, 3))
                             .values.tolist(),
                             "month": spend.month_spend(s, "Ana", datetime(2026, 3, 20, tzinfo=timezone.utc)),
                             "csv": b"".join(spend.csv_bytes(s, *MARCH))} for s in backends)
        assert sqlite == postgres
        assert b"\r\n2026-03-05,gen4.5,text_to_video,'=Eve,1,0.333333,0,0\r\n" in postgres["csv"]
        for store in backends:
            store.close()
