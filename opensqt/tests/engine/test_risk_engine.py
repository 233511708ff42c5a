"""Circuit breakers, exposure limits, the leverage check and alerts on the simulated venue (docs/risk.md).

Every test runs the real engine against :class:`cqvx.venues.sim.SimVenue` on a SimClock (no wall-clock
sleeps), drives a fault or a price path, and checks the venue's orders, the position and the alerts.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.config import Config, parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.reducer import reduce_key
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.model.client_ids import REDUCE_PREFIX
from opensqt.observability.alerts import Alert, AlertRouter
from opensqt.risk.startup import StartupCheckFailed

D = Decimal
SYM = "BTC-USDT-PERP"
BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL

BASE = """
trading:
  symbol: BTC-USDT-PERP
  price_interval: 30
  order_quantity: 100
  min_order_value: 20
  buy_window_size: 5
  sell_window_size: 5
  position_safety_check: 10
  recover_position: false
engine:
  price_send_interval: 0
  reconcile_interval: 3600
system:
  cancel_on_exit: false
risk:
  enabled: false
"""


class Recorder:
    """An alert router whose sink is a list (the HTTP sinks have their own tests)."""

    def __init__(self, sim: SimVenue) -> None:
        self.router = AlertRouter([], dedup_seconds=300, clock=_seconds(sim))

    @property
    def alerts(self) -> list[Alert]:
        return list(self.router.history)

    def sent_keys(self) -> list[str]:
        return [a.key for a in self.router.history]


def _seconds(sim: SimVenue) -> Any:
    return lambda: sim.clock.now_ns() / 1e9


def _config(extra: str = "") -> Config:
    return parse_config(BASE + extra, {})


async def _engine(
    tmp_path: Path, sim: SimVenue, cfg: Config, rec: Recorder, *, check: bool = True, name: str = "s.db"
) -> GridEngine:
    engine = GridEngine(
        cfg,
        sim,
        StateStore(sqlite_url(tmp_path / name)),
        clock=_seconds(sim),
        alerts=rec.router,
    )
    await engine.start(run_tasks=False, check=check)
    return engine


def _sim() -> SimVenue:
    return SimVenue.default(seed=3, clock=SimClock())


async def _open(sim: SimVenue) -> list[order_pb2.Order]:
    return [
        o
        for o in await sim.get_orders(OrderFilter(symbol=SYM))
        if o.status in (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PARTIALLY_FILLED)
    ]


async def _tick(engine: GridEngine, sim: SimVenue) -> None:
    await engine.on_price(D((await sim.get_latest_price(SYM)).last))


async def _market(sim: SimVenue, side: Any, qty: str) -> None:
    await sim.place_order(
        order_pb2.Order(
            client_order_id=f"manual-{side}-{qty}",
            symbol=SYM,
            side=side,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity=qty,
        )
    )


# ====================================================================================== leverage


async def test_leverage_check_uses_the_venue_leverage_and_fails_above_the_limit(tmp_path: Path) -> None:
    sim = _sim()
    sim.set_leverage(SYM, D(20))
    await _market(sim, BUY, "0.01")  # the account holds a 20x position
    rec = Recorder(sim)
    with pytest.raises(StartupCheckFailed) as info:
        await _engine(tmp_path, sim, _config("  max_leverage: 5\n"), rec)
    assert [c.name for c in info.value.failed] == ["leverage"]
    assert "20" in info.value.failed[0].detail


async def test_leverage_within_the_limit_passes(tmp_path: Path) -> None:
    sim = _sim()
    sim.set_leverage(SYM, D(3))
    await _market(sim, BUY, "0.01")
    engine = await _engine(tmp_path, sim, _config("  max_leverage: 5\n"), Recorder(sim))
    (lev,) = [c for c in engine.checks if c.name == "leverage"]
    assert lev.ok and "3" in lev.detail


# ====================================================================================== helpers


async def _drive(sim: SimVenue, coro: Any, step: float = 0.5) -> Any:
    """Run ``coro`` while the simulated clock advances (latency faults complete only then)."""
    task = asyncio.ensure_future(coro)
    for _ in range(10_000):
        if task.done():
            break
        await sim.run_for(step)
    return await task


class Pump:
    """The execution stream into the engine (what the supervisor's order-stream loop does)."""

    def __init__(self, engine: GridEngine, sim: SimVenue) -> None:
        self.engine, self.sim = engine, sim
        self.stream = sim.subscribe_executions([SYM])
        self.inbox: list[Any] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for r in self.stream:
            self.inbox.append(r)

    async def drain(self) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        batch, self.inbox[:] = self.inbox[:], []
        for r in batch:
            await self.engine.on_report(r)

    async def close(self) -> None:
        self.task.cancel()
        await self.stream.aclose()


def _sides(orders: list[order_pb2.Order]) -> list[int]:
    return sorted(o.side for o in orders)


# ====================================================================================== breakers


async def test_stale_price_feed_trips_cancels_opening_orders_and_closes_after_the_cool_down(
    tmp_path: Path,
) -> None:
    sim = _sim()
    rec = Recorder(sim)
    cfg = _config("  breakers:\n    stale_feed: {price_seconds: 10, cooldown_seconds: 30}\n")
    engine = await _engine(tmp_path, sim, cfg, rec)
    await _tick(engine, sim)
    assert {o.side for o in await _open(sim)} == {BUY}  # the grid's opening buys
    await sim.run_for(15.0)  # no price for 15 s
    await engine.risk.evaluate()
    assert engine.risk.book.open_kinds() == ["stale_feed"]
    assert engine.paused
    assert await _open(sim) == []  # the opening orders were cancelled
    assert rec.sent_keys() == [f"breaker:stale_feed:{SYM}"]
    assert "no price for 15" in rec.alerts[0].text
    # The feed is back: still open during the cool-down, then closes by itself.
    await _tick(engine, sim)
    assert await _open(sim) == []
    await sim.run_for(31.0)
    await _tick(engine, sim)
    await engine.risk.evaluate()
    assert not engine.risk.book.open and not engine.paused
    await _tick(engine, sim)
    assert {o.side for o in await _open(sim)} == {BUY}


async def test_reject_rate_trips_is_durable_across_a_restart_and_resets_manually(tmp_path: Path) -> None:
    sim = _sim()
    rec = Recorder(sim)
    cfg = _config(
        "  breakers:\n    reject_rate: {max_percent: 50, window: 4, min_orders: 4, cooldown_seconds: 0}\n"
    )
    engine = await _engine(tmp_path, sim, cfg, rec)
    sim.faults.reject_next(3)
    await _tick(engine, sim)  # 4 buys: 3 rejected by the venue, 1 placed
    assert engine.risk.book.open_kinds() == ["reject_rate"]
    assert await _open(sim) == []  # the one that landed was cancelled: it opens exposure
    assert rec.sent_keys() == [f"breaker:reject_rate:{SYM}"]
    assert "3 of the last 4" in rec.alerts[0].text
    await engine.stop(cancel_orders=False)

    # Restart on the same state store: the breaker is still open and nothing is placed.
    rec2 = Recorder(sim)
    engine2 = await _engine(tmp_path, sim, cfg, rec2)
    assert engine2.risk.book.open_kinds() == ["reject_rate"] and engine2.paused
    await _tick(engine2, sim)
    assert await _open(sim) == []
    assert engine2.status()["risk"]["breakers"]["open"] == ["reject_rate"]
    # No cool-down configured: only the manual reset closes it; the reset is durable too.
    assert await engine2.reset_breakers(operator="ops") == ["reject_rate"]
    await _tick(engine2, sim)
    assert {o.side for o in await _open(sim)} == {BUY}
    await engine2.stop(cancel_orders=False)
    engine3 = await _engine(tmp_path, sim, cfg, Recorder(sim))
    assert not engine3.risk.book.open


async def test_venue_latency_above_the_threshold_trips(tmp_path: Path) -> None:
    sim = _sim()
    rec = Recorder(sim)
    cfg = _config("  breakers:\n    latency: {max_ms: 1000, samples: 1, cooldown_seconds: 60}\n")
    engine = await _engine(tmp_path, sim, cfg, rec)
    price = D((await sim.get_latest_price(SYM)).last)
    sim.faults.latency = 3.0  # every request takes 3 simulated seconds
    await _drive(sim, engine.on_price(price))
    assert engine.risk.book.open_kinds() == ["latency"]
    assert "slower than 1000 ms" in rec.alerts[0].text
    sim.faults.latency = 0.0
    assert await _open(sim) == []
    # Evidence-driven: the cool-down is the pause; after it the breaker closes and trading resumes.
    await sim.run_for(61.0)
    await engine.risk.evaluate()
    assert not engine.risk.book.open
    await _tick(engine, sim)
    assert {o.side for o in await _open(sim)} == {BUY}


async def test_margin_breaker_trips_near_liquidation_after_a_crash_and_keeps_the_position(
    tmp_path: Path,
) -> None:
    sim = _sim()
    sim.set_leverage(SYM, D(20))
    await _market(sim, BUY, "0.01")  # liquidation about 5 % below the entry
    rec = Recorder(sim)
    cfg = _config("  max_leverage: 25\n  breakers:\n    margin: {min_liquidation_distance_percent: 3}\n")
    engine = await _engine(tmp_path, sim, cfg, rec, check=False)
    await engine.risk.evaluate()
    assert not engine.risk.book.open
    (pos,) = await sim.get_positions([SYM])
    liq = D(pos.liquidation_price)
    sim.set_price(SYM, liq * D("1.02"))  # the crash: 2 % above the liquidation price
    await engine.risk.evaluate()
    assert engine.risk.book.open_kinds() == ["margin"]
    assert rec.sent_keys() == [f"breaker:margin:{SYM}"]
    (after,) = await sim.get_positions([SYM])
    assert D(after.quantity) == D("0.01")  # on_trip keep: the position is untouched
    assert engine.status()["risk"]["breakers"]["liquidation_distance_percent"] is not None


async def test_drawdown_breaker_on_a_price_crash(tmp_path: Path) -> None:
    sim = _sim()
    rec = Recorder(sim)
    cfg = _config("  breakers:\n    drawdown: {absolute: 5, capital: 10000}\n")
    engine = await _engine(tmp_path, sim, cfg, rec)
    pump = Pump(engine, sim)
    try:
        await _tick(engine, sim)
        await engine.risk.evaluate()
        price = D((await sim.get_latest_price(SYM)).last)
        sim.set_price(SYM, price - 95)  # the price gaps down through three buy levels
        sim.inject_trade(SYM, price - 95, D("0.01"), SELL)
        await pump.drain()
        assert engine.position() > 0
        await engine.risk.evaluate()
        assert not engine.risk.book.open  # a few cents down: within the limit
        sim.set_price(SYM, price - 2000)  # the crash
        sim.inject_trade(SYM, price - 2000, D("0.01"), SELL)
        await pump.drain()
        await _tick(engine, sim)
        await engine.risk.evaluate()
    finally:
        await pump.close()
    assert engine.risk.book.open_kinds() == ["drawdown"]
    assert "below its peak 10000" in rec.alerts[0].text
    # Only closing sells remain at the venue; the position is kept.
    assert {o.side for o in await _open(sim)} <= {SELL}
    assert engine.position() > 0


async def test_losing_streak_breaker_counts_consecutive_losing_round_trips(tmp_path: Path) -> None:
    from opensqt.engine.context import FillEvent

    sim = _sim()
    rec = Recorder(sim)
    cfg = _config("  breakers:\n    losing_streak: {max_losses: 2, cooldown_seconds: 0}\n")
    engine = await _engine(tmp_path, sim, cfg, rec)
    await _tick(engine, sim)
    fills = engine.ledger.fills
    fills.append(FillEvent(0, 1, SELL, D(1), D(1), D(-1)))
    fills.append(FillEvent(0, 1, SELL, D(1), D(1), D(2)))  # a win resets the streak
    fills.append(FillEvent(0, 1, SELL, D(1), D(1), D(-1)))
    await engine.risk.evaluate()
    assert not engine.risk.book.open
    fills.append(FillEvent(0, 1, SELL, D(1), D(1), D(-3)))
    await engine.risk.evaluate()
    assert engine.risk.book.open_kinds() == ["losing_streak"]
    assert await _open(sim) == []
    assert rec.sent_keys() == [f"breaker:losing_streak:{SYM}"]


# ====================================================================================== exposure


async def test_symbol_exposure_limit_denies_locally_before_the_venue(tmp_path: Path) -> None:
    sim = _sim()
    rec = Recorder(sim)
    cfg = _config("  exposure: {max_symbol_notional: 250}\n")
    engine = await _engine(tmp_path, sim, cfg, rec)
    await _tick(engine, sim)
    open_orders = await _open(sim)
    assert len(open_orders) == 2  # 2 x 100 quote admitted, the other 2 buys denied locally
    assert engine.risk.denied == {"symbol_notional": 2}
    assert engine.stats.rejected == 0  # a denial is not a venue rejection
    assert rec.sent_keys() == [f"limit:symbol_notional:{SYM}"]  # de-duplicated: one alert


async def test_account_exposure_limit_counts_the_other_symbols(tmp_path: Path) -> None:
    from opensqt.risk.exposure import AccountExposure

    sim = _sim()
    account = AccountExposure({"ETH-USDT-PERP": D(850)})
    cfg = _config("  exposure: {max_account_notional: 1000}\n")
    engine = GridEngine(
        cfg,
        sim,
        StateStore(sqlite_url(tmp_path / "a.db")),
        clock=_seconds(sim),
        alerts=Recorder(sim).router,
        account=account,
    )
    await engine.start(run_tasks=False)
    await _tick(engine, sim)
    assert len(await _open(sim)) == 1
    assert engine.risk.denied == {"account_notional": 3}
    assert D(900) < account.total() <= D(1000)


# ====================================================================================== alerts


async def test_unresolved_orders_and_crashed_loops_alert(tmp_path: Path) -> None:
    from opensqt.model.slots import SlotState

    sim = _sim()
    rec = Recorder(sim)
    cfg = _config("  alerts: {unresolved_seconds: 30}\n")
    engine = await _engine(tmp_path, sim, cfg, rec)
    await _tick(engine, sim)
    # One placement whose outcome is unknown (what a lost reply leaves until a lookup settles it).
    slot = next(s for s in engine.slots.values() if s.order is not None)
    slot.state = SlotState.UNRESOLVED
    assert slot.order is not None
    engine.ledger.sent_at[slot.order.client_order_id] = sim.clock.now_ns() / 1e9
    await engine.risk.evaluate()
    assert f"unresolved:{SYM}" not in rec.sent_keys()  # within the bound
    await sim.run_for(31.0)
    await _tick(engine, sim)
    await engine.risk.evaluate()
    assert f"unresolved:{SYM}" in rec.sent_keys()
    engine.risk.crashed()
    assert f"strategy_crash:{SYM}" in rec.sent_keys()
    assert engine.stats.anomalies == 1


# ====================================================================================== CLI


async def test_cli_risk_reset_closes_a_stored_breaker(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opensqt.cli import app

    sim = _sim()
    extra = "  breakers:\n    reject_rate: {max_percent: 50, window: 4, min_orders: 4, cooldown_seconds: 0}\n"
    engine = await _engine(tmp_path, sim, _config(extra), Recorder(sim), name="cli.db")
    sim.faults.reject_next(3)
    await _tick(engine, sim)
    assert engine.risk.book.open
    await engine.stop(cancel_orders=False)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(BASE + extra)
    runner = CliRunner()
    args = ["risk-reset", "--config", str(cfg_path), "--state", str(tmp_path / "cli.db")]
    bad = runner.invoke(app, [*args, "--breaker", "nope"])
    assert bad.exit_code == 2
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0 and "reset: reject_rate" in ok.output
    again = await _engine(tmp_path, sim, _config(extra), Recorder(sim), name="cli.db")
    assert not again.risk.book.open


# ====================================================================================== position on a trip


async def _all_orders(sim: SimVenue) -> list[order_pb2.Order]:
    return await sim.get_orders(OrderFilter(symbol=SYM, statuses=OPEN_STATUSES | TERMINAL_STATUSES))


async def _venue_position(sim: SimVenue) -> Decimal:
    return sum((D(p.quantity) for p in await sim.get_positions([SYM])), D(0))


async def test_a_crash_trips_drawdown_cancels_and_reduces_the_position_by_half(tmp_path: Path) -> None:
    sim = _sim()
    rec = Recorder(sim)
    cfg = _config(
        "  breakers:\n    drawdown: {absolute: 5, capital: 10000}\n"
        "  on_trip: {position: reduce, reduce_to_percent: 50}\n"
        "  slippage: {base_percent: 1, max_percent: 2}\n"
    )
    engine = await _engine(tmp_path, sim, cfg, rec)
    pump = Pump(engine, sim)
    try:
        await _tick(engine, sim)
        await engine.risk.evaluate()
        price = D((await sim.get_latest_price(SYM)).last)
        sim.set_price(SYM, price - 95)  # the price gaps down through three buy levels
        sim.inject_trade(SYM, price - 95, D("0.01"), SELL)
        await pump.drain()
        assert await _venue_position(sim) > 0
        sim.set_price(SYM, price - 2000)  # the crash
        sim.inject_trade(SYM, price - 2000, D("0.01"), SELL)
        await pump.drain()
        held = await _venue_position(sim)
        assert held > 0 and engine.position() == held
        await _tick(engine, sim)
        await engine.risk.evaluate()
        await pump.drain()
    finally:
        await pump.close()
    assert engine.risk.book.open_kinds() == ["drawdown"]
    # No order of ours is left working: the opening buys and (before the reduction) the closing sells.
    assert await _open(sim) == []
    after = await _venue_position(sim)
    cut = (held / 2).quantize(D("0.00001"), rounding="ROUND_DOWN")  # the reduction, lot-floored
    target = held - cut
    assert after == target  # half sold, never more
    reductions = [o for o in await _all_orders(sim) if o.client_order_id.startswith(REDUCE_PREFIX)]
    assert len(reductions) == 1
    (red,) = reductions
    assert red.reduce_only and red.side == SELL and red.time_in_force == order_pb2.TIME_IN_FORCE_IOC
    assert D(red.price) >= (price - 2000) * D("0.98")  # bounded by the slippage guard's cap
    # The grid adopted the venue's position (audited resync), and the alerts say what happened.
    assert engine.position() == after
    keys = rec.sent_keys()
    assert keys[0] == f"breaker:drawdown:{SYM}"
    assert f"reduce:1:{SYM}" in keys
    reduced = next(a for a in rec.alerts if a.key == f"reduce:1:{SYM}")
    assert "reduced after the drawdown trip" in reduced.title and str(held) in reduced.text
    record = json.loads(engine.ledger.store.store.get_meta(reduce_key(SYM)) or "{}")
    assert record["state"] == "done" and record["target"] == str(target)
    await engine.risk.evaluate()  # a later pass changes nothing
    assert await _venue_position(sim) == after


async def test_close_on_trip_flattens_and_a_restart_mid_send_looks_up_never_resends(tmp_path: Path) -> None:
    sim = _sim()
    await _market(sim, BUY, "0.01")
    cfg = _config(
        "  breakers:\n    stale_feed: {price_seconds: 10, cooldown_seconds: 0}\n"
        "  on_trip: {position: close}\n"
    )
    engine = await _engine(tmp_path, sim, cfg, Recorder(sim), check=False)
    await _tick(engine, sim)
    await sim.run_for(15.0)
    sim.faults.slow_ack_next(1, seconds=5.0)  # the reduction is in flight when the process dies
    dying = asyncio.ensure_future(engine.risk.evaluate())
    record: dict[str, Any] = {}
    for _ in range(500):  # until the attempt is on disk (the store writes on its own thread)
        await asyncio.sleep(0.01)
        record = json.loads(engine.ledger.store.store.get_meta(reduce_key(SYM)) or "{}")
        if record.get("attempts"):
            break
    assert [a["status"] for a in record["attempts"]] == ["sending"]  # durable before the send
    assert sim.faults.pending_acks == 1 and await _venue_position(sim) == D("0.01")
    dying.cancel()  # kill -9: the outcome was never recorded
    await asyncio.gather(dying, return_exceptions=True)
    await sim.run_for(6.0)  # the venue acts on the request anyway
    assert await _venue_position(sim) == 0

    rec2 = Recorder(sim)
    engine2 = await _engine(tmp_path, sim, cfg, rec2, check=False)
    assert engine2.risk.reducer.active and engine2.risk.book.open_kinds() == ["stale_feed"]
    await engine2.risk.evaluate()  # resumes: looks the attempt up by its id, sends nothing
    reductions = [o for o in await _all_orders(sim) if o.client_order_id.startswith(REDUCE_PREFIX)]
    assert len(reductions) == 1
    assert await _venue_position(sim) == 0
    assert not engine2.risk.reducer.active
    assert f"reduce:1:{SYM}" in rec2.sent_keys()
    assert engine2.position() == 0


async def test_a_book_beyond_the_slippage_allowance_holds_the_reduction_back(tmp_path: Path) -> None:
    sim = _sim()
    await _market(sim, BUY, "0.01")
    rec = Recorder(sim)
    cfg = _config(
        "  breakers:\n    stale_feed: {price_seconds: 10, cooldown_seconds: 0}\n"
        "  on_trip: {position: close}\n"
        "  slippage: {base_percent: 0, max_percent: 0.0001}\n"  # no room at all: even the best bid is out
    )
    engine = await _engine(tmp_path, sim, cfg, rec, check=False)
    await _tick(engine, sim)
    await sim.run_for(15.0)
    await engine.risk.evaluate()
    assert engine.risk.book.open_kinds() == ["stale_feed"]
    assert [o for o in await _all_orders(sim) if o.client_order_id.startswith(REDUCE_PREFIX)] == []
    assert await _venue_position(sim) == D("0.01")  # nothing sent beyond the bound
    assert f"reduce_denied:{SYM}" in rec.sent_keys()
    assert engine.risk.reducer.active  # tried again on every pass


async def test_a_lost_reply_of_a_reduction_is_looked_up_not_resent(tmp_path: Path) -> None:
    sim = _sim()
    await _market(sim, BUY, "0.01")
    rec = Recorder(sim)
    cfg = _config(
        "  breakers:\n    stale_feed: {price_seconds: 10, cooldown_seconds: 0}\n"
        "  on_trip: {position: reduce, reduce_to_percent: 30}\n"
    )
    engine = await _engine(tmp_path, sim, cfg, rec, check=False)
    await _tick(engine, sim)
    await sim.run_for(15.0)
    sim.faults.ambiguous_next(1)  # the IOC acts at the venue, its reply is lost
    await engine.risk.evaluate()
    reductions = [o for o in await _all_orders(sim) if o.client_order_id.startswith(REDUCE_PREFIX)]
    assert len(reductions) == 1 and D(reductions[0].quantity) == D("0.007")
    assert await _venue_position(sim) == D("0.003")  # 30 % kept, exactly once
    assert not engine.risk.reducer.active and engine.position() == D("0.003")
    assert f"reduce:1:{SYM}" in rec.sent_keys()
