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
        raise AssertionError("not called")


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
