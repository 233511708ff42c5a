"""Issue 11, "Unknown is not absent": order outcomes under slow venues, lost replies and failing stores.

GridEngine against cqvx's MockVenue (behaviours stand in for the simulated venue's faults: a placement
that times out and lands later, a reply lost after acting, lookups that only know recent client ids) and
a real SQLite store.  Time is a fake monotonic clock: no sleeps encode timing.
"""

# mypy: disable-error-code="comparison-overlap"
from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from cqc.venues.v1 import order_pb2
from cqvx.errors import NotFound, Timeout
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from opensqt.config import ConfigError, parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, StoreWriteFailed, sqlite_url
from opensqt.model.slots import SlotState

D = Decimal
SYM = "BTC-USD"
CFG = """
trading:
  symbol: BTC-USD
  price_interval: 1
  order_quantity: 30
  min_order_value: 20
  buy_window_size: 5
  sell_window_size: 5
  position_safety_check: 10
  recover_position: false
engine:
  price_send_interval: 0
  reconcile_interval: 3600
  retry_delay: 0
system:
  cancel_on_exit: false
"""


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _mock() -> MockVenue:
    mock = MockVenue(
        balances=[
            builders.balance(asset="USD", total="1000000", available="1000000", locked="0"),
            builders.balance(asset="BTC", total="100", available="100", locked="0"),
        ]
    )
    mock.prices[SYM] = builders.price(symbol=SYM, last="100.05", bid="100", ask="100.1")
    return mock


async def _noop_sleep(_s: float) -> None:
    return None


async def _engine(mock: MockVenue, path: Path, clock: _Clock, store: StateStore | None = None) -> GridEngine:
    engine = GridEngine(
        parse_config(CFG, {}),
        mock,
        store or StateStore(sqlite_url(path / "state.db")),
        clock=clock,
        sleep=_noop_sleep,
    )
    engine.store._sleep = _noop_sleep  # the store's write retries wait on the fake clock too
    await engine.start(run_tasks=False)
    return engine


def _open(mock: MockVenue) -> list[order_pb2.Order]:
    return [o for o in mock.orders.values() if o.status == order_pb2.ORDER_STATUS_OPEN]


def _window(engine: GridEngine) -> float:
    return float(engine.config.engine.effective_landing_window)


def _lost(mock: MockVenue, stash: list[order_pb2.Order]) -> Any:
    """A placement whose reply is lost and that the venue creates only later (slow acknowledgement)."""

    def handler(order: order_pb2.Order) -> Any:
        stash.append(order)
        raise Timeout("no answer before the deadline")

    return handler


# ------------------------------------------------------------------------------------------- config


def test_landing_window_default_is_derived_from_the_time_budget() -> None:
    e = parse_config(CFG, {}).engine
    # engine deadline 10 + connector/transport lifetime 40 (RetryPolicy.max_elapsed 30 + timeout 10) + 10
    assert e.effective_landing_window == D(60)
    assert e.effective_stuck_after == D(60)
    e2 = parse_config(CFG.replace("retry_delay: 0\n", "retry_delay: 0\n  landing_window: 90\n"), {}).engine
    assert e2.effective_landing_window == D(90)


def test_landing_window_shorter_than_the_request_lifetime_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"engine.*landing_window.*>= call_deadline \+ request_lifetime = 50"
    ):
        parse_config(CFG.replace("retry_delay: 0\n", "retry_delay: 0\n  landing_window: 20\n"), {})


# ------------------------------------------------------------------------- not found is not proof


async def test_not_found_stays_unresolved_and_a_slow_ack_binds_the_same_order(tmp_path: Path) -> None:
    mock, clock, stash = _mock(), _Clock(), list[order_pb2.Order]()
    engine = await _engine(mock, tmp_path, clock)
    mock.on("place_order", _lost(mock, stash), times=4)
    await engine.on_price(D("100"))
    assert len(stash) == 4 and mock.orders == {}
    # the lookups say "not found": no proof while the requests may still land
    assert {s.state for s in engine.slots.values() if s.order} == {SlotState.UNRESOLVED}
    clock.t += _window(engine) / 2
    await engine.reconcile()
    assert {s.state for s in engine.slots.values() if s.order} == {SlotState.UNRESOLVED}
    assert engine.status()["reconciler"]["awaiting_landing"] == 4
    for o in stash:  # the venue acknowledges them after all, 30 s late
        mock._place(o)
    await engine.reconcile()
    assert {s.state for s in engine.slots.values() if s.order} == {SlotState.LOCKED}
    await engine.on_price(D("100"))
    ids = [o.client_order_id for o in mock.orders.values()]
    assert len(ids) == 4 == len(set(ids))  # no level placed twice
    await engine.stop()


