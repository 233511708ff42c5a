"""Issue 11, "Divergence has a way back": a divergence explained by fills the engine missed is reconciled
and trading resumes; one it cannot explain keeps it paused with a reason, and ``resync`` (audited) adopts
the venue's position.  MockVenue with a perpetual (its ``positions`` list is the venue's truth)."""

# mypy: disable-error-code="comparison-overlap"
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cqc.markets.v1 import instrument_pb2
from cqc.venues.v1 import order_pb2
from cqvx.errors import Timeout
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from opensqt.config import parse_config
from opensqt.engine.lease import AccountLease, Fenced, LeaseHeld
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.resync import ResyncRefused, resync
from opensqt.engine.store import AuditRecord, StateStore, sqlite_url
from opensqt.model.slots import SlotState

D = Decimal
PERP = "BTC-USDT-PERP"
CFG = """
trading:
  symbol: BTC-USDT-PERP
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
risk:
  enabled: false
system:
  cancel_on_exit: false
"""


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _mock() -> MockVenue:
    inst = builders.instrument(
        symbol=PERP,
        venue_symbol=PERP,
        instrument_type=instrument_pb2.INSTRUMENT_TYPE_PERPETUAL,
        quote_asset="USDT",
        lot_size="0.0001",
        min_quantity="0.0001",
    )
    mock = MockVenue(
        balances=[builders.balance(asset="USDT", total="1000000", available="1000000", locked="0")],
        instruments=[inst],
    )
    mock.prices[PERP] = builders.price(symbol=PERP, last="100.05", bid="100", ask="100.1")
    return mock


def _venue_holds(mock: MockVenue, qty: str) -> None:
    mock.positions = [builders.position(symbol=PERP, quantity=qty, entry_price="99")]


async def _engine(mock: MockVenue, path: Path, clock: _Clock) -> GridEngine:
    engine = GridEngine(parse_config(CFG, {}), mock, StateStore(sqlite_url(path / "s.db")), clock=clock)
    await engine.start(run_tasks=False)
    assert engine.rules is not None and engine.rules.derivatives
    return engine


