"""Conformance harness: the ccxt adapter (``binance``) against :class:`FakeBinance` over loopback.

Everything runs through unmodified ccxt / ccxt.pro: REST at ``fake.url``, WebSockets at
``fake.ws_url``.  The hooks act on the fake's side only: the simulated venue's book and trades, and the
fake's WebSocket faults (cut connections, a depth update applied but never sent).
"""

from __future__ import annotations

from decimal import Decimal

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.secrets import Secret
from cqvx.testing.conformance.harness import HarnessDefaults
from cqvx.testing.fake_binance.server import FakeBinance
from cqvx.testing.sim_funding import SimFundingHooks
from cqvx.venues.sim import SimClock, SimVenue

__all__ = ["BinanceCcxtHarness"]

_BUY = order_pb2.ORDER_SIDE_BUY
_SELL = order_pb2.ORDER_SIDE_SELL
KEY, SECRET = "conformance-key", "conformance-secret"


class BinanceCcxtHarness(SimFundingHooks, HarnessDefaults):
    venue = "binance"
    symbol = "BTC-USDT-PERP"
    position_symbol = "BTC-USDT-PERP"
    timeout = 5.0
    rate_limit_retries = True  # the adapter repeats a retry-safe read once ccxt reports the 429
    supports_stream_gaps = True
    supports_stream_refusal = True
    unknown_symbol = "NOPE-USDT-PERP"

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
            ws_url=self.fake.ws_url,
            retry_initial_s=0.01,
            retry_max_s=0.05,
            stream_retry_max_s=0.2,
            positions_poll_s=0.1,
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

    def _mid(self) -> Decimal:
        return self.sim.markets[self.symbol].mid

    async def drop_streams(self) -> None:
        # The book changes while the client is away (not published: only a fresh snapshot shows it).
        await self.fake.ws.drop()
        self.sim.set_price(self.symbol, self._mid() - Decimal("0.05"), publish=False)

    async def make_book_gap(self) -> None:
        self.fake.ws.skip_depth("BTCUSDT", 1)
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.02"))
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.03"))

    async def emit_trade(self) -> None:
        self.sim.inject_trade(self.symbol, self._mid(), Decimal("0.01"), _BUY)

    async def force_stream_drop(self) -> None:
        await self.fake.ws.drop()

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        # No await in between: the user data event is still queued when the connection goes.
        await self.fill(report, quantity)
        await self.fake.ws.drop("private")

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return await self.sim.get_order_book(self.symbol, depth)

    async def close(self) -> None:
        await self.fake.stop()