async def test_after_the_window_the_level_reuses_its_id_so_a_late_landing_is_a_duplicate(
    tmp_path: Path,
) -> None:
    mock, clock, stash = _mock(), _Clock(), list[order_pb2.Order]()
    engine = await _engine(mock, tmp_path, clock)
    mock.on("place_order", _lost(mock, stash), times=4)
    await engine.on_price(D("100"))
    first = {o.client_order_id for o in stash}
    clock.t += _window(engine) + 1
    await engine.reconcile()
    assert all(s.state is SlotState.FREE for s in engine.slots.values())
    mock._place(stash[0])  # one lost request lands just as the level is placed again
    await engine.on_price(D("100"))
    ids = [o.client_order_id for o in mock.orders.values()]
    assert set(ids) == first and len(ids) == 4  # same ids: the late one answered DuplicateOrder
    late = next(
        s for s in engine.slots.values() if s.order and s.order.client_order_id == stash[0].client_order_id
    )
    assert late.state is SlotState.LOCKED and late.order is not None
    assert late.order.order_id == mock._by_client_id[stash[0].client_order_id]
    await engine.stop()


# ------------------------------------------------------------------------------------- late orders


async def _absent_then_land(tmp_path: Path) -> tuple[MockVenue, _Clock, GridEngine, list[order_pb2.Order]]:
    """Four placements lost, proven absent after the window, and the price moved away (so the grid does
    not place those levels again); then the venue creates them after all."""
    mock, clock, stash = _mock(), _Clock(), list[order_pb2.Order]()
    engine = await _engine(mock, tmp_path, clock)
    mock.on("place_order", _lost(mock, stash), times=4)
    await engine.on_price(D("100"))
    clock.t += _window(engine) + 1
    await engine.reconcile()
    assert all(s.state is SlotState.FREE for s in engine.slots.values())
    for o in stash:
        mock._place(o)
    return mock, clock, engine, stash


async def test_a_late_order_is_bound_to_its_slot_and_its_fill_recorded(tmp_path: Path) -> None:
    mock, _clock, engine, stash = await _absent_then_land(tmp_path)
    found = await engine.reconcile()
    assert found["late"] == 4
    assert engine.status()["reconciler"]["late_adopted"] == 4
    bound = {
        s.order.client_order_id for s in engine.slots.values() if s.order and s.state is SlotState.LOCKED
    }
    assert bound == {o.client_order_id for o in stash}
    report = await mock.fill(client_order_id=stash[0].client_order_id)
    await engine.on_report(report)
    fills = engine.store.store.load_fills(SYM)
    assert [f.client_order_id for f in fills] == [stash[0].client_order_id]
    assert engine.position() == D(stash[0].quantity)
    await engine.stop()


async def test_a_late_fill_reported_before_any_pass_is_recorded_and_the_rest_cancelled(
    tmp_path: Path,
) -> None:
    mock, _clock, engine, stash = await _absent_then_land(tmp_path)
    cid = stash[0].client_order_id
    report = await mock.fill(client_order_id=cid, quantity=D(stash[0].quantity) / 2)
    await engine.on_report(report)  # no slot holds it: the fill still counts
    assert engine.position() == D(stash[0].quantity) / 2
    assert engine.reconciler.requested.is_set()  # an order no slot expects asks for a pass at once
    assert [f.client_order_id for f in engine.store.store.load_fills(SYM)] == [cid]
    await engine.reconcile()
    # partly filled already, so it is not bound (its fill is in the slot's position): it is cancelled
    assert mock.orders[mock._by_client_id[cid]].status == order_pb2.ORDER_STATUS_CANCELLED
    await engine.on_report(report)  # a replay adds nothing
    assert engine.position() == D(stash[0].quantity) / 2
    await engine.stop()


