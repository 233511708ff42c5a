"""The simulated venue's order records: SimOrder, the resting sides of our own orders, status constants.

State only; the matching engine (:mod:`cqvx.venues.sim.matching`) decides what happens to them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.num import ZERO
from cqvx.venues.sim.market import PublicTrade

BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL
LIMIT = order_pb2.ORDER_TYPE_LIMIT
MARKET = order_pb2.ORDER_TYPE_MARKET
GTC = order_pb2.TIME_IN_FORCE_GTC
IOC = order_pb2.TIME_IN_FORCE_IOC
FOK = order_pb2.TIME_IN_FORCE_FOK
GTD = order_pb2.TIME_IN_FORCE_GTD
DAY = order_pb2.TIME_IN_FORCE_DAY
S_OPEN = order_pb2.ORDER_STATUS_OPEN
S_PARTIAL = order_pb2.ORDER_STATUS_PARTIALLY_FILLED
S_FILLED = order_pb2.ORDER_STATUS_FILLED
S_CANCELLED = order_pb2.ORDER_STATUS_CANCELLED
S_EXPIRED = order_pb2.ORDER_STATUS_EXPIRED
S_REJECTED = order_pb2.ORDER_STATUS_REJECTED
E_NEW = execution_pb2.EXECUTION_TYPE_NEW
E_TRADE = execution_pb2.EXECUTION_TYPE_TRADE
E_CANCELLED = execution_pb2.EXECUTION_TYPE_CANCELLED
E_EXPIRED = execution_pb2.EXECUTION_TYPE_EXPIRED
E_REJECTED = execution_pb2.EXECUTION_TYPE_REJECTED
MAKER = execution_pb2.LIQUIDITY_SIDE_MAKER
TAKER = execution_pb2.LIQUIDITY_SIDE_TAKER
_OPEN = frozenset({S_OPEN, S_PARTIAL})
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_MAX_CLIENT_ID = 64


class EventSink(Protocol):
    """Where the engine's events go (the client fans them out to stream subscribers)."""

    def wants_reports(self) -> bool: ...

    def report(self, report: execution_pb2.ExecutionReport) -> None: ...

    def public_trade(self, trade: PublicTrade) -> None: ...


@dataclass(slots=True, eq=False)
class SimOrder:
    order_id: str
    client_order_id: str
    symbol: str
    side: order_pb2.OrderSide.ValueType
    order_type: order_pb2.OrderType.ValueType
    tif: order_pb2.TimeInForce.ValueType
    price: Decimal | None
    quantity: Decimal
    post_only: bool
    reduce_only: bool
    created_ns: int
    arrival: int
    # These three and the fields above are positional in the admission paths (a keyword call of this
    # class costs about three times as much).
    expires_ns: int | None = None
    # The limit price on the instrument's tick grid (price / tick_size, exact); 0 for market orders.
    ticks: int = 0
    updated_ns: int = 0
    strategy_id: str = ""
    account_id: str = ""
    quote_quantity: Decimal | None = None
    status: order_pb2.OrderStatus.ValueType = S_OPEN
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fees: Decimal = ZERO
    queue_ahead: Decimal = ZERO
    lock_asset: str = ""
    lock_remaining: Decimal = ZERO
    # Hold released per filled base unit: (reserve_price or fill price) * reserve_rate, or 1 unit of
    # base for spot sells (reserve_rate None).
    reserve_price: Decimal | None = None
    reserve_rate: Decimal | None = None
    reason: str = ""
    exec_seq: int = 0
    # Spot margin (Order.margin): a SELL borrowed ``borrowed`` base units at placement (what the free
    # balance lacked); the part it does not sell is repaid when it ends.  A BUY repays with what it buys.
    margin: bool = False
    borrowed: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN

    @property
    def average_price(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None


class _Side:
    """Our resting orders on one side of one symbol, on the integer tick grid.

    Price levels are keyed by the limit price in ticks (an int: cheap to hash, compare and bisect),
    each a FIFO list (time priority); ``prices`` is the sorted index of the levels.  The best level is
    kept in ``best_ticks`` / ``best_price`` so that a market event crossing nothing costs one compare.
    Decimal prices stay on the orders: fills and reports use them (the API edge).
    """

    __slots__ = ("best_price", "best_ticks", "is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.prices: list[int] = []
        self.levels: dict[int, list[SimOrder]] = {}
        self.best_ticks: int | None = None
        self.best_price: Decimal | None = None

    def _refresh(self) -> None:
        prices = self.prices
        if not prices:
            self.best_ticks = self.best_price = None
            return
        best = prices[-1] if self.is_bid else prices[0]
        self.best_ticks = best
        self.best_price = self.levels[best][0].price

    def add(self, order: SimOrder) -> None:
        key = order.ticks
        level = self.levels.get(key)
        if level is None:
            self.levels[key] = [order]
            bisect.insort(self.prices, key)
            best = self.best_ticks
            if best is None or (key > best if self.is_bid else key < best):
                self.best_ticks, self.best_price = key, order.price
            return
        level.append(order)

    def remove(self, order: SimOrder) -> None:
        if order.price is None:
            return
        key = order.ticks
        level = self.levels.get(key)
        if level is None:
            return
        try:
            level.remove(order)  # by identity (eq=False)
        except ValueError:
            return
        if not level:
            del self.levels[key]
            prices = self.prices
            del prices[bisect.bisect_left(prices, key)]
            if key == self.best_ticks:  # another level's removal leaves the best as it is
                self._refresh()
        elif key == self.best_ticks:
            self.best_price = level[0].price

    def best(self) -> Decimal | None:
        return self.best_price

    def crossed_by(self, ticks: int, exact: bool, inclusive: bool) -> list[int]:
        """Levels a public trade reaches, best first (a copy: fills mutate the book).

        The trade's price is ``ticks`` (floor, in ticks) and ``exact`` says whether it is on the grid:
        off the grid, no level is *at* the price, so ``inclusive`` does not matter.
        """
        prices = self.prices
        if self.is_bid:
            # Bids at or above the price (strictly above when not inclusive or off the grid).
            lo = ticks if (exact and inclusive) else ticks + 1
            return prices[bisect.bisect_left(prices, lo) :][::-1]
        hi = ticks if (inclusive or not exact) else ticks - 1
        return prices[: bisect.bisect_right(prices, hi)]

    def __len__(self) -> int:
        return sum(len(v) for v in self.levels.values())


@dataclass(slots=True)
class _Plan:
    fills: list[tuple[Decimal, Decimal]]
    self_trade: bool

    @property
    def quantity(self) -> Decimal:
        return sum((q for _, q in self.fills), ZERO)
