"""One fill, one record, whichever path brings it (the double count the fleet's kill -9 test found).

The venue's fills of one order reach the ledger by several paths: the order stream (a report carrying the
venue's trade id), a lookup (the order's cumulative state, no trade id: the reconciler, the recovery
after a restart, a duplicate placement's answer), and the late-order path (an order no slot holds).  The
kill -9 run recorded one order as 1.22929 filled where the venue said 0.67349: its first partial fill
(0.5558) was recorded by the stream under the trade id, then again under ``<cid>@0.5558`` by a lookup
after the id was bound anew with nothing filled.  These tests replay that without killing anything.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import execution_pb2, order_pb2
from opensqt.config import parse_config
from opensqt.engine.context import EngineStats, GridContext
from opensqt.engine.executor import VenueOrderState
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.store import AsyncStore, StateStore, sqlite_url
from opensqt.model.slots import OrderIntent, SlotState
from opensqt.observability.metrics import EngineMetrics
from opensqt.strategy.grid import GridParams, Place

D = Decimal
SYM = "BTC-USD"
BUY = order_pb2.ORDER_SIDE_BUY
PARTIAL = order_pb2.ORDER_STATUS_PARTIALLY_FILLED
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
risk:
  enabled: false
"""
PLACE = Place(-1, BUY, D("99"), D("1"), True, False, True)


def _ledger(path: Path) -> SlotLedger:
    cfg = parse_config(CFG, {})
    ctx = GridContext(SYM, "grid", GridParams.from_config(cfg.trading))
    store = AsyncStore(StateStore(sqlite_url(path / "state.db")))
    return SlotLedger(ctx, store, EngineStats(), EngineMetrics(), wall=lambda: 1.0)


def _trade(cid: str, trade_id: str, cumulative: str, last: str) -> execution_pb2.ExecutionReport:
    return execution_pb2.ExecutionReport(
        client_order_id=cid,
        symbol=SYM,
        order_id="v1",
        order_status=PARTIAL,
        execution_type=execution_pb2.EXECUTION_TYPE_TRADE,
        trade_id=trade_id,
        cumulative_quantity=cumulative,
        last_quantity=last,
        last_price="99",
    )


async def _recorded(ledger: SlotLedger, cid: str) -> Decimal:
    fills = await ledger.store.run(ledger.store.store.load_fills, SYM)
    return sum((f.quantity for f in fills if f.client_order_id == cid), D(0))


async def _absent_order(ledger: SlotLedger) -> str:
    """An intent whose placement was proven absent (the landing window passed): its slot is FREE and
    the next submit there reuses its client order id."""
    async with ledger.lock:
        ((slot, msg),) = await ledger.commit_intents([PLACE])
        await ledger.transition(slot, lambda s: s.not_seen(), "unresolved")
        await ledger.transition(slot, lambda s: s.absent(), "absent")
    assert slot.state is SlotState.FREE
    return msg.client_order_id


@pytest.mark.parametrize("rebind", ["resubmit", "adopt"])
async def test_a_late_fill_then_a_rebound_id_is_counted_once(tmp_path: Path, rebind: str) -> None:
    ledger = _ledger(tmp_path)
    await ledger.load()
    cid = await _absent_order(ledger)
    # It landed after all, and filled 0.5558: the stream reports it while no slot holds the id.
    await ledger.apply_report(_trade(cid, "T1", "0.5558", "0.5558"))
    assert await _recorded(ledger, cid) == D("0.5558")
    slot = ledger.slots[-1]
    assert slot.position == D("0.5558")
    later = VenueOrderState("v1", PARTIAL, D("0.67349"), D("99"))  # the venue's cumulative now
    async with ledger.lock:
        if rebind == "resubmit":
            # The next placement at the level: the venue holds the old id, so it takes a new one (a
            # venue refusing ids only among open orders would otherwise get a second order under it).
            ((_, msg),) = await ledger.commit_intents([PLACE])
            assert msg.client_order_id != cid
            await ledger.record_late(cid, later)  # the late order's next news
        else:
            # The late-order path binds it to its (FREE) slot, from a row read before the fill.
            intent = OrderIntent(cid, BUY, D("99"), D("1"), cycle=1, post_only=True, reduce_only=False)
            await ledger.transition(slot, lambda s: s.adopt(intent), "adopted")
            ledger.bind(cid, -1)
            await ledger.apply_state(slot, cid, later)
            assert slot.order is not None and slot.order.filled == D("0.67349")
    assert await _recorded(ledger, cid) == D("0.67349")
    assert slot.position == D("0.67349")
    await ledger.store.aclose()

    # After a restart the same news adds nothing.
    again = _ledger(tmp_path)
    await again.load()
    async with again.lock:
        s = again.slot_for(cid)
        if s is not None:
            await again.apply_state(s, cid, later)
        else:
            await again.record_late(cid, later)
    assert await _recorded(again, cid) == D("0.67349") and again.slots[-1].position == D("0.67349")
    await again.store.aclose()


