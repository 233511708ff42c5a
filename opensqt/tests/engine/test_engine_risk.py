"""Risk layers: the order cleaner, the volume-anomaly monitor, the reconciler (MockVenue + real SQLite)."""

# mypy: disable-error-code="comparison-overlap"
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import order_pb2
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.model.slots import OrderIntent, Slot, SlotState, client_order_id
from opensqt.risk.cleaner import cleanup_cancels
from opensqt.risk.volume import VolumeMonitor, VolumeSettings

D = Decimal
SYM = "BTC-USD"
BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL
CFG = """
trading:
  symbol: BTC-USD
  price_interval: 1
  order_quantity: 30
  min_order_value: 20
  buy_window_size: 8
  sell_window_size: 5
  position_safety_check: 10
  order_cleanup_threshold: {threshold}
  cleanup_batch_size: {batch}
  recover_position: false
engine:
  price_send_interval: 0
  reconcile_interval: 3600
risk:
  enabled: false
system:
  cancel_on_exit: false
"""


def _mock() -> MockVenue:
    mock = MockVenue(
        balances=[
            builders.balance(asset="USD", total="1000000", available="1000000", locked="0"),
            builders.balance(asset="BTC", total="100", available="100", locked="0"),
        ]
    )
    mock.prices[SYM] = builders.price(symbol=SYM, last="100.05", bid="100", ask="100.1")
    return mock


async def _engine(mock: MockVenue, path: Path, *, threshold: int = 100, batch: int = 10) -> GridEngine:
    cfg = parse_config(CFG.format(threshold=threshold, batch=batch), {})
    engine = GridEngine(cfg, mock, StateStore(sqlite_url(path / "state.db")))
    await engine.start(run_tasks=False)
    return engine


def _open(mock: MockVenue) -> list[order_pb2.Order]:
    return [o for o in mock.orders.values() if o.status == order_pb2.ORDER_STATUS_OPEN]


# ====================================================================================== cleaner


def _locked(level: int, side: int, price: str, filled: str = "0") -> Slot:
    slot = Slot(level)
    slot.submit(
        namespace="t|X|e", side=side, price=D(price), quantity=D(1), post_only=True, reduce_only=False
    )
    slot.ack("oid")
    if D(filled):
        slot.fill(D(filled), D(price))
    return slot


def test_cleaner_waits_for_the_threshold() -> None:
    slots = {i: _locked(i, BUY, str(100 - i)) for i in range(4)}
    assert cleanup_cancels(slots, threshold=5, batch_size=2) == []
    assert len(cleanup_cancels(slots, threshold=4, batch_size=2)) == 2


def test_cleaner_cancels_the_farthest_of_the_heavier_side() -> None:
    slots = {i: _locked(i, BUY, str(100 - i)) for i in range(5)}  # buys at 100..96
    slots[10] = _locked(10, SELL, "110")
    slots[11] = _locked(11, SELL, "111")
    cancels = cleanup_cancels(slots, threshold=7, batch_size=2)
    assert [c.level for c in cancels] == [4, 3]  # the lowest buys (farthest below the price)
    assert {c.reason for c in cancels} == {"cleanup"}
    sells = {i: _locked(i, SELL, str(100 + i)) for i in range(5)}
    assert [c.level for c in cleanup_cancels(sells, threshold=5, batch_size=3)] == [4, 3, 2]  # highest first


def test_cleaner_splits_equal_sides_half_and_half() -> None:
    slots = {i: _locked(i, BUY, str(100 - i)) for i in range(3)}
    slots.update({10 + i: _locked(10 + i, SELL, str(110 + i)) for i in range(3)})
    levels = [c.level for c in cleanup_cancels(slots, threshold=6, batch_size=4)]
    assert levels == [2, 1, 12, 11]


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(
        st.tuples(st.booleans(), st.integers(1, 500), st.sampled_from(["0", "0", "0.5"])),
        min_size=0,
        max_size=30,
    ),
    threshold=st.integers(1, 20),
    batch=st.integers(1, 12),
)
def test_cleaner_never_touches_a_partly_filled_order(
    specs: list[tuple[bool, int, str]], threshold: int, batch: int
) -> None:
    slots = {i: _locked(i, BUY if b else SELL, str(p), f) for i, (b, p, f) in enumerate(specs)}
    cancels = cleanup_cancels(slots, threshold=threshold, batch_size=batch)
    unfilled = [s for s in slots.values() if s.order is not None and s.order.filled == 0]
    assert len(cancels) <= batch
    assert (len(cancels) > 0) == (len(unfilled) >= threshold)
    assert len({c.client_order_id for c in cancels}) == len(cancels)
    for c in cancels:
        order = slots[c.level].order
        assert order is not None and order.filled == 0 and order.client_order_id == c.client_order_id
    # farthest first within a side: every chosen buy is priced at or below every unchosen unfilled buy
    chosen = {c.level for c in cancels}

    def price_side(s: Slot) -> tuple[Decimal, int]:
        assert s.order is not None
        return s.order.price, s.order.side

    picked = [price_side(slots[lv]) for lv in chosen]
    rest = [price_side(s) for s in unfilled if s.level not in chosen]
    for p, side in picked:
        for r, r_side in rest:
            if side == r_side:
                assert (p <= r) if side == BUY else (p >= r)


