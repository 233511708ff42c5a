"""Issue 12: perpetuals on Coinbase International (INTX) through Advanced Trade, and product-derived
facts (quote/settlement currency, contract size, canonical id) taken from the products table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from cqc.markets.v1 import instrument_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, order_pb2
from cqvx.errors import InvalidRequest, ParseError
from cqvx.testing.fake_coinbase import FakeCoinbase, FakeProduct
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig, parse
from cqvx.venues.coinbase.section import CoinbaseSection

Load = Callable[[str], bytes]
MakeConfig = Callable[..., CoinbaseConfig]
UUID = "018c2b5e-4a1f-7c3d-9e2a-5b6c7d8e9f01"
_CANON = {"BTC-PERP-INTX": "BTC-USDC-PERP", "ETH-PERP-INTX": "ETH-USDC-PERP"}
_QUOTES = {"BTC-PERP-INTX": "USDC", "ETH-PERP-INTX": "USDC"}


# --- parsing ---------------------------------------------------------------------------------------


def test_perpetual_products(load: Load) -> None:
    btc, eth = parse.products_from_json(load("http_products_perp.json"))
    assert (btc.symbol, btc.venue_symbol) == ("BTC-USDC-PERP", "BTC-PERP-INTX")
    assert btc.instrument_type == instrument_pb2.INSTRUMENT_TYPE_PERPETUAL
    assert (btc.base_asset, btc.quote_asset, btc.settle_asset) == ("BTC", "USDC", "USDC")
    assert (btc.contract_size, btc.tick_size, btc.lot_size) == ("1", "0.1", "0.0001")
    assert btc.funding_interval_seconds == 3600 and not btc.HasField("expiry")
    assert eth.symbol == "ETH-USDC-PERP"


def test_intx_positions(load: Load) -> None:
    long, short = parse.intx_positions_from_json(
        load("http_intx_positions.json"), _CANON.__getitem__, {"BTC-PERP-INTX": Decimal("1")}, _QUOTES.get
    )
    assert (long.symbol, long.side, long.quantity) == (
        "BTC-USDC-PERP",
        position_pb2.POSITION_SIDE_LONG,
        "0.25",
    )
    assert (long.entry_price, long.mark_price, long.unrealized_pnl) == ("66900", "67250.5", "87.5")
    assert (long.liquidation_price, long.leverage, long.settle_asset) == ("41020.25", "5", "USDC")
    assert (long.margin, long.maintenance_margin) == ("1681.26", "504.38")
    assert long.margin_mode == position_pb2.MARGIN_MODE_CROSS and long.account_id == UUID
    # net_size "-2" with POSITION_SIDE_SHORT: a short of 2 contracts.
    assert (short.side, short.quantity, short.margin_mode) == (
        position_pb2.POSITION_SIDE_SHORT,
        "2",
        position_pb2.MARGIN_MODE_ISOLATED,
    )
    one = parse.intx_position_from_json(load("http_intx_position.json"), _CANON.__getitem__)
    assert one == short


def test_intx_contract_size_scales_contracts(load: Load) -> None:
    (long, _) = parse.intx_positions_from_json(
        load("http_intx_positions.json"), contract_sizes={"BTC-PERP-INTX": Decimal("0.01")}
    )
    assert long.quantity == "0.0025"


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("net_size", None),  # a position without its size is not flat
        ("net_size", "abc"),
        ("position_side", "SIDEWAYS"),
        ("mark_price", {"value": "-1", "currency": "USDC"}),
        ("liquidation_price", {"value": "1e999", "currency": "USDC"}),
    ],
)
def test_intx_position_without_meaning_raises(load: Load, change: str, value: object) -> None:
    doc = json.loads(load("http_intx_positions.json"))
    if value is None:
        del doc["positions"][0][change]
    else:
        doc["positions"][0][change] = value
    with pytest.raises(ParseError):
        parse.intx_positions_from_json(json.dumps(doc).encode())


def test_intx_long_with_negative_size_is_contradictory(load: Load) -> None:
    doc = json.loads(load("http_intx_positions.json"))
    doc["positions"][0]["net_size"] = "-0.25"
    with pytest.raises(ParseError):
        parse.intx_positions_from_json(json.dumps(doc).encode())


@pytest.mark.parametrize("body", [b"{}", b'{"summary":{}}', b'{"error":"NOT_FOUND"}'])
def test_intx_replies_without_their_lists_raise(body: bytes) -> None:
    for fn in (parse.intx_positions_from_json, parse.intx_balances_from_json, parse.intx_portfolio_from_json):
        with pytest.raises(ParseError):
            fn(body)


def test_intx_balances(load: Load) -> None:
    usdc, btc = parse.intx_balances_from_json(load("http_intx_balances.json"))
    assert (usdc.asset, usdc.balance_type, usdc.account_id) == ("USDC", balance_pb2.BALANCE_TYPE_MARGIN, UUID)
    assert (usdc.total, usdc.available, usdc.locked) == ("25000", "23749.5", "1250.5")
    assert (btc.asset, btc.total, btc.available) == ("BTC", "0.1", "0.1")
    doc = json.loads(load("http_intx_balances.json"))
    del doc["portfolio_balances"][0]["balances"][0]["hold"]
    with pytest.raises(ParseError):
        parse.intx_balances_from_json(json.dumps(doc).encode())


def test_intx_portfolio_summary(load: Load) -> None:
    s = parse.intx_portfolio_from_json(load("http_intx_portfolio.json"), UUID)
    assert (s.collateral, s.total_balance, s.unrealized_pnl) == (
        Decimal("25000"),
        Decimal("25177.1"),
        Decimal("177.1"),
    )
    assert (s.initial_margin_notional, s.maintenance_margin_notional) == (
        Decimal("3751.39"),
        Decimal("1125.42"),
    )
    assert (s.buying_power, s.max_withdrawal_amount, s.currency) == (
        Decimal("106278.55"),
        Decimal("21248.6"),
        "USDC",
    )
    with pytest.raises(ParseError):
        parse.intx_portfolio_from_json(load("http_intx_portfolio.json"), "another-portfolio")


# --- config ------------------------------------------------------------------------------------------


def test_section_carries_the_intx_portfolio() -> None:
    section = CoinbaseSection.model_validate({"derivatives": {"cfm": False, "intx_portfolio_uuid": UUID}})
    cfg = section.to_config()
    assert (cfg.cfm_enabled, cfg.intx_portfolio_uuid) == (False, UUID)
    assert CoinbaseSection.model_validate({}).to_config().intx_portfolio_uuid == ""
    with pytest.raises(ValueError, match="intx_portfolio_uuid"):
        CoinbaseSection.model_validate({"derivatives": {"intx_portfolio_uuid": "../accounts"}})


# --- against the fake --------------------------------------------------------------------------------


def _perp_products(load: Load) -> list[FakeProduct]:
    out = []
    for raw in json.loads(load("http_products_perp.json"))["products"]:
        out.append(
            FakeProduct(
                raw["product_id"],
                base_increment=raw["base_increment"],
                quote_increment=raw["price_increment"],
                base_min_size=raw["base_min_size"],
                future=raw["future_product_details"],
                quote_currency="USDC",
                product_venue="INTX",
                bids={Decimal("67000"): Decimal("1")},
                asks={Decimal("67500"): Decimal("1")},
            )
        )
    return out


@pytest.fixture
async def intx(
    fake: FakeCoinbase, load: Load, make_config: MakeConfig, ec_pem: str
) -> AsyncIterator[CoinbaseClient]:
    for p in _perp_products(load):
        fake.products[p.product_id] = p
    fake.available["USDC"] = Decimal("100000")
    for pos in json.loads(load("http_intx_positions.json"))["positions"]:
        fake.intx_positions[pos["product_id"]] = pos
    fake.intx_portfolio = json.loads(load("http_intx_portfolio.json"))["portfolios"][0]
    fake.intx_balances = json.loads(load("http_intx_balances.json"))["portfolio_balances"][0]["balances"]
    cfg = make_config(fake, secret=ec_pem, cfm_enabled=False, intx_portfolio_uuid=fake.intx_portfolio_uuid)
    async with CoinbaseClient(cfg) as c:
        yield c


async def test_positions_capability_serves_intx_perpetuals(fake: FakeCoinbase, intx: CoinbaseClient) -> None:
    long, short = await intx.get_positions()
    assert (long.symbol, long.side, long.quantity, long.settle_asset) == (
        "BTC-USDC-PERP",
        position_pb2.POSITION_SIDE_LONG,
        "0.25",
        "USDC",
    )
    assert (short.symbol, short.side, short.quantity) == (
        "ETH-USDC-PERP",
        position_pb2.POSITION_SIDE_SHORT,
        "2",
    )
    assert not fake.requests_to("/api/v3/brokerage/cfm/positions")  # CFM disabled in this config
    assert [p.symbol for p in await intx.get_positions(["ETH-USDC-PERP"])] == ["ETH-USDC-PERP"]


async def test_intx_balances_and_summary(intx: CoinbaseClient) -> None:
    summary = await intx.get_perps_portfolio_summary()
    assert summary.collateral == Decimal("25000") and summary.currency == "USDC"
    balances = await intx.get_balances()
    margin = [b for b in balances if b.balance_type == balance_pb2.BALANCE_TYPE_MARGIN]
    assert {(b.asset, b.total) for b in margin} == {("USDC", "25000"), ("BTC", "0.1")}
    assert {b.balance_type for b in balances} == {
        balance_pb2.BALANCE_TYPE_SPOT,
        balance_pb2.BALANCE_TYPE_MARGIN,
    }


async def test_perps_calls_need_a_portfolio(client: CoinbaseClient) -> None:
    with pytest.raises(InvalidRequest):
        await client.get_perps_balances()


async def test_perp_orders_take_fee_currency_from_the_product(
    fake: FakeCoinbase, intx: CoinbaseClient
) -> None:
    await intx.get_instruments()
    order = order_pb2.Order(
        client_order_id="perp-1",
        symbol="BTC-USDC-PERP",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.01",
        price="60000",
    )
    rep = await intx.place_order(order)
    got = await intx.get_order(order_id=rep.order_id)
    assert (got.symbol, got.venue_symbol, got.fee_asset) == ("BTC-USDC-PERP", "BTC-PERP-INTX", "USDC")


async def test_unknown_products_are_looked_up_not_mapped_by_identity(
    fake: FakeCoinbase, load: Load, make_config: MakeConfig, ec_pem: str
) -> None:
    for p in _perp_products(load):
        fake.products[p.product_id] = p
    fake.available["USDC"] = Decimal("100000")
    async with CoinbaseClient(make_config(fake, secret=ec_pem)) as placer:
        await placer.get_instruments()
        await placer.place_order(
            order_pb2.Order(
                client_order_id="perp-2",
                symbol="BTC-USDC-PERP",
                side=order_pb2.ORDER_SIDE_SELL,
                order_type=order_pb2.ORDER_TYPE_LIMIT,
                quantity="0.01",
                price="70000",
            )
        )
    # A fresh client that never listed products: the order's product is looked up.
    async with CoinbaseClient(make_config(fake, secret=ec_pem)) as reader:
        (o,) = [o for o in await reader.get_orders() if o.client_order_id == "perp-2"]
        assert (o.symbol, o.fee_asset) == ("BTC-USDC-PERP", "USDC")
        assert reader.product_id("BTC-USDC-PERP") == "BTC-PERP-INTX"


async def test_unknown_futures_symbols_are_looked_up_before_placing(
    fake: FakeCoinbase, load: Load, make_config: MakeConfig, ec_pem: str
) -> None:
    for p in _perp_products(load):
        fake.products[p.product_id] = p
    fake.available["USDC"] = Decimal("100000")
    async with CoinbaseClient(make_config(fake, secret=ec_pem)) as fresh:
        # Never listed products: the perpetual's product id is looked up, not guessed.
        rep = await fresh.place_order(
            order_pb2.Order(
                client_order_id="perp-3",
                symbol="ETH-USDC-PERP",
                side=order_pb2.ORDER_SIDE_BUY,
                order_type=order_pb2.ORDER_TYPE_LIMIT,
                quantity="0.01",
                price="3000",
            )
        )
        assert fake.orders[rep.order_id]["product_id"] == "ETH-PERP-INTX"
        with pytest.raises(InvalidRequest, match="unknown symbol"):
            await fresh.get_order_book("DOGE-USDC-PERP")
        with pytest.raises(InvalidRequest):
            fresh.product_id("SOL-USD-20301220")  # sync: an unknown future is refused, not sent
