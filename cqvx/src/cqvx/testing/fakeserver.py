"""A fault-injecting fake venue server on loopback, for wire-level tests.

Venue fakes subclass :class:`FakeServer` and add their routes in :meth:`FakeServer.setup_routes`.  The
base records every HTTP request (with a monotonic arrival time, so tests can check rates), and applies
scripted faults before the venue handler runs: latency, N x 5xx, 429 with ``Retry-After``, and a
connection reset (transport closed with no response).  For WebSockets it tracks live connections and
offers: drop every connection now, and a sequence counter that can skip numbers or emit them out of
order, for venue fakes that stamp sequence numbers on their messages.

    async with MyVenueFake() as server:
        server.fail("/orders", times=2, status=503)
        client = MyClient(base_url=server.url, ws_url=server.ws_url + "/ws")
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from aiohttp import WSMsgType, web

__all__ = ["FakeServer", "Fault", "RecordedRequest", "WsHandler"]

WsHandler = Callable[[web.WebSocketResponse, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    path_qs: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() at arrival


@dataclass(slots=True)
class Fault:
    kind: Literal["status", "reset", "latency"]
    times: int | None = 1  # None = until cleared
    status: int = 503
    body: bytes = b'{"error":"injected"}'
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    method: str | None = None
    # Run the venue handler first (the request TAKES EFFECT), then answer with the fault: the
    # "processed, reply lost" case that only a lookup can resolve.
    after: bool = False


class FakeServer:
    """Base fake server: subclass and override :meth:`setup_routes`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.ws_connections: set[web.WebSocketResponse] = set()
        self.ws_connects = 0
        self.ws_received: list[tuple[int, str]] = []  # (connection number, text)
        self._faults: dict[str | None, deque[Fault]] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._seq = 0
        self._seq_skip = 0
        self._seq_swap_pending = False
        self._seq_held: int | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        """Add the venue's routes (``app.router.add_get(...)``); the base adds none."""

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        self.setup_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self.drop_ws()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    # --- fault scripting ----------------------------------------------------------------------------

    def _push(self, route: str | None, fault: Fault) -> None:
        self._faults.setdefault(route, deque()).append(fault)

    def fail(
        self,
        route: str | None = None,
        *,
        times: int | None = 1,
        status: int = 503,
        body: bytes = b'{"error":"injected"}',
        headers: dict[str, str] | None = None,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` (a URL path; None = any) with ``status``.

        ``after=True`` lets the request take effect first (a venue that acts, then fails to answer).
        """
        self._push(
            route, Fault("status", times, status, body, dict(headers or {}), method=method, after=after)
        )

    def rate_limit(
        self, route: str | None = None, *, times: int = 1, retry_after: str | float | None = 1
    ) -> None:
        """429, with ``Retry-After`` as given (seconds, or an HTTP date string; None = no header)."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self._push(route, Fault("status", times, 429, b'{"error":"rate limited"}', headers))

    def reset(
        self, route: str | None = None, *, times: int = 1, method: str | None = None, after: bool = False
    ) -> None:
        """Close the connection after reading the request, without any response (``after=True``: after
        the request took effect)."""
        self._push(route, Fault("reset", times, method=method, after=after))

    def delay(self, route: str | None = None, seconds: float = 0.1, *, times: int | None = 1) -> None:
        """Hold the request ``seconds`` before handling it normally."""
        self._push(route, Fault("latency", times, seconds=seconds))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, path: str, method: str) -> Fault | None:
        for key in (path, None):
            queue = self._faults.get(key)
            while queue:
                fault = queue[0]
                if fault.method is not None and fault.method != method:
                    break
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        queue.popleft()
                return fault
        return None

    # --- request log ----------------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                path_qs=request.raw_path,
                headers=dict(request.headers),
                body=body,
                at=time.monotonic(),
            )
        )
        fault = self._take_fault(request.path, request.method)
        while fault is not None and fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            fault = None
        if fault is not None:
            if fault.after:
                await handler(request)
            if fault.kind == "reset":
                transport = request.transport
                if transport is not None:
                    transport.abort()  # RST-like close: the client gets no status line at all
                raise asyncio.CancelledError  # aiohttp treats this as a dropped connection
            return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
        return await handler(request)

    # --- WebSocket helpers ------------------------------------------------------------------------

    async def serve_ws(self, request: web.Request, on_text: WsHandler) -> web.WebSocketResponse:
        """Run a WebSocket endpoint: track the connection, record and hand each text frame to ``on_text``."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_connects += 1
        number = self.ws_connects
        self.ws_connections.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.ws_received.append((number, msg.data))
                    await on_text(ws, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.ws_connections.discard(ws)
        return ws

    async def drop_ws(self) -> int:
        """Close every live WebSocket connection now; returns how many were dropped."""
        conns = list(self.ws_connections)
        self.ws_connections.clear()
        for ws in conns:
            await ws.close(code=1011, message=b"dropped by fake server")
        return len(conns)

    async def broadcast(self, data: str | dict[str, Any]) -> None:
        for ws in list(self.ws_connections):
            if ws.closed:
                continue
            if isinstance(data, str):
                await ws.send_str(data)
            else:
                await ws.send_json(data)

    def next_seq(self) -> int:
        """The next sequence number for an outgoing message, with scripted gaps and swaps applied."""
        if self._seq_held is not None:
            held, self._seq_held = self._seq_held, None
            return held
        self._seq += 1 + self._seq_skip
        self._seq_skip = 0
        if self._seq_swap_pending:
            # Emit n+1 now and n on the following call.
            self._seq_swap_pending = False
            self._seq_held = self._seq
            self._seq += 1
            return self._seq
        return self._seq

    def skip_seq(self, count: int = 1) -> None:
        """The next sequence number jumps ahead by ``count`` (a missed message)."""
        self._seq_skip += count

    def swap_next_seq(self) -> None:
        """The next two sequence numbers are emitted in reverse order."""
        self._seq_swap_pending = True
