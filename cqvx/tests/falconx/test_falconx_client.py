"""The VenueClient side of FalconX against the fake: orders, lookups, balances, pairs, capabilities,
unsupported methods, a lost placement reply, and building the client from its config section."""

from __future__ import annotations

import json

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2, venue_pb2
from cqvx.client import SupportsInstruments, VenueClient
from cqvx.errors import InvalidRequest, NotFound, OrderRejected, Timeout, UnsupportedOperation
from cqvx.testing.fake_falconx import FakeClock, FakeFalconX
from cqvx.types import OrderFilter
from cqvx.venues import registry
from cqvx.venues.falconx import FalconXClient

from .conftest import API_KEY, PASSPHRASE, SECRET

ORDER = "/v1/order"


def _market(coid: str, side: int = order_pb2.ORDER_SIDE_BUY, **kw: str) -> order_pb2.Order:
    fields = {"quantity": "0.25", **kw}
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=side,  # type: ignore[arg-type]
        order_type=order_pb2.ORDER_TYPE_MARKET,
        **fields,  # type: ignore[arg-type]
    )


def _fok(coid: str, price: str) -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_FOK,
        quantity="0.1",
        price=price,
    )


async def test_capabilities_and_unsupported(client: FalconXClient) -> None:
    assert isinstance(client, VenueClient) and isinstance(client, SupportsInstruments)
    assert client.capabilities() == {venue_pb2.CAPABILITY_INSTRUMENTS, venue_pb2.CAPABILITY_RFQ}
    with pytest.raises(UnsupportedOperation):
        await client.get_order_book("BTC-USD")
    with pytest.raises(UnsupportedOperation):
        client.subscribe_order_book("BTC-USD")
    with pytest.raises(UnsupportedOperation):
        client.subscribe_trades("BTC-USD")
    with pytest.raises(UnsupportedOperation):
        await client.cancel_order(order_id="abc")


async def test_market_order_fills(client: FalconXClient, fake: FakeFalconX) -> None:
    report = await client.place_order(_market("cqx-m1"))
    assert report.execution_type == execution_pb2.EXECUTION_TYPE_TRADE
    assert report.order_status == order_pb2.ORDER_STATUS_FILLED
    assert report.client_order_id == "cqx-m1" and report.venue == "falconx"
    assert report.last_price == "50010.25" and report.last_quantity == "0.25"
    assert report.fee == "1.25" and report.fee_asset == "USD"
    body = json.loads(fake.requests_to(ORDER)[-1].body)
    assert body == {
        "token_pair": {"base_token": "BTC", "quote_token": "USD"},
        "quantity": {"token": "BTC", "value": "0.25"},
        "side": "buy",
        "client_order_id": "cqx-m1",
        "order_type": "market",
    }


async def test_quote_quantity_order(client: FalconXClient, fake: FakeFalconX) -> None:
    report = await client.place_order(
        _market("cqx-q1", order_pb2.ORDER_SIDE_SELL, quantity="", quote_quantity="1000")
    )
    assert report.order_status == order_pb2.ORDER_STATUS_FILLED
    assert json.loads(fake.requests_to(ORDER)[-1].body)["quantity"] == {"token": "USD", "value": "1000"}


async def test_limit_fok(client: FalconXClient, fake: FakeFalconX) -> None:
    report = await client.place_order(_fok("cqx-l1", "50020"))
    assert report.order_status == order_pb2.ORDER_STATUS_FILLED and report.order_price == "50020"
    body = json.loads(fake.requests_to(ORDER)[-1].body)
    assert body["order_type"] == "limit" and body["time_in_force"] == "fok" and body["limit_price"] == "50020"
    with pytest.raises(OrderRejected) as info:
        await client.place_order(_fok("cqx-l2", "49000"))
    assert info.value.code == "limit_price_not_met"


async def test_orders_falconx_does_not_take(client: FalconXClient, fake: FakeFalconX) -> None:
    gtc = _fok("cqx-g1", "50000")
    gtc.time_in_force = order_pb2.TIME_IN_FORCE_GTC
    with pytest.raises(UnsupportedOperation):
        await client.place_order(gtc)
    with pytest.raises(InvalidRequest):
        await client.place_order(_market("cqx-x", quantity="-1"))
    with pytest.raises(InvalidRequest):
        await client.place_order(_market("cqx-y", quantity="1", quote_quantity="1"))
    margin = _market("cqx-m", quantity="1")
    margin.margin = True  # spot margin: not offered, refused typed, never sent as a cash order
    with pytest.raises(UnsupportedOperation, match="no spot margin"):
        await client.place_order(margin)
    assert fake.requests_to(ORDER) == []


