"""Issue 12: every public parser, fed a mutated real payload, raises ParseError or returns a fully
valid message: decimal fields parse within the bound (and are non-negative unless signed by nature),
timestamps lie inside the Timestamp range, and nothing else escapes.

Mutations: a key removed, a value replaced by null, a wrong type (number, boolean, list, object), a
negative number, a huge number, a date that is not fully valid.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import order_pb2
from cqvx.errors import ParseError
from cqvx.num import MAX_EXPONENT, dec
from cqvx.venues.coinbase import parse

FIXTURES = Path(__file__).parent / "fixtures"
_ORDER = order_pb2.Order(symbol="BTC-USD", side=order_pb2.ORDER_SIDE_BUY, quantity="1", price="2")

_CREATE = {
    "success": True,
    "failure_reason": "UNKNOWN_FAILURE_REASON",
    "order_id": "11111111-1111-1111-1111-111111111111",
    "success_response": {
        "order_id": "11111111-1111-1111-1111-111111111111",
        "product_id": "BTC-USD",
        "side": "BUY",
        "client_order_id": "c-1",
    },
}
_CANCEL = {"results": [{"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": "a"}]}
_BBA = {
    "pricebooks": [
        {
            "product_id": "BTC-USD",
            "bids": [{"price": "1.5", "size": "2"}],
            "asks": [{"price": "1.6", "size": "3"}],
            "time": "2024-01-01T00:00:00.123456Z",
        }
    ]
}


def _user(data: bytes) -> list[Any]:
    env = parse.envelope_from_json(data)
    return [parse.ws_order_state(o) for ev in parse.ws_user_events(env) for o in ev.orders]


# Every public parser and a real (or documented) payload for it.
PARSERS: dict[str, tuple[Any, Callable[[bytes], Any]]] = {
    "order": ("http_order.json", parse.order_from_json),
    "orders": ("http_orders_list.json", parse.orders_page_from_json),
    "fills": ("http_fills.json", parse.fills_from_json),
    "accounts": ("http_accounts.json", parse.accounts_from_json),
    "products": ("http_products.json", parse.products_from_json),
    "products_future": ("http_products_future.json", parse.products_from_json),
    "products_perp": ("http_products_perp.json", parse.products_from_json),
    "book": ("http_product_book.json", parse.book_from_json),
    "candles": ("http_candles.json", lambda d: parse.candles_from_json(d, "BTC-USD", 5, 3600)),
    "ticker": ("http_ticker.json", parse.market_trades_from_json),
    "cfm_positions": ("http_cfm_positions.json", parse.positions_from_json),
    "cfm_position": ("http_cfm_position.json", parse.position_from_json),
    "cfm_balance": ("http_cfm_balance_summary.json", parse.futures_balance_from_json),
    "intx_positions": ("http_intx_positions.json", parse.intx_positions_from_json),
    "intx_position": ("http_intx_position.json", parse.intx_position_from_json),
    "intx_portfolio": ("http_intx_portfolio.json", parse.intx_portfolio_from_json),
    "intx_balances": ("http_intx_balances.json", parse.intx_balances_from_json),
    "create": (_CREATE, lambda d: parse.create_order_from_json(d, _ORDER, "BTC-USD", "BTC-USD", "c-1")),
    "cancel": (_CANCEL, parse.cancel_results_from_json),
    "best_bid_ask": (_BBA, parse.best_bid_ask_from_json),
    "ws_l2_snapshot": ("ws_l2_data_snapshot.json", parse.l2_messages),
    "ws_l2_update": ("ws_l2_data_update.json", parse.l2_messages),
    "ws_trades": ("ws_market_trades.json", lambda d: parse.ws_trades(parse.envelope_from_json(d))),
    "ws_ticker": ("ws_ticker.json", lambda d: parse.ws_prices(parse.envelope_from_json(d))),
    "ws_candles": ("ws_candles.json", lambda d: parse.ws_candles(parse.envelope_from_json(d))),
    "ws_heartbeats": (
        "ws_heartbeats.json",
        lambda d: parse.ws_heartbeat_counter(parse.envelope_from_json(d)),
    ),
    "ws_user": ("ws_user.json", _user),
}

# Decimal fields that may be negative by nature (PnL, signed sizes, buffers).
_SIGNED = {
    "unrealized_pnl",
    "realized_pnl",
    "liquidation_buffer",
    "liquidation_buffer_amount",
    "liquidation_buffer_percentage",
    "daily_realized_pnl",
}
# String fields of cqc messages that carry decimals.
_DECIMAL_FIELDS = {
    "price",
    "quantity",
    "quote_quantity",
    "stop_price",
    "filled_quantity",
    "remaining_quantity",
    "average_fill_price",
    "total_fees",
    "leverage",
    "last_price",
    "last_quantity",
    "fee",
    "order_price",
    "order_quantity",
    "cumulative_quantity",
    "total",
    "available",
    "locked",
    "borrowed",
    "entry_price",
    "mark_price",
    "liquidation_price",
    "unrealized_pnl",
    "realized_pnl",
    "margin",
    "maintenance_margin",
    "tick_size",
    "lot_size",
    "min_quantity",
    "max_quantity",
    "min_notional",
    "contract_size",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "last",
    "volume_24h",
}
_MIN_S, _MAX_S = -62_135_596_800, 253_402_300_799


def _check(value: Any, name: str = "") -> None:
    """Assert a parser's output is fully valid (recursing through containers and messages)."""
    if isinstance(value, Timestamp):
        assert _MIN_S <= value.seconds <= _MAX_S and 0 <= value.nanos < 10**9, name
    elif isinstance(value, Message):
        for field, field_value in value.ListFields():
            if isinstance(field_value, Sequence) and not isinstance(field_value, str | bytes):
                for item in field_value:
                    _check(item, field.name)
            else:
                _check(field_value, field.name)
    elif isinstance(value, list | tuple):
        for item in value:
            _check(item, name)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _check(getattr(value, f.name), f.name)
    elif isinstance(value, Decimal):
        assert value.is_finite() and (not value or abs(value.adjusted()) <= MAX_EXPONENT), name
        assert value >= 0 or name in _SIGNED, f"{name} negative"
    elif isinstance(value, str) and name in _DECIMAL_FIELDS and value:
        number = dec(value, name)  # raises if not a valid, bounded decimal
        assert number >= 0 or name in _SIGNED, f"{name} negative: {value}"
    elif (
        isinstance(value, int)
        and not isinstance(value, bool)
        and name in ("interval", "funding_interval_seconds")
    ):
        assert 0 <= value < 2**31, name


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((node, k))
        if isinstance(v, dict | list):
            _slots(v, out)
    return out


