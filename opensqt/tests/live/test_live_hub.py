"""The live hub over real loopback sockets: fan-out, slow clients, ping/pong deadline, admission rules."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
import pytest

from cqvx.secrets import Secret
from cqvx.testing.waits import until
from opensqt.live.feed import LiveFeed
from opensqt.live.hub import HubLimits, require_token_for
from opensqt.live.server import LiveServer


class _Srv:
    def __init__(
        self,
        limits: HubLimits,
        snapshot: Iterable[tuple[str, object]] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feed = LiveFeed(min_interval=0)  # every publish is a broadcast: the hub is under test here
        for kind, data in snapshot:
            self.feed.apply(kind, data)
        self.server = LiveServer(self.feed, limits, clock=clock)
        self.url = ""

    async def __aenter__(self) -> _Srv:
        port = await self.server.start("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_snapshot_first_then_every_broadcast_to_every_client(session: aiohttp.ClientSession) -> None:
    candle = {"time": 60, "open": "1", "high": "2", "low": "1", "close": "2", "volume": "3"}
    async with _Srv(HubLimits(), [("history", [candle])]) as srv:
        a = await session.ws_connect(srv.url + "/ws")
        b = await session.ws_connect(srv.url + "/ws")
        for ws in (a, b):
            first = json.loads((await ws.receive(timeout=5)).data)
            assert first == {"type": "history", "data": [candle]}
            assert json.loads((await ws.receive(timeout=5)).data) == {"type": "orders", "data": []}
        srv.feed.publish("kline", {**candle, "time": 120})
        for ws in (a, b):
            assert json.loads((await ws.receive(timeout=5)).data)["data"]["time"] == 120
        assert srv.server.hub.clients == 2
        await a.close()
        await until(lambda: srv.server.hub.clients == 1)
        await b.close()


async def _raw_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads (a stalled page)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 101 " in head
    return reader, writer


async def test_a_slow_client_is_disconnected_and_never_delays_the_others(
    session: aiohttp.ClientSession,
) -> None:
    async with _Srv(HubLimits(max_buffer=256 * 1024, ping_interval=60)) as srv:
        hub = srv.server.hub
        fast = await session.ws_connect(srv.url + "/ws")
        await fast.receive(timeout=5)  # history
        await fast.receive(timeout=5)  # orders
        _reader, writer = await _raw_client(srv.server.port)
        await until(lambda: hub.clients == 2)
        big = {"time": 60, "open": "1" * 60_000, "high": "1", "low": "1", "close": "1", "volume": "1"}
        got = 0
        for i in range(200):
            srv.feed.publish("kline", {**big, "time": 60 * (i + 1)})
            # the fast client keeps up: each broadcast arrives before the next one is sent
            msg = json.loads((await fast.receive(timeout=5)).data)
            assert msg["data"]["time"] == 60 * (i + 1)
            got += 1
            if hub.slow_disconnects:
                break
        assert hub.slow_disconnects == 1 and hub.clients == 1
        assert got < 200  # the stalled client was dropped long before the end
        # and the fast one still gets what follows
        srv.feed.publish("kline", {**big, "time": 99_999_960})
        assert json.loads((await fast.receive(timeout=5)).data)["data"]["time"] == 99_999_960
        writer.close()
        await fast.close()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame (unmasked, RFC 6455 5.2), parsed independently of the hub's encoder."""
    head = await reader.readexactly(2)
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return head[0], await reader.readexactly(n)


async def test_a_client_that_falls_behind_and_catches_up_gets_every_frame_whole_and_in_order() -> None:
    # The socket fills in the middle of a frame: the hub's direct write is partial and the transport
    # queues the rest, then everything after queues behind it; the bytes on the wire must still be frames.
    async with _Srv(HubLimits(max_buffer=8 << 20, ping_interval=60)) as srv:
        hub = srv.server.hub
        reader, writer = await _raw_client(srv.server.port)
        await until(lambda: hub.clients == 1)
        for client in hub._clients:  # a small send buffer (no autotuning): the socket fills at once
            client.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sizes = [1000 + 7919 * i % 50_000 for i in range(60)]  # about 1.5 MB, odd sizes
        for i, size in enumerate(sizes):
            srv.feed.publish(
                "kline",
                {
                    "time": 60 * (i + 1),
                    "open": "1" * size,
                    "high": "1",
                    "low": "1",
                    "close": "1",
                    "volume": "1",
                },
            )
        assert hub.clients == 1 and hub.slow_disconnects == 0
        got: list[tuple[int, int]] = []
        while len(got) < len(sizes):
            first, payload = await asyncio.wait_for(_read_frame(reader), 10)
            msg = json.loads(payload)
            if msg["type"] == "kline":
                assert first == 0x81  # FIN + text
                got.append((msg["data"]["time"], len(msg["data"]["open"])))
        assert got == [(60 * (i + 1), size) for i, size in enumerate(sizes)]
        writer.close()


async def test_a_client_whose_buffer_does_not_drain_is_closed_by_the_write_deadline() -> None:
    now = [0.0]
    async with _Srv(HubLimits(max_buffer=64 << 20, write_timeout=10), clock=lambda: now[0]) as srv:
        hub = srv.server.hub
        _reader, writer = await _raw_client(srv.server.port)
        await until(lambda: hub.clients == 1)
        big = {"time": 60, "open": "1" * 200_000, "high": "1", "low": "1", "close": "1", "volume": "1"}
        for _ in range(20):  # far more than the socket buffers take: the rest waits in the transport
            srv.feed.publish("kline", big)
        hub.sweep()
        now[0] = 5.0
        hub.sweep()
        assert hub.clients == 1  # backed up, but not for long enough yet
        now[0] = 10.5
        hub.sweep()
        assert hub.clients == 0
        writer.close()


