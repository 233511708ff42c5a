"""MockVenue's named streams over the one fan-out (:mod:`cqvx.fanout`).

``mock.stream("trades")`` is a :class:`StreamHub`: a test pushes messages to every subscriber, ends or
fails them, makes them see a gap, and waits for the service under test to subscribe.  Every
subscription is a :class:`MockStream`, a :class:`cqvx.fanout.Subscription` (the
:class:`~cqvx.streams.LiveStream` contract: live when ``subscribe_*`` returns, ``on_gap``) whose
queue follows its channel's overflow policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cqvx.fanout import Hub, Subscription
from cqvx.streams import Gap

__all__ = ["STREAMS", "MockStream", "StreamHub"]

T = TypeVar("T")

STREAMS = ("book", "trades", "executions", "prices", "positions", "funding", "candles", "balances")
# Deep enough that a test never overflows by accident; the policies still apply beyond it.
_MAXSIZE = 100_000


class MockStream(Subscription[T]):
    """One subscription of the mock; ``select`` picks (and copies) what this subscriber receives."""

    def __init__(self, hub: StreamHub, select: Callable[[Any], T | None], *, symbol: str = "") -> None:
        super().__init__(venue=hub.venue, channel=hub.name, symbol=symbol, maxsize=_MAXSIZE)
        self._select = select
        hub._hub.attach(self, [hub.name])
        self.set_live()

    def push(self, msg: Any) -> bool:
        chosen = self._select(msg)
        if chosen is None:
            return False
        return super().push(chosen)


class StreamHub:
    """A named stream of the mock (``mock.stream("trades")``): push, end or fail its subscribers."""

    def __init__(self, name: str, venue: str = "mock") -> None:
        self.name = name
        self.venue = venue
        self._changed: asyncio.Event | None = None
        self._hub = Hub(venue, on_change=self._on_change)
        self.pushed = 0

    def _on_change(self, _topic: Hashable, _count: int) -> None:
        if self._changed is not None:
            self._changed.set()

    @property
    def subscriber_count(self) -> int:
        return len(self._hub.members(self.name))

    def push_nowait(self, msg: Any) -> int:
        """Deliver ``msg`` to every matching subscriber; returns how many took it."""
        self.pushed += 1
        return self._hub.publish(self.name, msg)

    async def push(self, msg: Any) -> int:
        delivered = self.push_nowait(msg)
        await asyncio.sleep(0)  # let readers run before the test continues
        return delivered

    def gap(self, reason: str = "gap (injected)") -> None:
        """Every current subscriber hears of a gap (as after a venue reconnect)."""
        self._hub.gap(self.name, Gap(self.venue, self.name, reason=reason))

    def end(self) -> None:
        """End every current subscription (their ``async for`` loops finish)."""
        self._hub.end_all()

    def fail(self, exc: BaseException) -> None:
        """Make every current subscription raise ``exc`` (after the messages already queued)."""
        self._hub.fail_all(exc)

    async def wait_subscribed(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least ``count`` subscriptions are open (e.g. the service under test's)."""
        async with asyncio.timeout(timeout):
            while self.subscriber_count < count:
                self._changed = self._changed or asyncio.Event()
                self._changed.clear()
                await self._changed.wait()
