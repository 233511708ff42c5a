"""The shared conformance suite run against the simulated venue.

The harness uses a quiet market on a SimClock that nobody drives, so the book changes only through
the harness hooks, as the suite requires.  The sim is both venue and client: "dropping the streams"
cuts every subscription's connection with ``resume=True`` (messages in transit are lost, the book
moved meanwhile, a fresh snapshot follows), and a "gap" moves the book twice but publishes only the
second state with a sequence that skips.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import order_pb2
from cqvx.testing.conformance import ConformanceSuite, HarnessDefaults
from cqvx.testing.conformance_streams import StreamContractTests
from cqvx.venues.sim import SimClock, SimVenue

from .conftest import quiet_config


class SimHarness(HarnessDefaults):
    venue = "sim"
    symbol = "BTC-USDT"
    timeout = 2.0
    rate_limit_retries = False  # the sim raises RateLimited(retry_after), like a venue
    supports_stream_refusal = True
    unknown_symbol = "NOPE-USDT"
    supports_stream_gaps = True

    def __init__(self) -> None:
        self.sim = SimVenue(quiet_config(), clock=SimClock())

    async def new_client(self) -> SimVenue:
        return self.sim

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol=self.symbol,
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            quantity="0.01",
            price="50000",
        )

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        order = self.resting_order(client_order_id)
        order.quantity = "900"
        return order

    async def rate_limit_next(self, n: int) -> None:
        self.sim.faults.rate_limit_next(n)

    async def rate_limits_served(self) -> int:
        return self.sim.faults.rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return sum(1 for o in self.sim.engine.orders.values() if o.client_order_id == client_order_id)

    def _mid(self) -> Decimal:
        return self.sim.markets[self.symbol].mid

    async def drop_streams(self) -> None:
        self.sim.set_price(self.symbol, self._mid() - Decimal("0.05"), publish=False)
        self.sim.faults.drop_streams(resume=True)

    async def force_disconnect(self) -> None:
        self.sim.faults.drop_streams(resume=True)

    async def make_book_gap(self) -> None:
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.02"), publish=False)
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.03"), publish=False)
        self.sim.faults.book_gap(self.symbol, missing=1)

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return await self.sim.get_order_book(self.symbol, depth)

    async def emit_trade(self) -> None:
        self.sim.inject_trade(self.symbol, self._mid(), Decimal("0.01"), order_pb2.ORDER_SIDE_BUY)

    async def close(self) -> None:
        await self.sim.aclose()


class TestSimConformance(ConformanceSuite, StreamContractTests):
    venue = "sim"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[SimHarness]:
        h = SimHarness()
        yield h
        await h.close()
