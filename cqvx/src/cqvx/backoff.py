"""The one backoff every retry and reconnect loop uses (HTTP, WebSocket, executor, price monitor,
connector dial and re-subscribe, fan-out).

Rules:

* **Full jitter.** The ``attempt``-th consecutive failure (1-based) waits a uniform time in
  ``[0, min(maximum, initial * multiplier ** (attempt - 1))]``.  Many clients that lost the same server
  at the same moment therefore come back spread over the window, never in lockstep.
* **Retry-After wins.** When the venue says how long to wait, the wait is at least that long, plus up to
  10 % (capped at 1 s) of extra jitter for the same reason.
* **Unseeded by default.** Each :class:`Backoff` user gets its own ``random.Random`` seeded from the OS,
  so two processes started together do not draw the same delays; tests pass a seeded ``rng``.

Who retries what is decided once per failure class (see ``docs/architecture.md``, "One retry owner"):
this module only says *how long* to wait.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Backoff", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]

# Extra jitter on top of a venue's Retry-After: a fraction of it, capped.
_RETRY_AFTER_SPREAD = 0.10
_RETRY_AFTER_SPREAD_CAP = 1.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter.  Immutable; share one per policy."""

    initial: float = 1.0
    maximum: float = 60.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.multiplier < 1:
            raise ValueError("backoff needs initial >= 0, maximum >= 0 and multiplier >= 1")

    def cap(self, attempt: int) -> float:
        """The upper bound of the wait after the ``attempt``-th consecutive failure (>= 1)."""
        exponent = max(0, attempt - 1)
        # Past ~1000 doublings the float overflows; the cap is reached long before.
        if exponent > 1000:
            return self.maximum
        return min(self.maximum, self.initial * self.multiplier**exponent)

    def delay(
        self, attempt: int, rng: random.Random | None = None, *, retry_after: float | None = None
    ) -> float:
        """Seconds to wait after the ``attempt``-th consecutive failure (>= 1)."""
        r = rng if rng is not None else _default_rng()
        if retry_after is not None and retry_after > 0:
            spread = min(retry_after * _RETRY_AFTER_SPREAD, _RETRY_AFTER_SPREAD_CAP)
            return retry_after + r.uniform(0.0, spread)
        return r.uniform(0.0, self.cap(attempt))

    async def sleep(
        self,
        attempt: int,
        rng: random.Random | None = None,
        *,
        retry_after: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> float:
        """Wait :meth:`delay` seconds (through ``sleep``, replaceable by a fake clock); return it."""
        wait = self.delay(attempt, rng, retry_after=retry_after)
        await sleep(wait)
        return wait


_RNG: random.Random | None = None


def _default_rng() -> random.Random:
    # One OS-seeded generator per process: distinct processes draw distinct delays.
    global _RNG
    if _RNG is None:
        _RNG = random.Random()
    return _RNG
