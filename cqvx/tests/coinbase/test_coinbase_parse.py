"""Every shared Advanced Trade sample parses to the right cqc message; garbage raises only ParseError."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.markets.v1 import instrument_pb2, orderbook_pb2, trade_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2
from cqvx.errors import InsufficientFunds, NotFound, OrderRejected, ParseError, UnsupportedOperation
from cqvx.venues.coinbase import parse

Load = Callable[[str], bytes]


def test_get_order(load: Load) -> None:
    o = parse.order_from_json(load("http_order.json"))
    assert (o.order_id, o.client_order_id, o.symbol, o.venue) == (
        "0000-000000-000000",
        "11111-000000-000000",
        "BTC-USD",
        "coinbase",
    )
    assert o.side == order_pb2.ORDER_SIDE_BUY
    assert o.order_type == order_pb2.ORDER_TYPE_LIMIT and o.time_in_force == order_pb2.TIME_IN_FORCE_GTC
    assert (o.quantity, o.price, o.post_only) == ("0.001", "10000", False)
    # OPEN with a filled part is PARTIALLY_FILLED.
    assert o.status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    assert (o.filled_quantity, o.average_fill_price, o.total_fees, o.fee_asset) == ("0.001", "50", "5", "USD")
    assert o.created_at.seconds == 1622455199  # 2021-05-31T09:59:59Z
    assert o.rejection_reason == ""  # REJECT_REASON_UNSPECIFIED is no reason


def test_orders_page(load: Load) -> None:
    orders, cursor = parse.orders_page_from_json(load("http_orders_list.json"))
    assert cursor is None
    assert [o.order_id for o in orders] == ["0000-000000-000001", "0000-000000-000002"]
    limit, market = orders
    assert limit.status == order_pb2.ORDER_STATUS_OPEN and limit.remaining_quantity == "0.01"
    assert (
        market.order_type == order_pb2.ORDER_TYPE_MARKET
        and market.time_in_force == order_pb2.TIME_IN_FORCE_IOC
    )
    assert market.quote_quantity == "100" and market.quantity == ""
    assert market.status == order_pb2.ORDER_STATUS_FILLED and market.remaining_quantity == "0"
    assert market.side == order_pb2.ORDER_SIDE_SELL


def test_fills(load: Load) -> None:
    fills, cursor = parse.fills_from_json(load("http_fills.json"))
    assert cursor is None
    f = fills[0]
    assert f.execution_type == execution_pb2.EXECUTION_TYPE_TRADE
    assert (f.trade_id, f.order_id, f.execution_id) == (
        "1111-11111-111111",
        "0000-000000-000000",
        "22222-2222222-22222222",
    )
    assert (f.last_price, f.last_quantity, f.fee, f.fee_asset) == ("45123.45", "0.005", "1.14", "USD")
    assert f.liquidity == execution_pb2.LIQUIDITY_SIDE_MAKER
    assert (
        fills[1].liquidity == execution_pb2.LIQUIDITY_SIDE_TAKER
        and fills[1].side == order_pb2.ORDER_SIDE_SELL
    )


def test_accounts(load: Load) -> None:
    balances, cursor = parse.accounts_from_json(load("http_accounts.json"))
    assert cursor is None
    btc, usd = balances
    assert (btc.asset, btc.available, btc.locked, btc.total) == ("BTC", "1.23456789", "0.005", "1.23956789")
    assert (usd.asset, usd.available, usd.locked, usd.total) == ("USD", "10000.5", "450", "10450.5")
    assert btc.balance_type == balance_pb2.BALANCE_TYPE_SPOT


def test_products(load: Load) -> None:
    btc = parse.products_from_json(load("http_products.json"))[0]
    assert (btc.symbol, btc.venue_symbol, btc.base_asset, btc.quote_asset) == (
        "BTC-USD",
        "BTC-USD",
        "BTC",
        "USD",
    )
    assert (btc.tick_size, btc.lot_size, btc.min_quantity, btc.max_quantity, btc.min_notional) == (
        "0.01",
        "0.00000001",
        "0.00000001",
        "3400",
        "1",
    )
    assert (btc.price_precision, btc.quantity_precision) == (2, 8)
    assert btc.instrument_type == instrument_pb2.INSTRUMENT_TYPE_SPOT
    assert btc.status == instrument_pb2.INSTRUMENT_STATUS_TRADING
    fut = parse.products_from_json(load("http_products_future.json"))[0]
    assert fut.instrument_type == instrument_pb2.INSTRUMENT_TYPE_FUTURE
    assert (fut.symbol, fut.venue_symbol, fut.contract_size, fut.tick_size) == (
        "BTC-USD-20301220",
        "BIP-20DEC30-CDE",
        "0.01",
        "5",
    )


def test_product_book(load: Load) -> None:
    book = parse.book_from_json(load("http_product_book.json"))
    assert book.symbol == "BTC-USD" and len(book.bids) == 5 and len(book.asks) == 5
    assert (book.bids[0].price, book.bids[0].quantity) == ("68923.66", "0.17189468")
    assert (book.asks[0].price, book.asks[0].quantity) == ("68923.67", "0.16987193")
    assert book.timestamp.nanos == 662782000
    assert len(parse.book_from_json(load("http_product_book.json"), depth=2).bids) == 2


def test_candles_oldest_first(load: Load) -> None:
    candles = parse.candles_from_json(load("http_candles.json"), "BTC-USD", 5, 3600, now_s=1712192400 + 3600)
    assert [c.open_time.seconds for c in candles] == [1712188800, 1712192400]
    assert candles[1].close_time.seconds == 1712196000
    assert (candles[1].open, candles[1].close, candles[1].volume) == ("66312.4", "66181.6", "355.82896243")
    assert all(c.is_closed for c in candles)


def test_market_trades_side_is_aggressor(load: Load) -> None:
    trades = parse.market_trades_from_json(load("http_ticker.json"))
    assert trades[0].trade_id == "995098663"
    # "side" on Coinbase trades is the maker side; cqc Trade.side is the taker's.
    assert trades[0].side == trade_pb2.TRADE_SIDE_BUY
    assert trades[2].side == trade_pb2.TRADE_SIDE_SELL


def test_l2_snapshot_and_update(load: Load) -> None:
    (snap,) = parse.l2_messages(load("ws_l2_data_snapshot.json"))
    assert isinstance(snap, orderbook_pb2.OrderBook)
    assert [lv.price for lv in snap.bids] == ["68900", "68899.5", "68899"]
    assert [lv.price for lv in snap.asks] == ["68901", "68901.5", "68902"]
    (upd,) = parse.l2_messages(load("ws_l2_data_update.json"))
    assert isinstance(upd, orderbook_pb2.OrderBookDelta) and upd.sequence == 1
    assert (upd.bids[0].price, upd.bids[0].quantity) == ("68900", "2")
    assert (upd.asks[0].price, upd.asks[0].quantity) == ("68901", "0")


def test_l2_level_is_the_one_update_of_an_event(load: Load) -> None:
    """The book's one-level entry point gets exactly what l2_levels would have put in its lists."""
    doc = json.loads(load("ws_l2_data_update.json"))
    updates = doc["events"][0]["updates"]
    for update in updates:
        doc["events"][0]["updates"] = [update]
        (ev,) = parse.l2_events(parse.envelope_from_json(json.dumps(doc)))
        one = parse.l2_level(ev)
        bids, asks = parse.l2_levels(ev)
        assert one is not None
        assert [(one[1], one[2])] == (bids if one[0] else asks) and not (asks if one[0] else bids)
    doc["events"][0]["updates"] = updates * 2
    (ev,) = parse.l2_events(parse.envelope_from_json(json.dumps(doc)))
    assert parse.l2_level(ev) is None  # more than one: the lists
    doc["events"][0]["updates"] = [dict(updates[0], side="ask")]
    (ev,) = parse.l2_events(parse.envelope_from_json(json.dumps(doc)))
    with pytest.raises(ParseError, match="l2 side"):
        parse.l2_level(ev)


