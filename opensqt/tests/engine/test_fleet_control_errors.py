"""The fleet's control endpoint answers a request that failed inside with a typed 500 that names the
exception's kind only (its text may carry a database URL or a venue reply), and keeps serving."""

from __future__ import annotations

from typing import Any, cast

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from cqvx.secrets import Secret
from opensqt.app.multi import add_control_routes
from opensqt.engine.fleet import Fleet

TOKEN = "control-token"


class _Fleet:
    """Only what the pause route touches: the first pause fails inside, the second works."""

    def __init__(self) -> None:
        self.calls = 0

    async def pause(self, symbol: str) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("postgresql://user:hunter2@db/state unreachable")
        return {"symbol": symbol, "state": "paused"}

    async def resume(self, symbol: str) -> dict[str, Any]:
        raise AssertionError("not called")

    async def remove(self, symbol: str) -> dict[str, Any]:
        self.calls += 1
        return {"symbol": symbol, "state": "removed"}


async def test_a_failure_inside_is_a_typed_500_without_its_text_and_the_endpoint_keeps_serving() -> None:
    app = web.Application()
    fleet = _Fleet()
    add_control_routes(app, cast(Fleet, fleet), Secret(TOKEN))
    server = TestServer(app)
    await server.start_server()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as http:
            url = str(server.make_url("/symbols/BTC-USDT-PERP/pause"))
            async with http.post(url, headers=auth) as r:
                assert r.status == 500
                body = await r.json()
            assert body == {"error": "RuntimeError (details logged)"}
            assert "hunter2" not in str(body)
            async with http.post(url, headers=auth) as r:
                assert r.status == 200 and (await r.json())["state"] == "paused"
    finally:
        await server.close()


async def test_remove_position_is_keep_or_close_and_anything_else_is_a_400_naming_the_field() -> None:
    app = web.Application()
    fleet = _Fleet()
    add_control_routes(app, cast(Fleet, fleet), Secret(TOKEN))
    server = TestServer(app)
    await server.start_server()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = str(server.make_url("/symbols/ETH-USDT-PERP/remove"))
    try:
        async with aiohttp.ClientSession() as http:
            for body, error in (
                ({"position": "sell"}, "position: 'sell' is not one of keep, close"),
                ({"position": 1}, "position: 1 is not one of keep, close"),
                ({"position": "close", "extra": 1}, 'body: {"position": "keep" | "close"} expected'),
                (["close"], 'body: {"position": "keep" | "close"} expected'),
            ):
                async with http.post(url, headers=auth, json=body) as r:
                    assert (r.status, await r.json()) == (400, {"error": error}), body
            async with http.post(url, headers=auth, data=b"{") as r:
                assert (r.status, await r.json()) == (400, {"error": "body: not JSON"})
            assert fleet.calls == 0  # nothing was removed by a refused request
            # Without the durable runtime a close cannot run (the workflow settles it): refused, typed.
            async with http.post(url, headers=auth, json={"position": "close"}) as r:
                assert r.status == 503 and "durable" in (await r.json())["error"]
            bodies: list[dict[str, Any]] = [{}, {"json": {"position": "keep"}}, {"json": {}}]
            for body_kw in bodies:
                async with http.post(url, headers=auth, **body_kw) as r:
                    assert r.status == 200 and (await r.json())["state"] == "removed"
            assert fleet.calls == 3
    finally:
        await server.close()
