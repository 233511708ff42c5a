"""Conformance harness: the ccxt adapter (``binance``) against :class:`FakeBinance` over loopback.

The adapter has no streams yet, so the stream capabilities are declared unsupported (the suite
skips them and the matrix shows it); everything REST runs through unmodified ccxt.
"""

from __future__ import annotations

from decimal import Decimal

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.secrets import Secret
from cqvx.testing.conformance.harness import HarnessDefaults
from cqvx.testing.fake_binance.server import FakeBinance
from cqvx.venues.sim import SimClock, SimVenue

__all__ = ["BinanceCcxtHarness"]

_BUY = order_pb2.ORDER_SIDE_BUY
_SELL = order_pb2.ORDER_SIDE_SELL
KEY, SECRET = "conformance-key", "conformance-secret"


class BinanceCcxtHarness(HarnessDefaults):
    venue = "binance"
    symbol = "BTC-USDT-PERP"
    position_symbol = "BTC-USDT-PERP"
    timeout = 5.0
    rate_limit_retries = True  # the adapter repeats a retry-safe read once ccxt reports the 429
    supports_order_book = False  # no order book stream in the adapter yet
    supports_book_resync = False
    supports_trades = False

    def __init__(self) -> None:
        from cqvx.testing.harnesses import quiet_sim_config

        self.sim = SimVenue(quiet_sim_config(), clock=SimClock())
        self.fake = FakeBinance(KEY, SECRET, sim=self.sim)

    async def start(self) -> None:
        await self.fake.start()

    async def new_client(self) -> VenueClient:
        from cqvx.venues.ccxt import CcxtClient, CcxtConfig

        config = CcxtConfig(
            "binance",
            Secret(KEY),
            Secret(SECRET),
            rest_url=self.fake.url,
            retry_initial_s=0.01,
            retry_max_s=0.05,
        )
        return CcxtClient(config)

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol=self.symbol,
            side=_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_GTC,
            quantity="0.01",
            price="50000",
        )

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        order = self.resting_order(client_order_id)
        order.quantity = "900"
        return order

    def position_order(self, client_order_id: str, side: int, quantity: Decimal) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol=self.position_symbol,
            side=_BUY if side == _BUY else _SELL,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity=str(quantity),
            reduce_only=side != _BUY,
        )

    async def rate_limit_next(self, n: int) -> None:
        self.fake.rate_limit(times=n, retry_after=0.05)

    async def rate_limits_served(self) -> int:
        return self.fake.rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return sum(1 for o in self.sim.engine.orders.values() if o.client_order_id == client_order_id)

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        aggressor = _SELL if report.side == _BUY else _BUY
        self.sim.inject_trade(report.symbol, Decimal(report.order_price), quantity, aggressor)

    async def drop_streams(self) -> None:
        raise NotImplementedError("no streams in the ccxt adapter yet")

    async def make_book_gap(self) -> None:
        raise NotImplementedError("no streams in the ccxt adapter yet")

    async def emit_trade(self) -> None:
        raise NotImplementedError("no trade stream in the ccxt adapter yet")

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return await self.sim.get_order_book(self.symbol, depth)

    async def close(self) -> None:
        await self.fake.stop()
