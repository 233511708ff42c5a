"""The WebSocket hub: fan-out of encoded messages to every connected page, with bounded cost per client.

Rules:

* every message is encoded ONCE: :meth:`Hub.broadcast` takes the JSON text, builds the RFC 6455 text
  frame once (server frames are unmasked, and the hub turns compression off, so the bytes are the same
  for every client) and writes it to each client without awaiting: no task, no coroutine and no copy
  per client.  A client whose transport has nothing queued gets a direct write on its plain TCP socket
  (what ``transport.write`` does first, without its per-call checks); whatever the socket does not
  take goes to ``transport.write``, which queues it, and everything after queues behind it (order kept);
  TLS transports always go through the transport;
* each client's queue is its transport's write buffer, bounded by ``max_buffer`` bytes: a client whose
  buffer is over it at a broadcast is a slow client and is **disconnected** at once (transport aborted,
  buffer freed); so is one whose buffer has not drained for ``write_timeout`` seconds (swept once a
  second).  A slow client never grows memory and never delays the others (the rewrite's hub only
  dropped its messages, reference §5.3);
* ping/pong: aiohttp's heartbeat pings every ``ping_interval`` s; a client that does not answer within
  half of it is closed (the read deadline); client messages are ignored (the protocol is server -> client);
* admission, in order: per-IP connection rate (token bucket, HTTP 429), connection cap (503), Origin
  (403: a browser's Origin must be the page's own host or listed; a request without Origin is a
  non-browser client, which an Origin check cannot restrict anyway: the token is what guards those),
  token (401; ``?token=`` or ``Authorization: Bearer``; required when the server binds beyond loopback,
  checked by :func:`require_token_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import os
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog
from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from cqvx.secrets import Secret

__all__ = ["Hub", "HubLimits", "require_token_for"]

log = structlog.get_logger("opensqt.live")


@dataclass(frozen=True)
class HubLimits:
    max_buffer: int = 1 << 20  # bytes waiting per client before it counts as slow
    max_clients: int = 1000
    rate_per_ip: float = 10.0  # new connections per second per IP (token bucket)
    burst_per_ip: int = 20
    ping_interval: float = 20.0  # seconds; the pong deadline is half of it
    write_timeout: float = 10.0
    allowed_origins: tuple[str, ...] = ()  # "scheme://host[:port]"; the page's own host is always allowed
    token: Secret | None = None


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_token_for(host: str, token: Secret | str | None) -> None:
    """Refuse to serve beyond loopback without a token (raises ``ValueError``)."""
    if not _is_loopback(host) and not token:
        raise ValueError(f"the live server binds {host!r} (beyond loopback): set a token")


@dataclass(eq=False)  # identity: a set of live connections
class _Client:
    ws: web.WebSocketResponse
    transport: asyncio.Transport
    ip: str
    fd: int = -1  # the plain TCP socket's descriptor, written directly when nothing is queued
    backlog_since: float | None = None  # when the write buffer was last seen non-empty
    closed: bool = False


def _plain_fd(transport: asyncio.Transport) -> int:
    """The descriptor of a plain (not TLS) socket transport, else -1 (TLS bytes must go through it)."""
    sock = transport.get_extra_info("socket")
    if sock is None or transport.get_extra_info("sslcontext") is not None:
        return -1
    fd = sock.fileno()
    return fd if isinstance(fd, int) else -1


def text_frame(text: str) -> bytes:
    """One unmasked, final, uncompressed RFC 6455 text frame (section 5.2)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.active = Gauge(
            "websocket_active_connections", "Live page clients", ["endpoint"], registry=self.registry
        )
        self.rejected = Counter(
            "websocket_rejected_total", "Refused connections", ["reason"], registry=self.registry
        )
        self.dropped = Counter(
            "websocket_disconnected_total", "Clients the hub closed", ["reason"], registry=self.registry
        )
        self.messages = Counter("websocket_messages_total", "Messages broadcast", registry=self.registry)


