"""RemoteVenue: a cqvx VenueClient over the connector's VenueGateway gRPC API.

The engine uses it exactly like an in-process venue client; the credentials stay in the connector.

- **Dialling** (:meth:`RemoteVenue.connect`): ``ListVenues`` is retried with a doubling back-off
  (1 s, 2 s, 4 s ... capped at 60 s, 10 attempts by default; :class:`DialPolicy`) and then fails with
  a clear :class:`~cqvx.errors.Unavailable`.  A wrong token fails at once (retrying cannot help).
- **Capabilities**: the object implements exactly the capability protocols (``SupportsPrices``, ...)
  that the connector reports for the venue, so ``isinstance(remote, SupportsPositions)`` works.
- **Errors**: every failure is rebuilt into the taxonomy with :func:`cqvx.errors.from_grpc`.  A
  placement whose transport failed without a connector answer is :class:`~cqvx.errors.Timeout`
  (unresolved: look it up by client order id), never a retry-safe error.
- **Deadlines**: every unary call carries ``timeout`` seconds.
- **Streams** (:mod:`opensqt.connector.remote_stream`) start eagerly, follow the
  :class:`~cqvx.streams.LiveStream` contract (``wait_live``, ``on_gap`` per stream) and reconnect by
  themselves.  Venue-wide, gaps also go to the ``on_gap`` callback (sync, or async: run as a task), the
  ``gap_count`` counter, ``last_gap``, and ``await remote.next_gap()``.  A gap is reported when the
  connector says its upstream was interrupted (``StreamGap``) and when this client itself had to
  re-subscribe (connector restart, network loss, dropped as a slow reader).  After a gap the caller
  should reconcile (re-read open orders, balances, the book).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import grpc
import structlog
from grpc import aio

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2, rfq_pb2, venue_pb2
from cqvx.client import capabilities_of, check_order_ref
from cqvx.errors import (
    GRPC_METADATA_KEY,
    InvalidRequest,
    Timeout,
    Unavailable,
    VenueError,
    from_grpc,
)
from cqvx.secrets import Secret
from cqvx.types import OrderFilter, QuoteExecution
from opensqt.connector.convert import error_from_proto, filter_to_request, timestamp
from opensqt.connector.remote_stream import GapInfo, RemoteStream

__all__ = ["DialPolicy", "GapInfo", "RemoteStream", "RemoteVenue", "StreamPolicy"]

T = TypeVar("T")
_log = structlog.get_logger("opensqt.connector.remote")

# Without the connector's trailer these mean "the request may have reached the venue".
_TRANSPORT_AMBIGUOUS = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}
)
_TERMINAL_CUSTODY = frozenset(
    {
        custody_pb2.CUSTODY_TRANSACTION_STATE_COMPLETED,
        custody_pb2.CUSTODY_TRANSACTION_STATE_ABORTED,
        custody_pb2.CUSTODY_TRANSACTION_STATE_FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class DialPolicy:
    """Connection attempts: ``initial`` seconds doubling to ``maximum``, ``attempts`` tries."""

    initial: float = 1.0
    maximum: float = 60.0
    attempts: int = 10
    attempt_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """Stream re-subscription back-off (retries forever; reset after a successful subscription)."""

    initial: float = 1.0
    maximum: float = 30.0


GapCallback = Callable[[GapInfo], Awaitable[None] | None]


def _backoff(initial: float, maximum: float, attempt: int) -> float:
    return float(min(initial * (2**attempt), maximum))


class RemoteVenue:
    """A VenueClient backed by a connector.  Create it with :meth:`connect`."""

    _class_cache: ClassVar[dict[frozenset[type], type[RemoteVenue]]] = {}

    def __init__(
        self,
        channel: aio.Channel,
        venue: str,
        *,
        target: str,
        capabilities: frozenset[int],
        timeout: float,
        metadata: tuple[tuple[str, str], ...],
        stream_policy: StreamPolicy,
        on_gap: GapCallback | None,
    ) -> None:
        self._channel = channel
        self._stub = gw_grpc.VenueGatewayStub(channel)
        self._venue = venue
        self.target = target
        self._capabilities = capabilities
        self.timeout = timeout
        self._md = metadata
        self._stream_policy = stream_policy
        self.on_gap = on_gap
        self._streams: set[RemoteStream[Any]] = set()
        self._gap_tasks: set[asyncio.Task[None]] = set()
        self._gap_cond = asyncio.Condition()
        self.gap_count = 0
        self.last_gap: GapInfo | None = None
        self._closed = False

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        target: str,
        venue: str | None = None,
        *,
        token: Secret | str | None = None,
        tls: bool = False,
        tls_root_cert: bytes | None = None,
        tls_server_name: str | None = None,
        timeout: float = 10.0,
        dial: DialPolicy | None = None,
        stream_policy: StreamPolicy | None = None,
        on_gap: GapCallback | None = None,
    ) -> RemoteVenue:
        """Dial the connector (with retry), pick ``venue`` (optional when it serves just one)."""
        dial = dial or DialPolicy()
        options: list[tuple[str, Any]] = [
            # The channel's own reconnect back-off follows the dial policy, so a restarted connector
            # is found again as fast as the policy allows.
            ("grpc.initial_reconnect_backoff_ms", max(1, int(dial.initial * 1000))),
            ("grpc.min_reconnect_backoff_ms", max(1, int(dial.initial * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(1, int(dial.maximum * 1000))),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        ]
        if tls_server_name:
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        if tls or tls_root_cert is not None:
            channel = aio.secure_channel(
                target, grpc.ssl_channel_credentials(root_certificates=tls_root_cert), options=options
            )
        else:
            channel = aio.insecure_channel(target, options=options)
        secret = Secret(token) if isinstance(token, str) else token
        md: tuple[tuple[str, str], ...] = (("authorization", "Bearer " + secret.reveal()),) if secret else ()
        stub = gw_grpc.VenueGatewayStub(channel)
        last: str = ""
        resp: gw.ListVenuesResponse | None = None
        for attempt in range(dial.attempts):
            try:
                resp = await stub.ListVenues(
                    gw.ListVenuesRequest(), timeout=dial.attempt_timeout, metadata=md, wait_for_ready=True
                )
                break
            except aio.AioRpcError as err:
                if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    await channel.close()
                    exc = from_grpc(err.code(), err.details(), _trailers(err))
                    raise exc from None
                last = f"{err.code().name}: {err.details()}"
                _log.warning("connector_dial_failed", target=target, attempt=attempt + 1, error=last)
            if attempt + 1 < dial.attempts:
                await asyncio.sleep(_backoff(dial.initial, dial.maximum, attempt))
        if resp is None:
            await channel.close()
            raise Unavailable(
                f"could not connect to the connector at {target} after {dial.attempts} attempts: {last}"
            )
        served = {v.venue_id: v for v in resp.venues}
        if venue is None:
            if len(served) != 1:
                await channel.close()
                raise InvalidRequest(
                    f"the connector at {target} serves {sorted(served)}: name the venue to use"
                )
            venue = next(iter(served))
        if venue not in served:
            await channel.close()
            raise InvalidRequest(
                f"the connector at {target} does not serve venue {venue!r} ({sorted(served)})"
            )
        caps = frozenset(int(c) for c in served[venue].capabilities)
        klass = cls._class_for(caps)
        return klass(
            channel,
            venue,
            target=target,
            capabilities=caps,
            timeout=timeout,
            metadata=md,
            stream_policy=stream_policy or StreamPolicy(),
            on_gap=on_gap,
        )

    @classmethod
    def _class_for(cls, caps: frozenset[int]) -> type[RemoteVenue]:
        mixins = frozenset(m for m, values in _MIXIN_CAPS if values & caps)
        klass = cls._class_cache.get(mixins)
        if klass is None:
            bases = (*(m for m, _ in _MIXIN_CAPS if m in mixins), cls)
            klass = type("RemoteVenue", bases, {"__module__": __name__})
            cls._class_cache[mixins] = klass
        return klass

    # -- plumbing ---------------------------------------------------------------------------------

    def _error(self, err: aio.AioRpcError, *, ambiguous: bool = False) -> VenueError:
        trailers = _trailers(err)
        code = err.code()
        if ambiguous and GRPC_METADATA_KEY not in trailers and code in _TRANSPORT_AMBIGUOUS:
            return Timeout(
                f"outcome unknown: connector call failed in transport ({code.name}: {err.details()}); "
                "look the order up by its client order id",
                venue=self._venue,
            )
        exc = from_grpc(code, err.details(), trailers)
        if not exc.venue:
            exc.venue = self._venue
        return exc

    async def _call(self, method: Any, request: Any, *, ambiguous: bool = False) -> Any:
        if self._closed:
            raise Unavailable("RemoteVenue is closed", venue=self._venue)
        try:
            return await method(request, timeout=self.timeout, metadata=self._md, wait_for_ready=True)
        except aio.AioRpcError as err:
            raise self._error(err, ambiguous=ambiguous) from None

    def _stream(self, name: str, method: Any, request: Any) -> RemoteStream[Any]:
        if self._closed:
            raise Unavailable("RemoteVenue is closed", venue=self._venue)
        stream: RemoteStream[Any] = RemoteStream(
            self, name, lambda: method(request, metadata=self._md, wait_for_ready=True)
        )
        self._streams.add(stream)
        return stream

    def _report_gap(self, gap: GapInfo) -> None:
        self.gap_count += 1
        self.last_gap = gap
        _log.warning("stream_gap", stream=gap.stream, reason=gap.reason, source=gap.source)
        loop = asyncio.get_running_loop()
        notify = loop.create_task(self._notify_gap())
        self._gap_tasks.add(notify)
        notify.add_done_callback(self._gap_tasks.discard)
        if self.on_gap is not None:
            result = self.on_gap(gap)
            if inspect.isawaitable(result):
                task = loop.create_task(_await(result))
                self._gap_tasks.add(task)
                task.add_done_callback(self._gap_tasks.discard)

    async def _notify_gap(self) -> None:
        async with self._gap_cond:
            self._gap_cond.notify_all()

    async def next_gap(self, timeout: float | None = None) -> GapInfo:
        """Wait for the next gap on any of this client's streams."""
        seen = self.gap_count
        async with self._gap_cond:
            await asyncio.wait_for(self._gap_cond.wait_for(lambda: self.gap_count > seen), timeout)
        assert self.last_gap is not None
        return self.last_gap

    # -- VenueClient --------------------------------------------------------------------------------

    @property
    def venue(self) -> str:
        return self._venue

    def capabilities(self) -> frozenset[int]:
        return self._capabilities

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        resp: gw.PlaceOrderResponse = await self._call(
            self._stub.PlaceOrder, gw.PlaceOrderRequest(venue=self._venue, order=order), ambiguous=True
        )
        return resp.report

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        ref = _ref(symbol, order_id, client_order_id)
        resp: gw.CancelOrderResponse = await self._call(
            self._stub.CancelOrder, gw.CancelOrderRequest(venue=self._venue, ref=ref)
        )
        return resp.order

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        ref = _ref(symbol, order_id, client_order_id)
        resp: gw.GetOrderResponse = await self._call(
            self._stub.GetOrder, gw.GetOrderRequest(venue=self._venue, ref=ref)
        )
        return resp.order

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        req = filter_to_request(self._venue, filter)
        out: list[order_pb2.Order] = []
        while True:
            resp: gw.ListOrdersResponse = await self._call(self._stub.ListOrders, req)
            out.extend(resp.orders)
            if not resp.next_page_token or (filter is not None and filter.limit and len(out) >= filter.limit):
                break
            req.page_token = resp.next_page_token
        return out[: filter.limit] if filter is not None and filter.limit else out

    async def get_balances(self) -> list[balance_pb2.Balance]:
        resp: gw.GetBalancesResponse = await self._call(
            self._stub.GetBalances, gw.GetBalancesRequest(venue=self._venue)
        )
        return list(resp.balances)

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        resp: gw.GetOrderBookResponse = await self._call(
            self._stub.GetOrderBook, gw.GetOrderBookRequest(venue=self._venue, symbol=symbol, depth=depth)
        )
        return resp.book

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> RemoteStream[orderbook_pb2.OrderBook]:
        req = gw.StreamOrderBookRequest(venue=self._venue, symbol=symbol, depth=depth)
        return self._stream(f"book:{symbol}", self._stub.StreamOrderBook, req)

    def subscribe_trades(self, symbol: str) -> RemoteStream[trade_pb2.Trade]:
        req = gw.StreamTradesRequest(venue=self._venue, symbol=symbol)
        return self._stream(f"trades:{symbol}", self._stub.StreamTrades, req)

    async def health(self) -> venue_pb2.VenueHealth:
        """The venue's health as the connector sees it; an unreachable connector is unreachable."""
        try:
            resp: gw.GetVenueHealthResponse = await self._call(
                self._stub.GetVenueHealth, gw.GetVenueHealthRequest(venue=self._venue)
            )
        except VenueError as err:
            report = venue_pb2.VenueHealth(venue=self._venue, reachable=False, last_error=str(err))
            report.checked_at.CopyFrom(timestamp(datetime.now(UTC)))
            return report
        return resp.health

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for stream in list(self._streams):
            await stream.aclose()
        for task in list(self._gap_tasks):
            task.cancel()
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _await(result: Awaitable[None]) -> None:
    try:
        await result
    except Exception:
        _log.exception("on_gap_callback_failed")


