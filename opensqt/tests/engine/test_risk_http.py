"""The breaker reset endpoint over real HTTP (app/risk_http.py): a live engine on the simulated venue,
its status server on a loopback port, and an aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cqvx.secrets import Secret
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.app.risk_http import add_risk_routes
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.live.http import StatusServer
from opensqt.observability.alerts import AlertRouter

SYM = "BTC-USDT-PERP"
TOKEN = "s3cret-reset-token"
CONFIG = """
trading:
  symbol: BTC-USDT-PERP
  price_interval: 30
  order_quantity: 100
  min_order_value: 20
  buy_window_size: 5
  sell_window_size: 5
  position_safety_check: 10
  recover_position: false
engine: {price_send_interval: 0, reconcile_interval: 3600}
system: {cancel_on_exit: false}
risk:
  enabled: false
  breakers:
    reject_rate: {max_percent: 50, window: 4, min_orders: 4, cooldown_seconds: 0}
"""


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[GridEngine, SimVenue, str]]:
    sim = SimVenue.default(seed=5, clock=SimClock())
    router = AlertRouter([], clock=lambda: sim.clock.now_ns() / 1e9)
    engine = GridEngine(
        parse_config(CONFIG, {}),
        sim,
        StateStore(sqlite_url(tmp_path / "h.db")),
        clock=lambda: sim.clock.now_ns() / 1e9,
        alerts=router,
    )
    await engine.start(run_tasks=False)
    server = StatusServer(engine.status, lambda: b"", lambda: (True, {}))
    add_risk_routes(server.app, engine, Secret(TOKEN))
    port = await server.start("127.0.0.1", 0)
    try:
        yield engine, sim, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()
        await engine.stop(cancel_orders=False)


async def _trip(engine: GridEngine, sim: SimVenue) -> None:
    sim.faults.reject_next(3)
    await engine.on_price(Decimal((await sim.get_latest_price(SYM)).last))
    assert engine.risk.book.open_kinds() == ["reject_rate"]


async def _post(base: str, body: Any, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/risk/reset", json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def test_reset_refuses_without_the_token_and_never_echoes_it(
    served: tuple[GridEngine, SimVenue, str],
) -> None:
    engine, sim, base = served
    await _trip(engine, sim)
    for token in (None, "", "wrong", TOKEN + "x"):
        status, body = await _post(base, {"operator": "ops"}, token)
        assert (status, body["kind"]) == (401, "unauthorized")
        assert TOKEN not in str(body)
    async with aiohttp.ClientSession() as http, http.get(f"{base}/risk") as resp:
        assert resp.status == 401
    assert engine.risk.book.open_kinds() == ["reject_rate"]  # nothing changed


async def test_reset_names_the_breaker_and_is_durable(served: tuple[GridEngine, SimVenue, str]) -> None:
    engine, sim, base = served
    await _trip(engine, sim)
    status, body = await _post(base, {"breaker": "reject_rate", "operator": "alice"})
    assert status == 200 and body == {"reset": ["reject_rate"], "open": []}
    assert not engine.paused
    assert engine.risk.book.states["reject_rate"].resets == 1
    status, body = await _post(base, {"operator": "alice"})  # nothing open any more
    assert status == 200 and body["reset"] == []
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base}/risk", headers={"Authorization": f"Bearer {TOKEN}"}) as resp,
    ):
        assert resp.status == 200 and (await resp.json())["open"] == []


@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        ({"breaker": "nope", "operator": "a"}, 404, "unknown_breaker", "'nope'"),
        ({"breaker": "drawdown", "operator": "a"}, 404, "unknown_breaker", "configured: reject_rate"),
        ({"breaker": "reject_rate"}, 400, "bad_request", "operator"),
        ({"breaker": 3, "operator": "a"}, 400, "bad_request", "breaker"),
        (["reject_rate"], 400, "bad_request", "body"),
    ],
)
async def test_bad_requests_get_typed_errors_and_change_nothing(
    served: tuple[GridEngine, SimVenue, str], body: Any, status: int, kind: str, words: str
) -> None:
    engine, sim, base = served
    await _trip(engine, sim)
    got, answer = await _post(base, body)
    assert (got, answer["kind"]) == (status, kind)
    assert words in answer["error"]
    assert engine.risk.book.open_kinds() == ["reject_rate"]
