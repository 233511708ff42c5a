"""RemoteVenue's unary calls, one table: VenueClient method -> RPC, request builder, response unwrap.

Each :class:`RemoteCall` says which VenueGateway RPC a client method uses, how its arguments become
the request (the venue name comes first), how the answer becomes the return value, and whether a
transport failure leaves the outcome unknown (``ambiguous``: calls with a venue side effect whose
retry is unsafe; such a failure is :class:`~cqvx.errors.Timeout`, "look the order up").  The methods
of :class:`~opensqt.connector.remote.RemoteVenue` and its capability mixins are one line each:
``return await self._invoke(PLACE_ORDER, order)``.

Adding a unary RPC: the proto, one entry in :data:`opensqt.connector.unary.UNARY`, one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2
from cqc.portfolio.v1 import position_pb2, transaction_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2, rfq_pb2, venue_pb2
from cqvx.errors import VenueError
from cqvx.types import QuoteExecution
from opensqt.connector.convert import timestamp
from opensqt.connector.errors import error_from_proto

__all__ = ["RemoteCall"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class RemoteCall(Generic[P, R]):
    rpc: str  # the VenueGateway method (stub attribute)
    request: Callable[Concatenate[str, P], Any]
    response: Callable[[Any], R]
    ambiguous: bool = False


def ref(symbol: str, order_id: str | None, client_order_id: str | None) -> order_pb2.OrderRef:
    if order_id:
        return order_pb2.OrderRef(symbol=symbol, order_id=order_id)
    return order_pb2.OrderRef(symbol=symbol, client_order_id=client_order_id or "")


def _symbols(symbols: Sequence[str] | None) -> list[str]:
    return list(symbols or ())


# -- core VenueClient ---------------------------------------------------------------------------------


def _order_ref_request(kind: Any) -> Callable[..., Any]:
    def build(venue: str, *, symbol: str, order_id: str | None, client_order_id: str | None) -> Any:
        return kind(venue=venue, ref=ref(symbol, order_id, client_order_id))

    return build


PLACE_ORDER: RemoteCall[[order_pb2.Order], execution_pb2.ExecutionReport] = RemoteCall(
    "PlaceOrder",
    lambda v, order: gw.PlaceOrderRequest(venue=v, order=order),
    lambda r: r.report,
    ambiguous=True,
)
CANCEL_ORDER: RemoteCall[..., order_pb2.Order] = RemoteCall(
    "CancelOrder", _order_ref_request(gw.CancelOrderRequest), lambda r: r.order
)
GET_ORDER: RemoteCall[..., order_pb2.Order] = RemoteCall(
    "GetOrder", _order_ref_request(gw.GetOrderRequest), lambda r: r.order
)
GET_BALANCES: RemoteCall[[], list[balance_pb2.Balance]] = RemoteCall(
    "GetBalances", lambda v: gw.GetBalancesRequest(venue=v), lambda r: list(r.balances)
)
GET_ORDER_BOOK: RemoteCall[[str, int], orderbook_pb2.OrderBook] = RemoteCall(
    "GetOrderBook",
    lambda v, symbol, depth: gw.GetOrderBookRequest(venue=v, symbol=symbol, depth=depth),
    lambda r: r.book,
)
GET_VENUE_HEALTH: RemoteCall[[], venue_pb2.VenueHealth] = RemoteCall(
    "GetVenueHealth", lambda v: gw.GetVenueHealthRequest(venue=v), lambda r: r.health
)

# -- capabilities ---------------------------------------------------------------------------------------

GET_INSTRUMENTS: RemoteCall[[Sequence[str] | None], list[instrument_pb2.Instrument]] = RemoteCall(
    "ListInstruments",
    lambda v, symbols: gw.ListInstrumentsRequest(venue=v, symbols=_symbols(symbols)),
    lambda r: list(r.instruments),
)
GET_POSITIONS: RemoteCall[[Sequence[str] | None], list[position_pb2.Position]] = RemoteCall(
    "GetPositions",
    lambda v, symbols: gw.GetPositionsRequest(venue=v, symbols=_symbols(symbols)),
    lambda r: list(r.positions),
)
GET_FUNDING_RATE: RemoteCall[[str], funding_pb2.FundingRate] = RemoteCall(
    "GetFundingRate",
    lambda v, symbol: gw.GetFundingRateRequest(venue=v, symbol=symbol),
    lambda r: r.funding_rate,
)
GET_FUNDING_RATES: RemoteCall[[Sequence[str] | None], list[funding_pb2.FundingRate]] = RemoteCall(
    "GetFundingRates",
    lambda v, symbols: gw.GetFundingRatesRequest(venue=v, symbols=_symbols(symbols)),
    lambda r: list(r.funding_rates),
)


def _funding_history_request(
    venue: str, symbol: str, start: datetime | None, limit: int | None
) -> gw.GetFundingRateHistoryRequest:
    req = gw.GetFundingRateHistoryRequest(venue=venue, symbol=symbol, limit=limit or 0)
    if start is not None:
        req.start_time.CopyFrom(timestamp(start))
    return req


def _funding_payments_request(
    venue: str, symbol: str, start: datetime | None
) -> gw.GetFundingPaymentsRequest:
    req = gw.GetFundingPaymentsRequest(venue=venue, symbol=symbol)
    if start is not None:
        req.start_time.CopyFrom(timestamp(start))
    return req


GET_FUNDING_RATE_HISTORY: RemoteCall[[str, datetime | None, int | None], list[funding_pb2.FundingRate]] = (
    RemoteCall("GetFundingRateHistory", _funding_history_request, lambda r: list(r.funding_rates))
)
GET_FUNDING_PAYMENTS: RemoteCall[[str, datetime | None], list[transaction_pb2.Transaction]] = RemoteCall(
    "GetFundingPayments", _funding_payments_request, lambda r: list(r.payments)
)


def _candles_request(  # noqa: PLR0917 - mirrors get_candles positionally
    venue: str, symbol: str, interval: int, start: datetime | None, end: datetime | None, limit: int | None
) -> gw.GetCandlesRequest:
    req = gw.GetCandlesRequest(venue=venue, symbol=symbol, interval=interval, limit=limit or 0)  # type: ignore[arg-type]
    if start is not None:
        req.start_time.CopyFrom(timestamp(start))
    if end is not None:
        req.end_time.CopyFrom(timestamp(end))
    return req


GET_CANDLES: RemoteCall[[str, int, datetime | None, datetime | None, int | None], list[candle_pb2.Candle]] = (
    RemoteCall("GetCandles", _candles_request, lambda r: list(r.candles))
)

PLACE_ORDERS: RemoteCall[[Sequence[order_pb2.Order]], list[execution_pb2.ExecutionReport | VenueError]] = (
    RemoteCall(
        "BatchPlaceOrders",
        lambda v, orders: gw.BatchPlaceOrdersRequest(venue=v, orders=list(orders)),
        lambda resp: [
            r.report if r.WhichOneof("outcome") == "report" else error_from_proto(r.error)
            for r in resp.results
        ],
        ambiguous=True,
    )
)
CANCEL_ORDERS: RemoteCall[[Sequence[order_pb2.OrderRef]], list[order_pb2.Order | VenueError]] = RemoteCall(
    "BatchCancelOrders",
    lambda v, refs: gw.BatchCancelOrdersRequest(venue=v, refs=list(refs)),
    lambda resp: [
        r.order if r.WhichOneof("outcome") == "order" else error_from_proto(r.error) for r in resp.results
    ],
)
CANCEL_ALL_ORDERS: RemoteCall[[str | None, int], list[order_pb2.Order]] = RemoteCall(
    "CancelAllOrders",
    lambda v, symbol, side: gw.CancelAllOrdersRequest(venue=v, symbol=symbol or "", side=side),  # type: ignore[arg-type]
    lambda r: list(r.cancelled),
)
GET_LATEST_PRICE: RemoteCall[[str], price_pb2.Price] = RemoteCall(
    "GetLatestPrice", lambda v, symbol: gw.GetLatestPriceRequest(venue=v, symbol=symbol), lambda r: r.price
)
GET_TICKERS: RemoteCall[[Sequence[str] | None], list[price_pb2.Ticker]] = RemoteCall(
    "GetTickers",
    lambda v, symbols: gw.GetTickersRequest(venue=v, symbols=_symbols(symbols)),
    lambda r: list(r.tickers),
)


def _quote_request(venue: str, request: rfq_pb2.QuoteRequest) -> gw.RequestQuoteRequest:
    qr = rfq_pb2.QuoteRequest()
    qr.CopyFrom(request)
    qr.venue = qr.venue or venue
    return gw.RequestQuoteRequest(quote_request=qr)


REQUEST_QUOTE: RemoteCall[[rfq_pb2.QuoteRequest], rfq_pb2.Quote] = RemoteCall(
    "RequestQuote", _quote_request, lambda r: r.quote
)
EXECUTE_QUOTE: RemoteCall[[str, int], QuoteExecution] = RemoteCall(
    "ExecuteQuote",
    lambda v, quote_id, side: gw.ExecuteQuoteRequest(venue=v, quote_id=quote_id, side=side),  # type: ignore[arg-type]
    lambda r: QuoteExecution(r.quote, r.report),
    ambiguous=True,
)


def _transfer_request(
    venue: str, request: custody_pb2.CustodyTransferRequest
) -> gw.CreateCustodyTransactionRequest:
    transfer = custody_pb2.CustodyTransferRequest()
    transfer.CopyFrom(request)
    transfer.venue = transfer.venue or venue
    return gw.CreateCustodyTransactionRequest(transfer=transfer)


CREATE_TRANSACTION: RemoteCall[[custody_pb2.CustodyTransferRequest], custody_pb2.CustodyTransaction] = (
    RemoteCall("CreateCustodyTransaction", _transfer_request, lambda r: r.transaction, ambiguous=True)
)
GET_TRANSACTION: RemoteCall[[str], custody_pb2.CustodyTransaction] = RemoteCall(
    "GetCustodyTransaction",
    lambda v, transaction_id: gw.GetCustodyTransactionRequest(venue=v, transaction_id=transaction_id),
    lambda r: r.transaction,
)
