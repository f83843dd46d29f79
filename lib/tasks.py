"""Submitting a task: validate against the catalog, record the row, call the
API, and record what happened. The one path every page and test goes through.

A task Runway has created is billed, so its id is never lost to a full disk:
nothing is sent while the database's disk is nearly full, and an id the
database cannot take is kept in the store's created log and shown to the user.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field

from lib import catalog, settings
from lib.backend import Backend
from lib.client import BadRequest, CreateOutcomeUnknown, RunwayError
from lib.media import MB
from lib.store import Store

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
    # The disk must keep room for the row, its events, stashed inputs (up to 5 MB each) and the log.
    free, needed = store.free_bytes(), settings.min_free_bytes()
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
        if store.record_created(task_id, created.id, created.estimated_credits, first_poll_in=settings.poll_interval()):
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
