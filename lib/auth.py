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

Guessing is limited for the whole team, not per browser tab: every wrong
password is a row in the database (shared by every app process on it), and
the gate checks a password only when the failures of the last WINDOW allow:
FREE_TRIES wrong entries cost nothing, each further one waits twice as long
as the one before (1 s, 2 s, 4 s ... 64 s after the latest), and LOCKOUT_AFTER
within WINDOW lock the gate for WINDOW after the last of them, refusing the
correct password too. Checks are taken one at a time under a file lock next
to the database, so a thousand parallel sessions get no more checks than one.
That is at most 10 guesses per 17 minutes, 850 a day, so a password of
four random words or 12 random characters outlasts any attacker. A wrong
password is logged with the time, the address it came from and the count,
never with what was typed.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import streamlit as st

from lib import settings
from lib.store import Store

log = logging.getLogger(__name__)

FREE_TRIES = 3  # wrong passwords that cost nothing: someone who mistyped twice is not slowed down
LOCKOUT_AFTER = 10  # wrong passwords within WINDOW that lock the gate
WINDOW = 15 * 60  # seconds: failures are counted over this long, and a lockout lasts this long
_UNLOCKED = "_dashboard_unlocked"
_PROCESS_KEY = secrets.token_bytes(32)  # fingerprints are worthless outside this server process


def configured_password() -> str:
    """The password the dashboard asks for; empty when there is none."""
    settings.load_secrets()  # a malformed secrets.toml is reported by the page set-up, not here
    return settings.password()


def _fingerprint(password: str) -> str:
    return hmac.new(_PROCESS_KEY, password.encode(), hashlib.sha256).hexdigest()


def password_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Answer:
    """What the gate made of one entry: `checked` is False when it was refused unread."""
    unlocked: bool
    checked: bool
    failures: int  # wrong passwords in the last WINDOW, this one included
    wait: float  # seconds before the next entry is checked; 0 when it is checked now
    locked_out: bool = False


def standing(store: Store, now: float | None = None) -> Answer:
    """The gate's state before anyone enters anything."""
    now = time.time() if now is None else now
    failures, latest = store.login_failures_since(now - WINDOW)
    if latest is None:
        return Answer(False, False, 0, 0.0)
    # A lockout lasts WINDOW from the failure that completed LOCKOUT_AFTER within WINDOW.
    burst, _ = store.login_failures_since(latest - WINDOW)
    if burst >= LOCKOUT_AFTER:
        return Answer(False, False, failures, max(0.0, latest + WINDOW - now), locked_out=latest + WINDOW > now)
    pause = 2.0 ** (failures - FREE_TRIES) if failures >= FREE_TRIES else 0.0
    return Answer(False, False, failures, max(0.0, latest + pause - now))


def try_password(store: Store, given: str, expected: str, client: str = "", now: float | None = None) -> Answer:
    """Check one entry if the team's recent failures allow it; record and log it if wrong."""
    # Every session of every process on this database takes its turn here (a file lock beside the
    # SQLite file, an advisory lock on PostgreSQL), so reading the count, checking and recording
    # the failure cannot interleave.
    with store.exclusive("password"):
        now = time.time() if now is None else now
        before = standing(store, now)
        if before.wait > 0:
            return before
        if password_matches(given, expected):
            return Answer(True, True, before.failures, 0.0)
        store.record_login_failure(now)
        store.forget_login_failures(now - 2 * WINDOW)  # a lockout looks back one WINDOW from the latest
        after = standing(store, now)
    at = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
    log.warning("wrong dashboard password at %s from %s: %d wrong in the last %d minutes", at,
                client or "an unknown address", after.failures, WINDOW // 60)
    return Answer(False, True, after.failures, after.wait, after.locked_out)


def _waiting_text(answer: Answer) -> str:
    if answer.locked_out:
        minutes = math.ceil(answer.wait / 60)
        return (f"Too many wrong passwords ({LOCKOUT_AFTER} within {WINDOW // 60} minutes): the dashboard is "
                f"locked for {minutes} more minute(s). Until then even the right password is refused.")
    return (f"Too many wrong passwords: the next one is checked in {math.ceil(answer.wait)} s. "
            "Until then even the right password is refused.")


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
    store = Store()
    try:
        client = st.context.ip_address or "this machine"
        answer = try_password(store, given, expected, client) if submitted else standing(store)
    finally:
        store.close()
    if answer.unlocked:
        st.session_state[_UNLOCKED] = _fingerprint(expected)
        st.rerun()
    if answer.checked:
        st.error("Wrong password. Ask a teammate for the dashboard's password.")
    if answer.wait > 0:
        (st.error if submitted and not answer.checked else st.warning)(_waiting_text(answer))
    elif not submitted:
        st.caption("This dashboard is shared by a team; enter its password to continue.")
    st.stop()
