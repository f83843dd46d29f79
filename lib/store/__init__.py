"""The task store: one SQLite file that holds every task the team submitted, its request, its
lifecycle, its outputs and their archived copies. Its schema and migrations (`schema`), the input
stash beside it (`stash`), the SQL pieces queries share (`sql`) and `Store`, its reads and writes
(`db`); here, the names the rest of the dashboard imports from `lib.store`."""
import sys

# sqlite-utils imports pandas at import time, only to map pandas' column types, and pandas 3
# brings pyarrow: about 70 MB in every process that opens the store, the Streamlit server
# included, for nothing the dashboard uses. Hidden while sqlite-utils loads, before any module of
# the store imports it (sqlite-utils then treats pandas as absent); anyone may import pandas later.
if "pandas" not in sys.modules and "sqlite_utils" not in sys.modules:
    sys.modules["pandas"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]

from lib.store.db import OUTCOME_UNKNOWN_CODE, REJECTED_CODE, Store, TaskUpdate, team_review, utcnow
from lib.store.schema import (
    OUT_ARCHIVED,
    OUT_AT_RISK,
    OUT_PENDING,
    REJECTED,
    REVIEW_ROWS,
    SUBMIT_PENDING,
    SUBMITTED,
    UNKNOWN,
    migrations,
)
from lib.store.sql import in_view, placeholders
from lib.store.stash import STASH_PREFIX, input_digest, stashed

__all__ = [
    "OUTCOME_UNKNOWN_CODE", "OUT_ARCHIVED", "OUT_AT_RISK", "OUT_PENDING", "REJECTED", "REJECTED_CODE",
    "REVIEW_ROWS", "STASH_PREFIX", "SUBMITTED", "SUBMIT_PENDING", "UNKNOWN", "Store", "TaskUpdate", "in_view",
    "input_digest", "migrations", "placeholders", "stashed", "team_review", "utcnow",
]
