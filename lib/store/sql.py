"""The SQL pieces that queries of the store and of the pages share, each written once: one
placeholder per value of a list, and the condition that keeps removed tasks out of view."""
from __future__ import annotations

from collections.abc import Sized


def placeholders(values: Sized) -> str:
    """`?, ?, ?`: one placeholder per value, for `IN (...)`."""
    return ", ".join("?" * len(values))


def in_view(alias: str = "") -> str:
    """SQL: the task (`alias.id`) is not removed from the history. Measured at 100,000 tasks, a
    last page of History took 51 ms with `removed_at IS NULL` (a row read per task skipped) and
    6 ms like this; counting every task 24 ms and 4 ms."""
    return f"{alias + '.' if alias else ''}id NOT IN (SELECT id FROM tasks WHERE removed_at IS NOT NULL)"
