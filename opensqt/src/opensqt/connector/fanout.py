"""One upstream venue stream per (venue, channel, symbol), shared by every subscriber.

A :class:`_Topic` owns the single upstream subscription and copies each message into every
subscriber's bounded buffer without ever awaiting a subscriber, so one slow gRPC client cannot delay
the others: when its buffer is full it is *dropped* (it sees :class:`SubscriberOverflow` and the
connector ends its RPC), or, for snapshot-like channels (prices, books), *conflated* (it gets the
newest value per key instead of a backlog).

When the upstream stream fails with a transient error (or ends), the topic reopens it with a doubling
back-off and tells every subscriber with a :class:`Gap` that updates may have been lost, so they can
reconcile.  A fatal error (bad symbol, unsupported, credentials) ends the topic and is passed to every
subscriber instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog

from cqvx.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Unavailable,
    UnsupportedOperation,
    VenueError,
)
from cqvx.types import Stream

__all__ = ["Gap", "StreamHub", "SubscriberOverflow", "Subscription", "TopicKey"]

T = TypeVar("T")
_log = structlog.get_logger("opensqt.connector.fanout")

# Retrying these cannot help: the same subscription would fail the same way.
_FATAL: tuple[type[VenueError], ...] = (
    InvalidRequest,
    NotFound,
    UnsupportedOperation,
    AuthenticationError,
    PermissionDenied,
)


@dataclass(frozen=True, slots=True)
class TopicKey:
    """Identity of one upstream subscription: venue, channel, symbol ("" = all) and a parameter."""

    venue: str
    channel: str
    symbol: str = ""
    param: int = 0


@dataclass(frozen=True, slots=True)
class Gap:
    """Updates between ``since`` (last good upstream message, UTC) and now may be missing."""

    since: datetime | None
    reason: str


class SubscriberOverflow(Exception):
    """The subscriber did not keep up and its buffer overflowed; it has been detached."""


_Factory = Callable[[], Stream[Any]]


class Subscription(Generic[T]):
    """One consumer's view of one or more topics: a bounded buffer read with :meth:`get`."""

    def __init__(
        self,
        hub: StreamHub,
        channel: str,
        maxsize: int,
        conflate_key: Callable[[T], Hashable] | None,
        accept: Callable[[T], bool] | None,
    ) -> None:
        self._hub = hub
        self.channel = channel
        self._maxsize = maxsize
        self._conflate_key = conflate_key
        self._accept = accept
        self._queue: deque[T | Gap] = deque()
        self._latest: OrderedDict[Hashable, T | Gap] = OrderedDict()
        self._gap_seq = 0
        self._wakeup = asyncio.Event()
        self._error: BaseException | None = None
        self._topics: list[_Topic] = []
        self.dropped = False
        self.closed = False

    # -- producer side (called by topics; never blocks) -------------------------------------------

    def _offer(self, item: T) -> None:
        if self.closed or self._error is not None:
            return
        if self._accept is not None and not self._accept(item):
            return
        if self._conflate_key is not None:
            key = self._conflate_key(item)
            self._latest[key] = item
            # The newest value moves behind any gap notice that arrived before it.
            self._latest.move_to_end(key)
            if len(self._latest) > self._maxsize:
                self._overflow()
                return
        else:
            if len(self._queue) >= self._maxsize:
                self._overflow()
                return
            self._queue.append(item)
        self._wakeup.set()

    def _offer_gap(self, gap: Gap) -> None:
        if self.closed or self._error is not None:
            return
        if self._conflate_key is not None:
            self._gap_seq += 1
            self._latest[("__gap__", self._gap_seq)] = gap
            if len(self._latest) > self._maxsize:
                self._overflow()
                return
        else:
            if len(self._queue) >= self._maxsize:
                self._overflow()
                return
            self._queue.append(gap)
        self._wakeup.set()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wakeup.set()

    def _overflow(self) -> None:
        self.dropped = True
        self._queue.clear()
        self._latest.clear()
        self._fail(SubscriberOverflow(f"{self.channel}: subscriber buffer of {self._maxsize} overflowed"))
        self._hub._detach(self)
        self._hub._dropped(self.channel)

    # -- consumer side ------------------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._queue) + len(self._latest)

    async def get(self) -> T | Gap:
        """Next message or gap notice; raises the topic's fatal error or :class:`SubscriberOverflow`."""
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._latest:
                return self._latest.popitem(last=False)[1]
            if self._error is not None:
                raise self._error
            if self.closed:
                raise Unavailable("subscription closed")
            self._wakeup.clear()
            await self._wakeup.wait()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._wakeup.set()
        await self._hub._release(self)


