"""Prime payload parsing: documented shapes, §11 facts, and garbage -> ParseError only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2
from cqvx.errors import ParseError
from cqvx.venues.prime import models as m
from cqvx.venues.prime import parse
from cqvx.venues.prime.errors import http_error_mapper


def test_order_fees_are_commission_plus_exchange_fee(load: Callable[[str], bytes]) -> None:
    o = parse.order_of(parse.decode(load("order.json"), m.GetOrderResponse).order)
    assert o.total_fees == "12.00006"  # 10.00005 + 2.00001 (§11)
    assert o.status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED  # OPEN with a fill
    assert (o.quantity, o.filled_quantity, o.remaining_quantity) == ("0.5", "0.2", "0.3")
    assert o.price == "50000.25" and o.fee_asset == "USD"
    assert o.time_in_force == order_pb2.TIME_IN_FORCE_GTC
    assert o.created_at.ToNanoseconds() % 1_000_000_000 == 123_456_000


def test_twap_order_keeps_its_algorithm(load: Callable[[str], bytes]) -> None:
    o = parse.order_of(parse.decode(load("twap_order.json"), m.GetOrderResponse).order)
    assert o.order_type == order_pb2.ORDER_TYPE_LIMIT
    assert o.venue_extras["order_type"] == "TWAP"
    assert o.venue_extras["participation"] == "0.1"
    assert o.time_in_force == order_pb2.TIME_IN_FORCE_GTD and o.HasField("expires_at")


def test_balances_available_is_amount_minus_holds(load: Callable[[str], bytes]) -> None:
    usd, btc = parse.balances(load("balances.json"), "TRADING_BALANCES")
    assert (usd.asset, usd.total, usd.available, usd.locked) == ("USD", "1000000.5", "975000.25", "25000.25")
    assert (btc.asset, btc.available) == ("BTC", "2")
    assert usd.balance_type == balance_pb2.BALANCE_TYPE_SPOT


def test_price_tick_is_price_increment(load: Callable[[str], bytes]) -> None:
    (inst,) = parse.instruments(parse.decode(load("products.json"), m.ProductsPage).products)
    assert (inst.tick_size, inst.lot_size, inst.min_quantity, inst.min_notional) == (
        "0.01",
        "0.00000001",
        "0.0001",
        "1",
    )


def test_product_without_price_increment_is_a_parse_error() -> None:
    body = (
        b'{"products":[{"id":"BTC-USD","base_increment":"0.1","quote_increment":"0.01"}],'
        b'"pagination":{"has_next":false}}'
    )
    with pytest.raises(ParseError):
        parse.decode(body, m.ProductsPage)


def test_fill_report(load: Callable[[str], bytes]) -> None:
    (f,) = parse.decode(load("fills.json"), m.FillsPage).fills
    r = parse.fill_report(f)
    assert r.execution_type == execution_pb2.EXECUTION_TYPE_TRADE
    assert (r.trade_id, r.last_quantity, r.last_price, r.fee) == ("f-1", "0.2", "50000.25", "12.00006")


def test_preview(load: Callable[[str], bytes]) -> None:
    p = parse.preview(load("preview.json"))
    assert p.commission == Decimal("50.5") and p.slippage == Decimal("0.0003")


def test_preview_without_commission_is_not_free() -> None:
    with pytest.raises(ParseError):
        parse.preview(b'{"slippage":"0.1"}')


@pytest.mark.parametrize(
    "body",
    [
        b'{"order":{"id":"x","product_id":"BTC-USD","side":"BUY","type":"LIMIT","status":"WEIRD","base_quantity":"1"}}',
        b'{"order":{"id":"x","product_id":"BTC-USD","side":"BUY","type":"ICEBERG2","status":"OPEN","base_quantity":"1"}}',
        b'{"order":{"id":"x","product_id":"BTC-USD","side":"BUY","type":"LIMIT","status":"OPEN"}}',
        b'{"order":{"id":"x","product_id":"BTCUSD","side":"BUY","type":"LIMIT","status":"OPEN","base_quantity":"1"}}',
        b'{"order":{"id":"x","product_id":"BTC-USD","side":"BUY","type":"LIMIT","status":"OPEN","base_quantity":"NaN"}}',
        b'{"order":{"product_id":"BTC-USD","side":"BUY","type":"LIMIT","status":"OPEN","base_quantity":"1"}}',
    ],
)
def test_unknown_or_missing_meaning_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse.order_of(parse.decode(body, m.GetOrderResponse).order)


def test_balance_without_holds_is_not_read_as_zero_holds() -> None:
    with pytest.raises(ParseError):
        parse.balances(b'{"balances":[{"symbol":"usd","amount":"1"}]}', "TRADING_BALANCES")


def test_documented_error_body_maps_to_not_found(load: Callable[[str], bytes]) -> None:
    from cqvx.errors import NotFound
    from cqvx.transport.http import HttpResponse

    err = http_error_mapper(HttpResponse(404, {}, load("error_not_found.json"), "/v1/portfolios/p/orders/x"))
    assert isinstance(err, NotFound) and err.code == "order_resource_not_found"


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=20,
)
_FIELDS = [
    "id",
    "product_id",
    "side",
    "type",
    "status",
    "base_quantity",
    "limit_price",
    "filled_quantity",
    "created_at",
    "commission",
    "exchange_fee",
    "time_in_force",
    "expiry_time",
    "start_time",
]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_bytes_raise_parse_error_only(data: bytes) -> None:
    for fn in (
        lambda: parse.order_of(parse.decode(data, m.GetOrderResponse).order),
        lambda: parse.balances(data, "TRADING_BALANCES"),
        lambda: parse.preview(data),
        lambda: parse.instruments(parse.decode(data, m.ProductsPage).products),
    ):
        with contextlib.suppress(ParseError):
            fn()


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={k: _json for k in _FIELDS}))
def test_garbage_orders_raise_parse_error_only(order: dict[str, object]) -> None:
    import json

    try:
        body = json.dumps({"order": order})
    except ValueError:
        return
    with contextlib.suppress(ParseError):
        parse.order_of(parse.decode(body, m.GetOrderResponse).order)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            k: _json
            for k in [
                "id",
                "order_id",
                "product_id",
                "side",
                "filled_quantity",
                "price",
                "time",
                "commission",
                "venue_fees",
            ]
        },
    )
)
def test_garbage_fills_raise_parse_error_only(fill: dict[str, object]) -> None:
    import json

    body = json.dumps({"fills": [fill], "pagination": {"has_next": False}})
    try:
        for f in parse.decode(body, m.FillsPage).fills:
            parse.fill_report(f)
    except ParseError:
        pass