async def test_get_order_and_orders(client: FalconXClient, clock: FakeClock) -> None:
    report = await client.place_order(_market("cqx-g"))
    by_id = await client.get_order(order_id=report.order_id)
    fresh = FalconXClient(client.config, clock=clock)  # no local memory: the history is searched
    async with fresh:
        by_coid = await fresh.get_order(client_order_id="cqx-g")
        for o in (by_id, by_coid):
            assert o.order_id == report.order_id and o.client_order_id == "cqx-g"
            assert o.status == order_pb2.ORDER_STATUS_FILLED and o.filled_quantity == "0.25"
        with pytest.raises(NotFound):
            await fresh.get_order(client_order_id="cqx-never")
        assert await fresh.get_orders() == []  # nothing rests at FalconX
        done = await fresh.get_orders(OrderFilter(statuses=frozenset({order_pb2.ORDER_STATUS_FILLED})))
        assert [o.order_id for o in done] == [report.order_id]


async def test_lost_placement_reply_resolved_from_history(client: FalconXClient, fake: FakeFalconX) -> None:
    fake.reset(ORDER, after=True)
    report = await client.place_order(_market("cqx-lost"))
    assert report.order_status == order_pb2.ORDER_STATUS_FILLED and report.client_order_id == "cqx-lost"
    assert len(fake.requests_to(ORDER)) == 1 and fake.orders_with_client_id("cqx-lost") == 1


async def test_unprocessed_placement_stays_unresolved(client: FalconXClient, fake: FakeFalconX) -> None:
    fake.fail(ORDER, status=502)
    with pytest.raises(Timeout) as info:
        await client.place_order(_market("cqx-unk"))
    assert not info.value.retry_safe
    assert len(fake.requests_to(ORDER)) == 1, "a placement is never re-sent"


async def test_balances_and_pairs(client: FalconXClient) -> None:
    balances = {b.asset: b for b in await client.get_balances()}
    assert balances["ETH"].total == "-2.5" and balances["USD"].available == "1000000"
    assert all(b.account_id == "api" for b in balances.values())
    assert [i.symbol for i in await client.get_instruments()] == ["BTC-USD", "ETH-USD"]
    assert [i.symbol for i in await client.get_instruments(["ETH-USD"])] == ["ETH-USD"]


async def test_health(client: FalconXClient, fake: FakeFalconX) -> None:
    ok = await client.health()
    assert ok.reachable and ok.latency_ms >= 0 and ok.venue == "falconx"
    fake.fail("/v1/pairs", times=None, status=503)
    down = await client.health()
    assert not down.reachable and down.last_error


async def test_quote_budget_is_shared_per_key(fake: FakeFalconX, clock: FakeClock) -> None:
    from .conftest import make_config

    a = FalconXClient(make_config(fake.url), clock=clock)
    b = FalconXClient(make_config(fake.url), clock=clock)
    assert a._quotes_bucket is b._quotes_bucket and a._private is b._private
    await a.aclose()
    await b.aclose()


def test_built_from_its_config_section() -> None:
    env = {"FX_KEY": API_KEY, "FX_SECRET": SECRET, "FX_PASS": PASSPHRASE}
    raw = {
        "credentials": {
            "api_key": {"env": "FX_KEY"},
            "secret": {"env": "FX_SECRET"},
            "passphrase": {"env": "FX_PASS"},
        },
        "rest_url": "http://127.0.0.1:1",
        "rate_limits": {"quotes_per_second": 1},
    }
    client = registry.build("falconx", raw, path="venues.fx", environ=env)
    assert isinstance(client, FalconXClient)
    assert client.config.quotes_per_second == 1 and client.config.api_key == API_KEY
    assert SECRET not in repr(client) and SECRET not in repr(client.config)
    with pytest.raises(registry.VenueConfigError) as info:
        registry.build(
            "falconx",
            {"credentials": {"api_key": "k", "secret": {"env": "NOPE"}, "passphrase": "p"}},
            path="venues.fx",
            environ={},
        )
    assert "venues.fx.credentials.secret" in str(info.value)
    with pytest.raises(registry.VenueConfigError) as bad:
        registry.build(
            "falconx", {"credentials": {"api_key": "k", "secret": "not base64!", "passphrase": "p"}}
        )
    assert "not base64!" not in str(bad.value)


async def test_an_unfilled_order_reply_is_a_dead_order(client: FalconXClient, fake: FakeFalconX) -> None:
    """Market and FOK orders never rest: a success reply without a fill is EXPIRED, never OPEN."""
    fake.tamper = lambda reply: reply.update(is_filled=False, side_executed=None)
    report = await client.place_order(_fok("cqx-dead", "50020"))
    assert report.order_status == order_pb2.ORDER_STATUS_EXPIRED
    assert report.execution_type == execution_pb2.EXECUTION_TYPE_EXPIRED
    assert report.cumulative_quantity == "0"