def _trailers(err: aio.AioRpcError) -> dict[str, str]:
    return {k: v for k, v in (err.trailing_metadata() or ()) if isinstance(v, str)}


def _ref(symbol: str, order_id: str | None, client_order_id: str | None) -> order_pb2.OrderRef:
    if order_id:
        return order_pb2.OrderRef(symbol=symbol, order_id=order_id)
    return order_pb2.OrderRef(symbol=symbol, client_order_id=client_order_id or "")


# -- capability mixins: a RemoteVenue class is assembled from those the connector reports -------------


class _Instruments(RemoteVenue):
    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        req = gw.ListInstrumentsRequest(venue=self._venue, symbols=list(symbols or ()))
        resp: gw.ListInstrumentsResponse = await self._call(self._stub.ListInstruments, req)
        return list(resp.instruments)


class _OrderStream(RemoteVenue):
    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> RemoteStream[execution_pb2.ExecutionReport]:
        req = gw.StreamOrderUpdatesRequest(venue=self._venue, symbols=list(symbols or ()))
        return self._stream("orders", self._stub.StreamOrderUpdates, req)


class _Positions(RemoteVenue):
    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        req = gw.GetPositionsRequest(venue=self._venue, symbols=list(symbols or ()))
        resp: gw.GetPositionsResponse = await self._call(self._stub.GetPositions, req)
        return list(resp.positions)

    def subscribe_positions(
        self, symbols: Sequence[str] | None = None
    ) -> RemoteStream[position_pb2.Position]:
        req = gw.StreamPositionsRequest(venue=self._venue, symbols=list(symbols or ()))
        return self._stream("positions", self._stub.StreamPositions, req)


