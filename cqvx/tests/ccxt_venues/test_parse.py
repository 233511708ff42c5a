"""ccxt unified structures -> cqc: decimal text end to end, base units, and only ParseError on garbage."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import order_pb2
from cqvx.errors import ParseError
from cqvx.symbols import SymbolMap
from cqvx.venues.ccxt import parse
from cqvx.venues.ccxt.markets import MarketIndex, canonical_of

FIX = Path(__file__).parent / "fixtures"
SYMBOLS = SymbolMap("binance", [("BTC-USDT-PERP", "BTC/USDT:USDT")])
MARKET = {
    "id": "BTCUSDT",
    "symbol": "BTC/USDT:USDT",
    "base": "BTC",
    "quote": "USDT",
    "settle": "USDT",
    "type": "swap",
    "spot": False,
    "swap": True,
    "future": False,
    "option": False,
    "margin": False,
    "contract": True,
    "linear": True,
    "inverse": False,
    "active": True,
    "contractSize": "1",
    "precision": {"amount": "0.001", "price": "0.1"},
    "limits": {},
    "info": {},
}


def _ccxt() -> Any:
    ex = ccxt.binanceusdm()
    ex.number = str  # as the client configures it
    ex.set_markets([MARKET])
    return ex


def test_order_numbers_are_the_venues_text_not_floats() -> None:
    unified = _ccxt().parse_order(json.loads((FIX / "binance_order_response.json").read_text()))
    assert unified["price"] == "50000.00"  # ccxt kept the text: no float on the way
    order = parse.parse_order(unified, SYMBOLS, "binance")
    assert order.symbol == "BTC-USDT-PERP"
    assert (order.order_id, order.client_order_id) == ("12345678", "testOrder123")
    assert order.status == order_pb2.ORDER_STATUS_OPEN
    assert (order.price, order.quantity, order.filled_quantity, order.remaining_quantity) == (
        "50000",
        "0.001",
        "0",
        "0.001",
    )
    assert order.side == order_pb2.ORDER_SIDE_BUY and order.order_type == order_pb2.ORDER_TYPE_LIMIT


def test_contract_amounts_become_base_units() -> None:
    unified = {"id": "1", "symbol": "BTC/USDT:USDT", "side": "sell", "status": "open", "type": "limit",
               "amount": "3", "filled": "1", "remaining": "2", "price": "100"}  # fmt: skip
    order = parse.parse_order(unified, SYMBOLS, "okx", {"BTC-USDT-PERP": Decimal("0.01")})
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == ("0.03", "0.01", "0.02")
    assert order.status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED


def test_a_float_is_read_by_its_shortest_text() -> None:
    assert parse.num(0.1, "x", "v") == "0.1"
    assert parse.num(50000.0, "x", "v") == "50000"


def test_position_from_binance_position_risk() -> None:
    raw = json.loads((FIX / "binance_position_risk.json").read_text())[0]
    unified = _ccxt().parse_position_risk(raw)
    position = parse.parse_position(unified, SYMBOLS, "binance")
    assert position.side == position_pb2.POSITION_SIDE_LONG
    assert (position.quantity, position.entry_price, position.mark_price) == ("0.001", "50000", "51000")
    assert (position.liquidation_price, position.leverage, position.unrealized_pnl) == ("45000", "20", "1")
    assert position.margin_mode == position_pb2.MARGIN_MODE_CROSS


def test_unknown_is_not_absent() -> None:
    base = {"id": "1", "symbol": "BTC/USDT:USDT", "side": "buy", "status": "open", "amount": "1"}
    for broken in ({**base, "status": None}, {**base, "side": "hold"}, {**base, "id": None}):
        try:
            parse.parse_order(broken, SYMBOLS, "binance")
        except ParseError:
            continue
        raise AssertionError(broken)


def test_markets_map_canonical_ids_and_drop_ambiguous_ones() -> None:
    spot = {**MARKET, "symbol": "BTC/USDT", "id": "BTCUSDT", "spot": True, "swap": False}
    usd_perp_a = {**MARKET, "symbol": "ETH/USD:USD", "base": "ETH", "quote": "USD"}
    usd_perp_b = {**MARKET, "symbol": "ETH/USD:ETH", "base": "ETH", "quote": "USD"}
    option = {**MARKET, "symbol": "BTC/USDT:USDT-240101-1-C", "swap": False, "option": True}
    index = MarketIndex.build("x", [MARKET, spot, usd_perp_a, usd_perp_b, option])
    assert index.symbols.canonical_symbols() == ["BTC-USDT", "BTC-USDT-PERP"]
    assert index.symbols.to_venue("BTC-USDT-PERP") == "BTC/USDT:USDT"
    assert canonical_of(
        {**MARKET, "swap": False, "future": True, "expiryDatetime": "2026-12-25T08:00:00Z"}
    ) == ("BTC-USDT-20261225")


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)
_KEYS = [
    "id",
    "symbol",
    "side",
    "status",
    "amount",
    "filled",
    "price",
    "contracts",
    "fundingRate",
    "bids",
    "asks",
]


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSONISH, st.fixed_dictionaries({k: _JSONISH for k in _KEYS})))
def test_garbage_raises_only_parse_error(raw: Any) -> None:
    for fn in (
        lambda: parse.parse_order(raw, SYMBOLS, "v"),
        lambda: parse.parse_position(raw, SYMBOLS, "v"),
        lambda: parse.parse_balances(raw, "v", 1),
        lambda: parse.parse_funding_rate(raw, "BTC-USDT-PERP", "v"),
        lambda: parse.parse_candle(raw, "BTC-USDT-PERP", 1, 60, "v"),
        lambda: parse.parse_order_book(raw, "BTC-USDT-PERP", "v", 5),
    ):
        with contextlib.suppress(ParseError):
            fn()


# Bybit's UTA transaction log, as documented (https://bybit-exchange.github.io/docs/v5/account/transaction-log).
_LOG_ROW = {
    "id": "592324_XRPUSDT_161440249321", "symbol": "BTCUSDT", "category": "linear", "side": "Sell",
    "transactionTime": "1714003200000", "type": "SETTLEMENT", "qty": "0.5", "size": "-0.5",
    "currency": "USDT", "tradePrice": "64000", "funding": "3.2", "fee": "0", "cashFlow": "0",
    "change": "3.2", "cashBalance": "1000", "feeRate": "0.0001", "bonusChange": "", "tradeId": "",
    "orderId": "", "orderLinkId": "",
}  # fmt: skip


def test_bybit_settlements_keep_the_documented_sign_and_only_the_symbols_funding() -> None:
    trade = _LOG_ROW | {"type": "TRADE", "funding": "0", "id": "t1"}
    other = _LOG_ROW | {"symbol": "ETHUSDT", "id": "e1"}
    paid = _LOG_ROW | {"funding": "-1.5", "id": "p1", "transactionTime": "1714032000000"}
    raw = {"retCode": 0, "result": {"list": [paid, trade, other, _LOG_ROW], "nextPageCursor": "abc"}}
    rows, cursor = parse.parse_bybit_settlements(raw, "BTCUSDT", "BTC-USDT-PERP", "bybit")
    assert cursor == "abc"
    assert [(t.transaction_id, t.amount, t.asset) for t in rows] == [
        ("p1", "-1.5", "USDT"),  # paid
        ("592324_XRPUSDT_161440249321", "3.2", "USDT"),  # received
    ]
    assert rows[1].timestamp.seconds == 1714003200


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300)
@given(_json, st.dictionaries(st.sampled_from(sorted(_LOG_ROW)), _json, max_size=6))
def test_bybit_settlements_from_garbage_raise_only_parse_error(raw: Any, patch: dict[str, Any]) -> None:
    for candidate in (raw, {"result": {"list": [_LOG_ROW | patch], "nextPageCursor": ""}}):
        with contextlib.suppress(ParseError):
            parse.parse_bybit_settlements(candidate, "BTCUSDT", "BTC-USDT-PERP", "bybit")


def test_the_funding_interval_is_read_when_ccxt_names_it_and_zero_otherwise() -> None:
    base = {"fundingRate": "0.0001", "fundingTimestamp": 1714003200000}
    got = [
        parse.parse_funding_rate(base | extra, "BTC-USDT-PERP", "bybit").interval_seconds
        for extra in ({"interval": "8h"}, {"interval": "1h"}, {"interval": "0h"}, {"interval": "8x"}, {})
    ]
    assert got == [28800, 3600, 0, 0, 0]


@settings(max_examples=300)
@given(_json)
def test_funding_income_from_garbage_raises_only_parse_error(raw: Any) -> None:
    for candidate in (raw, {"id": "1", "amount": raw, "code": "USDT", "timestamp": 1}):
        with contextlib.suppress(ParseError):
            parse.parse_funding_income(candidate, "binance")


def test_funding_income_keeps_the_venues_sign() -> None:
    tx = parse.parse_funding_income(
        {"id": "9", "amount": "-0.375", "code": "USDT", "timestamp": 1570608000000}, "binance"
    )
    got = (tx.amount, tx.asset, tx.timestamp.seconds, tx.transaction_id)
    assert got == ("-0.375", "USDT", 1570608000, "9")


@settings(max_examples=300, deadline=None)
@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([None, Decimal("0.01"), Decimal("0.0001")]),
)
def test_book_levels_read_floats_exactly_as_num(price: float, qty: float, size: Decimal | None) -> None:
    # ccxt.pro's books hold floats; the level fast path must answer what num() answers (or refuse alike),
    # and a contract venue's quantity is the exact base-unit product.
    raw = {"bids": [[price, qty]], "asks": [], "timestamp": 1, "nonce": 7}
    try:
        want_price, want_qty = parse.num(price, "p", "v"), parse.num(qty, "q", "v")
    except ParseError:
        with contextlib.suppress(ParseError):
            parse.parse_order_book(raw, "BTC-USDT-PERP", "v", 5, size)
            raise AssertionError("a value num() refuses was accepted") from None
        return
    book = parse.parse_order_book(raw, "BTC-USDT-PERP", "v", 5, size)
    assert book.bids[0].price == want_price
    expected = want_qty if size is None or not want_qty else str((Decimal(want_qty) * size).normalize())
    assert Decimal(book.bids[0].quantity) == Decimal(expected)
    assert book.sequence == 7 and book.timestamp.nanos == 1_000_000
