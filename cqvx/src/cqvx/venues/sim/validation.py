"""Order admission for the matching engine: field checks, instrument rules and the funds plan.

Refusals are the taxonomy's InvalidRequest / UnsupportedOperation / OrderRejected, naming the field."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import ZERO, dec, dec_str, floor_to, steps
from cqvx.timeutil import to_ns
from cqvx.venues.sim.config import InstrumentSpec
from cqvx.venues.sim.market import InstrumentMarket
from cqvx.venues.sim.orders import (
    _DAY_NS,
    _MAX_CLIENT_ID,
    BUY,
    DAY,
    FOK,
    GTC,
    GTD,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    SimOrder,
    _Plan,
    _Side,
)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Decimal:
    """:func:`cqvx.num.dec` of a request's number, remembered (pure; refusals are not cached)."""
    return dec(text, "number")


@functools.lru_cache(maxsize=4096)
def _multiple_of(value: Decimal, step: Decimal) -> bool:
    """Whether ``value`` is on the ``step`` grid, exactly (``%`` raises past 28 digits).

    A pure function of the two numbers, remembered: a strategy sends the same few prices and
    quantities over and over, and the exact check costs more than the rest of admission.
    """
    return floor_to(value, step) == value


@functools.lru_cache(maxsize=4096)
def _ticks(price: Decimal, tick: Decimal) -> int | None:
    """``price`` in ticks when it is on the grid, else None (exact, remembered like the above)."""
    n, exact = steps(price, tick)
    return n if exact else None


