"""Dashboard pages run in this process under Streamlit's AppTest: a page opened as a browser
opens its address (the page's file by its path in the checkout, its query parameters, its first
run), and the process set up for such runs (its simulator, its database, quiet logs)."""
from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

from tests.support import ROOT


def open_page(path: str, *, timeout: float = 60, **query: str) -> AppTest:
    """`path` (e.g. "app.py", "pages/10_History.py") run once with `query` in its address."""
    at = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def use_simulator(state_dir) -> None:
    """Pages run in this process use the built-in simulator, its state under `state_dir`, never the live API."""
    os.environ.pop("RUNWAYML_API_SECRET", None)
    os.environ["SIMULATOR_STATE_DIR"] = str(state_dir)


def use_database(db_path) -> None:
    """Pages run in this process read `db_path` from now on, with nothing cached from an earlier one."""
    import streamlit as st

    os.environ["DASHBOARD_DB"] = str(db_path)
    st.cache_resource.clear()
    st.cache_data.clear()


def quiet_streamlit_logs() -> None:
    """Streamlit's loggers at ERROR, so AppTest runs outside a server print no warnings per run
    (importing AppTest, above, has made the loggers of the modules it runs pages with)."""
    import logging

    import streamlit.logger

    streamlit.logger.set_log_level(logging.ERROR)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
