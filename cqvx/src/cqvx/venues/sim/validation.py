"""Order admission for the matching engine: field checks, instrument rules and the funds plan.

Refusals are the taxonomy's InvalidRequest / UnsupportedOperation / OrderRejected, naming the field."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, NoReturn

from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import ZERO, dec, dec_str, floor_to, from_steps, steps
from cqvx.timeutil import to_ns
from cqvx.venues.sim.config import InstrumentSpec
from cqvx.venues.sim.grid import GridOrder, InstrumentGrid
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

_SIDES = frozenset({BUY, SELL})
_TYPES = frozenset({LIMIT, MARKET})
_IMMEDIATE = frozenset({IOC, FOK})
_NO_EXPIRY = frozenset({GTC, IOC, FOK})
_STOPS = frozenset(
    {order_pb2.ORDER_TYPE_STOP_MARKET, order_pb2.ORDER_TYPE_STOP_LIMIT, order_pb2.ORDER_TYPE_TRAILING_STOP}
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
    grids: dict[str, InstrumentGrid]

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

    def _validate(self, req: order_pb2.Order) -> tuple[InstrumentGrid, SimOrder]:
        v = self.venue
        symbol = req.symbol
        grid = self.grids.get(symbol)
        if grid is None:
            raise InvalidRequest(f"unknown symbol {symbol!r}", venue=v)
        spec = grid.spec
        # Each protobuf field is read once: a read costs about as much as a Decimal compare.
        side = req.side
        otype = req.order_type
        post_only = req.post_only
        if side not in (BUY, SELL):
            raise InvalidRequest("side must be BUY or SELL", venue=v)
        if otype in _STOPS:
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
            if otype != MARKET or side != BUY or grid.is_perpetual or qty is not None:
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
            ref = price if price is not None else self.markets[symbol].mid
            if ref * qty < spec.min_notional:
                raise InvalidRequest(
                    f"min notional: {dec_str(ref * qty)} is below {dec_str(spec.min_notional)}", venue=v
                )
        reduce_only = req.reduce_only
        if reduce_only and not grid.is_perpetual:
            raise InvalidRequest("reduce_only applies to perpetuals only", venue=v)
        margin = req.margin
        if margin and grid.is_perpetual:
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
        # Positional (see SimOrder): order id, client order id, symbol, side, type, tif, price,
        # quantity, post-only, reduce-only, created, arrival, expiry, ticks, updated, strategy id,
        # account id, quote quantity.
        order = SimOrder(
            "",
            cid,
            symbol,
            side,
            otype,
            tif,
            price,
            qty or ZERO,
            post_only,
            reduce_only,
            now,
            0,
            expires,
            ticks,
            now,
            req.strategy_id,
            req.account_id,
            quote_qty,
        )
        if margin:
            order.margin = True
        return grid, order

    def _validate_grid(self, g: GridOrder) -> tuple[InstrumentGrid, SimOrder]:
        """:meth:`_validate` for a :class:`GridOrder`: the same rules, on ints.

        Nothing is rounded: ticks and lots are the exact price and quantity, and the limits are
        the exact integer ceilings/floors of the Decimal ones (:class:`InstrumentGrid`).  The
        checks run combined (the common order passes them all); anything they refuse goes to
        :meth:`_refuse_grid`, which names the first rule broken in :meth:`_validate`'s order.
        """
        try:  # free in 3.11 unless it raises
            symbol, side, ticks, lots, cid, otype, tif, post_only, reduce_only, expires, strategy, account = g
            grid = self.grids.get(symbol)
        except (TypeError, ValueError):
            raise InvalidRequest(f"not a GridOrder: {type(g).__name__}", venue=self.venue) from None
        if (
            grid is None
            or side not in _SIDES
            or type(ticks) is not int
            or type(lots) is not int
            or type(post_only) is not bool
            or type(reduce_only) is not bool
            or not grid.min_lots <= lots <= grid.max_lots
            or type(cid) is not str
            or type(strategy) is not str
            or type(account) is not str
            or len(cid) > _MAX_CLIENT_ID
            or not cid.isprintable()
            or (reduce_only and not grid.is_perpetual)
        ):
            self._refuse_grid(g)
        qty = grid.lot_memo.get(lots) or grid.quantity(lots)
        price: Decimal | None
        if otype == LIMIT:
            tif = tif or GTC
            if (
                not 0 < ticks <= grid.max_ticks
                or ticks * lots < grid.min_units
                or (post_only and tif in _IMMEDIATE)
            ):
                self._refuse_grid(g)
            price = grid.price_memo.get(ticks) or grid.price(ticks)
        else:
            tif = tif or IOC
            if (
                otype != MARKET
                or ticks
                or post_only
                or tif not in _IMMEDIATE
                or self.markets[symbol].mid * qty < grid.spec.min_notional
            ):
                self._refuse_grid(g)
            price = None
        now = self.now_ns()
        if tif in _NO_EXPIRY:
            expires = None
        elif tif == DAY:
            expires = now - now % _DAY_NS + _DAY_NS
        elif tif != GTD or type(expires) is not int or expires <= now:
            self._refuse_grid(g)
        order = SimOrder(
            "",
            cid,
            symbol,
            side,
            otype,
            tif,
            price,
            qty,
            post_only,
            reduce_only,
            now,
            0,
            expires,
            ticks,
            now,
            strategy,
            account,
            None,
        )
        return grid, order

    def _refuse_grid(self, g: GridOrder) -> NoReturn:
        """The refusal of a :class:`GridOrder` that :meth:`_validate_grid` found wrong: every rule,
        in :meth:`_validate`'s order, so that the first one broken is the one named."""
        v = self.venue
        symbol, side, ticks, lots, cid, otype, tif, post_only, reduce_only, expires, strategy, account = g
        grid = self.grids.get(symbol)
        if grid is None:
            raise InvalidRequest(f"unknown symbol {symbol!r}", venue=v)
        if side not in _SIDES:
            raise InvalidRequest("side must be BUY or SELL", venue=v)
        if otype not in _TYPES:
            if otype in _STOPS:
                raise UnsupportedOperation("the simulated venue has no stop orders", venue=v)
            raise InvalidRequest("order_type must be LIMIT or MARKET", venue=v)
        if type(cid) is not str or len(cid) > _MAX_CLIENT_ID or not cid.isprintable():
            raise InvalidRequest(f"client_order_id must be at most {_MAX_CLIENT_ID} printable characters")
        if type(strategy) is not str or type(account) is not str:
            raise InvalidRequest("strategy_id and account_id must be strings", venue=v)
        if type(ticks) is not int or type(lots) is not int:
            raise InvalidRequest("ticks and lots must be ints", venue=v)
        if type(post_only) is not bool or type(reduce_only) is not bool:
            raise InvalidRequest("post_only and reduce_only must be bools", venue=v)
        tif = tif or (IOC if otype == MARKET else GTC)
        price: Decimal | None = None
        if otype == MARKET:
            if ticks:
                raise InvalidRequest("a market order takes no price", venue=v)
            if tif not in _IMMEDIATE:
                raise InvalidRequest("a market order is IOC or FOK", venue=v)
            if post_only:
                raise InvalidRequest("a market order cannot be post-only", venue=v)
        else:
            if ticks <= 0:
                raise InvalidRequest("a limit order needs a positive price", venue=v)
            if ticks > grid.max_ticks:
                raise InvalidRequest(f"price: {ticks} ticks is out of range", venue=v)
            price = grid.price_memo.get(ticks) or grid.price(ticks)  # the memo, then the method
            if post_only and tif in _IMMEDIATE:
                raise InvalidRequest("a post-only order cannot be IOC or FOK", venue=v)
        if lots <= 0:
            raise InvalidRequest("quantity must be positive", venue=v)
        qty = (grid.lot_memo.get(lots) or grid.quantity(lots)) if lots <= grid.max_lots else ZERO
        if lots < grid.min_lots:
            raise InvalidRequest(
                f"min quantity: {dec_str(qty)} is below {dec_str(grid.spec.min_quantity)}", venue=v
            )
        if lots > grid.max_lots:
            qty = from_steps(lots, grid.lot)  # for the message only (the memo keeps valid ones)
            raise InvalidRequest(
                f"max quantity: {dec_str(qty)} is above {dec_str(grid.spec.max_quantity)}", venue=v
            )
        if price is None:
            ref = self.markets[symbol].mid
            if ref * qty < grid.spec.min_notional:
                raise InvalidRequest(
                    f"min notional: {dec_str(ref * qty)} is below {dec_str(grid.spec.min_notional)}", venue=v
                )
        elif ticks * lots < grid.min_units:
            raise InvalidRequest(
                f"min notional: {dec_str(price * qty)} is below {dec_str(grid.spec.min_notional)}", venue=v
            )
        if reduce_only and not grid.is_perpetual:
            raise InvalidRequest("reduce_only applies to perpetuals only", venue=v)
        now = self.now_ns()
        if tif == GTD:
            if expires is None:
                raise InvalidRequest("a GTD order needs expires_at", venue=v)
            if type(expires) is not int:
                raise InvalidRequest("expires_ns must be an int", venue=v)
            if expires <= now:
                raise InvalidRequest("expires_at is in the past", venue=v)
        elif tif not in (GTC, IOC, FOK, DAY):
            raise InvalidRequest(f"time_in_force {tif} is not supported", venue=v)
        raise InvalidRequest(f"order refused: {g!r}", venue=v)  # not reached: a check above fires

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