async def test_engine_cleaner_batch_cancels_when_the_threshold_is_reached(tmp_path: Path) -> None:
    mock = _mock()
    engine = await _engine(mock, tmp_path, threshold=6, batch=3)
    await engine.on_price(D("100"))
    assert len(_open(mock)) == 6  # the window is capped at the threshold
    # a partial fill on the lowest buy: from now on the cleaner must skip it
    lowest = min(_open(mock), key=lambda o: D(o.price))
    await engine.on_report(await mock.fill(client_order_id=lowest.client_order_id, quantity="0.1"))
    assert await engine.clean_orders() == []  # only 5 unfilled orders are live now
    t = engine.config.trading.model_copy(update={"order_cleanup_threshold": 5})
    engine.config = engine.config.model_copy(update={"trading": t})
    before = mock.call_count("cancel_orders")
    cancels = await engine.clean_orders()
    assert len(cancels) == 3
    assert mock.call_count("cancel_orders") == before + 1  # one batch call for the three
    assert lowest.client_order_id not in {c.client_order_id for c in cancels}
    unfilled = sorted(
        (o for o in mock.orders.values() if o.client_order_id != lowest.client_order_id),
        key=lambda o: D(o.price),
    )
    assert {c.client_order_id for c in cancels} == {o.client_order_id for o in unfilled[:3]}  # the lowest 3
    cancelled = {
        o.client_order_id for o in mock.orders.values() if o.status == order_pb2.ORDER_STATUS_CANCELLED
    }
    assert cancelled == {c.client_order_id for c in cancels}
    assert all(engine.slots[c.level].state is SlotState.FREE for c in cancels)
    assert engine.status()["cleaned"] == 3
    assert (
        b'market_maker_orders_cancelled_total{reason="cleanup",symbol="BTC-USD"} 3.0'
        in engine.metrics.render()
    )
    await engine.stop()


# ====================================================================================== volume monitor

S = VolumeSettings(window_seconds=60, average_window=5, volume_multiplier=D(3), recovery_threshold=1)


def _feed(mon: VolumeMonitor, sym: str, start: float, windows: list[tuple[str, str]]) -> float:
    """One trade per window (volume, price); returns the time after the last window."""
    t = start
    for vol, px in windows:
        mon.add_trade(sym, t + 1, D(px), D(vol))
        t += 60
    return t


def test_volume_monitor_needs_a_warm_baseline_then_triggers_on_a_spike_with_a_price_drop() -> None:
    mon = VolumeMonitor(["A"], S)
    t = _feed(mon, "A", 0, [("1", "100")] * 3)
    mon.add_trade("A", t + 1, D(90), D(50))
    assert not mon.evaluate(t + 2)  # only 3 closed windows: not warm
    mon = VolumeMonitor(["A"], S)
    t = _feed(mon, "A", 0, [("1", "100")] * 5)
    mon.add_trade("A", t + 1, D(101), D(50))
    assert not mon.evaluate(t + 2)  # volume spike but the price is above its MA
    mon.add_trade("A", t + 3, D(95), D(1))
    assert mon.evaluate(t + 4)  # spike and price below the MA
    assert mon.triggers == 1
    st_ = mon.status()["symbols"]["A"]  # type: ignore[index]
    assert st_["anomalous"] and st_["ratio"] == "51.000"


def test_volume_monitor_recovers_only_on_a_normal_window_closed_after_the_trigger() -> None:
    mon = VolumeMonitor(["A"], S)
    t = _feed(mon, "A", 0, [("1", "100")] * 5)
    mon.add_trade("A", t + 1, D(90), D(40))
    assert mon.evaluate(t + 2)
    assert mon.evaluate(t + 59)  # the anomalous window is still open
    assert mon.evaluate(t + 61)  # it closed, and it is the anomalous one
    t += 60
    mon.add_trade("A", t + 5, D(105), D(1))  # a calm window, price back above the MA
    assert mon.evaluate(t + 30)
    assert not mon.evaluate(t + 61)  # the calm window closed: recovered
    assert mon.recoveries == 1


