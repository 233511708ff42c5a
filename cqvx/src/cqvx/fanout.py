"""The one bounded fan-out: topics, subscribers with bounded queues, an overflow policy per channel.

Used by the simulator, ``MockVenue``, the Coinbase adapter, ``RemoteVenue`` and the connector; the
contract it implements is :class:`cqvx.streams.LiveStream`.

Rules:

* **Publishing never awaits a subscriber.**  :meth:`Hub.publish` copies a message into every
  subscriber's queue and returns; a slow reader only ever hurts itself.
* **Every queue is bounded** (``maxsize`` messages) and overflows by its channel's :class:`Overflow`
  policy (:data:`POLICIES`):

  - ``DROP_OLDEST`` (market data: trades, candles): the oldest message goes and the subscriber gets a
    :class:`~cqvx.streams.Gap` with ``source="fanout"``;
  - ``CONFLATE`` (snapshots: prices, books, positions, funding): a full queue keeps only the newest
    message per key (the symbol), so a slow reader ends on the current state; nothing is lost that a
    newer message does not replace, so no gap (only a reader subscribed to more keys than ``maxsize``
    drops the oldest, with a gap).  A reader that keeps up sees every message;
  - ``FAIL`` (account streams: executions, balances): the subscriber ends with
    :class:`SubscriberOverflow` (an :class:`~cqvx.errors.Unavailable`, after a gap notice), never
    silently lossy: the consumer re-subscribes and reconciles.

* **Gaps.**  :meth:`Subscription.gap` calls every ``on_gap`` listener at once (so before any later
  message is delivered) and also keeps the gap in the queue at its place, for relays that forward gaps
  on the wire (:meth:`Subscription.get`); iteration (``async for``) skips those in-band markers.
* **Ends.**  :meth:`Subscription.fail` / :meth:`Subscription.end` take effect after the messages already
  queued; :meth:`Subscription.aclose` drops them and ends a pending read at once.
* **Live.**  A subscription is live when its owner calls :meth:`Subscription.set_live` (for in-process
  venues: at creation); :meth:`Subscription.refuse` (or a failure before that) makes ``wait_live`` raise.

Sharing one upstream stream between many subscribers, with re-opening on failure, is
:class:`cqvx.relay.Relay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog

from cqvx.errors import Unavailable
from cqvx.streams import Gap, GapListener

__all__ = ["POLICIES", "Hub", "Overflow", "SubscriberOverflow", "Subscription", "feed", "policy_for"]

T = TypeVar("T")
_log = structlog.get_logger("cqvx.fanout")


class Overflow(enum.Enum):
    """What a full subscriber queue does with one more message."""

    DROP_OLDEST = "drop_oldest"
    CONFLATE = "conflate"
    FAIL = "fail"


# The policy of every channel name used by the venues and the connector (docs/architecture.md).
POLICIES: dict[str, Overflow] = {
    "trades": Overflow.DROP_OLDEST,
    "candles": Overflow.DROP_OLDEST,
    "prices": Overflow.CONFLATE,
    "book": Overflow.CONFLATE,
    "positions": Overflow.CONFLATE,
    "funding": Overflow.CONFLATE,
    "executions": Overflow.FAIL,
    "orders": Overflow.FAIL,
    "balances": Overflow.FAIL,
}


def policy_for(channel: str) -> Overflow:
    """The overflow policy of ``channel``; an unknown channel is treated as an account stream (FAIL)."""
    return POLICIES.get(channel, Overflow.FAIL)


def _by_symbol(msg: Any) -> Hashable:
    return getattr(msg, "symbol", "")


class SubscriberOverflow(Unavailable):
    """The consumer fell ``maxsize`` messages behind on a stream that must not lose any; re-subscribe
    and reconcile."""


class _End:
    """In-queue marker: iteration stops here."""


_END = _End()


class Subscription(Generic[T]):
    """One subscriber: a bounded queue over one or more topics of a :class:`Hub`; a ``LiveStream``."""

    def __init__(
        self,
        *,
        venue: str,
        channel: str,
        symbol: str = "",
        policy: Overflow | None = None,
        maxsize: int = 1024,
        key: Callable[[T], Hashable] | None = None,
        accept: Callable[[T], bool] | None = None,
        on_close: Callable[[Subscription[T]], Awaitable[None] | None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.venue = venue
        self.channel = channel
        self.symbol = symbol
        self.policy = policy if policy is not None else policy_for(channel)
        self.maxsize = maxsize
        self._key = key if key is not None else _by_symbol
        self.accept = accept
        self._on_close = on_close
        self._queue: deque[Any] = deque()  # messages and in-band Gap markers
        self._count = 0  # messages (not gaps) queued
        self._listeners: list[GapListener] = []
        self._waiter: asyncio.Future[None] | None = None
        self._live = asyncio.Event()
        self._error: BaseException | None = None  # raised once the queue is drained
        self._ended = False  # no more messages will be accepted
        self._closed = False  # aclose()d: iteration stops at once
        self._last_at: datetime | None = None
        self.dropped = 0  # overflow episodes (each announced by a gap, or the FAIL end)
        self.hubs: list[tuple[Hub, Hashable]] = []

    # -- producer side: never awaits --------------------------------------------------------------

    def push(self, msg: T) -> bool:
        """Queue ``msg`` (if accepted); returns whether it was queued."""
        if self._ended:
            return False
        if self.accept is not None and not self.accept(msg):
            return False
        if self._count >= self.maxsize:
            if self.policy is Overflow.FAIL:
                self._overflow_fail()
                return False
            if self.policy is Overflow.DROP_OLDEST:
                self._drop_oldest()
        self._last_at = datetime.now(UTC)
        self._queue.append(msg)
        self._count += 1
        if self._count > self.maxsize:  # CONFLATE: the new message replaces older ones of its key
            self._conflate()
            if self._count > self.maxsize:
                self._drop_oldest()
        self._wake()
        return True

    def _conflate(self) -> None:
        """Keep only the newest message per key (gap markers stay where they are)."""
        kept: list[Any] = []
        seen: set[Hashable] = set()
        for item in reversed(self._queue):
            if isinstance(item, Gap):
                kept.append(item)
                continue
            key = self._key(item)
            if key not in seen:
                seen.add(key)
                kept.append(item)
        kept.reverse()
        self._queue = deque(kept)
        self._count = len(seen)

    def _overflow_gap(self, reason: str) -> Gap:
        return Gap(self.venue, self.channel, self.symbol, reason=reason, source="fanout", since=self._last_at)

    def _drop_oldest(self) -> None:
        q = self._queue
        merged: Gap | None = None
        while q:
            item = q.popleft()
            if isinstance(item, Gap):
                merged = merged or item  # consecutive gaps collapse into the first
                continue
            self._count -= 1
            break
        if merged is None or merged.source != "fanout":
            self._overflowed()
            gap = self._overflow_gap(f"subscriber queue of {self.maxsize} overflowed: oldest dropped")
            self._notify(gap)
            merged = merged or gap
        q.appendleft(merged)

    def _overflowed(self) -> None:
        self.dropped += 1
        for hub in {id(h): h for h, _ in self.hubs}.values():
            hub._overflowed(self)

    def _overflow_fail(self) -> None:
        self._overflowed()
        reason = f"subscriber queue of {self.maxsize} overflowed: the consumer fell behind"
        _log.error("stream_overflow", venue=self.venue, channel=self.channel, maxsize=self.maxsize)
        self.gap(self._overflow_gap(reason))
        self.fail(
            SubscriberOverflow(
                f"subscriber overflow on {self.channel} ({reason}); re-subscribe and reconcile",
                venue=self.venue,
                retry_safe=True,
            )
        )

    def gap(self, gap: Gap) -> None:
        """Messages may have been lost: tell every listener now and mark the place in the queue."""
        if self._ended:
            return
        self._notify(gap)
        self._store_gap(gap)
        self._wake()

    def _store_gap(self, gap: Gap) -> None:
        if not (self._queue and isinstance(self._queue[-1], Gap)):
            self._queue.append(gap)

    def _notify(self, gap: Gap) -> None:
        for listener in list(self._listeners):
            try:
                listener(gap)
            except Exception:
                _log.exception("gap_listener_failed", venue=self.venue, channel=self.channel)

    def drop_pending(self) -> None:
        """Forget the queued messages (lost in transit); the caller announces the gap."""
        self._queue.clear()
        self._count = 0

    def set_live(self) -> None:
        """The subscription is acknowledged: ``wait_live`` returns."""
        self._live.set()

    def refuse(self, error: BaseException) -> None:
        """The venue refused the subscription: ``wait_live`` and the first read raise ``error``."""
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        """End with ``error`` after the messages already queued."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._detach()
        self._live.set()
        self._wake()

    def end(self) -> None:
        """End normally after the messages already queued."""
        if self._ended:
            return
        self._ended = True
        self._detach()
        self._live.set()
        self._wake()

    def _detach(self) -> None:
        hubs, self.hubs = self.hubs, []
        for hub, topic in hubs:
            hub._remove(self, topic)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- consumer side ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed or (self._ended and not self.pending())

    @property
    def ended(self) -> bool:
        """No more messages will be accepted (failed, ended or closed)."""
        return self._ended

    def pending(self) -> int:
        return len(self._queue)

    def _pop(self) -> Any:
        if not self._queue:
            return _END
        item = self._queue.popleft()
        if not isinstance(item, Gap):
            self._count -= 1
        return item

    async def get(self) -> T | Gap:
        """The next message or in-band gap marker; raises the end error, ``StopAsyncIteration`` at
        a normal end."""
        while True:
            if self._closed:
                raise StopAsyncIteration
            item = self._pop()
            if item is not _END:
                return item  # type: ignore[no-any-return]
            if self._ended:
                if self._error is not None:
                    err, self._error = self._error, None
                    self._closed = True
                    raise err
                self._closed = True
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            item = await self.get()
            if not isinstance(item, Gap):
                return item

    async def wait_live(self) -> None:
        if not self._live.is_set():
            await self._live.wait()
        if self._ended and self._error is not None and not self.pending():
            raise self._error

    def on_gap(self, listener: GapListener) -> None:
        self._listeners.append(listener)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ended = True
        self._queue.clear()
        self._count = 0
        self._detach()
        self._live.set()
        self._wake()
        if self._on_close is not None:
            result = self._on_close(self)
            if result is not None:
                await result


