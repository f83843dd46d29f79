"""Submitting a task: validate against the catalog, record the row, call the
API, and record what happened. The one path every page and test goes through.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lib import catalog
from lib.backend import Backend
from lib.client import BadRequest, CreateOutcomeUnknown, RunwayError
from lib.poller import POLL_INTERVAL
from lib.store import Store


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
    task_id = store.record_submission(
        backend=backend.name, task_type=task_type, model=model.id, endpoint=model.endpoint, body=body,
        teammate=teammate, group_id=group_id, parent_task_id=parent_task_id,
        estimated_credits=catalog.estimate_credits(model, body))
    own_client = client is None
    client = client or backend.client()
    try:
        created = client.create_task(model.endpoint, body)
    except BadRequest as exc:
        store.mark_not_created(task_id, unknown=False, message=exc.user_message)
        api_issues = [catalog.Issue(".".join(str(p) for p in i.get("path") or []) or "request",
                                    i.get("message", "")) for i in exc.issues]
        return SubmitResult(task_id=task_id, issues=api_issues, error=exc.user_message)
    except CreateOutcomeUnknown as exc:
        store.mark_not_created(task_id, unknown=True, message=exc.user_message)
        return SubmitResult(task_id=task_id, error=exc.user_message)
    except RunwayError as exc:
        store.mark_not_created(task_id, unknown=False, message=exc.user_message)
        return SubmitResult(task_id=task_id, error=exc.user_message)
    finally:
        if own_client:
            client.close()
    store.mark_submitted(task_id, created.id, created.estimated_credits, first_poll_in=POLL_INTERVAL)
    return SubmitResult(task_id=task_id)
