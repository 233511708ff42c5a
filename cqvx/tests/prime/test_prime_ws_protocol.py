"""Prime WebSocket protocol pieces: the signed subscribe and the l2_data / orders payloads."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest, ParseError
from cqvx.secrets import Secret
from cqvx.venues.prime import ws_protocol as wp

from .conftest import ACCESS_KEY, PASSPHRASE, PORTFOLIO, SIGNING_KEY, SVC_ACCOUNT


def _sub(channel: str, products: tuple[str, ...] = (), portfolio: str = "") -> dict[str, object]:
    return wp.subscribe_message(
        channel,
        access_key=ACCESS_KEY,
        passphrase=Secret(PASSPHRASE),
        signing_key=Secret(SIGNING_KEY),
        svc_account_id=SVC_ACCOUNT,
        timestamp="1700000000",
        portfolio_id=portfolio,
        product_ids=products,
    )


def test_subscribe_is_signed_over_the_documented_prehash() -> None:
    msg = _sub("l2_data", ("BTC-USD", "ETH-USD"))
    prehash = "l2_data" + ACCESS_KEY + SVC_ACCOUNT + "1700000000" + "" + "BTC-USDETH-USD"
    want = base64.b64encode(
        hmac.new(SIGNING_KEY.encode(), prehash.encode(), hashlib.sha256).digest()
    ).decode()
    assert msg["signature"] == want
    assert (msg["type"], msg["api_key_id"], msg["timestamp"], msg["portfolio_id"]) == (
        "subscribe",
        SVC_ACCOUNT,
        "1700000000",
        "",
    )
    assert msg["product_ids"] == ["BTC-USD", "ETH-USD"]


def test_subscribe_rules() -> None:
    with pytest.raises(InvalidRequest):
        _sub("l2_data", tuple(f"P{i}-USD" for i in range(11)))  # 10 products per connection
    with pytest.raises(InvalidRequest):
        _sub("orders")  # needs the portfolio
    assert _sub("orders", portfolio=PORTFOLIO)["portfolio_id"] == PORTFOLIO
    with pytest.raises(InvalidRequest):
        _sub("level2")
    assert wp.SUBSCRIBE_DEADLINE_S == 5.0


def test_l2_snapshot(load: Callable[[str], bytes]) -> None:
    env = wp.decode_envelope(load("ws_l2_snapshot.json"))
    assert (env.channel, env.sequence_num) == ("l2_data", 1)
    snap, product, bids, asks = wp.l2_levels(env.events[0])
    assert snap and product == "BTC-USD"
    assert bids == [(Decimal("22145.3"), Decimal("0.01083825"))] and asks == [
        (Decimal("22146.1"), Decimal("0.5"))
    ]


def test_orders_entry_is_cumulative_state(load: Callable[[str], bytes]) -> None:
    env = wp.decode_envelope(load("ws_orders_snapshot.json"))
    entries = env.events[0]["orders"]
    assert isinstance(entries, list)
    o = wp.ws_order(entries[0])
    assert o.status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    assert (o.filled_quantity, o.remaining_quantity, o.quantity, o.average_fill_price, o.total_fees) == (
        "0.2",
        "0.3",
        "0.5",
        "22145.3",
        "4.43",
    )
    assert o.side == order_pb2.ORDER_SIDE_BUY and o.order_type == order_pb2.ORDER_TYPE_LIMIT


@pytest.mark.parametrize(
    "event",
    [
        {"type": "snapshot", "product_id": "BTC-USD"},
        {"type": "weird", "product_id": "BTC-USD", "updates": []},
        {"type": "update", "product_id": "BTC-USD", "updates": [{"side": "ask", "px": "1", "qty": "1"}]},
        {"type": "update", "product_id": "BTC-USD", "updates": [{"side": "bid", "px": "NaN", "qty": "1"}]},
    ],
)
def test_bad_l2_events(event: dict[str, object]) -> None:
    with pytest.raises(ParseError):
        wp.l2_levels(event)


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            k: _json
            for k in (
                "order_id",
                "status",
                "side",
                "product_id",
                "cum_qty",
                "leaves_qty",
                "avg_px",
                "fees",
                "limit_px",
            )
        },
    ),
    st.fixed_dictionaries({}, optional={k: _json for k in ("type", "product_id", "updates")}),
)
def test_garbage_raises_parse_error_only(entry: dict[str, object], event: dict[str, object]) -> None:
    for fn in (lambda: wp.ws_order(entry), lambda: wp.l2_levels(event)):
        with contextlib.suppress(ParseError):
            fn()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120) | _json.map(lambda v: json.dumps(v).encode()))
def test_garbage_envelopes(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        wp.decode_envelope(data)
