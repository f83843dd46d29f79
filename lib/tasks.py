"""Acting on a task: submitting it, and cancelling, re-running and removing it.

Submitting validates against the catalog, records the row, calls the API and
records what happened: the one path every page and test goes through (a
re-run goes through it too, linked to the original).

A task Runway has created is billed, so its id is never lost to a full disk:
nothing is sent while the database's disk is nearly full, and an id the
database cannot take is kept in the store's created log and shown to the user.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from lib import archive, catalog, lifecycle, settings
from lib.backend import Backend
from lib.client import BadRequest, CreateOutcomeUnknown, RunwayError
from lib.media import MB
from lib.store import SUBMITTED, Store
from lib.store.connect import UnreachableDatabase

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    task_id: int | None = None  # the store's row id, when a row was written
    issues: list[catalog.Issue] = field(default_factory=list)  # problems per field; nothing was sent
    error: str | None = None  # what the API said, in words a user can act on

    @property
    def ok(self) -> bool:
        return self.task_id is not None and not self.issues and self.error is None


def submit_task(store: Store, backend: Backend, *, task_type: str, model_id: str, inputs: dict,
                teammate: str = "", group_id: str | None = None, parent_task_id: int | None = None,
                client=None) -> SubmitResult:
    """Create one task. Invalid inputs are reported and nothing is sent or stored."""
    model = catalog.find_model(task_type, model_id)
    body = catalog.build_body(model, inputs)
    issues = catalog.validate_request(model, body)
    if issues:
        return SubmitResult(issues=issues)
    try:  # read before anything is sent: a bad value stops here, with what to fix
        first_poll_in, needed = settings.poll_interval(), settings.min_free_bytes()
    except settings.SettingError as exc:
        return SubmitResult(error=f"Nothing was sent: {exc} Fix the setting and restart the dashboard.")
    # The disk must keep room for the row, its events, stashed inputs (up to 5 MB each) and the log.
    free = store.free_bytes()
    if free < needed:
        return SubmitResult(error=(
            f"Nothing was sent: the disk that holds the dashboard's database has {free / MB:.0f} MB free, "
            f"under the {needed / MB:.0f} MB it keeps so that every task Runway creates can be recorded "
            f"(DASHBOARD_MIN_FREE_MB). Free some space and submit again."))
    try:
        task_id = store.record_submission(
            backend=backend.name, task_type=task_type, model=model.id, endpoint=model.endpoint, body=body,
            teammate=teammate, group_id=group_id, parent_task_id=parent_task_id,
            estimated_credits=catalog.estimate_credits(model, body))
    except UnreachableDatabase as exc:
        return SubmitResult(error=f"Nothing was sent: the dashboard could not record the task ({_reason(exc)}). "
                                  "Submit again in a moment.")
    except (sqlite3.OperationalError, OSError) as exc:
        return SubmitResult(error=f"Nothing was sent: the dashboard could not record the task ({_reason(exc)}). "
                                  "Free some disk space and submit again.")
    own_client = client is None
    client = client or backend.client()
    try:
        created = client.create_task(model.endpoint, body)
    except BadRequest as exc:
        _not_created(store, task_id, unknown=False, message=exc.user_message)
        api_issues = [catalog.Issue(".".join(str(p) for p in i.get("path") or []) or "request",
                                    i.get("message", "")) for i in exc.issues]
        return SubmitResult(task_id=task_id, issues=api_issues, error=exc.user_message)
    except CreateOutcomeUnknown as exc:
        _not_created(store, task_id, unknown=True, message=exc.user_message)
        return SubmitResult(task_id=task_id, error=exc.user_message)
    except RunwayError as exc:
        _not_created(store, task_id, unknown=False, message=exc.user_message)
        return SubmitResult(task_id=task_id, error=exc.user_message)
    finally:
        if own_client:
            client.close()
    try:
        if store.record_created(task_id, created.id, created.estimated_credits, first_poll_in=first_poll_in):
            return SubmitResult(task_id=task_id)
    except OSError as exc:
        log.error("Runway created task %s for task #%s; neither the database nor %s could record it (%s)",
                  created.id, task_id, store.created_log.name, exc.strerror)
        return SubmitResult(task_id=task_id, error=(
            f"Runway created this task (Runway task id {created.id}; it is billed), but the dashboard could not "
            f"record it anywhere ({_reason(exc)}). Note the Runway task id, and free some disk space."))
    return SubmitResult(task_id=task_id, error=(
        f"Runway created this task (Runway task id {created.id}; it is billed), but the dashboard's database "
        f"could not record it yet: its disk is full. The id is kept in a file beside the database, and the task "
        f"is followed as soon as the database can be written again; free some disk space."))


def _not_created(store: Store, task_id: int, *, unknown: bool, message: str) -> None:
    """Record that no task was created; a row a full disk keeps "submitting" is settled later."""
    try:
        store.mark_not_created(task_id, unknown=unknown, message=message)
    except sqlite3.OperationalError as exc:
        log.warning("task #%s: could not record that it was not created (%s)", task_id, exc)


def _reason(exc: Exception) -> str:
    """What went wrong, without the server's file paths an OSError's text carries."""
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


# ---------------------------------------------------------------- actions on a created task

class ActionRefused(Exception):
    """An action that cannot be done, with the reason in words a user can act on."""


def can_cancel(task: dict) -> bool:
    return (task["status"] in lifecycle.UNFINISHED and task.get("submit_state") == SUBMITTED
            and bool(task.get("task_uuid")) and not task.get("cancel_requested_at"))


def can_rerun(task: dict) -> bool:
    """Finished tasks may run again, except safety rejections (the same inputs would be refused again)."""
    if not lifecycle.is_terminal(task["status"]) or not lifecycle.retry_allowed(task.get("failure_code")):
        return False
    try:
        catalog.find_model(task["task_type"], task["model"])
    except KeyError:
        return False
    return True


def can_remove(task: dict) -> bool:
    """Only finished tasks: an unfinished one would keep running, unseen; cancel it first."""
    return lifecycle.is_terminal(task["status"])


def cancel(store: Store, backend: Backend, task_id: int, teammate: str = "") -> None:
    """Ask Runway to cancel the task. The poller then reads it again at once and records
    CANCELLED, or whatever state it reached first."""
    task = store.task(task_id)
    if task is None or not can_cancel(task):
        raise ActionRefused(f"Task #{task_id} cannot be cancelled: it has finished, was never created, "
                            "or a cancel is already on its way.")
    if task["backend"] != backend.name:
        raise ActionRefused(f"Task #{task_id} belongs to {task['backend']}; the dashboard now uses "
                            f"{backend.label}, so it cannot cancel it.")
    try:
        with backend.client() as client:
            client.cancel_task(task["task_uuid"])
    except RunwayError as exc:
        raise ActionRefused(exc.user_message) from exc
    store.mark_cancel_requested(task_id, "cancel requested" + (f" by {teammate}" if teammate else ""))


def rerun(store: Store, backend: Backend, task_id: int, teammate: str = "") -> SubmitResult:
    """Submit the task again with the same inputs, as a child of the original, in the same group."""
    task = store.task(task_id)
    if task is None or not can_rerun(task):
        raise ActionRefused(f"Task #{task_id} cannot be re-run: it is unfinished, or its inputs were "
                            "refused by Runway's safety checks.")
    try:
        request = store.restore_request(task["request"])
    except OSError as exc:
        raise ActionRefused(f"An uploaded input of task #{task_id} is no longer stored; "
                            "submit it again from its page.") from exc
    inputs = {k: v for k, v in request.items() if k != "model"}
    return submit_task(store, backend, task_type=task["task_type"], model_id=task["model"], inputs=inputs,
                       teammate=teammate, group_id=task.get("group_id"), parent_task_id=task_id)


def remove(store: Store, task_id: int, static_dir: Path = archive.STATIC_DIR, teammate: str = "") -> int:
    """Remove a finished task from the history: hidden from every page, still counted in the
    record of spend (the CSV of all rows lists it, marked removed, with its credits). Its own
    archived files (and their posters) are deleted; returns how many outputs' files went. A file
    another task's output also uses stays; so does an uploaded input another task uses."""
    task = store.task(task_id)
    if task is None or task.get("removed_at"):
        return 0
    if not can_remove(task):
        raise ActionRefused(f"Task #{task_id} is still running; cancel it before removing it.")
    return sum(archive.delete_archived(path, static_dir) for path in store.remove_task(task_id, teammate))