def test_volume_monitor_all_versus_any() -> None:
    both = VolumeSettings(window_seconds=60, average_window=5, global_strategy="all")
    any_ = VolumeSettings(window_seconds=60, average_window=5, global_strategy="any")
    for settings_, expected in ((both, False), (any_, True)):
        mon = VolumeMonitor(["A", "B"], settings_)
        t = _feed(mon, "A", 0, [("1", "100")] * 5)
        _feed(mon, "B", 0, [("1", "100")] * 5)
        mon.add_trade("A", t + 1, D(90), D(40))
        mon.add_trade("B", t + 1, D(100), D(1))
        assert mon.evaluate(t + 2) is expected


def test_volume_monitor_quiet_windows_close_with_zero_volume() -> None:
    mon = VolumeMonitor(["A"], S)
    mon.add_trade("A", 1, D(100), D(1))
    mon.evaluate(60 * 10)
    sv = mon.symbols["A"]
    assert len(sv.closed) == S.average_window + 1
    assert [v for _, v, _ in sv.closed][-3:] == [D(0)] * 3
    assert sv.baseline() is not None


async def test_engine_volume_anomaly_pauses_placement_cancels_buys_and_resumes(tmp_path: Path) -> None:
    mock = _mock()
    cfg = parse_config(
        CFG.format(threshold=100, batch=10).replace(
            "risk:\n  enabled: false",
            "risk:\n  enabled: true\n  window_seconds: 60\n  average_window: 5",
        ),
        {},
    )
    engine = GridEngine(cfg, mock, StateStore(sqlite_url(tmp_path / "s.db")))
    await engine.start(run_tasks=False)
    await engine.on_price(D("100"))
    assert len(_open(mock)) == 7

    def trade(ts: float, px: str, qty: str) -> object:
        t = builders.trade(symbol=SYM, price=px, quantity=qty)
        t.timestamp.FromNanoseconds(int(ts * 1e9))
        return t

    t0 = 1_700_000_000.0 - 1_700_000_000.0 % 60
    for i in range(5):
        engine.on_trade(SYM, trade(t0 + i * 60 + 1, "100", "1"))
    engine.on_trade(SYM, trade(t0 + 5 * 60 + 1, "97", "30"))  # the dump
    await engine.risk_check()
    assert engine.paused and engine.volume is not None and engine.volume.triggered
    assert not _open(mock)  # every buy cancelled (sells would stay)
    metrics = engine.metrics.render()
    assert b'market_maker_risk_triggered{symbol="BTC-USD"} 1.0' in metrics
    assert b'market_maker_orders_cancelled_total{reason="risk",symbol="BTC-USD"} 7.0' in metrics
    status = engine.status()
    assert status["paused"] and status["risk"]["volume_monitor"]["triggered"]
    await engine.on_price(D("97"))
    assert not _open(mock)  # placement paused
    # calm windows, price back up: resumes
    engine.on_trade(SYM, trade(t0 + 6 * 60 + 1, "101", "1"))
    engine.on_trade(SYM, trade(t0 + 7 * 60 + 1, "101", "1"))
    await engine.risk_check()
    assert not engine.paused
    await engine.on_price(D("101"))
    assert len(_open(mock)) > 0
    assert b'market_maker_risk_triggered{symbol="BTC-USD"} 0.0' in engine.metrics.render()
    await engine.stop()


# ====================================================================================== reconciler


async def test_reconciler_looks_up_a_vanished_order_and_records_its_fill(tmp_path: Path) -> None:
    mock = _mock()
    engine = await _engine(mock, tmp_path)
    await engine.on_price(D("100"))
    buy = max(_open(mock), key=lambda o: D(o.price))
    await mock.fill(client_order_id=buy.client_order_id)  # the report is lost: never given to the engine
    found = await engine.reconcile()
    assert found["vanished"] == 1
    slot = engine.slots[-1]
    assert slot.state is SlotState.FREE and slot.position == D(buy.quantity)
    assert [f.client_order_id for f in engine.store.store.load_fills(SYM)] == [buy.client_order_id]
    status = engine.status()["reconciler"]
    assert status["status"] == "completed" and status["last"]["vanished"] == 1
    assert b'market_maker_reconcile_mismatches_total{kind="vanished",symbol="BTC-USD"} 1.0' in (
        engine.metrics.render()
    )
    assert (await engine.reconcile())["vanished"] == 0  # settled: nothing the second time
    await engine.stop()