def test_ws_channels(load: Load) -> None:
    trades = parse.ws_trades(parse.envelope_from_json(load("ws_market_trades.json")))
    assert [t.trade_id for t in trades] == ["995098700", "995098701"]
    assert trades[0].side == trade_pb2.TRADE_SIDE_SELL  # maker BUY -> taker SELL
    (price,) = parse.ws_prices(parse.envelope_from_json(load("ws_ticker.json")))
    assert (price.last, price.bid, price.ask, price.bid_size, price.ask_size) == (
        "68900.5",
        "68900",
        "68901",
        "1.5",
        "0.5",
    )
    (candle,) = parse.ws_candles(parse.envelope_from_json(load("ws_candles.json")))
    assert candle.open_time.seconds == 1775521800 and candle.close == "68920.5"
    assert parse.ws_heartbeat_counter(parse.envelope_from_json(load("ws_heartbeats.json"))) == 42
    env = parse.envelope_from_json(load("ws_subscriptions.json"))
    assert env.channel == "subscriptions"
    (ev,) = parse.ws_user_events(parse.envelope_from_json(load("ws_user.json")))
    order = parse.ws_order_state(ev.orders[0])
    assert order.status == order_pb2.ORDER_STATUS_OPEN and order.quantity == "0.001"
    assert order.order_type == order_pb2.ORDER_TYPE_LIMIT  # "Limit" casing on the user channel


