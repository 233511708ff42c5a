"""A WebSocket client that keeps itself connected and subscribed.

Fixes the old cqi client's defects (contracts.md §3.2, §6 item 15):

* One supervisor task per client owns the connection and the reading; it survives every reconnect,
  so consumers keep receiving after the first drop.
* Reconnects wait through the one :class:`cqvx.backoff.Backoff` (full jitter, 1 s -> 60 s by default,
  configurable), so clients that lost the same server come back spread out.  ``Backoff`` is
  re-exported here for existing imports.  This client is the one owner of reconnects of its socket.
* On every (re)connect ``on_connect`` runs first (authenticate; it may read the ack with
  :meth:`WsClient.receive_raw`), then EVERY recorded subscription is sent again through the venue's
  ``subscribe`` function.  :meth:`WsClient.subscribe` records keys whether or not the socket is up.
* A heartbeat watchdog: no message within ``heartbeat_timeout`` seconds forces a reconnect.
* Writes are serialised by a lock; messages reach consumers through a bounded queue (async iterator)
  or an async callback; overflow drops the oldest message and is counted (the book layer's sequence
  checks turn a drop into a resync).
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Self

import aiohttp
import msgspec
import structlog
from prometheus_client import CollectorRegistry

from cqvx.backoff import Backoff
from cqvx.errors import Unavailable, redact
from cqvx.transport.metrics import metrics_for

__all__ = ["Backoff", "ConnectionState", "WsClient"]

_log = structlog.get_logger("cqvx.transport.ws")

SubscribeFn = Callable[["WsClient", tuple[Hashable, ...]], Awaitable[None]]
ConnectHook = Callable[["WsClient"], Awaitable[None]]
MessageCallback = Callable[[Any], Awaitable[None]]
HeadersArg = Mapping[str, str] | Callable[[], Mapping[str, str]] | None


class ConnectionState(enum.StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


_END = object()


class WsClient:
    """A self-healing WebSocket.

    ``async with WsClient(url, venue="x", subscribe=fn) as ws: await ws.subscribe(k); async for m in ws``
    """

    def __init__(
        self,
        url: str,
        *,
        venue: str,
        stream: str = "default",
        subscribe: SubscribeFn | None = None,
        unsubscribe: SubscribeFn | None = None,
        on_connect: ConnectHook | None = None,
        on_message: MessageCallback | None = None,
        decode: Callable[[str | bytes], Any] | None = None,
        headers: HeadersArg = None,
        heartbeat_timeout: float | None = 30.0,
        ping_interval: float | None = None,
        backoff: Backoff | None = None,
        queue_size: int = 1024,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        if heartbeat_timeout is not None and heartbeat_timeout <= 0:
            raise ValueError("heartbeat_timeout must be positive (None disables the watchdog)")
        self.url = url
        self.venue = venue
        self.stream = stream
        self._subscribe_fn = subscribe
        self._unsubscribe_fn = unsubscribe
        self._on_connect = on_connect
        self._on_message = on_message
        self._decode = decode
        self._headers = headers
        self.heartbeat_timeout = heartbeat_timeout
        self._ping_interval = ping_interval
        self.backoff = backoff if backoff is not None else Backoff()
        self._connect_timeout = connect_timeout
        self._session = session
        self._own_session = session is None
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._subs: dict[Hashable, None] = {}  # insertion-ordered set
        self._sub_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self.state = ConnectionState.IDLE
        self.last_error: str | None = None
        self.connects = 0
        self.reconnects = 0
        self.last_message_at: float | None = None
        m = metrics_for(registry)
        self._m_reconnects = m.ws_reconnects
        self._m_messages = m.ws_messages.labels(venue, stream)
        self._m_dropped = m.ws_dropped.labels(venue, stream)
        self._m_depth = m.ws_queue_depth.labels(venue, stream)
        self._m_connected = m.ws_connected.labels(venue, stream)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._closing:
            raise Unavailable("client is closed", venue=self.venue)
        self._task = asyncio.create_task(self._run(), name=f"ws:{self.venue}:{self.stream}")

    async def wait_connected(self, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            raise Unavailable(
                f"not connected within {timeout}s ({self.last_error or 'no error'})", venue=self.venue
            ) from None

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    @property
    def subscriptions(self) -> tuple[Hashable, ...]:
        return tuple(self._subs)

    async def close(self) -> None:
        """Stop reconnecting, cancel the reader, close the socket; iterators end."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait() neither re-raises the task's CancelledError nor swallows our own cancellation.
            await asyncio.wait([task])
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            await ws.close()
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None
        self._set_state(ConnectionState.CLOSED)
        self._enqueue(_END, count=False)

    async def force_reconnect(self, reason: str = "requested") -> None:
        """Drop the current connection; the supervisor reconnects and re-subscribes."""
        ws = self._ws
        if ws is not None and not ws.closed:
            self.last_error = f"forced reconnect: {reason}"
            await ws.close()

    # --- subscriptions and writes --------------------------------------------------------------------

    async def subscribe(self, *keys: Hashable) -> None:
        """Record ``keys`` and, when connected, send them now; they are re-sent on every reconnect."""
        async with self._sub_lock:
            new = tuple(k for k in keys if k not in self._subs)
            for k in new:
                self._subs[k] = None
            if new and self.connected and self._subscribe_fn is not None:
                await self._send_quietly(self._subscribe_fn, new)

    async def unsubscribe(self, *keys: Hashable) -> None:
        async with self._sub_lock:
            gone = tuple(k for k in keys if k in self._subs)
            for k in gone:
                del self._subs[k]
            if gone and self.connected and self._unsubscribe_fn is not None:
                await self._send_quietly(self._unsubscribe_fn, gone)

    async def _send_quietly(self, fn: SubscribeFn, keys: tuple[Hashable, ...]) -> None:
        try:
            await fn(self, keys)
        except (Unavailable, aiohttp.ClientError, ConnectionError) as exc:
            # The socket died under us; the keys are recorded, so the reconnect sends them.
            self.last_error = type(exc).__name__

    async def send_str(self, text: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise Unavailable("WebSocket not connected", venue=self.venue)
        async with self._write_lock:
            await ws.send_str(text)

    async def send_json(self, obj: Any) -> None:
        await self.send_str(msgspec.json.encode(obj).decode("utf-8"))

    async def receive_raw(self, timeout: float | None = None) -> str | bytes:
        """Read the next frame directly; only for ``on_connect`` hooks (e.g. waiting for a login ack)."""
        ws = self._ws
        if ws is None or ws.closed:
            raise Unavailable("WebSocket not connected", venue=self.venue)
        msg = await ws.receive(timeout=timeout if timeout is not None else self._connect_timeout)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            data: str | bytes = msg.data
            return data
        raise Unavailable(f"connection ended during handshake ({msg.type.name})", venue=self.venue)

    # --- consuming -----------------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        if self._queue.empty() and self.state is ConnectionState.CLOSED:
            raise StopAsyncIteration
        item = await self._queue.get()
        self._m_depth.set(self._queue.qsize())
        if item is _END:
            raise StopAsyncIteration
        return item

    def _enqueue(self, item: Any, *, count: bool = True) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            if count:
                self._m_dropped.inc()
        self._queue.put_nowait(item)
        self._m_depth.set(self._queue.qsize())

    # --- the supervisor --------------------------------------------------------------------------------

    def _set_state(self, state: ConnectionState) -> None:
        self.state = state
        self._m_connected.set(1 if state is ConnectionState.CONNECTED else 0)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    def _handshake_headers(self) -> Mapping[str, str] | None:
        h = self._headers
        return h() if callable(h) else h

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            reason = "closed"
            self._set_state(
                ConnectionState.CONNECTING if self.connects == 0 else ConnectionState.RECONNECTING
            )
            try:
                await self._connect_and_subscribe()
                failures = 0
                reason = await self._read_loop()
            except (aiohttp.ClientError, TimeoutError, ConnectionError, Unavailable, OSError) as exc:
                reason = "connect_error"
                self._note_error(exc)
            except Exception as exc:
                # A bug in a venue hook must not kill the stream for good; record it and retry.
                reason = "hook_error"
                self._note_error(exc)
                _log.exception("ws.hook_error", venue=self.venue, stream=self.stream)
            finally:
                self._connected.clear()
                ws, self._ws = self._ws, None
                if ws is not None and not ws.closed:
                    await asyncio.shield(ws.close())
            if self._closing:
                break
            failures += 1
            self.reconnects += 1
            self._set_state(ConnectionState.RECONNECTING)
            self._m_reconnects.labels(self.venue, self.stream, reason).inc()
            delay = self.backoff.delay(failures, self._rng)
            _log.info(
                "ws.reconnect", venue=self.venue, stream=self.stream, reason=reason, delay_s=round(delay, 4)
            )
            await asyncio.sleep(delay)

    def _note_error(self, exc: BaseException) -> None:
        text = str(redact(str(exc)))[:200]
        self.last_error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    async def _connect_and_subscribe(self) -> None:
        session = self._get_session()
        # ws_connect's handshake runs under the session's HTTP timeout (5 minutes by default): a
        # venue that accepts the TCP connection and never answers the upgrade would stall the stream
        # that long.  The whole handshake gets connect_timeout.
        async with asyncio.timeout(self._connect_timeout):
            self._ws = await session.ws_connect(
                self.url,
                headers=self._handshake_headers(),
                heartbeat=self._ping_interval,
                timeout=aiohttp.ClientWSTimeout(ws_close=self._connect_timeout),
                autoping=True,
            )
        if self._on_connect is not None:
            await asyncio.wait_for(self._on_connect(self), self._connect_timeout)
        # Holding the subscription lock while re-sending means a concurrent subscribe() either lands
        # in this snapshot or runs after we are CONNECTED and sends its own message: nothing is lost.
        async with self._sub_lock:
            if self._subs and self._subscribe_fn is not None:
                await self._subscribe_fn(self, tuple(self._subs))
            self.connects += 1
            self._set_state(ConnectionState.CONNECTED)
            self._connected.set()

    async def _read_loop(self) -> str:
        ws = self._ws
        assert ws is not None
        while True:
            try:
                msg = await ws.receive(timeout=self.heartbeat_timeout)
            except TimeoutError:
                self.last_error = f"no message for {self.heartbeat_timeout}s"
                return "heartbeat"
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self.last_message_at = time.monotonic()
                self._m_messages.inc()
                await self._deliver(msg.data)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                self._note_error(ws.exception() or ConnectionError("websocket error"))
                return "error"
            else:  # CLOSE, CLOSING, CLOSED
                if not self._closing:
                    self.last_error = f"closed by peer (code {ws.close_code})"
                return "closed"

    async def _deliver(self, data: str | bytes) -> None:
        item: Any = data
        if self._decode is not None:
            try:
                item = self._decode(data)
            except Exception as exc:
                _log.warning(
                    "ws.decode_error", venue=self.venue, stream=self.stream, error=type(exc).__name__
                )
                return
        if self._on_message is not None:
            try:
                await self._on_message(item)
            except Exception:
                _log.exception("ws.callback_error", venue=self.venue, stream=self.stream)
            return
        self._enqueue(item)
