"""Advanced Trade WebSocket streams: level2 books, market trades, ticker, candles, user orders/fills.

One :class:`~cqvx.transport.ws.WsClient` per endpoint (market data, user order data) carries every
subscription of the client; it reconnects, re-subscribes and watches heartbeats.  This module adds what
is Coinbase-specific (websocket-overview and websocket-channels pages,
https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels):

* One channel per subscribe message, a fresh JWT in each; ``heartbeats`` on every connection so quiet
  subscriptions stay open, sent at once after connecting (the server drops a connection that has not
  subscribed within 5 s).  Outgoing messages respect the 8/s WebSocket limit.
* ``sequence_num`` increases by one per message on a connection: a jump means a dropped message, so
  every channel of that connection is re-subscribed (level2 then restarts from a fresh snapshot, the
  book refusing updates meanwhile); a lower number is out of order and ignored.  Each reconnect starts
  the count afresh.
* ``level2`` feeds :class:`cqvx.book.OrderBookL2` (snapshot, then absolute-size updates); subscribers
  get top-N snapshots.
* ``user`` reports cumulative order state, never single fills: fills are derived from increases of
  the cumulative quantity (price from the change of filled value), with a deterministic id
  ``<order_id>:<cumulative>``, and de-duplicated, so replays after a reconnect emit nothing twice.
  After a snapshot (open orders only), orders we were tracking that are no longer open are fetched
  over REST so a fill that happened while disconnected is still reported.  Orders this client placed
  are tracked from the moment ``place_order`` returns (:meth:`CoinbaseStreams.track_placed`), so an
  order placed and fully filled while the user connection was down is reconciled too.
* The user snapshot is a run of ``snapshot`` events batched by 50 open orders, followed by ``update``
  events (user channel reference,
  https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/websocket/user); nothing marks the
  last batch.  It counts as finished at a batch of fewer than 50, at the first ``update`` event, or at
  the first message of another channel on that connection after it began (heartbeats tick every
  second), so a snapshot of exactly 50 or 100 orders still ends and reconciliation runs.
* The executions queue is bounded (``executions_queue_max``).  A consumer that falls that far behind
  gets :class:`~cqvx.errors.Unavailable` after the reports already queued: the stream ends rather than
  drop a fill, and the consumer re-subscribes and reconciles (``get_orders``/``get_fills``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import aiohttp
import structlog
from prometheus_client import CollectorRegistry

from cqc.markets.v1 import candle_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.venues.v1 import execution_pb2, order_pb2, venue_pb2
from cqvx.book import ApplyResult, OrderBookL2, ResyncReason, SequenceMode
from cqvx.errors import InvalidRequest, ParseError, Unavailable, VenueError
from cqvx.num import dec_str
from cqvx.transport.ratelimit import RateLimiterRegistry, limiters
from cqvx.transport.ws import Backoff, WsClient
from cqvx.types import TERMINAL_STATUSES, Stream, report_from_order
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase import parse
from cqvx.venues.coinbase.auth import CoinbaseAuth
from cqvx.venues.coinbase.config import CoinbaseConfig
from cqvx.venues.coinbase.errors import VENUE

if TYPE_CHECKING:
    from cqvx.venues.coinbase.client import CoinbaseClient

__all__ = ["CoinbaseStreams", "FillTracker"]

_log = structlog.get_logger("cqvx.venues.coinbase.stream")

T = TypeVar("T")
Key = tuple[str, str]  # (channel, product id or "")
_HEARTBEATS: Key = ("heartbeats", "")
_USER: Key = ("user", "")
_USER_SNAPSHOT_BATCH = 50  # open orders per user snapshot event (user channel reference)
_UNSEEN = order_pb2.ORDER_STATUS_UNSPECIFIED  # tracked (placed by us) but no state seen yet
_EXEC_FOR_STATUS: dict[int, execution_pb2.ExecutionType.ValueType] = {
    order_pb2.ORDER_STATUS_CANCELLED: execution_pb2.EXECUTION_TYPE_CANCELLED,
    order_pb2.ORDER_STATUS_EXPIRED: execution_pb2.EXECUTION_TYPE_EXPIRED,
    order_pb2.ORDER_STATUS_FAILED: execution_pb2.EXECUTION_TYPE_FAILED,
    order_pb2.ORDER_STATUS_REJECTED: execution_pb2.EXECUTION_TYPE_REJECTED,
    order_pb2.ORDER_STATUS_PENDING_CANCEL: execution_pb2.EXECUTION_TYPE_PENDING_CANCEL,
}


@dataclass(slots=True)
class _OrderState:
    cumulative: Decimal
    value: Decimal  # filled quantity x average price
    fees: Decimal
    status: int


class FillTracker:
    """Turns successive cumulative order states into execution reports, each fill exactly once."""

    def __init__(self, max_seen: int = 100_000) -> None:
        self._orders: dict[str, _OrderState] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._max_seen = max_seen

    def open_order_ids(self) -> list[str]:
        """Orders not known to be finished (including placed ones never seen on the stream)."""
        return [oid for oid, st in self._orders.items() if st.status not in TERMINAL_STATUSES]

    def register(self, order_id: str) -> None:
        """Track an order this client placed before the stream has said anything about it: if it
        finishes while the stream is away, the next snapshot's reconciliation fetches it."""
        if order_id and order_id not in self._orders:
            self._orders[order_id] = _OrderState(Decimal(0), Decimal(0), Decimal(0), _UNSEEN)
            self._prune()

    def _prune(self) -> None:
        # Finished orders are only kept so replays stay quiet; beyond the bound, the oldest go first
        # (their fill ids stay in ``_seen``).  Open orders are never dropped.
        excess = len(self._orders) - self._max_seen
        if excess <= 0:
            return
        for oid in [o for o, st in self._orders.items() if st.status in TERMINAL_STATUSES][:excess]:
            del self._orders[oid]

    def update(
        self, order: order_pb2.Order, *, baseline: bool = False
    ) -> list[execution_pb2.ExecutionReport]:
        """Reports for a new state of ``order``.  ``baseline`` (the first snapshot of a stream) records
        the state and reports it as STATUS without inventing fills from before the stream started."""
        cum = Decimal(order.filled_quantity or "0")
        avg = Decimal(order.average_fill_price or "0")
        fees = Decimal(order.total_fees or "0")
        value = cum * avg
        prev = self._orders.get(order.order_id)
        out: list[execution_pb2.ExecutionReport] = []
        if prev is None or prev.status == _UNSEEN:
            if prev is None:
                self._prune()
            self._orders[order.order_id] = _OrderState(cum, value, fees, order.status)
            if baseline:
                out.append(_report(order, execution_pb2.EXECUTION_TYPE_STATUS))
                return out
            prev = _OrderState(Decimal(0), Decimal(0), Decimal(0), order_pb2.ORDER_STATUS_UNSPECIFIED)
            if cum == 0 and order.status not in _EXEC_FOR_STATUS:
                out.append(_report(order, execution_pb2.EXECUTION_TYPE_NEW))
                return out
        if cum > prev.cumulative:
            trade_id = f"{order.order_id}:{dec_str(cum)}"
            if trade_id not in self._seen:
                delta = cum - prev.cumulative
                rep = _report(order, execution_pb2.EXECUTION_TYPE_TRADE)
                rep.execution_id = trade_id
                rep.trade_id = trade_id
                rep.last_quantity = dec_str(delta)
                price = (value - prev.value) / delta if value > prev.value else avg
                rep.last_price = _fill_price(price)
                rep.fee = dec_str(max(fees - prev.fees, Decimal(0)))
                out.append(rep)
                # Marked only once the report exists: a fill marked seen but never reported would be
                # suppressed as a "replay" forever after.
                self._mark_seen(trade_id)
        elif order.status != prev.status and order.status in _EXEC_FOR_STATUS:
            out.append(_report(order, _EXEC_FOR_STATUS[order.status]))
        if cum >= prev.cumulative:
            self._orders[order.order_id] = _OrderState(cum, value, fees, order.status)
        if order.status in TERMINAL_STATUSES and cum > prev.cumulative and order.status in _EXEC_FOR_STATUS:
            # Filled part and then cancelled/expired in one update: report both events.
            out.append(_report(order, _EXEC_FOR_STATUS[order.status]))
        return out

    def _mark_seen(self, trade_id: str) -> None:
        self._seen[trade_id] = None
        if len(self._seen) > self._max_seen:
            self._seen.popitem(last=False)


