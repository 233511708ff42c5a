"""The conformance harness over :class:`~cqvx.testing.mock.MockVenue` (the reference harness)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.book import OrderBookL2
from cqvx.errors import InvalidRequest, RateLimited
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue

__all__ = ["MockVenueHarness"]


class MockVenueHarness:
    """The conformance harness over :class:`MockVenue` (the reference for venue harnesses).

    The mock is both the venue and the client, so "dropping the streams" is modelled as what a venue
    does on reconnect: the book changes while the client is away and a fresh snapshot follows.
    """

    venue = "mock"
    symbol = "BTC-USD"
    timeout = 2.0
    supports_trading = True
    supports_insufficient_funds = True
    supports_rate_limit = True
    rate_limit_retries = False  # MockVenue raises RateLimited(retry_after) and never retries
    supports_order_book = True
    supports_book_resync = True
    supports_trades = True
    supports_stream_refusal = True
    unknown_symbol = "NOPE-USD"
    supports_stream_gaps = True

    def __init__(self) -> None:
        self.mock = MockVenue(self.venue)
        self.mock.refused_symbols[self.unknown_symbol] = InvalidRequest(
            f"unknown symbol {self.unknown_symbol!r}", venue=self.venue
        )
        self._seq = 100
        self._rate_limits_served = 0

    async def start(self) -> None:
        bids = [(Decimal(50000 - i), Decimal(i + 1)) for i in range(1, 16)]
        asks = [(Decimal(50000 + i), Decimal(i + 1)) for i in range(1, 16)]
        await self.mock.push_book(
            self.symbol, builders.order_book(bids, asks, symbol=self.symbol, sequence=self._seq)
        )

    async def new_client(self) -> MockVenue:
        return self.mock

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return builders.limit_buy(
            price="40000", quantity="0.01", symbol=self.symbol, client_order_id=client_order_id
        )

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        return builders.limit_buy(
            price="40000", quantity="1000", symbol=self.symbol, client_order_id=client_order_id
        )

    async def rate_limit_next(self, n: int) -> None:
        def serve(**_: Any) -> None:
            # Counted when it is actually answered, not when it is scripted.
            self._rate_limits_served += 1
            raise RateLimited("mock rate limit", retry_after=0.01, venue=self.venue)

        # fail_next runs a callable like any other behaviour (see MockVenue.on).
        self.mock.fail_next(cast(Any, serve), times=n)

    async def rate_limits_served(self) -> int:
        return self._rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return sum(1 for o in self.mock.orders.values() if o.client_order_id == client_order_id)

    def _book(self) -> OrderBookL2:
        return self.mock.books[self.symbol]

    async def drop_streams(self) -> None:
        book = self._book()
        bids = book.bids()[1:]  # the best bid disappears while the client is "away"
        self._seq += 10
        await self.mock.push_book(
            self.symbol, builders.order_book(bids, book.asks(), symbol=self.symbol, sequence=self._seq)
        )

    async def force_stream_drop(self) -> None:
        for name in ("trades", "book", "executions"):
            self.mock.stream(name).gap("forced disconnect")

    async def make_book_gap(self) -> None:
        book = self._book()
        best_ask = book.asks(1)[0][0]
        self._seq += 1
        await self.mock.push_book(
            self.symbol,
            builders.order_book_delta(asks=[(best_ask, 0)], symbol=self.symbol, sequence=self._seq),
        )

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return self._book().snapshot(depth)

    async def emit_trade(self) -> None:
        await self.mock.push_trade(self.symbol, price="50000", quantity="0.01")

    # The optional conformance hooks it can serve (it has no connection to cut and no positions).

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.mock.fill(order_id=report.order_id, quantity=quantity)

    def other_resting_order(self, client_order_id: str) -> order_pb2.Order:
        return builders.limit_buy(
            price="2000", quantity="0.1", symbol="ETH-USD", client_order_id=client_order_id
        )

    async def close(self) -> None:
        await self.mock.aclose()
