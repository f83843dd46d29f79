"""Switchable faults for tests: the rules a test posts to /_simulator/faults,
and the ways an answer can be held back or cut in half."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class FaultRule:
    """Applies to the next `count` requests whose path starts with `path_prefix`
    (and whose method is `method`, if given): wait `delay` seconds, then answer
    `status`, drop the connection or send a malformed body; report
    `status_value` as the task's status (task reads only); or send half of the
    real body and pause `slow_body` seconds before the rest (a download caught
    half written). A `delay` on its own handles the request and answers late,
    as a slow server does: a slow create still creates its task."""

    count: int = 1
    path_prefix: str = "/v1/"
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    malformed: bool = False
    status_value: str | None = None
    slow_body: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> FaultRule:
        if not isinstance(data, dict) or set(data) - {f.name for f in fields(cls)}:
            raise ValueError(f"a rule takes only {', '.join(f.name for f in fields(cls))}")
        rule = cls(**data)
        for name in ("status", "retry_after", "delay", "slow_body"):
            value = getattr(rule, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{name} must be a number")
        if not (rule.status or rule.delay or rule.drop or rule.malformed or rule.status_value or rule.slow_body):
            raise ValueError("a rule needs one of status, delay, drop, malformed, status_value, slow_body")
        if not isinstance(rule.count, int) or rule.count < 1:
            raise ValueError("count must be a positive integer")
        return rule

    def matches(self, method: str, path: str) -> bool:
        if self.status_value and not (method == "GET" and path.startswith("/v1/tasks/")):
            return False
        return (self.count > 0 and path.startswith(self.path_prefix)
                and (self.method is None or self.method.upper() == method))


def take_fault(rules: list[FaultRule], method: str, path: str) -> FaultRule | None:
    """The first active rule matching a request, used up by one."""
    for rule in rules:
        if rule.matches(method, path):
            rule.count -= 1
            return rule
    return None


def answer_late(send: Callable, seconds: float) -> Callable:
    """A `send` that holds the response back for `seconds` after the request was handled."""
    async def late_send(message: dict) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(seconds)
        await send(message)

    return late_send


def pause_halfway(send: Callable, seconds: float) -> Callable:
    """A `send` that delivers the first half of the first body chunk, then waits before the rest."""
    paused = False

    async def pausing_send(message: dict) -> None:
        nonlocal paused
        body = message.get("body", b"")
        if message["type"] != "http.response.body" or paused or len(body) < 2:
            return await send(message)
        paused = True
        await send({"type": "http.response.body", "body": body[:len(body) // 2], "more_body": True})
        await asyncio.sleep(seconds)
        await send({**message, "body": body[len(body) // 2:]})

    return pausing_send
