"""The grid strategy as a pure function: (price, anchor, slots, params, rules) -> actions.

The original grid (reference §2.1), with the §12 fixes:

* Levels are ``anchor + k * interval`` (``k`` an integer; no float keys).  The grid price is the level
  nearest the current price (half away from zero, as Go's ``math.Round``).
* Buy window: levels ``k0, k0-1, ..., k0-(buy_window-1)``; a buy is placed only on a FREE slot with no
  position and no order, and only if ``level_price < price - 0.1 * interval`` (the safety buffer).
* Each filled (long) slot is sold one interval higher; eligible when
  ``level_price <= price + sell_window * interval`` and ``sell_price * qty >= min_order_value``;
  nearest first.  Neutral mode mirrors this with short-opening sells above the price.
* Closing orders are ``reduce_only`` on derivatives venues (spot venues have no such flag).
* Quantities: the fixed QUOTE amount per order, ``round_quantity(order_quantity / order_price, lot)``
  (never up).  Prices: ``round_price`` on the safe side (buys down, sells up).
* The live-order cap ``order_cleanup_threshold`` bounds new orders.
* NEW vs the original: orders that left the window are cancelled (one level of hysteresis, and never an
  order that has partly filled), and while the margin lock is on nothing is placed and every opening order
  is cancelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cqc.markets.v1 import instrument_pb2
from cqc.venues.v1 import order_pb2
from cqvx.num import ZERO, dec_or_none, round_price, round_quantity
from opensqt.config import TradingConfig
from opensqt.model.quantities import base_quantity
from opensqt.model.slots import Slot, SlotState

__all__ = [
    "Cancel",
    "GridParams",
    "InstrumentRules",
    "Place",
    "grid_actions",
    "inventory_slots",
    "is_opening",
    "level_price",
    "nearest_level",
]

BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL
_BUFFER = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal = ZERO
    min_notional: Decimal = ZERO
    derivatives: bool = False
    maker_fee: Decimal = ZERO
    taker_fee: Decimal = ZERO

    @classmethod
    def from_instrument(cls, inst: instrument_pb2.Instrument) -> InstrumentRules:
        tick = dec_or_none(inst.tick_size, "tick_size") or (
            Decimal(1).scaleb(-inst.price_precision) if inst.price_precision else ZERO
        )
        lot = dec_or_none(inst.lot_size, "lot_size") or (
            Decimal(1).scaleb(-inst.quantity_precision) if inst.quantity_precision else ZERO
        )
        return cls(
            tick_size=tick,
            lot_size=lot,
            min_quantity=dec_or_none(inst.min_quantity, "min_quantity") or ZERO,
            min_notional=dec_or_none(inst.min_notional, "min_notional") or ZERO,
            derivatives=inst.instrument_type
            in (instrument_pb2.INSTRUMENT_TYPE_PERPETUAL, instrument_pb2.INSTRUMENT_TYPE_FUTURE),
            maker_fee=dec_or_none(inst.maker_fee, "maker_fee") or ZERO,
            taker_fee=dec_or_none(inst.taker_fee, "taker_fee") or ZERO,
        )


@dataclass(frozen=True, slots=True)
class GridParams:
    interval: Decimal
    order_quantity: Decimal  # quote amount per order
    min_order_value: Decimal = Decimal(20)
    buy_window: int = 10
    sell_window: int = 10
    max_orders: int = 100
    neutral: bool = False
    post_only_max_rejects: int = 3

    @classmethod
    def from_config(cls, t: TradingConfig) -> GridParams:
        return cls(
            interval=t.price_interval,
            order_quantity=t.order_quantity,
            min_order_value=t.min_order_value,
            buy_window=t.buy_window_size,
            sell_window=t.sell_window_size,
            max_orders=t.order_cleanup_threshold,
            neutral=t.grid_mode == "neutral",
            post_only_max_rejects=t.post_only_max_rejects,
        )


@dataclass(frozen=True, slots=True)
class Place:
    level: int
    side: int
    price: Decimal
    quantity: Decimal
    post_only: bool
    reduce_only: bool
    opening: bool


@dataclass(frozen=True, slots=True)
class Cancel:
    level: int
    client_order_id: str
    reason: str  # out_of_window | margin_lock | risk | cleanup | shutdown (a bounded label set)


Action = Place | Cancel


def level_price(anchor: Decimal, level: int, interval: Decimal) -> Decimal:
    return anchor + level * interval


def nearest_level(price: Decimal, anchor: Decimal, interval: Decimal) -> int:
    return int(((price - anchor) / interval).to_integral_value(rounding=ROUND_HALF_UP))


def is_opening(slot: Slot) -> bool:
    """An order that adds exposure (a buy on a flat/long slot, a sell on a flat/short slot)."""
    o = slot.order
    if o is None:
        return False
    return (o.side == BUY and slot.position >= 0) or (o.side == SELL and slot.position <= 0)


def grid_actions(
    price: Decimal,
    anchor: Decimal,
    slots: Mapping[int, Slot],
    params: GridParams,
    rules: InstrumentRules,
    *,
    margin_locked: bool = False,
) -> list[Action]:
    """The actions for one (conflated) price tick.  Reads ``slots``; never mutates anything."""
    if price <= 0:
        return []
    step = params.interval
    k0 = nearest_level(price, anchor, step)
    actions: list[Action] = []

    if margin_locked:
        # Pause placement; release the margin held by opening orders (original CancelAllBuyOrders).
        for level in sorted(slots):
            slot = slots[level]
            if slot.state is SlotState.LOCKED and slot.order is not None and is_opening(slot):
                actions.append(Cancel(level, slot.order.client_order_id, "margin_lock"))
        return actions

    # ONE pass over the slots (the tick-to-order path; a long-running grid holds hundreds): the cancels
    # for orders that left the window, the count of live orders, and the closing candidates.
    buy_floor = k0 - params.buy_window  # the window is k0 .. k0-(bw-1); one level of slack below it
    sell_ceiling = k0 + params.sell_window + 1  # eligibility reaches ~k0+sell_window; one level of slack
    cancels: list[Cancel] = []
    closing: list[tuple[Decimal, Place]] = []
    active = 0
    for level, slot in slots.items():
        o = slot.order
        if o is not None:
            active += 1
            # Out of the window (one level of hysteresis; partial fills kept).  The level of the
            # exposure this order works: a closing sell at level+1 belongs to slot `level`.
            if (
                slot.state is SlotState.LOCKED
                and not o.filled > 0
                and ((o.side == BUY and level < buy_floor) or (o.side == SELL and level > sell_ceiling))
            ):
                cancels.append(Cancel(level, o.client_order_id, "out_of_window"))
            continue
        # Closing orders: each long slot (idle: FREE, no order) sells one interval higher, each short
        # slot buys one lower.
        if slot.position == 0 or slot.state is not SlotState.FREE:
            continue
        lp = level_price(anchor, level, step)
        held = round_quantity(abs(slot.position), rules.lot_size)
        if held <= 0:
            continue
        if slot.position > 0:
            if lp > price + params.sell_window * step:
                continue
            px = round_price(lp + step, rules.tick_size, is_buy=False)
            side = SELL
        else:
            if lp < price - params.buy_window * step:
                continue
            px = round_price(lp - step, rules.tick_size, is_buy=True)
            side = BUY
        if px <= 0 or px * held < params.min_order_value:
            continue
        place = Place(
            level, side, px, held, slot.use_post_only(params.post_only_max_rejects), rules.derivatives, False
        )
        closing.append((abs(lp - price), place))
    cancels.sort(key=lambda c: c.level)
    actions.extend(cancels)

    budget = max(0, params.max_orders - active)
    buffer = _BUFFER * step

    def idle(level: int) -> Slot | None:
        s = slots.get(level)
        if s is None:
            return Slot(level)  # a level the engine has not created yet: FREE and flat
        return s if s.state is SlotState.FREE and s.order is None else None

    def post_only(slot: Slot) -> bool:
        return slot.use_post_only(params.post_only_max_rejects)

    # ---- opening buys below the price
    new_buys = 0
    for i in range(params.buy_window):
        if new_buys >= budget:
            break
        level = k0 - i
        lp = level_price(anchor, level, step)
        if lp <= 0 or not lp < price - buffer:
            continue
        candidate = idle(level)
        if candidate is None or candidate.position != 0:
            continue
        px = round_price(lp, rules.tick_size, is_buy=True)
        qty = _qty(params.order_quantity, px, rules)
        if qty is None:
            continue
        actions.append(Place(level, BUY, px, qty, post_only(candidate), False, True))
        new_buys += 1
    budget -= new_buys

    # ---- closing orders, nearest first
    closing.sort(key=lambda item: (item[0], item[1].level))
    n_close = min(params.sell_window, budget)
    actions.extend(p for _, p in closing[:n_close])
    budget -= min(n_close, len(closing))

    # ---- neutral mode: short-opening sells above the price
    if params.neutral:
        for i in range(params.sell_window):
            if budget <= 0:
                break
            level = k0 + i
            lp = level_price(anchor, level, step)
            if not lp > price + buffer:
                continue
            candidate = idle(level)
            if candidate is None or candidate.position != 0:
                continue
            px = round_price(lp, rules.tick_size, is_buy=False)
            qty = _qty(params.order_quantity, px, rules)
            if qty is None:
                continue
            actions.append(Place(level, SELL, px, qty, post_only(candidate), False, True))
            budget -= 1
    return actions


def _qty(quote_amount: Decimal, price: Decimal, rules: InstrumentRules) -> Decimal | None:
    """The fixed-amount quantity, or None when the venue's minimums rule the order out."""
    if price <= 0:
        return None
    qty = base_quantity(quote_amount, price, rules.lot_size)
    if qty <= 0 or qty < rules.min_quantity or qty * price < rules.min_notional:
        return None
    return qty


