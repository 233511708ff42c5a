"""RemoteVenue: a cqvx VenueClient over the connector's VenueGateway gRPC API.

The engine uses it exactly like an in-process venue client; the credentials stay in the connector.

- **Dialling** (:meth:`RemoteVenue.connect`): ``ListVenues`` is retried with a doubling back-off
  (1 s, 2 s, 4 s ... capped at 60 s, 10 attempts by default; :class:`DialPolicy`) and then fails with
  a clear :class:`~cqvx.errors.Unavailable`.  A wrong token fails at once (retrying cannot help).
- **Capabilities**: the object implements exactly the capability protocols (``SupportsPrices``, ...)
  that the connector reports for the venue, so ``isinstance(remote, SupportsPositions)`` works.
- **Errors**: every failure is rebuilt into the taxonomy from the status code and its ``VenueError``
  rich-status detail (:func:`opensqt.connector.errors.from_grpc`).  A placement whose transport failed
  without a connector answer is :class:`~cqvx.errors.Timeout` (unresolved: look it up by client order
  id), never a retry-safe error.
- **Unary calls** are one table (:mod:`opensqt.connector.remote_calls`); each method is one line.
  The capability mixins live in :mod:`opensqt.connector.remote_mixins`.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

import grpc
import structlog
from grpc import aio

from cqc.markets.v1 import orderbook_pb2, trade_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, venue_pb2
from cqvx.backoff import Backoff
from cqvx.client import check_order_ref
from cqvx.errors import InvalidRequest, Timeout, Unavailable, VenueError
from cqvx.secrets import Secret
from cqvx.types import OrderFilter
from opensqt.connector.convert import filter_to_request, timestamp
from opensqt.connector.errors import from_grpc, venue_error_detail
from opensqt.connector.remote_calls import (
    CANCEL_ORDER,
    GET_BALANCES,
    GET_ORDER,
    GET_ORDER_BOOK,
    GET_VENUE_HEALTH,
    PLACE_ORDER,
    RemoteCall,
)
from opensqt.connector.remote_stream import GapInfo, RemoteStream

__all__ = ["DialPolicy", "GapInfo", "RemoteStream", "RemoteVenue", "StreamPolicy"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
_log = structlog.get_logger("opensqt.connector.remote")

# Without the connector's trailer these mean "the request may have reached the venue".
_TRANSPORT_AMBIGUOUS = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}
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
                await Backoff(dial.initial, dial.maximum).sleep(attempt + 1)
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
        from opensqt.connector.remote_mixins import MIXIN_CAPS as _MIXIN_CAPS

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
        if ambiguous and venue_error_detail(trailers) is None and code in _TRANSPORT_AMBIGUOUS:
            return Timeout(
                f"outcome unknown: connector call failed in transport ({code.name}: {err.details()}); "
                "look the order up by its client order id",
                venue=self._venue,
            )
        exc = from_grpc(code, err.details(), trailers)
        if not exc.venue:
            exc.venue = self._venue
        return exc

    async def _invoke(self, call: RemoteCall[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """One unary call of the table: build the request, call, unwrap the answer."""
        request = call.request(self._venue, *args, **kwargs)
        return call.response(
            await self._call(getattr(self._stub, call.rpc), request, ambiguous=call.ambiguous)
        )

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
        return await self._invoke(PLACE_ORDER, order)

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        return await self._invoke(
            CANCEL_ORDER, symbol=symbol, order_id=order_id, client_order_id=client_order_id
        )

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        return await self._invoke(
            GET_ORDER, symbol=symbol, order_id=order_id, client_order_id=client_order_id
        )

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        # Pages through ListOrders (the one unary call that is a loop, so not a table entry).
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
        return await self._invoke(GET_BALANCES)

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        return await self._invoke(GET_ORDER_BOOK, symbol, depth)

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> RemoteStream[orderbook_pb2.OrderBook]:
        req = gw.StreamOrderBookRequest(venue=self._venue, symbol=symbol, depth=depth)
        return self._stream(f"book:{symbol}", self._stub.StreamOrderBook, req)

    def subscribe_trades(self, symbol: str) -> RemoteStream[trade_pb2.Trade]:
        req = gw.StreamTradesRequest(venue=self._venue, symbol=symbol)
        return self._stream(f"trades:{symbol}", self._stub.StreamTrades, req)

    async def health(self) -> venue_pb2.VenueHealth:
        """The venue's health as the connector sees it; an unreachable connector is unreachable."""
        try:
            return await self._invoke(GET_VENUE_HEALTH)
        except VenueError as err:
            report = venue_pb2.VenueHealth(venue=self._venue, reachable=False, last_error=str(err))
            report.checked_at.CopyFrom(timestamp(datetime.now(UTC)))
            return report

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


def _trailers(err: aio.AioRpcError) -> tuple[tuple[str, str | bytes], ...]:
    return tuple(err.trailing_metadata() or ())
