"""Shared page furniture, split by job into the modules of this package (in progress: all of it
is still in `widgets`). The names pages and other modules use are re-exported here."""
from lib.ui.widgets import (COMPARE_PAGE, HISTORY_PAGE, ID_MAX, NAME_MAX, PAGE_FILES, SPEND_PAGE, TASK_PAGE,
                            Context, _toggle_pick, age, badge_markdown, credits_text, in_address, link,
                            organization, organization_problem, parse_id, plain, quoted, redraw_on_change,
                            refresh_interval_ms, script_text, setup_page, show_failure, show_output,
                            show_progress, task_actions, task_card, task_heading, task_link, task_news,
                            task_title)
