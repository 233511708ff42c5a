from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.markets.v1 import instrument_pb2
from cqc.venues.v1 import order_pb2
from opensqt.model.slots import Slot, SlotState
from opensqt.strategy.grid import (
    Cancel,
    GridParams,
    InstrumentRules,
    Place,
    grid_actions,
    level_price,
    nearest_level,
)

BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL
D = Decimal
SPOT = InstrumentRules(tick_size=D("0.01"), lot_size=D("0.001"))
PERP = InstrumentRules(tick_size=D("0.01"), lot_size=D("0.001"), derivatives=True)
P = GridParams(interval=D(1), order_quantity=D(30), min_order_value=D(20), buy_window=10, sell_window=10)


def _holding(level: int, qty: str, entry: Decimal) -> Slot:
    return Slot(level=level, position=D(qty), entry_price=entry)


def _locked(level: int, side: int, price: Decimal, qty: str = "0.3", filled: str = "0") -> Slot:
    slot = Slot(level=level)
    slot.submit(namespace="n", side=side, price=price, quantity=D(qty), post_only=True, reduce_only=False)
    slot.ack("o")
    if D(filled):
        slot.fill(D(filled), price)
    return slot


def test_nearest_level_rounds_half_away_from_zero() -> None:
    assert nearest_level(D("100.5"), D(100), D(1)) == 1
    assert nearest_level(D("99.5"), D(100), D(1)) == -1  # away from zero, as Go math.Round
    assert nearest_level(D("97.4"), D(100), D(1)) == -3
    assert level_price(D(100), -3, D("0.5")) == D("98.5")


def test_buy_window_below_price_with_safety_buffer() -> None:
    acts = grid_actions(D("100.05"), D(100), {}, P, SPOT)
    buys = [a for a in acts if isinstance(a, Place)]
    # level 0 (100) is within 0.1 interval of 100.05: skipped; 99 .. 91 are placed
    assert [a.price for a in buys] == [D(99 - i) for i in range(9)]
    assert all(a.side == BUY and a.opening and not a.reduce_only and a.post_only for a in buys)
    # fixed quote amount: 30 USDT at 99 -> 0.303 (rounded down to the lot)
    assert buys[0].quantity == D("0.303")
    assert all(a.quantity * a.price <= P.order_quantity for a in buys)

    acts = grid_actions(D("100.5"), D(100), {}, P, SPOT)
    assert next(a.price for a in acts if isinstance(a, Place)) == D(100)


def test_filled_slot_sells_one_interval_higher_reduce_only_on_derivatives() -> None:
    slots = {-1: _holding(-1, "0.303", D(99))}
    acts = grid_actions(D("99.8"), D(100), slots, P, PERP)
    sells = [a for a in acts if isinstance(a, Place) and a.side == SELL]
    assert len(sells) == 1
    s = sells[0]
    assert (s.level, s.price, s.quantity, s.reduce_only, s.opening) == (-1, D(100), D("0.303"), True, False)
    # on a spot venue there is no reduce-only flag
    spot = [
        a for a in grid_actions(D("99.8"), D(100), slots, P, SPOT) if isinstance(a, Place) and a.side == SELL
    ]
    assert not spot[0].reduce_only
    # the holding slot gets no new buy
    assert not [a for a in acts if isinstance(a, Place) and a.level == -1 and a.side == BUY]


def test_sell_below_min_order_value_or_outside_window_is_not_placed() -> None:
    tiny = {-1: _holding(-1, "0.1", D(99))}  # 0.1 * 100 = 10 < 20
    assert not [
        a for a in grid_actions(D("99.8"), D(100), tiny, P, SPOT) if isinstance(a, Place) and a.side == SELL
    ]
    far = {30: _holding(30, "1", D(130))}  # 130 > 99.8 + 10
    assert not [
        a for a in grid_actions(D("99.8"), D(100), far, P, SPOT) if isinstance(a, Place) and a.side == SELL
    ]


