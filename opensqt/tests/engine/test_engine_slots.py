# mypy: disable-error-code="comparison-overlap"
from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import order_pb2
from opensqt.model.slots import (
    TRANSITIONS,
    IllegalTransition,
    MarginLock,
    Slot,
    SlotEvent,
    SlotState,
    client_order_id,
    is_our_client_order_id,
)

BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL
NS = "grid|BTC-USDT|epoch1"


def _submit(slot: Slot, side: int = BUY, qty: str = "1", post_only: bool = True) -> str:
    return slot.submit(
        namespace=NS,
        side=side,
        price=Decimal(100),
        quantity=Decimal(qty),
        post_only=post_only,
        reduce_only=False,
    ).client_order_id


def test_happy_cycle_buy_then_sell() -> None:
    slot = Slot(level=-1)
    cid = _submit(slot)
    assert slot.state is SlotState.PENDING
    slot.ack("v1")
    assert slot.state is SlotState.LOCKED and slot.order is not None and slot.order.order_id == "v1"
    r1 = slot.fill(Decimal("0.4"), Decimal(100))
    assert not r1.complete and slot.state is SlotState.LOCKED
    r2 = slot.fill(Decimal("0.6"), Decimal(100))
    assert r2.complete and slot.state is SlotState.FREE and slot.order is None
    assert slot.position == Decimal(1) and slot.entry_price == Decimal(100)
    cid2 = slot.submit(
        namespace=NS, side=SELL, price=Decimal(110), quantity=Decimal(1), post_only=True, reduce_only=True
    ).client_order_id
    assert cid2 != cid
    slot.ack()
    r3 = slot.fill(Decimal(1), Decimal(110))
    assert r3.realized_pnl == Decimal(10)
    assert slot.position == 0 and slot.state is SlotState.FREE


def test_illegal_transitions_raise_and_leave_slot_unchanged() -> None:
    slot = Slot(level=3)
    with pytest.raises(IllegalTransition):
        slot.ack()
    with pytest.raises(IllegalTransition):
        slot.fill(Decimal(1), Decimal(1))
    _submit(slot)
    with pytest.raises(IllegalTransition):
        _submit(slot)  # one order per slot
    with pytest.raises(IllegalTransition):
        slot.request_cancel()  # nothing to cancel until the venue acknowledged it
    assert slot.state is SlotState.PENDING and slot.cycle == 1


def test_overfill_is_refused() -> None:
    slot = Slot(level=0)
    _submit(slot, qty="1")
    slot.ack()
    slot.fill(Decimal("0.7"), Decimal(100))
    with pytest.raises(IllegalTransition, match="exceeds"):
        slot.fill(Decimal("0.5"), Decimal(100))
    assert slot.order is not None and slot.order.filled == Decimal("0.7")
    assert slot.position == Decimal("0.7")


def test_unresolved_resolves_by_lookup() -> None:
    slot = Slot(level=0)
    _submit(slot)
    slot.timeout()
    assert slot.state is SlotState.UNRESOLVED
    slot.absent()
    assert slot.state is SlotState.FREE and slot.position == 0
    _submit(slot)
    slot.timeout()
    slot.ack("x")
    assert slot.state is SlotState.LOCKED


def test_not_found_within_the_landing_window_stays_unresolved() -> None:
    slot = Slot(level=0)
    _submit(slot)
    slot.not_seen()  # a PENDING placement stuck beyond the bound: its outcome is unknown
    assert slot.state is SlotState.UNRESOLVED
    slot.not_seen()
    assert slot.state is SlotState.UNRESOLVED and slot.order is not None


def test_absent_does_not_consume_the_cycle_so_the_same_id_is_reused() -> None:
    slot = Slot(level=3)
    first = _submit(slot)
    slot.timeout()
    slot.absent()
    assert slot.cycle == 0
    again = _submit(slot)
    assert again == first  # a late landing of the first request answers as a duplicate
    slot.ack("x")
    slot.close()
    assert _submit(slot) != first  # a finished order's id is never reused


def test_external_fill_moves_the_position_without_touching_the_bound_order() -> None:
    slot = Slot(level=0)
    _submit(slot, qty="2")
    slot.ack("x")
    pnl = slot.external_fill(BUY, Decimal(1), Decimal(100))
    assert pnl == 0 and slot.position == 1 and slot.state is SlotState.LOCKED
    assert slot.order is not None and slot.order.filled == 0
    assert slot.external_fill(SELL, Decimal(1), Decimal(101)) == 1 and slot.position == 0


def test_assume_takes_over_a_committed_trial() -> None:
    slot = Slot(level=0)
    _submit(slot)
    trial = slot.copy()
    trial.ack("oid")
    trial.fill(Decimal(1), Decimal(100))
    assert slot.state is SlotState.PENDING and slot.position == 0  # untouched until committed
    slot.assume(trial)
    assert slot.state is SlotState.FREE and slot.position == 1
    assert slot.history == [SlotState.FREE, SlotState.PENDING, SlotState.LOCKED]


def test_cancel_flow_and_fill_during_cancel() -> None:
    slot = Slot(level=0)
    _submit(slot)
    slot.ack()
    slot.request_cancel()
    slot.fill(Decimal("0.25"), Decimal(100))
    assert slot.state is SlotState.CANCEL_REQUESTED
    slot.close()
    assert slot.state is SlotState.FREE and slot.position == Decimal("0.25")
    _submit(slot, side=SELL, qty="0.25")
    slot.ack()
    slot.request_cancel()
    slot.cancel_failed()
    assert slot.state is SlotState.LOCKED