async def test_a_late_order_maps_back_to_its_slot_after_a_restart(tmp_path: Path) -> None:
    mock, clock, engine, stash = await _absent_then_land(tmp_path)
    await engine.store.aclose()  # crash: no stop
    engine2 = await _engine(mock, tmp_path, clock)
    # recovery's pass happens at start only for bound slots; a pass finds the late orders by the store
    await engine2.reconcile()
    levels = {s.order.client_order_id: lvl for lvl, s in engine2.slots.items() if s.order}
    issued = {r.client_order_id: r.level for r in engine2.store.store.load_orders(SYM)}
    assert levels == {o.client_order_id: issued[o.client_order_id] for o in stash}
    await engine2.stop()


async def test_shutdown_cancels_late_orders_no_slot_holds(tmp_path: Path) -> None:
    mock, _clock, engine, _stash = await _absent_then_land(tmp_path)
    assert len(_open(mock)) == 4
    await engine.stop(cancel_orders=True)
    assert _open(mock) == []


async def test_shutdown_waits_for_an_unresolved_placement_to_land_and_cancels_it(tmp_path: Path) -> None:
    """cancel_on_exit: a placement that may still land is looked up until it shows (then cancelled) or
    its landing window has passed; shutdown never leaves a late landing working."""
    mock, clock, stash = _mock(), _Clock(), list[order_pb2.Order]()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the slow venue acknowledges them while shutdown waits
        slept.append(seconds)
        clock.t += seconds
        if len(slept) == 2:
            for o in stash:
                mock._place(o)

    engine = GridEngine(
        parse_config(CFG, {}), mock, StateStore(sqlite_url(tmp_path / "state.db")), clock=clock, sleep=sleep
    )
    engine.store._sleep = _noop_sleep
    await engine.start(run_tasks=False)
    mock.on("place_order", _lost(mock, stash), times=4)
    await engine.on_price(D("100"))
    assert len(stash) == 4 and mock.orders == {}
    await engine.stop(cancel_orders=True)
    assert len(mock.orders) == 4 and _open(mock) == []  # landed during shutdown, then cancelled
    assert sum(slept) < _window(engine)


async def test_shutdown_waits_no_longer_than_the_landing_window(tmp_path: Path) -> None:
    mock, clock, stash = _mock(), _Clock(), list[order_pb2.Order]()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.t += seconds

    engine = GridEngine(
        parse_config(CFG, {}), mock, StateStore(sqlite_url(tmp_path / "state.db")), clock=clock, sleep=sleep
    )
    engine.store._sleep = _noop_sleep
    await engine.start(run_tasks=False)
    mock.on("place_order", _lost(mock, stash), times=4)
    await engine.on_price(D("100"))
    await engine.stop(cancel_orders=True)
    assert _window(engine) <= sum(slept) <= _window(engine) + 2
    assert all(s.state is SlotState.FREE for s in engine.slots.values())  # proven absent: never landed


async def test_a_pass_is_requested_when_a_landing_window_expires(tmp_path: Path) -> None:
    """An UNRESOLVED slot is looked at again as soon as its window expires, not a reconcile interval
    (here an hour) later."""
    mock, clock, stash = _mock(), _Clock(), list[order_pb2.Order]()
    engine = await _engine(mock, tmp_path, clock)
    mock.on("place_order", _lost(mock, stash), times=4)
    await engine.on_price(D("100"))
    clock.t += _window(engine) - 0.05  # the windows expire 50 ms (real time) from now
    await engine.reconcile()
    assert engine.status()["reconciler"]["awaiting_landing"] == 4
    assert not engine.reconciler.requested.is_set()
    await asyncio.wait_for(engine.reconciler.requested.wait(), timeout=10)
    await engine.stop()


# ---------------------------------------------------------------------------- best id, cancels