def test_sells_nearest_first_and_capped_by_the_order_limit() -> None:
    slots = {lvl: _holding(lvl, "1", D(100 + lvl)) for lvl in range(-5, 5)}
    params = GridParams(
        interval=D(1), order_quantity=D(30), min_order_value=D(0), buy_window=3, sell_window=4, max_orders=100
    )
    sells = [
        a
        for a in grid_actions(D("100.2"), D(100), slots, params, SPOT)
        if isinstance(a, Place) and a.side == SELL
    ]
    assert [a.level for a in sells] == [0, 1, -1, 2]
    capped = GridParams(
        interval=D(1), order_quantity=D(30), min_order_value=D(0), buy_window=3, sell_window=4, max_orders=2
    )
    acts = [a for a in grid_actions(D("100.2"), D(100), slots, capped, SPOT) if isinstance(a, Place)]
    assert len(acts) == 2


def test_busy_slots_are_left_alone() -> None:
    slots = {-1: _locked(-1, BUY, D(99)), -2: Slot(level=-2, state=SlotState.FREE)}
    pending = Slot(level=-3)
    pending.submit(namespace="n", side=BUY, price=D(97), quantity=D(1), post_only=True, reduce_only=False)
    slots[-3] = pending
    acts = grid_actions(D("100.05"), D(100), slots, P, SPOT)
    levels = [a.level for a in acts if isinstance(a, Place)]
    assert -1 not in levels and -3 not in levels and -2 in levels


def test_orders_that_left_the_window_are_cancelled_with_hysteresis() -> None:
    slots = {
        -10: _locked(-10, BUY, D(90)),  # bottom of the window + 1 slack level at price 100.05 -> kept
        -11: _locked(-11, BUY, D(89)),  # two below the window -> cancelled
        -12: _locked(-12, BUY, D(88), qty="1", filled="0.5"),  # partly filled -> kept
        12: _locked(12, SELL, D(113)),  # closing sell of level 12 (k0 + 10 + 2) -> cancelled
        11: _locked(11, SELL, D(112)),  # k0 + 11 -> within the slack, kept
    }
    cancels = [a for a in grid_actions(D("100.05"), D(100), slots, P, SPOT) if isinstance(a, Cancel)]
    assert sorted(c.level for c in cancels) == [-11, 12]
    assert all(c.reason == "out_of_window" for c in cancels)
    expected = {o.client_order_id for o in (slots[-11].order, slots[12].order) if o is not None}
    assert {c.client_order_id for c in cancels} == expected and len(expected) == 2


def test_margin_lock_places_nothing_and_cancels_opening_orders() -> None:
    slots = {-1: _locked(-1, BUY, D(99)), -2: _holding(-2, "0.3", D(98))}
    slots[-2].submit(
        namespace="n", side=SELL, price=D(99), quantity=D("0.3"), post_only=True, reduce_only=True
    )
    slots[-2].ack()
    acts = grid_actions(D("100.05"), D(100), slots, P, SPOT, margin_locked=True)
    assert acts == [Cancel(-1, slots[-1].order.client_order_id, "margin_lock")]  # type: ignore[union-attr]


def test_post_only_off_after_rejects() -> None:
    slot = Slot(level=-1, post_only_rejects=3)
    acts = grid_actions(D("100.05"), D(100), {-1: slot}, P, SPOT)
    first = next(a for a in acts if isinstance(a, Place) and a.level == -1)
    assert first.post_only is False


def test_neutral_mode_opens_shorts_above_and_closes_them_one_lower() -> None:
    params = GridParams(
        interval=D(1), order_quantity=D(30), min_order_value=D(0), buy_window=2, sell_window=2, neutral=True
    )
    acts = [a for a in grid_actions(D("100.05"), D(100), {}, params, PERP) if isinstance(a, Place)]
    sells = [a for a in acts if a.side == SELL]
    assert [a.price for a in sells] == [D(101)]  # level 0 (100) is inside the buffer; level 1 = 101
    assert sells[0].opening and not sells[0].reduce_only
    short = {1: Slot(level=1, position=D("-0.297"), entry_price=D(101))}
    closes = [
        a
        for a in grid_actions(D("100.05"), D(100), short, params, PERP)
        if isinstance(a, Place) and not a.opening
    ]
    assert [(a.side, a.price, a.quantity, a.reduce_only) for a in closes] == [(BUY, D(100), D("0.297"), True)]


