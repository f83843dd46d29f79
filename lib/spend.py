"""What the team spent: credits by day, model, task type and teammate over a period, the balance
walked back from today's, each teammate's monthly budget, the cross-check against Runway's own
usage endpoint, and the Spend table as a streamed, spreadsheet-safe CSV.

A task's credits are what Runway charged (`cost_credits`), on the UTC day it finished: a failed
or cancelled task counts what it was charged (usually 0), never its estimate. A removed task
counts too: removing hides a task, what it cost stays spent. Figures are of one backend (the
page's: the live account's credits are not the simulator's), or of all when `backend` is None.
Every figure is a GROUP BY in SQLite
over `spend_days` (a row per day, model, task type, teammate and backend, kept by the store's
triggers), with pandas only on the grouped rows: nothing here reads the tasks one by one.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from lib import lifecycle
from lib.client import RunwayClient
from lib.export import safe_cell
from lib.store import SUBMIT_PENDING, SUBMITTED, Store, placeholders

if TYPE_CHECKING:
    import pandas as pd

DIMENSIONS = {"model": "Model", "task_type": "Task type", "teammate": "Teammate"}
TABLE_COLUMNS = ("day", "model", "task_type", "teammate", "tasks", "credits", "no_cost_reported", "removed")
OTHERS = "(others)"
USAGE_MAX_DAYS = 90  # Runway's limit per usage call
_CSV_BATCH = 1000

KEYS = TABLE_COLUMNS[:4]


def _rounded(credits: str) -> str:
    """Credits to a millionth, on both databases (PostgreSQL rounds a NUMERIC to places, not a double)."""
    return f"ROUND(CAST({credits} AS NUMERIC), 6)"


_MEASURES = f"SUM(tasks), {_rounded('SUM(credits)')}, SUM(no_cost_reported), SUM(removed)"


def _period(start: date, end: date | None, backend: str | None) -> tuple[str, tuple]:
    """The per-day totals (`spend_days`, kept by the store's triggers) of the tasks that finished
    from `start` to `end` (UTC days, both included; no end: to now) on `backend` (None: on any)."""
    sql = "FROM spend_days WHERE day >= ?" + (" AND day <= ?" if end else "") + " AND tasks > 0"
    params = (start.isoformat(), *([end.isoformat()] if end else []))
    return (sql + " AND backend = ?", (*params, backend)) if backend else (sql, params)


def _grouped(keys: tuple[str, ...], start: date, end: date, backend: str | None,
             newest_first: bool = False) -> tuple[str, tuple]:
    """One row per value of `keys` (some of KEYS) of the period's tasks."""
    assert set(keys) <= set(KEYS), keys  # column names go into the SQL: only ours
    order = ", ".join(f"{k} DESC" for k in keys) if newest_first else ", ".join(keys)
    where, params = _period(start, end, backend)
    return f"SELECT {', '.join(keys)}, {_MEASURES} {where} GROUP BY {', '.join(keys)} ORDER BY {order}", params


def _pandas():
    """pandas, loaded when a figure is first made: the forms import this module for the budget
    check, and pandas (with pyarrow, ~70 MB) has no place in a process that only submits tasks."""
    import pandas

    return pandas


def table(store: Store, start: date, end: date, keys: tuple[str, ...] = KEYS, newest: int | None = None,
          backend: str | None = None) -> pd.DataFrame:
    """The Spend table: one row per day, model, task type and teammate (TABLE_COLUMNS), of every
    task that finished from `start` to `end` (UTC days, both included), removed ones too. With
    `keys`, one row per value of those columns only (a figure needs no more); with `newest`, the
    last `newest` rows only, newest first."""
    pd = _pandas()
    sql, params = _grouped(keys, start, end, backend, newest_first=newest is not None)
    sql += "" if newest is None else f" LIMIT {int(newest)}"
    frame = pd.DataFrame(store.tuples(sql, params), columns=[*keys, *TABLE_COLUMNS[4:]])
    frame["credits"] = frame["credits"].astype(float)
    return frame


def table_rows(store: Store, start: date, end: date, backend: str | None = None) -> int:
    """How many rows `table` has for the period."""
    where, params = _period(start, end, backend)
    return store.conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 AS one {where} GROUP BY {', '.join(KEYS)}) AS g",
                                 params).fetchone()[0]


