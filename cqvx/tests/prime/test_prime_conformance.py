"""The shared conformance suite against the wire-level fake Prime (HMAC-checked).

The book comes from the fake's WebSocket ``l2_data`` feed (signed subscribes checked by the fake);
Prime has no public trade feed, so that capability is reported as not supported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.testing.conformance import ConformanceSuite, HarnessDefaults
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.venues.prime import PrimeClient

from .conftest import make_config, make_fake


class PrimeHarness(HarnessDefaults):
    venue = "prime"
    symbol = "BTC-USD"
    timeout = 5.0
    supports_trades = False  # Prime publishes no public trade feed
    rate_limit_retries = True  # the transport retries a 429 after its Retry-After

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.fake: FakePrime = make_fake(self.clock)

    async def start(self) -> None:
        await self.fake.start()

    async def new_client(self) -> VenueClient:
        return PrimeClient(make_config(self.fake.url), clock=self.clock)

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol="BTC-USD",
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_GTC,
            quantity="0.01",
            price="10000",  # far below the 50000 mid: rests
        )

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol="BTC-USD",
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            quantity="1000",  # 10M USD against a 1M balance
            price="10000",
        )

    async def rate_limit_next(self, n: int) -> None:
        self.fake.rate_limit(times=n, retry_after=0.05)

    async def rate_limits_served(self) -> int:
        return self.fake.rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return self.fake.orders_with_client_id(client_order_id)

    async def drop_streams(self) -> None:
        await self.fake.drop_ws()
        best = max(self.fake.feed.books["BTC-USD"]["bid"])
        await self.fake.feed.update("BTC-USD", "bid", best, Decimal(0))  # while nobody listens

    async def make_book_gap(self) -> None:
        feed = self.fake.feed
        best = max(feed.books["BTC-USD"]["bid"])
        await feed.update("BTC-USD", "bid", best, Decimal(0), publish=False)  # lost
        await feed.update("BTC-USD", "offer", max(feed.books["BTC-USD"]["offer"]), Decimal("9.5"))

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return self.fake.feed.expected_book("BTC-USD", depth)

    async def emit_trade(self) -> None:
        raise NotImplementedError

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill_order(report.order_id, quantity)

    async def force_stream_drop(self) -> None:
        await self.fake.drop_ws()

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill_order(report.order_id, quantity, publish=False)
        await self.fake.drop_ws()

    async def close(self) -> None:
        await self.fake.stop()


class TestPrimeConformance(ConformanceSuite):
    venue = "prime"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[PrimeHarness]:
        h = PrimeHarness()
        await h.start()
        try:
            yield h
        finally:
            await h.close()
