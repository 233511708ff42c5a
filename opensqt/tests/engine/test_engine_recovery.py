"""Position recovery on a fresh state store, and the position breaker, on the simulated venue (SimClock)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from cqc.venues.v1 import order_pb2
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.model.slots import SlotState
from opensqt.strategy.grid import level_price

D = Decimal
PERP, SPOT = "BTC-USDT-PERP", "BTC-USDT"
CFG = """
trading:
  symbol: {symbol}
  price_interval: 30
  order_quantity: 100
  min_order_value: 20
  buy_window_size: 4
  sell_window_size: 10
  position_safety_check: 1
  base_reserve: {reserve}
venue:
  fee_rate: 0
engine:
  price_send_interval: 0
  reconcile_interval: 3600
risk:
  enabled: false
system:
  cancel_on_exit: false
"""


def _cfg(symbol: str, reserve: str = "0") -> str:
    return CFG.format(symbol=symbol, reserve=reserve)


async def _market_buy(sim: SimVenue, symbol: str, qty: str) -> None:
    price = D((await sim.get_latest_price(symbol)).last)
    report = await sim.place_order(
        order_pb2.Order(
            client_order_id="manual-entry",
            symbol=symbol,
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_IOC,
            quantity=qty,
            price=str((price * D("1.01")).quantize(D("0.01"))),
        )
    )
    assert report.order_status == order_pb2.ORDER_STATUS_FILLED


async def test_fresh_store_turns_a_perp_position_into_sell_slots(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=3, clock=SimClock())
    await _market_buy(sim, PERP, "0.0123")
    (pos,) = await sim.get_positions([PERP])
    held = D(pos.quantity)
    assert held == D("0.0123")
    engine = GridEngine(parse_config(_cfg(PERP), {}), sim, StateStore(sqlite_url(tmp_path / "a.db")))
    await engine.start(run_tasks=False)
    assert engine.anchor is not None
    anchor, step = engine.anchor, engine.params.interval
    levels = sorted(engine.slots)
    # ceil(0.0123 / (100 / anchor)) slots at anchor + 30*(1+i), summing exactly to the venue position
    assert levels == list(range(1, len(levels) + 1)) and len(levels) == 8
    assert engine.position() == held
    assert all(
        s.state is SlotState.FREE and s.order is None and s.position > 0 for s in engine.slots.values()
    )
    assert engine.slots[1].entry_price == D(pos.entry_price)  # the venue's entry, for honest PnL
    for lvl in levels[:-1]:
        assert engine.slots[lvl].position * level_price(anchor, lvl, step) <= 100
    assert engine.status()["recovered_slots"] == 8
    # persisted: a restart sees the same slots and does not recover twice
    again = StateStore(sqlite_url(tmp_path / "a.db"))
    assert sum(s.position for s in again.load_slots(PERP).values()) == held
    again.close()
    # the next tick places the closing sells: reduce-only, one interval above each slot
    await engine.on_price(anchor)
    sells = [o for o in await sim.get_orders() if o.side == order_pb2.ORDER_SIDE_SELL]
    assert len(sells) == 8
    assert all(o.reduce_only for o in sells)
    by_price = {D(o.price): D(o.quantity) for o in sells}
    for lvl in levels:
        assert by_price[level_price(anchor, lvl + 1, step)] == engine.slots[lvl].position
    await engine.stop()

    # a restart with the same store does not create the slots again
    engine2 = GridEngine(parse_config(_cfg(PERP), {}), sim, StateStore(sqlite_url(tmp_path / "a.db")))
    await engine2.start(run_tasks=False)
    assert engine2.position() == held and engine2.stats.recovered_slots == 0
    await engine2.stop()
    await sim.aclose()


async def test_fresh_store_on_spot_takes_the_base_balance_above_the_reserve(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=3, clock=SimClock())  # holds 0.1 BTC
    engine = GridEngine(
        parse_config(_cfg(SPOT, reserve="0.09"), {}), sim, StateStore(sqlite_url(tmp_path / "b.db"))
    )
    await engine.start(run_tasks=False)
    assert engine.position() == D("0.01")
    assert len(engine.slots) == 6
    assert engine.slots[1].entry_price == engine.anchor  # spot: valued at the takeover price
    assert engine.anchor is not None
    await engine.on_price(engine.anchor)
    sells = [o for o in await sim.get_orders() if o.side == order_pb2.ORDER_SIDE_SELL]
    assert sum(D(o.quantity) for o in sells) == D("0.01")
    assert not any(o.reduce_only for o in sells)  # spot has no reduce-only flag
    await engine.stop()
    await sim.aclose()


async def test_spot_holdings_are_not_taken_over_unless_a_reserve_is_configured(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=3, clock=SimClock())  # holds 0.1 BTC of the user's own
    text = _cfg(SPOT).replace("  base_reserve: 0\n", "")
    engine = GridEngine(parse_config(text, {}), sim, StateStore(sqlite_url(tmp_path / "e.db")))
    await engine.start(run_tasks=False)
    assert engine.slots == {} and engine.position() == 0
    await engine.stop()
    await sim.aclose()


async def test_recovery_can_be_switched_off(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=3, clock=SimClock())
    text = _cfg(SPOT).replace("  base_reserve: 0\n", "  recover_position: false\n")
    engine = GridEngine(parse_config(text, {}), sim, StateStore(sqlite_url(tmp_path / "c.db")))
    await engine.start(run_tasks=False)
    assert engine.slots == {} and engine.position() == 0
    await engine.stop()
    await sim.aclose()


async def test_position_divergence_opens_the_breaker_after_two_passes(tmp_path: Path) -> None:
    sim = SimVenue.default(seed=3, clock=SimClock())
    engine = GridEngine(parse_config(_cfg(PERP), {}), sim, StateStore(sqlite_url(tmp_path / "d.db")))
    await engine.start(run_tasks=False)
    price = D((await sim.get_latest_price(PERP)).last)
    await engine.on_price(price)
    assert any(o.side == order_pb2.ORDER_SIDE_BUY for o in await sim.get_orders())
    assert (await engine.reconcile())["position"] == 0
    await _market_buy(sim, PERP, "0.01")  # somebody trades the account behind the engine's back
    assert (await engine.reconcile())["position"] == 1
    assert not engine.breaker.open  # one pass could be a fill in flight
    await engine.reconcile()
    assert engine.breaker.open and engine.paused
    assert not [o for o in await sim.get_orders() if o.side == order_pb2.ORDER_SIDE_BUY]  # buys cancelled
    assert b'market_maker_circuit_breaker_open{symbol="BTC-USDT-PERP"} 1.0' in engine.metrics.render()
    status = engine.status()
    breaker = status["risk"]["circuit_breaker"]
    assert {k: breaker[k] for k in ("open", "reason", "trips")} == {
        "open": True,
        "reason": "position_divergence",
        "trips": 1,
    }
    assert "opensqt resync" in breaker["detail"] and "0.01" in breaker["detail"]  # the way back
    assert status["reconciler"]["venue_position"] == "0.01"
    await engine.stop()
    await sim.aclose()
