"""The grid end to end on the fake Binance USD-M through the connector: ``run_engine`` ->
``RemoteVenue`` -> gRPC -> connector -> ``CcxtClient`` -> ccxt / ccxt.pro -> loopback -> fake Binance
(REST + user data stream) -> the simulated venue's matching."""

from __future__ import annotations

import contextlib
from pathlib import Path

from cqc.venues.v1 import order_pb2
from cqvx.secrets import Secret
from cqvx.testing.fake_binance.server import FakeBinance
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.sim import SimVenue
from opensqt.app.runner import run_engine
from opensqt.config import parse_config
from opensqt.connector import ConnectorServer, RemoteVenue
from opensqt.model.slots import is_our_client_order_id

from .conftest import FAST_DIAL, FAST_STREAM, fast_config

KEY, SECRET = "grid-key", "grid-secret"


async def test_grid_runs_on_fake_binance_through_the_connector(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=4, speed=10)
    fake = FakeBinance(KEY, SECRET, sim=sim)
    await fake.start()
    upstream = CcxtClient(
        CcxtConfig("binance", Secret(KEY), Secret(SECRET), rest_url=fake.url, ws_url=fake.ws_url)
    )
    server = ConnectorServer([upstream], fast_config(), close_venues=False)
    await server.start()
    remote = await RemoteVenue.connect(
        server.address, "binance", dial=FAST_DIAL, stream_policy=FAST_STREAM, timeout=5.0
    )
    cfg = parse_config(
        "trading:\n  symbol: BTC-USDT-PERP\n  price_interval: 10\n  order_quantity: 100\n"
        "  min_order_value: 5\n  buy_window_size: 3\n  sell_window_size: 3\n  position_safety_check: 1\n"
        "venue:\n  fee_rate: 0\nhttp:\n  enabled: false\nsystem:\n  log_level: WARNING\n"
    )
    try:
        summary = await run_engine(
            cfg, state_path=tmp_path / "grid.db", duration=4, plain=True, chart=False, client=remote
        )
    finally:
        await remote.aclose()
        with contextlib.suppress(TimeoutError):
            await server.stop(0)
        await upstream.aclose()
    try:
        assert summary.placed > 0 and summary.anomalies == 0, summary.lines()
        everything = OrderFilter(statuses=TERMINAL_STATUSES | OPEN_STATUSES)
        orders = await sim.get_orders(everything)
        ours = [o for o in orders if is_our_client_order_id(o.client_order_id)]
        assert ours, "the grid's orders never reached the venue behind the fake"
        assert {o.status for o in ours} <= TERMINAL_STATUSES | {order_pb2.ORDER_STATUS_OPEN}
    finally:
        await fake.stop()
