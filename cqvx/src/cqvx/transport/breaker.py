"""A per-venue circuit breaker: stop hammering a venue that is down, probe it, recover.

Only transport-level failures (connection errors, timeouts, 5xx) count; a 4xx means the venue is up and
answering.  While open every call fails fast with :class:`cqvx.errors.Unavailable` (retry-safe: the
request was never sent).  After ``reset_timeout`` one probe is let through (half-open); its success
closes the breaker, its failure re-opens it for another ``reset_timeout``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from cqvx.errors import Unavailable
from cqvx.transport.metrics import metrics_for

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        venue: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.venue = venue
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        self._gauge = metrics_for(registry).breaker_state.labels(venue=venue)
        self._gauge.set(0)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.venue}, {self.state.name}, failures={self._failures})"

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def _set(self, state: BreakerState) -> None:
        self._state = state
        self._gauge.set(int(state))

    def check(self) -> None:
        """Call before sending; raises :class:`Unavailable` when the call must not go out."""
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN:
            remaining = self.reset_timeout - (now - self._opened_at)
            if remaining > 0:
                raise Unavailable(
                    f"circuit open for {remaining:.3f}s more", venue=self.venue, code="circuit_open"
                )
            self._set(BreakerState.HALF_OPEN)
        # Half-open: one probe at a time; a probe whose caller vanished frees the slot after the timeout.
        if self._probe_started is not None and now - self._probe_started < self.reset_timeout:
            raise Unavailable("circuit half-open, probe in flight", venue=self.venue, code="circuit_open")
        self._probe_started = now

    def record_success(self) -> None:
        self._failures = 0
        self._probe_started = None
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._probe_started = None
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)
