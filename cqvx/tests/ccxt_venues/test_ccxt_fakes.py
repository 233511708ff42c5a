"""The ccxt adapter against each thinner fake (bybit, okx, bitget, gate): what the conformance suite
does not cover: signatures, id-only placement acks, Gate's reusable text, and garbage on the wire."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import order_pb2
from cqvx.errors import VenueError
from cqvx.secrets import Secret
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.harness import FAKES, MARKET_TYPES, fake_class
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.sim import SimClock, SimVenue

KEY, SECRET, PASSPHRASE = "k-0123", "s-4567-never-logged", "p-89"
# Where each venue reads an order back by id (the read that follows an id-only ack).
READ_BACK = {
    "bybit": "/v5/order/realtime",
    "okx": "/api/v5/trade/order",
    "bitget": "/api/v2/mix/order/detail",
}
# One private path per venue, for garbage requests.
PRIVATE = {
    "bybit": "/v5/order/create",
    "okx": "/api/v5/trade/order",
    "bitget": "/api/v2/mix/order/place-order",
    "gate": "/api/v4/futures/usdt/orders",
}


async def _fake(venue: str) -> SimFake:
    fake = fake_class(venue)(KEY, SECRET, PASSPHRASE, sim=SimVenue(quiet_sim_config(), clock=SimClock()))
    await fake.start()
    return fake


@pytest.fixture(params=FAKES)
async def venue_fake(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, SimFake]]:
    fake = await _fake(request.param)
    try:
        yield request.param, fake
    finally:
        await fake.stop()


def _client(venue: str, fake: SimFake, secret: str = SECRET) -> CcxtClient:
    config = CcxtConfig(
        venue,
        Secret(KEY),
        Secret(secret),
        Secret(PASSPHRASE),
        market_types=MARKET_TYPES[venue],
        rest_url=fake.url,
        read_retries=0,
        timeout_s=5,
    )
    return CcxtClient(config)


def _resting(venue: str, coid: str) -> order_pb2.Order:
    return order_pb2.Order(
        symbol="BTC-USDT-PERP",
        client_order_id=("t-" + coid) if venue == "gate" else coid,
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.01",
        price="50000",
    )


async def test_a_wrong_secret_is_refused_by_the_fake_and_places_nothing(
    venue_fake: tuple[str, SimFake],
) -> None:
    venue, fake = venue_fake
    async with _client(venue, fake) as good:  # markets (some venues sign the currency call)
        await good.get_orders()
    assert fake.bad_signatures == 0
    bad = _client(venue, fake, secret="wrong")
    try:
        with pytest.raises(VenueError):
            await bad.place_order(_resting(venue, "bad1"))
    finally:
        await bad.aclose()
    assert fake.bad_signatures >= 1
    assert fake.venue_order_count(_resting(venue, "bad1").client_order_id) == 0


@pytest.mark.parametrize("venue", sorted(READ_BACK))
async def test_an_ack_whose_read_back_fails_is_still_an_accepted_placement(venue: str) -> None:
    fake = await _fake(venue)
    try:
        async with _client(venue, fake) as client:
            fake.fail(READ_BACK[venue], times=1, status=503, method="GET")
            report = await client.place_order(_resting(venue, "ack1"))
            assert report.order_status == order_pb2.ORDER_STATUS_PENDING_NEW  # accepted, state not yet read
            assert report.order_id and report.order_quantity == "0.01"
            held = await client.get_order(symbol="BTC-USDT-PERP", order_id=report.order_id)
            assert held.status == order_pb2.ORDER_STATUS_OPEN and held.client_order_id == "ack1"
        assert fake.venue_order_count("ack1") == 1
    finally:
        await fake.stop()


async def test_gate_accepts_a_reused_text_as_a_second_order() -> None:
    # quirks.py: Gate documents no uniqueness for "text", so no code maps to DuplicateOrder there.
    fake = await _fake("gate")
    try:
        async with _client("gate", fake) as client:
            first = await client.place_order(_resting("gate", "twice"))
            second = await client.place_order(_resting("gate", "twice"))
            assert first.order_id != second.order_id
        assert fake.venue_order_count("t-twice") == 2
    finally:
        await fake.stop()


async def test_contract_venues_carry_contracts_on_the_wire() -> None:
    # OKX ctVal 0.01 BTC and Gate quanto_multiplier 0.0001 BTC: 0.01 BTC is 1 and 100 contracts.
    for venue, contracts in (("okx", "1"), ("gate", "100")):
        fake = await _fake(venue)
        try:
            async with _client(venue, fake) as client:
                report = await client.place_order(_resting(venue, "ct1"))
                assert report.order_quantity == "0.01"
            body = next(r.body for r in fake.requests if r.method == "POST" and b"ct1" in r.body)
            assert f'"{contracts}"'.encode() in body or f":{contracts},".encode() in body, body
            assert Decimal(contracts) * fake.contract_size == Decimal("0.01")
        finally:
            await fake.stop()


_HEADERS = ["X-BAPI-API-KEY", "OK-ACCESS-KEY", "ACCESS-KEY", "KEY", "X-BAPI-SIGN", "SIGN", "Timestamp"]


def _garbage() -> list[tuple[bytes, dict[str, str]]]:
    """Hypothesis-drawn bodies and auth headers (drawn here, sent by the async test)."""
    drawn: list[tuple[bytes, dict[str, str]]] = []

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode),
        headers=st.dictionaries(
            st.sampled_from(_HEADERS), st.text(alphabet="abc123-", max_size=12), max_size=3
        ),
    )
    def draw(body: bytes, headers: dict[str, str]) -> None:
        drawn.append((body, headers))

    draw()
    return drawn


@pytest.mark.parametrize("venue", FAKES)
async def test_garbage_requests_get_the_venues_error_never_a_crash(venue: str) -> None:
    fake = await _fake(venue)
    try:
        async with aiohttp.ClientSession() as session:
            for body, headers in [*_garbage(), (KEY.encode(), {})]:
                async with session.post(fake.url + PRIVATE[venue], data=body, headers=headers) as r:
                    assert r.status < 500, await r.text()
                    assert isinstance(await r.json(content_type=None), dict)
        assert not fake.sim.engine.orders
    finally:
        await fake.stop()


FIXTURES = Path(__file__).parent / "fixtures"


def _fixture(name: str, *path: str | int) -> dict[str, Any]:
    node: Any = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    for key in path:
        node = node[key]
    assert isinstance(node, dict)
    return node


async def _records(venue: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(what the fake sends, the documented sample) per record, the fake holding a position."""
    async with aiohttp.ClientSession() as session:
        fake = await _fake(venue)
        try:
            async with _client(venue, fake) as client:
                await client.place_order(_resting(venue, "shape1"))
                market = _resting(venue, "shape2")
                market.order_type, market.price = order_pb2.ORDER_TYPE_MARKET, ""
                await client.place_order(market)
                placed = await fake.sim.get_order(symbol="BTC-USDT-PERP", client_order_id="shape1")
                get = _signed_getter(session, venue, fake)
                if venue == "bybit":
                    return {
                        "order": (
                            (await get("/v5/order/realtime?category=linear&symbol=BTCUSDT"))["result"][
                                "list"
                            ][0],
                            _fixture("bybit_orders_realtime.json", "result", "list", 0),
                        ),
                        "stream order": (
                            fake.order_push(placed)["data"][0],
                            _fixture("bybit_ws_order.json", "data", 0),
                        ),
                        "position": (
                            (await get("/v5/position/list?category=linear"))["result"]["list"][0],
                            _fixture("bybit_positions.json", "result", "list", 0),
                        ),
                        "wallet": (
                            (await get("/v5/account/wallet-balance?accountType=UNIFIED"))["result"]["list"][
                                0
                            ],
                            _fixture("bybit_wallet_balance.json", "result", "list", 0),
                        ),
                        "instrument": (
                            (await get("/v5/market/instruments-info?category=linear"))["result"]["list"][0],
                            _fixture("bybit_instruments_linear.json", "result", "list", 0),
                        ),
                    }
                return {
                    "order": (
                        (await get("/api/v5/trade/orders-pending?instType=SWAP"))["data"][0],
                        _fixture("okx_orders_pending.json", "data", 0),
                    ),
                    "stream order": (
                        fake.order_push(placed)["data"][0],
                        _fixture("okx_ws_orders.json", "data", 0),
                    ),
                    "position": (
                        (await get("/api/v5/account/positions?instType=SWAP"))["data"][0],
                        _fixture("okx_positions.json", "data", 0),
                    ),
                    "balance": (
                        (await get("/api/v5/account/balance"))["data"][0],
                        _fixture("okx_account_balance.json", "data", 0),
                    ),
                    "instrument": (
                        (await get("/api/v5/public/instruments?instType=SWAP"))["data"][0],
                        _fixture("okx_instruments_swap.json", "data", 0),
                    ),
                }
        finally:
            await fake.stop()


