"""FalconX payload parsing: documented samples, exact decimals from JSON numbers, garbage -> ParseError."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import execution_pb2, order_pb2, rfq_pb2
from cqvx.errors import ParseError
from cqvx.venues.falconx import parse

LATER = datetime(2030, 1, 1, tzinfo=UTC)
EARLY = datetime(2019, 1, 1, tzinfo=UTC)


def test_open_quote(load: Callable[[str], bytes]) -> None:
    v = parse.decode_quote(load("quote.json"))
    q = parse.quote_of(v, EARLY)
    assert q.quote_id == "00c884b056f949338788dfb59e495377"
    assert q.symbol == "BTC-USD" and q.venue == "falconx"
    assert q.side == order_pb2.ORDER_SIDE_BUY
    assert q.buy_price == "12650" and q.sell_price == ""
    assert q.quantity == "10" and q.quantity_asset == "BTC"
    assert q.status == rfq_pb2.QUOTE_STATUS_OPEN
    assert q.client_quote_id == "d6f3e1fa-e148-4009-9c07-a87f9ae78d1a"
    assert q.expires_at.ToDatetime(UTC) == datetime(2019, 6, 27, 11, 59, 22, 875725, tzinfo=UTC)
    # The same quote after its t_expiry, unfilled: expired.
    assert parse.quote_of(v, LATER).status == rfq_pb2.QUOTE_STATUS_EXPIRED


def test_executed_two_way_quote(load: Callable[[str], bytes]) -> None:
    v = parse.decode_quote(load("executed_quote.json"))
    q = parse.quote_of(v, LATER)
    assert q.status == rfq_pb2.QUOTE_STATUS_EXECUTED
    assert q.side == order_pb2.ORDER_SIDE_UNSPECIFIED  # two-way
    assert q.executed_side == order_pb2.ORDER_SIDE_BUY
    assert q.executed_price == "294" and q.sell_price == "293.94"
    report = parse.report_of(v, LATER)
    assert report.execution_type == execution_pb2.EXECUTION_TYPE_TRADE
    assert report.order_status == order_pb2.ORDER_STATUS_FILLED
    assert report.last_quantity == "0.1" and report.last_price == "294"
    assert report.execution_id == report.trade_id == "fad0ac687b1e439a92a0bafd92441e48"


def test_order_price_comes_from_the_executed_side(load: Callable[[str], bytes]) -> None:
    # venues.md §11: the order response has no price_executed; the price is buy_price of a buy.
    order = parse.order_of(parse.decode_quote(load("order.json")), LATER)
    assert order.status == order_pb2.ORDER_STATUS_FILLED
    assert order.average_fill_price == "8545.12"
    assert order.order_type == order_pb2.ORDER_TYPE_LIMIT
    assert order.time_in_force == order_pb2.TIME_IN_FORCE_FOK
    assert order.price == "8547.11"
    assert order.total_fees == "63.25" and order.fee_asset == "USD"
    assert order.filled_quantity == "10"


def test_history(load: Callable[[str], bytes]) -> None:
    views = parse.decode_quotes(load("executed_quotes.json"))
    assert [v.executed_price for v in views] == [Decimal("293.1"), Decimal("293.03")]
    assert [v.side_executed for v in views] == [order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL]


def test_balances_exact_and_negative(load: Callable[[str], bytes]) -> None:
    got = {b.asset: b for b in parse.balances(load("balances.json"))}
    assert got["ETH"].total == "-1.3772005993291505"  # all 17 digits, not a float's rounding
    assert got["USD"].available == "187.624207"
    assert got["BTC"].total == "0"
    only_api = parse.balances(load("balances.json"), "api")
    assert {b.asset for b in only_api} == {"ETH", "USD"}


def test_pairs(load: Callable[[str], bytes]) -> None:
    assert [i.symbol for i in parse.instruments(load("pairs.json"))] == ["BTC-USD", "ETH-USD"]


def test_json_numbers_are_exact() -> None:
    # 0.1 + 17 more digits: a float would print 0.1; the raw text is kept.
    body = json.loads(_QUOTE)
    raw = _QUOTE.replace('"buy_price": 12650', '"buy_price": 0.100000000000000000055511151231257827')
    assert body["buy_price"] == 12650
    q = parse.quote_of(parse.decode_quote(raw), EARLY)
    assert q.buy_price == "0.100000000000000000055511151231257827"


def test_quote_denominated_fill_truncates_base_quantity() -> None:
    raw = json.loads(_QUOTE)
    raw.update(
        quantity_requested={"token": "USD", "value": "100"},
        is_filled=True,
        side_executed="buy",
        price_executed=3,
    )
    v = parse.decode_quote(json.dumps(raw))
    assert v.base_quantity() == Decimal("33.333333333333333333")  # rounded down, never up
    order = parse.order_of(v, LATER)
    assert order.quote_quantity == "100" and order.quantity == ""


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("buy_price", "NaN"),
        ("buy_price", '"1_000"'),
        ("buy_price", "1e400"),
        ("buy_price", "true"),
        ("buy_price", '" 12"'),
        ("t_expiry", '"tomorrow"'),
        ("fx_quote_id", '""'),
        ("side_requested", '"up"'),
    ],
)
def test_bad_fields_are_parse_errors(field: str, value: str) -> None:
    raw = json.loads(_QUOTE)
    raw[field] = "@@"
    text = json.dumps(raw).replace('"@@"', value)
    with pytest.raises(ParseError):
        parse.decode_quote(text)


@pytest.mark.parametrize("missing", ["fx_quote_id", "t_expiry", "token_pair", "quantity_requested"])
def test_missing_meaning_is_not_empty(missing: str) -> None:
    raw = json.loads(_QUOTE)
    del raw[missing]
    with pytest.raises(ParseError):
        parse.decode_quote(json.dumps(raw))


def test_filled_quote_without_price_is_a_parse_error() -> None:
    raw = json.loads(_QUOTE)
    raw.update(is_filled=True, side_executed="sell", sell_price=None, price_executed=None)
    with pytest.raises(ParseError):
        parse.decode_quote(json.dumps(raw))


_QUOTE = (
    '{"status": "success", "fx_quote_id": "00c884b056f949338788dfb59e495377", "buy_price": 12650, '
    '"sell_price": null, "token_pair": {"base_token": "BTC", "quote_token": "USD"}, '
    '"quantity_requested": {"token": "BTC", "value": "10"}, "side_requested": "buy", '
    '"t_quote": "2019-06-27T11:59:21.875725+00:00", "t_expiry": "2019-06-27T11:59:22.875725+00:00", '
    '"is_filled": false, "side_executed": null, "price_executed": null, "t_execute": null}'
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
_KEYS = list(json.loads(_QUOTE))


@st.composite
def _mangled_quote(draw: st.DrawFn) -> str:
    raw = json.loads(_QUOTE)
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=4)):
        if draw(st.booleans()):
            raw.pop(key, None)
        else:
            raw[key] = draw(_json)
    return json.dumps(raw)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), _json.map(json.dumps), _mangled_quote()))
def test_garbage_raises_only_parse_error(data: bytes | str) -> None:
    for fn in (parse.decode_quote, parse.decode_quotes, parse.balances, parse.instruments):
        try:
            result = fn(data)
        except ParseError:
            continue
        if isinstance(result, parse.QuoteView):
            # What parsed must also convert.
            parse.quote_of(result, LATER)
            parse.order_of(result, LATER)
            parse.report_of(result, LATER)