class Hub:
    def __init__(
        self,
        limits: HubLimits | None = None,
        *,
        on_connect: Callable[[], Iterable[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or HubLimits()
        self._on_connect = on_connect or (lambda: ())
        self._clock = clock
        self._clients: set[_Client] = set()
        self._buckets: dict[str, _Bucket] = {}
        self.metrics = _Metrics()
        self.slow_disconnects = 0
        self._sweep_task: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    def metrics_text(self) -> bytes:
        return generate_latest(self.metrics.registry)

    # ------------------------------------------------------------------ fan-out

    def broadcast(self, text: str) -> None:
        """Send one encoded message to every client; never awaits, never blocks on a client."""
        self.metrics.messages.inc()
        frame = text_frame(text)
        size = len(frame)
        limit = self.limits.max_buffer
        write = os.write
        late: list[tuple[_Client, str]] = []
        for client in tuple(self._clients):
            transport = client.transport
            if transport.is_closing():  # first: a closed transport's descriptor may be reused already
                late.append((client, "closed"))
                continue
            pending = transport.get_write_buffer_size()
            if pending or client.fd < 0:
                if pending > limit:
                    late.append((client, "slow"))
                else:
                    transport.write(frame)  # behind what is queued: the order is kept
                continue
            # Nothing queued: write the socket directly, as the transport itself would, without its
            # per-call checks (10-25 % of the fan-out's time at 1,000 clients; docs/live.md).
            try:
                sent = write(client.fd, frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                late.append((client, "closed"))
                continue
            if sent < size:
                transport.write(frame[sent:])  # the transport queues the rest until the socket drains
        for client, reason in late:
            self._drop(client, reason)

    def sweep(self) -> None:
        """Disconnect clients whose write buffer has not drained for ``write_timeout`` seconds."""
        now = self._clock()
        for client in tuple(self._clients):
            if client.transport.get_write_buffer_size() == 0:
                client.backlog_since = None
            elif client.backlog_since is None:
                client.backlog_since = now
            elif now - client.backlog_since > self.limits.write_timeout:
                self._drop(client, "write")

    async def _sweeper(self) -> None:
        while self._clients:
            await asyncio.sleep(1.0)
            self.sweep()

    def _drop(self, client: _Client, reason: str) -> None:
        if client.closed:
            return
        client.closed = True
        self._clients.discard(client)
        self.metrics.active.labels(endpoint="/ws").set(len(self._clients))
        self.metrics.dropped.labels(reason=reason).inc()
        if reason == "slow":
            self.slow_disconnects += 1
        client.transport.abort()  # frees the write buffer now, not when the handler unwinds
        log.info("live client closed", reason=reason, ip=client.ip)

    async def close_all(self) -> None:
        if self._sweep_task is not None:
            self._sweep_task.cancel()
        for client in list(self._clients):
            client.closed = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.ws.close(code=1001, message=b"server shutdown"), 1.0)
        self._clients.clear()

    # ------------------------------------------------------------------ admission

    def _admit(self, request: web.Request) -> tuple[int, str] | None:
        """``None`` to accept, else (HTTP status, reason)."""
        lim = self.limits
        ip = request.remote or "?"
        now = self._clock()
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) > 10_000:  # forget IPs whose bucket is full again
                full = [
                    k for k, b in self._buckets.items() if now - b.at > lim.burst_per_ip / lim.rate_per_ip
                ]
                for k in full:
                    del self._buckets[k]
            bucket = self._buckets[ip] = _Bucket(float(lim.burst_per_ip), now)
        bucket.tokens = min(float(lim.burst_per_ip), bucket.tokens + (now - bucket.at) * lim.rate_per_ip)
        bucket.at = now
        if bucket.tokens < 1:
            return 429, "rate_limit"
        bucket.tokens -= 1
        if len(self._clients) >= lim.max_clients:
            return 503, "connection_limit"
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_ok(origin, request):
            return 403, "invalid_origin"
        if lim.token is not None and not self._token_ok(request, lim.token):
            return 401, "unauthorized"
        return None

    def _origin_ok(self, origin: str, request: web.Request) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in (o.rstrip("/").lower() for o in self.limits.allowed_origins):
            return True
        host = request.host.lower()
        return origin in (f"http://{host}", f"https://{host}")

    @staticmethod
    def _token_ok(request: web.Request, token: Secret) -> bool:
        given = request.query.get("token", "")
        auth = request.headers.get("Authorization", "")
        if not given and auth.startswith("Bearer "):
            given = auth[7:]
        return hmac.compare_digest(given.encode(), token.reveal_bytes())

    # ------------------------------------------------------------------ one connection

    async def handle(self, request: web.Request) -> web.StreamResponse:
        refused = self._admit(request)
        if refused is not None:
            status, reason = refused
            self.metrics.rejected.labels(reason=reason).inc()
            return web.json_response({"error": reason}, status=status)
        lim = self.limits
        ws = web.WebSocketResponse(heartbeat=lim.ping_interval, max_msg_size=4096, compress=False)
        await ws.prepare(request)
        transport = request.transport
        if transport is None:  # the peer left during the handshake
            return ws
        client = _Client(ws, transport, request.remote or "?", _plain_fd(transport))
        # The snapshot is written first, then the client joins the fan-out: no broadcast can slip between
        # them (both happen without an await).
        for text in self._on_connect():
            transport.write(text_frame(text))
        self._clients.add(client)
        self.metrics.active.labels(endpoint="/ws").set(len(self._clients))
        if self._sweep_task is None or self._sweep_task.done():
            self._sweep_task = asyncio.create_task(self._sweeper())
        try:
            async for msg in ws:  # client frames are ignored; the loop ends on close / heartbeat timeout
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            if not client.closed:
                self._drop(client, "closed")
        return ws
