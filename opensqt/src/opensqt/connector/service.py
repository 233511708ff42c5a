"""The VenueGateway servicer: validates requests, calls the wrapped cqvx venues, fans streams out.

Every failure leaves as a taxonomy error: the status code comes from :data:`cqvx.errors.GRPC_STATUS`
and the exact error rides in the ``cqvx-error`` trailer.  Validation failures are
:class:`~cqvx.errors.InvalidRequest` (INVALID_ARGUMENT) naming the field; an RPC the venue's client
does not implement (checked with the capability protocols) is :class:`~cqvx.errors.UnsupportedOperation`
(UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
import structlog
from grpc import aio

from cqc.markets.v1 import instrument_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqc.venues.v1 import execution_pb2, order_pb2, venue_pb2
from cqvx.client import (
    SupportsBatchOrders,
    SupportsCancelAll,
    SupportsCandles,
    SupportsCustody,
    SupportsFundingRates,
    SupportsInstruments,
    SupportsPositions,
    SupportsPrices,
    SupportsRfq,
    VenueClient,
)
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation, VenueError
from cqvx.num import dec
from opensqt.connector.convert import (
    error_metadata,
    error_to_proto,
    filter_from_request,
    status_of,
    to_datetime,
)
from opensqt.connector.fanout import StreamHub
from opensqt.connector.metrics import ConnectorMetrics
from opensqt.connector.streaming import StreamRelay

__all__ = ["VenueGatewayService"]

_log = structlog.get_logger("opensqt.connector")
R = TypeVar("R")
_Ctx = aio.ServicerContext[Any, Any]
_OK = grpc.StatusCode.OK


def _check_decimal(value: str, field: str, *, positive: bool) -> None:
    try:
        d = dec(value, field)
    except ParseError as err:
        raise InvalidRequest(err.message) from None
    if positive and d <= 0:
        raise InvalidRequest(f"{field}: must be greater than zero, got {value!r}")
    if not positive and d < 0:
        raise InvalidRequest(f"{field}: must not be negative, got {value!r}")


def _check_order(order: order_pb2.Order, venue: str, path: str) -> order_pb2.Order:
    """Reject an order the venue must never see; returns a copy with ``venue`` filled in."""
    if not order.client_order_id:
        raise InvalidRequest(f"{path}.client_order_id: required (it makes placement safely retryable)")
    if not order.symbol:
        raise InvalidRequest(f"{path}.symbol: required")
    if order.side == order_pb2.ORDER_SIDE_UNSPECIFIED:
        raise InvalidRequest(f"{path}.side: required")
    if order.order_type == order_pb2.ORDER_TYPE_UNSPECIFIED:
        raise InvalidRequest(f"{path}.order_type: required")
    if order.venue and order.venue != venue:
        raise InvalidRequest(f"{path}.venue: {order.venue!r} does not match the request venue {venue!r}")
    if not order.quantity and not order.quote_quantity:
        raise InvalidRequest(f"{path}.quantity: required (or quote_quantity)")
    if order.quantity:
        _check_decimal(order.quantity, f"{path}.quantity", positive=True)
    if order.quote_quantity:
        _check_decimal(order.quote_quantity, f"{path}.quote_quantity", positive=True)
    if order.price:
        _check_decimal(order.price, f"{path}.price", positive=True)
    elif order.order_type in (order_pb2.ORDER_TYPE_LIMIT, order_pb2.ORDER_TYPE_STOP_LIMIT):
        raise InvalidRequest(f"{path}.price: required for a limit order")
    if order.stop_price:
        _check_decimal(order.stop_price, f"{path}.stop_price", positive=True)
    if order.leverage:
        _check_decimal(order.leverage, f"{path}.leverage", positive=True)
    if order.venue:
        return order
    copy = order_pb2.Order()
    copy.CopyFrom(order)
    copy.venue = venue
    return copy


def _ref_ids(ref: order_pb2.OrderRef, path: str) -> tuple[str, str | None, str | None]:
    which = ref.WhichOneof("id")
    if which == "order_id" and ref.order_id:
        return ref.symbol, ref.order_id, None
    if which == "client_order_id" and ref.client_order_id:
        return ref.symbol, None, ref.client_order_id
    raise InvalidRequest(f"{path}: give exactly one of order_id or client_order_id")


def _check_symbol(symbol: str, field: str = "symbol") -> str:
    if not symbol:
        raise InvalidRequest(f"{field}: required")
    return symbol


def _unsupported(venue: str, rpc: str, protocol: str) -> UnsupportedOperation:
    return UnsupportedOperation(
        f"{rpc}: venue {venue!r} does not support it (its client does not implement {protocol})", venue=venue
    )


class VenueGatewayService(gw_grpc.VenueGatewayServicer):
    """cqc.services.v1.VenueGateway over a set of cqvx venue clients."""

    def __init__(
        self,
        venues: Mapping[str, VenueClient],
        hub: StreamHub,
        metrics: ConnectorMetrics,
    ) -> None:
        self._venues = dict(venues)
        self._hub = hub
        self._metrics = metrics
        self._inflight: set[asyncio.Future[Any]] = set()  # shielded venue calls still running
        self._streams = StreamRelay(hub, self._venue, self._abort)

    # -- plumbing -----------------------------------------------------------------------------------

    def _venue(self, name: str) -> VenueClient:
        if not name:
            raise InvalidRequest(f"venue: required (serving: {', '.join(sorted(self._venues))})")
        client = self._venues.get(name)
        if client is None:
            raise InvalidRequest(
                f"venue: unknown venue {name!r} (serving: {', '.join(sorted(self._venues))})"
            )
        return client

    async def _abort(self, method: str, context: _Ctx, err: VenueError) -> None:
        code = status_of(err)
        self._metrics.rpc(method, code)
        await context.abort(code, err.message, error_metadata(err))

    async def _unary(
        self, method: str, context: _Ctx, call: Callable[[], Awaitable[R]], *, shield: bool = False
    ) -> R:
        """Run one unary call; ``shield`` for calls with a venue side effect (place, cancel, ...).

        A client deadline or disconnect cancels the RPC handler.  Cancelling a venue call half-way would
        leave its outcome unknown at the venue too (the request may be on the wire); a shielded call runs
        to completion, so the order ends up in a definite state that the client's lookup by client
        order id (or the reconciler) will find.
        """
        started = time.perf_counter()
        try:
            if shield:
                task = asyncio.ensure_future(call())
                self._inflight.add(task)
                task.add_done_callback(self._settle_inflight(method))
                result = await asyncio.shield(task)
            else:
                result = await call()
        except VenueError as err:
            await self._abort(method, context, err)
            raise  # unreachable: abort raises
        except asyncio.CancelledError:
            self._metrics.rpc(method, grpc.StatusCode.CANCELLED)
            raise
        except Exception as exc:
            # An unexpected failure: the effect is unknown, so no trailer (clients read it as Timeout).
            _log.exception("rpc_failed", method=method)
            self._metrics.rpc(method, grpc.StatusCode.INTERNAL)
            await context.abort(grpc.StatusCode.INTERNAL, f"{method}: internal error ({type(exc).__name__})")
            raise
        self._metrics.rpc(method, _OK, time.perf_counter() - started)
        return result

    def _settle_inflight(self, method: str) -> Callable[[asyncio.Future[Any]], None]:
        def done(task: asyncio.Future[Any]) -> None:
            self._inflight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                # Also retrieves the exception, so an abandoned call never logs "never retrieved".
                _log.info(
                    "shielded_call_finished_with_error", method=method, error=type(task.exception()).__name__
                )

        return done

    # -- venues and health ----------------------------------------------------------------------

    async def ListVenues(self, request: gw.ListVenuesRequest, context: _Ctx) -> gw.ListVenuesResponse:
        async def call() -> gw.ListVenuesResponse:
            resp = gw.ListVenuesResponse()
            for name, client in sorted(self._venues.items()):
                venue = resp.venues.add(venue_id=name, name=name, is_active=True)
                venue.capabilities.extend(sorted(client.capabilities()))  # type: ignore[arg-type]
                if name == "sim":
                    venue.venue_type = venue_pb2.VENUE_TYPE_SIMULATED
            return resp

        return await self._unary("ListVenues", context, call)

    async def GetVenueHealth(
        self, request: gw.GetVenueHealthRequest, context: _Ctx
    ) -> gw.GetVenueHealthResponse:
        async def call() -> gw.GetVenueHealthResponse:
            return gw.GetVenueHealthResponse(health=await self._venue(request.venue).health())

        return await self._unary("GetVenueHealth", context, call)

    # -- orders ---------------------------------------------------------------------------------

    async def PlaceOrder(self, request: gw.PlaceOrderRequest, context: _Ctx) -> gw.PlaceOrderResponse:
        async def call() -> gw.PlaceOrderResponse:
            client = self._venue(request.venue)
            if not request.HasField("order"):
                raise InvalidRequest("order: required")
            order = _check_order(request.order, request.venue, "order")
            return gw.PlaceOrderResponse(report=await client.place_order(order))

        return await self._unary("PlaceOrder", context, call, shield=True)

    async def BatchPlaceOrders(
        self, request: gw.BatchPlaceOrdersRequest, context: _Ctx
    ) -> gw.BatchPlaceOrdersResponse:
        async def call() -> gw.BatchPlaceOrdersResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsBatchOrders):
                raise _unsupported(request.venue, "BatchPlaceOrders", "SupportsBatchOrders")
            if not request.orders:
                raise InvalidRequest("orders: at least one order required")
            results: list[execution_pb2.ExecutionReport | VenueError | None] = []
            valid: list[order_pb2.Order] = []
            for i, order in enumerate(request.orders):
                try:
                    valid.append(_check_order(order, request.venue, f"orders[{i}]"))
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

        return await self._unary("BatchPlaceOrders", context, call, shield=True)

    async def CancelOrder(self, request: gw.CancelOrderRequest, context: _Ctx) -> gw.CancelOrderResponse:
        async def call() -> gw.CancelOrderResponse:
            client = self._venue(request.venue)
            symbol, oid, coid = _ref_ids(request.ref, "ref")
            order = await client.cancel_order(symbol=symbol, order_id=oid, client_order_id=coid)
            return gw.CancelOrderResponse(order=order)

        return await self._unary("CancelOrder", context, call, shield=True)

    async def BatchCancelOrders(
        self, request: gw.BatchCancelOrdersRequest, context: _Ctx
    ) -> gw.BatchCancelOrdersResponse:
        async def call() -> gw.BatchCancelOrdersResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsBatchOrders):
                raise _unsupported(request.venue, "BatchCancelOrders", "SupportsBatchOrders")
            if not request.refs:
                raise InvalidRequest("refs: at least one order ref required")
            for i, ref in enumerate(request.refs):
                _ref_ids(ref, f"refs[{i}]")
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

        return await self._unary("BatchCancelOrders", context, call, shield=True)

    async def CancelAllOrders(
        self, request: gw.CancelAllOrdersRequest, context: _Ctx
    ) -> gw.CancelAllOrdersResponse:
        async def call() -> gw.CancelAllOrdersResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsCancelAll):
                raise _unsupported(request.venue, "CancelAllOrders", "SupportsCancelAll")
            cancelled = await client.cancel_all_orders(request.symbol or None, request.side)
            return gw.CancelAllOrdersResponse(cancelled=cancelled)

        return await self._unary("CancelAllOrders", context, call, shield=True)

    async def GetOrder(self, request: gw.GetOrderRequest, context: _Ctx) -> gw.GetOrderResponse:
        async def call() -> gw.GetOrderResponse:
            client = self._venue(request.venue)
            symbol, oid, coid = _ref_ids(request.ref, "ref")
            order = await client.get_order(symbol=symbol, order_id=oid, client_order_id=coid)
            return gw.GetOrderResponse(order=order)

        return await self._unary("GetOrder", context, call)

    async def ListOrders(self, request: gw.ListOrdersRequest, context: _Ctx) -> gw.ListOrdersResponse:
        async def call() -> gw.ListOrdersResponse:
            client = self._venue(request.venue)
            if request.page_size < 0:
                raise InvalidRequest("page_size: must not be negative")
            offset = 0
            if request.page_token:
                if not request.page_token.isdigit():
                    raise InvalidRequest("page_token: not a token from a previous response")
                offset = int(request.page_token)
            size = request.page_size
            # The venue client pages through the venue itself; the connector's cursor is an offset
            # into that (newest-state) list.
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

        return await self._unary("ListOrders", context, call)

    # -- account --------------------------------------------------------------------------------

    async def GetBalances(self, request: gw.GetBalancesRequest, context: _Ctx) -> gw.GetBalancesResponse:
        async def call() -> gw.GetBalancesResponse:
            balances = await self._venue(request.venue).get_balances()
            if request.assets:
                wanted = set(request.assets)
                balances = [b for b in balances if b.asset in wanted]
            return gw.GetBalancesResponse(balances=balances)

        return await self._unary("GetBalances", context, call)

    async def GetPositions(self, request: gw.GetPositionsRequest, context: _Ctx) -> gw.GetPositionsResponse:
        async def call() -> gw.GetPositionsResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsPositions):
                raise _unsupported(request.venue, "GetPositions", "SupportsPositions")
            positions = await client.get_positions(list(request.symbols) or None)
            return gw.GetPositionsResponse(positions=positions)

        return await self._unary("GetPositions", context, call)

    # -- market data ----------------------------------------------------------------------------

    async def ListInstruments(
        self, request: gw.ListInstrumentsRequest, context: _Ctx
    ) -> gw.ListInstrumentsResponse:
        async def call() -> gw.ListInstrumentsResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsInstruments):
                raise _unsupported(request.venue, "ListInstruments", "SupportsInstruments")
            instruments = await client.get_instruments(list(request.symbols) or None)
            if request.instrument_type != instrument_pb2.INSTRUMENT_TYPE_UNSPECIFIED:
                instruments = [i for i in instruments if i.instrument_type == request.instrument_type]
            return gw.ListInstrumentsResponse(instruments=instruments)

        return await self._unary("ListInstruments", context, call)

    async def GetLatestPrice(
        self, request: gw.GetLatestPriceRequest, context: _Ctx
    ) -> gw.GetLatestPriceResponse:
        async def call() -> gw.GetLatestPriceResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsPrices):
                raise _unsupported(request.venue, "GetLatestPrice", "SupportsPrices")
            price = await client.get_latest_price(_check_symbol(request.symbol))
            return gw.GetLatestPriceResponse(price=price)

        return await self._unary("GetLatestPrice", context, call)

    async def GetTickers(self, request: gw.GetTickersRequest, context: _Ctx) -> gw.GetTickersResponse:
        async def call() -> gw.GetTickersResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsPrices):
                raise _unsupported(request.venue, "GetTickers", "SupportsPrices")
            return gw.GetTickersResponse(tickers=await client.get_tickers(list(request.symbols) or None))

        return await self._unary("GetTickers", context, call)

    async def GetOrderBook(self, request: gw.GetOrderBookRequest, context: _Ctx) -> gw.GetOrderBookResponse:
        async def call() -> gw.GetOrderBookResponse:
            client = self._venue(request.venue)
            if request.depth < 0:
                raise InvalidRequest("depth: must not be negative")
            book = await client.get_order_book(_check_symbol(request.symbol), request.depth or 20)
            return gw.GetOrderBookResponse(book=book)

        return await self._unary("GetOrderBook", context, call)

    async def GetCandles(self, request: gw.GetCandlesRequest, context: _Ctx) -> gw.GetCandlesResponse:
        async def call() -> gw.GetCandlesResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsCandles):
                raise _unsupported(request.venue, "GetCandles", "SupportsCandles")
            if not request.interval:
                raise InvalidRequest("interval: required")
            if request.limit < 0:
                raise InvalidRequest("limit: must not be negative")
            candles = await client.get_candles(
                _check_symbol(request.symbol),
                request.interval,
                to_datetime(request.start_time) if request.HasField("start_time") else None,
                to_datetime(request.end_time) if request.HasField("end_time") else None,
                request.limit or None,
            )
            return gw.GetCandlesResponse(candles=candles)

        return await self._unary("GetCandles", context, call)

    async def GetFundingRate(
        self, request: gw.GetFundingRateRequest, context: _Ctx
    ) -> gw.GetFundingRateResponse:
        async def call() -> gw.GetFundingRateResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsFundingRates):
                raise _unsupported(request.venue, "GetFundingRate", "SupportsFundingRates")
            rate = await client.get_funding_rate(_check_symbol(request.symbol))
            return gw.GetFundingRateResponse(funding_rate=rate)

        return await self._unary("GetFundingRate", context, call)

    async def GetFundingRates(
        self, request: gw.GetFundingRatesRequest, context: _Ctx
    ) -> gw.GetFundingRatesResponse:
        async def call() -> gw.GetFundingRatesResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsFundingRates):
                raise _unsupported(request.venue, "GetFundingRates", "SupportsFundingRates")
            rates = await client.get_funding_rates(list(request.symbols) or None)
            return gw.GetFundingRatesResponse(funding_rates=rates)

        return await self._unary("GetFundingRates", context, call)

    # -- RFQ and custody ------------------------------------------------------------------------

    async def RequestQuote(self, request: gw.RequestQuoteRequest, context: _Ctx) -> gw.RequestQuoteResponse:
        async def call() -> gw.RequestQuoteResponse:
            qr = request.quote_request
            client = self._venue(qr.venue)
            if not isinstance(client, SupportsRfq):
                raise _unsupported(qr.venue, "RequestQuote", "SupportsRfq")
            return gw.RequestQuoteResponse(quote=await client.request_quote(qr))

        return await self._unary("RequestQuote", context, call)

    async def ExecuteQuote(self, request: gw.ExecuteQuoteRequest, context: _Ctx) -> gw.ExecuteQuoteResponse:
        async def call() -> gw.ExecuteQuoteResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsRfq):
                raise _unsupported(request.venue, "ExecuteQuote", "SupportsRfq")
            if not request.quote_id:
                raise InvalidRequest("quote_id: required")
            execution = await client.execute_quote(request.quote_id, request.side)
            return gw.ExecuteQuoteResponse(quote=execution.quote, report=execution.report)

        return await self._unary("ExecuteQuote", context, call, shield=True)

    async def CreateCustodyTransaction(
        self, request: gw.CreateCustodyTransactionRequest, context: _Ctx
    ) -> gw.CreateCustodyTransactionResponse:
        async def call() -> gw.CreateCustodyTransactionResponse:
            transfer = request.transfer
            client = self._venue(transfer.venue)
            if not isinstance(client, SupportsCustody):
                raise _unsupported(transfer.venue, "CreateCustodyTransaction", "SupportsCustody")
            if not transfer.idempotence_id:
                raise InvalidRequest("transfer.idempotence_id: required (it makes the call retryable)")
            if transfer.amount:
                _check_decimal(transfer.amount, "transfer.amount", positive=True)
            tx = await client.create_transaction(transfer)
            return gw.CreateCustodyTransactionResponse(transaction=tx)

        return await self._unary("CreateCustodyTransaction", context, call, shield=True)

    async def GetCustodyTransaction(
        self, request: gw.GetCustodyTransactionRequest, context: _Ctx
    ) -> gw.GetCustodyTransactionResponse:
        async def call() -> gw.GetCustodyTransactionResponse:
            client = self._venue(request.venue)
            if not isinstance(client, SupportsCustody):
                raise _unsupported(request.venue, "GetCustodyTransaction", "SupportsCustody")
            if not request.transaction_id:
                raise InvalidRequest("transaction_id: required")
            tx = await client.get_transaction(request.transaction_id)
            return gw.GetCustodyTransactionResponse(transaction=tx)

        return await self._unary("GetCustodyTransaction", context, call)

    # -- streams: one table (opensqt.connector.streaming.CHANNELS) ---------------------------------

    async def StreamPrices(
        self, request: gw.StreamPricesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamPricesResponse]:
        async for msg in self._streams.serve("StreamPrices", request, context):
            yield msg

    async def StreamOrderBook(
        self, request: gw.StreamOrderBookRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamOrderBookResponse]:
        async for msg in self._streams.serve("StreamOrderBook", request, context):
            yield msg

    async def StreamTrades(
        self, request: gw.StreamTradesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamTradesResponse]:
        async for msg in self._streams.serve("StreamTrades", request, context):
            yield msg

    async def StreamCandles(
        self, request: gw.StreamCandlesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamCandlesResponse]:
        async for msg in self._streams.serve("StreamCandles", request, context):
            yield msg

    async def StreamOrderUpdates(
        self, request: gw.StreamOrderUpdatesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamOrderUpdatesResponse]:
        async for msg in self._streams.serve("StreamOrderUpdates", request, context):
            yield msg

    async def StreamBalances(
        self, request: gw.StreamBalancesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamBalancesResponse]:
        async for msg in self._streams.serve("StreamBalances", request, context):
            yield msg

    async def StreamPositions(
        self, request: gw.StreamPositionsRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamPositionsResponse]:
        async for msg in self._streams.serve("StreamPositions", request, context):
            yield msg

    async def StreamFundingRates(
        self, request: gw.StreamFundingRatesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamFundingRatesResponse]:
        async for msg in self._streams.serve("StreamFundingRates", request, context):
            yield msg
