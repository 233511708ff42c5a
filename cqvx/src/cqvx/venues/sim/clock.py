"""The two clocks of the simulated venue.

:class:`SimClock` is simulated time: it moves only when the simulation advances it (``SimVenue.step``
/ ``run_until``), as fast as the CPU allows, and identically on every run.  :class:`WallClock` follows
real time, optionally faster (``speed=10``: ten simulated seconds per real second) for paper trading.
Both expose ``now()`` (UTC datetime), ``now_ns()`` and ``async sleep(seconds)`` in simulated seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from cqvx.venues.sim.config import DEFAULT_START

__all__ = ["Clock", "SimClock", "WallClock", "to_datetime", "to_ns"]

_NS = 1_000_000_000


def to_ns(moment: datetime) -> int:
    """UTC datetime -> integer nanoseconds since the epoch (naive datetimes are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1_000


def to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // _NS, tz=UTC).replace(microsecond=(ns % _NS) // 1_000)


@runtime_checkable
class Clock(Protocol):
    @property
    def simulated(self) -> bool:
        """True when time moves only when the simulation advances it."""
        ...

    def now_ns(self) -> int: ...

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    """Real time scaled by ``speed``, starting at ``start`` (default: the real current time)."""

    simulated = False

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin_real = time.perf_counter_ns()
        self._origin_ns = to_ns(start) if start is not None else time.time_ns()

    def now_ns(self) -> int:
        elapsed = time.perf_counter_ns() - self._origin_real
        return self._origin_ns + int(elapsed * self.speed)

    def now(self) -> datetime:
        return to_datetime(self.now_ns())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class SimClock:
    """Simulated time; :meth:`advance_to` moves it and wakes sleepers in deadline order."""

    simulated = True

    def __init__(self, start: datetime | None = None, *, settle_yields: int = 3) -> None:
        self._now = to_ns(start or DEFAULT_START)
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.settle_yields = settle_yields

    def now_ns(self) -> int:
        return self._now

    def now(self) -> datetime:
        return to_datetime(self._now)

    async def sleep(self, seconds: float) -> None:
        """Wait until the simulation advances the clock by ``seconds`` (0 just yields)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + round(seconds * _NS), next(self._seq), fut))
        await fut

    def next_wakeup_ns(self) -> int | None:
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let tasks that were just woken run (asyncio's FIFO ready queue keeps this deterministic)."""
        for _ in range(self.settle_yields):
            await asyncio.sleep(0)

    async def advance_to(self, target_ns: int) -> None:
        """Move time forward to ``target_ns``, waking each sleeper at its own deadline."""
        if target_ns < self._now:
            return
        while True:
            wake = self.next_wakeup_ns()
            if wake is None or wake > target_ns:
                break
            self._now = max(self._now, wake)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
            await self.settle()
        self._now = target_ns
