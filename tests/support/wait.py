"""Waiting on a condition instead of sleeping: `wait_until` polls from a test's thread (servers in
threads, child processes), `eventually` from a coroutine on the test's own event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["eventually", "wait_until"]


def wait_until(
    condition: Callable[[], bool], timeout_s: float = 10.0, interval_s: float = 0.02
) -> bool:
    """Poll `condition` every `interval_s` until it holds or `timeout_s` has passed; whether it
    held. It is checked once more after the deadline, so a slow machine never loses a win."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True


async def eventually(
    condition: Callable[[], bool], timeout_s: float = 15.0, interval_s: float = 0.02
) -> None:
    """Poll `condition` every `interval_s` without blocking the loop; fail the test (an
    `AssertionError`) if it does not hold within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s:g}s")
        await asyncio.sleep(interval_s)
