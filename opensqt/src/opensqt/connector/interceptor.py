"""The server interceptor that owns RPC metrics and error mapping for every VenueGateway call.

Handlers raise; this maps what they raise onto the wire and counts the outcome once:

* a :class:`~cqvx.errors.VenueError` -> its status code with the ``VenueError`` rich-status detail
  (:func:`opensqt.connector.errors.status_details`);
* any other exception -> INTERNAL without a detail (clients read it as an unknown outcome), logged;
* a cancelled call (client deadline or disconnect) -> counted as CANCELLED;
* an abort a handler (or the bearer-token check) already sent -> counted with its code.

Overload: at most ``max_concurrent_calls`` unary calls run at once (``connector.max_concurrent_calls``,
default 256; streams are long-lived and not counted).  A call beyond it is refused at once with
RESOURCE_EXHAUSTED and a :class:`~cqvx.errors.RateLimited` detail (retry-safe: it did nothing), never
queued behind a stalled venue (docs/operations.md).

``opensqt_connector_rpcs_total{method, code}`` counts every call, unary and stream; successful unary
calls also observe ``opensqt_connector_rpc_seconds``.  Health-check RPCs are not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from grpc import aio

from cqvx.errors import RateLimited, VenueError
from opensqt.connector.errors import status_details, status_of
from opensqt.connector.metrics import ConnectorMetrics

__all__ = ["RpcInterceptor"]

_log = structlog.get_logger("opensqt.connector")
_Ctx = aio.ServicerContext[Any, Any]


def _final_code(context: _Ctx) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    for member in grpc.StatusCode:  # context.code() may answer the integer value
        if member.value[0] == code:
            return member
    return grpc.StatusCode.UNKNOWN


class RpcInterceptor(aio.ServerInterceptor):
    """Wraps the handlers of ``service`` (a full service name); other services pass through."""

    def __init__(self, metrics: ConnectorMetrics, service: str, *, max_concurrent: int | None = None) -> None:
        self._metrics = metrics
        self._prefix = f"/{service}/"
        self._limit = max_concurrent
        self._in_flight = 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        path = handler_call_details.method
        if handler is None or not path.startswith(self._prefix):
            return handler
        method = path.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    async def _fail(self, method: str, context: _Ctx, exc: BaseException) -> None:
        """Abort the call for ``exc`` (raises ``AbortError``); counts it."""
        if isinstance(exc, VenueError):
            code = status_of(exc)
            self._metrics.rpc(method, code)
            await context.abort(code, exc.message, status_details(exc))
        _log.error("rpc_failed", method=method, error=type(exc).__name__, exc_info=exc)
        self._metrics.rpc(method, grpc.StatusCode.INTERNAL)
        await context.abort(grpc.StatusCode.INTERNAL, f"{method}: internal error ({type(exc).__name__})")

    def _unary(self, method: str, behavior: Callable[..., Any]) -> Callable[[Any, _Ctx], Awaitable[Any]]:
        async def handle(request: Any, context: _Ctx) -> Any:
            started = time.perf_counter()
            if self._limit is not None and self._in_flight >= self._limit:
                busy = RateLimited(
                    f"connector busy: {self._in_flight} calls in flight (max_concurrent_calls {self._limit})",
                    retry_after=0.1,
                )
                await self._fail(method, context, busy)
            self._in_flight += 1
            try:
                response = await behavior(request, context)
            except aio.AbortError:
                self._metrics.rpc(method, _final_code(context))
                raise
            except asyncio.CancelledError:
                self._metrics.rpc(method, grpc.StatusCode.CANCELLED)
                raise
            except Exception as exc:
                await self._fail(method, context, exc)
                raise  # unreachable: abort raises
            finally:
                self._in_flight -= 1
            self._metrics.rpc(method, grpc.StatusCode.OK, time.perf_counter() - started)
            return response

        return handle

    def _stream(self, method: str, behavior: Callable[..., Any]) -> Callable[[Any, _Ctx], AsyncIterator[Any]]:
        async def handle(request: Any, context: _Ctx) -> AsyncIterator[Any]:
            try:
                async for item in behavior(request, context):
                    yield item
            except aio.AbortError:
                self._metrics.rpc(method, _final_code(context))
                raise
            except asyncio.CancelledError:
                self._metrics.rpc(method, grpc.StatusCode.CANCELLED)
                raise
            except Exception as exc:
                await self._fail(method, context, exc)
                raise  # unreachable: abort raises
            self._metrics.rpc(method, grpc.StatusCode.OK)

        return handle
