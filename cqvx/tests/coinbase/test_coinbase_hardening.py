"""Review regressions: ambiguous placements, shared rate limits, stream recovery, hostile payloads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import ParseError
from cqvx.fills import FillTracker
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.transport.ratelimit import RateLimiterRegistry
from cqvx.types import Stream
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig, parse
from cqvx.venues.coinbase.endpoints import ORDERS

from .conftest import ED_KEY_NAME, KEY_NAME

MakeConfig = Callable[..., CoinbaseConfig]


def limit(coid: str, price: str = "40000", qty: str = "0.02") -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity=qty,
        price=price,
    )


# --- placement outcomes that only a lookup can resolve ----------------------------------------------


async def test_reply_lost_after_the_venue_acted_resolves_to_the_one_order(
    fake: FakeCoinbase, client: CoinbaseClient
) -> None:
    # Every attempt creates (or re-finds) the order and then loses the answer.
    fake.reset(ORDERS, times=10, method="POST", after=True)
    rep = await client.place_order(limit("lost-1"))
    assert len(fake.orders) == 1 and rep.order_id in fake.orders
    assert rep.client_order_id == "lost-1" and rep.execution_type == execution_pb2.EXECUTION_TYPE_STATUS


async def test_unreadable_2xx_on_placement_is_resolved_not_reported_as_failure(
    fake: FakeCoinbase, client: CoinbaseClient
) -> None:
    # The venue created the order, but the 200 body is not the documented shape: the order exists,
    # so a ParseError would tell the caller "failed" about a live order.
    fake.fail(ORDERS, status=200, body=b"<html>gateway</html>", method="POST", after=True)
    rep = await client.place_order(limit("garbled-1"))
    assert len(fake.orders) == 1 and rep.order_id in fake.orders
    assert rep.client_order_id == "garbled-1"


# --- rate limits are per credential, shared across clients ------------------------------------------


async def test_clients_on_one_key_share_the_private_budget(
    fake: FakeCoinbase, make_config: MakeConfig, ec_pem: str, ed_secret: str
) -> None:
    shared = RateLimiterRegistry()
    cfg = make_config(fake, secret=ec_pem, private_rps=40.0)
    a = CoinbaseClient(cfg, rate_limiters=shared)
    b = CoinbaseClient(cfg, rate_limiters=shared)
    other = CoinbaseClient(make_config(fake, key_name=ED_KEY_NAME, secret=ed_secret), rate_limiters=shared)
    anonymous = CoinbaseClient(make_config(fake), rate_limiters=shared)
    try:
        assert a._private is b._private  # same key: one budget
        assert other._private is not a._private  # another key: its own budget
        assert a._public is other._public is anonymous._public  # per-IP limits: one per process
        # The same key configured with a different limit is refused, naming the conflict.
        with pytest.raises(ValueError, match="already configured"):
            CoinbaseClient(make_config(fake, secret=ec_pem, private_rps=80.0), rate_limiters=shared)
        # Together the two clients stay within one key's limit: 60 requests at 40/s, burst 40.
        start = time.monotonic()
        await asyncio.gather(*((a if i % 2 else b).get_balances() for i in range(60)))
        elapsed = time.monotonic() - start
        assert elapsed >= (60 - 40) / 40.0 * 0.9
        arrivals = sorted(r.at for r in fake.requests_to("/api/v3/brokerage/accounts"))
        assert len(arrivals) == 60
        # The n-th request (0-based) past the burst cannot reach the server before the shared bucket
        # has refilled for it.  A loaded machine only delays arrivals, never advances them, so this
        # bound holds under load; two separate 40/s budgets would break it (all 60 inside ~0.25 s).
        for n, t in enumerate(arrivals):
            if n >= 40:
                assert t - start >= (n + 1 - 40) / 40.0 * 0.9, (n, t - start)
    finally:
        for c in (a, b, other, anonymous):
            await c.aclose()


# --- stream recovery -----------------------------------------------------------------------------------


async def _take_until(stream: Stream[Any], pred: Callable[[Any], bool], timeout: float = 3.0) -> Any:
    async with asyncio.timeout(timeout):
        async for item in stream:
            if pred(item):
                return item
    raise AssertionError("stream ended")


async def test_user_reconnect_does_not_freeze_the_books(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    book = client.subscribe_order_book("BTC-USD", 3)
    await _take_until(book, lambda b: bool(b.bids))
    execs = client.subscribe_executions()
    reader = asyncio.create_task(_take_until(execs, lambda _r: False, timeout=10))
    try:
        await fake.wait_subscribed("user")
        assert await fake.drop_kind("user") == 1
        await fake.wait_subscribed("user")  # the user connection is back
        await fake.push_l2("BTC-USD", bids=[("49995", "0.7")])
        top = await _take_until(book, lambda b: b.bids[0].price == "49995")
        assert top.bids[0].quantity == "0.7"
    finally:
        reader.cancel()
        await execs.aclose()
        await book.aclose()


async def test_fill_lost_in_a_sequence_gap_is_still_reported(
    fake: FakeCoinbase, client: CoinbaseClient
) -> None:
    execs = client.subscribe_executions()
    queue: asyncio.Queue[execution_pb2.ExecutionReport] = asyncio.Queue()

    async def pump() -> None:
        async for rep in execs:
            await queue.put(rep)

    task = asyncio.create_task(pump())
    try:
        await fake.wait_subscribed("user")
        rep = await client.place_order(limit("gap-1"))
        async with asyncio.timeout(3):
            while (await queue.get()).execution_type != execution_pb2.EXECUTION_TYPE_NEW:
                pass
        # The order fills completely and the update carrying it is lost (a sequence gap): the
        # re-subscribe snapshot lists open orders only, so only reconciliation can report it.
        await fake.fill(rep.order_id, notify=False)
        fake.inject_gap(1)  # the next message (a heartbeat) reveals the gap
        async with asyncio.timeout(3):
            while True:
                got = await queue.get()
                if got.execution_type == execution_pb2.EXECUTION_TYPE_TRADE:
                    break
        assert got.order_id == rep.order_id and got.last_quantity == "0.02"
        assert got.order_status == order_pb2.ORDER_STATUS_FILLED
        assert client.streams.gaps >= 1
    finally:
        task.cancel()
        await execs.aclose()


def _state(
    cum: str, avg: str, status: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_PARTIALLY_FILLED
) -> order_pb2.Order:
    return order_pb2.Order(
        order_id="o-1",
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        status=status,
        quantity="10",
        filled_quantity=cum,
        average_fill_price=avg,
        total_fees="0",
    )


def test_fill_with_an_extreme_price_is_reported_once_not_swallowed() -> None:
    tracker = FillTracker(venue="coinbase")
    tracker.update(_state("0", ""), baseline=True)
    (fill,) = tracker.update(_state("1", "100000000000000000000"))
    assert fill.execution_type == execution_pb2.EXECUTION_TYPE_TRADE
    assert fill.last_quantity == "1" and fill.last_price == "100000000000000000000"
    assert tracker.update(_state("1", "100000000000000000000")) == []  # a replay adds nothing


# --- hostile payloads raise ParseError and nothing else ---------------------------------------------

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
    "error_response": {
        "error": "INSUFFICIENT_FUND",
        "message": "insufficient",
        "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND",
        "new_order_failure_reason": "INSUFFICIENT_FUND",
    },
}
_CANCEL = {
    "results": [
        {"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": "a"},
        {"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": "b"},
    ]
}
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
_ORDER = order_pb2.Order(symbol="BTC-USD", side=order_pb2.ORDER_SIDE_BUY, quantity="1", price="2")
_DOCS: dict[str, tuple[dict[str, Any], Callable[[bytes], Any]]] = {
    "create": (_CREATE, lambda d: parse.create_order_from_json(d, _ORDER, "BTC-USD", "BTC-USD", "c-1")),
    "cancel": (_CANCEL, parse.cancel_results_from_json),
    "best_bid_ask": (_BBA, parse.best_bid_ask_from_json),
}
_FIXTURES: dict[str, Callable[[bytes], Any]] = {
    "http_candles.json": lambda d: parse.candles_from_json(d, "BTC-USD", 5, 3600),
    "http_order.json": parse.order_from_json,
    "http_fills.json": parse.fills_from_json,
    "ws_heartbeats.json": lambda d: parse.ws_heartbeat_counter(parse.envelope_from_json(d)),
    "ws_l2_data_update.json": parse.l2_messages,
    "ws_user.json": lambda d: [
        FillTracker(venue="coinbase").update(parse.ws_order_state(o))
        for ev in parse.ws_user_events(parse.envelope_from_json(d))
        for o in ev.orders
    ],
}
# Values that slip past naive checks: digits that str.isdigit() accepts but int() refuses, integers
# beyond int64 and beyond int()'s digit limit, full-width digits, Python-only decimal syntax.
hostile = st.sampled_from(
    [
        "²",
        "³³",
        "١٢٣",
        "１２",
        "9" * 30,
        "9" * 5000,
        2**64,
        2**70,
        -(2**70),
        "1_000",
        "1e1000000",
        "-0",
        "0e-99999",
    ]
)


def _scalar_slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        if isinstance(v, dict | list):
            _scalar_slots(v, out)
        else:
            out.append((node, k))
    return out


def _mutated(doc: Any, choice: int, value: Any) -> bytes:
    doc = json.loads(json.dumps(doc))
    slots = _scalar_slots(doc, [])
    parent, key = slots[choice % len(slots)]
    parent[key] = value
    return json.dumps(doc).encode()


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(_DOCS)), choice=st.integers(0, 1000), value=hostile)
def test_unfixtured_parsers_raise_only_parse_error(name: str, choice: int, value: Any) -> None:
    doc, fn = _DOCS[name]
    with contextlib.suppress(ParseError):
        fn(_mutated(doc, choice, value))


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(_FIXTURES)), choice=st.integers(0, 1000), value=hostile)
def test_hostile_scalars_raise_only_parse_error(
    load: Callable[[str], bytes], name: str, choice: int, value: Any
) -> None:
    with contextlib.suppress(ParseError):
        _FIXTURES[name](_mutated(json.loads(load(name)), choice, value))


@pytest.mark.parametrize("text", ["²", "9" * 30, "9" * 5000, "１２"])
def test_timestamp_digits_that_int_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse.timestamp(text)


def test_sequence_beyond_int64_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse.envelope_from_json(json.dumps({"channel": "l2_data", "sequence_num": 2**64}))


def test_key_name_is_the_shared_identity_not_stored_plainly() -> None:
    reg = RateLimiterRegistry()
    reg.get("coinbase", "private", rate=1, capacity=1, identity=KEY_NAME)
    assert all(KEY_NAME not in "".join(k) for k in reg._buckets)
