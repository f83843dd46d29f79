"""The teammate's name, which every task is recorded under: the sidebar's input, and the cookie
that lets this browser remember it."""
from __future__ import annotations

from urllib.parse import unquote

import streamlit as st

from lib.ui.text import script_text

NAME_COOKIE = "dashboard_teammate"
NAME_COOKIE_DAYS = 400  # the longest a browser keeps a cookie
NAME_MAX = 200  # characters of a name taken from a cookie, which anything on this host could set


def remembered_name() -> str:
    """The name this browser was last given, from its cookie (sent when the session opened)."""
    value = st.context.cookies.get(NAME_COOKIE)
    # Not a string where no browser is behind the session (AppTest): nothing is remembered there.
    return unquote(value).strip()[:NAME_MAX] if isinstance(value, str) else ""


def run_in_page(script: str) -> None:
    """Run the dashboard's own `script` in the page, from an element of no height; one whose text
    is unchanged since the last run is not run again. Anything typed or read that goes into it is
    a `script_text` literal, which cannot end the script."""
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def _remember_name(name: str) -> None:
    """Store the name in this browser's cookie, or forget it when emptied. Streamlit only reads
    cookies, so a script in the page writes it, on every rerun from then on (it runs once).
    Not HttpOnly: a name is no secret, and the password's cookie is another one."""
    age = NAME_COOKIE_DAYS * 86400 if name else 0
    run_in_page(f"document.cookie = '{NAME_COOKIE}=' + encodeURIComponent({script_text(name)}) + "
                f"'; path=/; max-age={age}; SameSite=Strict';")


def name_input() -> str:
    """The teammate's name. Kept in the session (across pages), in this browser (a cookie, across
    visits and new tabs) and in the address (across reloads and bookmarks). A name this session or
    this browser already has wins over the address, so a teammate's shared link cannot make
    someone submit under the teammate's name; only a browser with no name yet takes it."""
    remembered = remembered_name()
    own = st.session_state.get("teammate", remembered)
    from_address = st.query_params.get("teammate", "")
    if from_address and not own:
        st.session_state["teammate_from_address"] = True
    entered = st.text_input("Your name", value=own or from_address, key="teammate_input",
                            on_change=st.session_state.pop, args=("teammate_from_address", None),
                            help="Recorded on every task you submit; this browser remembers it.").strip()
    if entered != remembered or st.session_state.get("name_written"):
        # Drawn on every rerun from then on, unchanged unless the name is: one that vanished
        # on the next rerun could go before its script had run.
        _remember_name(entered)
        st.session_state["name_written"] = True
    if entered and st.session_state.get("teammate_from_address"):
        st.caption("Name taken from the page address; change it if it is not yours.")
    st.session_state["teammate"] = entered
    if from_address != entered:
        st.query_params["teammate"] = entered
    return entered
