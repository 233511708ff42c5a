"""``opensqt live`` as its own process: a relay of the engine's feed (no venue connection of its own)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from cqvx.backoff import Backoff
from cqvx.secrets import Secret
from cqvx.testing.waits import until
from opensqt.live.feed import LiveFeed
from opensqt.live.hub import HubLimits
from opensqt.live.relay import Relay, _ws_url
from opensqt.live.server import LiveServer

from .rig import Rig


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str) -> Any:
    while True:
        env = json.loads((await ws.receive(timeout=5)).data)
        if env["type"] == kind:
            return env["data"]


def test_upstream_url_forms() -> None:
    assert _ws_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/ws"
    assert _ws_url("https://h/") == "wss://h/ws"
    assert _ws_url("127.0.0.1:8080") == "ws://127.0.0.1:8080/ws"
    assert _ws_url("ws://h:1/ws") == "ws://h:1/ws"


async def test_the_relay_serves_the_engine_feed_and_survives_an_upstream_drop(tmp_path: Path) -> None:
    async with Rig(tmp_path, HubLimits(token=Secret("up"))) as rig, aiohttp.ClientSession() as s:
        await rig.tick("100")
        feed = LiveFeed()
        server = LiveServer(feed, HubLimits())
        relay = Relay(feed, rig.url, token=Secret("up"), backoff=Backoff(initial=0.01, maximum=0.05))
        server.upstream_ok = lambda: relay.connected
        port = await server.start("127.0.0.1", 0)
        task = asyncio.create_task(relay.run())
        try:
            await until(lambda: relay.connected and len(feed.candles) == 100 and len(feed.orders) > 0)
            ws = await s.ws_connect(f"http://127.0.0.1:{port}/ws")
            first = json.loads((await ws.receive(timeout=5)).data)
            assert first["type"] == "history" and len(first["data"]) == 100
            orders = await _next(ws, "orders")
            assert len(orders) == len(rig.open_orders())
            buy = await rig.fill_highest_buy()
            filled = await _next(ws, "orders")
            assert filled["status"] == "FILLED" and Decimal(filled["price"]) == Decimal(buy.price)
            assert (await _next(ws, "trade_event"))["side"] == "buy"
            # the engine drops its clients: the relay reconnects; the replayed fill is not sent twice
            await rig.server.hub.close_all()
            await until(lambda: relay.connects >= 2 and relay.connected)
            health = await (await s.get(f"http://127.0.0.1:{port}/health")).json()
            assert health["status"] == "ok" and health["clients"] == 1
            assert len(feed.trades) == 1
            await ws.close()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.stop()


async def test_health_is_degraded_while_the_engine_is_away() -> None:
    feed = LiveFeed()
    server = LiveServer(feed, HubLimits())
    relay = Relay(feed, "http://127.0.0.1:9", backoff=Backoff(initial=0.01, maximum=0.02))
    server.upstream_ok = lambda: relay.connected
    port = await server.start("127.0.0.1", 0)
    task = asyncio.create_task(relay.run())
    try:
        async with aiohttp.ClientSession() as s:
            resp = await s.get(f"http://127.0.0.1:{port}/health")
            assert resp.status == 503 and (await resp.json())["status"] == "degraded"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()
