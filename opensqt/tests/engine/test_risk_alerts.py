"""Alert sinks against local fake HTTP servers (aiohttp), and the router's de-duplication and rate limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from aiohttp import web

from cqvx.secrets import Secret
from opensqt.config import parse_config
from opensqt.observability.alerts import AlertRouter, SlackSink, TelegramSink, WebhookSink, build_router

TOKEN = "123456:SECRET-bot-token"


class Fake:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.status = 200
        self.reply: Any = {"ok": True}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, await request.json()))
        return web.json_response(self.reply, status=self.status)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Fake, str]]:
    f = Fake()
    app = web.Application()
    app.router.add_post("/{tail:.*}", f.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f, f"http://127.0.0.1:{port}"
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_webhook_slack_and_telegram_payloads(fake: tuple[Fake, str]) -> None:
    f, base = fake
    router = AlertRouter(
        [
            WebhookSink(Secret(f"{base}/hook/abc")),
            SlackSink(Secret(f"{base}/services/T/B/X")),
            TelegramSink(Secret(TOKEN), "-10042", api_base=base),
        ]
    )
    assert router.fire(
        "breaker:drawdown:BTC-USD", "critical", "circuit breaker tripped", "5 % down", symbol="BTC-USD"
    )
    await router.aclose()
    by_path = dict(f.requests)
    assert by_path["/hook/abc"]["key"] == "breaker:drawdown:BTC-USD"
    assert by_path["/hook/abc"]["severity"] == "critical"
    assert by_path["/services/T/B/X"] == {"text": "[CRITICAL] [BTC-USD] circuit breaker tripped: 5 % down"}
    assert by_path[f"/bot{TOKEN}/sendMessage"] == {
        "chat_id": "-10042",
        "text": "[CRITICAL] [BTC-USD] circuit breaker tripped: 5 % down",
    }
    assert router.sent == {"webhook": 1, "slack": 1, "telegram": 1}


async def test_dedup_window_and_rate_limit(fake: tuple[Fake, str]) -> None:
    f, base = fake
    clock = Clock()
    router = AlertRouter(
        [WebhookSink(Secret(f"{base}/h"))], dedup_seconds=60, rate_limit=2, rate_period=10, clock=clock
    )
    assert router.fire("a", "warning", "t", "x")
    assert not router.fire("a", "warning", "t", "x")  # duplicate within the window
    assert router.fire("b", "warning", "t", "x")
    assert router.fire("c", "warning", "t", "x")  # accepted, but the sink's budget (2 / 10 s) is spent
    await router.drain()
    assert [body["key"] for _, body in f.requests] == ["a", "b"]
    assert router.duplicates == 1 and router.dropped == 1
    clock.t = 61.0  # the window and the budget have passed
    assert router.fire("a", "warning", "t", "x")
    await router.aclose()
    assert [body["key"] for _, body in f.requests] == ["a", "b", "a"]


async def test_failures_are_counted_and_never_leak_the_secret(fake: tuple[Fake, str]) -> None:
    f, base = fake
    f.status = 500
    router = AlertRouter(
        [TelegramSink(Secret(TOKEN), "1", api_base=base), SlackSink(Secret("http://127.0.0.1:1/x"))]
    )
    with structlog.testing.capture_logs() as logs:
        router.fire("k", "critical", "t", "x")
        await router.aclose()
    assert router.failed == {"telegram": 1, "slack": 1}
    assert TOKEN not in json.dumps(logs, default=str)
    assert "127.0.0.1:1" not in json.dumps(logs, default=str)


async def test_telegram_ok_false_is_a_failure(fake: tuple[Fake, str]) -> None:
    f, base = fake
    f.reply = {"ok": False, "description": "Bad Request: chat not found"}
    router = AlertRouter([TelegramSink(Secret(TOKEN), "1", api_base=base)])
    router.fire("k", "critical", "t", "x")
    await router.aclose()
    assert router.failed == {"telegram": 1}


def test_alert_secrets_come_from_the_environment_and_are_never_dumped() -> None:
    cfg = parse_config(
        """
trading: {symbol: BTC-USD, price_interval: 1, order_quantity: 30}
risk:
  alerts:
    slack: {url: {env: SLACK_URL}}
    telegram: {bot_token: {env: TG_TOKEN}, chat_id: "42"}
""",
        {"SLACK_URL": "https://hooks.slack.com/services/T/B/zzz", "TG_TOKEN": TOKEN},
    )
    dumped = json.dumps(cfg.model_dump(mode="json"))
    assert TOKEN not in dumped and "zzz" not in dumped
    router = build_router(cfg.risk.alerts)
    assert [s.name for s in router.sinks] == ["slack", "telegram"]
    assert TOKEN not in repr(router.sinks[1].__dict__)


async def test_fire_without_a_running_loop_is_logged_not_raised() -> None:
    router = AlertRouter([])
    await asyncio.sleep(0)
    assert router.fire("k", "info", "t", "x")
