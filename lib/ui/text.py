"""Text as the pages show it: untrusted text made plain inside markdown (`plain`, `quoted`), ids
read from an address, and a task's title, age, status badge and cost in words. No widgets here."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from lib import lifecycle

BADGE_COLOURS = {
    lifecycle.PENDING: "gray",
    lifecycle.PROCESSING: "blue",
    lifecycle.SUCCEEDED: "green",
    lifecycle.FAILED: "red",
    lifecycle.CANCELLED: "orange",
}


# Where GitHub-flavoured markdown would make a link out of bare text: `www.`, `http(s)://` and an
# e-mail's `@` (which `mailto:` needs too). Streamlit finds these in the text after markdown
# escapes are undone, so escaping alone does not stop them; an invisible word joiner does.
_AUTOLINK = re.compile(r"(?i)www(?=\.)|:/(?=/)|@")
WORD_JOINER = "\u2060"


def plain(text: str | None) -> str:
    """Text shown as written inside markdown: no character of it becomes markup, a link or an image.
    Markdown and HTML characters are escaped; a word joiner, which shows as nothing, goes where a
    bare address would otherwise become a link (copied text keeps it). Text that stands alone is
    shown with st.text instead, which is exact."""
    unlinked = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, text or "")
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])", r"\\\1", unlinked)


# The ids a page address can name: SQLite's integers are 64-bit, and ids start at 1.
ID_MAX = 2 ** 63 - 1


def parse_id(text: str | None) -> int | None:
    """A task or output number from a page address, or None if the text is not one."""
    if not text or not re.fullmatch(r"[0-9]{1,19}", text):
        return None
    number = int(text)
    return number if 1 <= number <= ID_MAX else None


def quoted(text: str, limit: int = 40) -> str:
    """Something a visitor typed, shortened and made safe to repeat back on the page."""
    return plain(text if len(text) <= limit else text[:limit] + "…")


def age(iso: str | None) -> str:
    if not iso:
        return ""
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # a page redraws at least once a minute: seconds would go stale


def status_label(task: dict) -> str:
    """The lifecycle status with what Runway's raw status adds: throttled, progress, a cancel on its way."""
    status = task["status"]
    label = status
    if task.get("cancel_requested_at") and not lifecycle.is_terminal(status):
        label += " · cancelling"
    elif task.get("api_status") == "THROTTLED":
        label += " · throttled"
    elif task.get("api_status") and not lifecycle.is_known(task["api_status"]):
        label += f" · {task['api_status']}"  # before the progress, which is from an older answer
    elif status == lifecycle.PROCESSING and task.get("progress") is not None:
        label += f" · {task['progress']:.0%}"
    return label


def badge_markdown(task: dict) -> str:
    return f":{BADGE_COLOURS.get(task['status'], 'gray')}-badge[{plain(status_label(task))}]"


def task_title(task: dict) -> str:
    """`#12 · Text to video · gen4.5` in bold markdown, for a heading. A link to the task is
    `task_link`, never markdown (a markdown link opens a new tab, a new session without the name)."""
    return f"**#{task['id']} · {task['task_type'].replace('_', ' ').capitalize()} · {plain(task['model'])}**"


def credits_text(task: dict) -> str:
    """What the task cost: what Runway charged once it says so, else the estimate while it may still
    be charged. A failed or cancelled task without a cost was charged nothing, so it never shows
    its estimate as if it had been spent."""
    if task.get("cost_credits") is not None:
        return f"{task['cost_credits']:g} credits charged"
    if task["status"] in (lifecycle.FAILED, lifecycle.CANCELLED):
        return "0 credits charged"
    if task.get("estimated_credits") is not None:
        return f"{task['estimated_credits']:g} credits (est.)"
    return ""


def script_text(text: str) -> str:
    """A JavaScript string literal of `text` that cannot close the script it stands in."""
    return json.dumps(text).replace("<", "\\u003c")
