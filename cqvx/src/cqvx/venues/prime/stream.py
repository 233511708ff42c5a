"""Prime WebSocket order book: ``l2_data`` into the local book, with sequence-gap resync.

One :class:`~cqvx.transport.ws.WsClient` per book stream (one product per connection, so the
10-products-per-connection limit never binds) carries two signed subscriptions, ``l2_data`` and
``heartbeats`` (:mod:`cqvx.venues.prime.ws_protocol`).  The subscribe goes out as soon as the socket
is up (the server drops a connection that has not subscribed within 5 s) and again on every
reconnect.  Rules (venues.md §2.4):

* ``sequence_num`` rises by one per message on a connection and restarts with each connection.  A
  jump means lost messages: the book is invalidated, listeners get a :class:`~cqvx.streams.Gap`,
  and the connection is recycled, which brings a fresh snapshot.  A reconnect (drop, heartbeat
  silence) is a gap too.
* ``snapshot`` replaces the book; ``update`` sets absolute sizes (0 removes a level) and is refused
  until a snapshot arrived.  Subscribers get top-``depth`` snapshots, newest first when they lag
  (market data: the oldest queued book is dropped).
* The stream follows :class:`cqvx.streams.LiveStream`: started at once, ``wait_live()`` returns at the
  first snapshot, or raises the venue's refusal (``{"type": "error"}`` before it).

Not here yet: the ``orders`` channel (execution reports) and the one shared fan-out of main.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable
from typing import Any

import msgspec

from cqc.markets.v1 import orderbook_pb2
from cqvx.book import ApplyResult, OrderBookL2, ResyncReason, SequenceMode
from cqvx.errors import AuthenticationError, ParseError, VenueError
from cqvx.streams import Gap, GapListener
from cqvx.transport.ws import Backoff, WsClient
from cqvx.venues.prime import ws_protocol as wp
from cqvx.venues.prime.config import PrimeConfig
from cqvx.venues.prime.endpoints import VENUE

__all__ = ["PrimeBookStream"]

_END = object()


class PrimeBookStream:
    """A live top-``depth`` book of one Prime product (see the module docstring)."""

    def __init__(
        self,
        config: PrimeConfig,
        symbol: str,
        depth: int,
        *,
        timestamp: Any,
        heartbeat_timeout: float = 30.0,
        backoff: Backoff | None = None,
        queue_size: int = 64,
    ) -> None:
        if config.passphrase is None or config.signing_key is None:
            raise AuthenticationError("the Prime WebSocket needs credentials", venue=VENUE)
        self._cfg = config
        self.symbol = symbol
        self.depth = depth
        self._timestamp = timestamp  # () -> integer-seconds string (the signer's clock)
        self.book = OrderBookL2(symbol, VENUE, sequence=SequenceMode.NONE)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._live = asyncio.Event()
        self._failure: VenueError | None = None
        self._listeners: list[GapListener] = []
        self._last_seq: int | None = None
        self._connections = 0
        self._closed = False
        self._recycle: asyncio.Future[None] | None = None
        self._ws = WsClient(
            config.ws_url,
            venue=VENUE,
            stream="l2_data",
            subscribe=self._subscribe,
            unsubscribe=self._unsubscribe,
            on_message=self._on_message,
            heartbeat_timeout=heartbeat_timeout,
            backoff=backoff,
            connect_timeout=wp.SUBSCRIBE_DEADLINE_S,
        )
        self._start = asyncio.ensure_future(self._begin())

    async def _begin(self) -> None:
        await self._ws.start()
        await self._ws.subscribe(("l2_data", self.symbol), ("heartbeats", self.symbol))

    # --- wire -------------------------------------------------------------------------------------

    def _message(self, channel: str, *, unsubscribe: bool = False) -> dict[str, object]:
        cfg = self._cfg
        assert cfg.passphrase is not None and cfg.signing_key is not None
        return wp.subscribe_message(
            channel,
            access_key=cfg.access_key,
            passphrase=cfg.passphrase,
            signing_key=cfg.signing_key,
            svc_account_id=cfg.svc_account_id,
            timestamp=self._timestamp(),
            product_ids=(self.symbol,),
            unsubscribe=unsubscribe,
        )

    async def _subscribe(self, ws: WsClient, keys: tuple[Hashable, ...]) -> None:
        # Called on the first connect and on every reconnect: a new connection restarts the numbering,
        # and anything between the two connections may be lost.
        self._connections += 1
        self._last_seq = None
        if self._connections > 1:
            self._gap("reconnected")
        for key in keys:
            if isinstance(key, tuple):
                await ws.send_json(self._message(str(key[0])))

    async def _unsubscribe(self, ws: WsClient, keys: tuple[Hashable, ...]) -> None:
        for key in keys:
            if isinstance(key, tuple):
                await ws.send_json(self._message(str(key[0]), unsubscribe=True))

    def _gap(self, reason: str) -> None:
        self.book.invalidate(ResyncReason.INVALIDATED)
        gap = Gap(venue=VENUE, channel="l2_data", symbol=self.symbol, reason=reason)
        for listener in list(self._listeners):
            listener(gap)

    async def _on_message(self, data: str | bytes) -> None:
        try:
            self._handle(data)
        except ParseError:
            # An unreadable message may have changed the book: resync from a fresh snapshot.
            self._gap("unreadable message")
            await self._ws.force_reconnect("unreadable message")

    def _handle(self, raw: str | bytes) -> None:
        try:
            head = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise ParseError("Prime WebSocket message is not JSON", venue=VENUE) from None
        if isinstance(head, dict) and head.get("type") == "error":
            message = str(head.get("message", ""))[:200]
            self._fail(AuthenticationError(f"Prime refused the subscription: {message}", venue=VENUE))
            return
        env = wp.decode_envelope(raw)
        if self._last_seq is not None and env.sequence_num != self._last_seq + 1:
            if env.sequence_num <= self._last_seq:
                return  # out of order or replayed: already applied
            self._gap(f"sequence gap after {self._last_seq}")
            self._last_seq = None
            self._recycle = asyncio.ensure_future(self._ws.force_reconnect("sequence gap"))
            return
        self._last_seq = env.sequence_num
        if env.channel != "l2_data":
            return  # subscriptions ack, heartbeats
        changed = False
        for event in env.events:
            snapshot, product, bids, asks = wp.l2_levels(event)
            if product != self.symbol:
                continue
            if snapshot:
                result = self.book.apply_snapshot_levels(bids, asks)
            elif self.book.needs_resync:
                continue
            else:
                result = self.book.apply_levels(bids, asks)
            changed = changed or result is ApplyResult.APPLIED
        if changed and not self.book.needs_resync:
            self._publish(self.book.snapshot(self.depth))
            self._live.set()

    def _publish(self, book: orderbook_pb2.OrderBook) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(book)

    def _fail(self, error: VenueError) -> None:
        if self._failure is None:
            self._failure = error
            self._live.set()
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(_END)
            self._recycle = asyncio.ensure_future(self._ws.close())

    # --- LiveStream -------------------------------------------------------------------------------

    def on_gap(self, listener: GapListener) -> None:
        self._listeners.append(listener)

    async def wait_live(self) -> None:
        await self._live.wait()
        if self._failure is not None:
            raise self._failure

    def __aiter__(self) -> PrimeBookStream:
        return self

    async def __anext__(self) -> orderbook_pb2.OrderBook:
        if self._closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            if self._failure is not None:
                raise self._failure
            raise StopAsyncIteration
        assert isinstance(item, orderbook_pb2.OrderBook)
        return item

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._start.cancel()
        with contextlib.suppress(asyncio.CancelledError, VenueError):
            await self._start
        await self._ws.close()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_END)
