"""PrimeClient against the fake: order kinds on the wire, idempotency, pagination, fills, preview."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cqc.venues.v1 import order_pb2, venue_pb2
from cqvx.client import SupportsAlgoOrders, SupportsInstruments, SupportsRfq, capabilities_of
from cqvx.errors import (
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    Timeout,
    UnsupportedOperation,
)
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.types import AlgoParams, OrderFilter
from cqvx.venues.prime import PrimeClient

from .conftest import PORTFOLIO, make_config

CREATE = f"/v1/portfolios/{PORTFOLIO}/order"


def _limit(coid: str = "", price: str = "10000", quantity: str = "0.01", **kw: object) -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity=quantity,
        price=price,
        **kw,  # type: ignore[arg-type]
    )


def _sent(fake: FakePrime) -> dict[str, object]:
    body: dict[str, object] = json.loads(fake.requests_to(CREATE, "POST")[-1].body)
    return body


def test_capabilities() -> None:
    c = PrimeClient()
    assert (
        isinstance(c, SupportsRfq)
        and isinstance(c, SupportsInstruments)
        and isinstance(c, SupportsAlgoOrders)
    )
    caps = capabilities_of(c)
    assert venue_pb2.CAPABILITY_RFQ in caps and venue_pb2.CAPABILITY_INSTRUMENTS in caps
    assert c.algo_strategies() == {"TWAP", "VWAP"}


async def test_client_order_id_always_sent(client: PrimeClient, fake: FakePrime) -> None:
    report = await client.place_order(_limit())
    body = _sent(fake)
    assert body["client_order_id"] and body["client_order_id"] == report.client_order_id
    assert body["portfolio_id"] == PORTFOLIO and body["time_in_force"] == "GOOD_UNTIL_CANCELLED"
    assert report.order_status == order_pb2.ORDER_STATUS_PENDING_NEW


@pytest.mark.parametrize(
    ("tif", "wire"),
    [
        (order_pb2.TIME_IN_FORCE_IOC, "IMMEDIATE_OR_CANCEL"),
        (order_pb2.TIME_IN_FORCE_FOK, "FILL_OR_KILL"),
        (order_pb2.TIME_IN_FORCE_GTC, "GOOD_UNTIL_CANCELLED"),
    ],
)
async def test_time_in_force_on_the_wire(client: PrimeClient, fake: FakePrime, tif: int, wire: str) -> None:
    await client.place_order(_limit(time_in_force=tif))
    assert _sent(fake)["time_in_force"] == wire


async def test_gtd_post_only_and_stop_limit(client: PrimeClient, fake: FakePrime) -> None:
    gtd = _limit(time_in_force=order_pb2.TIME_IN_FORCE_GTD, post_only=True)
    gtd.expires_at.FromDatetime(datetime(2030, 1, 1, tzinfo=UTC))
    await client.place_order(gtd)
    body = _sent(fake)
    assert body["time_in_force"] == "GOOD_UNTIL_DATE_TIME" and body["expiry_time"] == "2030-01-01T00:00:00Z"
    assert body["post_only"] is True
    stop = _limit(stop_price="9000")
    stop.order_type = order_pb2.ORDER_TYPE_STOP_LIMIT
    await client.place_order(stop)
    body = _sent(fake)
    assert body["type"] == "STOP_LIMIT" and body["stop_price"] == "9000"
    with pytest.raises(InvalidRequest):
        await client.place_order(_limit(time_in_force=order_pb2.TIME_IN_FORCE_IOC, post_only=True))


async def test_a_margin_order_is_refused_and_nothing_sent(client: PrimeClient, fake: FakePrime) -> None:
    with pytest.raises(UnsupportedOperation, match="no spot margin"):
        await client.place_order(_limit("margin-1", margin=True))
    assert fake.requests_to(CREATE, "POST") == []


async def test_market_and_block(client: PrimeClient, fake: FakePrime) -> None:
    market = order_pb2.Order(
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_SELL,
        order_type=order_pb2.ORDER_TYPE_MARKET,
        quantity="0.1",
    )
    await client.place_order(market)
    assert _sent(fake)["type"] == "MARKET" and "limit_price" not in _sent(fake)
    market.venue_extras["order_type"] = "BLOCK"
    await client.place_order(market)
    assert _sent(fake)["type"] == "BLOCK"
    with pytest.raises(UnsupportedOperation):
        await client.place_order(
            order_pb2.Order(
                symbol="BTC-USD",
                side=order_pb2.ORDER_SIDE_BUY,
                order_type=order_pb2.ORDER_TYPE_TRAILING_STOP,
                quantity="1",
            )
        )


async def test_twap_with_start_expiry_and_child_fills(
    client: PrimeClient, fake: FakePrime, clock: FakeClock
) -> None:
    start = datetime(2030, 1, 1, 10, tzinfo=UTC)
    report = await client.place_algo_order(
        _limit("twap-1", price="60000"), AlgoParams("TWAP", start=start, expiry=start + timedelta(hours=2))
    )
    body = _sent(fake)
    assert (body["type"], body["start_time"], body["expiry_time"]) == (
        "TWAP",
        "2030-01-01T10:00:00Z",
        "2030-01-01T12:00:00Z",
    )
    # The fake plays the algorithm: two child fills of the parent.
    fake.state.child_fill(report.order_id, Decimal("0.004"), Decimal("50000"), clock.iso())
    fake.state.child_fill(report.order_id, Decimal("0.006"), Decimal("50010"), clock.iso())
    fills = await client.get_order_fills(report.order_id)
    assert [f.last_quantity for f in fills] == ["0.004", "0.006"]
    assert len({f.trade_id for f in fills}) == 2
    order = await client.get_order(order_id=report.order_id)
    assert order.status == order_pb2.ORDER_STATUS_FILLED and order.venue_extras["order_type"] == "TWAP"
    assert Decimal(order.total_fees) == (Decimal("0.004") * 50000 + Decimal("0.006") * 50010) * Decimal(
        "0.0012"
    )


async def test_vwap_participation_and_required_fields(client: PrimeClient, fake: FakePrime) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    await client.place_algo_order(_limit(price="60000"), AlgoParams("VWAP", start=start, participation="0.1"))
    assert _sent(fake)["historical_pov"] == "0.1" and "expiry_time" not in _sent(fake)
    with pytest.raises(InvalidRequest):
        await client.place_algo_order(_limit(price="60000"), AlgoParams("VWAP", start=start))
    with pytest.raises(InvalidRequest):
        await client.place_algo_order(_limit(price="60000"), AlgoParams("TWAP", expiry=start))
    with pytest.raises(UnsupportedOperation):
        await client.place_algo_order(_limit(price="60000"), AlgoParams("ICEBERG", start=start))


async def test_lost_create_reply_is_resolved_by_client_order_id_never_resent(
    client: PrimeClient, fake: FakePrime
) -> None:
    fake.reset(CREATE, after=True)  # the order is created, the reply is lost
    report = await client.place_order(_limit("lost-1"))
    assert report.client_order_id == "lost-1" and report.order_id
    assert len(fake.requests_to(CREATE, "POST")) == 1, "never re-sent"
    assert fake.orders_with_client_id("lost-1") == 1


async def test_create_that_never_happened_stays_unresolved(client: PrimeClient, fake: FakePrime) -> None:
    fake.fail(CREATE, status=500, body=b'{"code":"INTERNAL_ERROR","message":"boom"}')
    with pytest.raises(Timeout):
        await client.place_order(_limit("lost-2"))
    assert len(fake.requests_to(CREATE, "POST")) == 1
    assert fake.orders_with_client_id("lost-2") == 0


async def test_duplicate_client_order_id_carries_the_existing_order(client: PrimeClient) -> None:
    first = await client.place_order(_limit("dup-1"))
    with pytest.raises(DuplicateOrder) as info:
        await client.place_order(_limit("dup-1"))
    assert info.value.order_id == first.order_id


async def test_insufficient_funds(client: PrimeClient) -> None:
    with pytest.raises(InsufficientFunds):
        await client.place_order(_limit(price="10000", quantity="1000"))  # 10M USD against 1M


async def test_all_pages_of_open_orders_and_history(client: PrimeClient, fake: FakePrime) -> None:
    fake.page_limit = 2
    ids = {(await client.place_order(_limit(f"p-{i}"))).order_id for i in range(5)}
    assert {o.order_id for o in await client.get_orders()} == ids
    cancelled = await client.cancel_order(client_order_id="p-0")
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    history = await client.get_orders(OrderFilter(statuses=frozenset({order_pb2.ORDER_STATUS_CANCELLED})))
    assert [o.client_order_id for o in history] == ["p-0"]
    assert len(await client.get_orders(OrderFilter(limit=3))) == 3


async def test_get_and_cancel_unknown(client: PrimeClient) -> None:
    with pytest.raises(NotFound):
        await client.get_order(order_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        await client.cancel_order(client_order_id="nope")
    with pytest.raises(InvalidRequest):
        await client.get_order(order_id="../balances")


async def test_portfolio_fills_balances_products_portfolios(
    client: PrimeClient, fake: FakePrime, clock: FakeClock
) -> None:
    await client.place_order(_limit("f-1", price="60000"))  # crosses: fills at 50000
    fills = await client.get_fills(datetime.fromtimestamp(clock.now - 60, tz=UTC))
    assert len(fills) == 1 and fills[0].last_price == "50000"
    balances = {b.asset: b for b in await client.get_balances()}
    assert Decimal(balances["BTC"].total) == Decimal("10.01")
    (inst,) = await client.get_instruments(["BTC-USD"])
    assert inst.tick_size == "0.01"
    (pf,) = await client.get_portfolios()
    assert pf.id == PORTFOLIO
    assert (await client.health()).reachable


async def test_holds_reduce_available(client: PrimeClient) -> None:
    await client.place_order(_limit("h-1", price="10000"))  # rests, holds 100 USD
    usd = {b.asset: b for b in await client.get_balances()}["USD"]
    assert Decimal(usd.locked) == 100 and Decimal(usd.available) == Decimal(usd.total) - 100


async def test_preview_before_place(fake: FakePrime, clock: FakeClock) -> None:
    async with PrimeClient(make_config(fake.url, preview_before_place=True), clock=clock) as c:
        preview = await c.preview_order(_limit())
        assert preview.commission == Decimal("0.5") and preview.slippage == Decimal("0.0001")
        await c.place_order(_limit("pv-1"))
    assert len(fake.requests_to(f"/v1/portfolios/{PORTFOLIO}/order_preview")) == 2
    with pytest.raises(InvalidRequest):
        async with PrimeClient(make_config(fake.url, preview_before_place=True), clock=clock) as c:
            await c.place_order(
                order_pb2.Order(
                    symbol="XRP-USD",
                    side=order_pb2.ORDER_SIDE_BUY,
                    order_type=order_pb2.ORDER_TYPE_MARKET,
                    quantity="1",
                )
            )
    assert fake.orders_with_client_id("pv-2") == 0


async def test_no_credentials_is_refused_before_sending() -> None:
    async with PrimeClient() as c:
        with pytest.raises(InvalidRequest):
            await c.get_balances()
