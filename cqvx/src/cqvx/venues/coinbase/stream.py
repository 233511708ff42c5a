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
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import structlog
from prometheus_client import CollectorRegistry

from cqc.markets.v1 import candle_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.venues.v1 import execution_pb2, venue_pb2
from cqvx.book import ApplyResult, OrderBookL2, ResyncReason, SequenceMode
from cqvx.errors import InvalidRequest, ParseError, VenueError
from cqvx.fanout import Hub, Subscription
from cqvx.fills import FillTracker
from cqvx.streams import Gap
from cqvx.transport.ratelimit import RateLimiterRegistry, limiters
from cqvx.transport.ws import Backoff, WsClient
from cqvx.types import Stream
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
    connects: int = 0


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
        self._hub = Hub(VENUE)
        self._depths: dict[int, int] = {}  # id(book subscription) -> depth
        self._books: dict[str, OrderBookL2] = {}
        self._trade_seen: OrderedDict[str, None] = OrderedDict()
        self._fills = FillTracker(config.fill_dedup_size, venue=VENUE)
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
                c.connects += 1
                if c.connects > 1:
                    self._gap(kind, "websocket reconnected")
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
        self._hub.end_all()

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
                self._gap(_kind_of(conn, self._conns), f"sequence gap {last} -> {seq}")
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
                self._emit(("prices", ""), p)
        elif channel == "candles":
            for c in parse.ws_candles(env, self._client.to_canonical):
                self._emit(("candles", c.symbol), c)
        elif channel == "user":
            self._on_user(conn, env)
        elif channel == "heartbeats":
            parse.ws_heartbeat_counter(env)

    def _emit(self, topic: Hashable, item: Any) -> None:
        self._hub.publish(topic, item)

    def _gap(self, kind: str, reason: str) -> None:
        """Messages of every stream on the ``kind`` connection may be lost: tell their listeners."""
        for sub in self._hub.each():
            if (sub.channel == "executions") == (kind == "user"):
                sub.gap(Gap(VENUE, sub.channel, sub.symbol, reason=reason))

    def _on_l2(self, conn: _Conn, env: m.Envelope) -> None:
        when = parse.timestamp(env.timestamp, "timestamp")
        for ev in parse.l2_events(env):
            book = self._books.get(ev.product_id)
            if book is None:
                continue
            if ev.type == "update":
                one = parse.l2_level(ev)
                if one is not None:  # one level (most updates): the book's one-level entry point
                    result = book.apply_level(one[0], one[1], one[2], env.sequence_num, when)
                else:
                    bids, asks = parse.l2_levels(ev)
                    result = book.apply_levels(bids, asks, sequence=env.sequence_num, timestamp=when)
            elif ev.type == "snapshot":
                bids, asks = parse.l2_levels(ev)
                result = book.apply_snapshot_levels(bids, asks, sequence=env.sequence_num, timestamp=when)
            else:
                raise ParseError(f"l2 event type {ev.type[:20]!r}", venue=VENUE)
            if result is ApplyResult.APPLIED:
                for sub in self._hub.members(("book", book.symbol)):
                    sub.push(book.snapshot(self._depths.get(id(sub), 20)))
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
            self._hub.publish(("executions", ""), rep)

    # --- public streams ---------------------------------------------------------------------------------

    def _open(
        self,
        kind: str,
        keys: list[Key],
        topic: tuple[str, str],
        *,
        symbol: str = "",
        symbols: Sequence[str] = (),
        maxsize: int = 1024,
        on_ready: Callable[[Subscription[Any]], None] | None = None,
    ) -> Subscription[Any]:
        """A subscription started at once: live when the subscribe message went out on ``kind``."""
        wanted = frozenset(symbols)
        conn: list[_Conn] = []

        async def release(sub: Subscription[Any]) -> None:
            self._depths.pop(id(sub), None)
            if conn and not self._closed:
                await self._release(conn[0], keys)

        sub = self._hub.subscribe(
            [topic],
            channel=topic[0],
            symbol=symbol,
            maxsize=maxsize,
            accept=(lambda m: m.symbol in wanted) if wanted else None,
            on_close=release,
            live=False,
        )

        async def start() -> None:
            try:
                await self._check_products([k[1] for k in keys if k != _USER and k[1]])
                c = await self._connection(kind)
                conn.append(c)
                if sub.ended:
                    return
                if on_ready is not None:
                    on_ready(sub)
                await self._acquire(c, keys)
                # Live once the subscribe went out on a connected socket (the client re-sends every
                # subscription on each connect before it counts as connected).  No deadline here: a
                # venue that is down is the reconnect loop's to heal; callers bound wait_live.
                await c.ws.wait_connected()
            except VenueError as err:
                sub.refuse(err)
                return
            sub.set_live()

        if self._closed:
            sub.end()
        else:
            self._spawn(start())
        return sub

    async def _check_products(self, product_ids: Sequence[str]) -> None:
        """Refuse a subscription to a product the venue does not list (InvalidRequest from
        ``wait_live``): the WebSocket answers an unknown product with an error message that does not
        say which subscription it refuses, so the REST products table decides.  A lookup that fails
        (network, 5xx) proves nothing: the subscription goes ahead and the reconnect loop heals."""
        try:
            await self._client._learn_products(product_ids)
        except VenueError as exc:
            _log.warning("coinbase.product_check_failed", error=type(exc).__name__)
            return
        unknown = [p for p in product_ids if p not in self._client._to_canon]
        if unknown:
            raise InvalidRequest(f"unknown symbol {unknown[0][:40]}: no such Coinbase product", venue=VENUE)

    def order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        product = self._client.product_id(symbol)

        def ready(sub: Subscription[Any]) -> None:
            self._depths[id(sub)] = depth
            book = self._books.get(product)
            if book is None:
                self._books[product] = OrderBookL2(symbol, VENUE, sequence=SequenceMode.NONE)
            elif not book.needs_resync:
                sub.push(book.snapshot(depth))

        return self._open(
            "market", [("level2", product)], ("book", symbol), symbol=symbol, maxsize=256, on_ready=ready
        )

    def trades(self, symbol: str) -> Stream[trade_pb2.Trade]:
        product = self._client.product_id(symbol)
        return self._open(
            "market", [("market_trades", product)], ("trades", symbol), symbol=symbol, maxsize=10_000
        )

    def prices(self, symbols: Sequence[str]) -> Stream[price_pb2.Price]:
        products = [self._client.product_id(s) for s in symbols]
        return self._open("market", [("ticker", p) for p in products], ("prices", ""), symbols=symbols)

    def candles(self, symbol: str, interval: int) -> Stream[candle_pb2.Candle]:
        if interval != parse.WS_CANDLE_INTERVAL:
            raise InvalidRequest("the candles channel only streams 5-minute candles", venue=VENUE)
        product = self._client.product_id(symbol)
        return self._open("market", [("candles", product)], ("candles", symbol), symbol=symbol)

    def executions(self, symbols: Sequence[str] | None = None) -> Stream[execution_pb2.ExecutionReport]:
        # Policy FAIL: on overflow the stream ends with SubscriberOverflow (an Unavailable) instead of
        # dropping a report; the consumer re-subscribes and reconciles.
        return self._open(
            "user",
            [_USER],
            ("executions", ""),
            symbols=symbols or (),
            maxsize=self._config.executions_queue_max,
        )


def _kind_of(conn: _Conn, conns: dict[str, _Conn]) -> str:
    return next((k for k, c in conns.items() if c is conn), "market")


def _restart_user_snapshot(conn: _Conn) -> None:
    """A (re)subscribe is under way: the next user snapshot is awaited afresh on this connection."""
    conn.user_snapshot_ids = set()
    conn.user_snapshot_started = False
    conn.user_snapshot_done = False
