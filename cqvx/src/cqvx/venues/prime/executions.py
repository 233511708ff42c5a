"""Prime ``orders`` channel -> execution reports, each fill exactly once across reconnects.

The channel carries cumulative order state (``cum_qty``, ``leaves_qty``, ``avg_px``, ``fees``,
``status``), never single fills; the connection, signed subscribe (with the portfolio id) and gap
handling are :class:`~cqvx.venues.prime.feed.PrimeFeed`'s.  Fills are derived from increases of the
cumulative quantity by the one cumulative-state tracker (:class:`cqvx.venues.coinbase.stream.FillTracker`:
deterministic trade id ``<order_id>:<cum_qty>``, replays de-duplicated), which outlives reconnects.

* The first ``snapshot`` sets the baseline: open orders are reported as STATUS, no fill is invented
  from before the stream started; the stream is live then.
* A later snapshot (after a reconnect or a sequence gap) lists open orders only: tracked orders that
  are missing from it finished meanwhile and are fetched over REST, so a fill that happened while the
  stream was away is still reported once.
* RFQ orders never appear on this channel (venues.md §11): follow them with ``get_order``.
* Reports are never dropped: the fan-out's ``executions`` channel is FAIL, so a consumer that falls
  ``queue_size`` reports behind gets :class:`cqvx.fanout.SubscriberOverflow` (re-subscribe and
  reconcile) instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cqc.venues.v1 import order_pb2
from cqvx.errors import ParseError, VenueError
from cqvx.fills import FillTracker
from cqvx.transport.ws import Backoff
from cqvx.venues.prime import ws_protocol as wp
from cqvx.venues.prime.config import PrimeConfig
from cqvx.venues.prime.endpoints import VENUE
from cqvx.venues.prime.feed import PrimeFeed

__all__ = ["PrimeExecutionStream"]

Fetch = Callable[[str], Awaitable[order_pb2.Order]]


class PrimeExecutionStream(PrimeFeed):
    channel = "orders"
    fanout_channel = "executions"

    def __init__(
        self,
        config: PrimeConfig,
        *,
        timestamp: Any,
        fetch: Fetch,
        symbols: Sequence[str] | None = None,
        heartbeat_timeout: float = 30.0,
        backoff: Backoff | None = None,
        queue_size: int = 10_000,
    ) -> None:
        self._fetch = fetch
        self._symbols = frozenset(symbols or ())
        self.tracker = FillTracker(venue=VENUE)
        self._baseline = True
        super().__init__(
            config,
            timestamp=timestamp,
            portfolio_id=config.portfolio_id,
            heartbeat_timeout=heartbeat_timeout,
            backoff=backoff,
            queue_size=queue_size,
        )

    def _emit(self, order: order_pb2.Order, *, baseline: bool = False) -> None:
        if self._symbols and order.symbol not in self._symbols:
            return
        for report in self.tracker.update(order, baseline=baseline):
            self._publish(report)

    def _on_envelope(self, env: wp.Envelope) -> None:
        for event in env.events:
            kind = event.get("type")
            entries = event.get("orders")
            if kind not in ("snapshot", "update") or not isinstance(entries, list):
                raise ParseError("orders event without a type and an orders list", venue=VENUE)
            orders = [wp.ws_order(e) for e in entries if isinstance(e, dict)]
            if len(orders) != len(entries):
                raise ParseError("orders entry is not an object", venue=VENUE)
            if kind == "snapshot":
                baseline = self._baseline
                listed = {o.order_id for o in orders}
                missing = [oid for oid in self.tracker.open_order_ids() if oid not in listed]
                for order in orders:
                    self._emit(order, baseline=baseline)
                if missing and not baseline:
                    self._spawn(self._reconcile(missing))
                self._baseline = False
                self._mark_live()
            else:
                for order in orders:
                    self._emit(order)

    async def _reconcile(self, order_ids: list[str]) -> None:
        for oid in order_ids:
            try:
                order = await self._fetch(oid)
            except VenueError:
                continue  # the next snapshot tries again
            self._emit(order)
