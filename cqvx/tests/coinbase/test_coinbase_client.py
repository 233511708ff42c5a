"""The REST client against the wire-level fake: auth schemes, orders, errors, pagination, market data."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import jwt as pyjwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cqc.markets.v1 import candle_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    Timeout,
    UnsupportedOperation,
)
from cqvx.secrets import Secret
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.types import OrderFilter
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig
from cqvx.venues.coinbase.auth import detect_key_kind

ORDERS = "/api/v3/brokerage/orders"
KEY_NAME = "organizations/org-test/apiKeys/key-test"
MakeConfig = Callable[..., CoinbaseConfig]


def limit(coid: str, price: str = "40000", qty: str = "0.01", **kw: Any) -> order_pb2.Order:
    fields: dict[str, object] = dict(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_GTC,
        quantity=qty,
        price=price,
    )
    fields.update(kw)
    return order_pb2.Order(**fields)  # type: ignore[arg-type]


# --- auth -----------------------------------------------------------------------------------------


async def test_es256_jwt_per_request(
    fake: FakeCoinbase, client: CoinbaseClient, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    await client.get_balances()
    await client.get_balances()
    tokens = [r.headers["Authorization"][7:] for r in fake.requests_to("/api/v3/brokerage/accounts")]
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    headers = [pyjwt.get_unverified_header(t) for t in tokens]
    assert all(h["alg"] == "ES256" and h["kid"] == KEY_NAME and len(h["nonce"]) == 64 for h in headers)
    assert headers[0]["nonce"] != headers[1]["nonce"]
    claims = pyjwt.decode(tokens[0], ec_key.public_key(), algorithms=["ES256"])
    # uri = METHOD host/path, never the query string (venues.md section 1.2).
    assert claims["uri"] == "GET api.coinbase.com/api/v3/brokerage/accounts"
    assert claims["iss"] == "cdp" and claims["sub"] == KEY_NAME and claims["exp"] - claims["nbf"] == 120
    assert fake.auth_failures == []


async def test_ed25519_key(fake: FakeCoinbase, ed_secret: str, make_config: MakeConfig) -> None:
    name = "organizations/org-test/apiKeys/key-ed"
    async with CoinbaseClient(make_config(fake, key_name=name, secret=ed_secret)) as c:
        assert c._auth is not None and c._auth.algorithm == "EdDSA"
        assert [b.asset for b in await c.get_balances()] == ["BTC", "ETH", "USD"]
    assert fake.auth_failures == []


async def test_legacy_hmac_selected_by_key_kind(fake: FakeCoinbase, make_config: MakeConfig) -> None:
    assert detect_key_kind("legacy-key", Secret("legacy-secret")) == "legacy"
    async with CoinbaseClient(make_config(fake, key_name="legacy-key", secret="legacy-secret")) as c:
        rep = await c.place_order(limit("hmac-1"))
        assert rep.order_id
    req = fake.requests_to(ORDERS)[0]
    assert "Authorization" not in req.headers and req.headers["CB-ACCESS-KEY"] == "legacy-key"
    assert len(req.headers["CB-ACCESS-SIGN"]) == 64 and fake.auth_failures == []


async def test_wrong_key_is_authentication_error(fake: FakeCoinbase, make_config: MakeConfig) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    async with CoinbaseClient(make_config(fake, secret=pem)) as c:
        with pytest.raises(AuthenticationError):
            await c.get_balances()
    assert fake.auth_failures


def test_repr_never_shows_the_secret(ec_pem: str) -> None:
    cfg = CoinbaseConfig().with_credentials(KEY_NAME, ec_pem)
    text = repr(cfg) + repr(CoinbaseClient(cfg))
    assert "PRIVATE" not in text and ec_pem[40:60] not in text


# --- orders ---------------------------------------------------------------------------------------


async def test_place_get_cancel(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    rep = await client.place_order(limit("c-1"))
    assert rep.execution_type == execution_pb2.EXECUTION_TYPE_NEW and rep.client_order_id == "c-1"
    body = msgspec.json.decode(fake.requests_to(ORDERS)[0].body)
    assert body == {
        "client_order_id": "c-1",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {
            "limit_limit_gtc": {"base_size": "0.01", "limit_price": "40000", "post_only": False}
        },
    }
    got = await client.get_order(order_id=rep.order_id)
    assert got.status == order_pb2.ORDER_STATUS_OPEN and got.price == "40000"
    cancelled = await client.cancel_order(client_order_id="c-1")
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    assert (
        fake.requests_to("/api/v3/brokerage/orders/batch_cancel")[0].body
        == b'{"order_ids":["%s"]}' % rep.order_id.encode()
    )
    with pytest.raises(NotFound):
        await client.cancel_order(order_id="00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize(
    ("fields", "key", "leg"),
    [
        (
            dict(
                order_type=order_pb2.ORDER_TYPE_MARKET,
                time_in_force=0,
                quantity="",
                price="",
                quote_quantity="100",
            ),
            "market_market_ioc",
            {"quote_size": "100"},
        ),
        (
            dict(
                order_type=order_pb2.ORDER_TYPE_MARKET,
                side=order_pb2.ORDER_SIDE_SELL,
                price="",
                time_in_force=0,
            ),
            "market_market_ioc",
            {"base_size": "0.01"},
        ),
        (
            dict(time_in_force=order_pb2.TIME_IN_FORCE_FOK),
            "limit_limit_fok",
            {"base_size": "0.01", "limit_price": "40000"},
        ),
        (
            dict(time_in_force=order_pb2.TIME_IN_FORCE_IOC),
            "sor_limit_ioc",
            {"base_size": "0.01", "limit_price": "40000"},
        ),
        (
            dict(post_only=True),
            "limit_limit_gtc",
            {"base_size": "0.01", "limit_price": "40000", "post_only": True},
        ),
        (
            dict(
                order_type=order_pb2.ORDER_TYPE_STOP_LIMIT,
                stop_price="39000.50",
                side=order_pb2.ORDER_SIDE_SELL,
            ),
            "stop_limit_stop_limit_gtc",
            {
                "base_size": "0.01",
                "limit_price": "40000",
                "stop_price": "39000.5",
                "stop_direction": "STOP_DIRECTION_STOP_DOWN",
            },
        ),
    ],
)
async def test_order_configurations(
    fake: FakeCoinbase, client: CoinbaseClient, fields: dict[str, Any], key: str, leg: dict[str, object]
) -> None:
    await client.place_order(limit("cfg", **fields))
    body = msgspec.json.decode(fake.requests_to(ORDERS)[-1].body)
    assert body["order_configuration"] == {key: leg}


async def test_gtd_needs_and_sends_end_time(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    with pytest.raises(InvalidRequest):
        await client.place_order(limit("gtd-0", time_in_force=order_pb2.TIME_IN_FORCE_GTD))
    order = limit("gtd-1", time_in_force=order_pb2.TIME_IN_FORCE_GTD)
    order.expires_at.seconds = 1893456000
    await client.place_order(order)
    body = msgspec.json.decode(fake.requests_to(ORDERS)[-1].body)
    assert body["order_configuration"]["limit_limit_gtd"]["end_time"] == "2030-01-01T00:00:00Z"


async def test_local_validation_never_reaches_the_venue(client: CoinbaseClient, fake: FakeCoinbase) -> None:
    for bad in (
        limit("v1", qty="0"),
        limit("v2", price="-1"),
        limit("v3", qty="abc"),
        limit("v4", side=order_pb2.ORDER_SIDE_UNSPECIFIED),
        limit("v5", symbol="btc/usd"),
        limit("v6", post_only=True, time_in_force=order_pb2.TIME_IN_FORCE_IOC),
        limit(
            "v7",
            order_type=order_pb2.ORDER_TYPE_MARKET,
            side=order_pb2.ORDER_SIDE_SELL,
            quote_quantity="5",
            quantity="",
        ),
    ):
        with pytest.raises(InvalidRequest):
            await client.place_order(bad)
    with pytest.raises(UnsupportedOperation):
        await client.place_order(limit("v8", order_type=order_pb2.ORDER_TYPE_TRAILING_STOP))
    with pytest.raises(UnsupportedOperation, match="no spot margin"):  # never sent as a cash order
        await client.place_order(limit("v9", margin=True))
    assert fake.requests_to(ORDERS) == []


async def test_rejections_map_through_the_table(client: CoinbaseClient, fake: FakeCoinbase) -> None:
    with pytest.raises(OrderRejected) as info:  # post-only would cross (best ask 50010)
        await client.place_order(limit("r1", price="50020", post_only=True))
    assert info.value.code == "INVALID_LIMIT_PRICE_POST_ONLY"
    with pytest.raises(InsufficientFunds):
        await client.place_order(limit("r2", qty="100"))
    with pytest.raises(InvalidRequest) as prec:
        await client.place_order(limit("r3", price="40000.001"))
    assert prec.value.code == "INVALID_PRICE_PRECISION"
    assert await client.get_orders() == []


async def test_duplicate_resolved_by_fetching(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    first = await client.place_order(limit("dup-1"))
    fake.duplicate_mode = "reject"
    again = await client.place_order(limit("dup-1"))
    assert again.order_id == first.order_id and again.execution_type == execution_pb2.EXECUTION_TYPE_STATUS
    with pytest.raises(DuplicateOrder):  # same id, different order: never silently "resolved"
        await client.place_order(limit("dup-1", side=order_pb2.ORDER_SIDE_SELL))
    assert len(fake.orders) == 1


async def test_placement_retried_after_5xx_is_idempotent(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    fake.fail(ORDERS, times=2, status=503)
    rep = await client.place_order(limit("retry-1"))
    assert len(fake.requests_to(ORDERS)) == 3 and len(fake.orders) == 1
    assert {msgspec.json.decode(r.body)["client_order_id"] for r in fake.requests_to(ORDERS)} == {"retry-1"}
    assert rep.order_id in fake.orders


async def test_unknown_outcome_is_resolved_by_lookup(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    await client.place_order(limit("seen-1"))  # the venue has this order
    # Every attempt now dies without an answer; the order from the first call is found by its id.
    client._coid_index.clear()
    fake.reset(ORDERS, times=10, method="POST")
    rep = await client.place_order(limit("seen-1"))
    assert rep.execution_type == execution_pb2.EXECUTION_TYPE_STATUS and rep.client_order_id == "seen-1"
    fake.clear_faults()
    fake.reset(ORDERS, times=10, method="POST")
    with pytest.raises(Timeout) as info:
        await client.place_order(limit("never-1"))
    assert not info.value.retry_safe
    assert "never-1" not in fake.by_client_id


async def test_market_order_fills_and_fills_listed(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    rep = await client.place_order(
        limit("m1", order_type=order_pb2.ORDER_TYPE_MARKET, price="", time_in_force=0)
    )
    order = await client.get_order(order_id=rep.order_id)
    assert order.status == order_pb2.ORDER_STATUS_FILLED and order.average_fill_price == "50010"
    fills = await client.get_fills(order_id=rep.order_id)
    assert (
        len(fills) == 1
        and fills[0].last_quantity == "0.01"
        and fills[0].liquidity == execution_pb2.LIQUIDITY_SIDE_TAKER
    )


async def test_pagination_reads_every_page(fake: FakeCoinbase, make_config: MakeConfig, ec_pem: str) -> None:
    fake.max_page = 2
    fake.available.update({f"C{i}": Decimal(i) for i in range(5)})
    async with CoinbaseClient(make_config(fake, secret=ec_pem)) as c:
        assert len(await c.get_balances()) == 8
        for i in range(5):
            await c.place_order(limit(f"p-{i}"))
        await c.cancel_order(client_order_id="p-0")
        open_orders = await c.get_orders(OrderFilter(symbol="BTC-USD"))
        assert sorted(o.client_order_id for o in open_orders) == ["p-1", "p-2", "p-3", "p-4"]
        everything = await c.get_orders(OrderFilter(statuses=frozenset({order_pb2.ORDER_STATUS_CANCELLED})))
        assert [o.client_order_id for o in everything] == ["p-0"]
        assert len(await c.get_orders(OrderFilter(limit=3))) == 3
    cursors = [r.path_qs for r in fake.requests_to("/api/v3/brokerage/accounts")]
    assert any("cursor=2" in q for q in cursors) and any("cursor=6" in q for q in cursors)


async def test_batch_cancel_per_order_results(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    a = await client.place_order(limit("b-1"))
    m = await client.place_order(
        limit("b-2", order_type=order_pb2.ORDER_TYPE_MARKET, price="", time_in_force=0)
    )
    refs = [
        order_pb2.OrderRef(order_id=a.order_id),
        order_pb2.OrderRef(order_id=m.order_id),
        order_pb2.OrderRef(client_order_id="nope"),
    ]
    res = await client.cancel_orders(refs)
    assert isinstance(res[0], order_pb2.Order) and res[0].status == order_pb2.ORDER_STATUS_CANCELLED
    assert isinstance(res[1], NotFound) and res[1].code == "ORDER_IS_FULLY_FILLED"
    assert isinstance(res[2], NotFound)


# --- market data ----------------------------------------------------------------------------------


async def test_market_data(client: CoinbaseClient, fake: FakeCoinbase) -> None:
    inst = await client.get_instruments(["BTC-USD"])
    assert [i.symbol for i in inst] == ["BTC-USD"] and inst[0].tick_size == "0.01"
    book = await client.get_order_book("BTC-USD", 1)
    assert [(lv.price, lv.quantity) for lv in book.bids] == [("49990", "1.5")] and len(book.asks) == 1
    (bba,) = await client.get_best_bid_ask(["BTC-USD"])
    assert (bba.bid, bba.ask) == ("49990", "50010")
    await fake.push_trade("BTC-USD", "50000", "0.1", "BUY")
    (trade,) = await client.get_market_trades("BTC-USD", 5)
    assert trade.price == "50000" and trade.symbol == "BTC-USD"
    price = await client.get_latest_price("BTC-USD")
    assert (price.last, price.bid, price.ask) == ("50000", "49990", "50010")
    candles = await client.get_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1HOUR, limit=3)
    assert len(candles) == 3 and candles[0].open_time.seconds < candles[-1].open_time.seconds
    with pytest.raises(InvalidRequest):
        await client.get_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1WEEK)
    assert (await client.health()).reachable


async def test_public_endpoints_without_keys(fake: FakeCoinbase, make_config: MakeConfig) -> None:
    async with CoinbaseClient(make_config(fake)) as c:
        book = await c.get_order_book("ETH-USD", 5)
        assert book.bids[0].price == "2999"
        assert [i.symbol for i in await c.get_instruments()] == ["BTC-USD", "ETH-USD"]
        with pytest.raises(InvalidRequest):
            await c.get_balances()
    assert {r.path for r in fake.requests} <= {
        "/api/v3/brokerage/market/product_book",
        "/api/v3/brokerage/market/products",
    }
    assert all("Authorization" not in r.headers for r in fake.requests)
