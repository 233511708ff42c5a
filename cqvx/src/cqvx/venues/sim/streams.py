"""The simulator's streams: every ``subscribe_*`` is a :class:`cqvx.fanout.Subscription` on the
simulator's hub, live at once (the sim acknowledges in-process), with the channel's overflow policy
(:data:`cqvx.fanout.POLICIES`: trades and candles drop the oldest with a gap, prices, books,
positions and funding conflate by symbol, executions and balances end with
:class:`~cqvx.fanout.SubscriberOverflow`).  An unknown symbol is refused: ``wait_live()`` and the first
read raise :class:`~cqvx.errors.InvalidRequest`.  The book and price streams start with the current
snapshot.

Gaps: ``sim.faults.drop_streams(resume=True)`` loses what was in transit and gives every subscription a
:class:`~cqvx.streams.Gap`; ``resume=False`` gives the gap and then ends each subscription with the
error; ``sim.faults.book_gap(symbol)`` gives the symbol's book subscriptions a gap before the fresh
snapshot.

A mixin of :class:`~cqvx.venues.sim.client.SimVenue`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from cqc.markets.v1 import candle_pb2, funding_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, venue_pb2
from cqvx.errors import InvalidRequest, Unavailable, VenueError
from cqvx.fanout import Hub, Subscription
from cqvx.streams import Gap
from cqvx.venues.sim.market import PublicTrade, candle_seconds
from cqvx.venues.sim.marketdata import _SimMarketData
from cqvx.venues.sim.matching import timestamp

_EXEC = ("exec",)
_BALANCES = ("balances",)


class _SimStreams(_SimMarketData):
    _hub: Hub

    # -- event sink (called by the matching engine) -------------------------------------------------

    def wants_reports(self) -> bool:
        return _EXEC in self._hub.topics  # Hub.has, without the second call (twice per order)

    def report(self, report: execution_pb2.ExecutionReport) -> None:
        self._hub.publish(("exec",), report)

    def _roll_candles(self, symbol: str, now: int) -> None:
        """Close the bars whose period ended; closed bars go out on the candle stream once."""
        for interval, builder in self._candles[symbol].items():
            cur = builder.current
            if cur is None or cur.close_ns > now:
                continue
            topic = ("candles", symbol, interval)
            for bar in builder.roll(now):
                if self._hub.has(topic):
                    self._hub.publish(topic, self._candle(symbol, interval, bar))

    def public_trade(self, trade: PublicTrade) -> None:
        self._roll_candles(trade.symbol, trade.ts_ns)
        for builder in self._candles[trade.symbol].values():
            builder.add(trade)
        topic = ("trades", trade.symbol)
        if self._hub.has(topic):
            self._hub.publish(topic, self._trade(trade))

    def _flush(self) -> None:
        """Publish balances and positions changed by the last operation."""
        assets = self.ledger.changed_assets
        if assets:
            if _BALANCES in self._hub.topics:  # = Hub.has (after every order request: no call)
                for asset in sorted(assets):
                    self._hub.publish(_BALANCES, self._balance(asset))
            assets.clear()
        changed = self.engine.changed_positions
        if changed:
            if self._hub.has(("positions",)):
                for symbol in sorted(changed):
                    self._hub.publish(("positions",), self._position(symbol))
            changed.clear()

    def _publish_market(self, symbol: str) -> None:
        hub = self._hub
        if hub.has(("prices", symbol)):
            hub.publish(("prices", symbol), self._price(symbol))
        for topic in [t for t in hub.topics if _is_book(t, symbol)]:
            assert isinstance(topic, tuple)
            hub.publish(topic, self._book(symbol, topic[2]))

    def _book_gap(self, symbol: str, missing: int) -> None:
        self._market(symbol).sequence += missing
        gap = Gap(self._venue, "book", symbol, reason=f"book sequence skipped {missing}")
        for topic in [t for t in self._hub.topics if _is_book(t, symbol)]:
            self._hub.gap(topic, gap)
        self._publish_market(symbol)

    def _drop_streams(self, error: VenueError, resume: bool) -> None:
        for sub in self._hub.each():
            # Whatever was in transit is gone (resume) or the stream ends after what it received;
            # either way every subscriber hears of the gap before anything newer.
            if resume:
                sub.drop_pending()
            sub.gap(Gap(self._venue, sub.channel, sub.symbol, reason=f"stream dropped: {error.message}"))
        if not resume:
            self._hub.fail_all(error)
            return
        for symbol in self.markets:
            self._publish_market(symbol)

    async def health(self) -> venue_pb2.VenueHealth:
        reachable = not self.faults.unavailable and not self._closed
        msg = venue_pb2.VenueHealth(
            venue=self._venue,
            reachable=reachable,
            latency_ms=self.faults.latency * 1000,
            last_error="" if reachable else "unavailable",
        )
        for name in self._hub.names():
            msg.streams.add(name=name, connected=True)
        msg.checked_at.CopyFrom(timestamp(self.clock.now_ns()))
        return msg

    # -- streams ------------------------------------------------------------------------------------

    def _subscribe(
        self,
        channel: str,
        topics: list[tuple[Any, ...]],
        check: Callable[[], Sequence[Any]],
        *,
        symbol: str = "",
        symbols: Sequence[str] | None = None,
    ) -> Subscription[Any]:
        """A live subscription; ``check`` validates (a refusal ends it with the error, raised by
        ``wait_live``) and returns the initial messages."""
        wanted = frozenset(symbols) if symbols else None
        accept: Callable[[Any], bool] | None = (lambda m: m.symbol in wanted) if wanted else None
        sub = self._hub.subscribe(topics, channel=channel, symbol=symbol, accept=accept)
        if self._closed:
            sub.refuse(Unavailable("client closed", venue=self._venue))
        elif self.faults.unavailable:
            sub.refuse(Unavailable("venue unavailable (injected)", venue=self._venue))
        else:
            try:
                initial = check()
            except VenueError as err:
                sub.refuse(err)
                return sub
            for msg in initial:
                sub.push(msg)
        return sub

    def _symbols(self, symbols: Sequence[str] | None, perp: bool = False) -> list[Any]:
        for s in symbols or ():
            self._perp(s) if perp else self._market(s)
        return []

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> Subscription[orderbook_pb2.OrderBook]:
        if depth <= 0:
            raise InvalidRequest("depth must be positive", venue=self._venue)
        return self._subscribe(
            "book", [("book", symbol, depth)], lambda: [self._book(symbol, depth)], symbol=symbol
        )

    def subscribe_trades(self, symbol: str) -> Subscription[trade_pb2.Trade]:
        return self._subscribe("trades", [("trades", symbol)], lambda: self._symbols([symbol]), symbol=symbol)

    def subscribe_prices(self, symbols: Sequence[str]) -> Subscription[price_pb2.Price]:
        return self._subscribe(
            "prices",
            [("prices", s) for s in symbols],
            lambda: [self._price(self._market(s).symbol) for s in symbols],
        )

    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> Subscription[execution_pb2.ExecutionReport]:
        return self._subscribe("executions", [("exec",)], lambda: self._symbols(symbols), symbols=symbols)

    def subscribe_balances(self) -> Subscription[balance_pb2.Balance]:
        return self._subscribe("balances", [("balances",)], list)

    def subscribe_positions(
        self, symbols: Sequence[str] | None = None
    ) -> Subscription[position_pb2.Position]:
        return self._subscribe("positions", [("positions",)], lambda: self._symbols(symbols), symbols=symbols)

    def subscribe_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> Subscription[funding_pb2.FundingRate]:
        return self._subscribe(
            "funding", [("funding",)], lambda: self._symbols(symbols, perp=True), symbols=symbols
        )

    def subscribe_candles(self, symbol: str, interval: int) -> Subscription[candle_pb2.Candle]:
        def check() -> list[Any]:
            self._market(symbol)
            candle_seconds(interval)
            self._builder(symbol, interval)
            return []

        return self._subscribe("candles", [("candles", symbol, interval)], check, symbol=symbol)


def _is_book(topic: Hashable, symbol: str) -> bool:
    return isinstance(topic, tuple) and topic[0] == "book" and topic[1] == symbol
