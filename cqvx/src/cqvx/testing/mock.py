"""MockVenue: an in-memory :class:`~cqvx.client.VenueClient` (and every capability) for tests.

How a service that consumes cqvx tests itself with no network::

    mock = MockVenue()
    mock.on("get_balances", [builders.balance(asset="USD", available="100")])   # a value
    mock.on("place_order", InsufficientFunds("no money"), times=1)                 # fail once
    mock.on("get_order", lambda **kw: my_order)                                    # a handler
    await service.run_once(mock)
    assert mock.call_count("place_order") == 2
    assert mock.calls("place_order")[0]["order"].client_order_id == "..."

    trades = mock.subscribe_trades("BTC-USD")          # or let the service subscribe, then:
    await mock.stream("trades").wait_subscribed()       # no race with the service's task
    await mock.push_trade("BTC-USD", price="50100")
    mock.stream("trades").fail(Unavailable("dropped"))  # or .end()

Without a configured behaviour every method does something useful: an order store (place -> OPEN
report; get/cancel by either id; a reused client order id -> :class:`DuplicateOrder`; an unknown id ->
:class:`NotFound`; a buy or sell the listed balances cannot cover -> :class:`InsufficientFunds`, checked
against ``available`` without reserving), a local book per symbol fed by :meth:`MockVenue.push_book`,
and seedable lists for balances, instruments, positions, funding rates, candles, prices and tickers.
Every placement, cancel and :meth:`MockVenue.fill` is also published on the ``executions`` stream.

Everything runs on the event loop: no threads, no locks, and every bookkeeping step happens before
the first ``await`` of a call, so concurrent calls are recorded and numbered in the order they start.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from google.protobuf.message import Message

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, price_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2, rfq_pb2, venue_pb2
from cqvx.book import OrderBookL2
from cqvx.client import capabilities_of, check_order_ref, refuse_margin
from cqvx.errors import (
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    Unavailable,
    VenueError,
)
from cqvx.num import ZERO, dec, dec_str
from cqvx.symbols import parse_symbol
from cqvx.testing import builders
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter

__all__ = ["Call", "MockStream", "MockVenue", "MockVenueHarness", "StreamHub"]

from cqvx.testing.mock_data import _copy, _MockData, _now_ts
from cqvx.testing.mock_streams import STREAMS, MockStream, StreamHub

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One recorded call: the method name and its arguments by name (messages copied)."""

    method: str
    kwargs: Mapping[str, Any]
    at: float  # time.monotonic()

    def __getitem__(self, name: str) -> Any:
        return self.kwargs[name]


# ------------------------------------------------------------------------------------------ venue


class _Behaviour:
    __slots__ = ("remaining", "value")

    def __init__(self, value: Any, remaining: int | None) -> None:
        self.value = value
        self.remaining = remaining


