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

import asyncio
import inspect
import itertools
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from google.protobuf.message import Message

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2, rfq_pb2, venue_pb2
from cqvx.book import ApplyResult, OrderBookL2
from cqvx.client import capabilities_of, check_order_ref
from cqvx.errors import (
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.num import ZERO, dec, dec_str
from cqvx.symbols import parse_symbol
from cqvx.testing import builders
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter, QuoteExecution

__all__ = ["Call", "MockStream", "MockVenue", "MockVenueHarness", "StreamHub"]

T = TypeVar("T")

STREAMS = ("book", "trades", "executions", "prices", "positions", "funding", "candles", "balances")

_TERMINAL_CUSTODY = frozenset(
    {
        custody_pb2.CUSTODY_TRANSACTION_STATE_COMPLETED,
        custody_pb2.CUSTODY_TRANSACTION_STATE_ABORTED,
        custody_pb2.CUSTODY_TRANSACTION_STATE_FAILED,
    }
)


def _copy(value: Any) -> Any:
    """Deep-copy protobuf messages (and lists of them) so later mutation cannot rewrite history."""
    if isinstance(value, Message):
        out = type(value)()
        out.CopyFrom(value)
        return out
    if isinstance(value, list | tuple) and value and isinstance(value[0], Message):
        return [_copy(v) for v in value]
    return value


def _now_ts() -> Any:
    return builders.timestamp(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Call:
    """One recorded call: the method name and its arguments by name (messages copied)."""

    method: str
    kwargs: Mapping[str, Any]
    at: float  # time.monotonic()

    def __getitem__(self, name: str) -> Any:
        return self.kwargs[name]


# ---------------------------------------------------------------------------------------- streams

_END = object()


class MockStream(Generic[T]):
    """One subscription: an async iterator fed by one or more :class:`StreamHub`\\ s."""

    def __init__(self, hubs: Sequence[StreamHub], select: Callable[[Any], T | None]) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._select = select
        self._hubs = list(hubs)
        self._closed = False
        for hub in self._hubs:
            hub._attach(self)

    def _offer(self, msg: Any) -> bool:
        if self._closed:
            return False
        chosen = self._select(msg)
        if chosen is None:
            return False
        self._queue.put_nowait(chosen)
        return True

    def _terminate(self, item: Any) -> None:
        if not self._closed:
            self._detach()
            self._queue.put_nowait(item)

    def _detach(self) -> None:
        self._closed = True
        for hub in self._hubs:
            hub._detach(self)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return cast(T, item)

    async def aclose(self) -> None:
        """Unsubscribe; a reader blocked in ``__anext__`` ends."""
        self._terminate(_END)

    @property
    def closed(self) -> bool:
        return self._closed


class StreamHub:
    """A named stream of the mock (``mock.stream("trades")``): push, end or fail its subscribers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._subscribers: list[MockStream[Any]] = []
        self._changed: asyncio.Event | None = None
        self.pushed = 0

    def _attach(self, sub: MockStream[Any]) -> None:
        self._subscribers.append(sub)
        if self._changed is not None:
            self._changed.set()

    def _detach(self, sub: MockStream[Any]) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def push_nowait(self, msg: Any) -> int:
        """Deliver ``msg`` to every matching subscriber; returns how many took it."""
        self.pushed += 1
        return sum(sub._offer(msg) for sub in list(self._subscribers))

    async def push(self, msg: Any) -> int:
        delivered = self.push_nowait(msg)
        await asyncio.sleep(0)  # let readers run before the test continues
        return delivered

    def end(self) -> None:
        """End every current subscription (their ``async for`` loops finish)."""
        for sub in list(self._subscribers):
            sub._terminate(_END)

    def fail(self, exc: BaseException) -> None:
        """Make every current subscription raise ``exc`` (after the messages already queued)."""
        for sub in list(self._subscribers):
            sub._terminate(exc)

    async def wait_subscribed(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least ``count`` subscriptions are open (e.g. the service under test's)."""
        async with asyncio.timeout(timeout):
            while len(self._subscribers) < count:
                self._changed = self._changed or asyncio.Event()
                self._changed.clear()
                await self._changed.wait()


# ------------------------------------------------------------------------------------------ venue


class _Behaviour:
    __slots__ = ("remaining", "value")

    def __init__(self, value: Any, remaining: int | None) -> None:
        self.value = value
        self.remaining = remaining


class MockVenue:
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
        self._hubs = {name: StreamHub(name) for name in STREAMS}
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

    # --------------------------------------------------------------------------- market data

    def _book(self, symbol: str) -> OrderBookL2:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = OrderBookL2(symbol, self._venue)
        return book

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        def default() -> orderbook_pb2.OrderBook:
            book = self.books.get(symbol)
            if book is None:
                return orderbook_pb2.OrderBook(venue=self._venue, symbol=symbol)
            return book.snapshot(depth)

        return cast(
            orderbook_pb2.OrderBook,
            await self._call("get_order_book", {"symbol": symbol, "depth": depth}, default),
        )

    async def push_book(
        self, symbol: str, update: orderbook_pb2.OrderBook | orderbook_pb2.OrderBookDelta
    ) -> orderbook_pb2.OrderBook:
        """Apply a snapshot or a delta to the mock's book of ``symbol`` and publish the result.

        Raises ``ValueError`` when the update does not apply cleanly (a gap or a crossed book): the
        mock's book is the venue's truth, so an inconsistent update is a bug in the test.
        """
        book = self._book(symbol)
        if isinstance(update, orderbook_pb2.OrderBook):
            result = book.apply_snapshot(update)
        else:
            result = book.apply_delta(update)
        if result is not ApplyResult.APPLIED:
            raise ValueError(f"push_book({symbol}): update {result.value} ({book!r})")
        snap = book.snapshot(None)
        await self._hubs["book"].push(snap)
        return snap

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> MockStream[orderbook_pb2.OrderBook]:
        def default() -> MockStream[orderbook_pb2.OrderBook]:
            def select(msg: orderbook_pb2.OrderBook) -> orderbook_pb2.OrderBook | None:
                if msg.symbol != symbol:
                    return None
                out = orderbook_pb2.OrderBook()
                out.CopyFrom(msg)
                del out.bids[depth:]
                del out.asks[depth:]
                return out

            stream: MockStream[orderbook_pb2.OrderBook] = MockStream([self._hubs["book"]], select)
            book = self.books.get(symbol)
            if book is not None and not book.needs_resync:
                stream._offer(book.snapshot(depth))  # like a venue: a stream starts with a snapshot
            return stream

        return cast(
            MockStream[orderbook_pb2.OrderBook],
            self._call_sync("subscribe_order_book", {"symbol": symbol, "depth": depth}, default),
        )

    def _symbol_stream(
        self, method: str, hub: str, kwargs: dict[str, Any], symbols: Sequence[str] | None
    ) -> Any:
        wanted = frozenset(symbols) if symbols else None

        def default() -> MockStream[Any]:
            return MockStream(
                [self._hubs[hub]], lambda m: _copy(m) if wanted is None or m.symbol in wanted else None
            )

        return self._call_sync(method, kwargs, default)

    def subscribe_trades(self, symbol: str) -> MockStream[trade_pb2.Trade]:
        return cast(
            MockStream[trade_pb2.Trade],
            self._symbol_stream("subscribe_trades", "trades", {"symbol": symbol}, [symbol]),
        )

    async def push_trade(
        self, symbol: str, trade: trade_pb2.Trade | None = None, **overrides: Any
    ) -> trade_pb2.Trade:
        """Publish a public trade (built from ``overrides`` when not given)."""
        msg = trade if trade is not None else builders.trade(venue=self._venue, symbol=symbol, **overrides)
        if not msg.symbol:
            msg.symbol = symbol
        await self._hubs["trades"].push(msg)
        return msg

    # ------------------------------------------------------------------------- capabilities

    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        def default() -> list[instrument_pb2.Instrument]:
            return [_copy(i) for i in self.instruments if not symbols or i.symbol in symbols]

        return cast(
            list[instrument_pb2.Instrument],
            await self._call("get_instruments", {"symbols": symbols}, default),
        )

    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> MockStream[execution_pb2.ExecutionReport]:
        return cast(
            MockStream[execution_pb2.ExecutionReport],
            self._symbol_stream("subscribe_executions", "executions", {"symbols": symbols}, symbols),
        )

    async def push_execution(self, report: execution_pb2.ExecutionReport) -> None:
        await self._hubs["executions"].push(report)

    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        def default() -> list[position_pb2.Position]:
            return [_copy(p) for p in self.positions if not symbols or p.symbol in symbols]

        return cast(
            list[position_pb2.Position], await self._call("get_positions", {"symbols": symbols}, default)
        )

    def subscribe_positions(self, symbols: Sequence[str] | None = None) -> MockStream[position_pb2.Position]:
        return cast(
            MockStream[position_pb2.Position],
            self._symbol_stream("subscribe_positions", "positions", {"symbols": symbols}, symbols),
        )

    async def push_position(self, position: position_pb2.Position) -> None:
        await self._hubs["positions"].push(position)

    async def get_funding_rate(self, symbol: str) -> funding_pb2.FundingRate:
        def default() -> funding_pb2.FundingRate:
            try:
                return cast(funding_pb2.FundingRate, _copy(self.funding_rates[symbol]))
            except KeyError:
                raise NotFound(f"no funding rate for {symbol}", venue=self._venue) from None

        return cast(
            funding_pb2.FundingRate, await self._call("get_funding_rate", {"symbol": symbol}, default)
        )

    async def get_funding_rates(self, symbols: Sequence[str] | None = None) -> list[funding_pb2.FundingRate]:
        def default() -> list[funding_pb2.FundingRate]:
            return [_copy(r) for s, r in self.funding_rates.items() if not symbols or s in symbols]

        return cast(
            list[funding_pb2.FundingRate],
            await self._call("get_funding_rates", {"symbols": symbols}, default),
        )

    def subscribe_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> MockStream[funding_pb2.FundingRate]:
        return cast(
            MockStream[funding_pb2.FundingRate],
            self._symbol_stream("subscribe_funding_rates", "funding", {"symbols": symbols}, symbols),
        )

    async def push_funding_rate(self, rate: funding_pb2.FundingRate) -> None:
        self.funding_rates[rate.symbol] = _copy(rate)
        await self._hubs["funding"].push(rate)

    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        def default() -> list[candle_pb2.Candle]:
            out = []
            for c in sorted(self.candles, key=lambda c: (c.open_time.seconds, c.open_time.nanos)):
                if c.symbol != symbol or c.interval != interval:
                    continue
                opened = c.open_time.ToDatetime(tzinfo=UTC)
                if start is not None and opened < _aware(start):
                    continue
                if end is not None and opened >= _aware(end):
                    continue
                out.append(_copy(c))
            return out[-limit:] if limit else out

        kwargs = {"symbol": symbol, "interval": interval, "start": start, "end": end, "limit": limit}
        return cast(list[candle_pb2.Candle], await self._call("get_candles", kwargs, default))

    def subscribe_candles(self, symbol: str, interval: int) -> MockStream[candle_pb2.Candle]:
        def default() -> MockStream[candle_pb2.Candle]:
            return MockStream(
                [self._hubs["candles"]],
                lambda c: _copy(c) if c.symbol == symbol and c.interval == interval else None,
            )

        return cast(
            MockStream[candle_pb2.Candle],
            self._call_sync("subscribe_candles", {"symbol": symbol, "interval": interval}, default),
        )

    async def push_candle(self, candle: candle_pb2.Candle) -> None:
        await self._hubs["candles"].push(candle)

    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        async def default() -> list[execution_pb2.ExecutionReport | VenueError]:
            results: list[execution_pb2.ExecutionReport | VenueError] = []
            for o in orders:
                try:
                    results.append(await self.place_order(o))
                except VenueError as exc:
                    results.append(exc)
            return results

        return cast(
            list[execution_pb2.ExecutionReport | VenueError],
            await self._call("place_orders", {"orders": list(orders)}, default),
        )

    async def cancel_orders(self, refs: Sequence[order_pb2.OrderRef]) -> list[order_pb2.Order | VenueError]:
        async def default() -> list[order_pb2.Order | VenueError]:
            results: list[order_pb2.Order | VenueError] = []
            for ref in refs:
                try:
                    which = ref.WhichOneof("id")
                    results.append(
                        await self.cancel_order(
                            symbol=ref.symbol,
                            order_id=ref.order_id if which == "order_id" else None,
                            client_order_id=ref.client_order_id if which == "client_order_id" else None,
                        )
                    )
                except VenueError as exc:
                    results.append(exc)
            return results

        return cast(
            list[order_pb2.Order | VenueError],
            await self._call("cancel_orders", {"refs": list(refs)}, default),
        )

    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        def default() -> list[order_pb2.Order]:
            f = OrderFilter(symbol=symbol, side=side)
            return [self._cancel(o.order_id, None) for o in list(self.orders.values()) if f.matches(o)]

        return cast(
            list[order_pb2.Order],
            await self._call("cancel_all_orders", {"symbol": symbol, "side": side}, default),
        )

    async def get_latest_price(self, symbol: str) -> price_pb2.Price:
        def default() -> price_pb2.Price:
            if symbol in self.prices:
                return cast(price_pb2.Price, _copy(self.prices[symbol]))
            book = self.books.get(symbol)
            bid = book.best_bid if book else None
            ask = book.best_ask if book else None
            if book is None or bid is None or ask is None or book.mid is None:
                raise NotFound(f"no price for {symbol}", venue=self._venue)
            return builders.price(
                venue=self._venue,
                symbol=symbol,
                last=book.mid,
                bid=bid[0],
                bid_size=bid[1],
                ask=ask[0],
                ask_size=ask[1],
                timestamp=_now_ts(),
            )

        return cast(price_pb2.Price, await self._call("get_latest_price", {"symbol": symbol}, default))

    async def get_tickers(self, symbols: Sequence[str] | None = None) -> list[price_pb2.Ticker]:
        def default() -> list[price_pb2.Ticker]:
            return [_copy(t) for s, t in self.tickers.items() if not symbols or s in symbols]

        return cast(list[price_pb2.Ticker], await self._call("get_tickers", {"symbols": symbols}, default))

    def subscribe_prices(self, symbols: Sequence[str]) -> MockStream[price_pb2.Price]:
        return cast(
            MockStream[price_pb2.Price],
            self._symbol_stream(
                "subscribe_prices", "prices", {"symbols": list(symbols)}, list(symbols) or None
            ),
        )

    async def push_price(self, price: price_pb2.Price) -> None:
        self.prices[price.symbol] = _copy(price)
        await self._hubs["prices"].push(price)

    def subscribe_balances(self) -> MockStream[balance_pb2.Balance]:
        return cast(
            MockStream[balance_pb2.Balance],
            self._call_sync("subscribe_balances", {}, lambda: MockStream([self._hubs["balances"]], _copy)),
        )

    async def push_balance(self, balance: balance_pb2.Balance) -> None:
        await self._hubs["balances"].push(balance)

    async def request_quote(self, request: rfq_pb2.QuoteRequest) -> rfq_pb2.Quote:
        def default() -> rfq_pb2.Quote:
            book = self.books.get(request.symbol)
            mid = book.mid if book is not None else None
            overrides: dict[str, Any] = {}
            if mid is not None:
                overrides = {"buy_price": mid * Decimal("1.001"), "sell_price": mid * Decimal("0.999")}
            q = builders.quote(
                venue=self._venue,
                symbol=request.symbol,
                side=request.side,
                quantity=request.quantity,
                quantity_asset=request.quantity_asset,
                client_quote_id=request.client_quote_id,
                created_at=_now_ts(),
                **overrides,
            )
            self.quotes[q.quote_id] = q
            return cast(rfq_pb2.Quote, _copy(q))

        return cast(rfq_pb2.Quote, await self._call("request_quote", {"request": request}, default))

    async def execute_quote(self, quote_id: str, side: int) -> QuoteExecution:
        def default() -> QuoteExecution:
            q = self.quotes.get(quote_id)
            if q is None:
                raise NotFound(f"no quote {quote_id!r}", venue=self._venue)
            if q.status != rfq_pb2.QUOTE_STATUS_OPEN:
                raise InvalidRequest(f"quote {quote_id} is not open", venue=self._venue)
            is_buy = side == order_pb2.ORDER_SIDE_BUY
            q.status = rfq_pb2.QUOTE_STATUS_EXECUTED
            q.executed_side = side  # type: ignore[assignment]
            q.executed_price = q.buy_price if is_buy else q.sell_price
            o = builders.order(
                venue=self._venue,
                symbol=q.symbol,
                side=side,
                quantity=q.quantity,
                price=q.executed_price,
                client_order_id=q.client_quote_id or q.quote_id,
                order_id=q.quote_id,
            )
            report = builders.fill_report(o, q.quantity, q.executed_price, transact_time=_now_ts())
            return QuoteExecution(_copy(q), report)

        return cast(
            QuoteExecution, await self._call("execute_quote", {"quote_id": quote_id, "side": side}, default)
        )

    async def create_transaction(
        self, request: custody_pb2.CustodyTransferRequest
    ) -> custody_pb2.CustodyTransaction:
        def default() -> custody_pb2.CustodyTransaction:
            for tx in self.transactions.values():
                if request.idempotence_id and tx.idempotence_id == request.idempotence_id:
                    return cast(custody_pb2.CustodyTransaction, _copy(tx))  # idempotent create
            tx = custody_pb2.CustodyTransaction(
                transaction_id=f"{self._venue}-tx-{next(self._ids)}",
                venue=self._venue,
                vault_id=request.vault_id,
                transaction_type="transfer",
                state=custody_pb2.CUSTODY_TRANSACTION_STATE_WAITING_FOR_APPROVAL,
                approval_state=custody_pb2.APPROVAL_STATE_PENDING,
                asset=request.asset,
                chain=request.chain,
                amount=request.amount,
                destination=request.destination,
                idempotence_id=request.idempotence_id,
                note=request.note,
            )
            tx.created_at.CopyFrom(_now_ts())
            tx.updated_at.CopyFrom(tx.created_at)
            self.transactions[tx.transaction_id] = tx
            return cast(custody_pb2.CustodyTransaction, _copy(tx))

        return cast(
            custody_pb2.CustodyTransaction,
            await self._call("create_transaction", {"request": request}, default),
        )

    def set_transaction_state(self, transaction_id: str, state: int) -> None:
        """Move a custody transaction (what the venue's approvers and the chain would do)."""
        tx = self.transactions[transaction_id]
        tx.state = state  # type: ignore[assignment]
        tx.updated_at.CopyFrom(_now_ts())

    async def get_transaction(self, transaction_id: str) -> custody_pb2.CustodyTransaction:
        def default() -> custody_pb2.CustodyTransaction:
            try:
                return cast(custody_pb2.CustodyTransaction, _copy(self.transactions[transaction_id]))
            except KeyError:
                raise NotFound(f"no transaction {transaction_id!r}", venue=self._venue) from None

        return cast(
            custody_pb2.CustodyTransaction,
            await self._call("get_transaction", {"transaction_id": transaction_id}, default),
        )

    async def await_transaction(
        self, transaction_id: str, states: frozenset[int], timeout: float
    ) -> custody_pb2.CustodyTransaction:
        async def default() -> custody_pb2.CustodyTransaction:
            deadline = time.monotonic() + timeout
            while True:
                tx = self.transactions.get(transaction_id)
                if tx is None:
                    raise NotFound(f"no transaction {transaction_id!r}", venue=self._venue)
                if tx.state in states or tx.state in _TERMINAL_CUSTODY:
                    return cast(custody_pb2.CustodyTransaction, _copy(tx))
                if time.monotonic() >= deadline:
                    raise Timeout(
                        f"transaction {transaction_id} still in state {tx.state}", venue=self._venue
                    )
                await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

        kwargs = {"transaction_id": transaction_id, "states": states, "timeout": timeout}
        return cast(custody_pb2.CustodyTransaction, await self._call("await_transaction", kwargs, default))


class MockVenueHarness:
    """The conformance harness over :class:`MockVenue` (the reference for venue harnesses).

    The mock is both the venue and the client, so "dropping the streams" is modelled as what a venue
    does on reconnect: the book changes while the client is away and a fresh snapshot follows.
    """

    venue = "mock"
    symbol = "BTC-USD"
    timeout = 2.0
    supports_trading = True
    supports_insufficient_funds = True
    supports_rate_limit = True
    rate_limit_retries = False  # MockVenue raises RateLimited(retry_after) and never retries
    supports_order_book = True
    supports_book_resync = True
    supports_trades = True

    def __init__(self) -> None:
        self.mock = MockVenue(self.venue)
        self._seq = 100
        self._rate_limits_served = 0

    async def start(self) -> None:
        bids = [(Decimal(50000 - i), Decimal(i + 1)) for i in range(1, 16)]
        asks = [(Decimal(50000 + i), Decimal(i + 1)) for i in range(1, 16)]
        await self.mock.push_book(
            self.symbol, builders.order_book(bids, asks, symbol=self.symbol, sequence=self._seq)
        )

    async def new_client(self) -> MockVenue:
        return self.mock

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return builders.limit_buy(
            price="40000", quantity="0.01", symbol=self.symbol, client_order_id=client_order_id
        )

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        return builders.limit_buy(
            price="40000", quantity="1000", symbol=self.symbol, client_order_id=client_order_id
        )

    async def rate_limit_next(self, n: int) -> None:
        def serve(**_: Any) -> None:
            # Counted when it is actually answered, not when it is scripted.
            self._rate_limits_served += 1
            raise RateLimited("mock rate limit", retry_after=0.01, venue=self.venue)

        # fail_next runs a callable like any other behaviour (see MockVenue.on).
        self.mock.fail_next(cast(Any, serve), times=n)

    async def rate_limits_served(self) -> int:
        return self._rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return sum(1 for o in self.mock.orders.values() if o.client_order_id == client_order_id)

    def _book(self) -> OrderBookL2:
        return self.mock.books[self.symbol]

    async def drop_streams(self) -> None:
        book = self._book()
        bids = book.bids()[1:]  # the best bid disappears while the client is "away"
        self._seq += 10
        await self.mock.push_book(
            self.symbol, builders.order_book(bids, book.asks(), symbol=self.symbol, sequence=self._seq)
        )

    async def make_book_gap(self) -> None:
        book = self._book()
        best_ask = book.asks(1)[0][0]
        self._seq += 1
        await self.mock.push_book(
            self.symbol,
            builders.order_book_delta(asks=[(best_ask, 0)], symbol=self.symbol, sequence=self._seq),
        )

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return self._book().snapshot(depth)

    async def emit_trade(self) -> None:
        await self.mock.push_trade(self.symbol, price="50000", quantity="0.01")

    # The optional conformance hooks it can serve (it has no connection to cut and no positions).

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.mock.fill(order_id=report.order_id, quantity=quantity)

    def other_resting_order(self, client_order_id: str) -> order_pb2.Order:
        return builders.limit_buy(
            price="2000", quantity="0.1", symbol="ETH-USD", client_order_id=client_order_id
        )

    async def close(self) -> None:
        await self.mock.aclose()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