class _Topic:
    def __init__(self, hub: StreamHub, key: TopicKey, factory: _Factory) -> None:
        self.hub = hub
        self.key = key
        self.factory = factory
        self.subscribers: list[Subscription[Any]] = []
        self.last_message_at: datetime | None = None
        self.opens = 0
        self.messages = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"upstream:{self.key}")

    def _broadcast_gap(self, gap: Gap) -> None:
        for sub in list(self.subscribers):
            sub._offer_gap(gap)

    def _fail_all(self, error: BaseException) -> None:
        for sub in list(self.subscribers):
            sub._fail(error)

    async def _run(self) -> None:
        delay = self.hub.retry_initial
        while True:
            reason = "upstream ended"
            stream: Stream[Any] | None = None
            try:
                stream = self.factory()
                self.opens += 1
                if self.opens > 1:
                    self.hub._reconnected(self.key.channel)
                    self._broadcast_gap(Gap(self.last_message_at, "upstream reconnect"))
                async for message in stream:
                    self.last_message_at = datetime.now(UTC)
                    self.messages += 1
                    delay = self.hub.retry_initial
                    for sub in tuple(self.subscribers):
                        sub._offer(message)
                    if not self.subscribers:  # the last reader overflowed and was detached
                        return
            except asyncio.CancelledError:
                raise
            except _FATAL as err:
                _log.warning("upstream_failed", topic=str(self.key), error=str(err))
                self._fail_all(err)
                self.hub._forget(self)
                return
            except Exception as err:  # transient: reconnect below
                reason = f"{type(err).__name__}"
                _log.warning("upstream_interrupted", topic=str(self.key), error=str(err))
            finally:
                if stream is not None:
                    with contextlib.suppress(Exception):
                        await stream.aclose()
            _log.info("upstream_reconnecting", topic=str(self.key), reason=reason, delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.hub.retry_max)


@dataclass
class _Stats:
    dropped: dict[str, int] = field(default_factory=dict)
    reconnects: dict[str, int] = field(default_factory=dict)


class StreamHub:
    """All upstream subscriptions of one connector, keyed by :class:`TopicKey`."""

    def __init__(
        self,
        *,
        maxsize: int = 1024,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
        on_drop: Callable[[str], None] | None = None,
        on_reconnect: Callable[[str], None] | None = None,
        on_subscribers: Callable[[str, int], None] | None = None,
    ) -> None:
        self.maxsize = maxsize
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._topics: dict[TopicKey, _Topic] = {}
        self._on_drop = on_drop
        self._on_reconnect = on_reconnect
        self._on_subscribers = on_subscribers
        self._counts: dict[str, int] = {}
        self.stats = _Stats()
        self._closed = False

    def subscribe(
        self,
        channel: str,
        topics: Iterable[tuple[TopicKey, _Factory]],
        *,
        conflate_key: Callable[[T], Hashable] | None = None,
        accept: Callable[[T], bool] | None = None,
        maxsize: int | None = None,
    ) -> Subscription[T]:
        """Attach a new subscriber to each topic, opening the upstream stream of any new topic."""
        if self._closed:
            raise Unavailable("connector is shutting down")
        sub: Subscription[T] = Subscription(self, channel, maxsize or self.maxsize, conflate_key, accept)
        for key, factory in topics:
            topic = self._topics.get(key)
            if topic is None:
                topic = _Topic(self, key, factory)
                self._topics[key] = topic
                topic.start()
            topic.subscribers.append(sub)
            sub._topics.append(topic)
        self._count(channel, +1)
        return sub

    def topic_stats(self, key: TopicKey) -> tuple[int, int] | None:
        """(upstream opens, subscribers) of a live topic, or None."""
        topic = self._topics.get(key)
        return None if topic is None else (topic.opens, len(topic.subscribers))

    def subscribers(self, channel: str) -> int:
        return self._counts.get(channel, 0)

    def _count(self, channel: str, delta: int) -> None:
        self._counts[channel] = self._counts.get(channel, 0) + delta
        if self._on_subscribers is not None:
            self._on_subscribers(channel, self._counts[channel])

    def _detach(self, sub: Subscription[Any]) -> None:
        """Remove a subscriber from its topics now (no await), closing topics left without readers."""
        topics, sub._topics = sub._topics, []
        if topics:
            self._count(sub.channel, -1)
        for topic in topics:
            with contextlib.suppress(ValueError):
                topic.subscribers.remove(sub)
            if not topic.subscribers:
                self._forget(topic)
                if topic.task is not None and topic.task is not asyncio.current_task():
                    topic.task.cancel()

    async def _release(self, sub: Subscription[Any]) -> None:
        tasks = [t.task for t in sub._topics if t.task is not None and len(t.subscribers) == 1]
        self._detach(sub)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _forget(self, topic: _Topic) -> None:
        if self._topics.get(topic.key) is topic:
            del self._topics[topic.key]

    def _dropped(self, channel: str) -> None:
        self.stats.dropped[channel] = self.stats.dropped.get(channel, 0) + 1
        if self._on_drop is not None:
            self._on_drop(channel)

    def _reconnected(self, channel: str) -> None:
        self.stats.reconnects[channel] = self.stats.reconnects.get(channel, 0) + 1
        if self._on_reconnect is not None:
            self._on_reconnect(channel)

    async def aclose(self, reason: str = "connector shutting down") -> None:
        """End every subscription with :class:`Unavailable` (clients reconnect) and stop upstreams."""
        self._closed = True
        topics = list(self._topics.values())
        self._topics.clear()
        for topic in topics:
            topic._fail_all(Unavailable(reason, retry_safe=True))
            if topic.task is not None:
                topic.task.cancel()
        for topic in topics:
            if topic.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await topic.task
