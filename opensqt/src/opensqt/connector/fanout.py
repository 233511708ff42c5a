"""The connector's stream hub: one upstream venue stream per (venue, channel, symbol), shared by every
gRPC subscriber, on the one fan-out of cqvx (:mod:`cqvx.fanout`, :mod:`cqvx.relay`).

Each gRPC subscriber has its own bounded queue with its channel's overflow policy
(:data:`cqvx.fanout.POLICIES`): trades and candles drop the oldest message and send the client a
``StreamGap``; prices, books, positions and funding conflate to the newest per symbol; order updates
and balances end the RPC with UNAVAILABLE (:class:`SubscriberOverflow`) rather than lose one.  An
upstream that fails transiently is re-opened with :class:`cqvx.backoff.Backoff` and every subscriber
of the topic gets a ``StreamGap``; a fatal error (bad symbol, unsupported, credentials) is passed on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cqvx.backoff import Backoff
from cqvx.fanout import SubscriberOverflow, Subscription
from cqvx.relay import Relay
from cqvx.streams import Gap

__all__ = ["Gap", "StreamHub", "SubscriberOverflow", "Subscription", "TopicKey"]


@dataclass(frozen=True, slots=True)
class TopicKey:
    """Identity of one upstream subscription: venue, channel, symbol ("" = all) and a parameter."""

    venue: str
    channel: str
    symbol: str = ""
    param: int = 0


@dataclass
class _Stats:
    dropped: dict[str, int] = field(default_factory=dict)  # overflow episodes per channel
    reconnects: dict[str, int] = field(default_factory=dict)


class StreamHub(Relay):
    """All upstream subscriptions of one connector, keyed by :class:`TopicKey`, with metrics hooks."""

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
        self.stats = _Stats()
        self._on_drop = on_drop
        self._on_reconnect_metric = on_reconnect
        super().__init__(
            maxsize=maxsize,
            backoff=Backoff(initial=retry_initial, maximum=retry_max),
            gap_source="connector",
            on_reconnect=self._reconnected,
            on_subscribers=on_subscribers,
        )

    def subscribers(self, channel: str) -> int:
        """Open gRPC subscriptions on ``channel``."""
        return self.subscriber_count(channel)

    def _overflowed(self, sub: Subscription[Any]) -> None:
        self.stats.dropped[sub.channel] = self.stats.dropped.get(sub.channel, 0) + 1
        if self._on_drop is not None:
            self._on_drop(sub.channel)

    def _reconnected(self, channel: str) -> None:
        self.stats.reconnects[channel] = self.stats.reconnects.get(channel, 0) + 1
        if self._on_reconnect_metric is not None:
            self._on_reconnect_metric(channel)