def _sign_headers(venue: str, path_qs: str, secret: str = SECRET) -> dict[str, str]:
    """A GET's auth headers by the venue's documented scheme, written here (not the fake's code)."""
    query = path_qs.partition("?")[2]
    if venue == "bybit":  # hex HMAC-SHA256(ts + key + recvWindow + query)
        stamp, window = str(int(time.time() * 1000)), "5000"
        sign = hmac.new(secret.encode(), (stamp + KEY + window + query).encode(), hashlib.sha256).hexdigest()
        return {
            "X-BAPI-API-KEY": KEY,
            "X-BAPI-TIMESTAMP": stamp,
            "X-BAPI-RECV-WINDOW": window,
            "X-BAPI-SIGN": sign,
        }
    if venue in ("okx", "bitget"):  # base64 HMAC-SHA256(ts + METHOD + path?query + body)
        if venue == "okx":
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        else:
            stamp = str(int(time.time() * 1000))
        digest = hmac.new(secret.encode(), (stamp + "GET" + path_qs).encode(), hashlib.sha256).digest()
        prefix = "OK-ACCESS-" if venue == "okx" else "ACCESS-"
        return {
            prefix + "KEY": KEY,
            prefix + "PASSPHRASE": PASSPHRASE,
            prefix + "TIMESTAMP": stamp,
            prefix + "SIGN": base64.b64encode(digest).decode(),
        }
    # gate: hex HMAC-SHA512(METHOD\npath\nquery\nhex sha512(body)\nts)
    stamp, path = str(int(time.time())), path_qs.partition("?")[0]
    text = "\n".join(("GET", path, query, hashlib.sha512(b"").hexdigest(), stamp))
    return {
        "KEY": KEY,
        "Timestamp": stamp,
        "SIGN": hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest(),
    }


