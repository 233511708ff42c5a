"""WsClient against the real fake server over loopback: reconnect, re-subscribe, watchdog, close."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from cqvx.testing.fakeserver import FakeServer
from cqvx.transport.ws import Backoff, ConnectionState, WsClient

FAST = Backoff(initial=0.005, maximum=0.05)


class WsVenue(FakeServer):
    """Speaks a tiny protocol: {"op":"auth"} -> {"type":"authed"}; {"op":"subscribe","keys":[...]}
    -> {"type":"subscribed"}; {"op":"unsubscribe",...}.  Remembers keys per connection."""

    def __init__(self, *, silent: bool = False) -> None:
        super().__init__()
        self.silent = silent
        self.keys_by_conn: dict[int, list[str]] = {}
        self.authed_first: dict[int, bool] = {}

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws", self._ws)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            conn = self.ws_connects
            msg = json.loads(text)
            if msg["op"] == "auth":
                self.authed_first.setdefault(conn, True)
                await ws.send_json({"type": "authed"})
            elif msg["op"] == "subscribe":
                self.authed_first.setdefault(conn, False)
                self.keys_by_conn.setdefault(conn, []).extend(msg["keys"])
                if not self.silent:
                    await ws.send_json({"type": "subscribed", "keys": msg["keys"], "conn": conn})
            elif msg["op"] == "unsubscribe":
                for k in msg["keys"]:
                    self.keys_by_conn[conn].remove(k)

        return await self.serve_ws(request, on_text)


async def sub(client: WsClient, keys: tuple[Hashable, ...]) -> None:
    await client.send_json({"op": "subscribe", "keys": list(keys)})


async def unsub(client: WsClient, keys: tuple[Hashable, ...]) -> None:
    await client.send_json({"op": "unsubscribe", "keys": list(keys)})


async def auth(client: WsClient) -> None:
    await client.send_json({"op": "auth"})
    ack = json.loads(await client.receive_raw(timeout=1.0))
    assert ack["type"] == "authed"


async def eventually(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[WsVenue]:
    async with WsVenue() as s:
        yield s


def client(server: WsVenue, **kw: Any) -> WsClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("registry", CollectorRegistry())
    kw.setdefault("heartbeat_timeout", 5.0)
    return WsClient(
        server.ws_url + "/ws", venue="fake", subscribe=sub, unsubscribe=unsub, decode=json.loads, **kw
    )


async def test_resubscribes_everything_after_repeated_drops(server: WsVenue) -> None:
    reg = CollectorRegistry()
    ws = client(server, on_connect=auth, registry=reg)
    await ws.subscribe("BTC-USD")  # recorded before connecting
    async with ws:
        await ws.wait_connected(2.0)
        await ws.subscribe("ETH-USD", "SOL-USD")
        await ws.subscribe("ETH-USD")  # duplicates are not re-sent
        want = ["BTC-USD", "ETH-USD", "SOL-USD"]
        await eventually(lambda: sorted(server.keys_by_conn.get(1, [])) == want)
        received: list[Any] = []

        async def consume() -> None:
            async for msg in ws:
                received.append(msg)

        consumer = asyncio.create_task(consume())
        for drop in range(1, 6):
            assert await server.drop_ws() == 1
            conn = drop + 1
            await eventually(lambda c=conn: sorted(server.keys_by_conn.get(c, [])) == want)  # type: ignore[misc]
            await ws.wait_connected(2.0)
            await server.broadcast({"type": "tick", "n": drop})
        await eventually(lambda: sum(1 for m in received if m.get("type") == "tick") == 5)
        assert ws.connects == 6 and ws.reconnects == 5
        assert all(server.authed_first[c] for c in range(1, 7))  # auth ran first on every connection
        assert ws.subscriptions == ("BTC-USD", "ETH-USD", "SOL-USD")
        assert (
            reg.get_sample_value(
                "cqvx_ws_reconnects_total", {"venue": "fake", "stream": "default", "reason": "closed"}
            )
            == 5
        )
    await asyncio.wait_for(consumer, 1.0)  # close() ends the iterator
    assert ws.state is ConnectionState.CLOSED


async def test_unsubscribed_keys_are_not_restored(server: WsVenue) -> None:
    async with client(server) as ws:
        await ws.subscribe("A", "B")
        await ws.wait_connected(2.0)
        await eventually(lambda: sorted(server.keys_by_conn.get(1, [])) == ["A", "B"])
        await ws.unsubscribe("A")
        await eventually(lambda: server.keys_by_conn[1] == ["B"])
        await server.drop_ws()
        await eventually(lambda: server.keys_by_conn.get(2) == ["B"])


async def test_heartbeat_watchdog_forces_reconnect_on_silence() -> None:
    async with WsVenue(silent=True) as server:
        reg = CollectorRegistry()
        async with client(server, heartbeat_timeout=0.15, registry=reg) as ws:
            await ws.subscribe("BTC-USD")
            await ws.wait_connected(2.0)
            await eventually(lambda: server.ws_connects >= 3, timeout=2.0)
            assert ws.last_error is not None and "no message" in ws.last_error
            heartbeat = {"venue": "fake", "stream": "default", "reason": "heartbeat"}
            assert (reg.get_sample_value("cqvx_ws_reconnects_total", heartbeat) or 0) >= 2
            # Every silent-dropped connection was re-subscribed too.
            await eventually(lambda: all(server.keys_by_conn.get(c) == ["BTC-USD"] for c in (1, 2, 3)))


async def test_reconnects_when_server_is_down_at_start() -> None:
    server = WsVenue()
    await server.start()
    port = server.port
    await server.stop()
    ws = WsClient(f"ws://127.0.0.1:{port}/ws", venue="fake", backoff=FAST, registry=CollectorRegistry())
    async with ws:
        await eventually(lambda: ws.reconnects >= 3)
        # Never connected, so between backoff sleeps the next try shows as CONNECTING.
        assert ws.state in (ConnectionState.RECONNECTING, ConnectionState.CONNECTING)
        assert ws.connects == 0 and ws.last_error is not None


async def test_bounded_queue_drops_oldest_and_counts(server: WsVenue) -> None:
    reg = CollectorRegistry()
    async with client(server, queue_size=2, registry=reg) as ws:
        await ws.wait_connected(2.0)
        for n in range(5):
            await server.broadcast({"n": n})
        await eventually(
            lambda: (
                reg.get_sample_value("cqvx_ws_dropped_messages_total", {"venue": "fake", "stream": "default"})
                == 3
            )
        )
        got = [await anext(ws), await anext(ws)]
        assert got == [{"n": 3}, {"n": 4}]


async def test_callback_delivery_and_serialised_writes(server: WsVenue) -> None:
    seen: list[Any] = []

    async def on_message(msg: Any) -> None:
        seen.append(msg)

    async with client(server, on_message=on_message) as ws:
        await ws.wait_connected(2.0)
        # Many concurrent subscribe writes: the lock keeps frames whole; every key arrives once.
        keys = [f"K{i}" for i in range(50)]
        await asyncio.gather(*(ws.subscribe(k) for k in keys))
        await eventually(lambda: sorted(server.keys_by_conn.get(1, [])) == sorted(keys))
        await eventually(lambda: len(seen) == 50)
        assert all(m["type"] == "subscribed" for m in seen)


async def test_close_cancels_reader_and_is_idempotent(server: WsVenue) -> None:
    ws = client(server)
    await ws.start()
    await ws.wait_connected(2.0)
    task = ws._task
    await ws.close()
    await ws.close()
    assert task is not None and task.done()
    assert ws.state is ConnectionState.CLOSED
    await eventually(lambda: not server.ws_connections)
    with pytest.raises(StopAsyncIteration):
        await anext(ws)


async def test_fake_server_sequence_helpers() -> None:
    s = FakeServer()
    assert [s.next_seq(), s.next_seq()] == [1, 2]
    s.skip_seq(2)
    assert s.next_seq() == 5
    s.swap_next_seq()
    assert [s.next_seq(), s.next_seq(), s.next_seq()] == [7, 6, 8]


async def test_fake_server_latency_fault() -> None:
    import aiohttp

    class Echo(FakeServer):
        def setup_routes(self, app: web.Application) -> None:
            async def ok(_: web.Request) -> web.Response:
                return web.Response(text="ok")

            app.router.add_get("/x", ok)

    async with Echo() as s, aiohttp.ClientSession() as http:
        s.delay("/x", 0.2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with http.get(s.url + "/x") as r:
            assert await r.text() == "ok"
        assert loop.time() - t0 >= 0.19
        t0 = loop.time()
        async with http.get(s.url + "/x") as r:
            assert r.status == 200
        assert loop.time() - t0 < 0.15  # the fault was used up


async def test_a_handshake_that_never_answers_times_out_and_retries() -> None:
    """A peer that accepts TCP and never answers the upgrade must not stall the stream for the HTTP
    session's default 5 minutes: the handshake gets ``connect_timeout``, then the client retries."""
    accepted: list[asyncio.StreamWriter] = []

    async def black_hole(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(w)

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = WsClient(
        f"ws://127.0.0.1:{port}/ws",
        venue="fake",
        connect_timeout=0.2,
        backoff=FAST,
        registry=CollectorRegistry(),
    )
    try:
        await client.start()
        async with asyncio.timeout(3):
            while len(accepted) < 3:  # noqa: ASYNC110 - counting the server's accepts
                await asyncio.sleep(0.02)
        assert client.reconnects >= 2 and not client.connected
    finally:
        await client.close()
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()
