"""The Models leaderboard: for each task type, one row per model with what the team's history
says of it. How often it ran and succeeded (and the failure codes it failed with), how long a
task took from submission to the end and in the queue, what an output second (video, audio) or
an image cost, the team's ratings, the win rate of its Compare winner votes, and a
Bradley–Terry strength with a confidence interval fitted to every pairwise judgement.

Pairwise judgements: a winner vote beats every other finished task of the set it was compared
in (the tasks recorded with the vote, else the winner's group); two tasks of one comparison
rated by the same teammate are a pair too (the higher rating wins, equal ones are half each).
A model with fewer than `MIN_COMPARISONS` judgements is listed but not ranked.

Every figure is SQL (GROUP BY, with histograms for the percentiles) and pandas over the grouped
rows; no Python loop over tasks. Removed tasks count: their spend, runs and votes stay true.
The teammate filter picks the tasks a teammate submitted for the task figures and the reviews a
teammate gave for the judgement figures, each by the name recorded on the row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from lib import catalog, lifecycle
from lib.store import REVIEW_ROWS, Store, placeholders, queries
from lib.store.connect import SQLITE, Dialect

MIN_COMPARISONS = 10  # judgements a model needs before it is ranked
PRIOR_GAMES = 1.0  # each model's pseudo win and loss against a typical model: keeps the undefeated finite
ELO = 400 / math.log(10)  # BT log-strength to the familiar Elo-like scale (100 points: 64 % expected wins)
Z95 = 1.959964
TOP_FAILURES = 3

COLUMNS = ("model", "standing", "bt_score", "bt_low", "bt_high", "comparisons", "win_rate", "votes",
           "rating_average", "rating_count", "tasks", "success_rate", "failures", "median_s", "p90_s",
           "queue_median_s", "credits_per_unit", "unit", "rank")


@dataclass(frozen=True)
class Filters:
    """What the page narrows the figures to; None is everything."""

    since: date | None = None  # created on or after (UTC)
    until: date | None = None  # created on or before (UTC)
    teammate: str | None = None
    task_type: str | None = None
    ratio: str | None = None

    def tasks_where(self, alias: str, *, by_teammate: bool, by_id: bool = False,
                    dialect: Dialect = SQLITE) -> tuple[str, list]:
        """SQL clauses (joined by AND) and parameters on the tasks aliased `alias` (read `by_id`)."""
        clauses, params = ["1 = 1"], []
        if self.since:
            clauses.append(f"{alias}.created_at >= ?")
            params.append(self.since.isoformat())
        if self.until:
            clauses.append(f"{alias}.created_at < ?")
            params.append((self.until + timedelta(days=1)).isoformat())
        if self.task_type:
            clauses.append(f"{alias}.task_type = ?")
            params.append(self.task_type)
        if self.ratio:
            # Tasks looked up one by one (a review's) would each compute the ratio from the request:
            # the index holds it.
            clauses.append(f"{alias}.id IN (SELECT id FROM tasks {dialect.indexed_by('tasks_by_model')} "
                           "WHERE request_ratio = ?)" if by_id
                           else f"{alias}.request_ratio = ?")
            params.append(self.ratio)
        if by_teammate and self.teammate is not None:
            clauses.append(f"{alias}.teammate = ?")
            params.append(self.teammate)
        return " AND ".join(clauses), params

    def reviewer_where(self, alias: str) -> tuple[str, list]:
        return (f"{alias}.reviewer = ?", [self.teammate]) if self.teammate is not None else ("1 = 1", [])


def unit_of(task_type: str) -> str:
    """What a model's price is per: an image, or a second of video or audio."""
    try:
        return "image" if catalog.task_type(task_type).output == "image" else "second"
    except KeyError:  # a task type this version no longer knows
        return "second"


# ---------------------------------------------------------------- the figures from SQL

def _sql(store: Store, sql: str, params: list) -> pd.DataFrame:
    cursor = store.conn.execute(sql, params)
    return pd.DataFrame([tuple(r) for r in cursor.fetchall()], columns=[d[0] for d in cursor.description])


