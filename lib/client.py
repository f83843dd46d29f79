"""The HTTP client for Runway's generation API, the real one or our simulator
(same contract, docs/runway-api.md §1, §4–§6).

It owns the wire and nothing else: the headers every request carries, turning
JSON bodies into small dataclasses, the error hierarchy, and when a request may
be sent again. What the endpoints accept is the catalog's business
(lib/catalog.py); what a status means is the lifecycle's (lib/lifecycle.py).

Retries: reads (GET, DELETE, uploads) are retried on network errors, timeouts,
429, 500/502/503/504 and unreadable bodies. A create is retried only when it
certainly created nothing; otherwise it raises CreateOutcomeUnknown, because
Runway takes no idempotency key and a second POST could start a second, billed
task.
"""
from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import unquote

import httpx

from lib import lifecycle, settings
from lib.contract import API_VERSION

RETRY_READ = frozenset({429, 500, 502, 503, 504})
# 429 and 503 are refusals before any work starts; 500, 502 and 504 may come
# after the task was already created.
RETRY_CREATE = frozenset({429, 503})
# The request never left this machine, so even a create can be sent again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# A server asking for a longer wait than this gets an error now, not a blocked page.
MAX_RETRY_AFTER = 60.0


def default_timeout() -> httpx.Timeout:
    """How long one request may take: DASHBOARD_API_TIMEOUT seconds (default 30), 5 s to connect."""
    seconds = settings.api_timeout_seconds()
    return httpx.Timeout(seconds, connect=min(5.0, seconds))


# ---------------------------------------------------------------- errors

