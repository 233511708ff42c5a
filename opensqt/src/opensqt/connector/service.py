"""The VenueGateway servicer: the unary RPCs of :mod:`opensqt.connector.unary` and the fanned-out streams.

Handlers raise taxonomy errors; the server interceptor (:mod:`opensqt.connector.interceptor`) maps
them to the wire (status code + ``VenueError`` rich-status detail, :mod:`opensqt.connector.errors`)
and counts every call.  Validation failures are :class:`~cqvx.errors.InvalidRequest`
(INVALID_ARGUMENT) naming the field; an RPC the venue's client does not implement (checked with the
capability protocols) is :class:`~cqvx.errors.UnsupportedOperation` (UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import structlog
from grpc import aio

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqvx.client import VenueClient
from cqvx.errors import VenueError
from opensqt.connector.checks import VenueSet
from opensqt.connector.errors import status_details, status_of
from opensqt.connector.fanout import StreamHub
from opensqt.connector.metrics import ConnectorMetrics
from opensqt.connector.streaming import StreamRelay
from opensqt.connector.unary import UNARY, UnaryRpc, run_unary

__all__ = ["VenueGatewayService"]

_log = structlog.get_logger("opensqt.connector")
_Ctx = aio.ServicerContext[Any, Any]


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
        # Every stream RPC is a row of opensqt.connector.streaming.CHANNELS.
        self._streams = StreamRelay(hub, self._venue, self._abort)

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
