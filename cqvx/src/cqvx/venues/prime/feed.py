"""One Prime WebSocket subscription as a :class:`cqvx.streams.LiveStream` (base of the book and the
executions streams).

One :class:`~cqvx.transport.ws.WsClient` per stream carries two signed subscriptions: the stream's
channel and ``heartbeats`` (:mod:`cqvx.venues.prime.ws_protocol`).  They go out as soon as the socket
is up (the server drops a connection that has not subscribed within 5 s) and again on every
reconnect.  ``sequence_num`` rises by one per message on a connection and restarts with each: a jump
(lost messages), a reconnect or an unreadable message is a gap: the subclass resets its state, the
``on_gap`` listeners are told, and on a jump the connection is recycled for a fresh snapshot.
``wait_live()`` returns when the subclass marks the stream live (its first snapshot), or raises the
venue's refusal (``{"type": "error"}``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import msgspec

from cqvx.errors import AuthenticationError, ParseError, VenueError
from cqvx.fanout import Subscription
from cqvx.streams import Gap
from cqvx.transport.ws import Backoff, WsClient
from cqvx.venues.prime import ws_protocol as wp
from cqvx.venues.prime.config import PrimeConfig
from cqvx.venues.prime.endpoints import VENUE

__all__ = ["PrimeFeed"]


class PrimeFeed:
    """The producer side of one Prime subscription; consumers read :attr:`sub`, a bounded
    :class:`cqvx.fanout.Subscription` (the one fan-out: its channel's overflow policy, gaps, ends).
    Closing the subscription closes the connection."""

    channel = ""  # the Prime channel
    fanout_channel = ""  # the fan-out channel name (its overflow policy: book CONFLATE, executions FAIL)

    def __init__(
        self,
        config: PrimeConfig,
        *,
        timestamp: Any,
        product_ids: tuple[str, ...] = (),
        portfolio_id: str = "",
        heartbeat_timeout: float = 30.0,
        backoff: Backoff | None = None,
        queue_size: int = 64,
    ) -> None:
        if config.passphrase is None or config.signing_key is None:
            raise AuthenticationError("the Prime WebSocket needs credentials", venue=VENUE)
        if len(product_ids) > wp.MAX_PRODUCTS_PER_CONNECTION:
            raise ValueError("at most 10 products per Prime connection")
        self._cfg = config
        self._timestamp = timestamp  # () -> integer-seconds string (the signer's clock)
        self._products = product_ids
        self._portfolio = portfolio_id
        self.sub: Subscription[Any] = Subscription(
            venue=VENUE,
            channel=self.fanout_channel,
            symbol=",".join(product_ids),
            maxsize=queue_size,
            on_close=self._sub_closed,
        )
        self._last_seq: int | None = None
        self.connections = 0
        self._closed = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self.on_closed: Any = None  # called with this feed once closed (the client forgets it)
        self._ws = WsClient(
            config.ws_url,
            venue=VENUE,
            stream=self.channel,
            subscribe=self._subscribe,
            unsubscribe=self._unsubscribe,
            on_message=self._on_message,
            heartbeat_timeout=heartbeat_timeout,
            backoff=backoff,
            connect_timeout=wp.SUBSCRIBE_DEADLINE_S,
        )
        self._spawn(self._begin())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _begin(self) -> None:
        await self._ws.start()
        await self._ws.subscribe(self.channel, "heartbeats")

    # --- subclass hooks ---------------------------------------------------------------------------

    def _reset(self) -> None:
        """Messages may have been lost: drop what depends on them (a fresh snapshot follows)."""

    def _on_envelope(self, env: wp.Envelope) -> None:
        """One message of the stream's channel, in sequence."""

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
            portfolio_id=self._portfolio if channel == self.channel else "",
            product_ids=self._products,
            unsubscribe=unsubscribe,
        )

    async def _subscribe(self, ws: WsClient, keys: tuple[Hashable, ...]) -> None:
        # The first connect and every reconnect: a new connection restarts the numbering, and
        # anything between the two connections may be lost.
        self.connections += 1
        self._last_seq = None
        if self.connections > 1:
            self._gap("reconnected")
        for key in keys:
            await ws.send_json(self._message(str(key)))

    async def _unsubscribe(self, ws: WsClient, keys: tuple[Hashable, ...]) -> None:
        for key in keys:
            await ws.send_json(self._message(str(key), unsubscribe=True))

    def _gap(self, reason: str) -> None:
        self._reset()
        self.sub.gap(Gap(venue=VENUE, channel=self.fanout_channel, symbol=self.sub.symbol, reason=reason))

    async def _on_message(self, data: str | bytes) -> None:
        try:
            self._handle(data)
        except ParseError:
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
            self._spawn(self._ws.force_reconnect("sequence gap"))
            return
        self._last_seq = env.sequence_num
        if env.channel == self.channel:
            self._on_envelope(env)

    def _publish(self, item: Any) -> None:
        self.sub.push(item)  # the channel's overflow policy applies (never awaits the reader)

    def _mark_live(self) -> None:
        self.sub.set_live()

    def _fail(self, error: VenueError) -> None:
        if not self.sub.ended:
            self.sub.refuse(error)
            self._spawn(self._ws.close())

    async def _sub_closed(self, _sub: Subscription[Any]) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await self._ws.close()
        if not self.sub.closed:
            await self.sub.aclose()
        if self.on_closed is not None:
            self.on_closed(self)