class _OrderChecks:
    """Validation half of :class:`~cqvx.venues.sim.matching.MatchingEngine` (mixin: no state of its own)."""

    venue: str
    markets: dict[str, InstrumentMarket]
    now_ns: Callable[[], int]
    _books: dict[str, tuple[_Side, _Side]]

    if TYPE_CHECKING:

        def spec(self, symbol: str) -> InstrumentSpec: ...

    # -- validation ---------------------------------------------------------------------------------

    def _num(self, text: str, field: str) -> Decimal | None:
        if not text:
            return None
        try:
            return _parsed(text)
        except ParseError:
            pass  # parsed again below, for the message naming the field
        try:
            return dec(text, field, self.venue)
        except ParseError as exc:
            raise InvalidRequest(exc.message, venue=self.venue) from None

    def _validate(self, req: order_pb2.Order) -> tuple[InstrumentSpec, SimOrder]:
        v = self.venue
        spec = self.spec(req.symbol)
        # Each protobuf field is read once: a read costs about as much as a Decimal compare.
        side = req.side
        otype = req.order_type
        post_only = req.post_only
        if side not in (BUY, SELL):
            raise InvalidRequest("side must be BUY or SELL", venue=v)
        if otype in (
            order_pb2.ORDER_TYPE_STOP_MARKET,
            order_pb2.ORDER_TYPE_STOP_LIMIT,
            order_pb2.ORDER_TYPE_TRAILING_STOP,
        ):
            raise UnsupportedOperation("the simulated venue has no stop orders", venue=v)
        if otype not in (LIMIT, MARKET):
            raise InvalidRequest("order_type must be LIMIT or MARKET", venue=v)
        cid = req.client_order_id
        if len(cid) > _MAX_CLIENT_ID or not cid.isprintable():
            raise InvalidRequest(f"client_order_id must be at most {_MAX_CLIENT_ID} printable characters")
        qty = self._num(req.quantity, "quantity")
        quote_qty = self._num(req.quote_quantity, "quote_quantity")
        price = self._num(req.price, "price")
        tif = req.time_in_force or (IOC if otype == MARKET else GTC)
        ticks = 0
        if otype == MARKET:
            if price is not None:
                raise InvalidRequest("a market order takes no price", venue=v)
            if tif not in (IOC, FOK):
                raise InvalidRequest("a market order is IOC or FOK", venue=v)
            if post_only:
                raise InvalidRequest("a market order cannot be post-only", venue=v)
        else:
            if price is None or price <= 0:
                raise InvalidRequest("a limit order needs a positive price", venue=v)
            on_grid = _ticks(price, spec.tick_size)
            if on_grid is None:
                raise InvalidRequest(
                    f"tick size: price {dec_str(price)} is not a multiple of {dec_str(spec.tick_size)}",
                    venue=v,
                )
            ticks = on_grid
            if post_only and tif in (IOC, FOK):
                raise InvalidRequest("a post-only order cannot be IOC or FOK", venue=v)
        if quote_qty is not None:
            if otype != MARKET or side != BUY or spec.is_perpetual or qty is not None:
                raise InvalidRequest("quote_quantity is only for spot market buys without quantity", venue=v)
            if quote_qty <= 0:
                raise InvalidRequest("quote_quantity must be positive", venue=v)
            if quote_qty < spec.min_notional:
                raise InvalidRequest(
                    f"min notional: {dec_str(quote_qty)} is below {dec_str(spec.min_notional)}", venue=v
                )
            qty = ZERO
        else:
            if qty is None or qty <= 0:
                raise InvalidRequest("quantity must be positive", venue=v)
            if not _multiple_of(qty, spec.lot_size):
                raise InvalidRequest(
                    f"lot size: quantity {dec_str(qty)} is not a multiple of {dec_str(spec.lot_size)}",
                    venue=v,
                )
            if qty < spec.min_quantity:
                raise InvalidRequest(
                    f"min quantity: {dec_str(qty)} is below {dec_str(spec.min_quantity)}", venue=v
                )
            if qty > spec.max_quantity:
                raise InvalidRequest(
                    f"max quantity: {dec_str(qty)} is above {dec_str(spec.max_quantity)}", venue=v
                )
            ref = price if price is not None else self.markets[spec.symbol].mid
            if ref * qty < spec.min_notional:
                raise InvalidRequest(
                    f"min notional: {dec_str(ref * qty)} is below {dec_str(spec.min_notional)}", venue=v
                )
        reduce_only = req.reduce_only
        if reduce_only and not spec.is_perpetual:
            raise InvalidRequest("reduce_only applies to perpetuals only", venue=v)
        margin = req.margin
        if margin and spec.is_perpetual:
            raise InvalidRequest("margin (borrow/repay) applies to spot orders only", venue=v)
        now = self.now_ns()
        expires: int | None = None
        if tif == GTD:
            if not req.HasField("expires_at"):
                raise InvalidRequest("a GTD order needs expires_at", venue=v)
            expires = to_ns(req.expires_at)
            if expires <= now:
                raise InvalidRequest("expires_at is in the past", venue=v)
        elif tif == DAY:
            expires = now - now % _DAY_NS + _DAY_NS
        elif tif not in (GTC, IOC, FOK):
            raise InvalidRequest(f"time_in_force {tif} is not supported", venue=v)
        order = SimOrder(
            order_id="",
            client_order_id=cid,
            symbol=spec.symbol,
            side=side,
            order_type=otype,
            tif=tif,
            price=price,
            quantity=qty or ZERO,
            post_only=post_only,
            reduce_only=reduce_only,
            margin=margin,
            created_ns=now,
            updated_ns=now,
            arrival=0,
            expires_ns=expires,
            strategy_id=req.strategy_id,
            account_id=req.account_id,
            quote_quantity=quote_qty,
            ticks=ticks,
        )
        return spec, order

    # -- taker planning -----------------------------------------------------------------------------

    def _plan(self, order: SimOrder, spec: InstrumentSpec) -> _Plan:
        market = self.markets[order.symbol]
        bids, asks = self._books[order.symbol]
        opposite = asks if order.side == BUY else bids
        own = opposite.best()
        is_buy = order.side == BUY
        levels = market.levels(SELL if is_buy else BUY, market.model.levels)
        fills: list[tuple[Decimal, Decimal]] = []
        left = order.quantity
        budget = order.quote_quantity
        fee_factor = 1 + spec.taker_fee
        self_trade = False
        for price, size in levels:
            if order.price is not None and (price > order.price if is_buy else price < order.price):
                break
            if own is not None and (price > own if is_buy else price < own):
                self_trade = True
                break
            if budget is not None:
                take = (budget / (price * fee_factor) // spec.lot_size) * spec.lot_size
                take = min(take, size)
                if take <= 0:
                    break
                budget -= take * price * fee_factor
            else:
                take = min(size, left)
                left -= take
            fills.append((price, take))
            if budget is None and not left:
                break
        else:
            if own is not None and (
                order.price is None or (own <= order.price if is_buy else own >= order.price)
            ):
                self_trade = True
        return _Plan(fills, self_trade)

    def _would_cross(self, order: SimOrder) -> bool:
        market = self.markets[order.symbol]
        bids, asks = self._books[order.symbol]
        assert order.price is not None
        if order.side == BUY:
            own = asks.best()
            return order.price >= market.best_ask or (own is not None and order.price >= own)
        own = bids.best()
        return order.price <= market.best_bid or (own is not None and order.price <= own)