class _Funding(RemoteVenue):
    async def get_funding_rate(self, symbol: str) -> funding_pb2.FundingRate:
        req = gw.GetFundingRateRequest(venue=self._venue, symbol=symbol)
        resp: gw.GetFundingRateResponse = await self._call(self._stub.GetFundingRate, req)
        return resp.funding_rate

    async def get_funding_rates(self, symbols: Sequence[str] | None = None) -> list[funding_pb2.FundingRate]:
        req = gw.GetFundingRatesRequest(venue=self._venue, symbols=list(symbols or ()))
        resp: gw.GetFundingRatesResponse = await self._call(self._stub.GetFundingRates, req)
        return list(resp.funding_rates)

    def subscribe_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> RemoteStream[funding_pb2.FundingRate]:
        req = gw.StreamFundingRatesRequest(venue=self._venue, symbols=list(symbols or ()))
        return self._stream("funding", self._stub.StreamFundingRates, req)


class _Candles(RemoteVenue):
    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        req = gw.GetCandlesRequest(venue=self._venue, symbol=symbol, interval=interval, limit=limit or 0)  # type: ignore[arg-type]
        if start is not None:
            req.start_time.CopyFrom(timestamp(start))
        if end is not None:
            req.end_time.CopyFrom(timestamp(end))
        resp: gw.GetCandlesResponse = await self._call(self._stub.GetCandles, req)
        return list(resp.candles)

    def subscribe_candles(self, symbol: str, interval: int) -> RemoteStream[candle_pb2.Candle]:
        req = gw.StreamCandlesRequest(venue=self._venue, symbol=symbol, interval=interval)  # type: ignore[arg-type]
        return self._stream(f"candles:{symbol}", self._stub.StreamCandles, req)


