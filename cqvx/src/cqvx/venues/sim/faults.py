"""Fault injection: the unpleasant parts of a real venue, on demand.

``sim.faults`` (a :class:`FaultInjector`) offers:

* ``latency`` - simulated seconds added before every request takes effect (with a SimClock the
  request then completes only while the simulation is being driven);
* ``reject_next(n, error)`` - the next ``n`` order placements fail with ``error`` and create nothing;
* ``ambiguous_next(n, operation, delay=)`` - the next ``n`` placements (or cancels) take effect at the
  venue, but the reply is lost: the call raises :class:`~cqvx.errors.Timeout` (after ``delay``
  simulated seconds: a client waiting out its deadline); the order can be found by its client order id
  (``get_order(client_order_id=...)``) and is on the execution stream.  ``lost_reply_every(k, delay=)``
  does the same to every ``k``-th placement (soak runs);
* ``slow_ack_next(n, seconds)`` / ``slow_ack_every(k, seconds)`` - the next ``n`` (or every ``k``-th)
  placements are acknowledged ``seconds`` later on the venue's clock, and the order is *created at
  acknowledgement time*: until then a lookup (``get_order`` / ``get_orders``) does not show it (NotFound),
  and it lands even if the caller gave up (cancelled the call, hit its deadline, crashed).  A placement
  with the same client order id arriving meanwhile is created first; the late one is then refused as a
  duplicate, which is what a real venue does and what a client must rely on;
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

import asyncio
from collections.abc import Callable
from typing import Literal, TypeVar

from cqvx.errors import OrderRejected, RateLimited, Timeout, Unavailable, VenueError
from cqvx.transport.ratelimit import TokenBucket
from cqvx.venues.sim.clock import Clock
from cqvx.venues.sim.config import RateLimit

__all__ = ["FaultInjector"]

Operation = Literal["place", "cancel"]
T = TypeVar("T")
_NS = 1_000_000_000


class FaultInjector:
    def __init__(
        self, clock: Clock, venue: str, latency: float = 0.0, rate_limit: RateLimit | None = None
    ) -> None:
        self._clock = clock
        self.venue = venue
        self.latency = latency
        self._rejections: list[VenueError] = []
        # Per operation, the delay (simulated seconds) before each pending lost reply is reported.
        self._ambiguous: dict[str, list[float]] = {"place": [], "cancel": []}
        self._lost_every: tuple[int, float] | None = None
        self._slow_next: list[float] = []
        self._slow_every: tuple[int, float] | None = None
        self._placements = 0  # placements seen (each item of a batch counts), for the every-k faults
        self._acks: set[asyncio.Task[object]] = set()
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

    def ambiguous_next(self, n: int = 1, operation: Operation = "place", *, delay: float = 0.0) -> None:
        self._ambiguous[operation].extend([max(0.0, delay)] * n)

    def lost_reply_every(self, k: int, *, delay: float = 0.0) -> None:
        """Every ``k``-th placement acts but its reply is lost (``k=0`` turns this off)."""
        self._lost_every = (k, max(0.0, delay)) if k > 0 else None

    def slow_ack_next(self, n: int = 1, seconds: float = 1.0) -> None:
        self._slow_next.extend([max(0.0, seconds)] * n)

    def slow_ack_every(self, k: int, seconds: float) -> None:
        """Every ``k``-th placement is acknowledged (created) ``seconds`` late (``k=0`` turns this off)."""
        self._slow_every = (k, max(0.0, seconds)) if k > 0 else None

    @property
    def pending_acks(self) -> int:
        """Placements accepted but not yet acknowledged (their orders do not exist yet)."""
        return len(self._acks)

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
        self._ambiguous = {"place": [], "cancel": []}
        self._lost_every = None
        self._slow_next.clear()
        self._slow_every = None
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

    def admit(self, weight: float = 0.0) -> None:
        """Every request's checks in order: availability, forced rate limits, and (with a weight,
        i.e. an order request) the emulated rate limit; one call when nothing is armed."""
        if self._unavailable_until is not None:
            self.check_available()
        if self._forced_rate_limits > 0:
            self.check_forced_rate_limit()
        if weight and self._bucket is not None:
            self.check_rate(weight)

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
        if not self._ambiguous[operation]:
            return None
        self._ambiguous[operation].pop(0)
        return self._lost(operation)

    def _lost(self, operation: Operation) -> Timeout:
        return Timeout(f"{operation} reply lost (injected); the request took effect", venue=self.venue)

    async def placement(self, act: Callable[[], T]) -> T:
        """Run one placement ``act`` (which creates the order) under the slow-ack and lost-reply faults.

        A slow acknowledgement runs ``act`` in a task of its own after the delay, shielded from the
        caller: a caller that gives up does not stop the venue from creating the order.
        """
        self._placements += 1
        n = self._placements
        slow: float | None = self._slow_next.pop(0) if self._slow_next else None
        if slow is None and self._slow_every is not None and n % self._slow_every[0] == 0:
            slow = self._slow_every[1]
        if slow is None:
            result = act()
        else:
            task: asyncio.Task[T] = asyncio.get_running_loop().create_task(
                self._acknowledge(slow, act), name="sim-slow-ack"
            )
            self._acks.add(task)
            task.add_done_callback(self._ack_done)
            result = await asyncio.shield(task)
        delay: float | None = self._ambiguous["place"].pop(0) if self._ambiguous["place"] else None
        if delay is None and self._lost_every is not None and n % self._lost_every[0] == 0:
            delay = self._lost_every[1]
        if delay is not None:
            if delay > 0:
                await self._clock.sleep(delay)
            raise self._lost("place")
        return result

    async def _acknowledge(self, seconds: float, act: Callable[[], T]) -> T:
        await self._clock.sleep(seconds)
        return act()

    def _ack_done(self, task: asyncio.Task[object]) -> None:
        self._acks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that gave up must not leave it unobserved

    def close(self) -> None:
        """The venue is closing: acknowledgements still pending never happen."""
        for task in list(self._acks):
            task.cancel()
        self._acks.clear()
