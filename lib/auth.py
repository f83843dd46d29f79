"""The optional team password: when DASHBOARD_PASSWORD is set (in the
environment or as a top-level key of `.streamlit/secrets.toml`), every page
asks for it before it draws anything else.

A correct entry is remembered in the browser tab's session, so one entry
serves every page until the tab is closed or the server restarts. The session
keeps a keyed fingerprint of the password, never the password, so changing
it in secrets.toml locks every open session again. The password is compared
in constant time and is never logged, echoed back or kept in a widget.

What the gate cannot cover: Streamlit serves `./static` (the archived outputs)
at `/app/static/<name>` without running any page. Those names are random
(24 URL-safe characters, 144 bits), so nobody can guess or list them, but a
link to an archived file works for whoever has it.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time

import streamlit as st

PASSWORD_VARIABLE = "DASHBOARD_PASSWORD"
WRONG_PASSWORD_DELAY = 1.0  # seconds: makes guessing slow without bothering someone who mistyped
_UNLOCKED = "_dashboard_unlocked"
_PROCESS_KEY = secrets.token_bytes(32)  # fingerprints are worthless outside this server process


def configured_password() -> str:
    """The password the dashboard asks for; empty when there is none."""
    try:
        st.secrets.load_if_toml_exists()  # exports secrets.toml's top-level keys to the environment
    except Exception:  # a malformed secrets.toml is reported by the page set-up, not here
        pass
    return os.environ.get(PASSWORD_VARIABLE, "")


def _fingerprint(password: str) -> str:
    return hmac.new(_PROCESS_KEY, password.encode(), hashlib.sha256).hexdigest()


def password_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def require_password() -> None:
    """Stop the page here, showing only a password field, unless this session has entered the password."""
    expected = configured_password()
    if not expected:
        return
    if hmac.compare_digest(st.session_state.get(_UNLOCKED, ""), _fingerprint(expected)):
        return
    st.title("🔒 Runway task dashboard")
    # Cleared on submit: a wrong password is not sent back to the browser in the field.
    with st.form("password_gate", clear_on_submit=True):
        given = st.text_input("Password", type="password", key="_dashboard_password")
        submitted = st.form_submit_button("Enter", type="primary")
    if submitted and password_matches(given, expected):
        st.session_state[_UNLOCKED] = _fingerprint(expected)
        st.rerun()
    if submitted:
        time.sleep(WRONG_PASSWORD_DELAY)
        st.error("Wrong password. Ask a teammate for the dashboard's password.")
    else:
        st.caption("This dashboard is shared by a team; enter its password to continue.")
    st.stop()