def _outcomes(store: Store, filters: Filters) -> pd.DataFrame:
    where, params = filters.tasks_where("t", by_teammate=True, dialect=store.dialect)
    return _sql(store, f"SELECT t.task_type, t.model, t.status, t.failure_code, COUNT(*) AS n "
                       "FROM tasks t "
                       f"WHERE {where} GROUP BY 1, 2, 3, 4", params)


def _durations(store: Store, filters: Filters) -> pd.DataFrame:
    """Histograms to the tenth of a second: `total` from submission to the end of a succeeded
    task, `queue` from submission to the start of any started one."""
    where, params = filters.tasks_where("t", by_teammate=True, dialect=store.dialect)
    parts = [f"SELECT t.task_type, t.model, '{kind}' AS kind, t.{column} AS s, COUNT(*) AS n FROM tasks t "
             f"WHERE {where} AND {cond} GROUP BY 1, 2, 4"
             for kind, column, cond in (
                 ("total", "seconds_to_end", f"t.status = '{lifecycle.SUCCEEDED}' AND t.seconds_to_end IS NOT NULL"),
                 ("queue", "seconds_queued", "t.seconds_queued IS NOT NULL"))]
    frame = _sql(store, " UNION ALL ".join(parts), params * 2)
    return frame[frame["s"].notna() & (frame["s"] >= 0)]  # a clock that ran backwards says nothing


def _costs(store: Store, filters: Filters) -> pd.DataFrame:
    """Credits and what they bought, over the succeeded tasks with a known charge: seconds asked
    for (a number in the request's `duration`) or images made (the outputs, one if none are left)."""
    d = store.dialect
    where, params = filters.tasks_where("t", by_teammate=True, dialect=d)
    images = [k.key for k in catalog.TASK_TYPES if k.output == "image"]
    made = d.greatest("1", "(SELECT COUNT(*) FROM outputs o WHERE o.task_id = t.id)")
    return _sql(store, (
        f"SELECT t.task_type, t.model, "
        "SUM(CASE WHEN t.request_seconds IS NOT NULL THEN t.cost_credits END) AS second_credits, "
        "SUM(t.request_seconds) AS seconds, "
        f"SUM(CASE WHEN t.task_type IN ({placeholders(images)}) THEN t.cost_credits END) AS image_credits, "
        f"SUM(CASE WHEN t.task_type IN ({placeholders(images)}) THEN {made} END) AS images "
        # Every column read is in this index (SQLite's planner, with no statistics, took one that is not).
        f"FROM tasks t {d.indexed_by('tasks_by_model')} WHERE {where} AND t.status = ? "
        "AND t.cost_credits IS NOT NULL GROUP BY 1, 2"),
        [*images, *images, *params, lifecycle.SUCCEEDED])


def _ratings(store: Store, filters: Filters) -> pd.DataFrame:
    where, params = filters.tasks_where("t", by_teammate=False, dialect=store.dialect)
    mine, who = filters.reviewer_where("r")
    return _sql(store, f"SELECT t.task_type, t.model, AVG(r.rating) AS rating_average, COUNT(*) AS rating_count "
                       f"FROM {REVIEW_ROWS} r JOIN tasks t ON t.id = r.task_id "
                       f"WHERE r.rating IS NOT NULL AND {mine} AND {where} GROUP BY 1, 2", [*who, *params])