async def test_a_divergence_explained_by_a_missed_late_fill_is_reconciled(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    stash: list[order_pb2.Order] = []

    def lost(order: order_pb2.Order) -> Any:
        stash.append(order)
        raise Timeout("no answer")

    mock.on("place_order", lost, times=4)
    await engine.on_price(D("100"))
    clock.t += float(engine.config.engine.effective_landing_window) + 1
    await engine.reconcile()  # proven absent: slots FREE
    assert all(s.state is SlotState.FREE for s in engine.slots.values())
    mock._place(stash[0])  # the venue created it after all, and it filled; the engine saw no report
    await mock.fill(client_order_id=stash[0].client_order_id)
    _venue_holds(mock, stash[0].quantity)
    for _ in range(3):
        found = await engine.reconcile()
        assert found["position"] == 0
    assert not engine.breaker.open
    assert engine.position() == D(stash[0].quantity)
    assert [f.client_order_id for f in engine.store.store.load_fills(PERP)] == [stash[0].client_order_id]
    await engine.stop()


async def test_an_unexplained_divergence_pauses_until_an_audited_resync(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    _venue_holds(mock, "0.9")  # the venue's state changed behind the engine's back
    await engine.reconcile()
    await engine.reconcile()
    assert engine.breaker.open and engine.paused
    detail = engine.status()["risk"]["circuit_breaker"]["detail"]
    assert "0.9" in detail and "opensqt resync" in detail
    with pytest.raises(ResyncRefused, match="operator"):
        await engine.resync("", "because")
    result = await engine.resync("alice", "venue restored from backup")
    assert not engine.breaker.open and not engine.paused
    assert engine.position() == D("0.9") and result.venue_position == "0.9"
    assert result.engine_position_before == "0"
    assert [o for o in mock.orders.values() if o.status == order_pb2.ORDER_STATUS_OPEN] == []
    (record,) = engine.store.store.load_audit(PERP)
    assert (record.action, record.operator, record.reason) == (
        "resync",
        "alice",
        "venue restored from backup",
    )
    assert json.loads(record.detail)["venue_position"] == "0.9"
    assert (await engine.reconcile())["position"] == 0  # agree now; trading resumes
    await engine.on_price(D("100"))
    sells = [o for o in mock.orders.values() if o.status == order_pb2.ORDER_STATUS_OPEN and o.reduce_only]
    assert sum(D(o.quantity) for o in sells) == D("0.9")  # the adopted position is closed by the grid
    await engine.stop()


async def test_offline_resync_on_a_stopped_engines_store(tmp_path: Path) -> None:
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    await engine.stop(cancel_orders=False)
    _venue_holds(mock, "0.3")
    result = await resync(
        parse_config(CFG, {}), mock, StateStore(sqlite_url(tmp_path / "s.db")), operator="bob", reason="drill"
    )
    assert result.venue_position == "0.3"
    store = StateStore(sqlite_url(tmp_path / "s.db"))
    assert sum(s.position for s in store.load_slots(PERP).values()) == D("0.3")
    assert [r.operator for r in store.load_audit(PERP)] == ["bob"]
    store.close()


async def test_offline_resync_takes_the_account_lease_first(tmp_path: Path) -> None:
    """A running engine (or fleet) owns the account: resync refuses before it writes anything; once the
    owner is gone it runs, and gives the lease back (the next engine starts at once)."""
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    await engine.stop(cancel_orders=False)
    _venue_holds(mock, "0.3")
    config = parse_config(CFG, {})
    url = sqlite_url(tmp_path / "s.db")
    owner_store = StateStore(url)
    owner = AccountLease(owner_store.engine, config.state.account_key(config.venue), owner="other:1:x")
    assert owner.try_acquire() is not None  # a live engine (pid 1 never reads as dead)
    with pytest.raises(LeaseHeld, match="owned by another engine"):
        await resync(config, mock, StateStore(url), operator="bob", reason="drill")
    assert owner_store.load_audit(PERP) == []
    assert sum(s.position for s in owner_store.load_slots(PERP).values()) == D(0)
    owner.release()
    result = await resync(config, mock, StateStore(url), operator="bob", reason="drill")
    assert result.venue_position == "0.3"
    assert [r.operator for r in owner_store.load_audit(PERP)] == ["bob"]
    assert owner.try_acquire() is not None  # released at the end: no wait for its expiry
    owner_store.close()


def test_an_audited_write_is_fenced(tmp_path: Path) -> None:
    store = StateStore(sqlite_url(tmp_path / "s.db"))

    def fenced(_conn: object) -> None:
        raise Fenced("taken over")

    store.fence = fenced
    with pytest.raises(Fenced):
        store.save_audited(PERP, [], AuditRecord(1.0, "resync", "bob", "drill", "{}"))
    store.fence = None
    assert store.load_audit(PERP) == []
    store.close()


async def test_a_venue_that_lost_our_position_pauses_the_engine_at_start(tmp_path: Path) -> None:
    """The venue lost its state (a fresh venue): the store's position is not there.  The engine must see
    it at start-up, before any placement, and stay paused with a reason naming ``opensqt resync``."""
    mock, clock = _mock(), _Clock()
    engine = await _engine(mock, tmp_path, clock)
    await engine.on_price(D("100"))
    buy = next(o for o in mock.orders.values() if o.side == order_pb2.ORDER_SIDE_BUY)
    await mock.fill(client_order_id=buy.client_order_id)
    _venue_holds(mock, buy.quantity)
    await engine.reconcile()  # the fill is recorded (the mock's stream is not read here)
    assert engine.position() == D(buy.quantity)
    await engine.stop(cancel_orders=False)

    fresh = _mock()  # same symbol, no orders, no position
    engine = await _engine(fresh, tmp_path, clock)
    assert engine.breaker.open and engine.paused
    assert engine.breaker.reason == "position_divergence"
    assert "opensqt resync" in engine.breaker.detail
    await engine.on_price(D("100"))
    await engine.on_price(D("99"))
    assert list(fresh.orders.values()) == []  # nothing placed against the lost venue
    await engine.stop()
