"""Fault injection: the unpleasant parts of a real venue, on demand.

``sim.faults`` (a :class:`FaultInjector`) offers:

* ``latency`` - simulated seconds added before every request takes effect (with a SimClock the
  request then completes only while the simulation is being driven);
* ``reject_next(n, error)`` - the next ``n`` order placements fail with ``error`` and create nothing;
* ``ambiguous_next(n, operation)`` - the next ``n`` placements (or cancels) take effect at the venue,
  but the reply is lost: the call raises :class:`~cqvx.errors.Timeout`; the order can be found by its
  client order id (``get_order(client_order_id=...)``) and is on the execution stream;
* ``unavailable_for(seconds)`` / ``set_unavailable(flag)`` - every call raises
  :class:`~cqvx.errors.Unavailable` and nothing happens;
* ``set_rate_limit(per_second, burst)`` - order requests beyond the budget raise
  :class:`~cqvx.errors.RateLimited` with ``retry_after`` in seconds; ``rate_limit_next(n)`` answers the
  next ``n`` requests of any kind that way;
* ``drop_streams()`` - the connection behind every active subscription is cut.  Two behaviours, as
  seen from a venue adapter:

  - ``resume=False`` (default; what a consumer of an adapter that gave up sees): each subscription
    yields what it had already received, then raises :class:`~cqvx.errors.Unavailable`; the consumer
    re-subscribes (the new book and price subscriptions start with a fresh snapshot) and reconciles
    its orders, since executions may have been missed;
  - ``resume=True`` (what an adapter that reconnects by itself looks like): messages not yet read are
    lost in transit, the subscriptions stay open, and book/price subscriptions get a fresh snapshot.
    This is what the conformance suite's book-resync test exercises;
* ``book_gap(symbol)`` - the book's sequence number jumps (updates lost in transit), and the next
  snapshot is published at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from cqvx.errors import OrderRejected, RateLimited, Timeout, Unavailable, VenueError
from cqvx.transport.ratelimit import TokenBucket
from cqvx.venues.sim.clock import Clock
from cqvx.venues.sim.config import RateLimit

__all__ = ["FaultInjector"]

Operation = Literal["place", "cancel"]
_NS = 1_000_000_000


class FaultInjector:
    def __init__(
        self, clock: Clock, venue: str, latency: float = 0.0, rate_limit: RateLimit | None = None
    ) -> None:
        self._clock = clock
        self.venue = venue
        self.latency = latency
        self._rejections: list[VenueError] = []
        self._ambiguous: dict[str, int] = {"place": 0, "cancel": 0}
        self._unavailable_until: int | None = None
        self._bucket: TokenBucket | None = None
        if rate_limit is not None:
            self.set_rate_limit(rate_limit.per_second, rate_limit.burst)
        self._forced_rate_limits = 0
        self.rate_limits_served = 0  # every RateLimited answered (forced or by the bucket), for tests
        self._on_drop: Callable[[VenueError, bool], None] | None = None
        self._on_gap: Callable[[str, int], None] | None = None

    # -- configuration ------------------------------------------------------------------------------

    def reject_next(self, n: int = 1, error: VenueError | None = None) -> None:
        for _ in range(n):
            self._rejections.append(error or OrderRejected("injected rejection", venue=self.venue))

    def ambiguous_next(self, n: int = 1, operation: Operation = "place") -> None:
        self._ambiguous[operation] += n

    def unavailable_for(self, seconds: float) -> None:
        self._unavailable_until = self._clock.now_ns() + round(seconds * _NS)

    def set_unavailable(self, flag: bool) -> None:
        self._unavailable_until = (1 << 62) if flag else None

    def set_rate_limit(self, per_second: float, burst: float) -> None:
        self._bucket = TokenBucket(
            per_second, burst, venue=self.venue, group="sim-orders", clock=lambda: self._clock.now_ns() / _NS
        )

    def clear_rate_limit(self) -> None:
        self._bucket = None

    def rate_limit_next(self, n: int = 1) -> None:
        self._forced_rate_limits += n

    def drop_streams(self, error: VenueError | None = None, *, resume: bool = False) -> None:
        if self._on_drop is not None:
            self._on_drop(error or Unavailable("stream dropped (injected)", venue=self.venue), resume)

    def book_gap(self, symbol: str, missing: int = 5) -> None:
        if self._on_gap is not None:
            self._on_gap(symbol, missing)

    def clear(self) -> None:
        """Remove every pending fault (latency and rate limit included)."""
        self.latency = 0.0
        self._rejections.clear()
        self._ambiguous = {"place": 0, "cancel": 0}
        self._unavailable_until = None
        self._bucket = None
        self._forced_rate_limits = 0

    # -- checks used by the client ------------------------------------------------------------------

    @property
    def unavailable(self) -> bool:
        until = self._unavailable_until
        if until is None:
            return False
        if self._clock.now_ns() >= until:
            self._unavailable_until = None
            return False
        return True

    def check_available(self) -> None:
        if self.unavailable:
            raise Unavailable("venue unavailable (injected)", venue=self.venue)

    def check_forced_rate_limit(self) -> None:
        if self._forced_rate_limits > 0:
            self._forced_rate_limits -= 1
            self.rate_limits_served += 1
            raise RateLimited("rate limited (injected)", retry_after=0.05, venue=self.venue)

    def check_rate(self, weight: float = 1.0) -> None:
        bucket = self._bucket
        if bucket is None:
            return
        if weight > bucket.capacity or not bucket.try_acquire(weight):
            wait = max(0.0, (weight - bucket.available) / bucket.rate)
            self.rate_limits_served += 1
            raise RateLimited("order rate limit exceeded (emulated)", retry_after=wait, venue=self.venue)

    def take_rejection(self) -> VenueError | None:
        return self._rejections.pop(0) if self._rejections else None

    def take_ambiguous(self, operation: Operation) -> Timeout | None:
        if self._ambiguous[operation] <= 0:
            return None
        self._ambiguous[operation] -= 1
        return Timeout(f"{operation} reply lost (injected); the request took effect", venue=self.venue)
