"""Waiting for something a test cannot be told about: a condition polled until a deadline."""
from __future__ import annotations

import time


def wait_until(condition, timeout: float, what: str, every: float = 0.2):
    """The first truthy value of `condition()`; an AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
