"""Shared page furniture: what every page calls first and the pieces that show a task; the pages hold
layout only. One job a module:

- `page`: every page's set-up (config, password, backend, store, poller) and its caches.
- `nav`: the page files and their addresses, links that keep the session, address-kept widgets, the sidebar.
- `teammate`: the name every task is recorded under, and the cookie that remembers it.
- `text`: text as pages show it (untrusted text made plain, ids from an address, status, age, cost).
- `widgets`: the pieces that show a task (heading, outputs, progress, failure, card, its buttons).
- `actions`: what those buttons do (cancel, re-run, remove, pick for Compare), as callbacks.
- `redraw`: keeping a page live, and the news of the teammate's own tasks (toasts, the tab title).
- `account`: the organization's credit balance and limits, as the API reports them.

The names used outside the package are re-exported here (`ui.setup_page`, `from lib.ui import plain`).
Modules of the package import each other directly, never through `lib.ui`.
"""
from lib.ui.account import organization, organization_problem
from lib.ui.actions import toggle_pick
from lib.ui.nav import COMPARE_PAGE, HISTORY_PAGE, PAGE_FILES, SPEND_PAGE, TASK_PAGE, in_address, link
from lib.ui.page import Context, setup_page
from lib.ui.redraw import redraw_on_change, refresh_interval_ms, task_news
from lib.ui.teammate import NAME_MAX
from lib.ui.text import ID_MAX, age, badge_markdown, credits_text, parse_id, plain, quoted, script_text, task_title
from lib.ui.widgets import show_failure, show_output, show_progress, task_actions, task_card, task_heading, task_link

__all__ = [
    "COMPARE_PAGE", "HISTORY_PAGE", "ID_MAX", "NAME_MAX", "PAGE_FILES", "SPEND_PAGE", "TASK_PAGE", "Context", "age",
    "badge_markdown", "credits_text", "in_address", "link", "organization", "organization_problem", "parse_id",
    "plain", "quoted", "redraw_on_change", "refresh_interval_ms", "script_text", "setup_page", "show_failure",
    "show_output", "show_progress", "task_actions", "task_card", "task_heading", "task_link", "task_news",
    "task_title", "toggle_pick",
]
