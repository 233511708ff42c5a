"""Breakers driven by the simulated venue itself (no hand-made evidence): losing round trips from a
real price path, and the order stream cut by a fault (docs/risk.md).  Each checks the venue's orders,
the position and the alerts afterwards."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from cqc.venues.v1 import order_pb2
from cqvx.types import OrderFilter
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.observability.alerts import AlertRouter

D = Decimal
SYM = "BTC-USDT-PERP"
BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL
BASE = """
engine: {price_send_interval: 0, reconcile_interval: 3600}
system: {cancel_on_exit: false}
trading:
  symbol: BTC-USDT-PERP
  price_interval: 30
  order_quantity: 100
  min_order_value: 20
  buy_window_size: 4
  sell_window_size: 4
  position_safety_check: 10
"""


def _now(sim: SimVenue) -> Any:
    return lambda: sim.clock.now_ns() / 1e9


async def _engine(tmp_path: Path, sim: SimVenue, extra: str, router: AlertRouter) -> GridEngine:
    engine = GridEngine(
        parse_config(BASE + extra, {}),
        sim,
        StateStore(sqlite_url(tmp_path / "f.db")),
        clock=_now(sim),
        alerts=router,
    )
    await engine.start(run_tasks=False, check=False)
    return engine


async def _open(sim: SimVenue) -> list[order_pb2.Order]:
    return await sim.get_orders(OrderFilter(symbol=SYM))


async def _position(sim: SimVenue) -> Decimal:
    return sum((D(p.quantity) for p in await sim.get_positions([SYM])), D(0))


async def _pump(engine: GridEngine) -> asyncio.Task[None]:
    task = asyncio.ensure_future(engine.read_executions())
    for _ in range(5):
        await asyncio.sleep(0)
    return task


async def test_losing_round_trips_on_a_real_price_path_trip_the_streak(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=11, clock=SimClock())
    # The account bought at about 60000; the price then fell: the grid takes the position over at that
    # entry, so its closing sells (above the current price, below the entry) realize losses.
    await sim.place_order(
        order_pb2.Order(
            client_order_id="manual",
            symbol=SYM,
            side=BUY,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity="0.005",
        )
    )
    low = D((await sim.get_latest_price(SYM)).last) - 1000
    sim.set_price(SYM, low)
    sim.inject_trade(SYM, low, D("0.001"), SELL)
    router = AlertRouter([], clock=_now(sim))
    engine = await _engine(
        tmp_path,
        sim,
        "  recover_position: true\nrisk:\n  enabled: false\n  breakers:\n"
        "    losing_streak: {max_losses: 2, cooldown_seconds: 0}\n",
        router,
    )
    assert engine.position() > 0
    stream = await _pump(engine)
    try:
        await engine.on_price(low)
        sells = [o for o in await _open(sim) if o.side == SELL]
        assert len(sells) >= 2
        # The price climbs back through two closing sells: two losing round trips.
        top = sorted(D(o.price) for o in sells)[1]
        sim.set_price(SYM, top + 1)
        sim.inject_trade(SYM, top + 1, D("1"), BUY)
        for _ in range(500):  # the stream's reports are applied (the store writes on its own thread)
            await asyncio.sleep(0.01)
            if sum(1 for f in engine.fills if f.realized_pnl < 0) >= 2:
                break
        await engine.risk.evaluate()
    finally:
        stream.cancel()
        await asyncio.gather(stream, return_exceptions=True)
    losses = [f for f in engine.fills if f.realized_pnl < 0]
    assert len(losses) >= 2
    assert engine.risk.book.open_kinds() == ["losing_streak"]
    assert [a.key for a in router.history] == [f"breaker:losing_streak:{SYM}"]
    assert {o.side for o in await _open(sim)} <= {SELL}  # no opening buy left working
    assert await _position(sim) == engine.position() > 0  # on_trip keep: the rest is held


async def test_an_order_stream_cut_trips_stale_feed_and_alerts_the_disconnection(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=12, clock=SimClock())
    router = AlertRouter([], clock=_now(sim))
    engine = await _engine(
        tmp_path,
        sim,
        "  recover_position: false\nrisk:\n  enabled: false\n  alerts: {disconnected_seconds: 20}\n"
        "  breakers:\n    stale_feed: {orders_seconds: 10, cooldown_seconds: 5}\n",
        router,
    )
    stream = await _pump(engine)
    await engine.on_price(D((await sim.get_latest_price(SYM)).last))
    assert {o.side for o in await _open(sim)} == {BUY}
    sim.faults.drop_streams()  # the venue cuts the order stream
    await asyncio.gather(stream, return_exceptions=True)
    assert engine.risk.orders_down_since is not None
    await sim.run_for(12.0)
    await engine.on_price(D((await sim.get_latest_price(SYM)).last))
    await engine.risk.evaluate()
    assert engine.risk.book.open_kinds() == ["stale_feed"]
    assert "order stream down" in engine.risk.book.states["stale_feed"].detail
    assert await _open(sim) == []  # opening orders cancelled
    assert [a.key for a in router.history] == [f"breaker:stale_feed:{SYM}"]  # not yet "disconnected"
    await sim.run_for(10.0)
    await engine.risk.evaluate()
    assert f"disconnected:orders:{SYM}" in [a.key for a in router.history]
    # The stream is back (the supervisor restarts it): the breaker closes after its cool-down.
    stream = await _pump(engine)
    try:
        await sim.run_for(6.0)
        await engine.on_price(D((await sim.get_latest_price(SYM)).last))
        await engine.risk.evaluate()
        assert not engine.risk.book.open
        await engine.on_price(D((await sim.get_latest_price(SYM)).last))
        assert {o.side for o in await _open(sim)} == {BUY}
    finally:
        stream.cancel()
        await asyncio.gather(stream, return_exceptions=True)


async def test_a_crashing_loop_alerts_through_the_supervisor(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=13, clock=SimClock())
    router = AlertRouter([], clock=_now(sim))
    engine = await _engine(tmp_path, sim, "  recover_position: false\nrisk:\n  enabled: false\n", router)

    async def broken() -> None:
        raise RuntimeError("strategy bug")

    await engine.supervisor.guarded("ticks", broken)  # what every loop body runs under
    assert [a.key for a in router.history] == [f"strategy_crash:{SYM}"]
    assert engine.stats.anomalies == 1
    await engine.supervisor.guarded("ticks", broken)  # de-duplicated inside the window
    assert len(router.history) == 1 and engine.stats.anomalies == 2


async def test_placements_lost_at_the_venue_raise_the_unresolved_alert(tmp_path: Path) -> None:
    from cqvx.errors import Timeout
    from cqvx.testing import builders
    from cqvx.testing.mock import MockVenue
    from opensqt.model.slots import SlotState

    now = [1000.0]
    mock = MockVenue(
        balances=[builders.balance(asset="USD", total="1000000", available="1000000", locked="0")]
    )
    mock.prices["BTC-USD"] = builders.price(symbol="BTC-USD", last="100.05", bid="100", ask="100.1")

    def lost(order: order_pb2.Order) -> Any:
        raise Timeout("no answer before the deadline")  # the request may or may not have acted

    mock.on("place_order", lost, times=10)
    router = AlertRouter([], clock=lambda: now[0])
    cfg = (
        "trading:\n  symbol: BTC-USD\n  price_interval: 1\n  order_quantity: 30\n  min_order_value: 20\n"
        "  buy_window_size: 2\n  sell_window_size: 2\n  recover_position: false\n"
        "engine: {price_send_interval: 0, reconcile_interval: 3600, retry_delay: 0}\n"
        "system: {cancel_on_exit: false}\nrisk:\n  enabled: false\n  alerts: {unresolved_seconds: 30}\n"
    )
    engine = GridEngine(
        parse_config(cfg, {}),
        mock,
        StateStore(sqlite_url(tmp_path / "u.db")),
        clock=lambda: now[0],
        alerts=router,
    )
    await engine.start(run_tasks=False)
    await engine.on_price(D("100"))
    # Looked up at once: "not found" proves nothing inside the landing window, so they stay UNRESOLVED.
    states = [s.state for s in engine.slots.values() if s.order]
    assert states and set(states) == {SlotState.UNRESOLVED}
    await engine.risk.evaluate()
    assert not router.history
    now[0] += 31
    await engine.risk.evaluate()
    assert [a.key for a in router.history] == ["unresolved:BTC-USD"]
    assert f"{len(states)} placements unresolved" in router.history[0].text
    assert mock.orders == {}  # nothing was re-sent


async def test_a_rejected_reduction_alerts_and_is_not_retried_blindly(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=14, clock=SimClock())
    await sim.place_order(
        order_pb2.Order(
            client_order_id="manual",
            symbol=SYM,
            side=BUY,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity="0.01",
        )
    )
    router = AlertRouter([], clock=_now(sim))
    engine = await _engine(
        tmp_path,
        sim,
        "  recover_position: false\nrisk:\n  enabled: false\n"
        "  breakers:\n    stale_feed: {price_seconds: 10, cooldown_seconds: 0}\n"
        "  on_trip: {position: close}\n",
        router,
    )
    await engine.on_price(D((await sim.get_latest_price(SYM)).last))
    await sim.run_for(15.0)
    sim.faults.reject_next(1)  # the venue refuses the reduce-only IOC
    await engine.risk.evaluate()
    keys = [a.key for a in router.history]
    assert keys[0] == f"breaker:stale_feed:{SYM}" and f"reduce_rejected:{SYM}" in keys
    assert await _open(sim) == []
    assert await _position(sim) == D("0.01")  # kept: a refusal is not retried into the same refusal
    record = engine.risk.reducer.record
    assert [a["status"] for a in record["attempts"]] == ["rejected"] and record["state"] == "done"
    assert engine.position() == D("0.01")  # the grid adopted what the venue holds
    await engine.risk.evaluate()
    assert len(record["attempts"]) == 1
