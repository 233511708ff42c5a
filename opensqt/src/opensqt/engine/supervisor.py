"""The one supervisor of an engine's background loops: spawn, restart, cancel.

Rules:

* :meth:`Supervisor.spawn` runs a loop body (a stream reader, the tick loop, the price monitor).  When the
  body raises or returns, the supervisor logs it, waits :class:`cqvx.backoff.Backoff` (full jitter, the
  one backoff) and runs it again, then calls ``after_restart`` (e.g. reconcile: whatever a stream missed
  while it was down).  A ``VenueError`` is logged as a warning; anything else is an unexpected failure,
  logged with its traceback and reported to ``on_unexpected`` (the engine counts anomalies): a
  misbehaving adapter must never end a loop for the rest of the run.  The backoff attempt count resets
  once a body has run for ``stable_after`` seconds.
* :meth:`Supervisor.every` runs one pass every ``period`` seconds (or at once when ``wake`` is set); a
  failed pass is logged and counted the same way and the next pass comes at the next period (no backoff:
  the period already spaces the passes).
* :meth:`Supervisor.stop` cancels every loop and waits for them.  ``CancelledError`` always ends a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

import structlog

from cqvx.backoff import Backoff, Sleep
from cqvx.errors import VenueError

__all__ = ["Supervisor"]

log = structlog.get_logger("opensqt.engine")

_DEFAULT_BACKOFF = Backoff(initial=0.5, maximum=30.0)


class Supervisor:
    def __init__(
        self,
        *,
        backoff: Backoff = _DEFAULT_BACKOFF,
        on_unexpected: Callable[[], None] = lambda: None,
        stable_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.backoff = backoff
        self.stable_after = stable_after
        self._on_unexpected = on_unexpected
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._tasks: list[asyncio.Task[None]] = []
        self.restarts: dict[str, int] = {}

    @property
    def running(self) -> list[str]:
        return [t.get_name() for t in self._tasks if not t.done()]

    def spawn(
        self,
        name: str,
        body: Callable[[], Awaitable[None]],
        *,
        after_restart: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Run ``body()`` until stopped, restarting it (after a backoff) whenever it fails or returns."""
        self._start(name, self._supervise(name, body, after_restart))

    def every(
        self,
        name: str,
        period: float,
        fn: Callable[[], Awaitable[object]],
        *,
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run ``fn()`` every ``period`` seconds, or as soon as ``wake`` is set."""
        self._start(name, self._periodic(name, period, fn, wake))

    def _start(self, name: str, coro: Awaitable[None]) -> None:
        self.restarts.setdefault(name, 0)
        self._tasks.append(asyncio.ensure_future(coro))
        self._tasks[-1].set_name(f"opensqt-{name}")

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def guarded(self, name: str, fn: Callable[[], Awaitable[object]]) -> None:
        """Run one pass; a failure is logged (and counted when unexpected), never raised."""
        try:
            await fn()
        except VenueError as err:
            log.warning(f"{name} failed", error=str(err))
        except Exception:
            self._on_unexpected()
            log.exception(f"{name} failed")

    async def _supervise(
        self,
        name: str,
        body: Callable[[], Awaitable[None]],
        after_restart: Callable[[], Awaitable[object]] | None,
    ) -> None:
        attempt = 0
        while True:
            started = self._clock()
            try:
                await body()
                log.warning("loop ended; restarting", loop=name)
            except VenueError as err:
                log.warning("loop failed; restarting", loop=name, error=str(err))
            except Exception:
                self._on_unexpected()
                log.exception("loop failed unexpectedly; restarting", loop=name)
            if self._clock() - started >= self.stable_after:
                attempt = 0
            attempt += 1
            self.restarts[name] += 1
            await self.backoff.sleep(attempt, self._rng, sleep=self._sleep)
            if after_restart is not None:
                await self.guarded(name, after_restart)

    async def _periodic(
        self,
        name: str,
        period: float,
        fn: Callable[[], Awaitable[object]],
        wake: asyncio.Event | None,
    ) -> None:
        while True:
            if wake is None:
                await self._sleep(period)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), period)
                wake.clear()
            await self.guarded(name, fn)