def test_heartbeat_counter_as_string() -> None:
    data = (
        b'{"channel":"heartbeats","sequence_num":3,'
        b'"events":[{"current_time":"x","heartbeat_counter":"3049"}]}'
    )
    assert parse.ws_heartbeat_counter(parse.envelope_from_json(data)) == 3049


def test_user_channel_docs_sample() -> None:
    # venues.md section 8: the channels page sample, with post_only as a string and Go zero times.
    data = json.dumps(
        {
            "channel": "user",
            "client_id": "",
            "timestamp": "2023-02-09T20:33:57.609931463Z",
            "sequence_num": 0,
            "events": [
                {
                    "type": "snapshot",
                    "orders": [
                        {
                            "avg_price": "50000",
                            "cancel_reason": "",
                            "client_order_id": "XXX",
                            "completion_percentage": "100.00",
                            "cumulative_quantity": "0.01",
                            "filled_value": "500",
                            "leaves_quantity": "0",
                            "limit_price": "50000",
                            "number_of_fills": "1",
                            "order_id": "YYY",
                            "order_side": "BUY",
                            "order_type": "Limit",
                            "post_only": "false",
                            "product_id": "BTC-USD",
                            "status": "FILLED",
                            "stop_price": "",
                            "time_in_force": "GOOD_UNTIL_CANCELLED",
                            "total_fees": "2",
                            "creation_time": "2024-06-21T18:29:13.909347Z",
                            "end_time": "0001-01-01T00:00:00Z",
                            "start_time": "0001-01-01T00:00:00Z",
                        }
                    ],
                    "positions": {"perpetual_futures_positions": [], "expiring_futures_positions": []},
                }
            ],
        }
    ).encode()
    env = parse.envelope_from_json(data)
    assert env.timestamp.endswith("463Z")
    order = parse.ws_order_state(parse.ws_user_events(env)[0].orders[0])
    assert order.status == order_pb2.ORDER_STATUS_FILLED and order.filled_quantity == "0.01"
    assert order.price == "50000" and order.post_only is False and order.remaining_quantity == "0"
    assert parse.timestamp("2023-02-09T20:33:57.609931463Z").nanos == 609931463  # type: ignore[union-attr]


def test_create_order_answers() -> None:
    order = order_pb2.Order(
        symbol="LTC-BTC",
        side=order_pb2.ORDER_SIDE_SELL,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="1",
        price="0.01",
    )
    ok = json.dumps(
        {
            "success": True,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "52cf",
            "success_response": {
                "order_id": "52cf",
                "product_id": "LTC-BTC",
                "side": "SELL",
                "client_order_id": "4d76",
            },
            "order_configuration": None,
        }
    ).encode()
    rep = parse.create_order_from_json(ok, order, "LTC-BTC", "LTC-BTC", "4d76")
    assert (rep.order_id, rep.client_order_id, rep.order_status) == (
        "52cf",
        "4d76",
        order_pb2.ORDER_STATUS_OPEN,
    )
    assert rep.execution_type == execution_pb2.EXECUTION_TYPE_NEW
    # venues.md section 1.4: HTTP 200, success false, error_response.
    bad = json.dumps(
        {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "",
            "error_response": {
                "error": "UNSUPPORTED_ORDER_CONFIGURATION",
                "message": "source is not enabled",
                "error_details": "",
                "new_order_failure_reason": "UNSUPPORTED_ORDER_CONFIGURATION",
            },
            "order_configuration": {},
        }
    ).encode()
    with pytest.raises(UnsupportedOperation) as info:
        parse.create_order_from_json(bad, order, "LTC-BTC", "LTC-BTC", "4d76")
    assert info.value.code == "UNSUPPORTED_ORDER_CONFIGURATION"
    funds = json.dumps(
        {
            "success": False,
            "error_response": {
                "error": "INSUFFICIENT_FUND",
                "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND",
            },
        }
    ).encode()
    with pytest.raises(InsufficientFunds):
        parse.create_order_from_json(funds, order, "LTC-BTC", "LTC-BTC", "x")
    only_preview = json.dumps(
        {
            "success": False,
            "error_response": {
                "error": "UNKNOWN_FAILURE_REASON",
                "preview_failure_reason": "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
            },
        }
    ).encode()
    with pytest.raises(OrderRejected) as rej:
        parse.create_order_from_json(only_preview, order, "LTC-BTC", "LTC-BTC", "x")
    assert rej.value.code == "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY"