def test_post_only_falls_back_after_consecutive_rejects_and_resets_on_fill() -> None:
    slot = Slot(level=0)
    for _ in range(3):
        assert slot.use_post_only(3)
        _submit(slot)
        slot.reject(post_only_reject=True)
    assert not slot.use_post_only(3)
    _submit(slot, post_only=False)
    slot.ack()
    slot.fill(Decimal(1), Decimal(100))
    assert slot.use_post_only(3)
    # a post-only order the venue expires instead of rejecting counts as well
    _submit(slot, side=SELL)
    slot.ack()
    slot.close(post_only_reject=True)
    assert slot.post_only_rejects == 1


def test_client_order_ids_fit_every_venue_and_are_ours() -> None:
    cid = client_order_id(NS, -12, BUY, 7)
    assert len(cid) <= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", cid)
    assert is_our_client_order_id(cid)
    assert not is_our_client_order_id("manual-order-1")
    assert client_order_id(NS, -12, BUY, 7) == cid  # deterministic: a retry after a crash reuses it
    with pytest.raises(ValueError):
        client_order_id(NS, 0, order_pb2.ORDER_SIDE_UNSPECIFIED, 1)


@settings(max_examples=200)
@given(
    st.sets(
        st.tuples(st.integers(-500, 500), st.sampled_from([BUY, SELL]), st.integers(1, 10_000)),
        min_size=2,
        max_size=50,
    ),
    st.sampled_from(["grid|BTC-USDT|a", "grid|ETH-USDT-PERP|b"]),
)
def test_ids_are_unique_per_intent(intents: set[tuple[int, int, int]], ns: str) -> None:
    ids = [client_order_id(ns, lvl, side, cyc) for lvl, side, cyc in intents]
    assert len(set(ids)) == len(ids)
    assert all(is_our_client_order_id(i) and len(i) <= 32 for i in ids)


_EVENTS = st.sampled_from(
    [
        "submit_buy",
        "submit_sell",
        "ack",
        "reject",
        "reject_po",
        "timeout",
        "absent",
        "not_seen",
        "fill",
        "cancel",
        "cancel_failed",
        "close",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_EVENTS, st.integers(1, 4)), max_size=60))
def test_random_event_sequences_never_break_the_invariants(events: list[tuple[str, int]]) -> None:
    slot = Slot(level=5)
    seen_ids: set[str] = set()
    absent_ids: set[str] = set()  # proven never placed: the only ids a submit may issue again
    signed_fills = Decimal(0)
    for name, n in events:
        before = slot.copy()
        try:
            if name.startswith("submit"):
                side: int = BUY if name == "submit_buy" else SELL
                cid = slot.submit(
                    namespace=NS,
                    side=side,
                    price=Decimal(100),
                    quantity=Decimal(4),
                    post_only=True,
                    reduce_only=False,
                ).client_order_id
                # a new intent gets a new id, unless its id was proven absent (reused on purpose)
                assert cid not in seen_ids or cid in absent_ids
                absent_ids.discard(cid)
                seen_ids.add(cid)
            elif name == "ack":
                slot.ack("oid")
            elif name == "reject":
                slot.reject()
            elif name == "reject_po":
                slot.reject(post_only_reject=True)
            elif name == "timeout":
                slot.timeout()
            elif name == "absent":
                cid = slot.order.client_order_id if slot.order else ""
                slot.absent()
                absent_ids.add(cid)
            elif name == "not_seen":
                slot.not_seen()
            elif name == "fill":
                side = slot.order.side if slot.order else BUY
                slot.fill(Decimal(n), Decimal(100))
                signed_fills += Decimal(n) if side == BUY else -Decimal(n)
            elif name == "cancel":
                slot.request_cancel()
            elif name == "cancel_failed":
                slot.cancel_failed()
            elif name == "close":
                slot.close()
        except IllegalTransition:
            after = slot.copy()
            assert (after.state, after.position, after.cycle, after.order) == (
                before.state,
                before.position,
                before.cycle,
                before.order,
            )
        # invariants
        assert slot.state in SlotState
        assert (slot.order is None) == (slot.state is SlotState.FREE)
        if slot.order is not None:
            assert 0 <= slot.order.filled <= slot.order.quantity
        assert slot.position == signed_fills
        # the cycle counts the ids that may exist at the venue (an absent one is given back)
        assert slot.cycle <= len(seen_ids)
        if slot.order is not None:
            assert slot.order.cycle == slot.cycle
        states = [*slot.history, slot.state]
        for prev, nxt in itertools.pairwise(states):
            assert any(k[0] is prev and v is nxt for k, v in TRANSITIONS.items())


def test_transition_table_is_closed_over_states() -> None:
    for (state, event), target in TRANSITIONS.items():
        assert state in SlotState and event in SlotEvent and target in SlotState
    # FREE is only left by a submit, or by the reconciler adopting a live order of ours
    assert {e for (s, e) in TRANSITIONS if s is SlotState.FREE} == {SlotEvent.SUBMIT, SlotEvent.ADOPT}


def test_margin_lock_expires() -> None:
    now = [100.0]
    lock = MarginLock(10, clock=lambda: now[0])
    assert not lock.locked
    lock.trigger()
    assert lock.locked and lock.remaining == 10
    now[0] = 109.9
    assert lock.locked
    now[0] = 110.0
    assert not lock.locked and lock.remaining == 0