class RunwayError(Exception):
    """Anything that went wrong talking to Runway.

    `message` is for logs (the API's `error` string or a description),
    `user_message` is one sentence for people, `issues` lists the
    `{"path": [...], "message": ...}` entries of a 400 body.
    """

    def __init__(self, message: str, *, status: int | None = None, issues: list[dict] | None = None,
                 user_message: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.issues = issues or []
        self.user_message = user_message or f"Runway request failed ({message}); try again."

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


class BadRequest(RunwayError):
    """400 or 422: the inputs were refused."""


class AuthenticationError(RunwayError):
    """401 or 403: the key is wrong, disabled or not allowed."""


class NotFound(RunwayError):
    """404: unknown or deleted task."""


class RateLimited(RunwayError):
    """429: daily generation quota or upload rate limit. `retry_after` is in seconds, if the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(RunwayError):
    """5xx: Runway is failing or shedding load."""


class ConnectionFailed(RunwayError):
    """The network failed: no connection, or it dropped."""


class Timeout(RunwayError):
    """No answer in time."""


class MalformedResponse(RunwayError):
    """A 2xx body that is not the JSON we expect."""

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("user_message", "Runway sent an answer the dashboard could not read; try again, and "
                                          "report it if it keeps happening.")
        super().__init__(message, **kwargs)


class CreateOutcomeUnknown(RunwayError):
    """A create whose request may have reached Runway, so it was not sent again."""


_OUTCOME_UNKNOWN = ("Runway may or may not have created this task (the answer was lost after the request was "
                    "sent); the dashboard recorded it as unknown rather than sending it again.")


# ---------------------------------------------------------------- results

@dataclass(frozen=True)
class CreatedTask:
    id: str
    estimated_credits: float | None


@dataclass(frozen=True)
class TaskState:
    id: str
    api_status: str  # as Runway sent it, e.g. THROTTLED
    status: str  # the lifecycle's five states
    progress: float | None
    output: list[str]
    failure: str | None
    failure_code: str | None
    estimated_credits: float | None
    cost_credits: float | None
    created_at: str | None
    raw: dict


@dataclass(frozen=True)
class UsageEntry:
    day: date
    model: str
    credits: float  # negative when refunds exceed charges


# ---------------------------------------------------------------- client

class RunwayClient:
    """One configured httpx.Client for one backend. Use as a context manager or call close()."""

    def __init__(self, base_url: str, api_key: str, *, timeout: httpx.Timeout | None = None,
                 max_retries: int = 3, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, backoff_base: float = 0.5,
                 backoff_cap: float = 8.0):
        self.base_url = base_url
        self.max_retries = max_retries
        self._api_key = api_key
        self._timeout = timeout = timeout or default_timeout()
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, transport=transport,
            headers={
                "Authorization": f"Bearer {api_key}",
                "X-Runway-Version": API_VERSION,
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )

    def __repr__(self) -> str:
        return f"RunwayClient(base_url={self.base_url!r})"

    def __enter__(self) -> RunwayClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the API

    def create_task(self, endpoint: str, body: dict) -> CreatedTask:
        """POST a generation request, e.g. create_task("/v1/text_to_video", {...})."""
        def parse(response: httpx.Response) -> CreatedTask:
            data = self._json(response)
            if not isinstance(data.get("id"), str):
                raise MalformedResponse("the created task has no string 'id'", status=response.status_code)
            return CreatedTask(data["id"], _credits(data.get("estimatedCost")))

        return self._call(lambda: self._http.build_request("POST", endpoint, json=body), parse, create=True)

    def get_task(self, task_id: str) -> TaskState:
        return self._call(lambda: self._http.build_request("GET", f"/v1/tasks/{task_id}"),
                          lambda response: _task_state(self._json(response), response.status_code))

    def cancel_task(self, task_id: str) -> None:
        """Cancel a running task or delete a finished one.

        A 404 returns normally: after our own DELETE (or a retried one) it
        means the task is already gone, which is what was asked (docs/runway-api.md §4).
        """
        try:
            self._call(lambda: self._http.build_request("DELETE", f"/v1/tasks/{task_id}"), lambda r: None)
        except NotFound:
            pass

    def organization(self) -> dict:
        """Credit balance, tier limits and usage; a non-billable check of the key."""
        return self._call(lambda: self._http.build_request("GET", "/v1/organization"), self._json)

    def usage(self, start_date: date, before_date: date) -> list[UsageEntry]:
        """Credits Runway charged per model per UTC day, from `start_date` to `before_date`
        (exclusive, at most 90 days later: longer periods are several calls). Nothing is created,
        so it is retried like a read."""
        body = {"startDate": start_date.isoformat(), "beforeDate": before_date.isoformat()}
        return self._call(lambda: self._http.build_request("POST", "/v1/organization/usage", json=body),
                          lambda response: _usage(self._json(response), response.status_code))

    def upload(self, filename: str, data: bytes, mime: str) -> str:
        """Upload a file through Runway's ephemeral uploads and return its runway:// URI.

        Both steps are safe to repeat (an unused upload slot costs nothing and
        the storage POST overwrites the same object), so both retry like reads.
        """
        def parse_slot(response: httpx.Response) -> tuple[str, dict, str]:
            slot = self._json(response)
            url, fields, uri = slot.get("uploadUrl"), slot.get("fields"), slot.get("runwayUri")
            if not (isinstance(url, str) and isinstance(fields, dict) and isinstance(uri, str)):
                raise MalformedResponse("the upload slot lacks uploadUrl, fields or runwayUri",
                                        status=response.status_code)
            return url, fields, uri

        url, fields, uri = self._call(
            lambda: self._http.build_request("POST", "/v1/uploads",
                                             json={"filename": filename, "type": "ephemeral"}),
            parse_slot)
        # Built by hand rather than through build_request so that none of the
        # client's headers go along: the storage host is not Runway's API and
        # must not see the key, and it needs the multipart Content-Type.
        def storage_request() -> httpx.Request:
            return httpx.Request("POST", self._http.base_url.join(url),
                                 data={k: str(v) for k, v in fields.items()},
                                 files={"file": (filename, data, mime)},
                                 extensions={"timeout": self._timeout.as_dict()})
        try:
            self._call(storage_request, lambda r: None)
        except (BadRequest, AuthenticationError, NotFound) as exc:
            raise RunwayError(f"storage refused the upload: {exc.message}", status=exc.status,
                              user_message="Runway's storage refused the file; check it is between 512 B "
                                           "and 200 MB and upload it again.") from exc
        return uri

    # -- the machinery

    def _call(self, build: Callable[[], httpx.Request], parse: Callable[[httpx.Response], Any], *,
              create: bool = False) -> Any:
        """Send until parse() succeeds, an error is final, or the retries run out."""
        attempt = 0
        while True:
            request = build()
            wait = cause = None
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                cause, error = exc, self._transport_error(exc, request)
                if create and not isinstance(exc, NOT_SENT):
                    raise CreateOutcomeUnknown(error.message, user_message=_OUTCOME_UNKNOWN) from exc
                retryable = True
            else:
                if response.is_success:
                    try:
                        return parse(response)
                    except MalformedResponse as exc:
                        if create:
                            raise CreateOutcomeUnknown(exc.message, status=exc.status,
                                                       user_message=_OUTCOME_UNKNOWN) from exc
                        error, retryable = exc, True
                else:
                    error = self._status_error(response)
                    status = response.status_code
                    retryable = status in (RETRY_CREATE if create else RETRY_READ)
                    if create and status >= 500 and not retryable:
                        raise CreateOutcomeUnknown(error.message, status=status,
                                                   user_message=_OUTCOME_UNKNOWN) from error
                    wait = _retry_after(response)
            too_long = wait is not None and wait > MAX_RETRY_AFTER
            if not retryable or too_long or attempt >= self.max_retries:
                raise error from cause
            self._sleep(wait if wait is not None and wait >= 0 else self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        # Exponential with up to +50 % jitter, as Runway's docs advise, so that
        # several tabs or processes retrying together spread out.
        delay = min(self._backoff_base * 2 ** attempt, self._backoff_cap)
        return delay * (1 + random.uniform(0, 0.5))

    def _scrub(self, text: str) -> str:
        """The text with the key taken out, in any case and percent-encoded too (a proxy or a test
        server may echo the request's headers). Applied to decoded text: a JSON escape such as
        `\\u006bey_...` is the key again once parsed."""
        if not self._api_key:
            return text
        if self._api_key.lower() not in text.lower():
            decoded = unquote(text)
            if self._api_key.lower() not in decoded.lower():
                return text
            text = decoded  # a URL that carries the key is of no use anyway
        return re.sub(re.escape(self._api_key), "[redacted]", text, flags=re.IGNORECASE)

    def _scrubbed(self, value: Any) -> Any:
        """Every string in a decoded JSON value (keys included), scrubbed."""
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, dict):
            return {self._scrub(str(k)): self._scrubbed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrubbed(v) for v in value]
        return value

    def _json(self, response: httpx.Response) -> dict:
        """A 2xx body as a JSON object, with the key scrubbed from every string in it."""
        return self._scrubbed(_json_object(response))

    def _transport_error(self, exc: httpx.TransportError, request: httpx.Request) -> RunwayError:
        detail = self._scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))
        host = request.url.host
        if isinstance(exc, httpx.TimeoutException):
            return Timeout(detail, user_message=f"{host} did not answer in time; try again in a moment.")
        return ConnectionFailed(detail, user_message=f"Could not reach {host}; check the network connection "
                                                     "and RUNWAYML_BASE_URL.")

    def _status_error(self, response: httpx.Response) -> RunwayError:
        status = response.status_code
        try:
            body = self._scrubbed(json.loads(response.text))
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        message = body.get("error")
        if not isinstance(message, str) or not message.strip():
            message = self._scrub(f"{status} {response.reason_phrase}".strip())
        raw_issues = body.get("issues")
        issues = [_issue(i) for i in raw_issues if isinstance(i, dict)] if isinstance(raw_issues, list) else []

        if status in (400, 422):
            return BadRequest(message, status=status, issues=issues,
                              user_message=f"Runway refused the request ({message}); correct the inputs and "
                                           "submit again.")
        if status == 401:
            return AuthenticationError(message, status=status,
                                       user_message="Runway rejected the API key. Check RUNWAYML_API_SECRET.")
        if status == 403:
            return AuthenticationError(message, status=status,
                                       user_message="Runway refused this API key (no permission, or the "
                                                    "account is suspended); check it in the developer portal.")
        if status == 404:
            return NotFound(message, status=status,
                            user_message="Runway has no such task; it was deleted, expired, or belongs to "
                                         "another backend.")
        if status == 429:
            retry_after = _retry_after(response)
            when = f"in about {math.ceil(retry_after)} s" if retry_after else "later"
            return RateLimited(message, status=status, retry_after=retry_after,
                               user_message=f"Runway is limiting requests (daily generation quota or upload "
                                            f"limit reached); try again {when}.")
        if status >= 500:
            return ServerError(message, status=status,
                               user_message=f"Runway is having trouble (HTTP {status}); try again in a minute.")
        return RunwayError(message, status=status,
                           user_message=f"Runway answered HTTP {status} ({message}); report this if it "
                                        "keeps happening.")


# ---------------------------------------------------------------- parsing

def _json_object(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        raise MalformedResponse("the response body is not JSON", status=response.status_code) from None
    if not isinstance(data, dict):
        raise MalformedResponse("the response body is not a JSON object", status=response.status_code)
    return data


def _task_state(data: dict, status: int) -> TaskState:
    task_id, api_status = data.get("id"), data.get("status")
    if not (isinstance(task_id, str) and isinstance(api_status, str)):
        raise MalformedResponse("the task has no string 'id' or 'status'", status=status)
    output = data.get("output")
    return TaskState(
        id=task_id,
        api_status=api_status,
        status=lifecycle.from_api(api_status),
        progress=_number(data.get("progress")),
        output=[url for url in output if isinstance(url, str)] if isinstance(output, list) else [],
        failure=_text(data.get("failure")),
        failure_code=_text(data.get("failureCode")),
        estimated_credits=_credits(data.get("estimatedCost")),
        cost_credits=_credits(data.get("cost")),
        created_at=_text(data.get("createdAt")),
        raw=data,
    )


def _usage(data: dict, status: int) -> list[UsageEntry]:
    """`{results: [{date, usedCredits: [{model, amount}]}]}` as entries; any other shape is refused
    whole, since a usage answer with some days left out would read as spend that never happened."""
    results = data.get("results")
    if not isinstance(results, list):
        raise MalformedResponse("the usage answer has no 'results' list", status=status)
    entries = []
    for result in results:
        used = result.get("usedCredits") if isinstance(result, dict) else None
        try:
            day = date.fromisoformat(result["date"]) if isinstance(result.get("date"), str) else None
        except (ValueError, AttributeError):
            day = None
        if day is None or not isinstance(used, list):
            raise MalformedResponse("a usage result has no 'date' as YYYY-MM-DD or no 'usedCredits' list",
                                    status=status)
        for item in used:
            model = item.get("model") if isinstance(item, dict) else None
            amount = _number(item.get("amount")) if isinstance(item, dict) else None
            if not isinstance(model, str) or amount is None or not math.isfinite(amount):
                raise MalformedResponse("a usage entry has no string 'model' or numeric 'amount'", status=status)
            entries.append(UsageEntry(day, model, amount))
    return entries


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _credits(cost: Any) -> float | None:
    """`{"credits": n}` (estimatedCost, cost) -> n; absent before SDK 5.14 and on the seed's tasks."""
    return _number(cost.get("credits")) if isinstance(cost, dict) else None


def _issue(item: dict) -> dict:
    path = item.get("path")
    path = path if isinstance(path, list) else [] if path is None else [path]
    return {"path": path, "message": str(item.get("message", ""))}


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, else Retry-After in seconds (dates are ignored)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            seconds = float(response.headers[name]) / scale
        except (KeyError, ValueError):
            continue
        if math.isfinite(seconds):
            return seconds
    return None
