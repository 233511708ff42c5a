"""The integer-grid request path of the simulated venue (backtests): orders in ticks and lots.

A backtest that already thinks in an instrument's grid places :class:`GridOrder` requests (price in
ticks, quantity in lots, plain ints) with ``SimVenue.place_grid`` and cancels with
``SimVenue.cancel_grid``: no protobuf and no decimal parsing on the way in, and the reply is the
order record itself (:class:`~cqvx.venues.sim.orders.SimOrder`), from which
``sim.engine.report(order, ...)`` / ``sim.engine.to_proto(order)`` build the protobuf only when
asked.  The admission, the funds hold, the matching and the events are the ones of
``place_order``: both paths end in the same core (``MatchingEngine._admit``), and a grid order and
the protobuf order with the same canonical price and quantity strings produce the same bytes.

:class:`InstrumentGrid` is an instrument's grid, worked out once from its :class:`InstrumentSpec`:
conversions both ways (exact: a price off the tick grid or a quantity off the lot grid is refused,
never rounded), and the quantity and notional limits as integers (exact ceilings and floors of the
Decimal limits, so that ``lots >= min_lots`` says exactly what ``quantity >= min_quantity`` says).
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest
from cqvx.num import MAX_EXPONENT, dec_str, from_steps, steps
from cqvx.venues.sim.config import InstrumentSpec

__all__ = ["GridOrder", "InstrumentGrid"]

# Distinct prices / quantities whose Decimal is remembered per instrument (a strategy uses a few).
_MEMO = 65_536


class GridOrder(NamedTuple):
    """An order request on the instrument's integer grid.

    ``ticks`` is the limit price in ticks (``price = ticks * tick_size``; 0 for a market order),
    ``lots`` the quantity in lots (``quantity = lots * lot_size``).  ``tif`` 0 means GTC for a limit
    and IOC for a market order; ``expires_ns`` is the GTD expiry (epoch ns).  Quote-quantity buys are
    not on the grid: they go through ``place_order``.
    """

    symbol: str
    side: order_pb2.OrderSide.ValueType
    ticks: int
    lots: int
    client_order_id: str = ""
    order_type: order_pb2.OrderType.ValueType = order_pb2.ORDER_TYPE_LIMIT
    tif: order_pb2.TimeInForce.ValueType = order_pb2.TIME_IN_FORCE_UNSPECIFIED
    post_only: bool = False
    reduce_only: bool = False
    expires_ns: int | None = None
    strategy_id: str = ""
    account_id: str = ""


class InstrumentGrid:
    """One instrument's tick and lot grid, its limits in integers, and its facts the core reads often."""

    __slots__ = (
        "base_asset",
        "buy_rate",
        "is_perpetual",
        "lot",
        "lot_memo",
        "max_lots",
        "max_ticks",
        "min_lots",
        "min_units",
        "price_memo",
        "quote_asset",
        "spec",
        "symbol",
        "tick",
    )

    def __init__(self, spec: InstrumentSpec) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.tick = spec.tick_size
        self.lot = spec.lot_size
        self.is_perpetual = spec.is_perpetual
        self.base_asset = spec.base_asset
        self.quote_asset = spec.quote_asset
        # A spot buy holds price * quantity * (1 + taker fee) of the quote asset.
        self.buy_rate = 1 + spec.taker_fee
        tick, lot = Fraction(spec.tick_size), Fraction(spec.lot_size)
        # quantity >= min_quantity  <=>  lots >= ceil(min_quantity / lot), and so on: exact.
        # At least 1: a quantity must be positive (whatever min_quantity says).
        self.min_lots = max(1, math.ceil(Fraction(spec.min_quantity) / lot))
        self.max_lots = math.floor(Fraction(spec.max_quantity) / lot)
        # price * quantity >= min_notional  <=>  ticks * lots >= ceil(min_notional / (tick * lot)).
        self.min_units = math.ceil(Fraction(spec.min_notional) / (tick * lot))
        # Prices stay below 1e41, the magnitude :func:`cqvx.num.dec` takes from a protobuf request.
        self.max_ticks = math.ceil(Fraction(10) ** (MAX_EXPONENT + 1) / tick) - 1
        # ticks -> price and lots -> quantity, as :meth:`price` / :meth:`quantity` made them (the
        # admission reads these first: a dict lookup instead of a method call).
        self.price_memo: dict[int, Decimal] = {}
        self.lot_memo: dict[int, Decimal] = {}

    def price(self, ticks: int) -> Decimal:
        """``ticks * tick_size`` (exact; the Decimal ``dec`` gives for its canonical string)."""
        d = self.price_memo.get(ticks)
        if d is None:
            if len(self.price_memo) >= _MEMO:
                self.price_memo.clear()
            d = self.price_memo[ticks] = from_steps(ticks, self.tick)
        return d

    def quantity(self, lots: int) -> Decimal:
        """``lots * lot_size`` (exact, canonical like :meth:`price`)."""
        d = self.lot_memo.get(lots)
        if d is None:
            if len(self.lot_memo) >= _MEMO:
                self.lot_memo.clear()
            d = self.lot_memo[lots] = from_steps(lots, self.lot)
        return d

    def ticks(self, price: Decimal) -> int:
        """``price`` in ticks; :class:`InvalidRequest` when it is not on the tick grid (never rounded)."""
        n, exact = steps(price, self.tick)
        if not exact:
            raise InvalidRequest(
                f"tick size: price {dec_str(price)} is not a multiple of {dec_str(self.tick)}"
            )
        return n

    def lots(self, quantity: Decimal) -> int:
        """``quantity`` in lots; :class:`InvalidRequest` when it is not a lot multiple (never rounded)."""
        n, exact = steps(quantity, self.lot)
        if not exact:
            raise InvalidRequest(
                f"lot size: quantity {dec_str(quantity)} is not a multiple of {dec_str(self.lot)}"
            )
        return n
