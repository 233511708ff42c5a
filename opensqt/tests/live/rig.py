"""A live page over a real GridEngine on cqvx's MockVenue: the engine's events -> LiveBridge -> LiveFeed ->
LiveServer, on loopback.  Tests move the market by hand (``tick``, ``fill_buy``) and watch the page."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cqc.venues.v1 import order_pb2
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from opensqt.app.live_bridge import LiveBridge
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.live.feed import LiveFeed
from opensqt.live.hub import HubLimits
from opensqt.live.server import LiveServer

SYM = "BTC-USD"
CFG = """
trading:
  symbol: BTC-USD
  price_interval: 1
  order_quantity: 30
  min_order_value: 20
  buy_window_size: 3
  sell_window_size: 3
  position_safety_check: 10
  recover_position: false
engine:
  price_send_interval: 0
  reconcile_interval: 3600
system:
  cancel_on_exit: false
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Rig:
    def __init__(self, path: Path, limits: HubLimits | None = None) -> None:
        self.path = path
        self.limits = limits or HubLimits()
        self.mock = MockVenue(
            balances=[
                builders.balance(asset="USD", total="1000000", available="999000", locked="1000"),
                builders.balance(asset="BTC", total="100", available="100", locked="0"),
            ]
        )
        self.mock.prices[SYM] = builders.price(symbol=SYM, last="100.05", bid="100", ask="100.1")
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        for i in range(100):
            opened = now - timedelta(minutes=100 - i)
            p = Decimal(100) + Decimal(i % 7) / 10
            self.mock.candles.append(
                builders.candle(
                    symbol=SYM,
                    open_time=opened,
                    close_time=opened + timedelta(minutes=1),
                    open=str(p),
                    high=str(p + 1),
                    low=str(p - 1),
                    close=str(p + Decimal("0.5")),
                    volume=str(10 + i),
                )
            )
        self.engine = GridEngine(
            parse_config(CFG, {}), self.mock, StateStore(sqlite_url(path / "state.db")), clock=Clock()
        )
        self.feed = LiveFeed()
        self.server = LiveServer(self.feed, self.limits)
        self.bridge = LiveBridge(self.engine, self.feed, wall=time.time, balance_interval=0.2)
        self.url = ""

    async def __aenter__(self) -> Rig:
        await self.engine.start(run_tasks=False)
        await self.bridge.start()
        port = await self.server.start("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.server.stop()
        await self.bridge.stop()
        await self.engine.stop()

    def open_orders(self) -> list[order_pb2.Order]:
        return [o for o in self.mock.orders.values() if o.status == order_pb2.ORDER_STATUS_OPEN]

    async def tick(self, price: str) -> None:
        await self.engine.on_price(Decimal(price))

    async def fill(self, order: order_pb2.Order) -> None:
        await self.engine.on_report(await self.mock.fill(client_order_id=order.client_order_id))

    async def fill_highest_buy(self) -> order_pb2.Order:
        buy = max(
            (o for o in self.open_orders() if o.side == order_pb2.ORDER_SIDE_BUY),
            key=lambda o: Decimal(o.price),
        )
        await self.fill(buy)
        return buy
