"""Prime WebSocket order book: ``l2_data`` into the local book, with sequence-gap resync.

The connection, signed subscribes, sequence checks and the LiveStream contract are
:class:`~cqvx.venues.prime.feed.PrimeFeed`'s.  One product per connection, so the 10-products limit
never binds.  ``snapshot`` replaces the book; ``update`` sets absolute sizes (0 removes a level) and is
refused until a snapshot arrived after a gap.  Subscribers read top-``depth`` snapshots from
:attr:`~cqvx.venues.prime.feed.PrimeFeed.sub` (the fan-out's ``book`` channel: CONFLATE, a lagging
reader ends on the current book).  The stream is live at its first snapshot.
"""

from __future__ import annotations

from typing import Any

from cqvx.book import ApplyResult, OrderBookL2, ResyncReason, SequenceMode
from cqvx.transport.ws import Backoff
from cqvx.venues.prime import ws_protocol as wp
from cqvx.venues.prime.config import PrimeConfig
from cqvx.venues.prime.endpoints import VENUE
from cqvx.venues.prime.feed import PrimeFeed

__all__ = ["PrimeBookStream"]


class PrimeBookStream(PrimeFeed):
    """A live top-``depth`` book of one Prime product."""

    channel = "l2_data"
    fanout_channel = "book"

    def __init__(
        self,
        config: PrimeConfig,
        symbol: str,
        depth: int,
        *,
        timestamp: Any,
        heartbeat_timeout: float = 30.0,
        backoff: Backoff | None = None,
        queue_size: int = 64,
    ) -> None:
        self.symbol = symbol
        self.depth = depth
        self.book = OrderBookL2(symbol, VENUE, sequence=SequenceMode.NONE)
        super().__init__(
            config,
            timestamp=timestamp,
            product_ids=(symbol,),
            heartbeat_timeout=heartbeat_timeout,
            backoff=backoff,
            queue_size=queue_size,
        )

    def _reset(self) -> None:
        self.book.invalidate(ResyncReason.INVALIDATED)

    def _on_envelope(self, env: wp.Envelope) -> None:
        changed = False
        for event in env.events:
            snapshot, product, bids, asks = wp.l2_levels(event)
            if product != self.symbol:
                continue
            if snapshot:
                result = self.book.apply_snapshot_levels(bids, asks)
            elif self.book.needs_resync:
                continue
            else:
                result = self.book.apply_levels(bids, asks)
            changed = changed or result is ApplyResult.APPLIED
        if changed and not self.book.needs_resync:
            self._publish(self.book.snapshot(self.depth))
            self._mark_live()
