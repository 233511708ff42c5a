"""The engine's /metrics (its StatusServer over EngineMetrics, as the runner wires them) carries the
transport's series of an in-process venue next to the ``market_maker_*`` set."""

from __future__ import annotations

import uuid

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from cqvx.testing.fakeserver import FakeServer
from cqvx.transport.http import HttpTransport, RetryPolicy
from opensqt.live.http import StatusServer
from opensqt.observability.metrics import EngineMetrics


class _Venue(FakeServer):
    def setup_routes(self, app: web.Application) -> None:
        async def time_(_: web.Request) -> web.Response:
            return web.json_response({"t": 1})

        app.router.add_get("/time", time_)


def _samples(text: str, name: str) -> list[dict[str, str]]:
    return [
        s.labels for family in text_string_to_metric_families(text) for s in family.samples if s.name == name
    ]


async def test_engine_metrics_endpoint_exports_transport_series() -> None:
    venue = f"engine-{uuid.uuid4().hex[:8]}"  # the process default registry is shared: a label of our own
    metrics = EngineMetrics()
    server = StatusServer(lambda: {}, metrics.render, lambda: (True, {}))
    port = await server.start("127.0.0.1", 0)
    try:
        async with _Venue() as fake:
            fake.fail("/time", times=1, status=503)
            async with HttpTransport(fake.url, venue=venue, retry=RetryPolicy(base_delay=0.01)) as t:
                await t.get("/time", route="/time")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    finally:
        await server.stop()
    requests = [s for s in _samples(text, "cqvx_http_requests_total") if s.get("venue") == venue]
    assert {s["outcome"] for s in requests} == {"ok", "unavailable"}
    retries = [s for s in _samples(text, "cqvx_http_retries_total") if s.get("venue") == venue]
    assert retries == [{"venue": venue, "route": "/time", "reason": "unavailable"}]
    assert "# TYPE market_maker_orders_active gauge" in text
    assert "# TYPE cqvx_ws_reconnects_total counter" in text and "# TYPE cqvx_breaker_state gauge" in text