def _signed_getter(session: aiohttp.ClientSession, venue: str, fake: SimFake) -> Any:
    async def get(path_qs: str) -> Any:
        async with session.get(fake.url + path_qs, headers=_sign_headers(venue, path_qs)) as r:
            assert r.status == 200
            return await r.json()

    return get


# A signed read per venue; hypothesis adds query parameters the venue ignores (they are still signed).
SIGNED_READ = {
    "bybit": "/v5/order/realtime?category=linear",
    "okx": "/api/v5/trade/orders-pending?instType=SWAP",
    "bitget": "/api/v2/mix/order/orders-pending?productType=USDT-FUTURES",
    "gate": "/api/v4/futures/usdt/orders?status=open",
}
OK_CODE = {"bybit": ("retCode", 0), "okx": ("code", "0"), "bitget": ("code", "00000")}


def _extras() -> list[dict[str, str]]:
    drawn: list[dict[str, str]] = []

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        st.dictionaries(
            st.from_regex(r"x[a-z]{1,6}", fullmatch=True),
            st.from_regex(r"[A-Za-z0-9]{0,8}", fullmatch=True),
            max_size=3,
        )
    )
    def draw(extra: dict[str, str]) -> None:
        drawn.append(extra)

    draw()
    return drawn


@pytest.mark.parametrize("venue", FAKES)
async def test_the_fake_accepts_exactly_the_correctly_signed_requests(venue: str) -> None:
    fake = await _fake(venue)
    try:
        async with aiohttp.ClientSession() as session:
            for extra in _extras():
                path_qs = SIGNED_READ[venue] + "".join(f"&{k}={v}" for k, v in extra.items())
                async with session.get(fake.url + path_qs, headers=_sign_headers(venue, path_qs)) as r:
                    assert r.status == 200, await r.text()
                    body = await r.json()
                    if venue in OK_CODE:
                        assert body[OK_CODE[venue][0]] == OK_CODE[venue][1], body
                before = fake.bad_signatures
                headers = _sign_headers(venue, path_qs, secret=SECRET + "x")
                async with session.get(fake.url + path_qs, headers=headers) as r:
                    body = await r.json()
                    assert r.status != 200 or body.get(OK_CODE.get(venue, ("", ""))[0]) not in (
                        0,
                        "0",
                        "00000",
                    )
                assert fake.bad_signatures == before + 1
    finally:
        await fake.stop()


@pytest.mark.parametrize("venue", ["bybit", "okx"])
async def test_records_carry_every_field_of_the_documented_samples(venue: str) -> None:
    records = await _records(venue)
    for name, (sent, sample) in records.items():
        missing = sorted(set(sample) - set(sent))
        assert not missing, f"{venue} {name}: the fake leaves out {missing}"
        for key, value in sample.items():  # and each field has the sample's JSON type (null: any)
            if value is not None and sent[key] is not None:
                assert type(sent[key]) is type(value), f"{venue} {name}.{key}: {sent[key]!r} vs {value!r}"