class Hub:
    """Topic -> subscribers.  A topic is any hashable (``("trades", "BTC-USD")``)."""

    def __init__(
        self,
        venue: str = "",
        *,
        maxsize: int = 1024,
        on_change: Callable[[Hashable, int], None] | None = None,
    ) -> None:
        self.venue = venue
        self.maxsize = maxsize
        self.topics: dict[Hashable, list[Subscription[Any]]] = {}
        self._on_change = on_change

    def subscribe(
        self,
        topics: Iterable[Hashable],
        *,
        channel: str,
        symbol: str = "",
        policy: Overflow | None = None,
        maxsize: int | None = None,
        key: Callable[[Any], Hashable] | None = None,
        accept: Callable[[Any], bool] | None = None,
        on_close: Callable[[Subscription[Any]], Awaitable[None] | None] | None = None,
        live: bool = True,
    ) -> Subscription[Any]:
        """A new subscriber on ``topics`` (live at once unless ``live=False``)."""
        sub: Subscription[Any] = Subscription(
            venue=self.venue,
            channel=channel,
            symbol=symbol,
            policy=policy,
            maxsize=maxsize or self.maxsize,
            key=key,
            accept=accept,
            on_close=on_close,
        )
        self.attach(sub, topics)
        if live:
            sub.set_live()
        return sub

    def attach(self, sub: Subscription[Any], topics: Iterable[Hashable]) -> None:
        for topic in topics:
            subs = self.topics.setdefault(topic, [])
            subs.append(sub)
            sub.hubs.append((self, topic))
            if self._on_change is not None:
                self._on_change(topic, len(subs))

    def _remove(self, sub: Subscription[Any], topic: Hashable) -> None:
        subs = self.topics.get(topic)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self.topics[topic]
            if self._on_change is not None:
                self._on_change(topic, len(subs))

    def _overflowed(self, sub: Subscription[Any]) -> None:
        """Hook: ``sub`` overflowed (metrics)."""

    def has(self, topic: Hashable) -> bool:
        return topic in self.topics

    def members(self, topic: Hashable) -> list[Subscription[Any]]:
        return list(self.topics.get(topic, ()))

    def publish(self, topic: Hashable, msg: Any) -> int:
        """Queue ``msg`` for every subscriber of ``topic``; returns how many took it."""
        return sum(sub.push(msg) for sub in self.members(topic))

    def gap(self, topic: Hashable, gap: Gap) -> None:
        for sub in self.members(topic):
            sub.gap(gap)

    def each(self) -> list[Subscription[Any]]:
        """Every current subscriber, once."""
        seen: dict[int, Subscription[Any]] = {}
        for subs in self.topics.values():
            for sub in subs:
                seen.setdefault(id(sub), sub)
        return list(seen.values())

    def fail_all(self, error: BaseException) -> None:
        for sub in self.each():
            sub.fail(error)

    def end_all(self) -> None:
        for sub in self.each():
            sub.end()

    async def aclose(self) -> None:
        for sub in self.each():
            await sub.aclose()

    def names(self) -> list[str]:
        return sorted(":".join(str(p) for p in t) if isinstance(t, tuple) else str(t) for t in self.topics)


def feed(
    source: AsyncIterator[T], *, venue: str, channel: str, symbol: str = "", maxsize: int = 1024
) -> Subscription[T]:
    """A live subscription fed at once by a task reading ``source`` (e.g. a polling generator): its
    end ends the subscription, its error fails it, ``aclose`` stops the task."""

    async def pump() -> None:
        try:
            async for msg in source:
                sub.push(msg)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            sub.fail(err)
        else:
            sub.end()

    async def stop(_: Subscription[T]) -> None:
        if task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        closer = getattr(source, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()

    sub: Subscription[T] = Subscription(
        venue=venue, channel=channel, symbol=symbol, maxsize=maxsize, on_close=stop
    )
    sub.set_live()
    task = asyncio.get_running_loop().create_task(pump(), name=f"feed:{venue}:{channel}")
    return sub