async def test_stream_and_lookup_key_a_fill_identically(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    await ledger.load()
    async with ledger.lock:
        ((slot, msg),) = await ledger.commit_intents([PLACE])
    cid = msg.client_order_id
    await ledger.apply_report(_trade(cid, "T1", "0.5558", "0.5558"))
    async with ledger.lock:
        await ledger.apply_state(slot, cid, VenueOrderState("v1", PARTIAL, D("0.67349"), D("99")))
    fills = await ledger.store.run(ledger.store.store.load_fills, SYM)
    assert [f.fill_key for f in fills] == [f"{cid}@0.5558", f"{cid}@0.67349"]
    await ledger.store.aclose()


async def test_a_fill_another_writer_recorded_is_not_recorded_again(tmp_path: Path) -> None:
    """Two ledgers over one store (a fill recorded by a path this ledger did not see): the second
    learns what is recorded and records only the rest."""
    first = _ledger(tmp_path)
    await first.load()
    async with first.lock:
        ((_, msg),) = await first.commit_intents([PLACE])
    cid = msg.client_order_id
    second = _ledger(tmp_path)
    await second.load()
    await first.apply_report(_trade(cid, "T1", "0.5558", "0.5558"))
    slot = second.slot_for(cid)
    assert slot is not None
    async with second.lock:
        await second.apply_state(slot, cid, VenueOrderState("v1", PARTIAL, D("0.5558"), D("99")))
        await second.apply_state(slot, cid, VenueOrderState("v1", PARTIAL, D("0.67349"), D("99")))
    assert await _recorded(second, cid) == D("0.67349")
    assert slot.order is not None and slot.order.filled == D("0.67349")
    await first.store.aclose()
    await second.store.aclose()


_PATHS = st.sampled_from(["stream", "lookup", "restart", "replay"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(_PATHS, st.integers(min_value=1, max_value=9)), min_size=1, max_size=8))
async def test_any_mix_of_paths_records_exactly_the_venue_cumulative(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]]
) -> None:
    """The venue's cumulative only grows; whatever path reports each state (stream report with a trade
    id, lookup, a restart between, a replayed report), the recorded fills sum to the highest one."""
    path = tmp_path_factory.mktemp("mix")
    ledger = _ledger(path)
    await ledger.load()
    async with ledger.lock:
        ((_, msg),) = await ledger.commit_intents([PLACE])
    cid = msg.client_order_id
    cum, trades = D(0), 0
    last_report: execution_pb2.ExecutionReport | None = None
    try:
        for kind, step in steps:
            if kind == "restart":
                await ledger.store.aclose()
                ledger = _ledger(path)
                await ledger.load()
                continue
            if kind == "replay":
                if last_report is not None:
                    await ledger.apply_report(last_report)
                continue
            new = min(cum + D(step) / 10, D(1))
            if new == cum:
                continue
            if kind == "stream":
                trades += 1
                last_report = _trade(cid, f"T{trades}", str(new), str(new - cum))
                await ledger.apply_report(last_report)
            else:
                async with ledger.lock:
                    s = ledger.slot_for(cid)
                    if s is not None:
                        await ledger.apply_state(s, cid, VenueOrderState("v1", PARTIAL, new, D("99")))
                    else:
                        await ledger.record_late(cid, VenueOrderState("v1", PARTIAL, new, D("99")))
            cum = new
        assert await _recorded(ledger, cid) == cum
    finally:
        await ledger.store.aclose()


class _CancelledAfterCommit(AsyncStore):
    """A real store whose next write commits and then raises ``CancelledError`` to its caller: a stop
    cancelling a loop while the database thread finishes the transaction (PostgreSQL, or a shared store)."""

    cancel_next = False

    async def write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        out = await super().write(fn, *args, **kwargs)
        if self.cancel_next:
            self.cancel_next = False
            raise asyncio.CancelledError
        return out


async def test_a_fill_committed_by_a_cancelled_caller_keeps_its_position(tmp_path: Path) -> None:
    """The fleet kill -9 test's slots one order off the venue: a fill's commit (slot with the position,
    the fill row) completed while its caller was cancelled before the slot took it over; the next news of
    the order (the stop's cancel path looked it up) hit the recorded fill key, credited the fill to the
    stale slot "position unchanged" and wrote that back: the position was lost.  The ledger now takes
    the stored slot over first."""
    cfg = parse_config(CFG, {})
    ctx = GridContext(SYM, "grid", GridParams.from_config(cfg.trading))
    store = _CancelledAfterCommit(StateStore(sqlite_url(tmp_path / "state.db")))
    ledger = SlotLedger(ctx, store, EngineStats(), EngineMetrics(), wall=lambda: 1.0)
    await ledger.load()
    async with ledger.lock:
        ((slot, msg),) = await ledger.commit_intents([PLACE])
    cid = msg.client_order_id
    store.cancel_next = True
    with pytest.raises(asyncio.CancelledError):
        await ledger.apply_report(_trade(cid, "T1", "1", "1"))  # filled in full: 1 bought
    assert slot.position == 0  # memory behind the store
    filled = VenueOrderState("v1", order_pb2.ORDER_STATUS_FILLED, D("1"), D("99"))
    async with ledger.lock:
        await ledger.apply_state(slot, cid, filled)
    assert await _recorded(ledger, cid) == D("1")
    assert slot.position == D("1")
    stored = await ledger.store.run(ledger.store.store.load_slots, SYM)
    assert stored[slot.level].position == D("1"), "the store lost the fill's position"
    await ledger.store.aclose()