_PRICE_STEP = Decimal("1e-12")


def _fill_price(price: Decimal) -> str:
    """A derived fill price, trimmed of division noise; never raises on extreme values."""
    if not price:
        return ""
    # More digits than the context holds: keep the quotient as it is.
    with contextlib.suppress(InvalidOperation):
        price = price.quantize(_PRICE_STEP)
    return dec_str(price)


def _report(
    order: order_pb2.Order, etype: execution_pb2.ExecutionType.ValueType
) -> execution_pb2.ExecutionReport:
    rep = report_from_order(order, etype)
    rep.venue = VENUE
    return rep


@dataclass(eq=False)
class _Sink:
    limit: int
    depth: int = 20
    symbols: frozenset[str] = frozenset()
    lossless: bool = False
    # Unbounded underneath so the end-of-stream markers always fit; ``limit`` bounds the messages.
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def put(self, item: Any) -> None:
        if self.overflowed:
            return
        if isinstance(item, _Closed | _Failed):
            self.queue.put_nowait(item)
            return
        if self.queue.qsize() >= self.limit:
            if self.lossless:
                # Order events must never be dropped: end the stream instead (after what is queued).
                self.overflowed = True
                _log.error("coinbase.stream_overflow", limit=self.limit)
                self.queue.put_nowait(
                    _Failed(
                        Unavailable(
                            f"execution stream overflow: the consumer fell {self.limit} reports behind; "
                            "re-subscribe and reconcile",
                            venue=VENUE,
                            retry_safe=True,
                        )
                    )
                )
                return
            self.queue.get_nowait()  # market data: the newest state matters, drop the oldest
        self.queue.put_nowait(item)