def test_cancel_results() -> None:
    data = (
        b'{"results":[{"success":true,"failure_reason":"UNKNOWN_CANCEL_FAILURE_REASON","order_id":"a"},'
        b'{"success":false,"failure_reason":"UNKNOWN_CANCEL_ORDER","order_id":"b"}]}'
    )
    (a, err_a), (b, err_b) = parse.cancel_results_from_json(data)
    assert (a, err_a) == ("a", None)
    assert b == "b" and isinstance(err_b, NotFound) and err_b.code == "UNKNOWN_CANCEL_ORDER"


@pytest.mark.parametrize("bad", ["", "2024-13-01T00:00:00Z", "yesterday", "2024-01-01T25:00:00Z"])
def test_bad_timestamps(bad: str) -> None:
    if bad == "":
        assert parse.timestamp(bad) is None
    else:
        with pytest.raises(ParseError):
            parse.timestamp(bad)


def test_timestamp_offsets() -> None:
    a = parse.timestamp("2024-01-15T10:30:00+02:00")
    b = parse.timestamp("2024-01-15T08:30:00Z")
    assert a == b


# --- garbage and mutations raise only ParseError ----------------------------------------------------

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "http_order.json": parse.order_from_json,
    "http_orders_list.json": parse.orders_page_from_json,
    "http_fills.json": parse.fills_from_json,
    "http_accounts.json": parse.accounts_from_json,
    "http_products.json": parse.products_from_json,
    "http_products_future.json": parse.products_from_json,
    "http_product_book.json": parse.book_from_json,
    "http_ticker.json": parse.market_trades_from_json,
    "http_candles.json": lambda d: parse.candles_from_json(d, "BTC-USD", 5, 3600),
    "ws_l2_data_snapshot.json": parse.l2_messages,
    "ws_l2_data_update.json": parse.l2_messages,
    "ws_market_trades.json": lambda d: parse.ws_trades(parse.envelope_from_json(d)),
    "ws_ticker.json": lambda d: parse.ws_prices(parse.envelope_from_json(d)),
    "ws_candles.json": lambda d: parse.ws_candles(parse.envelope_from_json(d)),
    "ws_heartbeats.json": lambda d: parse.ws_heartbeat_counter(parse.envelope_from_json(d)),
    "ws_user.json": lambda d: [
        parse.ws_order_state(o) for ev in parse.ws_user_events(parse.envelope_from_json(d)) for o in ev.orders
    ],
}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "1e999", "NaN", "-1", "0", "abc", "2024-99-99T00:00:00Z", "1.5"]),
)


def _mutate(obj: Any, path_choice: int, value: Any) -> Any:
    """Replace the ``path_choice``-th scalar (in walk order, modulo the count) with ``value``."""
    scalars: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k in list(node):
                if isinstance(node[k], dict | list):
                    walk(node[k])
                else:
                    scalars.append((node, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, dict | list):
                    walk(v)
                else:
                    scalars.append((node, i))

    walk(obj)
    if scalars:
        parent, key = scalars[path_choice % len(scalars)]
        parent[key] = value
    return obj


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=60, deadline=None)
@given(choice=st.integers(0, 10_000), value=json_scalars)
def test_mutated_samples_raise_only_parse_error(load: Load, name: str, choice: int, value: Any) -> None:
    doc = json.loads(load(name))
    data = json.dumps(_mutate(doc, choice, value), allow_nan=True).encode()
    with contextlib.suppress(ParseError):
        PARSERS[name](data)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=40, deadline=None)
@given(
    garbage=st.one_of(
        st.binary(max_size=64),
        st.text(max_size=64).map(str.encode),
        st.recursive(
            json_scalars,
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_garbage_raises_only_parse_error(name: str, garbage: bytes) -> None:
    with contextlib.suppress(ParseError):
        PARSERS[name](garbage)


def test_truncated_samples_raise_parse_error(load: Load) -> None:
    for name, fn in PARSERS.items():
        data = load(name)
        with pytest.raises(ParseError):
            fn(data[: len(data) // 2])


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.from_regex(r"[0-9]{1,6}(\.[0-9]{0,6})?", fullmatch=True),
        st.text(max_size=10),
    )
)
def test_dec_text_fast_path_matches_decimal_path(text: str) -> None:
    from cqvx.num import dec, dec_str

    try:
        want: str | None = dec_str(dec(text)) if text else ""
    except ParseError:
        want = None
    if want is None:
        with pytest.raises(ParseError):
            parse.dec_text(text, "x", signed=True)
    else:
        # signed=True: both paths compared on every value; unsigned fields also refuse negatives.
        assert parse.dec_text(text, "x", signed=True) == (want if want != "-0" else "0")
