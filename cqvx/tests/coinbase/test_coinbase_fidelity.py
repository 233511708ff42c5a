"""Issue 12: every reply read as the venue means it (parse level).

Each section is one class of defect: an accepted order never reads as rejected; absence is not
emptiness; facts come from the product, not from splitting its id; impossible values are refused at
the edge; canonical symbols round-trip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.errors import InsufficientFunds, OrderRejected, ParseError
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase import parse

Load = Callable[[str], bytes]
_ORDER = order_pb2.Order(symbol="BTC-USD", side=order_pb2.ORDER_SIDE_BUY, quantity="1", price="2")
_OID = "11111111-1111-1111-1111-111111111111"


def _create(body: Any) -> Any:
    return parse.create_order_from_json(json.dumps(body).encode(), _ORDER, "BTC-USD", "BTC-USD", "c-1")


# --- 1. an accepted order is never reported as rejected ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": _OID},  # only an order id: no success flag
        {
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": _OID,
            "success_response": {"order_id": _OID},
        },
        {"data": {"success": True, "order_id": _OID}},  # an unexpected wrapper
        {},
        {"success": None, "order_id": _OID},
        # success:false without any documented failure reason: not the documented failure shape.
        {"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": ""},
        {"success": False, "error_response": {"error": "UNKNOWN_FAILURE_REASON"}},
        {"success": False, "error_response": {"error": "SOMETHING_NEW", "message": "?"}},
    ],
)
def test_undocumented_create_reply_is_unresolved_not_a_rejection(body: Any) -> None:
    with pytest.raises(ParseError):
        _create(body)


def test_documented_failure_is_a_rejection() -> None:
    body = {
        "success": False,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": "UNKNOWN_FAILURE_REASON",
            "message": "Insufficient balance in source account",
            "error_details": "",
            "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND",
        },
    }
    with pytest.raises(InsufficientFunds):
        _create(body)
    body["error_response"] = {"error": "INVALID_LIMIT_PRICE_POST_ONLY"}
    with pytest.raises(OrderRejected):
        _create(body)


def test_cancel_result_without_success_flag_is_not_read_as_failure() -> None:
    with pytest.raises(ParseError):
        parse.cancel_results_from_json(b'{"results":[{"order_id":"a"}]}')
    with pytest.raises(ParseError):
        parse.cancel_results_from_json(b'{"error":"INTERNAL"}')


# --- 2. absence is not emptiness --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "body"),
    [
        (parse.orders_page_from_json, b"{}"),
        (parse.orders_page_from_json, b'{"has_next":false,"cursor":""}'),
        (parse.orders_page_from_json, b'{"orders":null}'),
        (parse.orders_page_from_json, b'{"error":"PERMISSION_DENIED","message":"nope"}'),
        (parse.orders_page_from_json, b'{"data":[]}'),
        (parse.accounts_from_json, b"{}"),
        (parse.accounts_from_json, b'{"data":[],"pagination":{}}'),  # the v2 API's envelope
        (parse.fills_from_json, b'{"cursor":""}'),
        (parse.positions_from_json, b"{}"),
        (parse.positions_from_json, b'{"positions":[{"product_id":"BIP-20DEC30-CDE","side":"LONG"}]}'),
        (parse.position_from_json, b"{}"),
        (parse.position_from_json, b'{"position":{"product_id":"BIP-20DEC30-CDE","side":"LONG"}}'),
        (parse.products_from_json, b'{"num_products":0}'),
        (parse.best_bid_ask_from_json, b"{}"),
        (parse.market_trades_from_json, b'{"best_bid":"1","best_ask":"2"}'),
        (parse.futures_balance_from_json, b'{"balance_summary":{}}'),
    ],
)
def test_missing_meaning_carrying_fields_raise(fn: Callable[[bytes], Any], body: bytes) -> None:
    with pytest.raises(ParseError):
        fn(body)


def test_explicitly_empty_lists_are_empty() -> None:
    assert parse.orders_page_from_json(b'{"orders":[],"has_next":false,"cursor":""}') == ([], None)
    assert parse.accounts_from_json(b'{"accounts":[],"has_next":false,"cursor":""}') == ([], None)
    assert parse.positions_from_json(b'{"positions":[]}') == []


def test_optional_fields_stay_optional(load: Load) -> None:
    doc = json.loads(load("http_order.json"))
    for key in ("leverage", "margin_type", "retail_portfolio_id", "last_fill_time", "reject_message"):
        doc["order"].pop(key, None)
    assert parse.order_from_json(json.dumps(doc).encode()).order_id


def test_account_without_hold_is_not_read_as_nothing_locked(load: Load) -> None:
    doc = json.loads(load("http_accounts.json"))
    del doc["accounts"][0]["hold"]
    with pytest.raises(ParseError):
        parse.accounts_from_json(json.dumps(doc).encode())


# --- 3. fee and settlement currency from the product ------------------------------------------------


def _fut_order(load: Load) -> bytes:
    doc = json.loads(load("http_order.json"))
    doc["order"]["product_id"] = "BIP-20DEC30-CDE"
    return json.dumps(doc).encode()


def test_fee_asset_of_a_future_is_not_a_piece_of_its_id(load: Load) -> None:
    # Without the products table the fee currency is unknown (empty), never "20DEC30".
    assert parse.order_from_json(_fut_order(load)).fee_asset == ""
    quotes = {"BIP-20DEC30-CDE": "USD", "BTC-PERP-INTX": "USDC"}.get
    assert parse.order_from_json(_fut_order(load), quote_of=quotes).fee_asset == "USD"
    doc = json.loads(load("http_fills.json"))
    for f in doc["fills"]:
        f["product_id"] = "BTC-PERP-INTX"
    fills, _ = parse.fills_from_json(json.dumps(doc).encode(), quote_of=quotes)
    assert {f.fee_asset for f in fills} == {"USDC"}
    spot, _ = parse.fills_from_json(load("http_fills.json"))
    assert {f.fee_asset for f in spot} == {"USD"}  # a BASE-QUOTE spot id names its quote


# --- 4. impossible values are rejected at the edge ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15T10:30:00Zgarbage",
        "2024-01-15T10:30:00.1234567891Z",  # beyond nanoseconds
        "2024-02-30T00:00:00Z",  # no such day
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-15T10:30:60Z",
        "2024-01-15T10:30:00+25:00",
        "2024-01-15T10:30:00 Z",
        "2024-01-15T10:30:00",  # no zone: which time is it?
    ],
)
def test_timestamps_not_fully_valid_raise(text: str) -> None:
    with pytest.raises(ParseError):
        parse.timestamp(text)


def test_valid_timestamps_still_parse() -> None:
    assert parse.timestamp("2024-02-29T23:59:59.123456789Z") is not None
    assert parse.timestamp("2024-01-15 10:30:00.5+00:00") is not None
    assert parse.timestamp("0001-01-01T00:00:00Z") is None


@pytest.mark.parametrize("field", ["price", "size", "commission"])
def test_negative_fill_values_raise(load: Load, field: str) -> None:
    doc = json.loads(load("http_fills.json"))
    doc["fills"][0][field] = "-" + doc["fills"][0][field]
    with pytest.raises(ParseError):
        parse.fills_from_json(json.dumps(doc).encode())


@pytest.mark.parametrize("value", ["-1", "-0.5", "1" + "0" * 41, "1e41"])
def test_negative_and_huge_balances_raise(load: Load, value: str) -> None:
    doc = json.loads(load("http_accounts.json"))
    doc["accounts"][0]["available_balance"]["value"] = value
    with pytest.raises(ParseError):
        parse.accounts_from_json(json.dumps(doc).encode())


def test_fast_path_enforces_the_magnitude_bound() -> None:
    # The regex fast path takes at most 40 characters, which keeps it inside dec()'s 1e+/-40 bound.
    assert parse.dec_text("1" + "0" * 39, "x") == "1" + "0" * 39
    with pytest.raises(ParseError):
        parse.dec_text("1" + "0" * 41, "x")
    with pytest.raises(ParseError):
        parse.dec_text("-" + "1" * 5, "x")  # negative where the field forbids it
    assert parse.dec_text("0." + "0" * 30 + "1", "x") == "0." + "0" * 30 + "1"


def test_negative_order_fields_raise(load: Load) -> None:
    doc = json.loads(load("http_order.json"))
    doc["order"]["filled_size"] = "-0.001"
    with pytest.raises(ParseError):
        parse.order_from_json(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("funding_interval", "soon"),
        ("funding_interval", "99999999999999999999999s"),
        ("funding_interval", "-5s"),
        ("contract_expiry", "2030-02-30T16:00:00Z"),
        ("contract_expiry", "never"),
        ("contract_size", "-0.01"),
        ("contract_size", "0"),
    ],
)
def test_products_parser_refuses_hostile_future_details(load: Load, key: str, value: str) -> None:
    doc = json.loads(load("http_products_future.json"))
    doc["products"][0]["future_product_details"][key] = value
    with pytest.raises(ParseError):
        parse.products_from_json(json.dumps(doc).encode())


# --- 6. product symbols round-trip ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiry", "symbol"),
    [
        ("2030-12-20T16:00:00Z", "BTC-USD-20301220"),
        ("0999-01-02T00:00:00Z", "BTC-USD-09990102"),
        ("0010-01-02T00:00:00Z", "BTC-USD-00100102"),
    ],
)
def test_future_canonical_symbols_are_zero_padded(expiry: str, symbol: str) -> None:
    p = m.Product(
        product_id="BIT-02JAN10-CDE",
        product_type="FUTURE",
        quote_currency_id="USD",
        future_product_details=m.FutureProductDetails(
            contract_expiry=expiry,
            contract_root_unit="BTC",
            contract_expiry_type="EXPIRING",
            contract_size="1",
        ),
    )
    assert parse.canonical_for_product(p) == symbol


@pytest.mark.parametrize(
    ("channel", "event"),
    [
        ("user", {"type": "snapshot"}),  # not "no open orders"
        ("l2_data", {"type": "snapshot", "product_id": "BTC-USD"}),  # not an empty book
        ("market_trades", {"type": "update"}),
        ("ticker", {"type": "update"}),
        ("candles", {"type": "update"}),
    ],
)
def test_channel_events_without_their_list_raise(channel: str, event: dict[str, Any]) -> None:
    env = parse.envelope_from_json(
        json.dumps(
            {"channel": channel, "timestamp": "2024-01-15T10:30:00Z", "sequence_num": 1, "events": [event]}
        )
    )
    fn = {
        "user": parse.ws_user_events,
        "l2_data": parse.l2_events,
        "market_trades": parse.ws_trades,
        "ticker": parse.ws_prices,
        "candles": parse.ws_candles,
    }[channel]
    with pytest.raises(ParseError):
        fn(env)


@pytest.mark.parametrize(
    "success_response",
    [
        {"order_id": _OID, "client_order_id": "someone-else", "product_id": "BTC-USD"},
        {"order_id": _OID, "client_order_id": "c-1", "product_id": "ETH-USD"},
        {"order_id": "another-id", "client_order_id": "c-1"},  # two different order ids in one reply
    ],
)
def test_success_reply_about_another_order_is_unresolved(success_response: dict[str, str]) -> None:
    with pytest.raises(ParseError):
        _create({"success": True, "order_id": _OID, "success_response": success_response})


def test_negative_heartbeat_counter_raises() -> None:
    env = parse.envelope_from_json(
        b'{"channel":"heartbeats","sequence_num":1,"events":[{"heartbeat_counter":-3}]}'
    )
    with pytest.raises(ParseError):
        parse.ws_heartbeat_counter(env)


@pytest.mark.parametrize(
    ("fn", "body"),
    [
        (parse.orders_page_from_json, b'{"orders": [], "cursor": "next-page"}'),
        (parse.accounts_from_json, b'{"accounts": [], "cursor": "next-page"}'),
    ],
)
def test_page_without_has_next_is_not_the_last_page(fn: Callable[[bytes], Any], body: bytes) -> None:
    # Without has_next the reply does not say whether more pages exist: never read as "complete".
    with pytest.raises(ParseError):
        fn(body)


def test_future_without_its_details_is_not_mapped_by_identity(load: Load) -> None:
    doc = json.loads(load("http_products_future.json"))
    doc["products"][0]["future_product_details"] = None
    with pytest.raises(ParseError):
        parse.products_from_json(json.dumps(doc).encode())


@pytest.mark.parametrize("key", ["quote_currency_id", "contract_root_unit"])
def test_future_symbol_parts_come_from_the_product(load: Load, key: str) -> None:
    doc = json.loads(load("http_products_future.json"))
    product = doc["products"][0]
    product.pop(key, None)
    product["future_product_details"].pop(key, None)
    with pytest.raises(ParseError):
        parse.products_from_json(json.dumps(doc).encode())
