"""The task store: one SQLite file that holds every task the team submitted, its request, its
lifecycle, its outputs and their archived copies. The names the rest of the dashboard uses."""
from lib.store.db import (
    OUT_ARCHIVED,
    OUT_AT_RISK,
    OUT_PENDING,
    OUTCOME_UNKNOWN_CODE,
    REJECTED,
    REJECTED_CODE,
    REVIEW_ROWS,
    STASH_PREFIX,
    SUBMIT_PENDING,
    SUBMITTED,
    UNKNOWN,
    Store,
    TaskUpdate,
    in_view,
    input_digest,
    migrations,
    stashed,
    team_review,
    utcnow,
)

__all__ = [
    "OUT_ARCHIVED", "OUT_AT_RISK", "OUT_PENDING", "OUTCOME_UNKNOWN_CODE", "REJECTED", "REJECTED_CODE", "REVIEW_ROWS",
    "STASH_PREFIX", "SUBMIT_PENDING", "SUBMITTED", "UNKNOWN", "Store", "TaskUpdate", "in_view", "input_digest",
    "migrations", "stashed", "team_review", "utcnow",
]