def _judgements(store: Store, filters: Filters) -> pd.DataFrame:
    """Pairwise judgements between two models of one task type, grouped: `a` scored `score`
    (1, 0.5 or 0) against `b` `n` times; `kind` is "vote" (a winner vote) or "rating"."""
    d = store.dialect
    where_a, params_a = filters.tasks_where("a", by_teammate=False, by_id=True, dialect=d)
    where_b, params_b = filters.tasks_where("b", by_teammate=False, by_id=True, dialect=d)
    mine, who = filters.reviewer_where("r")
    # The ids a vote was made among (`compared`, a JSON array the store writes), as rows `value`.
    voted_among = d.json_ids("v.compared").format(alias="j")
    rated_among = [d.json_ids("r.compared").format(alias=alias) for alias in ("j", "k")]
    # Each side's filters apply where its tasks are first read, so a filter that leaves few tasks
    # leaves few pairs to build. CROSS JOIN (its conditions in WHERE, which both databases take)
    # makes SQLite read the reviews first and their tasks by id (its planner otherwise walked all
    # 100,000 tasks to find the reviews of each); PostgreSQL plans the same joins for itself.
    votes = (
        f"WITH v AS MATERIALIZED (SELECT r.task_id, r.compared, a.task_type, a.model, a.group_id "
        f"FROM {REVIEW_ROWS} r CROSS JOIN tasks a WHERE a.id = r.task_id AND r.winner != 0 AND {mine} "
        f"AND {where_a}), "
        f"beaten(task_type, a, l) AS ("
        f"SELECT v.task_type, v.model, CAST(j.value AS BIGINT) FROM v, {voted_among} "
        f"WHERE v.compared IS NOT NULL AND CAST(j.value AS BIGINT) != v.task_id "
        f"UNION ALL SELECT v.task_type, v.model, o.id FROM v JOIN tasks o ON o.group_id = v.group_id "
        f"AND o.id != v.task_id WHERE v.compared IS NULL AND COALESCE(v.group_id, '') != '') "
        f"SELECT beaten.task_type, beaten.a, b.model AS b, 1.0 AS score, 'vote' AS kind, COUNT(*) AS n "
        f"FROM beaten JOIN tasks b ON b.id = beaten.l WHERE b.status = '{lifecycle.SUCCEEDED}' "
        f"AND b.task_type = beaten.task_type AND b.model != beaten.a AND {where_b} GROUP BY 1, 2, 3")
    ratings = (
        f"WITH rated AS MATERIALIZED (SELECT r.task_id, r.reviewer, r.rating, a.task_type, a.model, a.group_id "
        f"FROM {REVIEW_ROWS} r CROSS JOIN tasks a "
        f"WHERE a.id = r.task_id AND r.rating IS NOT NULL AND {mine} AND {where_a}), "
        # Pairs from one group's rated tasks (by the indexes of groups and of reviews: SQLite's
        # planner put no index on `rated`, and joined it to itself row by row), and from the ids a
        # vote was made among.
        f"pairs(reviewer, a, b) AS (SELECT x.reviewer, x.task_id, o.id FROM rated x "
        f"CROSS JOIN tasks o CROSS JOIN {REVIEW_ROWS} y "
        f"WHERE o.group_id = x.group_id AND o.id > x.task_id AND y.task_id = o.id AND y.reviewer = x.reviewer "
        f"AND COALESCE(x.group_id, '') != '' AND y.rating IS NOT NULL "
        f"UNION SELECT r.reviewer, CAST(j.value AS BIGINT), CAST(k.value AS BIGINT) "
        f"FROM {REVIEW_ROWS} r, {rated_among[0]}, {rated_among[1]} "
        f"WHERE r.compared IS NOT NULL AND {mine} AND CAST(k.value AS BIGINT) > CAST(j.value AS BIGINT)) "
        f"SELECT ra.task_type, ra.model AS a, rb.model AS b, "
        f"CASE WHEN ra.rating > rb.rating THEN 1.0 WHEN ra.rating = rb.rating THEN 0.5 ELSE 0.0 END AS score, "
        # CROSS JOIN keeps this order on SQLite: from the few pairs to their rated tasks.
        f"'rating' AS kind, COUNT(*) AS n FROM pairs p CROSS JOIN rated ra CROSS JOIN rated rb "
        f"WHERE ra.task_id = p.a AND ra.reviewer = p.reviewer AND rb.task_id = p.b AND rb.reviewer = p.reviewer "
        f"AND ra.task_type = rb.task_type AND ra.model != rb.model GROUP BY 1, 2, 3, 4")
    return pd.concat([_sql(store, votes, [*who, *params_a, *params_b]),
                      _sql(store, ratings, [*who, *params_a, *who])], ignore_index=True)


# ---------------------------------------------------------------- pandas and numpy on top

