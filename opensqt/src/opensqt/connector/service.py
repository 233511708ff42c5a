"""The VenueGateway servicer: the unary RPCs of :mod:`opensqt.connector.unary` and the fanned-out streams.

Handlers raise taxonomy errors; the server interceptor (:mod:`opensqt.connector.interceptor`) maps
them to the wire (status code + ``VenueError`` rich-status detail, :mod:`opensqt.connector.errors`)
and counts every call.  Validation failures are :class:`~cqvx.errors.InvalidRequest`
(INVALID_ARGUMENT) naming the field; an RPC the venue's client does not implement (checked with the
capability protocols) is :class:`~cqvx.errors.UnsupportedOperation` (UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any

import structlog
from grpc import aio

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqvx.client import (
    SupportsBalanceStream,
    SupportsCandles,
    SupportsFundingRates,
    SupportsOrderStream,
    SupportsPositions,
    SupportsPrices,
    VenueClient,
)
from cqvx.errors import InvalidRequest, Unavailable, VenueError
from cqvx.types import Stream
from opensqt.connector.checks import VenueSet
from opensqt.connector.checks import check_symbol as _check_symbol
from opensqt.connector.checks import unsupported as _unsupported
from opensqt.connector.convert import timestamp
from opensqt.connector.errors import status_details, status_of
from opensqt.connector.fanout import Gap, StreamHub, SubscriberOverflow, TopicKey
from opensqt.connector.metrics import ConnectorMetrics
from opensqt.connector.unary import UNARY, UnaryRpc, run_unary

__all__ = ["VenueGatewayService"]

_log = structlog.get_logger("opensqt.connector")
_Ctx = aio.ServicerContext[Any, Any]


def _gap_pb(gap: Gap) -> gw.StreamGap:
    msg = gw.StreamGap(reason=gap.reason)
    if gap.since is not None:
        msg.since.CopyFrom(timestamp(gap.since))
    return msg


class VenueGatewayService(gw_grpc.VenueGatewayServicer):
    """cqc.services.v1.VenueGateway over a set of cqvx venue clients."""

    def __init__(
        self,
        venues: Mapping[str, VenueClient],
        hub: StreamHub,
        metrics: ConnectorMetrics,
    ) -> None:
        self._venue_set = VenueSet(venues)
        self._venues = self._venue_set.by_name
        self._hub = hub
        self._metrics = metrics
        self._inflight: set[asyncio.Future[Any]] = set()  # shielded venue calls still running
        # Every unary RPC is an entry of the table; the generated base class answers UNIMPLEMENTED
        # for anything without one.
        for name, rpc in UNARY.items():
            setattr(self, name, self._unary(name, rpc))

    # -- plumbing -----------------------------------------------------------------------------------

    def _venue(self, name: str) -> VenueClient:
        return self._venue_set.get(name)

    async def _abort(self, method: str, context: _Ctx, err: VenueError) -> None:
        """End a call with ``err`` in the one wire form (the interceptor counts it)."""
        await context.abort(status_of(err), err.message, status_details(err))

    def _unary(self, name: str, rpc: UnaryRpc) -> Callable[[Any, _Ctx], Awaitable[Any]]:
        """The handler of one table entry; ``side_effect`` calls are shielded from cancellation.

        A client deadline or disconnect cancels the RPC handler.  Cancelling a venue call half-way would
        leave its outcome unknown at the venue too (the request may be on the wire); a shielded call runs
        to completion, so the order ends up in a definite state that the client's lookup by client
        order id (or the reconciler) will find.
        """

        async def handle(request: Any, context: _Ctx) -> Any:
            if not rpc.side_effect:
                return await run_unary(name, rpc, self._venue_set, request)
            task = asyncio.ensure_future(run_unary(name, rpc, self._venue_set, request))
            self._inflight.add(task)
            task.add_done_callback(self._settle_inflight(name))
            return await asyncio.shield(task)

        handle.__name__ = name
        return handle

    def _settle_inflight(self, method: str) -> Callable[[asyncio.Future[Any]], None]:
        def done(task: asyncio.Future[Any]) -> None:
            self._inflight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                # Also retrieves the exception, so an abandoned call never logs "never retrieved".
                _log.info(
                    "shielded_call_finished_with_error", method=method, error=type(task.exception()).__name__
                )

        return done

    async def _stream(
        self,
        method: str,
        context: _Ctx,
        setup: Callable[[], tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]],
        wrap: Callable[[int, Any], Any],
        *,
        conflate_key: Callable[[Any], Hashable] | None = None,
        accept: Callable[[Any], bool] | None = None,
    ) -> AsyncIterator[Any]:
        try:
            channel, topics = setup()
            sub = self._hub.subscribe(channel, topics, conflate_key=conflate_key, accept=accept)
        except VenueError as err:
            await self._abort(method, context, err)
            return
        try:
            # Initial metadata tells the client the subscription is live (RemoteVenue reports a
            # reconnect gap only then).
            await context.send_initial_metadata(())
            seq = 0
            while True:
                item = await sub.get()
                seq += 1
                yield wrap(seq, item)
        except SubscriberOverflow as exc:
            _log.warning("slow_client_dropped", method=method, peer=context.peer(), detail=str(exc))
            await self._abort(
                method,
                context,
                Unavailable(f"subscriber overflow: client too slow, dropped ({exc})", retry_safe=True),
            )
        except VenueError as err:
            await self._abort(method, context, err)
        finally:
            await sub.aclose()

    # -- streams --------------------------------------------------------------------------------

    def _symbols(self, symbols: Sequence[str], field: str = "symbols") -> list[str]:
        out = sorted(set(symbols))
        if any(not s for s in out):
            raise InvalidRequest(f"{field}: empty symbol")
        return out

    async def StreamPrices(
        self, request: gw.StreamPricesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamPricesResponse]:
        venue = request.venue

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            if not isinstance(client, SupportsPrices):
                raise _unsupported(venue, "StreamPrices", "SupportsPrices")
            symbols = self._symbols(request.symbols)
            if not symbols:
                raise InvalidRequest("symbols: at least one symbol required")
            return "prices", [
                (TopicKey(venue, "prices", s), lambda s=s: client.subscribe_prices([s]))  # type: ignore[misc]
                for s in symbols
            ]

        def wrap(seq: int, item: Any) -> gw.StreamPricesResponse:
            if isinstance(item, Gap):
                return gw.StreamPricesResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            return gw.StreamPricesResponse(venue=venue, sequence=seq, price=item)

        async for msg in self._stream("StreamPrices", context, setup, wrap, conflate_key=lambda p: p.symbol):
            yield msg

    async def StreamOrderBook(
        self, request: gw.StreamOrderBookRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamOrderBookResponse]:
        venue = request.venue

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            symbol = _check_symbol(request.symbol)
            if request.depth < 0:
                raise InvalidRequest("depth: must not be negative")
            depth = request.depth or 20
            key = TopicKey(venue, "book", symbol, depth)
            return "book", [(key, lambda: client.subscribe_order_book(symbol, depth))]

        def wrap(seq: int, item: Any) -> gw.StreamOrderBookResponse:
            if isinstance(item, Gap):
                return gw.StreamOrderBookResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            # Venue clients stream full top-of-book snapshots, so conflating them loses nothing.
            return gw.StreamOrderBookResponse(venue=venue, sequence=seq, snapshot=item)

        async for msg in self._stream(
            "StreamOrderBook", context, setup, wrap, conflate_key=lambda b: b.symbol
        ):
            yield msg

    async def StreamTrades(
        self, request: gw.StreamTradesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamTradesResponse]:
        venue = request.venue

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            symbol = _check_symbol(request.symbol)
            return "trades", [(TopicKey(venue, "trades", symbol), lambda: client.subscribe_trades(symbol))]

        def wrap(seq: int, item: Any) -> gw.StreamTradesResponse:
            if isinstance(item, Gap):
                return gw.StreamTradesResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            return gw.StreamTradesResponse(venue=venue, sequence=seq, trade=item)

        async for msg in self._stream("StreamTrades", context, setup, wrap):
            yield msg

    async def StreamCandles(
        self, request: gw.StreamCandlesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamCandlesResponse]:
        venue = request.venue

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            if not isinstance(client, SupportsCandles):
                raise _unsupported(venue, "StreamCandles", "SupportsCandles")
            symbol = _check_symbol(request.symbol)
            interval = request.interval
            if not interval:
                raise InvalidRequest("interval: required")
            key = TopicKey(venue, "candles", symbol, interval)
            return "candles", [(key, lambda: client.subscribe_candles(symbol, interval))]

        def wrap(seq: int, item: Any) -> gw.StreamCandlesResponse:
            if isinstance(item, Gap):
                return gw.StreamCandlesResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            return gw.StreamCandlesResponse(venue=venue, sequence=seq, candle=item)

        async for msg in self._stream("StreamCandles", context, setup, wrap):
            yield msg

    async def StreamOrderUpdates(
        self, request: gw.StreamOrderUpdatesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamOrderUpdatesResponse]:
        venue = request.venue
        wanted = frozenset(request.symbols)

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            if not isinstance(client, SupportsOrderStream):
                raise _unsupported(venue, "StreamOrderUpdates", "SupportsOrderStream")
            self._symbols(request.symbols)
            # One account stream per venue; each subscriber filters by symbol.
            return "orders", [(TopicKey(venue, "orders"), lambda: client.subscribe_executions(None))]

        def wrap(seq: int, item: Any) -> gw.StreamOrderUpdatesResponse:
            if isinstance(item, Gap):
                return gw.StreamOrderUpdatesResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            return gw.StreamOrderUpdatesResponse(venue=venue, sequence=seq, report=item)

        accept = (lambda r: r.symbol in wanted) if wanted else None
        async for msg in self._stream("StreamOrderUpdates", context, setup, wrap, accept=accept):
            yield msg

    async def StreamBalances(
        self, request: gw.StreamBalancesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamBalancesResponse]:
        venue = request.venue

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            if not isinstance(client, SupportsBalanceStream):
                raise _unsupported(venue, "StreamBalances", "SupportsBalanceStream")
            return "balances", [(TopicKey(venue, "balances"), client.subscribe_balances)]

        def wrap(seq: int, item: Any) -> gw.StreamBalancesResponse:
            if isinstance(item, Gap):
                return gw.StreamBalancesResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            return gw.StreamBalancesResponse(venue=venue, sequence=seq, balance=item)

        async for msg in self._stream("StreamBalances", context, setup, wrap):
            yield msg

    async def StreamPositions(
        self, request: gw.StreamPositionsRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamPositionsResponse]:
        venue = request.venue
        wanted = frozenset(request.symbols)

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            if not isinstance(client, SupportsPositions):
                raise _unsupported(venue, "StreamPositions", "SupportsPositions")
            self._symbols(request.symbols)
            return "positions", [(TopicKey(venue, "positions"), lambda: client.subscribe_positions(None))]

        def wrap(seq: int, item: Any) -> gw.StreamPositionsResponse:
            if isinstance(item, Gap):
                return gw.StreamPositionsResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            return gw.StreamPositionsResponse(venue=venue, sequence=seq, position=item)

        accept = (lambda p: p.symbol in wanted) if wanted else None
        async for msg in self._stream("StreamPositions", context, setup, wrap, accept=accept):
            yield msg

    async def StreamFundingRates(
        self, request: gw.StreamFundingRatesRequest, context: _Ctx
    ) -> AsyncIterator[gw.StreamFundingRatesResponse]:
        venue = request.venue

        def setup() -> tuple[str, list[tuple[TopicKey, Callable[[], Stream[Any]]]]]:
            client = self._venue(venue)
            if not isinstance(client, SupportsFundingRates):
                raise _unsupported(venue, "StreamFundingRates", "SupportsFundingRates")
            symbols = self._symbols(request.symbols)
            if not symbols:
                return "funding", [(TopicKey(venue, "funding"), lambda: client.subscribe_funding_rates(None))]
            return "funding", [
                (TopicKey(venue, "funding", s), lambda s=s: client.subscribe_funding_rates([s]))  # type: ignore[misc]
                for s in symbols
            ]

        def wrap(seq: int, item: Any) -> gw.StreamFundingRatesResponse:
            if isinstance(item, Gap):
                return gw.StreamFundingRatesResponse(venue=venue, sequence=seq, gap=_gap_pb(item))
            return gw.StreamFundingRatesResponse(venue=venue, sequence=seq, funding_rate=item)

        async for msg in self._stream("StreamFundingRates", context, setup, wrap):
            yield msg
