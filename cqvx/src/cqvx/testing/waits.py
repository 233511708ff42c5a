"""Waiting in tests without encoding timing: poll a condition until it holds or a deadline passes.

One home for the polling loop every async test needs (state owned by a server, a hub, an engine loop).
A fixed ``sleep`` encodes how fast the machine is; a deadline only bounds how long a broken run takes,
so the tests stay green on a loaded CI machine and fail with a message that names what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["until"]


async def until(
    cond: Callable[[], object | Awaitable[object]],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    what: str = "condition",
) -> None:
    """Return once ``cond()`` (sync or async) is true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(interval)
