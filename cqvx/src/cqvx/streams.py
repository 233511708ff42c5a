"""Streams: the one contract every venue stream follows (the fan-out that implements it: :mod:`cqvx.fanout`).

The contract (:class:`LiveStream`), for every venue, the simulator, the mock and ``RemoteVenue``:

* **Start.** ``subscribe_*`` returns at once and has already *started* the subscription (eager, never
  lazily on first read).  The stream is **live** once ``await stream.wait_live()`` returns: from then
  on every event the venue emits on that channel is delivered, in order, or announced as a gap.  A
  subscription the venue refuses (unknown symbol, no permission) raises its typed error from
  ``wait_live()`` and from the first read.
* **Gaps.** When messages may have been lost (reconnect, sequence gap, overflow, connector restart),
  every listener registered with ``on_gap`` is called with a :class:`Gap` before the next message is
  delivered.  A consumer that keeps state (orders, fills, a book) reconciles on a gap; it never needs to
  know which venue class it talks to.
* **End.** ``aclose()`` unsubscribes and releases the connection share; iteration then stops.  A fatal
  error (bad symbol, credentials) ends the iteration by raising it; transient ones are the venue's to
  heal (reconnect + gap), not the consumer's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar, runtime_checkable

__all__ = ["Gap", "GapListener", "LiveStream"]

T_co = TypeVar("T_co", covariant=True)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages of one stream between ``since`` and ``at`` may be missing: reconcile.

    ``source`` says who noticed: ``"venue"`` (the adapter: reconnect, sequence gap), ``"fanout"`` (a
    bounded queue overflowed), ``"connector"`` (the connector's upstream stream was interrupted) or
    ``"client"`` (``RemoteVenue`` lost the connector and re-subscribed).
    """

    venue: str
    channel: str
    symbol: str = ""
    reason: str = ""
    source: str = "venue"
    since: datetime | None = None
    at: datetime = field(default_factory=_utcnow)


GapListener = Callable[[Gap], None]


@runtime_checkable
class LiveStream(Protocol[T_co]):
    """An async iterator of cqc messages with an explicit start, gap notices and close."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def __anext__(self) -> T_co: ...

    async def aclose(self) -> None: ...

    async def wait_live(self) -> None:
        """Return once the subscription is acknowledged; raise its typed error if it was refused."""
        ...

    def on_gap(self, listener: GapListener) -> None:
        """Call ``listener`` (synchronously, on the event loop) for every gap from now on."""
        ...