class _Batch(RemoteVenue):
    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        req = gw.BatchPlaceOrdersRequest(venue=self._venue, orders=list(orders))
        resp: gw.BatchPlaceOrdersResponse = await self._call(self._stub.BatchPlaceOrders, req, ambiguous=True)
        return [
            r.report if r.WhichOneof("outcome") == "report" else error_from_proto(r.error)
            for r in resp.results
        ]

    async def cancel_orders(self, refs: Sequence[order_pb2.OrderRef]) -> list[order_pb2.Order | VenueError]:
        req = gw.BatchCancelOrdersRequest(venue=self._venue, refs=list(refs))
        resp: gw.BatchCancelOrdersResponse = await self._call(self._stub.BatchCancelOrders, req)
        return [
            r.order if r.WhichOneof("outcome") == "order" else error_from_proto(r.error) for r in resp.results
        ]


class _CancelAll(RemoteVenue):
    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        req = gw.CancelAllOrdersRequest(venue=self._venue, symbol=symbol or "", side=side)  # type: ignore[arg-type]
        resp: gw.CancelAllOrdersResponse = await self._call(self._stub.CancelAllOrders, req)
        return list(resp.cancelled)


class _Prices(RemoteVenue):
    async def get_latest_price(self, symbol: str) -> price_pb2.Price:
        req = gw.GetLatestPriceRequest(venue=self._venue, symbol=symbol)
        resp: gw.GetLatestPriceResponse = await self._call(self._stub.GetLatestPrice, req)
        return resp.price

    async def get_tickers(self, symbols: Sequence[str] | None = None) -> list[price_pb2.Ticker]:
        req = gw.GetTickersRequest(venue=self._venue, symbols=list(symbols or ()))
        resp: gw.GetTickersResponse = await self._call(self._stub.GetTickers, req)
        return list(resp.tickers)

    def subscribe_prices(self, symbols: Sequence[str]) -> RemoteStream[price_pb2.Price]:
        req = gw.StreamPricesRequest(venue=self._venue, symbols=list(symbols))
        return self._stream("prices:" + ",".join(symbols), self._stub.StreamPrices, req)


