"""Waiting for background work in a test by the clock, not by a count of polls or a fixed sleep: on a loaded
2-core machine (CI, a training run beside the suite) the work and each poll take longer, and that must make a
test slower, never red. The bound is generous because reaching it is already the failure."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(condition: Callable[[], Any], timeout: float = 30.0, step: float = 0.02,
                what: str = "the condition") -> Any:
    """Poll ``condition()`` (a plain or an async function) until it is truthy and return that value; an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not so within {timeout:.0f} s: {what} (last: {value!r})")
        await asyncio.sleep(step)