def inventory_slots(
    position: Decimal,
    anchor: Decimal,
    params: GridParams,
    rules: InstrumentRules,
    *,
    entry_price: Decimal | None = None,
) -> list[Slot]:
    """Split a position the venue already holds into FILLED slots (original initializeSellSlotsFromPosition).

    ``n = ceil(|position| / (order_quantity / anchor))`` slots at ``anchor + interval*(1+i)`` upward (a
    short, in neutral mode, mirrors downward), each holding the fixed-amount quantity of its level
    (``order_quantity / level_price``, rounded down to the lot) and the last one the remainder, so the
    slots sum to the position exactly.  A remainder too small to be sold (below ``min_order_value`` or the
    venue's minimums) is merged into the slot before it.  Each slot's closing order is then placed by the
    grid like any other (one interval above, reduce-only on derivatives).  ``entry_price`` is the venue's
    entry when it reports one, else the level price.
    """
    if position == 0 or anchor <= 0:
        return []
    sign = 1 if position > 0 else -1
    remaining = abs(position)
    per_slot = params.order_quantity / anchor
    n = max(1, math.ceil(remaining / per_slot))
    out: list[Slot] = []
    for i in range(n):
        level = sign * (1 + i)
        lp = level_price(anchor, level, params.interval)
        if lp <= params.interval:  # a short's levels reach zero: the rest stays on the last slot
            break
        qty = (
            remaining
            if i == n - 1
            else min(remaining, round_quantity(params.order_quantity / lp, rules.lot_size))
        )
        if qty <= 0:
            continue
        out.append(Slot(level, position=sign * qty, entry_price=entry_price or lp))
        remaining -= qty
        if remaining == 0:
            break
    if not out:
        return [
            Slot(
                sign, position=position, entry_price=entry_price or level_price(anchor, sign, params.interval)
            )
        ]
    if remaining > 0:
        out[-1].position += sign * remaining
    if len(out) >= 2:
        last = out[-1]
        close_px = level_price(anchor, last.level + sign, params.interval)
        q = abs(last.position)
        if q * close_px < max(params.min_order_value, rules.min_notional) or q < rules.min_quantity:
            out.pop()
            out[-1].position += last.position
    return out
