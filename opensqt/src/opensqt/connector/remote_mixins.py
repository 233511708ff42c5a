"""RemoteVenue's capability mixins: a RemoteVenue class is assembled from those the connector reports.

Each mixin implements one cqvx capability protocol (``SupportsPositions``, ...) over the connector;
its unary methods are one line over :mod:`opensqt.connector.remote_calls`, its streams are
:class:`~opensqt.connector.remote.RemoteStream` subscriptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, price_pb2
from cqc.portfolio.v1 import position_pb2, transaction_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2, rfq_pb2
from cqvx.client import capabilities_of
from cqvx.errors import Timeout, VenueError
from cqvx.types import QuoteExecution
from opensqt.connector import remote_calls as rc
from opensqt.connector.remote import RemoteStream, RemoteVenue

_TERMINAL_CUSTODY = frozenset(
    {
        custody_pb2.CUSTODY_TRANSACTION_STATE_COMPLETED,
        custody_pb2.CUSTODY_TRANSACTION_STATE_ABORTED,
        custody_pb2.CUSTODY_TRANSACTION_STATE_FAILED,
    }
)


class _Instruments(RemoteVenue):
    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        return await self._invoke(rc.GET_INSTRUMENTS, symbols)


class _OrderStream(RemoteVenue):
    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> RemoteStream[execution_pb2.ExecutionReport]:
        req = gw.StreamOrderUpdatesRequest(venue=self._venue, symbols=list(symbols or ()))
        return self._stream("orders", self._stub.StreamOrderUpdates, req)


class _Positions(RemoteVenue):
    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        return await self._invoke(rc.GET_POSITIONS, symbols)

    def subscribe_positions(
        self, symbols: Sequence[str] | None = None
    ) -> RemoteStream[position_pb2.Position]:
        req = gw.StreamPositionsRequest(venue=self._venue, symbols=list(symbols or ()))
        return self._stream("positions", self._stub.StreamPositions, req)


class _Funding(RemoteVenue):
    async def get_funding_rate(self, symbol: str) -> funding_pb2.FundingRate:
        return await self._invoke(rc.GET_FUNDING_RATE, symbol)

    async def get_funding_rates(self, symbols: Sequence[str] | None = None) -> list[funding_pb2.FundingRate]:
        return await self._invoke(rc.GET_FUNDING_RATES, symbols)

    def subscribe_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> RemoteStream[funding_pb2.FundingRate]:
        req = gw.StreamFundingRatesRequest(venue=self._venue, symbols=list(symbols or ()))
        return self._stream("funding", self._stub.StreamFundingRates, req)


class _FundingHistory(RemoteVenue):
    async def get_funding_rate_history(
        self, symbol: str, start: datetime | None = None, limit: int | None = None
    ) -> list[funding_pb2.FundingRate]:
        return await self._invoke(rc.GET_FUNDING_RATE_HISTORY, symbol, start, limit)


class _FundingPayments(RemoteVenue):
    async def get_funding_payments(
        self, symbol: str, start: datetime | None = None
    ) -> list[transaction_pb2.Transaction]:
        return await self._invoke(rc.GET_FUNDING_PAYMENTS, symbol, start)


class _Candles(RemoteVenue):
    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        return await self._invoke(rc.GET_CANDLES, symbol, interval, start, end, limit)

    def subscribe_candles(self, symbol: str, interval: int) -> RemoteStream[candle_pb2.Candle]:
        req = gw.StreamCandlesRequest(venue=self._venue, symbol=symbol, interval=interval)  # type: ignore[arg-type]
        return self._stream(f"candles:{symbol}", self._stub.StreamCandles, req)


class _Batch(RemoteVenue):
    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        return await self._invoke(rc.PLACE_ORDERS, orders)

    async def cancel_orders(self, refs: Sequence[order_pb2.OrderRef]) -> list[order_pb2.Order | VenueError]:
        return await self._invoke(rc.CANCEL_ORDERS, refs)


class _CancelAll(RemoteVenue):
    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        return await self._invoke(rc.CANCEL_ALL_ORDERS, symbol, side)


class _Prices(RemoteVenue):
    async def get_latest_price(self, symbol: str) -> price_pb2.Price:
        return await self._invoke(rc.GET_LATEST_PRICE, symbol)

    async def get_tickers(self, symbols: Sequence[str] | None = None) -> list[price_pb2.Ticker]:
        return await self._invoke(rc.GET_TICKERS, symbols)

    def subscribe_prices(self, symbols: Sequence[str]) -> RemoteStream[price_pb2.Price]:
        req = gw.StreamPricesRequest(venue=self._venue, symbols=list(symbols))
        return self._stream("prices:" + ",".join(symbols), self._stub.StreamPrices, req)


class _BalanceStream(RemoteVenue):
    def subscribe_balances(self) -> RemoteStream[balance_pb2.Balance]:
        req = gw.StreamBalancesRequest(venue=self._venue)
        return self._stream("balances", self._stub.StreamBalances, req)


class _Rfq(RemoteVenue):
    async def request_quote(self, request: rfq_pb2.QuoteRequest) -> rfq_pb2.Quote:
        return await self._invoke(rc.REQUEST_QUOTE, request)

    async def execute_quote(self, quote_id: str, side: int) -> QuoteExecution:
        return await self._invoke(rc.EXECUTE_QUOTE, quote_id, side)


class _Custody(RemoteVenue):
    poll_interval: float = 2.0

    async def create_transaction(
        self, request: custody_pb2.CustodyTransferRequest
    ) -> custody_pb2.CustodyTransaction:
        return await self._invoke(rc.CREATE_TRANSACTION, request)

    async def get_transaction(self, transaction_id: str) -> custody_pb2.CustodyTransaction:
        return await self._invoke(rc.GET_TRANSACTION, transaction_id)

    async def await_transaction(
        self, transaction_id: str, states: frozenset[int], timeout: float
    ) -> custody_pb2.CustodyTransaction:
        # No RPC for this: poll GetCustodyTransaction until a wanted or terminal state.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            tx = await self.get_transaction(transaction_id)
            if tx.state in states or tx.state in _TERMINAL_CUSTODY:
                return tx
            if loop.time() + self.poll_interval > deadline:
                raise Timeout(
                    f"custody transaction {transaction_id} not in a wanted state after {timeout:g} s",
                    venue=self._venue,
                )
            await asyncio.sleep(self.poll_interval)


def _probe_caps(mixin: type) -> frozenset[int]:
    # The capability values a mixin provides, read off cqvx's own protocol table.
    return capabilities_of(object.__new__(mixin))


MIXIN_CAPS: tuple[tuple[type[RemoteVenue], frozenset[int]], ...] = tuple(
    (m, _probe_caps(m))
    for m in (
        _Instruments,
        _OrderStream,
        _Positions,
        _Funding,
        _FundingHistory,
        _FundingPayments,
        _Candles,
        _Batch,
        _CancelAll,
        _Prices,
        _BalanceStream,
        _Rfq,
        _Custody,
    )
)
