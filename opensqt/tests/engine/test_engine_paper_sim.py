"""End to end on the simulated venue with a SimClock: a seeded price path, deterministic fills."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import aiohttp
from typer.testing import CliRunner

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.types import TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.cli import app
from opensqt.config import default_paper_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.live.http import StatusServer
from opensqt.model.slots import is_our_client_order_id

SYM = "BTC-USDT-PERP"
ALL = frozenset(TERMINAL_STATUSES | {order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PARTIALLY_FILLED})


async def _run_seeded(tmp_path: Path, seed: int, seconds: int) -> tuple[GridEngine, SimVenue]:
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    sim = SimVenue.default(seed=seed, clock=SimClock())
    engine = GridEngine(cfg, sim, StateStore(sqlite_url(tmp_path / "paper.db")))
    await engine.start(run_tasks=False)
    inbox: list[execution_pb2.ExecutionReport] = []
    stream = sim.subscribe_executions([SYM])

    async def pump() -> None:
        async for r in stream:
            inbox.append(r)

    pump_task = asyncio.create_task(pump())

    async def drain() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        while inbox:
            batch = inbox[:]
            inbox.clear()
            for r in batch:
                await engine.on_report(r)
            for _ in range(3):
                await asyncio.sleep(0)

    for _second in range(seconds):
        await sim.run_for(1.0)
        await drain()
        price = (await sim.get_latest_price(SYM)).last
        await engine.on_price(Decimal(price))
        await drain()
    pump_task.cancel()
    await stream.aclose()
    return engine, sim


async def test_seeded_paper_run_fills_are_consistent_with_the_venue(tmp_path: Path) -> None:
    engine, sim = await _run_seeded(tmp_path, seed=11, seconds=900)
    fills = engine.store.store.load_fills(SYM)
    buys = [f for f in fills if f.side == order_pb2.ORDER_SIDE_BUY]
    sells = [f for f in fills if f.side == order_pb2.ORDER_SIDE_SELL]
    # The expected fills of this seeded path: the grid bought on the way down and sold round trips.
    assert len(buys) >= 3 and len(sells) >= 1
    assert engine.anchor is not None
    step = engine.params.interval
    for f in fills:  # maker fills at grid prices: buys on a level, sells one interval above theirs
        assert (f.price - engine.anchor) % step == 0
    for f in sells:
        assert f.realized_pnl == f.quantity * step
    assert engine.stats.realized_pnl == sum((f.realized_pnl for f in fills), Decimal(0))
    # The engine's position equals the venue's.
    (pos,) = await sim.get_positions([SYM])
    assert Decimal(pos.quantity or "0") == engine.position()
    # Every venue order is ours, placed once, and its fills are all accounted for.
    orders = await sim.get_orders(OrderFilter(symbol=SYM, statuses=ALL))
    cids = [o.client_order_id for o in orders]
    assert len(cids) == len(set(cids)) and all(is_our_client_order_id(c) for c in cids)
    by_cid: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills:
        by_cid[f.client_order_id] += f.quantity
    for o in orders:
        assert by_cid.get(o.client_order_id, Decimal(0)) == Decimal(o.filled_quantity or "0"), (
            o.client_order_id
        )
    assert engine.stats.anomalies == 0
    # reproducible: the same seed gives the same fills
    (tmp_path / "again").mkdir()
    engine2, _ = await _run_seeded(tmp_path / "again", seed=11, seconds=900)
    again = engine2.store.store.load_fills(SYM)
    assert [(f.side, f.price, f.quantity) for f in again] == [(f.side, f.price, f.quantity) for f in fills]
    await engine.stop(cancel_orders=False)
    await engine2.stop(cancel_orders=False)


async def test_http_endpoints(tmp_path: Path) -> None:
    engine, _sim = await _run_seeded(tmp_path, seed=3, seconds=20)
    server = StatusServer(engine.status, engine.metrics.render, lambda: (True, {"engine": "Healthy"}))
    port = await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/status") as r:
                body = await r.json()
                assert body["symbol"] == SYM and body["open_orders"] > 0 and "price_monitor" in body
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
                assert r.headers["Content-Type"].startswith("text/plain")
                for name in (
                    "market_maker_orders_active",
                    "market_maker_pnl_realized_total",
                    "market_maker_latency_tick_to_trade_ms_bucket",
                    "market_maker_position_size",
                ):
                    assert name in text
        # The state gauges are computed when /metrics is read (not per tick): they match the engine now.
        text = engine.metrics.render().decode()
        active = sum(1 for s in engine.ledger.slots.values() if s.order is not None)
        assert active > 0 and f'market_maker_orders_active{{symbol="{SYM}"}} {float(active)}' in text
        assert f'position_total_slots{{symbol="{SYM}"}} {float(len(engine.ledger.slots))}' in text
    finally:
        await server.stop()
        await engine.stop(cancel_orders=False)


def test_cli_paper_runs_for_a_duration_and_writes_summary_and_chart(tmp_path: Path) -> None:
    state = tmp_path / "demo.db"
    result = CliRunner().invoke(
        app, ["paper", "--duration", "1.5", "--state", str(state), "--port", "0", "--plain", "--speed", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "orders placed" in result.output and "realized PnL" in result.output
    assert state.exists() and state.with_suffix(".png").stat().st_size > 1000


def test_cli_reports_config_errors_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("trading:\n  symbol: BTC-USDT\n  price_interval: 0\n  order_quantity: 10\n")
    result = CliRunner().invoke(app, ["check-config", str(bad)])
    assert result.exit_code == 2
    assert "trading.price_interval: must be > 0" in result.output
