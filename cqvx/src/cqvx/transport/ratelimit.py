"""Weighted token buckets, shared by name so every client of a venue draws from one budget.

A bucket of ``rate`` tokens per second and ``capacity`` tokens guarantees that over ANY interval of
length T at most ``capacity + rate * T`` weight is admitted; choose ``capacity`` with that in mind
(``capacity=1`` spaces requests evenly).  Waiters are served first-come first-served, so one heavy
request is not starved by a stream of light ones, and a cancelled waiter takes no tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from cqvx.transport.metrics import metrics_for

__all__ = ["RateLimiterRegistry", "TokenBucket", "limiters"]


class TokenBucket:
    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        venue: str = "",
        group: str = "default",
        clock: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.venue = venue
        self.group = group
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wait_metric = metrics_for(registry).ratelimit_wait.labels(venue=venue, group=group)

    @classmethod
    def per(
        cls,
        limit: float,
        interval_s: float,
        *,
        burst: float | None = None,
        venue: str = "",
        group: str = "default",
        registry: CollectorRegistry | None = None,
    ) -> TokenBucket:
        """``limit`` weight per ``interval_s`` seconds; ``burst`` defaults to ``limit``."""
        capacity = limit if burst is None else burst
        return cls(limit / interval_s, capacity, venue=venue, group=group, registry=registry)

    def __repr__(self) -> str:
        return f"TokenBucket({self.venue}/{self.group}, rate={self.rate}/s, capacity={self.capacity})"

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def available(self) -> float:
        self._refill()
        return self._tokens

    def try_acquire(self, weight: float = 1.0) -> bool:
        """Take tokens now if there are enough and nobody is queued ahead."""
        if self._lock.locked():
            return False
        self._refill()
        if self._tokens >= weight:
            self._tokens -= weight
            return True
        return False

    async def acquire(self, weight: float = 1.0) -> float:
        """Wait until ``weight`` tokens are available and take them; returns seconds waited."""
        if weight > self.capacity:
            raise ValueError(f"weight {weight} exceeds bucket capacity {self.capacity}")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A process-wide bucket may outlive an event loop (tests, restarts); locks are loop-bound.
            self._loop, self._lock = loop, asyncio.Lock()
        start = self._clock()
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= weight:
                    self._tokens -= weight
                    break
                # The loop may wake a timer up to its clock resolution early, so re-check after sleeping.
                await asyncio.sleep((weight - self._tokens) / self.rate)
        waited = self._clock() - start
        self._wait_metric.observe(waited)
        return waited


class RateLimiterRegistry:
    """Buckets by (venue, credential identity, group), so every client drawing on one budget shares it.

    A venue limits per API key or account (private endpoints) or per IP (public ones).  Two clients on
    the SAME key must therefore share one bucket, or together they send twice the venue's limit; two
    clients on different keys must not.  ``identity`` names the budget's owner: the API key id for
    per-key limits, ``""`` for per-IP limits.  It is only ever stored as a digest, never in plain text.
    The first caller's configuration wins; a different rate or burst for the same budget is an error
    (two settings for one real limit means one of them is wrong).
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    @staticmethod
    def identity_key(identity: str) -> str:
        if not identity:
            return ""
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]

    def get(
        self,
        venue: str,
        group: str = "default",
        *,
        rate: float,
        capacity: float,
        identity: str = "",
        registry: CollectorRegistry | None = None,
    ) -> TokenBucket:
        key = (venue, self.identity_key(identity), group)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = TokenBucket(rate, capacity, venue=venue, group=group, registry=registry)
                self._buckets[key] = bucket
            elif bucket.rate != float(rate) or bucket.capacity != float(capacity):
                who = " for this credential" if identity else ""
                raise ValueError(
                    f"rate limit {venue}/{group}{who} is already configured as {bucket.rate}/s burst "
                    f"{bucket.capacity}; refusing {float(rate)}/s burst {float(capacity)} for the same budget"
                )
            return bucket

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


# The process-wide registry: two clients for the same venue share its budget.
limiters = RateLimiterRegistry()
