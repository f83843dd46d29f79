"""The task lifecycle: the dashboard's five states and how Runway's own status
vocabulary maps onto them (docs/runway-api.md §8).

Runway answers PENDING, THROTTLED, RUNNING, SUCCEEDED, FAILED or CANCELLED; the
user's spec says PENDING, PROCESSING, SUCCEEDED, FAILED, CANCELLED. Both are
accepted. An unknown status is never an error: it is kept raw and treated as
not finished.
"""
from __future__ import annotations

PENDING = "PENDING"
PROCESSING = "PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

STATES = (PENDING, PROCESSING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
UNFINISHED = (PENDING, PROCESSING)

# Raw API status -> lifecycle status.
_FROM_API = {
    "PENDING": PENDING,
    "THROTTLED": PENDING,
    "QUEUED": PENDING,
    "RUNNING": PROCESSING,
    "PROCESSING": PROCESSING,
    "SUCCEEDED": SUCCEEDED,
    "FAILED": FAILED,
    "CANCELLED": CANCELLED,
}

# Statuses only move forward: a reading of lower rank than the stored one is ignored.
_RANK = {PENDING: 0, PROCESSING: 1, SUCCEEDED: 2, FAILED: 2, CANCELLED: 2}


def from_api(raw: str | None) -> str:
    """The lifecycle status for a raw API status; unknown values count as PENDING."""
    return _FROM_API.get((raw or "").upper(), PENDING)


def is_known(raw: str | None) -> bool:
    return (raw or "").upper() in _FROM_API


def is_terminal(status: str | None) -> bool:
    return status in TERMINAL


def moves_forward(current: str | None, new: str) -> bool:
    """Whether `new` may replace `current`: never out of a terminal state, never backwards."""
    if current is None:
        return True
    if current in TERMINAL:
        return False
    return _RANK[new] >= _RANK[current]


def retry_allowed(failure_code: str | None) -> bool:
    """Safety rejections are not offered for retry (docs/runway-api.md §4, failure codes)."""
    code = (failure_code or "").upper()
    return not (code.startswith("SAFETY.") or code == "INPUT_PREPROCESSING.SAFETY.TEXT")
