"""The shared conformance suite against the wire-level fake FalconX (HMAC-checked).

FalconX is request-for-quote: nothing rests, there is no order book and no public trade stream, so
place/get/list/cancel/duplicate (which need a resting order) and the book and trade capabilities are
reported as not supported in the capability matrix; the RFQ behaviour has its own tests
(``test_falconx_rfq.py``).  What the suite does exercise: insufficient funds, a real 429 retried by
the transport, health and close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import order_pb2
from cqvx.client import VenueClient
from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.fake_falconx import FakeClock, FakeFalconX
from cqvx.testing.harnesses import FakeServerHooks
from cqvx.venues.falconx import FalconXClient

from .conftest import API_KEY, PASSPHRASE, SECRET, make_config


class FalconXHarness(FakeServerHooks[FakeFalconX]):
    venue = "falconx"
    symbol = "BTC-USD"
    timeout = 5.0
    supports_trading = False  # market and fill-or-kill only: no order ever rests
    supports_order_book = False
    supports_book_resync = False
    supports_trades = False
    rate_limit_retries = True  # the transport retries a 429 after its Retry-After

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.fake = FakeFalconX(api_key=API_KEY, secret=SECRET, passphrase=PASSPHRASE, clock=self.clock)

    async def start(self) -> None:
        await self.fake.start()

    async def new_client(self) -> VenueClient:
        return FalconXClient(make_config(self.fake.url), clock=self.clock)

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        raise NotImplementedError("FalconX has no resting orders")

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol="BTC-USD",
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity="1000",  # 50M USD against a 1M balance
        )

    async def drop_streams(self) -> None:
        raise NotImplementedError

    async def make_book_gap(self) -> None:
        raise NotImplementedError

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        raise NotImplementedError

    async def emit_trade(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await self.fake.stop()


class TestFalconXConformance(ConformanceSuite):
    venue = "falconx"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[FalconXHarness]:
        h = FalconXHarness()
        await h.start()
        try:
            yield h
        finally:
            await h.close()


async def test_rate_limit_hook_really_serves_a_429_that_is_retried() -> None:
    h = FalconXHarness()
    await h.start()
    try:
        async with await h.new_client() as client:
            await h.rate_limit_next(1)
            assert isinstance(await client.get_balances(), list)
        assert len(h.fake.requests_to("/v1/balances")) == 2, "one 429, then the retried request"
    finally:
        await h.close()