async def test_reconciler_adopts_our_unknown_order_and_leaves_foreign_ones(tmp_path: Path) -> None:
    mock = _mock()
    engine = await _engine(mock, tmp_path)
    await engine.on_price(D("100"))
    # An order of ours that no slot knows (an earlier store's epoch), resting on grid level -9 (91),
    # already partly filled; plus somebody else's order; plus one of ours priced off the grid.
    ours = client_order_id("grid|BTC-USD|oldepoch", -9, BUY, 1)
    placed = await mock.place_order(
        builders.order(
            symbol=SYM, side=BUY, price="91", quantity="0.3", client_order_id=ours, post_only=False
        )
    )
    await mock.fill(client_order_id=ours, quantity="0.1")
    foreign = await mock.place_order(
        builders.order(symbol=SYM, side=BUY, price="93", quantity="0.3", client_order_id="manual-1")
    )
    off_grid = client_order_id("grid|BTC-USD|oldepoch", 99, BUY, 1)
    await mock.place_order(
        builders.order(symbol=SYM, side=BUY, price="90.5", quantity="0.3", client_order_id=off_grid)
    )
    found = await engine.reconcile()
    assert found["adopted"] == 1 and found["orphan"] == 1
    slot = engine.slots[-9]
    assert slot.state is SlotState.LOCKED and slot.order is not None
    assert slot.order.client_order_id == ours and slot.order.order_id == placed.order_id
    assert slot.order.filled == D("0.1") and slot.position == D("0.1")  # the untracked fill is recorded
    assert {f.client_order_id for f in engine.store.store.load_fills(SYM)} == {ours}
    assert mock.orders[foreign.order_id].status == order_pb2.ORDER_STATUS_OPEN  # never touched
    assert all(s.order is None or s.order.client_order_id != "manual-1" for s in engine.slots.values())
    # the adopted order is now an ordinary slot order: its completion flows through the slot
    await engine.on_report(await mock.fill(client_order_id=ours))
    assert engine.slots[-9].position == D("0.3") and engine.slots[-9].state is SlotState.FREE
    # a restart still knows it (the adoption was committed)
    rows = {r.client_order_id: r for r in engine.store.store.load_orders(SYM)}
    assert rows[ours].level == -9
    await engine.stop()


async def test_reconciler_leaves_pending_placements_alone(tmp_path: Path) -> None:
    mock = _mock()
    engine = await _engine(mock, tmp_path)
    slot = engine.slots.setdefault(-3, Slot(-3))
    slot.submit(
        namespace=engine.namespace,
        side=BUY,
        price=D(97),
        quantity=D("0.3"),
        post_only=True,
        reduce_only=False,
    )
    engine.ledger.bind(slot.order.client_order_id, -3)  # type: ignore[union-attr]
    await engine.reconcile()
    assert (
        mock.call_count("get_order") == 0
    )  # an in-flight placement is not looked up (it may not have landed)
    assert slot.state is SlotState.PENDING
    await engine.stop()


def test_adopt_is_a_legal_transition_only_from_free() -> None:
    slot = Slot(1)
    intent = OrderIntent("osq" + "a" * 26, BUY, D(1), D(1), 1, False, False)
    slot.adopt(intent)
    assert slot.state is SlotState.LOCKED and slot.cycle == 1
    with pytest.raises(Exception, match="not allowed"):
        slot.adopt(intent)


async def test_cancel_on_exit_also_cancels_a_placement_that_was_in_flight(tmp_path: Path) -> None:
    mock = _mock()
    engine = await _engine(mock, tmp_path)
    await engine.on_price(D("100"))
    # A tick was cancelled by the shutdown after its order reached the venue: the slot is still PENDING.
    slot = engine.slots.setdefault(-20, Slot(-20))
    intent = slot.submit(
        namespace=engine.namespace,
        side=BUY,
        price=D(80),
        quantity=D("0.3"),
        post_only=False,
        reduce_only=False,
    )
    engine.ledger.bind(intent.client_order_id, -20)
    await mock.place_order(
        builders.order(
            symbol=SYM, side=BUY, price="80", quantity="0.3", client_order_id=intent.client_order_id
        )
    )
    await engine.stop(cancel_orders=True)
    assert not _open(mock)  # the in-flight one included
    assert (
        b'market_maker_orders_cancelled_total{reason="shutdown",symbol="BTC-USD"} 8.0'
        in engine.metrics.render()
    )
