"""The organization's account as the API reports it: the credit balance and per-model limits, read
at most every 30 s, or why it could not be read."""
from __future__ import annotations

import streamlit as st

from lib.backend import Backend
from lib.client import RunwayError


@st.cache_data(ttl=30, show_spinner=False)
def _organization(backend_name: str, _backend: Backend) -> dict | str:
    try:
        with _backend.client() as client:
            return client.organization()
    except RunwayError as exc:
        return exc.user_message


def _is_organization(answer: dict | str) -> bool:
    # Everything shown of the answer hangs on the balance being a number; the API is not trusted to send one.
    balance = answer.get("creditBalance") if isinstance(answer, dict) else None
    return isinstance(balance, (int, float)) and not isinstance(balance, bool)


def organization(backend: Backend) -> dict | None:
    """The credit balance (a number) and per-model limits, read at most every 30 s; None if the API
    cannot say."""
    answer = _organization(backend.name, backend)
    return answer if _is_organization(answer) else None


def organization_problem(backend: Backend) -> str | None:
    """Why the organization could not be read (a rejected key, say), in words for people; None if it was."""
    answer = _organization(backend.name, backend)
    if isinstance(answer, str):
        return answer
    return None if _is_organization(answer) else "The API's answer about the organization has no credit balance."
