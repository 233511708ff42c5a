"""US-derivatives (CFM) futures: positions, the futures balance summary, canonical futures symbols."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, venue_pb2
from cqvx.client import SupportsPositions
from cqvx.errors import ParseError
from cqvx.testing.fake_coinbase import FakeCoinbase, FakeProduct
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig, parse

MakeConfig = Callable[..., CoinbaseConfig]
Load = Callable[[str], bytes]
BIP = "BIP-20DEC30-CDE"
BIP_CANON = "BTC-USD-20301220"  # root unit BTC, quote USD, expiry 2030-12-20 (products_future fixture)


def _canon(pid: str) -> str:
    return {BIP: BIP_CANON}.get(pid, pid)


# --- parsing the published samples -------------------------------------------------------------------


def test_positions_fixture(load: Load) -> None:
    (pos,) = parse.positions_from_json(load("http_cfm_positions.json"), _canon)
    assert pos.venue == "coinbase" and pos.symbol == BIP_CANON
    assert pos.side == position_pb2.POSITION_SIDE_LONG
    assert pos.quantity == "0.02"  # 2 contracts x 0.01 BTC
    assert (pos.entry_price, pos.mark_price, pos.liquidation_price) == ("49000", "50000", "40000")
    assert (pos.unrealized_pnl, pos.leverage, pos.margin, pos.maintenance_margin) == ("20", "5", "100", "50")
    assert pos.settle_asset == "USD"
    assert pos.realized_pnl == "", "daily realized PnL is not realized PnL since the position opened"


def test_single_position_fixture(load: Load) -> None:
    pos = parse.position_from_json(load("http_cfm_position.json"), _canon)
    assert (pos.symbol, pos.side, pos.quantity) == (BIP_CANON, position_pb2.POSITION_SIDE_SHORT, "0.03")
    # No position is the venue's 404; a 200 without one is unreadable, never "flat" (issue 12).
    with pytest.raises(ParseError):
        parse.position_from_json(b'{"position": null}')


def test_balance_summary_fixture(load: Load) -> None:
    summary = parse.futures_balance_from_json(load("http_cfm_balance_summary.json"))
    assert summary.cfm_usd_balance == Decimal("8000") and summary.cbi_usd_balance == Decimal("2000")
    assert summary.futures_buying_power == Decimal("5000")
    assert summary.available_margin == Decimal("7500") and summary.initial_margin == Decimal("1000")
    assert summary.liquidation_buffer_percentage == Decimal("2400")
    bal = summary.balance()
    assert bal.balance_type == balance_pb2.BALANCE_TYPE_FUTURES and bal.asset == "USD"
    assert (bal.total, bal.available, bal.locked) == ("8000", "7500", "500")


def test_plain_string_money_and_prefixed_sides() -> None:
    # The reference also documents money as plain strings and sides as FUTURES_POSITION_SIDE_*.
    body = {
        "positions": [
            {
                "product_id": BIP,
                "side": "FUTURES_POSITION_SIDE_SHORT",
                "number_of_contracts": "4",
                "current_price": "50000.5",
                "avg_entry_price": "51000",
                "unrealized_pnl": "-2.5",
                "daily_realized_pnl": "0",
            },
            {
                "product_id": "BIT-24APR26-CDE",
                "side": "FUTURES_POSITION_SIDE_LONG",
                "number_of_contracts": "0",
            },
        ]
    }
    short, flat = parse.positions_from_json(json.dumps(body).encode(), _canon, {BIP: Decimal("0.01")})
    assert (short.side, short.quantity, short.mark_price, short.unrealized_pnl) == (
        position_pb2.POSITION_SIDE_SHORT,
        "0.04",
        "50000.5",
        "-2.5",
    )
    assert flat.side == position_pb2.POSITION_SIDE_FLAT and flat.quantity == "0"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = ["product_id", "side", "number_of_contracts", "current_price", "contract_size", "leverage"]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=6))
def test_garbage_positions_raise_only_parse_error(fields: dict[str, Any]) -> None:
    for body in ({"positions": [fields]}, {"position": fields}, {"balance_summary": fields}):
        raw = json.dumps(body).encode()
        for fn in (parse.positions_from_json, parse.position_from_json, parse.futures_balance_from_json):
            with contextlib.suppress(ParseError):
                fn(raw)


# --- against the fake --------------------------------------------------------------------------------


def _future_product(load: Load) -> FakeProduct:
    raw = json.loads(load("http_products_future.json"))["products"][0]
    assert raw["product_id"] == BIP
    return FakeProduct(
        BIP,
        base_increment=raw["base_increment"],
        quote_increment=raw["price_increment"],
        base_min_size=raw["base_min_size"],
        future=raw["future_product_details"],
    )


@pytest.fixture
async def cfm(
    fake: FakeCoinbase, load: Load, make_config: MakeConfig, ec_pem: str
) -> AsyncIterator[CoinbaseClient]:
    fake.products[BIP] = _future_product(load)
    # No contract_size on the position: the product's (0.01) must be used.
    position = json.loads(load("http_cfm_positions.json"))["positions"][0]
    del position["contract_size"]
    fake.cfm_positions[BIP] = position
    fake.cfm_balance_summary = json.loads(load("http_cfm_balance_summary.json"))["balance_summary"]
    async with CoinbaseClient(make_config(fake, secret=ec_pem, positions_poll_s=0.02)) as c:
        yield c


async def test_positions_get_canonical_futures_symbols(fake: FakeCoinbase, cfm: CoinbaseClient) -> None:
    assert isinstance(cfm, SupportsPositions)
    caps = cfm.capabilities()
    assert {venue_pb2.CAPABILITY_POSITIONS, venue_pb2.CAPABILITY_POSITION_STREAM} <= caps
    (pos,) = await cfm.get_positions()
    assert (pos.symbol, pos.side, pos.quantity) == (BIP_CANON, position_pb2.POSITION_SIDE_LONG, "0.02")
    assert fake.requests_to("/api/v3/brokerage/cfm/positions")
    # Now the symbol is known: one symbol is fetched through the single-position endpoint.
    (again,) = await cfm.get_positions([BIP_CANON])
    assert again == pos
    assert fake.requests_to(f"/api/v3/brokerage/cfm/positions/{BIP}")
    assert await cfm.get_positions(["ETH-USD-PERP"]) == []
    del fake.cfm_positions[BIP]
    assert await cfm.get_positions([BIP_CANON]) == []  # 404 for the product: no position


async def test_futures_balance_summary(cfm: CoinbaseClient) -> None:
    summary = await cfm.get_futures_balance_summary()
    assert summary.cfm_usd_balance == Decimal("8000")
    assert summary.balance().available == "7500"


async def test_position_stream_polls_and_reports_changes(fake: FakeCoinbase, cfm: CoinbaseClient) -> None:
    stream = cfm.subscribe_positions()
    try:
        async with asyncio.timeout(3):
            first = await anext(aiter(stream))
            assert (first.symbol, first.quantity) == (BIP_CANON, "0.02")
            assert first.HasField("updated_at")
            fake.cfm_positions[BIP] = {**fake.cfm_positions[BIP], "number_of_contracts": "5"}
            changed = await anext(aiter(stream))
            assert changed.quantity == "0.05"  # unchanged polls in between yielded nothing
            fake.rate_limit("/api/v3/brokerage/cfm/positions", retry_after=0)
            fake.cfm_positions.clear()
            flat = await anext(aiter(stream))
            assert (flat.symbol, flat.side, flat.quantity) == (
                BIP_CANON,
                position_pb2.POSITION_SIDE_FLAT,
                "0",
            )
    finally:
        await stream.aclose()
