"""Waiting for background work in a test by the clock, not by a count of polls or a fixed sleep: on a loaded
2-core machine (CI, a training run beside the suite) the work and each poll take longer, and that must make a
test slower, never red. The bound is generous because reaching it is already the failure."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def poll(condition: Callable[[], Any], timeout: float, step: float = 0.02) -> Any:
    """Poll ``condition()`` (a plain or an async function) until it is truthy or ``timeout`` seconds have passed;
    its last value either way (falsy on a timeout: callers assert on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(step)


async def until(condition: Callable[[], Any], timeout: float = 30.0, step: float = 0.02,
                what: str = "the condition") -> Any:
    """``poll`` that returns the truthy value, or raises an AssertionError naming ``what`` after ``timeout``."""
    value = await poll(condition, timeout, step)
    if not value:
        raise AssertionError(f"not so within {timeout:.0f} s: {what} (last: {value!r})")
    return value
