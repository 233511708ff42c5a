"""Position mode (one-way/hedge) of the ccxt adapter against each venue's wire-level fake, through
unmodified ccxt over loopback: a one-way account places; a hedge-mode account is refused with
InvalidRequest and nothing is sent; a mode read that fails or answers no documented value is
Unavailable (retry-safe, nothing sent) and the next placement reads again."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import InvalidRequest, Unavailable
from cqvx.secrets import Secret
from cqvx.testing.fake_binance.server import FakeBinance
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.gate import USER_ID
from cqvx.testing.fake_ccxt.harness import MARKET_TYPES, fake_class
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.ccxt.position_mode import HEALTH_WAIT_S, classify
from cqvx.venues.ccxt.quirks import QUIRKS, quirks_for
from cqvx.venues.sim import SimClock, SimVenue

KEY, SECRET, PASSPHRASE = "k-mode", "s-mode", "p-mode"
SYMBOL = "BTC-USDT-PERP"
VENUES = ("binance", "bybit", "okx", "bitget", "gate")
# venue -> the documented mode read's path on the fake, and the order placement path.
MODE_PATH = {
    "binance": "/fapi/v1/positionSide/dual",
    "bybit": "/v5/position/list",
    "okx": "/api/v5/account/config",
    "bitget": "/api/v2/mix/account/account",
    "gate": "/api/v4/futures/usdt/accounts",
}
PLACE_PATH = {
    "binance": "/fapi/v1/order",
    "bybit": "/v5/order/create",
    "okx": "/api/v5/trade/order",
    "bitget": "/api/v2/mix/order/place-order",
    "gate": "/api/v4/futures/usdt/orders",
}
# A 200 answer in the venue's success envelope that names no documented mode value.
UNDOCUMENTED = {
    "binance": {"dualSidePosition": "maybe"},
    "bybit": {"retCode": 0, "retMsg": "OK", "result": {"list": []}, "retExtInfo": {}, "time": 1},
    "okx": {"code": "0", "msg": "", "data": [{"uid": "1", "acctLv": "2"}]},
    "bitget": {"code": "00000", "msg": "success", "requestTime": 1, "data": {"posMode": "single"}},
    "gate": {"user": 1, "currency": "USDT", "in_dual_mode": 1},
}

Fake = FakeBinance | SimFake


@pytest.fixture
async def started() -> AsyncIterator[list[tuple[Fake, CcxtClient]]]:
    running: list[tuple[Fake, CcxtClient]] = []
    yield running
    for fake, client in running:
        await client.aclose()
        await fake.stop()


async def _start(running: list[tuple[Fake, CcxtClient]], venue: str) -> tuple[Fake, CcxtClient]:
    sim = SimVenue(quiet_sim_config(), clock=SimClock())
    fake: Fake = (
        FakeBinance(KEY, SECRET, sim=sim)
        if venue == "binance"
        else fake_class(venue)(KEY, SECRET, PASSPHRASE, sim=sim)
    )
    await fake.start()
    config = CcxtConfig(
        venue,
        Secret(KEY),
        Secret(SECRET),
        Secret(PASSPHRASE),
        uid=USER_ID if venue == "gate" else "",
        market_types=MARKET_TYPES.get(venue, ()),
        rest_url=fake.url,
        read_retries=1,
        retry_initial_s=0.01,
        retry_max_s=0.02,
        timeout_s=5,
        rate_limit=False,
    )
    client = CcxtClient(config)
    running.append((fake, client))
    await client.start()
    return fake, client


def _order(venue: str, coid: str) -> order_pb2.Order:
    return order_pb2.Order(
        symbol=SYMBOL,
        client_order_id=("t-" + coid) if venue == "gate" else coid,
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.01",
        price="50000",
    )


def _placements(fake: Fake, venue: str) -> int:
    return len(fake.requests_to(PLACE_PATH[venue], "POST"))


def _orders_held(fake: Fake) -> int:
    return len(fake.sim.engine.orders)


@pytest.mark.parametrize("venue", VENUES)
async def test_one_way_account_places_after_one_mode_read(
    started: list[tuple[Fake, CcxtClient]], venue: str
) -> None:
    fake, client = await _start(started, venue)
    first = await client.place_order(_order(venue, "ow1"))
    second = await client.place_order(_order(venue, "ow2"))
    for report in (first, second):
        assert isinstance(report, execution_pb2.ExecutionReport)
        assert report.order_status == order_pb2.ORDER_STATUS_OPEN
    assert _orders_held(fake) == 2
    # Read once: a venue lets the mode change only without open orders, which there now are.
    assert len(fake.requests_to(MODE_PATH[venue], "GET")) == 1
    assert list(client.position_mode.states.values()) == ["one-way"]


@pytest.mark.parametrize("venue", VENUES)
async def test_hedge_account_is_refused_before_sending(
    started: list[tuple[Fake, CcxtClient]], venue: str
) -> None:
    fake, client = await _start(started, venue)
    fake.hedge_mode = True
    with pytest.raises(InvalidRequest) as caught:
        await client.place_order(_order(venue, "hedge1"))
    err = caught.value
    assert not err.retry_safe
    assert err.venue == venue
    assert "hedge" in err.message and "one-way" in err.message and venue in err.message
    results = await client.place_orders([_order(venue, "hedge2"), _order(venue, "hedge3")])
    assert all(isinstance(r, InvalidRequest) for r in results), results
    assert _placements(fake, venue) == 0 and _orders_held(fake) == 0
    health = await client.health()
    assert health.reachable and "hedge" in health.last_error
    # The account switched to one-way: the next placement reads again and goes through.
    fake.hedge_mode = False
    report = await client.place_order(_order(venue, "after1"))
    assert report.order_status == order_pb2.ORDER_STATUS_OPEN
    assert _orders_held(fake) == 1
    assert not (await client.health()).last_error


@pytest.mark.parametrize("venue", VENUES)
async def test_mode_read_failing_refuses_as_unavailable_and_reads_again(
    started: list[tuple[Fake, CcxtClient]], venue: str
) -> None:
    fake, client = await _start(started, venue)
    fake.fail(MODE_PATH[venue], times=2, status=503, body=b"<html>503 Service Unavailable</html>")
    with pytest.raises(Unavailable) as caught:
        await client.place_order(_order(venue, "down1"))
    assert caught.value.retry_safe and caught.value.venue == venue
    assert "position mode" in caught.value.message
    assert _placements(fake, venue) == 0 and _orders_held(fake) == 0
    report = await client.place_order(_order(venue, "down1"))  # same id: nothing was sent before
    assert report.order_status == order_pb2.ORDER_STATUS_OPEN
    assert _orders_held(fake) == 1


@pytest.mark.parametrize("venue", VENUES)
async def test_mode_read_answering_no_documented_value_is_unknown_not_one_way(
    started: list[tuple[Fake, CcxtClient]], venue: str
) -> None:
    fake, client = await _start(started, venue)
    fake.fail(MODE_PATH[venue], times=1, status=200, body=json.dumps(UNDOCUMENTED[venue]).encode())
    with pytest.raises(Unavailable) as caught:
        await client.place_order(_order(venue, "odd1"))
    assert caught.value.retry_safe
    assert _placements(fake, venue) == 0 and _orders_held(fake) == 0
    health = await client.health()  # the fault is spent: the health read answers one-way again
    assert health.reachable and not health.last_error


@pytest.mark.parametrize("venue", VENUES)
async def test_quirk_line_names_a_documented_read(venue: str) -> None:
    quirks = quirks_for(venue)
    read = quirks.position_mode
    assert read.doc.startswith("https://")
    exchange = getattr(ccxt.async_support, quirks.ccxt_id)()
    try:
        # "ccxt" only where ccxt implements the unified read for the venue; else ccxt's generated
        # method for the documented request exists.
        assert bool(exchange.has.get("fetchPositionMode")) == (read.how == "ccxt")
        assert callable(getattr(exchange, read.method))
    finally:
        await exchange.close()
    assert read.one_way and read.hedge and not set(map(repr, read.one_way)) & set(map(repr, read.hedge))


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.text(max_size=12),
    st.sampled_from(["net_mode", "hedge_mode"]),
)
_JSON: Any = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=16), inner, max_size=4),
    max_leaves=12,
)


@given(answer=_JSON, venue=st.sampled_from(sorted(QUIRKS)))
def test_classify_never_reads_an_undocumented_answer_as_one_way(answer: Any, venue: str) -> None:
    read = quirks_for(venue).position_mode
    mode = classify(read, answer)
    if mode == "one-way":
        from cqvx.venues.ccxt.position_mode import _values

        values = _values(answer, read.path)
        assert values and all(any(type(v) is type(d) and v == d for d in read.one_way) for v in values)


def test_classify_is_strict_about_types() -> None:
    gate = quirks_for("gate").position_mode
    assert classify(gate, {"in_dual_mode": False}) == "one-way"
    assert classify(gate, {"in_dual_mode": True}) == "hedge"
    assert classify(gate, {"in_dual_mode": 0}) is None  # 0 == False, but not the documented boolean
    bybit = quirks_for("bybit").position_mode
    assert classify(bybit, {"result": {"list": [{"positionIdx": 0}, {"positionIdx": 1}]}}) == "hedge"
    assert classify(bybit, {"result": {"list": []}}) is None  # no row: nothing says one-way
    assert classify(bybit, {"result": {"list": [{"positionIdx": False}]}}) is None


@pytest.mark.parametrize("venue", VENUES)
async def test_health_answers_in_time_while_the_mode_read_is_slow(
    started: list[tuple[Fake, CcxtClient]], venue: str
) -> None:
    """A slow mode read (3 s, inside ccxt's 5 s timeout) must not hold ``health`` past its cap: the
    connector's ``health_timeout`` (5 s default) would call the venue down.  Health answers reachable
    with the mode unknown; the next poll, the read fast again, clears it."""
    fake, client = await _start(started, venue)
    assert client.position_mode.health_wait_s == HEALTH_WAIT_S
    fake.delay(MODE_PATH[venue], seconds=3.0)
    start = time.perf_counter()
    health = await client.health()
    elapsed = time.perf_counter() - start
    assert elapsed < HEALTH_WAIT_S + 1.0, elapsed
    assert health.reachable
    assert "position mode unknown" in health.last_error and "did not answer within" in health.last_error
    assert _placements(fake, venue) == 0
    health = await client.health()  # the delay is spent: the read answers one-way
    assert health.reachable and not health.last_error
    assert list(client.position_mode.states.values()) == ["one-way"]