class MockVenue(_MockData):
    """An in-memory venue client.  See the module docstring for the tour."""

    def __init__(
        self,
        venue: str = "mock",
        *,
        balances: Sequence[balance_pb2.Balance] | None = None,
        instruments: Sequence[instrument_pb2.Instrument] | None = None,
        capabilities: frozenset[int] | None = None,
        check_funds: bool = True,
    ) -> None:
        self._venue = venue
        self.check_funds = check_funds
        self.balances: list[balance_pb2.Balance] = list(
            balances
            if balances is not None
            else [
                builders.balance(venue=venue, asset="USD", total="1000000", available="1000000", locked="0"),
                builders.balance(venue=venue, asset="BTC", total="10", available="10", locked="0"),
            ]
        )
        self.instruments: list[instrument_pb2.Instrument] = list(
            instruments if instruments is not None else [builders.instrument(venue=venue)]
        )
        self.orders: dict[str, order_pb2.Order] = {}  # by order id, in placement order
        self._by_client_id: dict[str, str] = {}
        self.books: dict[str, OrderBookL2] = {}
        self.positions: list[position_pb2.Position] = []
        self.funding_rates: dict[str, funding_pb2.FundingRate] = {}
        self.candles: list[candle_pb2.Candle] = []
        self.prices: dict[str, price_pb2.Price] = {}
        self.tickers: dict[str, price_pb2.Ticker] = {}
        self.quotes: dict[str, rfq_pb2.Quote] = {}
        self.transactions: dict[str, custody_pb2.CustodyTransaction] = {}
        self.health_report: venue_pb2.VenueHealth | None = None
        self._capabilities = capabilities
        self._ids = itertools.count(1)
        self._behaviours: dict[str, deque[_Behaviour]] = defaultdict(deque)
        self._fail_next: deque[_Behaviour] = deque()
        self._calls: dict[str, list[Call]] = defaultdict(list)
        self.all_calls: list[Call] = []
        self._hubs = {name: StreamHub(name, venue) for name in STREAMS}
        # Subscriptions on these symbols are refused: wait_live() and the first read raise the error.
        self.refused_symbols: dict[str, VenueError] = {}
        self._closed = False

    # ------------------------------------------------------------------------ configuration

    @property
    def venue(self) -> str:
        return self._venue

    def on(self, method: str, behaviour: Any, *, times: int | None = None) -> None:
        """Configure what ``method`` does.

        ``behaviour`` is an exception (instance or class: raised), a callable (called with the
        method's arguments by name; may be async), or any other value (returned; messages are copied
        per call).  With ``times=n`` it applies to the next ``n`` calls only, ahead of any permanent
        behaviour; without, it replaces the permanent behaviour.
        """
        self._check_method(method)
        queue = self._behaviours[method]
        if times is None:
            kept = [b for b in queue if b.remaining is not None]
            queue.clear()
            queue.extend(kept)
            queue.append(_Behaviour(behaviour, None))
        else:
            if times < 1:
                raise ValueError("times must be >= 1")
            # One-shot behaviours go before the permanent one (which is always last).
            permanent = [b for b in queue if b.remaining is None]
            kept = [b for b in queue if b.remaining is not None]
            queue.clear()
            queue.extend([*kept, _Behaviour(behaviour, times), *permanent])

    def fail_next(self, error: BaseException | type[BaseException], times: int = 1) -> None:
        """The next ``times`` calls of any method raise ``error`` (e.g. a burst of rate limits)."""
        self._fail_next.append(_Behaviour(error, times))

    def default(self, method: str) -> None:
        """Forget every behaviour configured for ``method`` (back to the built-in default)."""
        self._check_method(method)
        self._behaviours.pop(method, None)

    def calls(self, method: str) -> list[Call]:
        self._check_method(method)
        return list(self._calls.get(method, ()))

    def call_count(self, method: str) -> int:
        self._check_method(method)
        return len(self._calls.get(method, ()))

    def reset(self) -> None:
        """Clear recorded calls and configured behaviours (the order store and seeds stay)."""
        self._calls.clear()
        self.all_calls.clear()
        self._behaviours.clear()
        self._fail_next.clear()

    def stream(self, name: str) -> StreamHub:
        """A named stream: book, trades, executions, prices, positions, funding, candles, balances."""
        try:
            return self._hubs[name]
        except KeyError:
            raise ValueError(f"unknown stream {name!r}; streams: {', '.join(STREAMS)}") from None

    def _check_method(self, method: str) -> None:
        if method.startswith("_") or not callable(getattr(type(self), method, None)) or method in _NOT_MOCKED:
            raise ValueError(f"MockVenue has no mockable method {method!r}")

    # ------------------------------------------------------------------------------ dispatch

    def _record(self, method: str, kwargs: Mapping[str, Any]) -> _Behaviour | None:
        call = Call(method, {k: _copy(v) for k, v in kwargs.items()}, time.monotonic())
        self._calls[method].append(call)
        self.all_calls.append(call)
        for queue in (self._fail_next, self._behaviours.get(method)):
            if queue:
                chosen = queue[0]
                if chosen.remaining is not None:
                    chosen.remaining -= 1
                    if chosen.remaining <= 0:
                        queue.popleft()
                return chosen
        return None

    async def _call(self, method: str, kwargs: dict[str, Any], default: Callable[[], Any]) -> Any:
        chosen = self._record(method, kwargs)
        if chosen is None:
            if self._closed and method != "aclose":
                raise Unavailable("mock venue is closed", venue=self._venue)
            result = default()
            return await result if inspect.isawaitable(result) else result
        result = self._run(chosen.value, method, kwargs)
        return await result if inspect.isawaitable(result) else result

    def _call_sync(self, method: str, kwargs: dict[str, Any], default: Callable[[], Any]) -> Any:
        chosen = self._record(method, kwargs)
        if chosen is None:
            if self._closed:
                raise Unavailable("mock venue is closed", venue=self._venue)
            return default()
        result = self._run(chosen.value, method, kwargs)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: close it so it does not warn at garbage collection
            raise TypeError(f"{method} is synchronous: its mock handler must not be async")
        return result

    def _run(self, behaviour: Any, method: str, kwargs: dict[str, Any]) -> Any:
        if isinstance(behaviour, BaseException):
            raise behaviour
        if isinstance(behaviour, type) and issubclass(behaviour, BaseException):
            if issubclass(behaviour, VenueError):
                raise behaviour(f"mock {method}", venue=self._venue)
            raise behaviour(f"mock {method}")
        if callable(behaviour) and not isinstance(behaviour, Message):
            return behaviour(**kwargs)
        return _copy(behaviour)

    # ---------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every open subscription; later calls raise :class:`Unavailable`.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        for hub in self._hubs.values():
            hub.end()
        self._calls["aclose"].append(Call("aclose", {}, time.monotonic()))

    @property
    def closed(self) -> bool:
        return self._closed

    def capabilities(self) -> frozenset[int]:
        return self._capabilities if self._capabilities is not None else capabilities_of(self)

    async def health(self) -> venue_pb2.VenueHealth:
        def default() -> venue_pb2.VenueHealth:
            if self.health_report is not None:
                return cast(venue_pb2.VenueHealth, _copy(self.health_report))
            report = venue_pb2.VenueHealth(venue=self._venue, reachable=not self._closed, latency_ms=0.0)
            report.checked_at.CopyFrom(_now_ts())
            for hub in self._hubs.values():
                if hub.subscriber_count:
                    report.streams.add(name=hub.name, connected=True)
            return report

        # health() answers even after aclose (reachable=False): monitoring must not crash on it.
        chosen = self._record("health", {})
        if chosen is None:
            return default()
        result = self._run(chosen.value, "health", {})
        return cast(venue_pb2.VenueHealth, await result if inspect.isawaitable(result) else result)

    # ------------------------------------------------------------------------------- trading

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        return cast(
            execution_pb2.ExecutionReport,
            await self._call("place_order", {"order": order}, lambda: self._place(order)),
        )

    def _place(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        refuse_margin(order, self._venue)
        if not order.symbol:
            raise InvalidRequest("order has no symbol", venue=self._venue)
        if order.side not in (order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL):
            raise InvalidRequest("order side must be BUY or SELL", venue=self._venue)
        quantity = dec(order.quantity or "0", "quantity") if order.quantity else ZERO
        if quantity <= 0 and not order.quote_quantity:
            raise InvalidRequest("order quantity must be > 0", venue=self._venue)
        price = dec(order.price, "price") if order.price else None
        if order.order_type != order_pb2.ORDER_TYPE_MARKET and (price is None or price <= 0):
            raise InvalidRequest("limit order needs a price > 0", venue=self._venue)
        coid = order.client_order_id
        if coid and coid in self._by_client_id:
            raise DuplicateOrder(
                f"client order id {coid!r} already used", client_order_id=coid, venue=self._venue
            )
        if self.check_funds:
            self._check_funds(order, quantity, price)
        order_id = f"{self._venue}-{next(self._ids)}"
        stored = order_pb2.Order()
        stored.CopyFrom(order)
        stored.order_id = order_id
        stored.venue = self._venue
        stored.status = order_pb2.ORDER_STATUS_OPEN
        stored.filled_quantity = "0"
        stored.remaining_quantity = dec_str(quantity)
        now = _now_ts()
        stored.created_at.CopyFrom(now)
        stored.updated_at.CopyFrom(now)
        self.orders[order_id] = stored
        if coid:
            self._by_client_id[coid] = order_id
        report = builders.execution_report(
            stored, execution_id=f"{order_id}-new", order_id=order_id, transact_time=now
        )
        self._hubs["executions"].push_nowait(report)
        return report

    def _check_funds(self, order: order_pb2.Order, quantity: Decimal, price: Decimal | None) -> None:
        try:
            sym = parse_symbol(order.symbol)
        except InvalidRequest:
            return  # a non-canonical test symbol: nothing to check against
        if order.side == order_pb2.ORDER_SIDE_BUY:
            asset = sym.quote
            if price is None:
                return  # market buy: cost unknown without a matching engine
            need = quantity * price
        else:
            asset, need = sym.base, quantity
        for bal in self.balances:
            if bal.asset == asset and bal.available and dec(bal.available) < need:
                raise InsufficientFunds(
                    f"need {dec_str(need)} {asset}, available {bal.available}",
                    venue=self._venue,
                    code="INSUFFICIENT_FUNDS",
                )

    def _find(self, order_id: str | None, client_order_id: str | None) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        oid = order_id or self._by_client_id.get(client_order_id or "", "")
        try:
            return self.orders[oid]
        except KeyError:
            which = f"order_id={order_id!r}" if order_id else f"client_order_id={client_order_id!r}"
            raise NotFound(f"no order with {which}", venue=self._venue) from None

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        kwargs = {"symbol": symbol, "order_id": order_id, "client_order_id": client_order_id}
        return cast(
            order_pb2.Order,
            await self._call("cancel_order", kwargs, lambda: self._cancel(order_id, client_order_id)),
        )

    def _cancel(self, order_id: str | None, client_order_id: str | None) -> order_pb2.Order:
        stored = self._find(order_id, client_order_id)
        if stored.status in TERMINAL_STATUSES:
            raise NotFound(f"order {stored.order_id} is no longer open", venue=self._venue)
        stored.status = order_pb2.ORDER_STATUS_CANCELLED
        stored.remaining_quantity = "0"
        stored.updated_at.CopyFrom(_now_ts())
        self._hubs["executions"].push_nowait(
            builders.execution_report(
                stored,
                execution_id=f"{stored.order_id}-cancel",
                execution_type=execution_pb2.EXECUTION_TYPE_CANCELLED,
                order_status=order_pb2.ORDER_STATUS_CANCELLED,
                cumulative_quantity=stored.filled_quantity,
                remaining_quantity="0",
                transact_time=stored.updated_at,
            )
        )
        return cast(order_pb2.Order, _copy(stored))

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        kwargs = {"symbol": symbol, "order_id": order_id, "client_order_id": client_order_id}
        return cast(
            order_pb2.Order,
            await self._call("get_order", kwargs, lambda: _copy(self._find(order_id, client_order_id))),
        )

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        def default() -> list[order_pb2.Order]:
            f = filter or OrderFilter()
            found = [_copy(o) for o in self.orders.values() if f.matches(o)]
            return found[: f.limit] if f.limit is not None else found

        return cast(list[order_pb2.Order], await self._call("get_orders", {"filter": filter}, default))

    async def fill(
        self,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
    ) -> execution_pb2.ExecutionReport:
        """Fill (part of) a resting order: updates the store and publishes a TRADE execution.

        ``quantity`` defaults to everything remaining, ``price`` to the order's limit price.
        """
        stored = self._find(order_id, client_order_id)
        if stored.status not in OPEN_STATUSES:
            raise InvalidRequest(f"order {stored.order_id} is not open", venue=self._venue)
        remaining = dec(stored.remaining_quantity or "0")
        qty = dec(quantity) if quantity is not None else remaining
        if qty <= 0 or qty > remaining:
            raise InvalidRequest(f"fill quantity {qty} not in (0, {remaining}]", venue=self._venue)
        px = dec(price) if price is not None else dec(stored.price)
        filled = dec(stored.filled_quantity or "0")
        old_avg = dec(stored.average_fill_price) if stored.average_fill_price else ZERO
        cum = filled + qty
        avg = (old_avg * filled + px * qty) / cum
        report = builders.fill_report(stored, qty, px, average_fill_price=avg, transact_time=_now_ts())
        stored.filled_quantity = dec_str(cum)
        stored.remaining_quantity = dec_str(remaining - qty)
        stored.average_fill_price = dec_str(avg)
        stored.status = report.order_status
        stored.updated_at.CopyFrom(report.transact_time)
        await self._hubs["executions"].push(report)
        return report

    async def get_balances(self) -> list[balance_pb2.Balance]:
        return cast(
            list[balance_pb2.Balance],
            await self._call("get_balances", {}, lambda: [_copy(b) for b in self.balances]),
        )


# Methods that are helpers of the mock itself, not venue methods: no behaviour can be configured.
_NOT_MOCKED = frozenset(
    {
        "on",
        "fail_next",
        "default",
        "calls",
        "call_count",
        "reset",
        "stream",
        "capabilities",
        "fill",
        "push_book",
        "push_trade",
        "push_execution",
        "push_position",
        "push_funding_rate",
        "push_candle",
        "push_price",
        "push_balance",
        "set_transaction_state",
    }
)

if TYPE_CHECKING:
    from cqvx import client as _client

    # Static proof that the mock implements the core interface and every capability protocol.
    _core: _client.VenueClient = MockVenue()
    _i: _client.SupportsInstruments = MockVenue()
    _o: _client.SupportsOrderStream = MockVenue()
    _p: _client.SupportsPositions = MockVenue()
    _f: _client.SupportsFundingRates = MockVenue()
    _c: _client.SupportsCandles = MockVenue()
    _b: _client.SupportsBatchOrders = MockVenue()
    _a: _client.SupportsCancelAll = MockVenue()
    _pr: _client.SupportsPrices = MockVenue()
    _bs: _client.SupportsBalanceStream = MockVenue()
    _r: _client.SupportsRfq = MockVenue()
    _cu: _client.SupportsCustody = MockVenue()


from cqvx.testing.mock_harness import MockVenueHarness  # noqa: E402  (re-export; it imports MockVenue)