async def test_a_client_that_does_not_answer_pings_is_closed_by_the_read_deadline(
    session: aiohttp.ClientSession,
) -> None:
    async with _Srv(HubLimits(ping_interval=0.6)) as srv:
        deaf = await session.ws_connect(srv.url + "/ws", autoping=False)
        alive = await session.ws_connect(srv.url + "/ws", autoping=False)
        pongs = 0

        async def read_alive() -> None:  # answers every ping itself, and counts them
            nonlocal pongs
            async for msg in alive:
                if msg.type is aiohttp.WSMsgType.PING:
                    await alive.pong(msg.data)
                    pongs += 1

        reading = asyncio.create_task(read_alive())
        closed_at = None
        started = time.monotonic()
        while time.monotonic() - started < 5:
            msg = await deaf.receive(timeout=5)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                closed_at = time.monotonic() - started
                break
        assert closed_at is not None and closed_at < 4.0
        await until(lambda: srv.server.hub.clients == 1)
        await until(lambda: pongs >= 3)  # three ping periods later the answering client is still here
        assert srv.server.hub.clients == 1 and not alive.closed
        await alive.close()
        await reading


async def _status(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> int:
    try:
        ws = await session.ws_connect(url, headers=headers)
    except aiohttp.WSServerHandshakeError as err:
        return err.status
    await ws.close()
    return 101


async def test_connection_rate_limit_per_ip(session: aiohttp.ClientSession) -> None:
    async with _Srv(HubLimits(rate_per_ip=0.001, burst_per_ip=2)) as srv:
        codes = [await _status(session, srv.url + "/ws") for _ in range(3)]
        assert codes == [101, 101, 429]
        metrics = await (await session.get(srv.url + "/metrics")).text()
        assert 'websocket_rejected_total{reason="rate_limit"} 1.0' in metrics


async def test_connection_cap(session: aiohttp.ClientSession) -> None:
    async with _Srv(HubLimits(max_clients=1)) as srv:
        first = await session.ws_connect(srv.url + "/ws")
        assert await _status(session, srv.url + "/ws") == 503
        await first.close()
        await until(lambda: srv.server.hub.clients == 0)
        assert await _status(session, srv.url + "/ws") == 101


async def test_origin_check(session: aiohttp.ClientSession) -> None:
    async with _Srv(HubLimits(allowed_origins=("https://desk.example",))) as srv:
        url = srv.url + "/ws"
        host = srv.url.removeprefix("http://")
        assert await _status(session, url, headers={"Origin": "http://evil.example"}) == 403
        assert await _status(session, url, headers={"Origin": f"http://{host}"}) == 101
        assert await _status(session, url, headers={"Origin": "https://desk.example"}) == 101
        assert await _status(session, url) == 101  # no Origin: not a browser; the token guards those


async def test_token_when_set(session: aiohttp.ClientSession) -> None:
    async with _Srv(HubLimits(token=Secret("s3cret"))) as srv:
        url = srv.url + "/ws"
        assert await _status(session, url) == 401
        assert await _status(session, url + "?token=wrong") == 401
        assert await _status(session, url + "?token=s3cret") == 101
        assert await _status(session, url, headers={"Authorization": "Bearer s3cret"}) == 101


def test_a_token_is_required_beyond_loopback() -> None:
    require_token_for("127.0.0.1", None)
    require_token_for("::1", None)
    require_token_for("localhost", None)
    require_token_for("0.0.0.0", "t")
    for host in ("0.0.0.0", "192.168.1.5", ""):
        with pytest.raises(ValueError, match="token"):
            require_token_for(host, None)


async def test_health_and_page(session: aiohttp.ClientSession) -> None:
    async with _Srv(HubLimits()) as srv:
        body = await (await session.get(srv.url + "/health")).json()
        assert body["status"] == "ok" and body["clients"] == 0 and isinstance(body["time"], int)
        page = await session.get(srv.url + "/")
        assert page.status in (200, 503)  # 503 names `make live-page` when the bundle is not built
        assert (await session.get(srv.url + "/static/..%2Fhub.py")).status == 404


def test_feed_keeps_the_last_100_candles_and_only_open_orders() -> None:
    feed = LiveFeed()
    for t in range(150):
        feed.apply("kline", {"time": t * 60, "close": str(t)})
    feed.apply("kline", {"time": 149 * 60, "close": "updated"})
    feed.apply("kline", {"time": 10, "close": "late"})
    assert len(feed.candles) == 100 and feed.candles[-1]["close"] == "updated"
    assert feed.candles[0]["time"] == 50 * 60
    feed.apply("orders", {"id": 1, "status": "NEW"})
    feed.apply("orders", {"id": 2, "status": "NEW"})
    feed.apply("orders", {"id": 1, "status": "FILLED"})
    assert list(feed.orders) == [2]
    feed.apply("orders", [{"id": 3, "status": "NEW"}])
    assert list(feed.orders) == [3]
    kinds = [json.loads(m)["type"] for m in feed.snapshot()]
    assert kinds[0] == "history" and "orders" in kinds
