"""cqvx.testing.waits.until: returns as soon as the condition holds, fails naming it when it never does."""

from __future__ import annotations

import asyncio

import pytest

from cqvx.testing.waits import until


async def test_returns_once_a_sync_condition_holds() -> None:
    box = {"n": 0}

    async def bump() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
            box["n"] += 1

    task = asyncio.create_task(bump())
    await until(lambda: box["n"] == 3, timeout=5)
    await task
    assert box["n"] == 3


async def test_awaits_an_async_condition() -> None:
    calls: list[int] = []

    async def ready() -> bool:
        calls.append(1)
        return len(calls) >= 2

    await until(ready, timeout=5, interval=0)
    assert len(calls) == 2


async def test_fails_naming_what_never_happened() -> None:
    with pytest.raises(AssertionError, match=r"the order landed not reached within 0\.05s"):
        await until(lambda: False, timeout=0.05, what="the order landed")
