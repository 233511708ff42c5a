# mypy: disable-error-code="comparison-overlap"
"""Issue 11 on the simulated venue: slow acknowledgements ("ack after N seconds, the order visible to
lookups only once acknowledged") in front of an engine with a per-call deadline, audited against the
venue's order history: no client order id twice, no level doubled, every fill recorded.

The engine runs on the venue's SimClock (its monotonic clock is the simulation's seconds); the deadline is
what a remote connector's unary timeout does (the call is abandoned, the venue still acts).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import Timeout, VenueError
from cqvx.types import OrderFilter
from cqvx.venues.sim import InstrumentSpec, MarketModel, SimClock, SimConfig, SimVenue
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.model.slots import SlotState

D = Decimal
SYM = "BTC-USDT"
CFG = """
trading:
  symbol: BTC-USDT
  price_interval: 100
  order_quantity: 200
  min_order_value: 20
  buy_window_size: 4
  sell_window_size: 4
  position_safety_check: 1
  recover_position: false
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
ALL = frozenset(order_pb2.OrderStatus.values())


def _sim() -> SimVenue:
    quiet = MarketModel(
        volatility=0.0,
        jump_intensity=0.0,
        regime_enter_prob=0.0,
        trades_per_step=0,
        level_size=D("5"),
        size_jitter=0.0,
    )
    config = SimConfig(
        seed=7,
        instruments=(InstrumentSpec(symbol=SYM, initial_price=D("60000")),),
        balances={"USDT": D("1000000"), "BTC": D("20")},
        market=quiet,
    )
    return SimVenue(config, clock=SimClock())


class _Deadline:
    """The sim behind a per-call deadline on placements (real seconds; the sim's clock stands still)."""

    def __init__(self, sim: SimVenue, seconds: float = 0.5) -> None:
        self._sim = sim
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        try:
            return await asyncio.wait_for(self._sim.place_order(order), self._seconds)
        except TimeoutError:
            raise Timeout("deadline exceeded", venue="sim") from None

    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        try:
            return await asyncio.wait_for(self._sim.place_orders(orders), self._seconds)
        except TimeoutError:
            raise Timeout("deadline exceeded", venue="sim") from None


async def _engine(sim: SimVenue, path: Path) -> GridEngine:
    engine = GridEngine(
        parse_config(CFG, {}),
        _Deadline(sim),
        StateStore(sqlite_url(path / "s.db")),
        clock=lambda: sim.clock.now_ns() / 1e9,
    )
    await engine.start(run_tasks=False)
    return engine


async def _audit(sim: SimVenue, engine: GridEngine) -> list[order_pb2.Order]:
    history = await sim.get_orders(OrderFilter(symbol=SYM, statuses=ALL))
    counts = Counter(o.client_order_id for o in history)
    assert max(counts.values()) == 1, counts  # no client order id twice
    live = [
        o
        for o in history
        if o.status in (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PARTIALLY_FILLED)
    ]
    levels = Counter((o.side, o.price) for o in live)
    assert max(levels.values(), default=1) == 1, levels  # no level doubled
    recorded = {r.client_order_id for r in engine.store.store.load_orders(SYM)}
    assert {o.client_order_id for o in history} <= recorded  # every venue order has a recorded intent
    return history


async def test_a_slow_ack_within_the_window_binds_the_one_order(tmp_path: Path) -> None:
    sim = _sim()
    async with sim:
        engine = await _engine(sim, tmp_path)
        sim.faults.slow_ack_next(1, seconds=12)  # the 12 s acknowledgement
        price = D((await sim.get_latest_price(SYM)).last)
        await engine.on_price(price)
        states = Counter(s.state for s in engine.slots.values() if s.order)
        assert states[SlotState.UNRESOLVED] == 1  # not found yet, and that is no proof
        await engine.reconcile()
        await engine.on_price(price)
        assert Counter(s.state for s in engine.slots.values() if s.order)[SlotState.UNRESOLVED] == 1
        await sim.run_for(12)
        await engine.reconcile()
        assert {s.state for s in engine.slots.values() if s.order} == {SlotState.LOCKED}
        await engine.on_price(price)
        history = await _audit(sim, engine)
        assert len(history) == len([s for s in engine.slots.values() if s.order])  # one order per level
        await engine.stop()


async def test_an_ack_after_the_window_is_refused_as_a_duplicate_of_the_same_id(tmp_path: Path) -> None:
    sim = _sim()
    async with sim:
        engine = await _engine(sim, tmp_path)
        window = float(engine.config.engine.effective_landing_window)
        sim.faults.slow_ack_next(1, seconds=window + 30)
        price = D((await sim.get_latest_price(SYM)).last)
        await engine.on_price(price)
        (slow,) = [s for s in engine.slots.values() if s.state is SlotState.UNRESOLVED]
        assert slow.order is not None
        cid = slow.order.client_order_id
        await sim.run_for(window + 1)
        await engine.reconcile()  # proven absent: the level is free again
        assert slow.state is SlotState.FREE
        await engine.on_price(price)  # placed again under the SAME id
        assert slow.state is SlotState.LOCKED and slow.order is not None and slow.order.client_order_id == cid
        await sim.run_for(40)  # the first request is acknowledged now: the venue refuses it (duplicate)
        await engine.reconcile()
        await engine.on_price(price)
        history = await _audit(sim, engine)
        assert [o.client_order_id for o in history].count(cid) == 1
        await engine.stop()