class _BalanceStream(RemoteVenue):
    def subscribe_balances(self) -> RemoteStream[balance_pb2.Balance]:
        req = gw.StreamBalancesRequest(venue=self._venue)
        return self._stream("balances", self._stub.StreamBalances, req)


class _Rfq(RemoteVenue):
    async def request_quote(self, request: rfq_pb2.QuoteRequest) -> rfq_pb2.Quote:
        qr = rfq_pb2.QuoteRequest()
        qr.CopyFrom(request)
        qr.venue = qr.venue or self._venue
        resp: gw.RequestQuoteResponse = await self._call(
            self._stub.RequestQuote, gw.RequestQuoteRequest(quote_request=qr)
        )
        return resp.quote

    async def execute_quote(self, quote_id: str, side: int) -> QuoteExecution:
        req = gw.ExecuteQuoteRequest(venue=self._venue, quote_id=quote_id, side=side)  # type: ignore[arg-type]
        resp: gw.ExecuteQuoteResponse = await self._call(self._stub.ExecuteQuote, req, ambiguous=True)
        return QuoteExecution(resp.quote, resp.report)


class _Custody(RemoteVenue):
    poll_interval: float = 2.0

    async def create_transaction(
        self, request: custody_pb2.CustodyTransferRequest
    ) -> custody_pb2.CustodyTransaction:
        transfer = custody_pb2.CustodyTransferRequest()
        transfer.CopyFrom(request)
        transfer.venue = transfer.venue or self._venue
        resp: gw.CreateCustodyTransactionResponse = await self._call(
            self._stub.CreateCustodyTransaction,
            gw.CreateCustodyTransactionRequest(transfer=transfer),
            ambiguous=True,
        )
        return resp.transaction

    async def get_transaction(self, transaction_id: str) -> custody_pb2.CustodyTransaction:
        req = gw.GetCustodyTransactionRequest(venue=self._venue, transaction_id=transaction_id)
        resp: gw.GetCustodyTransactionResponse = await self._call(self._stub.GetCustodyTransaction, req)
        return resp.transaction

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


_MIXIN_CAPS: tuple[tuple[type[RemoteVenue], frozenset[int]], ...] = tuple(
    (m, _probe_caps(m))
    for m in (
        _Instruments,
        _OrderStream,
        _Positions,
        _Funding,
        _Candles,
        _Batch,
        _CancelAll,
        _Prices,
        _BalanceStream,
        _Rfq,
        _Custody,
    )
)
