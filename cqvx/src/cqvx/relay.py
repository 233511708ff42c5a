"""One upstream stream per topic, shared by every subscriber, re-opened with the one backoff.

A :class:`Relay` is a :class:`cqvx.fanout.Hub` whose topics are fed by an upstream
:class:`~cqvx.streams.LiveStream` (opened by a factory the first subscriber brings).  The connector
uses it to keep one venue subscription per (venue, channel, symbol) for any number of gRPC clients.

Rules:

* A subscription is live once every upstream of its topics is live (``wait_live`` of the upstream
  returned); a fatal upstream error (unknown symbol, unsupported, credentials) refuses or ends it with
  that error.
* A transient upstream failure (or end) re-opens the upstream after :class:`cqvx.backoff.Backoff`
  (attempts counted from the last message received) and gives every subscriber of the topic a
  :class:`~cqvx.streams.Gap` (``source`` given to the relay) once it is live again.  Gaps the upstream
  itself reports (``on_gap``) are passed on to the topic's subscribers.
* The upstream is closed when its last subscriber leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog

from cqvx.backoff import Backoff, Sleep
from cqvx.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Unavailable,
    UnsupportedOperation,
    VenueError,
)
from cqvx.fanout import Hub, Subscription
from cqvx.streams import Gap

__all__ = ["FATAL_STREAM_ERRORS", "Relay", "UpstreamFactory"]

_log = structlog.get_logger("cqvx.relay")
# How long aclose() waits for cancelled upstream tasks to finish.
_CLOSE_TIMEOUT = 5.0

# Re-opening cannot help these: the same subscription would fail the same way.
FATAL_STREAM_ERRORS: tuple[type[VenueError], ...] = (
    InvalidRequest,
    NotFound,
    UnsupportedOperation,
    AuthenticationError,
    PermissionDenied,
)

UpstreamFactory = Callable[[], Any]  # () -> LiveStream (or any async iterator with aclose)


class _Upstream:
    __slots__ = ("channel", "factory", "key", "last_message_at", "live", "messages", "opens", "task", "venue")

    def __init__(self, key: Hashable, factory: UpstreamFactory, venue: str, channel: str) -> None:
        self.key = key
        self.factory = factory
        self.venue = venue
        self.channel = channel
        self.last_message_at: datetime | None = None
        self.live = False
        self.opens = 0
        self.messages = 0
        self.task: asyncio.Task[None] | None = None


class Relay(Hub):
    """A hub whose topics each read one shared upstream stream."""

    def __init__(
        self,
        venue: str = "",
        *,
        maxsize: int = 1024,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        gap_source: str = "connector",
        on_reconnect: Callable[[str], None] | None = None,
        on_subscribers: Callable[[str, int], None] | None = None,
    ) -> None:
        super().__init__(venue, maxsize=maxsize)
        self.backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self._rng = rng
        self._sleep = sleep
        self._gap_source = gap_source
        self._on_reconnect = on_reconnect
        self._on_subscribers = on_subscribers
        self._upstreams: dict[Hashable, _Upstream] = {}
        self._members: dict[int, str] = {}  # id(subscription) -> channel, while attached
        self._counts: dict[str, int] = {}
        self._closed = False

    def open(
        self,
        channel: str,
        topics: Iterable[tuple[Hashable, UpstreamFactory]],
        *,
        venue: str = "",
        key: Callable[[Any], Hashable] | None = None,
        accept: Callable[[Any], bool] | None = None,
        maxsize: int | None = None,
    ) -> Subscription[Any]:
        """A new subscriber on ``topics``, opening the upstream of any topic not yet open."""
        if self._closed:
            raise Unavailable("shutting down", venue=venue)
        pairs = list(topics)
        sub = self.subscribe(
            [k for k, _ in pairs], channel=channel, key=key, accept=accept, maxsize=maxsize, live=False
        )
        sub.venue = venue or self.venue
        self._members[id(sub)] = channel
        self._count(channel, +1)
        for topic_key, factory in pairs:
            if topic_key not in self._upstreams:
                up = _Upstream(topic_key, factory, venue, channel)
                self._upstreams[topic_key] = up
                up.task = asyncio.get_running_loop().create_task(self._run(up), name=f"upstream:{topic_key}")
        self._check_live(sub)
        return sub

    def topic_stats(self, key: Hashable) -> tuple[int, int] | None:
        """(upstream opens, subscribers) of an open topic, or None."""
        up = self._upstreams.get(key)
        return None if up is None else (up.opens, len(self.topics.get(key, ())))

    def subscriber_count(self, channel: str) -> int:
        return self._counts.get(channel, 0)

    def _count(self, channel: str, delta: int) -> None:
        self._counts[channel] = self._counts.get(channel, 0) + delta
        if self._on_subscribers is not None:
            self._on_subscribers(channel, self._counts[channel])

    def _check_live(self, sub: Subscription[Any]) -> None:
        ups = [self._upstreams.get(t) for _, t in sub.hubs]
        if all(up is not None and up.live for up in ups):
            sub.set_live()

    def _remove(self, sub: Subscription[Any], topic: Hashable) -> None:
        super()._remove(sub, topic)
        channel = self._members.pop(id(sub), None)
        if channel is not None:
            self._count(channel, -1)
        if topic not in self.topics:
            up = self._upstreams.pop(topic, None)
            if up is not None and up.task is not None and up.task is not asyncio.current_task():
                up.task.cancel()

    def _gap(self, up: _Upstream, gap: Gap) -> None:
        self.gap(up.key, gap)

    async def _run(self, up: _Upstream) -> None:
        attempt = 0
        while True:
            reason = "upstream ended"
            stream: Any = None
            try:
                stream = up.factory()
                up.opens += 1
                if hasattr(stream, "on_gap"):
                    stream.on_gap(lambda g: self._gap(up, g))
                if hasattr(stream, "wait_live"):
                    await stream.wait_live()
                if up.opens > 1:
                    if self._on_reconnect is not None:
                        self._on_reconnect(up.channel)
                    self._gap(
                        up,
                        Gap(
                            up.venue,
                            up.channel,
                            reason="upstream reconnect",
                            source=self._gap_source,
                            since=up.last_message_at,
                        ),
                    )
                up.live = True
                for sub in self.members(up.key):
                    self._check_live(sub)
                async for message in stream:
                    up.last_message_at = datetime.now(UTC)
                    up.messages += 1
                    attempt = 0
                    self.publish(up.key, message)
                    if up.key not in self.topics:  # the last reader left (or overflowed)
                        return
            except asyncio.CancelledError:
                raise
            except FATAL_STREAM_ERRORS as err:
                _log.warning("upstream_failed", topic=str(up.key), error=str(err))
                if self._upstreams.get(up.key) is up:
                    del self._upstreams[up.key]
                for sub in self.members(up.key):
                    sub.fail(err)
                return
            except Exception as err:  # transient: re-open below
                reason = type(err).__name__
                _log.warning("upstream_interrupted", topic=str(up.key), error=str(err))
            finally:
                if stream is not None:
                    with contextlib.suppress(Exception):
                        await stream.aclose()
            attempt += 1
            delay = self.backoff.delay(attempt, self._rng)
            _log.info("upstream_reopening", topic=str(up.key), reason=reason, delay=round(delay, 3))
            await self._sleep(delay)

    async def aclose(self, reason: str = "shutting down") -> None:
        """End every subscription with a retry-safe :class:`Unavailable` and stop the upstreams."""
        self._closed = True
        ups = list(self._upstreams.values())
        self._upstreams.clear()
        self.fail_all(Unavailable(reason, retry_safe=True))
        tasks = {up.task for up in ups if up.task is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: an upstream whose own close hangs (a venue socket that never acknowledges the
            # close) must not hold up the shutdown of everything else; it is left cancelled.
            done, pending = await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved, so it is never logged as "never retrieved"
            if pending:
                _log.warning("relay_upstreams_not_closed", pending=len(pending), timeout_s=_CLOSE_TIMEOUT)
