"""Everything that is not page layout (design.md §1)."""
import sys

# sqlite-utils imports pandas at import time, only to map pandas' column types, and
# pandas 3 brings pyarrow: about 70 MB in every process that opens the store, the
# Streamlit server included, for nothing the dashboard uses. Hidden while
# sqlite-utils loads (it treats pandas as absent); anyone may import it later.
if "pandas" not in sys.modules and "sqlite_utils" not in sys.modules:
    sys.modules["pandas"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]
