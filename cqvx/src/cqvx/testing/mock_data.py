"""MockVenue's market data, capability, RFQ and custody methods (a mixin of
:class:`cqvx.testing.mock.MockVenue`; dispatch, the order store and the streams' hubs live there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from google.protobuf.message import Message

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2, rfq_pb2
from cqvx import timeutil
from cqvx.book import ApplyResult, OrderBookL2
from cqvx.errors import (
    InvalidRequest,
    NotFound,
    Timeout,
    VenueError,
)
from cqvx.testing import builders
from cqvx.testing.mock_streams import MockStream, StreamHub
from cqvx.types import OrderFilter, QuoteExecution

__all__: list[str] = []

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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _MockData:
    _venue: str
    _ids: Any
    _hubs: dict[str, StreamHub]
    books: dict[str, OrderBookL2]
    instruments: list[instrument_pb2.Instrument]
    positions: list[position_pb2.Position]
    funding_rates: dict[str, funding_pb2.FundingRate]
    candles: list[candle_pb2.Candle]
    prices: dict[str, price_pb2.Price]
    tickers: dict[str, price_pb2.Ticker]
    quotes: dict[str, rfq_pb2.Quote]
    transactions: dict[str, custody_pb2.CustodyTransaction]
    refused_symbols: dict[str, VenueError]
    orders: dict[str, order_pb2.Order]

    def _cancel(self, order_id: str | None, client_order_id: str | None) -> order_pb2.Order:
        raise NotImplementedError

    async def _call(self, method: str, kwargs: dict[str, Any], default: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def _call_sync(self, method: str, kwargs: dict[str, Any], default: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def _open(self, hub: str, select: Callable[[Any], Any], symbols: Sequence[str] | None) -> MockStream[Any]:
        """A live subscription of the named stream, refused for a symbol in ``refused_symbols``."""
        stream: MockStream[Any] = MockStream(
            self._hubs[hub], select, symbol=symbols[0] if symbols and len(symbols) == 1 else ""
        )
        for s in symbols or ():
            if s in self.refused_symbols:
                stream.refuse(self.refused_symbols[s])
                break
        return stream

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        raise NotImplementedError

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        raise NotImplementedError

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

            stream: MockStream[orderbook_pb2.OrderBook] = self._open("book", select, [symbol])
            book = self.books.get(symbol)
            if book is not None and not book.needs_resync and not stream.ended:
                stream.push(book.snapshot(depth))  # like a venue: a stream starts with a snapshot
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
            return self._open(
                hub, lambda m: _copy(m) if wanted is None or m.symbol in wanted else None, symbols
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
                opened = timeutil.to_datetime(c.open_time)
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
            return self._open(
                "candles",
                lambda c: _copy(c) if c.symbol == symbol and c.interval == interval else None,
                [symbol],
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
            self._call_sync("subscribe_balances", {}, lambda: self._open("balances", _copy, None)),
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
