"""The connector's unary RPCs, one table: RPC name -> what it needs, how it calls the venue.

Each entry runs as: look the request's venue up (``venue_of``), check the capability protocol the
venue's client must implement (``needs``; else UNIMPLEMENTED naming it), then ``call(client,
request)`` validates the request, calls the venue and wraps the response.  ``side_effect`` marks calls
that change state at the venue: they run to completion even past the client's deadline (see
``VenueGatewayService``).  Errors are raised, never written to the context: the server interceptor
(:mod:`opensqt.connector.interceptor`) maps them to the wire and counts the call.

Adding a unary RPC: the proto, one entry here, one entry in :mod:`opensqt.connector.remote_calls`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cqc.markets.v1 import instrument_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.venues.v1 import execution_pb2, order_pb2, venue_pb2
from cqvx.client import (
    SupportsBatchOrders,
    SupportsCancelAll,
    SupportsCandles,
    SupportsCustody,
    SupportsFundingHistory,
    SupportsFundingPayments,
    SupportsFundingRates,
    SupportsInstruments,
    SupportsPositions,
    SupportsPrices,
    SupportsRfq,
)
from cqvx.errors import InvalidRequest, VenueError
from opensqt.connector.checks import (
    VenueSet,
    check_decimal,
    check_order,
    check_start,
    check_symbol,
    ref_ids,
    unsupported,
)
from opensqt.connector.convert import filter_from_request, to_datetime
from opensqt.connector.errors import error_to_proto

__all__ = ["UNARY", "UnaryRpc", "run_unary"]


def _venue_field(request: Any) -> str:
    return str(request.venue)


@dataclass(frozen=True, slots=True)
class UnaryRpc:
    call: Callable[[Any, Any], Awaitable[Any]]
    needs: type | None = None
    # The venue a request addresses; None: the RPC is about the connector (``call`` gets the VenueSet).
    venue_of: Callable[[Any], str] | None = _venue_field
    side_effect: bool = False


async def run_unary(name: str, rpc: UnaryRpc, venues: VenueSet, request: Any) -> Any:
    if rpc.venue_of is None:
        return await rpc.call(venues, request)
    venue = rpc.venue_of(request)
    client = venues.get(venue)
    if rpc.needs is not None and not isinstance(client, rpc.needs):
        raise unsupported(venue, name, rpc.needs.__name__)
    return await rpc.call(client, request)


# -- venues and health ------------------------------------------------------------------------------


async def _list_venues(venues: VenueSet, request: gw.ListVenuesRequest) -> gw.ListVenuesResponse:
    resp = gw.ListVenuesResponse()
    for name, client in sorted(venues.by_name.items()):
        venue = resp.venues.add(venue_id=name, name=name, is_active=True)
        venue.capabilities.extend(sorted(client.capabilities()))  # type: ignore[arg-type]
        if name == "sim":
            venue.venue_type = venue_pb2.VENUE_TYPE_SIMULATED
    return resp


async def _health(client: Any, request: gw.GetVenueHealthRequest) -> gw.GetVenueHealthResponse:
    return gw.GetVenueHealthResponse(health=await client.health())


# -- orders -----------------------------------------------------------------------------------------


async def _place(client: Any, request: gw.PlaceOrderRequest) -> gw.PlaceOrderResponse:
    if not request.HasField("order"):
        raise InvalidRequest("order: required")
    order = check_order(request.order, request.venue, "order")
    return gw.PlaceOrderResponse(report=await client.place_order(order))


async def _batch_place(client: Any, request: gw.BatchPlaceOrdersRequest) -> gw.BatchPlaceOrdersResponse:
    if not request.orders:
        raise InvalidRequest("orders: at least one order required")
    results: list[execution_pb2.ExecutionReport | VenueError | None] = []
    valid: list[order_pb2.Order] = []
    for i, order in enumerate(request.orders):
        try:
            valid.append(check_order(order, request.venue, f"orders[{i}]"))
            results.append(None)
        except InvalidRequest as err:
            results.append(err)
    outcomes = iter(await client.place_orders(valid) if valid else [])
    resp = gw.BatchPlaceOrdersResponse()
    for order, result in zip(request.orders, results, strict=True):
        outcome = result if result is not None else next(outcomes)
        item = resp.results.add(client_order_id=order.client_order_id)
        if isinstance(outcome, VenueError):
            item.error.CopyFrom(error_to_proto(outcome))
        else:
            item.report.CopyFrom(outcome)
    return resp


async def _cancel(client: Any, request: gw.CancelOrderRequest) -> gw.CancelOrderResponse:
    symbol, oid, coid = ref_ids(request.ref, "ref")
    order = await client.cancel_order(symbol=symbol, order_id=oid, client_order_id=coid)
    return gw.CancelOrderResponse(order=order)


async def _batch_cancel(client: Any, request: gw.BatchCancelOrdersRequest) -> gw.BatchCancelOrdersResponse:
    if not request.refs:
        raise InvalidRequest("refs: at least one order ref required")
    for i, ref in enumerate(request.refs):
        ref_ids(ref, f"refs[{i}]")
    outcomes = await client.cancel_orders(list(request.refs))
    resp = gw.BatchCancelOrdersResponse()
    for ref, outcome in zip(request.refs, outcomes, strict=True):
        item = resp.results.add()
        item.ref.CopyFrom(ref)
        if isinstance(outcome, VenueError):
            item.error.CopyFrom(error_to_proto(outcome))
        else:
            item.order.CopyFrom(outcome)
    return resp


async def _cancel_all(client: Any, request: gw.CancelAllOrdersRequest) -> gw.CancelAllOrdersResponse:
    cancelled = await client.cancel_all_orders(request.symbol or None, request.side)
    return gw.CancelAllOrdersResponse(cancelled=cancelled)


async def _get_order(client: Any, request: gw.GetOrderRequest) -> gw.GetOrderResponse:
    symbol, oid, coid = ref_ids(request.ref, "ref")
    order = await client.get_order(symbol=symbol, order_id=oid, client_order_id=coid)
    return gw.GetOrderResponse(order=order)


async def _list_orders(client: Any, request: gw.ListOrdersRequest) -> gw.ListOrdersResponse:
    if request.page_size < 0:
        raise InvalidRequest("page_size: must not be negative")
    offset = 0
    if request.page_token:
        if not request.page_token.isdigit():
            raise InvalidRequest("page_token: not a token from a previous response")
        offset = int(request.page_token)
    size = request.page_size
    # The venue client pages through the venue itself; the connector's cursor is an offset into that
    # (newest-state) list.
    limit = offset + size + 1 if size else None
    orders = await client.get_orders(filter_from_request(request, limit=limit))
    resp = gw.ListOrdersResponse()
    if size:
        page = orders[offset : offset + size]
        if len(orders) > offset + size:
            resp.next_page_token = str(offset + size)
    else:
        page = orders[offset:]
    resp.orders.extend(page)
    return resp


# -- account ----------------------------------------------------------------------------------------


async def _balances(client: Any, request: gw.GetBalancesRequest) -> gw.GetBalancesResponse:
    balances = await client.get_balances()
    if request.assets:
        wanted = set(request.assets)
        balances = [b for b in balances if b.asset in wanted]
    return gw.GetBalancesResponse(balances=balances)


async def _positions(client: Any, request: gw.GetPositionsRequest) -> gw.GetPositionsResponse:
    return gw.GetPositionsResponse(positions=await client.get_positions(list(request.symbols) or None))


# -- market data ------------------------------------------------------------------------------------


async def _instruments(client: Any, request: gw.ListInstrumentsRequest) -> gw.ListInstrumentsResponse:
    instruments = await client.get_instruments(list(request.symbols) or None)
    if request.instrument_type != instrument_pb2.INSTRUMENT_TYPE_UNSPECIFIED:
        instruments = [i for i in instruments if i.instrument_type == request.instrument_type]
    return gw.ListInstrumentsResponse(instruments=instruments)


async def _latest_price(client: Any, request: gw.GetLatestPriceRequest) -> gw.GetLatestPriceResponse:
    return gw.GetLatestPriceResponse(price=await client.get_latest_price(check_symbol(request.symbol)))


async def _tickers(client: Any, request: gw.GetTickersRequest) -> gw.GetTickersResponse:
    return gw.GetTickersResponse(tickers=await client.get_tickers(list(request.symbols) or None))


async def _order_book(client: Any, request: gw.GetOrderBookRequest) -> gw.GetOrderBookResponse:
    if request.depth < 0:
        raise InvalidRequest("depth: must not be negative")
    book = await client.get_order_book(check_symbol(request.symbol), request.depth or 20)
    return gw.GetOrderBookResponse(book=book)


async def _candles(client: Any, request: gw.GetCandlesRequest) -> gw.GetCandlesResponse:
    if not request.interval:
        raise InvalidRequest("interval: required")
    if request.limit < 0:
        raise InvalidRequest("limit: must not be negative")
    candles = await client.get_candles(
        check_symbol(request.symbol),
        request.interval,
        to_datetime(request.start_time) if request.HasField("start_time") else None,
        to_datetime(request.end_time) if request.HasField("end_time") else None,
        request.limit or None,
    )
    return gw.GetCandlesResponse(candles=candles)


async def _funding_rate(client: Any, request: gw.GetFundingRateRequest) -> gw.GetFundingRateResponse:
    return gw.GetFundingRateResponse(funding_rate=await client.get_funding_rate(check_symbol(request.symbol)))


async def _funding_rates(client: Any, request: gw.GetFundingRatesRequest) -> gw.GetFundingRatesResponse:
    return gw.GetFundingRatesResponse(
        funding_rates=await client.get_funding_rates(list(request.symbols) or None)
    )


async def _funding_history(
    client: Any, request: gw.GetFundingRateHistoryRequest
) -> gw.GetFundingRateHistoryResponse:
    if request.limit < 0:
        raise InvalidRequest("limit: must not be negative")
    symbol = check_symbol(request.symbol)
    rates = await client.get_funding_rate_history(symbol, check_start(request), request.limit or None)
    return gw.GetFundingRateHistoryResponse(funding_rates=rates)


async def _funding_payments(
    client: Any, request: gw.GetFundingPaymentsRequest
) -> gw.GetFundingPaymentsResponse:
    symbol = check_symbol(request.symbol)
    return gw.GetFundingPaymentsResponse(
        payments=await client.get_funding_payments(symbol, check_start(request))
    )


# -- RFQ and custody --------------------------------------------------------------------------------


async def _request_quote(client: Any, request: gw.RequestQuoteRequest) -> gw.RequestQuoteResponse:
    if request.quote_request.limit_price:
        check_decimal(request.quote_request.limit_price, "quote_request.limit_price", positive=True)
    return gw.RequestQuoteResponse(quote=await client.request_quote(request.quote_request))


async def _execute_quote(client: Any, request: gw.ExecuteQuoteRequest) -> gw.ExecuteQuoteResponse:
    if not request.quote_id:
        raise InvalidRequest("quote_id: required")
    execution = await client.execute_quote(request.quote_id, request.side)
    return gw.ExecuteQuoteResponse(quote=execution.quote, report=execution.report)


async def _create_custody(
    client: Any, request: gw.CreateCustodyTransactionRequest
) -> gw.CreateCustodyTransactionResponse:
    transfer = request.transfer
    if not transfer.idempotence_id:
        raise InvalidRequest("transfer.idempotence_id: required (it makes the call retryable)")
    if transfer.amount:
        check_decimal(transfer.amount, "transfer.amount", positive=True)
    return gw.CreateCustodyTransactionResponse(transaction=await client.create_transaction(transfer))


async def _get_custody(
    client: Any, request: gw.GetCustodyTransactionRequest
) -> gw.GetCustodyTransactionResponse:
    if not request.transaction_id:
        raise InvalidRequest("transaction_id: required")
    return gw.GetCustodyTransactionResponse(transaction=await client.get_transaction(request.transaction_id))


UNARY: dict[str, UnaryRpc] = {
    "ListVenues": UnaryRpc(_list_venues, venue_of=None),
    "GetVenueHealth": UnaryRpc(_health),
    "PlaceOrder": UnaryRpc(_place, side_effect=True),
    "BatchPlaceOrders": UnaryRpc(_batch_place, SupportsBatchOrders, side_effect=True),
    "CancelOrder": UnaryRpc(_cancel, side_effect=True),
    "BatchCancelOrders": UnaryRpc(_batch_cancel, SupportsBatchOrders, side_effect=True),
    "CancelAllOrders": UnaryRpc(_cancel_all, SupportsCancelAll, side_effect=True),
    "GetOrder": UnaryRpc(_get_order),
    "ListOrders": UnaryRpc(_list_orders),
    "GetBalances": UnaryRpc(_balances),
    "GetPositions": UnaryRpc(_positions, SupportsPositions),
    "ListInstruments": UnaryRpc(_instruments, SupportsInstruments),
    "GetLatestPrice": UnaryRpc(_latest_price, SupportsPrices),
    "GetTickers": UnaryRpc(_tickers, SupportsPrices),
    "GetOrderBook": UnaryRpc(_order_book),
    "GetCandles": UnaryRpc(_candles, SupportsCandles),
    "GetFundingRate": UnaryRpc(_funding_rate, SupportsFundingRates),
    "GetFundingRates": UnaryRpc(_funding_rates, SupportsFundingRates),
    "GetFundingRateHistory": UnaryRpc(_funding_history, SupportsFundingHistory),
    "GetFundingPayments": UnaryRpc(_funding_payments, SupportsFundingPayments),
    "RequestQuote": UnaryRpc(_request_quote, SupportsRfq, venue_of=lambda r: str(r.quote_request.venue)),
    "ExecuteQuote": UnaryRpc(_execute_quote, SupportsRfq, side_effect=True),
    "CreateCustodyTransaction": UnaryRpc(
        _create_custody, SupportsCustody, venue_of=lambda r: str(r.transfer.venue), side_effect=True
    ),
    "GetCustodyTransaction": UnaryRpc(_get_custody, SupportsCustody),
}