def test_min_notional_and_min_quantity_rule_orders_out() -> None:
    rules = InstrumentRules(tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D(50))
    assert not [a for a in grid_actions(D("100.05"), D(100), {}, P, rules) if isinstance(a, Place)]
    inst = instrument_pb2.Instrument(
        tick_size="0.5",
        lot_size="0.01",
        min_notional="5",
        instrument_type=instrument_pb2.INSTRUMENT_TYPE_PERPETUAL,
    )
    r = InstrumentRules.from_instrument(inst)
    assert (r.tick_size, r.lot_size, r.min_notional, r.derivatives) == (D("0.5"), D("0.01"), D(5), True)


prices = st.decimals(min_value=D(1), max_value=D(100000), places=2)
intervals = st.sampled_from([D("0.5"), D(1), D(7), D(25), D("0.01")])


@st.composite
def _slot_maps(draw: st.DrawFn) -> dict[int, Slot]:
    out: dict[int, Slot] = {}
    for level in draw(st.lists(st.integers(-30, 30), unique=True, max_size=12)):
        kind = draw(st.sampled_from(["free", "holding", "locked_buy", "locked_sell", "pending"]))
        if kind == "free":
            out[level] = Slot(level=level)
        elif kind == "holding":
            out[level] = _holding(level, str(draw(st.integers(1, 50)) / 10), D(100))
        elif kind == "locked_buy":
            out[level] = _locked(level, BUY, D(100))
        elif kind == "locked_sell":
            out[level] = _locked(level, SELL, D(100))
        else:
            s = Slot(level=level)
            s.submit(namespace="n", side=BUY, price=D(1), quantity=D(1), post_only=True, reduce_only=False)
            out[level] = s
    return out


@settings(max_examples=200, deadline=None)
@given(
    prices, intervals, st.integers(-20, 20), _slot_maps(), st.booleans(), st.integers(1, 40), st.booleans()
)
def test_grid_properties(  # noqa: PLR0917
    price: Decimal,
    step: Decimal,
    anchor_off: int,
    slots: dict[int, Slot],
    perp: bool,
    cap: int,
    neutral: bool,
) -> None:
    anchor = price + anchor_off * step
    if anchor <= 0:
        anchor = price
    params = GridParams(
        interval=step,
        order_quantity=D(30),
        min_order_value=D(5),
        buy_window=6,
        sell_window=6,
        max_orders=cap,
        neutral=neutral,
    )
    rules = PERP if perp else SPOT
    snapshot = {
        k: (v.state, v.position, v.order.client_order_id if v.order else None) for k, v in slots.items()
    }
    acts = grid_actions(price, anchor, slots, params, rules)
    places = [a for a in acts if isinstance(a, Place)]
    # pure: the input is untouched
    assert snapshot == {
        k: (v.state, v.position, v.order.client_order_id if v.order else None) for k, v in slots.items()
    }
    # never more live orders than the cap
    active = sum(1 for s in slots.values() if s.order is not None)
    assert len(places) <= max(0, cap - active)
    # at most one action per level, and only on FREE slots without an order
    assert len({a.level for a in places}) == len(places)
    for a in places:
        slot = slots.get(a.level)
        assert slot is None or (slot.state is SlotState.FREE and slot.order is None)
        assert a.price > 0 and a.quantity > 0
        assert a.price % rules.tick_size == 0 and a.quantity % rules.lot_size == 0
        if a.opening:
            assert a.quantity * a.price <= params.order_quantity  # the quote amount is never exceeded
            if a.side == BUY:
                assert a.price < price - step / 10  # the safety buffer
            else:
                assert a.price > price + step / 10
        else:
            assert slot is not None and abs(slot.position) >= a.quantity
            assert a.reduce_only == perp
            assert a.quantity * a.price >= params.min_order_value
    for c in (a for a in acts if isinstance(a, Cancel)):
        slot = slots[c.level]
        assert slot.state is SlotState.LOCKED and slot.order is not None
        assert c.client_order_id == slot.order.client_order_id