@dataclass(eq=False)
class _Conn:
    ws: WsClient
    last_seq: int | None = None
    refs: dict[Key, int] = field(default_factory=dict)
    user_snapshot_ids: set[str] = field(default_factory=set)
    user_snapshot_started: bool = False
    user_snapshot_done: bool = False
    # This connection's snapshot is the stream's first: it sets the baseline (no fills invented).
    user_snapshot_baseline: bool = False


class CoinbaseStreams:
    """All WebSocket subscriptions of one :class:`CoinbaseClient`."""

    def __init__(
        self,
        client: CoinbaseClient,
        config: CoinbaseConfig,
        auth: CoinbaseAuth | None,
        *,
        registry: CollectorRegistry | None = None,
        rate_limiters: RateLimiterRegistry | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._auth = auth
        self._registry = registry
        self._conns: dict[str, _Conn] = {}
        self._sinks: dict[Hashable, list[_Sink]] = {}
        self._books: dict[str, OrderBookL2] = {}
        self._trade_seen: OrderedDict[str, None] = OrderedDict()
        self._fills = FillTracker(config.fill_dedup_size)
        # The WebSocket message limit is per IP: one bucket for every client in the process.
        self._send_bucket = (limiters if rate_limiters is None else rate_limiters).get(
            VENUE, "ws", rate=config.ws_messages_per_s, capacity=config.ws_messages_per_s, registry=registry
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._conn_lock = asyncio.Lock()
        self.gaps = 0
        self.parse_errors = 0
        self.resyncs = 0
        self.snapshots_completed = 0  # user snapshots seen to the end (tests synchronise on it)
        self._first_user_snapshot = True
        self._closed = False

    # --- connections --------------------------------------------------------------------------------

    async def _connection(self, kind: str) -> _Conn:
        async with self._conn_lock:
            conn = self._conns.get(kind)
            if conn is not None:
                return conn
            if kind == "user" and self._auth is None:
                raise InvalidRequest("the user channel needs Coinbase credentials", venue=VENUE)
            cfg = self._config
            holder: list[_Conn] = []

            async def on_connect(_ws: WsClient) -> None:
                c = holder[0]
                c.last_seq = None
                _restart_user_snapshot(c)
                if kind == "market":
                    # Only this connection's books: invalidating them on a user-connection reconnect
                    # would freeze them, since no level2 snapshot follows on the market connection.
                    for book in self._books.values():
                        book.invalidate(ResyncReason.DISCONNECTED)

            async def on_message(data: Any) -> None:
                self._on_message(holder[0], data)

            ws = WsClient(
                cfg.ws_user_url if kind == "user" else cfg.ws_market_url,
                venue=VENUE,
                stream=kind,
                subscribe=self._send_subscribe,
                unsubscribe=self._send_unsubscribe,
                on_connect=on_connect,
                on_message=on_message,
                heartbeat_timeout=cfg.heartbeat_timeout_s,
                backoff=Backoff(initial=cfg.reconnect_initial_s, maximum=cfg.reconnect_max_s),
                connect_timeout=cfg.subscribe_deadline_s,
                registry=self._registry,
            )
            conn = _Conn(ws)
            holder.append(conn)
            # Heartbeats first: recorded before start, so it is in the very first subscribe burst.
            conn.refs[_HEARTBEATS] = 1
            await ws.subscribe(_HEARTBEATS)
            await ws.start()
            self._conns[kind] = conn
            return conn

    async def _send(self, ws: WsClient, mtype: str, keys: Sequence[Hashable]) -> None:
        by_channel: dict[str, list[str]] = {}
        for key in keys:
            assert isinstance(key, tuple)
            channel, product = key
            by_channel.setdefault(channel, [])
            if product:
                by_channel[channel].append(product)
        for channel, products in by_channel.items():
            msg: dict[str, Any] = {"type": mtype, "channel": channel}
            if products:
                msg["product_ids"] = products
            if self._auth is not None:
                msg.update(self._auth.ws_fields(channel, products))
            await self._send_bucket.acquire()
            await ws.send_json(msg)

    async def _send_subscribe(self, ws: WsClient, keys: tuple[Hashable, ...]) -> None:
        await self._send(ws, "subscribe", keys)

    async def _send_unsubscribe(self, ws: WsClient, keys: tuple[Hashable, ...]) -> None:
        await self._send(ws, "unsubscribe", keys)

    async def _acquire(self, conn: _Conn, keys: Sequence[Key]) -> None:
        new = []
        for key in keys:
            conn.refs[key] = conn.refs.get(key, 0) + 1
            if conn.refs[key] == 1:
                new.append(key)
        if new:
            await conn.ws.subscribe(*new)

    async def _release(self, conn: _Conn, keys: Sequence[Key]) -> None:
        gone = []
        for key in keys:
            n = conn.refs.get(key, 0) - 1
            if n <= 0:
                conn.refs.pop(key, None)
                gone.append(key)
                if key[0] == "level2":
                    self._books.pop(key[1], None)
            else:
                conn.refs[key] = n
        if gone and not self._closed:
            await conn.ws.unsubscribe(*gone)

    async def _resync(self, conn: _Conn) -> None:
        """Re-subscribe every channel of the connection: fresh snapshots after a lost message."""
        keys = [k for k in conn.refs if k != _HEARTBEATS]
        if not keys:
            return
        self.resyncs += 1
        try:
            await self._send(conn.ws, "unsubscribe", keys)
            await self._send(conn.ws, "subscribe", keys)
        except (VenueError, aiohttp.ClientError, ConnectionError):
            await conn.ws.force_reconnect("resync failed")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A failed resync or reconcile must be visible, not a "never retrieved" note at exit.
            _log.error("coinbase.stream_task_failed", error=type(exc).__name__, exc_info=exc)

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for conn in self._conns.values():
            await conn.ws.close()
        self._conns.clear()
        for sinks in list(self._sinks.values()):
            for sink in list(sinks):
                sink.put(_Closed())

    def health(self) -> list[venue_pb2.StreamHealth]:
        return [
            venue_pb2.StreamHealth(
                name=f"coinbase:{kind}", connected=c.ws.connected, reconnects=c.ws.reconnects
            )
            for kind, c in self._conns.items()
        ]

    # --- message handling -------------------------------------------------------------------------------

    def _on_message(self, conn: _Conn, data: str | bytes) -> None:
        try:
            env = parse.envelope_from_json(data)
            if env.type == "error":
                _log.warning("coinbase.ws_error", message=env.message[:200])
                return
            seq = env.sequence_num
            last = conn.last_seq
            if last is not None and seq <= last:
                return  # out of order: older than what we have (overview page, sequence numbers)
            conn.last_seq = seq
            if last is not None and seq > last + 1:
                self.gaps += 1
                for key in conn.refs:
                    if key[0] == "level2" and key[1] in self._books:
                        self._books[key[1]].invalidate(ResyncReason.SEQUENCE_GAP)
                if _USER in conn.refs:
                    # The lost message may have been the last update of an order that then left the
                    # open set; the re-subscribe snapshot lists open orders only, so the orders it
                    # no longer lists must be reconciled exactly as after a reconnect.
                    _restart_user_snapshot(conn)
                self._spawn(self._resync(conn))
            self._dispatch(conn, env)
        except ParseError as exc:
            self.parse_errors += 1
            _log.warning("coinbase.parse_error", error=str(exc)[:200])

    def _dispatch(self, conn: _Conn, env: m.Envelope) -> None:
        channel = env.channel
        if channel != "user" and conn.user_snapshot_started and not conn.user_snapshot_done:
            # The server has moved on to other traffic: the last snapshot batch was a full one.
            self._end_user_snapshot(conn)
        if channel == "l2_data":
            self._on_l2(conn, env)
        elif channel == "market_trades":
            for t in parse.ws_trades(env, self._client.to_canonical):
                if t.trade_id in self._trade_seen:
                    continue
                self._trade_seen[t.trade_id] = None
                if len(self._trade_seen) > 10_000:
                    self._trade_seen.popitem(last=False)
                self._emit(("trades", t.symbol), t)
        elif channel == "ticker":
            for p in parse.ws_prices(env, self._client.to_canonical):
                for sink in self._sinks.get(("prices", ""), ()):
                    if p.symbol in sink.symbols:
                        sink.put(p)
        elif channel == "candles":
            for c in parse.ws_candles(env, self._client.to_canonical):
                self._emit(("candles", c.symbol), c)
        elif channel == "user":
            self._on_user(conn, env)
        elif channel == "heartbeats":
            parse.ws_heartbeat_counter(env)

    def _emit(self, sink_key: Hashable, item: Any) -> None:
        for sink in self._sinks.get(sink_key, ()):
            sink.put(item)

    def _on_l2(self, conn: _Conn, env: m.Envelope) -> None:
        when = parse.timestamp(env.timestamp, "timestamp")
        for ev in parse.l2_events(env):
            book = self._books.get(ev.product_id)
            if book is None:
                continue
            bids, asks = parse.l2_levels(ev)
            if ev.type == "snapshot":
                result = book.apply_snapshot_levels(bids, asks, sequence=env.sequence_num, timestamp=when)
            elif ev.type == "update":
                result = book.apply_levels(bids, asks, sequence=env.sequence_num, timestamp=when)
            else:
                raise ParseError(f"l2 event type {ev.type[:20]!r}", venue=VENUE)
            if result is ApplyResult.APPLIED:
                for sink in self._sinks.get(("book", book.symbol), ()):
                    sink.put(book.snapshot(sink.depth))
            elif result is ApplyResult.CROSSED:
                self._spawn(self._resync(conn))

    def _on_user(self, conn: _Conn, env: m.Envelope) -> None:
        for ev in parse.ws_user_events(env):
            snapshot = ev.type == "snapshot"
            if snapshot and not conn.user_snapshot_started:
                conn.user_snapshot_started = True
                conn.user_snapshot_baseline = self._first_user_snapshot
                self._first_user_snapshot = False
            elif not snapshot and conn.user_snapshot_started and not conn.user_snapshot_done:
                self._end_user_snapshot(conn)  # the first update event follows the last batch
            for o in ev.orders:
                order = parse.ws_order_state(o, self._client.to_canonical)
                if snapshot:
                    conn.user_snapshot_ids.add(order.order_id)
                self._publish_reports(
                    self._fills.update(order, baseline=snapshot and conn.user_snapshot_baseline)
                )
            if snapshot and len(ev.orders) < _USER_SNAPSHOT_BATCH and not conn.user_snapshot_done:
                self._end_user_snapshot(conn)

    def _end_user_snapshot(self, conn: _Conn) -> None:
        """Every open order has been listed: the tracked orders it did not list are fetched over REST
        (they filled, or were cancelled, while we were not listening)."""
        conn.user_snapshot_done = True
        self.snapshots_completed += 1
        missing = [i for i in self._fills.open_order_ids() if i not in conn.user_snapshot_ids]
        if missing:
            self._spawn(self._reconcile(missing))

    def track_placed(self, order_id: str) -> None:
        """An order this client just placed (see the module docstring)."""
        self._fills.register(order_id)

    async def _reconcile(self, order_ids: list[str]) -> None:
        """Orders that left the open set while we were disconnected: their final state over REST."""
        for oid in order_ids:
            try:
                order = await self._client.get_order(order_id=oid)
            except VenueError as exc:
                _log.warning("coinbase.reconcile_failed", order_id=oid, error=type(exc).__name__)
                continue
            self._publish_reports(self._fills.update(order))

    def _publish_reports(self, reports: list[execution_pb2.ExecutionReport]) -> None:
        for rep in reports:
            for sink in self._sinks.get(("executions", ""), ()):
                if not sink.symbols or rep.symbol in sink.symbols:
                    sink.put(rep)

    # --- public streams ---------------------------------------------------------------------------------

    def _iterate(
        self, kind: str, keys: list[Key], sink_key: Hashable, sink: _Sink, on_ready: Any = None
    ) -> _SubStream[Any]:
        return _SubStream(self, kind=kind, keys=keys, sink_key=sink_key, sink=sink, on_ready=on_ready)

    def order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        product = self._client.product_id(symbol)
        sink = _Sink(256, depth=depth)

        def ready() -> None:
            book = self._books.get(product)
            if book is None:
                self._books[product] = OrderBookL2(symbol, VENUE, sequence=SequenceMode.NONE)
            elif not book.needs_resync:
                sink.put(book.snapshot(depth))

        return self._iterate("market", [("level2", product)], ("book", symbol), sink, ready)

    def trades(self, symbol: str) -> Stream[trade_pb2.Trade]:
        product = self._client.product_id(symbol)
        sink = _Sink(10_000)
        return self._iterate("market", [("market_trades", product)], ("trades", symbol), sink)

    def prices(self, symbols: Sequence[str]) -> Stream[price_pb2.Price]:
        products = [self._client.product_id(s) for s in symbols]
        sink = _Sink(1024, symbols=frozenset(symbols))
        return self._iterate("market", [("ticker", p) for p in products], ("prices", ""), sink)

    def candles(self, symbol: str, interval: int) -> Stream[candle_pb2.Candle]:
        if interval != parse.WS_CANDLE_INTERVAL:
            raise InvalidRequest("the candles channel only streams 5-minute candles", venue=VENUE)
        product = self._client.product_id(symbol)
        sink = _Sink(1024)
        return self._iterate("market", [("candles", product)], ("candles", symbol), sink)

    def executions(self, symbols: Sequence[str] | None = None) -> Stream[execution_pb2.ExecutionReport]:
        # Lossless and bounded: on overflow the stream ends with Unavailable instead of dropping.
        sink = _Sink(self._config.executions_queue_max, symbols=frozenset(symbols or ()), lossless=True)
        return self._iterate("user", [_USER], ("executions", ""), sink)


class _Closed:
    """Sentinel that ends a stream when the client closes."""


@dataclass(frozen=True, slots=True)
class _Failed:
    """Sentinel that ends a stream with an error (after the items queued before it)."""

    error: VenueError


def _restart_user_snapshot(conn: _Conn) -> None:
    """A (re)subscribe is under way: the next user snapshot is awaited afresh on this connection."""
    conn.user_snapshot_ids = set()
    conn.user_snapshot_started = False
    conn.user_snapshot_done = False


class _SubStream(Generic[T]):
    """One subscriber's stream: subscribes on first read, unsubscribes on :meth:`aclose` (which may be
    called from another task while a reader is waiting; the reader then ends)."""

    def __init__(
        self,
        owner: CoinbaseStreams,
        *,
        kind: str,
        keys: list[Key],
        sink_key: Hashable,
        sink: _Sink,
        on_ready: Callable[[], None] | None,
    ) -> None:
        self._owner = owner
        self._kind = kind
        self._keys = keys
        self._sink_key = sink_key
        self._sink = sink
        self._on_ready = on_ready
        self._conn: _Conn | None = None
        self._started = False
        self._closed = False

    def __aiter__(self) -> _SubStream[T]:
        return self

    async def _start(self) -> None:
        self._started = True
        owner = self._owner
        owner._sinks.setdefault(self._sink_key, []).append(self._sink)
        self._conn = await owner._connection(self._kind)
        if self._on_ready is not None:
            self._on_ready()
        await owner._acquire(self._conn, self._keys)

    async def __anext__(self) -> T:
        if self._closed or self._owner._closed:
            raise StopAsyncIteration
        if not self._started:
            try:
                await self._start()
            except BaseException:
                await self.aclose()
                raise
        item = await self._sink.queue.get()
        if isinstance(item, _Closed):
            await self.aclose()
            raise StopAsyncIteration
        if isinstance(item, _Failed):
            await self.aclose()
            raise item.error
        result: T = item
        return result

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        sinks = self._owner._sinks.get(self._sink_key, [])
        if self._sink in sinks:
            sinks.remove(self._sink)
        self._sink.put(_Closed())  # wakes a reader waiting in another task
        if self._conn is not None and not self._owner._closed:
            await self._owner._release(self._conn, self._keys)