async def test_lookup_uses_the_venue_order_id_when_the_client_id_is_too_old(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    slot = next(s for s in engine.slots.values() if s.order)
    assert slot.order is not None and slot.order.order_id
    cid = slot.order.client_order_id

    def coinbase_like(symbol: str, order_id: str | None, client_order_id: str | None) -> Any:
        if client_order_id:  # only recent orders are found by client order id
            raise NotFound("no order with that client order id in the lookup window")
        return mock._find(order_id, None)

    mock.on("get_order", coinbase_like)
    await mock.fill(client_order_id=cid)
    await engine.resolve(cid)
    assert slot.state is SlotState.FREE and slot.position > 0  # found by venue id, fill recorded
    await engine.stop()


async def test_a_cancel_whose_reply_is_lost_is_looked_up_and_sent_again(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    mock.on("cancel_order", Timeout("reply lost"), times=1)  # did not act
    mock.on("cancel_orders", Timeout("reply lost"), times=1)
    await engine._cancel_opening_orders("risk")
    assert _open(mock) == []  # looked up, still open -> cancelled on the second send
    await engine.stop()


async def test_a_stuck_cancel_is_resent_by_the_reconciler(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    mock.on("cancel_orders", Timeout("venue overloaded"), times=3)
    await engine._cancel_opening_orders("risk")
    assert len(_open(mock)) == 4
    assert {s.state for s in engine.slots.values() if s.order} == {SlotState.CANCEL_REQUESTED}
    clock.t += float(engine.config.engine.effective_stuck_after) + 1
    found = await engine.reconcile()
    assert found["stuck"] == 4
    assert _open(mock) == []
    await engine.stop()


# ------------------------------------------------------------------------------- store failures


class _FlakyStore(StateStore):
    """Fails ``save`` while ``fail`` says so (a dropped database connection)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.fail: Any = lambda orders: False
        self.failures = 0

    def save(self, symbol: str, slots: Any = (), orders: Any = (), fill: Any = None) -> bool:
        orders = list(orders)
        if self.fail(orders):
            self.failures += 1
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return super().save(symbol, slots, orders, fill)


async def test_a_failed_write_is_retried_and_the_batch_fully_applied(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    store = _FlakyStore(sqlite_url(tmp_path / "s.db"))
    engine = await _engine(mock, tmp_path, clock, store)
    budget = [2]

    def twice(orders: list[Any]) -> bool:
        if any(r.status == "placed" for r in orders) and budget[0] > 0:
            budget[0] -= 1
            return True
        return False

    store.fail = twice
    await engine.on_price(D("100"))
    assert store.failures == 2 == engine.status()["store"]["write_failures"]
    assert {s.state for s in engine.slots.values() if s.order} == {SlotState.LOCKED}
    await engine.stop()


async def test_a_write_that_keeps_failing_leaves_memory_unchanged_and_the_rest_applied(
    tmp_path: Path,
) -> None:
    mock, clock = _mock(), _Clock()
    store = _FlakyStore(sqlite_url(tmp_path / "s.db"))
    engine = await _engine(mock, tmp_path, clock, store)
    bad: set[str] = set()
    store.fail = lambda orders: any(r.client_order_id in bad and r.status != "intent" for r in orders)
    real = mock._place

    def remember_first(order: order_pb2.Order) -> Any:
        if not bad:
            bad.add(order.client_order_id)
        return real(order)

    mock.on("place_order", remember_first)
    await engine.on_price(D("100"))
    states = {s.order.client_order_id: s.state for s in engine.slots.values() if s.order}
    (cid,) = bad
    assert states.pop(cid) is SlotState.PENDING  # its outcome was never committed, so not applied
    assert set(states.values()) == {SlotState.LOCKED}  # the rest of the batch was
    assert store.load_slots(SYM)[engine.ledger.by_cid[cid]].state is SlotState.PENDING
    store.fail = lambda orders: False  # the database is back
    clock.t += float(engine.config.engine.effective_stuck_after) + 1
    found = await engine.reconcile()
    assert found["stuck"] == 1
    assert {s.state for s in engine.slots.values() if s.order} == {SlotState.LOCKED}
    await engine.stop()


async def test_a_duplicate_bound_on_reuse_takes_the_venues_quantity_so_no_fill_is_dropped(
    tmp_path: Path,
) -> None:
    mock, clock, stash = _mock(), _Clock(), list[order_pb2.Order]()
    engine = await _engine(mock, tmp_path, clock)
    mock.on("place_order", _lost(mock, stash), times=4)
    await engine.on_price(D("100"))
    clock.t += _window(engine) + 1
    await engine.reconcile()
    late = order_pb2.Order()
    late.CopyFrom(stash[0])
    late.quantity = str(D(stash[0].quantity) * 2)  # what landed is not what the level would place now
    mock._place(late)
    await engine.on_price(D("100"))  # same id again: DuplicateOrder, bound to the venue's order
    report = await mock.fill(client_order_id=late.client_order_id)
    await engine.on_report(report)
    assert engine.position() == D(late.quantity)  # the whole fill counted, none dropped
    assert engine.stats.anomalies == 0
    await engine.stop()


async def test_an_order_closed_as_forgotten_that_shows_up_open_again_is_bound_back(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    slot = next(s for s in engine.slots.values() if s.order)
    assert slot.order is not None
    cid = slot.order.client_order_id
    mock.on("get_orders", [], times=1)  # a listing glitch, and the lookups say "not found" too
    mock.on("get_order", NotFound("purged"), times=2)
    await engine.reconcile()
    assert slot.state is SlotState.FREE  # closed as an anomaly: the venue forgot it
    found = await engine.reconcile()  # ...but it is open after all: ours, so bound again
    assert found["late"] == 1
    assert slot.state is SlotState.LOCKED and slot.order is not None and slot.order.client_order_id == cid
    await engine.stop()


async def test_intents_that_cannot_be_committed_are_never_sent(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    store = _FlakyStore(sqlite_url(tmp_path / "s.db"))
    engine = await _engine(mock, tmp_path, clock, store)
    store.fail = lambda orders: any(r.status == "intent" for r in orders)
    with pytest.raises(StoreWriteFailed):
        await engine.on_price(D("100"))
    assert store.failures == 5  # retried (bounded), then given up
    assert mock.orders == {}  # nothing sent without its committed intent
    assert all(s.order is None and s.cycle == 0 for s in engine.slots.values())  # memory unchanged
    store.fail = lambda orders: False
    await engine.on_price(D("100"))
    assert len(_open(mock)) == 4
    await engine.stop()


COINBASE = """
venue:
  kind: coinbase
  settings:
    rest_url: http://127.0.0.1:9
    timeout_s: {timeout}
    credentials: {{key_name: legacy-key, key_kind: legacy, key_secret: {{env: OUTCOMES_CB_SECRET}}}}
"""


def test_request_lifetime_must_cover_an_in_process_venues_transport() -> None:
    env = {"OUTCOMES_CB_SECRET": "s3cret"}
    text = CFG.replace("system:\n", COINBASE.format(timeout=10) + "system:\n")
    assert parse_config(text, env).engine.request_lifetime == D(40)  # 30 + 10: the Coinbase defaults
    slow = CFG.replace("system:\n", COINBASE.format(timeout=25) + "system:\n")
    with pytest.raises(ConfigError, match=r"engine.request_lifetime: 40 s is shorter than .* 55 s"):
        parse_config(slow, env)


def _snapshot(slots: dict[int, Any]) -> dict[int, tuple[Any, ...]]:
    out = {}
    for lvl, s in slots.items():
        o = s.order
        order = (o.client_order_id, o.side, o.price, o.quantity, o.cycle, o.filled, o.order_id) if o else None
        out[lvl] = (s.state, s.position, s.entry_price, s.cycle, order)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["tick", "fill", "reconcile"]), st.integers(0, 6), st.booleans()),
        min_size=1,
        max_size=14,
    )
)
async def test_memory_never_runs_ahead_of_the_store(steps: list[tuple[str, int, bool]]) -> None:
    """Any sequence of ticks, fills and passes with writes failing at random (no retries): after every
    step the slots in memory are exactly the slots in the store."""
    mock, clock = _mock(), _Clock()
    store = _FlakyStore("sqlite://")
    engine = await _engine(mock, Path("."), clock, store)
    engine.store.write_attempts = 1
    failing = [False]
    store.fail = lambda orders: failing[0]
    for kind, n, fail in steps:
        failing[0] = fail
        try:
            if kind == "tick":
                await engine.on_price(D(97 + n))
            elif kind == "fill":
                live = _open(mock)
                if live:
                    await engine.on_report(
                        await mock.fill(client_order_id=live[n % len(live)].client_order_id)
                    )
            else:
                clock.t += 100
                await engine.reconcile()
        except StoreWriteFailed:
            pass
        failing[0] = False
        assert _snapshot(engine.slots) == _snapshot(
            {lvl: s for lvl, s in store.load_slots(SYM).items() if lvl in engine.slots}
        )
        assert set(store.load_slots(SYM)) <= set(engine.slots)
    await engine.stop()
