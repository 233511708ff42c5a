"""Each thinner fake's one private stream (the venue's order channel), driven by unmodified ccxt.pro.

``watch_orders`` logs in with the venue's own WebSocket auth, subscribes, and sees the order it placed
over REST, then that order's fill, as the venue's order pushes; the venue's ping is answered; a
wrong secret is refused at login and nothing is pushed to that connection.  (The adapter's execution
stream over these channels is the conformance suite's, ``test_ccxt_fakes_conformance.py``; here only
its refusal before any I/O, Gate without the user id, and that it is live only once a login-first
venue answered the login.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest

from cqc.venues.v1 import order_pb2
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.gate import USER_ID
from cqvx.testing.fake_ccxt.harness import FAKES, MARKET_TYPES, fake_class
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.venues.sim import SimClock, SimVenue

KEY, SECRET, PASSPHRASE = "ws-key", "ws-secret", "ws-passphrase"
CCXT_ID = {"bybit": "bybit", "okx": "okx", "bitget": "bitget", "gate": "gate"}
SYMBOL = "BTC/USDT:USDT"
# What each venue's client sends as its application ping, and how the fake must answer it.
PING: dict[str, tuple[str, Any]] = {
    "bybit": ('{"op":"ping","req_id":"p1"}', lambda m: json.loads(m)["op"] == "pong"),
    "okx": ("ping", lambda m: m == "pong"),
    "bitget": ("ping", lambda m: m == "pong"),
    "gate": ('{"time":1,"channel":"futures.ping"}', lambda m: json.loads(m)["channel"] == "futures.pong"),
}
STREAM_PATH = {
    "bybit": "/v5/private",
    "okx": "/ws/v5/private",
    "bitget": "/v2/ws/private",
    "gate": "/v4/ws/usdt",
}


def _rehost(api: Any, http: str, ws: str) -> Any:
    """Every ccxt url (REST and WebSocket) moved to the fake, paths kept."""
    if isinstance(api, dict):
        return {k: _rehost(v, http, ws) for k, v in api.items()}
    if isinstance(api, str) and api.startswith(("http", "ws")):
        to = urlsplit(ws if api.startswith("ws") else http)
        parts = urlsplit(api.replace("{hostname}", "x"))
        return urlunsplit((to.scheme, to.netloc, parts.path, parts.query, parts.fragment))
    return api


@pytest.fixture(params=FAKES)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[SimFake]:
    sim = SimVenue(quiet_sim_config(), clock=SimClock())
    async with fake_class(request.param)(KEY, SECRET, PASSPHRASE, sim=sim) as server:
        server.venue_name = request.param  # type: ignore[attr-defined]
        yield server


def _exchange(venue: str, fake: SimFake, secret: str = SECRET) -> Any:
    import ccxt.pro

    options: dict[str, Any] = {
        "fetchMarkets": {"types": list(MARKET_TYPES[venue])},
        "defaultType": "swap",
        "enableUnifiedAccount": True,
        "enableUnifiedMargin": False,
    }
    ex = getattr(ccxt.pro, CCXT_ID[venue])(
        {
            "apiKey": KEY,
            "secret": secret,
            "password": PASSPHRASE,
            "uid": USER_ID,  # Gate's order channel names the account's user id in its payload
            "options": options,
            "enableRateLimit": False,
        }
    )
    ex.urls["api"] = _rehost(ex.urls["api"], fake.url, fake.ws_url)
    return ex


def _coid(venue: str) -> str:
    return "t-ws1" if venue == "gate" else "ws1"


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll the fake's own state (it offers no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polled state of another component
            await asyncio.sleep(0.02)


async def test_watch_orders_sees_the_placement_and_the_fill(fake: SimFake) -> None:
    venue = fake.venue_name  # type: ignore[attr-defined]
    ex = _exchange(venue, fake)
    try:
        await ex.load_markets()
        watching = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await _until(lambda: bool(fake.order_sockets))
        amount = Decimal("0.01") / fake.contract_size
        params = {"clientOrderId": _coid(venue)}
        await ex.create_order(SYMBOL, "limit", "buy", str(amount), "50000", params)
        async with asyncio.timeout(10):
            orders = await watching
        assert orders[-1]["clientOrderId"] == _coid(venue)
        assert orders[-1]["status"] == "open" and orders[-1]["side"] == "buy"
        assert Decimal(str(orders[-1]["amount"])) == amount

        fake.sim.inject_trade("BTC-USDT-PERP", Decimal("50000"), Decimal("0.01"), order_pb2.ORDER_SIDE_SELL)
        async with asyncio.timeout(10):
            while True:
                orders = await ex.watch_orders(SYMBOL)
                if orders[-1]["status"] == "closed":
                    break
        assert Decimal(str(orders[-1]["filled"])) == amount
        assert fake.bad_signatures == 0
    finally:
        await ex.close()


async def test_ping_is_answered_and_a_wrong_secret_is_refused(fake: SimFake) -> None:
    venue = fake.venue_name  # type: ignore[attr-defined]
    ping, is_pong = PING[venue]
    async with aiohttp.ClientSession() as session, session.ws_connect(fake.ws_url + STREAM_PATH[venue]) as ws:
        await ws.send_str(ping)
        assert is_pong((await ws.receive(timeout=5)).data)

    good = _exchange(venue, fake)
    try:
        markets = list((await good.load_markets()).values())  # some venues sign this (currencies)
    finally:
        await good.close()
    ex = _exchange(venue, fake, secret="not-the-secret")
    try:
        ex.set_markets(markets)
        with pytest.raises(Exception):  # noqa: B017 - ccxt's own auth error class differs per venue
            async with asyncio.timeout(5):
                await ex.watch_orders(SYMBOL)
        assert fake.bad_signatures >= 1
        assert not fake.order_sockets
    finally:
        await ex.close()


async def test_the_adapter_without_gates_uid_refuses_its_execution_stream_typed() -> None:
    # Gate's futures order channel needs the user id (GateSection requires it; a programmatic
    # CcxtConfig can still omit it): wait_live raises a typed InvalidRequest, nothing is dialled.
    from cqvx.errors import InvalidRequest
    from cqvx.secrets import Secret
    from cqvx.venues.ccxt import CcxtClient, CcxtConfig

    sim = SimVenue(quiet_sim_config(), clock=SimClock())
    async with fake_class("gate")(KEY, SECRET, sim=sim) as fake:
        config = CcxtConfig(
            "gate",
            Secret(KEY),
            Secret(SECRET),
            market_types=MARKET_TYPES["gate"],
            rest_url=fake.url,
            ws_url=fake.ws_url,
            rate_limit=False,
        )
        async with CcxtClient(config) as client:
            stream = client.subscribe_executions(["BTC-USDT-PERP"])
            try:
                with pytest.raises(InvalidRequest, match="uid"):
                    await asyncio.wait_for(stream.wait_live(), 10)
            finally:
                await stream.aclose()
        assert fake.ws_connects == 0


# What each login-first venue's ccxt client sends to log in (Gate signs each subscribe instead).
LOGIN = {"bybit": '"op":"auth"', "okx": '"op":"login"', "bitget": '"op":"login"'}


@pytest.mark.parametrize("venue", sorted(LOGIN))
async def test_the_adapters_execution_stream_is_live_only_after_the_login_is_answered(venue: str) -> None:
    # The fake answers the login late: a stream declared live on the written login frame alone (before
    # ccxt even writes the subscribe frame) would miss an order placed right after wait_live().
    from cqvx.secrets import Secret
    from cqvx.venues.ccxt import CcxtClient, CcxtConfig

    answered: list[bool] = []
    base = fake_class(venue)

    class SlowLogin(base):  # type: ignore[misc, valid-type]
        async def serve_ws(self, request: Any, on_text: Any) -> Any:
            async def slow(ws: Any, text: str) -> None:
                login = LOGIN[venue] in text.replace(" ", "")
                if login:
                    await asyncio.sleep(0.5)
                await on_text(ws, text)
                if login:
                    answered.append(True)

            return await super().serve_ws(request, slow)

    sim = SimVenue(quiet_sim_config(), clock=SimClock())
    async with SlowLogin(KEY, SECRET, PASSPHRASE, sim=sim) as fake:
        config = CcxtConfig(
            venue,
            Secret(KEY),
            Secret(SECRET),
            Secret(PASSPHRASE),
            market_types=MARKET_TYPES[venue],
            rest_url=fake.url,
            ws_url=fake.ws_url,
            rate_limit=False,
        )
        async with CcxtClient(config) as client:
            stream = client.subscribe_executions(["BTC-USDT-PERP"])
            try:
                await asyncio.wait_for(stream.wait_live(), 10)
                assert answered, "wait_live() returned before the venue answered the login"
                order = order_pb2.Order(
                    symbol="BTC-USDT-PERP",
                    client_order_id="live1",
                    side=order_pb2.ORDER_SIDE_BUY,
                    order_type=order_pb2.ORDER_TYPE_LIMIT,
                    quantity="0.01",
                    price="50000",
                )
                await client.place_order(order)
                async with asyncio.timeout(10):
                    seen = await anext(r async for r in stream if r.client_order_id == "live1")
                assert seen.order_status == order_pb2.ORDER_STATUS_OPEN
            finally:
                await stream.aclose()