_BAD_DATES = [
    "2024-02-30T00:00:00Z",
    "2024-01-15T10:30:00Zjunk",
    "2024-01-15T10:30:00.1234567891Z",
    "2024-01-15T10:30:00",
    "10000-01-01T00:00:00Z",
]
_HUGE = ["1e41", "9" * 60, "1" + "0" * 45, "0." + "0" * 45 + "1", 2**70, 1e308]


def _mutate(doc: Any, slot: int, op: str, pick: int) -> Any:
    doc = json.loads(json.dumps(doc))
    slots = _slots(doc, [])
    if not slots:
        return doc
    parent, key = slots[slot % len(slots)]
    old = parent[key]
    if op == "delete" and isinstance(parent, dict):
        del parent[key]
    elif op == "null":
        parent[key] = None
    elif op == "type":
        parent[key] = [7, True, [], {}, "x", -1.5][pick % 6]
    elif op == "negative":
        parent[key] = (
            ("-" + old) if isinstance(old, str) else -abs(old) if isinstance(old, int | float) else -1
        )
    elif op == "huge":
        parent[key] = _HUGE[pick % len(_HUGE)]
    elif op == "date":
        parent[key] = _BAD_DATES[pick % len(_BAD_DATES)]
    return doc


def _load(source: Any) -> Any:
    return json.loads((FIXTURES / source).read_bytes()) if isinstance(source, str) else source


def test_every_fixture_parses_to_a_valid_message() -> None:
    for name, (source, fn) in PARSERS.items():
        try:
            _check(fn(json.dumps(_load(source)).encode()))
        except ParseError as exc:  # pragma: no cover - a real payload must parse
            raise AssertionError(f"{name}: {exc}") from None


@settings(max_examples=600, deadline=None)
@given(
    name=st.sampled_from(sorted(PARSERS)),
    mutations=st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(["delete", "null", "type", "negative", "huge", "date"]),
            st.integers(0, 100),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_mutated_payloads_raise_parse_error_or_parse_valid(
    name: str, mutations: list[tuple[int, str, int]]
) -> None:
    source, fn = PARSERS[name]
    doc = _load(source)
    for slot, op, pick in mutations:
        doc = _mutate(doc, slot, op, pick)
    try:
        out = fn(json.dumps(doc).encode())
    except ParseError:
        return
    _check(out)