def by(frame: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Credits and tasks per `dimension` (a DIMENSIONS key: most credits first; or "day")."""
    summed = frame.groupby(dimension, as_index=False)[["credits", "tasks"]].sum()
    if dimension == "day":
        return summed.sort_values("day").reset_index(drop=True)
    return summed.sort_values(["credits", dimension], ascending=[False, True]).reset_index(drop=True)


def daily(frame: pd.DataFrame, dimension: str, top: int = 9) -> pd.DataFrame:
    """Credits per day and `dimension`, for a stacked bar chart (day, the dimension, credits): the
    `top` values that cost most each have their colour, the rest are one "(others)"."""
    leaders = set(by(frame, dimension)[dimension].head(top))
    named = frame.assign(**{dimension: frame[dimension].where(frame[dimension].isin(leaders), OTHERS)})
    return named.groupby(["day", dimension], as_index=False)["credits"].sum()


def credits_since(store: Store, start: date, backend: str | None = None) -> pd.Series:
    """Credits charged per UTC day from `start` to now (days with no spend left out)."""
    pd = _pandas()
    where, params = _period(start, None, backend)
    rows = store.conn.execute(f"SELECT day, {_rounded('SUM(credits)')} {where} GROUP BY day ORDER BY day",
                                 params).fetchall()
    return pd.Series({r[0]: float(r[1]) for r in rows}, dtype=float)


def balance_history(balance: float, store: Store, start: date, today: date | None = None,
                    backend: str | None = None) -> pd.DataFrame:
    """The balance at the end of each day from `start` to today: today's `balance` plus what was
    spent after that day. Top-ups are not known to the dashboard, so before one the real balance
    was lower than this; spend made outside the dashboard is not in it either."""
    pd = _pandas()
    today = today or datetime.now(timezone.utc).date()
    spent = credits_since(store, start, backend)
    days = [start + timedelta(days=i) for i in range((today - start).days + 1)]
    per_day = pd.Series([spent.get(d.isoformat(), 0.0) for d in days], dtype=float)
    # After day i: everything spent on days i+1 .. today.
    after = per_day[::-1].cumsum()[::-1].shift(-1, fill_value=0.0)
    return pd.DataFrame({"day": [d.isoformat() for d in days], "balance": balance + after.to_numpy()})


# ---------------------------------------------------------------- budgets

def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend(store: Store, teammate: str, now: datetime | None = None, backend: str | None = None) -> float:
    """What `teammate` has spent this calendar month (UTC): what Runway charged for their tasks
    that finished this month, plus the estimates of their tasks still running, which will be."""
    now = now or datetime.now(timezone.utc)
    first = _month_start(now).date()
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    where, params = _period(first, last, backend)
    charged = store.conn.execute(f"SELECT COALESCE(SUM(credits), 0) {where} AND teammate = ?",
                                    (*params, teammate)).fetchone()[0]
    on = " AND backend = ?" if backend else ""
    running = store.conn.execute(
        f"SELECT COALESCE(SUM(estimated_credits), 0) FROM tasks WHERE status IN "
        f"({placeholders(lifecycle.UNFINISHED)}) AND submit_state IN (?, ?) AND teammate = ?{on}",
        (*lifecycle.UNFINISHED, SUBMITTED, SUBMIT_PENDING, teammate, *([backend] if backend else []))).fetchone()[0]
    return float(charged) + float(running)


def budget_overrun(store: Store, teammate: str, credits: float, now: datetime | None = None,
                   backend: str | None = None) -> str | None:
    """The warning to show when sending `credits` more would take `teammate` past their monthly
    budget this calendar month (UTC); None when it would not, or they have no budget."""
    budget = store.budget(teammate) if teammate else None
    if budget is None:
        return None
    now = now or datetime.now(timezone.utc)
    spent = month_spend(store, teammate, now, backend)
    if spent + credits <= budget:
        return None
    return (f"Over your budget: {credits:g} credits more would make {spent + credits:g} this month "
            f"({now:%B %Y}, UTC), and your budget is {budget:g} ({spent:g} spent or running). "
            "Change it on the Spend page, or send anyway.")


def budget_table(store: Store, now: datetime | None = None, backend: str | None = None) -> pd.DataFrame:
    """Each teammate with a budget: budget, spent this month (charged or running), what is left."""
    pd = _pandas()
    now = now or datetime.now(timezone.utc)
    rows = [(name, budget, month_spend(store, name, now, backend)) for name, budget in store.budgets().items()]
    frame = pd.DataFrame(rows, columns=["teammate", "budget", "spent"])
    frame["left"] = frame["budget"] - frame["spent"]
    return frame


# ---------------------------------------------------------------- Runway's usage

def usage_windows(start: date, end: date) -> list[tuple[date, date]]:
    """(startDate, beforeDate) calls covering `start` to `end` (both included), 90 days at most each."""
    windows, at, before = [], start, end + timedelta(days=1)
    while at < before:
        windows.append((at, min(at + timedelta(days=USAGE_MAX_DAYS), before)))
        at = windows[-1][1]
    return windows


def runway_usage(client: RunwayClient, start: date, end: date) -> pd.DataFrame:
    """Runway's own credits per day and model from `start` to `end`, as many calls as it takes."""
    pd = _pandas()
    entries = [e for window in usage_windows(start, end) for e in client.usage(*window)]
    frame = pd.DataFrame([(e.day.isoformat(), e.model, e.credits) for e in entries],
                         columns=["day", "model", "runway"])
    return frame.groupby(["day", "model"], as_index=False)["runway"].sum()


def dashboard_usage(store: Store, backend: str, start: date, end: date) -> pd.DataFrame:
    """The dashboard's credits per day and model on one backend (the tasks it created there)."""
    pd = _pandas()
    # Plain tuples: turning 30,000 row objects into tuples took longer than the query.
    rows = store.tuples(f"SELECT day, model, {_rounded('SUM(credits)')} FROM spend_days WHERE day >= ? AND day <= ? "
                          "AND backend = ? AND tasks > 0 GROUP BY day, model ORDER BY day, model",
                        (start.isoformat(), end.isoformat(), backend))
    return pd.DataFrame(rows, columns=["day", "model", "dashboard"]).astype({"dashboard": float})


def usage_differences(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame:
    """Every day and model where Runway's usage and the dashboard's tasks disagree: `difference`
    is Runway's minus ours (more than 0: spend made outside the dashboard, or charged on another
    day than the task finished here)."""
    both = ours.merge(theirs, how="outer", on=["day", "model"]).fillna({"dashboard": 0.0, "runway": 0.0})
    both["difference"] = both["runway"] - both["dashboard"]
    return both[both["difference"].abs() > 1e-6].sort_values(["day", "model"]).reset_index(drop=True)


# ---------------------------------------------------------------- CSV

def csv_bytes(store: Store, start: date, end: date, backend: str | None = None) -> Iterator[bytes]:
    """The Spend table of the period as CSV (UTF-8 with a BOM, a header, CRLF rows), read from
    SQLite a batch at a time and handed out as it is read. Names a person typed (teammates) and
    model or task type values are made safe for spreadsheets, as in the history export."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(TABLE_COLUMNS)
    for rows in store.stream(*_grouped(KEYS, start, end, backend), _CSV_BATCH):
        # Credits as a real number whichever database summed them (PostgreSQL's NUMERIC comes back
        # an int when whole): "60.0" in the file on both.
        writer.writerows([*(safe_cell(v) for v in row[:4]), row[4], float(row[5]), *row[6:]] for row in rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # the header of an empty period
        yield buffer.getvalue().encode()


def csv_stream(start: date, end: date, backend: str | None = None) -> Iterator[bytes]:
    # Starlette iterates a plain generator on a worker thread: one connection, opened here.
    store = Store()
    try:
        yield from csv_bytes(store, start, end, backend)
    finally:
        store.close()


@dataclass(frozen=True)
class Totals:
    credits: float
    tasks: int
    no_cost_reported: int
    removed: int
    removed_credits: float


def totals(store: Store, frame: pd.DataFrame, start: date, end: date, backend: str | None = None) -> Totals:
    where, params = _period(start, end, backend)
    removed_credits = store.conn.execute(f"SELECT COALESCE({_rounded('SUM(removed_credits)')}, 0) {where}",
                                            params).fetchone()[0]
    return Totals(float(frame["credits"].sum()), int(frame["tasks"].sum()), int(frame["no_cost_reported"].sum()),
                  int(frame["removed"].sum()), float(removed_credits))
