"""The matching engine: our orders against the synthetic book and the public trade flow.

Synchronous and deterministic: every call runs to completion, in the order it is made.

Taker side.  A marketable order walks the synthetic book (price priority), consuming liquidity until
the next market step rebuilds it.  Self-trade prevention: the taker never trades with our own resting
orders; when those would be next in line, the taker's remainder expires ("self-trade prevention").

Maker side.  A resting order remembers ``queue_ahead``, the synthetic size at its price when it
arrived (0 inside the spread or beyond the book).  For each public trade:

* a trade *through* its price (a sell below a resting buy, a buy above a resting sell) fills it
  completely: the level was swept;
* a trade *at* its price first consumes the queue ahead, then fills it (partially if the rest of the
  trade is smaller); our own orders at one price keep their time priority;
* with ``fill_model="pessimistic"`` only trades through the price fill.

Funds.  Spot buys hold ``price * quantity * (1 + taker fee)`` of the quote asset, spot sells hold the
base quantity, perpetual orders hold ``price * quantity * (1/leverage + taker fee)`` of the settle
asset; reduce-only orders hold nothing.  Each fill releases its share and pays the actual cost.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import (
    DuplicateOrder,
    InvalidRequest,
    NotFound,
    OrderRejected,
)
from cqvx.num import ZERO, dec_str, steps
from cqvx.timeutil import timestamp_from_ns as timestamp  # the sim's name; sim.client imports it
from cqvx.venues.sim.accounts import Ledger, Position
from cqvx.venues.sim.config import InstrumentSpec, SimConfig
from cqvx.venues.sim.grid import GridOrder, InstrumentGrid
from cqvx.venues.sim.market import InstrumentMarket, PublicTrade
from cqvx.venues.sim.orders import (
    _OPEN,
    BUY,
    E_CANCELLED,
    E_EXPIRED,
    E_NEW,
    E_TRADE,
    FOK,
    IOC,
    LIMIT,
    MAKER,
    MARKET,
    S_CANCELLED,
    S_EXPIRED,
    S_FILLED,
    S_PARTIAL,
    SELL,
    TAKER,
    EventSink,
    SimOrder,
    _Plan,
    _Side,
)
from cqvx.venues.sim.reports import _Reports
from cqvx.venues.sim.validation import _OrderChecks

__all__ = ["BUY", "SELL", "EventSink", "MatchingEngine", "SimOrder", "timestamp"]

_IMMEDIATE = frozenset({IOC, FOK})
# The plan of a post-only order that does not cross: no fill, no self-trade (shared; never mutated).
_NO_FILLS = _Plan([], False)


class MatchingEngine(_OrderChecks, _Reports):
    def __init__(
        self,
        config: SimConfig,
        markets: dict[str, InstrumentMarket],
        ledger: Ledger,
        now_ns: Callable[[], int],
        sink: EventSink,
    ) -> None:
        self.config = config
        self.venue = config.venue
        self.markets = markets
        self.specs: dict[str, InstrumentSpec] = {s.symbol: s for s in config.instruments}
        self.grids: dict[str, InstrumentGrid] = {s.symbol: InstrumentGrid(s) for s in config.instruments}
        self.ledger = ledger
        self.now_ns = now_ns
        self.sink = sink
        self.orders: dict[str, SimOrder] = {}
        self.by_client: dict[str, SimOrder] = {}
        self._terminal: deque[SimOrder] = deque()
        self._books: dict[str, tuple[_Side, _Side]] = {s: (_Side(True), _Side(False)) for s in self.specs}
        self._expiries: list[tuple[int, int, SimOrder]] = []
        self._ids = itertools.count(1)
        self._arrivals = itertools.count(1)
        self.changed_positions: set[str] = set()
        self.leverage: dict[str, Decimal] = {}
        for spec in config.instruments:
            if spec.is_perpetual:
                lev = config.leverage.get(spec.symbol, min(Decimal(10), spec.max_leverage))
                self.leverage[spec.symbol] = lev

    # -- lookups ------------------------------------------------------------------------------------

    def spec(self, symbol: str) -> InstrumentSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise InvalidRequest(f"unknown symbol {symbol!r}", venue=self.venue)
        return spec

    def find(self, order_id: str | None, client_order_id: str | None) -> SimOrder:
        order = self.orders.get(order_id) if order_id else self.by_client.get(client_order_id or "")
        if order is None:
            ref = f"order_id={order_id}" if order_id else f"client_order_id={client_order_id}"
            raise NotFound(f"order not found: {ref}", venue=self.venue)
        return order

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        out = [o for o in self.orders.values() if o.is_open and (not symbol or o.symbol == symbol)]
        out.sort(key=lambda o: o.arrival)
        return out

    def resting(self, symbol: str) -> tuple[_Side, _Side]:
        return self._books[symbol]

    def position(self, symbol: str) -> Position:
        spec = self.spec(symbol)
        return self.ledger.position(
            symbol, spec.quote_asset, self.leverage[symbol], spec.maintenance_margin_rate
        )

    def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        spec = self.spec(symbol)
        if not spec.is_perpetual:
            raise InvalidRequest(f"{symbol} is not a perpetual; leverage applies to perpetuals only")
        if not (0 < leverage <= spec.max_leverage):
            raise InvalidRequest(f"leverage must be in (0, {dec_str(spec.max_leverage)}]")
        pos = self.ledger.positions.get(symbol)
        if pos is not None and pos.quantity:
            raise InvalidRequest("cannot change leverage with an open position")
        self.leverage[symbol] = leverage
        if pos is not None:
            pos.leverage = leverage

    # -- placement ----------------------------------------------------------------------------------

    def place(self, req: order_pb2.Order) -> SimOrder:
        """Validate, reserve funds, match and rest; raises a taxonomy error when refused."""
        grid, order = self._validate(req)
        return self._admit(grid, order)

    def place_grid(self, req: GridOrder) -> SimOrder:
        """:meth:`place` for a request on the integer grid (:mod:`cqvx.venues.sim.grid`)."""
        grid, order = self._validate_grid(req)
        return self._admit(grid, order)

    def _admit(self, grid: InstrumentGrid, order: SimOrder) -> SimOrder:
        """The core both request types end in: duplicate check, funds, matching, resting."""
        cid = order.client_order_id
        if cid and cid in self.by_client:
            raise DuplicateOrder(
                f"client order id {cid!r} already used", client_order_id=cid, venue=self.venue
            )
        try:
            return self._place(grid, order)
        except OrderRejected as exc:
            self._emit_rejected(order, exc.message)
            raise

    def _place(self, grid: InstrumentGrid, order: SimOrder) -> SimOrder:
        v = self.venue
        symbol = order.symbol
        is_buy = order.side == BUY
        if grid.is_perpetual:
            pos = self.position(symbol)
            if order.reduce_only and (not pos.quantity or (pos.quantity > 0) == is_buy):
                raise OrderRejected("reduce-only order would not reduce the position", venue=v)
        market = self.markets[symbol]
        bids, asks = self._books[symbol]
        if order.post_only:
            # Crossing on the tick grid (the order's price and the synthetic touch both are on it):
            # at or through the synthetic touch or our own best on the other side.
            ticks = order.ticks
            if is_buy:
                own = asks.best_ticks
                crosses = ticks >= market.ask_ticks or (own is not None and ticks >= own)
            else:
                own = bids.best_ticks
                crosses = ticks <= market.bid_ticks or (own is not None and ticks <= own)
            if crosses:
                raise OrderRejected("post-only order would cross the book", venue=v)
            # Below every ask (synthetic and our own) or above every bid: _plan would find no fill
            # and no self-trade, so the walk is skipped (the common case of a market maker).
            plan = _NO_FILLS
        else:
            plan = self._plan(order, grid.spec)
            if order.quote_quantity is not None:
                order.quantity = plan.quantity
                if not order.quantity:
                    raise OrderRejected("quote_quantity buys nothing at the current book", venue=v)
            if order.tif == FOK and plan.quantity < order.quantity:
                raise OrderRejected("FOK order cannot be filled completely", venue=v)
            if order.order_type == MARKET and not plan.fills and not plan.self_trade:
                raise OrderRejected("no liquidity for the market order", venue=v)
        if not order.reduce_only:
            self._reserve(grid, order, plan)
        # Accepted: from here on the order exists.
        order.order_id = oid = f"sim-{next(self._ids)}"
        order.arrival = next(self._arrivals)
        if not order.client_order_id:
            order.client_order_id = f"sim-auto-{oid}"
        self.orders[oid] = order
        self.by_client[order.client_order_id] = order
        order.exec_seq += 1  # = self._emit(order, E_NEW), without the call
        sink = self.sink
        if sink.wants_reports():
            sink.report(self.report(order, E_NEW))
        if plan.fills:
            now = self.now_ns()
            for price, planned in plan.fills:
                qty = self._cap_reduce_only(order, planned)
                if qty <= 0:
                    break
                market.take(price, qty)
                trade = market.new_trade(now, price, qty, order.side)
                sink.public_trade(trade)
                self._fill(order, grid, price, qty, liq=TAKER, trade_id=trade.trade_id)
                if order.status not in _OPEN:
                    break
            if order.status not in _OPEN:
                return order
        if (
            order.order_type == LIMIT
            and order.tif not in _IMMEDIATE
            and not plan.self_trade
            and order.filled < order.quantity
        ):
            assert order.price is not None
            order.queue_ahead = market.level_size_at(order.side, order.ticks, order.price)
            (bids if is_buy else asks).add(order)
            if order.expires_ns is not None:
                heapq.heappush(self._expiries, (order.expires_ns, order.arrival, order))
            return order
        self._finish(
            order, S_EXPIRED, E_EXPIRED, "self-trade prevention" if plan.self_trade else "IOC remainder"
        )
        return order

    def _reserve(self, grid: InstrumentGrid, order: SimOrder, plan: _Plan) -> None:
        """Hold the order's funds (not called for reduce-only orders, which hold nothing)."""
        if grid.is_perpetual:
            rate = 1 / self.leverage[grid.symbol] + grid.spec.taker_fee
            order.lock_asset, order.reserve_rate = grid.quote_asset, rate
            if order.price is not None:
                amount = order.price * order.quantity * rate
                order.reserve_price = order.price
            else:
                amount = sum((p * q * rate for p, q in plan.fills), ZERO)
        elif order.side == BUY:
            rate = grid.buy_rate
            order.lock_asset, order.reserve_rate = grid.quote_asset, rate
            if order.price is not None:
                amount = order.price * order.quantity * rate
                order.reserve_price = order.price
            else:
                amount = sum((p * q * rate for p, q in plan.fills), ZERO)
        else:
            order.lock_asset = grid.base_asset
            amount = order.quantity
            if order.margin:  # borrow what the free balance lacks (refused beyond the limit)
                lack = amount - self.ledger.balance(grid.base_asset).available
                if lack > 0:
                    limit = self.config.margin_limits.get(grid.base_asset, ZERO)
                    self.ledger.borrow(grid.base_asset, lack, limit)
                    order.borrowed = lack
        # The order's name is only for the refusal's message: built by the ledger when it refuses.
        self.ledger.lock(order.lock_asset, amount, lambda: f"order {order.client_order_id or '(no id)'}")
        order.lock_remaining = amount

    def _cap_reduce_only(self, order: SimOrder, qty: Decimal) -> Decimal:
        if not order.reduce_only:
            return qty
        pos = self.ledger.positions.get(order.symbol)
        if pos is None or not pos.quantity or (pos.quantity > 0) == (order.side == BUY):
            return ZERO
        return min(qty, abs(pos.quantity))

    # -- fills and terminal states ------------------------------------------------------------------

    def _fill(
        self,
        order: SimOrder,
        grid: InstrumentGrid,
        price: Decimal,
        qty: Decimal,
        *,
        liq: execution_pb2.LiquiditySide.ValueType,
        trade_id: str,
    ) -> None:
        now = self.now_ns()
        notional = price * qty
        spec = grid.spec
        fee = notional * (spec.maker_fee if liq == MAKER else spec.taker_fee)
        if order.lock_asset:
            if order.reserve_rate is None:
                share = qty
            else:
                share = (order.reserve_price or price) * qty * order.reserve_rate
            share = min(share, order.lock_remaining)
            self.ledger.unlock(order.lock_asset, share)
            order.lock_remaining -= share
        ledger = self.ledger
        if grid.is_perpetual:
            ledger.credit(grid.quote_asset, -fee)
            pos = self.position(grid.symbol)
            ledger.apply_perp_fill(pos, qty if order.side == BUY else -qty, price, now)
            self.changed_positions.add(grid.symbol)
        elif order.side == BUY:
            ledger.credit(grid.quote_asset, -(notional + fee))
            ledger.credit(grid.base_asset, qty)
            if order.margin:
                ledger.repay(grid.base_asset, qty)
        else:
            ledger.credit(grid.base_asset, -qty)
            ledger.credit(grid.quote_asset, notional - fee)
        order.filled += qty
        order.cost += notional
        order.fees += fee
        order.updated_ns = now
        order.status = S_FILLED if order.filled >= order.quantity else S_PARTIAL
        self._emit(order, E_TRADE, last_price=price, last_qty=qty, fee=fee, liquidity=liq, trade_id=trade_id)
        if order.status == S_FILLED:
            self._release(order)
            self._retire(order)
        if grid.is_perpetual:
            self._after_position_change(grid.symbol, order)

    def _after_position_change(self, symbol: str, current: SimOrder) -> None:
        """A flat position cancels the reduce-only orders left behind (as venues do)."""
        pos = self.ledger.positions.get(symbol)
        if pos is not None and pos.quantity:
            return
        for o in self.open_orders(symbol):
            if o.reduce_only and o is not current:
                self._unrest(o)
                self._finish(o, S_CANCELLED, E_CANCELLED, "reduce-only order cancelled: position closed")

    def _release(self, order: SimOrder) -> None:
        if order.lock_asset and order.lock_remaining:
            self.ledger.unlock(order.lock_asset, order.lock_remaining)
            order.lock_remaining = ZERO
        if order.margin and order.borrowed:  # a plain bool first: the common order pays one check
            self._repay_unsold(order)

    def _repay_unsold(self, order: SimOrder) -> None:
        """A margin SELL that ends repays the part of its borrow it did not sell (after the release)."""
        if order.side == SELL:
            order.borrowed -= self.ledger.repay(order.lock_asset, min(order.borrowed, order.remaining))

    def _retire(self, order: SimOrder) -> None:
        self._terminal.append(order)
        self._retire_old()

    def _retire_old(self) -> None:
        while len(self._terminal) > self.config.order_retention:
            old = self._terminal.popleft()
            self.orders.pop(old.order_id, None)
            if self.by_client.get(old.client_order_id) is old:
                del self.by_client[old.client_order_id]

    def _unrest(self, order: SimOrder) -> None:
        bids, asks = self._books[order.symbol]
        (bids if order.side == BUY else asks).remove(order)

    def _finish(
        self,
        order: SimOrder,
        status: order_pb2.OrderStatus.ValueType,
        exec_type: execution_pb2.ExecutionType.ValueType,
        reason: str = "",
    ) -> None:
        order.status = status
        order.reason = reason
        order.updated_ns = self.now_ns()
        if order.lock_asset and order.lock_remaining:  # = self._release(order), without the call
            self.ledger.unlock(order.lock_asset, order.lock_remaining)
            order.lock_remaining = ZERO
        if order.margin and order.borrowed:  # a plain bool first: the common order pays one check
            self._repay_unsold(order)
        order.exec_seq += 1  # = self._emit(order, exec_type), without the call
        if self.sink.wants_reports():
            self.sink.report(self.report(order, exec_type))
        terminal = self._terminal  # = self._retire(order), without the call
        terminal.append(order)
        if len(terminal) > self.config.order_retention:
            self._retire_old()

    def cancel(self, order_id: str | None, client_order_id: str | None) -> SimOrder:
        order = self.orders.get(order_id) if order_id else None
        if order is None:
            order = self.find(order_id, client_order_id)
        if order.status not in _OPEN:
            raise NotFound(f"order {order.order_id} is not open", venue=self.venue)
        bids, asks = self._books[order.symbol]  # = self._unrest(order), without the call
        (bids if order.side == BUY else asks).remove(order)
        self._finish(order, S_CANCELLED, E_CANCELLED)
        return order

    # -- market events ------------------------------------------------------------------------------

    def on_public_trade(self, trade: PublicTrade) -> None:
        """Fill our resting orders that this public trade reaches (see the module docstring)."""
        bids, asks = self._books[trade.symbol]
        price = trade.price
        # One compare against our best resting price decides most events: nothing is reached.
        if trade.side == SELL:
            side = bids
            best = side.best_price
            if best is None or price > best:
                return
        else:
            side = asks
            best = side.best_price
            if best is None or price < best:
                return
        grid = self.grids[trade.symbol]
        self._match(side, grid, trade, *steps(price, grid.tick))

    def match_trades(
        self, symbol: str, events: Iterable[tuple[int, int, order_pb2.OrderSide.ValueType]]
    ) -> None:
        """The backtest path: public trades ``(price in ticks, quantity in lots, aggressor side)``,
        in order, against our resting orders, at the clock's current time.

        A trade that reaches none of our orders costs one integer compare (the common case); one
        that does becomes a :class:`PublicTrade` (Decimals from the grid) and fills exactly as
        :meth:`on_public_trade` does.  The trades are the caller's market data: they are not
        published, not added to candles and do not move the synthetic book (``SimVenue.inject_trade``
        does all of that, one trade at a time).
        """
        spec = self.spec(symbol)
        grid = self.grids[symbol]
        bids, asks = self._books[symbol]
        market = self.markets[symbol]
        bid_best, ask_best = bids.best_ticks, asks.best_ticks
        for event in events:
            try:
                ticks, lots, aggressor = event
                if aggressor == SELL:
                    if bid_best is None or ticks > bid_best:
                        continue
                    side = bids
                elif ask_best is None or ticks < ask_best:
                    continue
                else:
                    side = asks
            except (TypeError, ValueError):
                raise InvalidRequest(
                    f"match_trades: {event!r} is not (ticks, lots, side)", venue=self.venue
                ) from None
            if type(ticks) is not int or type(lots) is not int or ticks <= 0 or lots < 0:
                raise InvalidRequest(
                    f"match_trades: {event!r} is not (positive ticks, lots >= 0, side)", venue=self.venue
                )
            trade = market.new_trade(self.now_ns(), ticks * spec.tick_size, lots * spec.lot_size, aggressor)
            self._match(side, grid, trade, ticks, True)
            bid_best, ask_best = bids.best_ticks, asks.best_ticks

    def _match(self, side: _Side, grid: InstrumentGrid, trade: PublicTrade, ticks: int, exact: bool) -> None:
        pessimistic = self.config.fill_model == "pessimistic"
        for key in side.crossed_by(ticks, exact, inclusive=not pessimistic):
            level = list(side.levels.get(key, ()))
            if key != ticks or not exact:
                for order in level:
                    assert order.price is not None
                    self._maker_fill(order, grid, order.price, order.remaining, trade.trade_id)
                continue
            left = trade.quantity
            consumed = ZERO
            for order in level:
                order.queue_ahead = max(ZERO, order.queue_ahead - consumed)
                if left <= 0:
                    continue
                ahead = min(left, order.queue_ahead)
                order.queue_ahead -= ahead
                left -= ahead
                consumed += ahead
                if left <= 0:
                    continue
                fill = min(left, order.remaining)
                left -= fill
                assert order.price is not None
                self._maker_fill(order, grid, order.price, fill, trade.trade_id)

    def _maker_fill(
        self, order: SimOrder, grid: InstrumentGrid, price: Decimal, qty: Decimal, tid: str
    ) -> None:
        qty = self._cap_reduce_only(order, qty)
        if qty <= 0 or not order.is_open:
            return
        self._fill(order, grid, price, qty, liq=MAKER, trade_id=f"{tid}-{order.order_id}")
        if order.is_open and order.reduce_only and not self._cap_reduce_only(order, order.remaining):
            self._unrest(order)
            self._finish(order, S_CANCELLED, E_CANCELLED, "reduce-only order cancelled: position closed")
        if not order.is_open:
            self._unrest(order)

    def expire_due(self, now_ns: int) -> None:
        while self._expiries and self._expiries[0][0] <= now_ns:
            _, _, order = heapq.heappop(self._expiries)
            if order.is_open:
                self._unrest(order)
                self._finish(order, S_EXPIRED, E_EXPIRED, "time in force expired")

    def liquidate_if_due(self, symbol: str) -> None:
        """Close a position whose mark price reached its liquidation price; its margin is lost."""
        pos = self.ledger.positions.get(symbol)
        if pos is None or not pos.quantity:
            return
        liq = pos.liquidation_price()
        mark = self.markets[symbol].mid
        if liq is None or (mark > liq if pos.quantity > 0 else mark < liq):
            return
        now = self.now_ns()
        spec = self.specs[symbol]
        market = self.markets[symbol]
        qty = abs(pos.quantity)
        side = SELL if pos.quantity > 0 else BUY
        # Reduce-only orders go first: the venue takes over the position.
        for o in self.open_orders(symbol):
            self._unrest(o)
            self._finish(o, S_CANCELLED, E_CANCELLED, "cancelled by liquidation")
        margin = pos.margin
        realized = (liq - pos.entry_price) * pos.quantity
        self.ledger.unlock(pos.settle_asset, margin)
        # The whole isolated margin is lost: the part the realized loss does not cover is the
        # liquidation clearance fee.
        self.ledger.credit(pos.settle_asset, -margin)
        pos.realized_pnl += realized
        pos.quantity = ZERO
        pos.entry_price = ZERO
        pos.margin = ZERO
        pos.updated_ns = now
        order = SimOrder(
            order_id=f"sim-{next(self._ids)}",
            client_order_id=f"sim-liquidation-{symbol}-{now}",
            symbol=symbol,
            side=side,
            order_type=MARKET,
            tif=IOC,
            price=None,
            quantity=qty,
            post_only=False,
            reduce_only=True,
            created_ns=now,
            updated_ns=now,
            arrival=next(self._arrivals),
            status=S_FILLED,
            filled=qty,
            cost=liq * qty,
            reason="liquidation",
        )
        self.orders[order.order_id] = order
        self.by_client[order.client_order_id] = order
        liq = (liq // spec.tick_size) * spec.tick_size
        trade = market.new_trade(now, liq, qty, side, liquidation=True)
        self.sink.public_trade(trade)
        self._emit(
            order, E_TRADE, last_price=liq, last_qty=qty, fee=ZERO, liquidity=TAKER, trade_id=trade.trade_id
        )
        self._retire(order)
        self.changed_positions.add(symbol)

    def apply_funding(self, symbol: str, rate: Decimal, mark: Decimal) -> Decimal:
        """Settle one funding payment; returns what the account paid (negative: received)."""
        pos = self.ledger.positions.get(symbol)
        if pos is None or not pos.quantity:
            return ZERO
        payment = pos.quantity * mark * rate
        self.ledger.credit(pos.settle_asset, -payment)
        pos.realized_pnl -= payment
        pos.updated_ns = self.now_ns()
        self.changed_positions.add(symbol)
        return payment