def _percentile(hist: pd.DataFrame, q: float) -> pd.Series:
    """The nearest-rank q-quantile of each (task_type, model) histogram of seconds."""
    if hist.empty:
        return pd.Series(dtype=float)
    hist = hist.sort_values(["task_type", "model", "s"])
    keys = [hist["task_type"], hist["model"]]
    reached = hist["n"].groupby(keys).cumsum() >= q * hist["n"].groupby(keys).transform("sum")
    return hist[reached].groupby(["task_type", "model"])["s"].first()


def bradley_terry(wins: np.ndarray, prior: float = PRIOR_GAMES,
                  iterations: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Bradley–Terry log-strengths and their standard errors from `wins[i, j]`, how often model i
    beat model j (halves for ties). Fitted with the MM algorithm (Hunter 2004); each model also
    plays `prior` wins and `prior` losses against a fixed typical model (log-strength 0), which
    keeps an undefeated or unbeaten model finite. The log-strengths are returned centred (0 is
    the average of these models) with their errors relative to that average, from the observed
    information (the Hessian of the log-likelihood in log-strength): a shift of the whole scale
    is no uncertainty of a ranking."""
    games = wins + wins.T
    won = wins.sum(axis=1) + prior
    strength = np.ones(len(wins))
    for _ in range(iterations):
        pair = strength[:, None] + strength[None, :]
        updated = won / ((games / pair).sum(axis=1) + 2 * prior / (strength + 1))
        done = np.max(np.abs(np.log(updated) - np.log(strength))) < 1e-9
        strength = updated
        if done:
            break
    pair = strength[:, None] + strength[None, :]
    cross = games * np.outer(strength, strength) / pair ** 2
    info = -cross
    np.fill_diagonal(info, cross.sum(axis=1) - np.diag(cross) + 2 * prior * strength / (strength + 1) ** 2)
    centre = np.eye(len(wins)) - 1 / len(wins)
    covariance = centre @ np.linalg.inv(info) @ centre.T
    return centre @ np.log(strength), np.sqrt(np.clip(np.diag(covariance), 0, None))


def _strengths(judged: pd.DataFrame) -> pd.DataFrame:
    """Per model of one task type: BT score and 95 % interval, judgements, Compare win rate."""
    both = pd.concat([judged.assign(model=judged["a"], other=judged["b"], won=judged["score"] * judged["n"]),
                      judged.assign(model=judged["b"], other=judged["a"], won=(1 - judged["score"]) * judged["n"])])
    models = sorted(set(both["model"]))
    wins = (both.pivot_table(index="model", columns="other", values="won", aggfunc="sum", fill_value=0.0)
            .reindex(index=models, columns=models, fill_value=0.0).to_numpy(dtype=float))
    theta, error = bradley_terry(wins)
    votes = both[both["kind"] == "vote"].groupby("model")[["won", "n"]].sum()
    frame = pd.DataFrame({"model": models, "bt_score": 1000 + ELO * theta,
                          "bt_low": 1000 + ELO * (theta - Z95 * error), "bt_high": 1000 + ELO * (theta + Z95 * error),
                          "comparisons": both.groupby("model")["n"].sum().reindex(models).to_numpy()})
    frame["votes"] = votes["n"].reindex(models, fill_value=0).to_numpy()
    frame["win_rate"] = (votes["won"] / votes["n"]).reindex(models).to_numpy()
    return frame


def _failures(outcomes: pd.DataFrame) -> pd.Series:
    """Each model's most common failure codes: `CODE ×3, OTHER ×1`."""
    failed = outcomes[(outcomes["status"] == lifecycle.FAILED) & outcomes["failure_code"].notna()]
    if failed.empty:
        return pd.Series(dtype=str)
    failed = (failed.groupby(["task_type", "model", "failure_code"])["n"].sum().reset_index()
              .sort_values(["task_type", "model", "n", "failure_code"], ascending=[True, True, False, True]))
    failed = failed.groupby(["task_type", "model"]).head(TOP_FAILURES)
    text = failed["failure_code"].astype(str) + " ×" + failed["n"].astype(str)
    return text.groupby([failed["task_type"], failed["model"]]).agg(", ".join)


def standing(rank: float | None, comparisons: int) -> str:
    if rank is not None and not pd.isna(rank):
        return f"#{int(rank)}"
    return f"not ranked ({int(comparisons)} comparison{'s' if comparisons != 1 else ''}, needs {MIN_COMPARISONS})"


def board(store: Store, filters: Filters = Filters()) -> dict[str, pd.DataFrame]:
    """For each task type with a task or a judgement in view (in the catalog's order): a frame of
    `COLUMNS`, one row per model, ranked ones first by BT score, then the rest by tasks run."""
    outcomes = _outcomes(store, filters)
    keys = ["task_type", "model"]
    runs = outcomes.groupby(keys)["n"].sum().rename("tasks")
    succeeded = outcomes[outcomes["status"] == lifecycle.SUCCEEDED].groupby(keys)["n"].sum()
    finished = outcomes[outcomes["status"].isin(lifecycle.TERMINAL)].groupby(keys)["n"].sum()
    table = pd.DataFrame({"tasks": runs, "success_rate": succeeded.reindex(runs.index, fill_value=0)
                          / finished.reindex(runs.index)}, index=runs.index)
    table["failures"] = _failures(outcomes).reindex(table.index)
    durations = _durations(store, filters)
    for column, kind, q in (("median_s", "total", 0.5), ("p90_s", "total", 0.9), ("queue_median_s", "queue", 0.5)):
        table[column] = _percentile(durations[durations["kind"] == kind], q).reindex(table.index)
    costs = _costs(store, filters).set_index(keys).reindex(table.index)
    units = pd.Series([unit_of(k) for k, _ in table.index], index=table.index, dtype=object)
    table["unit"] = units
    per_second = costs["second_credits"] / costs["seconds"].where(costs["seconds"] > 0)
    per_image = costs["image_credits"] / costs["images"].where(costs["images"] > 0)
    table["credits_per_unit"] = per_second.where(units == "second", per_image)
    table = table.join(_ratings(store, filters).set_index(keys), how="outer")
    judged = _judgements(store, filters)
    boards = {}
    order = {t.key: i for i, t in enumerate(catalog.TASK_TYPES)}  # the sidebar's order
    for task_type in sorted(set(table.index.get_level_values(0)) | set(judged["task_type"]),
                            key=lambda k: (order.get(k, len(order)), k)):
        rows = table.xs(task_type, level=0) if task_type in table.index.get_level_values(0) else pd.DataFrame()
        mine = judged[judged["task_type"] == task_type]
        frame = rows.reset_index().rename(columns={"index": "model"}) if not rows.empty else pd.DataFrame(
            columns=["model"])
        if not mine.empty:
            frame = frame.merge(_strengths(mine), on="model", how="outer")
        frame = frame.reindex(columns=list(COLUMNS))
        frame["unit"] = frame["unit"].fillna(unit_of(task_type))
        frame[["tasks", "comparisons", "votes", "rating_count"]] = (
            frame[["tasks", "comparisons", "votes", "rating_count"]].fillna(0).astype(int))
        eligible = frame["comparisons"] >= MIN_COMPARISONS
        frame.loc[eligible, "rank"] = frame.loc[eligible, "bt_score"].rank(ascending=False, method="min")
        frame["standing"] = [standing(r, c) for r, c in zip(frame["rank"], frame["comparisons"])]
        frame = frame.sort_values(["rank", "tasks", "model"], ascending=[True, False, True], na_position="last")
        boards[task_type] = frame.reset_index(drop=True)
    return boards


def teammates(store: Store) -> list[str]:
    """Every name recorded on a task or a review (indexed columns), "" for the nameless."""
    reviewers = store.conn.execute(f"SELECT DISTINCT reviewer FROM {REVIEW_ROWS}")
    return sorted(set(queries.distinct_values(store, "teammate")) | {r[0] for r in reviewers})


def ratios() -> list[str]:
    """Every aspect ratio a model of the catalog offers: the ratio filter's choices."""
    return sorted({r for t in catalog.TASK_TYPES for m in t.models for r in m.ratios},
                  key=lambda r: tuple(int(p) if p.isdigit() else 0 for p in r.split(":")))
