"""Matching, fees and balances of the simulated venue on a quiet, test-controlled market.

The quiet market sits at mid 60000: best bid 59999.99 and best ask 60000.01, 5 BTC each, then 5.5,
6, ... per tick deeper.  Public trades happen only when a test injects them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import (
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    UnsupportedOperation,
)
from cqvx.types import OrderFilter
from cqvx.venues.sim import SimVenue

BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL
D = Decimal
Mk = Callable[..., order_pb2.Order]
Bal = Callable[[SimVenue, str], Any]


async def test_post_only_limit_rests_and_locks_quote(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    rep = await sim.place_order(mk("a1", "buy", "0.1", "59999.99", post_only=True))
    assert rep.execution_type == execution_pb2.EXECUTION_TYPE_NEW
    assert rep.order_status == order_pb2.ORDER_STATUS_OPEN
    assert rep.order_id and rep.client_order_id == "a1"
    total, avail, locked = await bal(sim, "USDT")
    assert locked == D("59999.99") * D("0.1") * D("1.002")
    assert total == D("1000000") and avail == total - locked
    book = await sim.get_order_book("BTC-USDT", 3)
    assert book.bids[0].price == "59999.99" and book.bids[0].quantity == "5.1"
    assert book.bids[0].order_count == 1


async def test_post_only_that_would_cross_is_rejected_and_leaves_nothing(
    sim: SimVenue, mk: Mk, bal: Bal
) -> None:
    with pytest.raises(OrderRejected):
        await sim.place_order(mk("x1", "buy", "0.1", "60000.01", post_only=True))
    with pytest.raises(NotFound):
        await sim.get_order(client_order_id="x1")
    assert (await bal(sim, "USDT"))[2] == 0
    # The id was not consumed: the engine's fallback may resend it as a plain limit order.
    rep = await sim.place_order(mk("x1", "buy", "0.1", "59999.99"))
    assert rep.order_status == order_pb2.ORDER_STATUS_OPEN


async def test_market_buy_walks_the_book_and_pays_taker_fees(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    rep = await sim.place_order(mk("m1", "buy", "7"))
    assert rep.order_status == order_pb2.ORDER_STATUS_FILLED
    cost = D("60000.01") * 5 + D("60000.02") * 2
    assert D(rep.average_fill_price) == cost / 7
    total, avail, locked = await bal(sim, "USDT")
    assert total == D("1000000") - cost - cost * D("0.002")
    assert locked == 0 and avail == total
    assert (await bal(sim, "BTC"))[0] == D("27")
    order = await sim.get_order(client_order_id="m1")
    assert D(order.total_fees) == cost * D("0.002")
    # The liquidity taken stays gone until the next market step rebuilds the book.
    book = await sim.get_order_book("BTC-USDT", 2)
    assert book.asks[0].price == "60000.02" and book.asks[0].quantity == "3.5"


async def test_market_sell_needs_base_and_credits_quote(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    rep = await sim.place_order(mk("s1", "sell", "1"))
    assert rep.order_status == order_pb2.ORDER_STATUS_FILLED
    assert D(rep.average_fill_price) == D("59999.99")
    assert (await bal(sim, "USDT"))[0] == D("1000000") + D("59999.99") * D("0.998")
    assert (await bal(sim, "BTC"))[0] == D("19")


async def test_ioc_fills_what_it_can_and_expires_the_rest(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    rep = await sim.place_order(mk("i1", "buy", "7", "60000.01", tif=order_pb2.TIME_IN_FORCE_IOC))
    assert rep.order_status == order_pb2.ORDER_STATUS_EXPIRED
    assert rep.cumulative_quantity == "5" and rep.remaining_quantity == "0"
    assert (await bal(sim, "USDT"))[2] == 0
    assert (await bal(sim, "BTC"))[0] == D("25")


async def test_fok_fills_completely_or_not_at_all(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    with pytest.raises(OrderRejected):
        await sim.place_order(mk("f1", "buy", "7", "60000.01", tif=order_pb2.TIME_IN_FORCE_FOK))
    assert await bal(sim, "USDT") == (D("1000000"), D("1000000"), D(0))
    rep = await sim.place_order(mk("f2", "buy", "5", "60000.01", tif=order_pb2.TIME_IN_FORCE_FOK))
    assert rep.order_status == order_pb2.ORDER_STATUS_FILLED


async def test_marketable_gtc_limit_fills_then_rests(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    rep = await sim.place_order(mk("g1", "buy", "7", "60000.01"))
    assert rep.order_status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    assert rep.cumulative_quantity == "5" and rep.remaining_quantity == "2"
    total, _, locked = await bal(sim, "USDT")
    assert locked == D("60000.01") * 2 * D("1.002")
    # Taker fill paid the real cost; the unused hold of the filled part was released.
    assert total == D("1000000") - D("60000.01") * 5 * D("1.002")


async def test_queue_position_fills_only_after_the_volume_ahead(sim: SimVenue, mk: Mk) -> None:
    # Our bid joins 5 BTC of synthetic size at 59999.99.
    await sim.place_order(mk("q1", "buy", "1", "59999.99"))
    sim.inject_trade("BTC-USDT", D("59999.99"), D("3"), SELL)
    sim.inject_trade("BTC-USDT", D("59999.99"), D("1.5"), SELL)
    assert (await sim.get_order(client_order_id="q1")).filled_quantity == "0"
    sim.inject_trade("BTC-USDT", D("59999.99"), D("1"), SELL)  # 0.5 ahead left, 0.5 for us
    o = await sim.get_order(client_order_id="q1")
    assert o.status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED and o.filled_quantity == "0.5"
    assert D(o.total_fees) == D("59999.99") * D("0.5") * D("0.001")  # maker fee
    sim.inject_trade("BTC-USDT", D("59999.99"), D("2"), SELL)
    o = await sim.get_order(client_order_id="q1")
    assert o.status == order_pb2.ORDER_STATUS_FILLED and o.filled_quantity == "1"
    # Buy-aggressor trades never fill a bid.
    await sim.place_order(mk("q2", "buy", "1", "59999.98"))
    sim.inject_trade("BTC-USDT", D("59999.98"), D("100"), BUY)
    assert (await sim.get_order(client_order_id="q2")).filled_quantity == "0"


async def test_time_priority_between_our_orders_at_one_price(sim: SimVenue, mk: Mk) -> None:
    await sim.place_order(mk("p1", "buy", "1", "59999.99"))
    await sim.place_order(mk("p2", "buy", "1", "59999.99"))
    sim.inject_trade("BTC-USDT", D("59999.99"), D("6"), SELL)  # 5 ahead, then p1
    assert (await sim.get_order(client_order_id="p1")).status == order_pb2.ORDER_STATUS_FILLED
    assert (await sim.get_order(client_order_id="p2")).filled_quantity == "0"
    sim.inject_trade("BTC-USDT", D("59999.99"), D("0.25"), SELL)
    assert (await sim.get_order(client_order_id="p2")).filled_quantity == "0.25"


async def test_trade_through_fills_completely(sim: SimVenue, mk: Mk) -> None:
    await sim.place_order(mk("t1", "sell", "1.5", "60000.02"))
    sim.inject_trade("BTC-USDT", D("60000.03"), D("0.01"), BUY)
    o = await sim.get_order(client_order_id="t1")
    assert o.status == order_pb2.ORDER_STATUS_FILLED and o.average_fill_price == "60000.02"


async def test_pessimistic_model_needs_the_price_to_trade_through(
    make_sim: Callable[..., SimVenue], mk: Mk
) -> None:
    async with make_sim(fill_model="pessimistic") as sim:
        await sim.place_order(mk("q1", "buy", "1", "59999.99"))
        sim.inject_trade("BTC-USDT", D("59999.99"), D("100"), SELL)
        assert (await sim.get_order(client_order_id="q1")).filled_quantity == "0"
        sim.inject_trade("BTC-USDT", D("59999.98"), D("0.01"), SELL)
        assert (await sim.get_order(client_order_id="q1")).status == order_pb2.ORDER_STATUS_FILLED


async def test_cancel_releases_the_hold(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    await sim.place_order(mk("c1", "sell", "0.5", "60100"))
    assert (await bal(sim, "BTC"))[2] == D("0.5")
    cancelled = await sim.cancel_order(client_order_id="c1")
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    assert await bal(sim, "BTC") == (D("20"), D("20"), D("0"))
    with pytest.raises(NotFound):
        await sim.cancel_order(client_order_id="c1")
    with pytest.raises(NotFound):
        await sim.cancel_order(order_id="nope")
    with pytest.raises(InvalidRequest):
        await sim.cancel_order()


async def test_partially_filled_then_cancelled_keeps_fills(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    await sim.place_order(mk("pc", "buy", "2", "60000"))  # inside the spread: first in line
    sim.inject_trade("BTC-USDT", D("60000"), D("0.5"), SELL)
    o = await sim.cancel_order(client_order_id="pc")
    assert o.status == order_pb2.ORDER_STATUS_CANCELLED and o.filled_quantity == "0.5"
    total, _, locked = await bal(sim, "USDT")
    assert locked == 0 and total == D("1000000") - D("30000") - D("30")


async def test_insufficient_funds_is_rejected_like_a_venue(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    with pytest.raises(InsufficientFunds):
        await sim.place_order(mk("n1", "buy", "20", "60000"))
    with pytest.raises(InsufficientFunds):
        await sim.place_order(mk("n2", "sell", "30", "60100"))
    with pytest.raises(InsufficientFunds):
        await sim.place_order(mk("n3", "buy", "20"))
    assert await sim.get_orders() == []
    assert (await bal(sim, "USDT"))[2] == 0


@pytest.mark.parametrize(
    ("qty", "price", "rule"),
    [
        ("0.1", "60000.001", "tick size"),
        ("0.000015", "60000", "lot size"),
        ("0.00001", "60000", "min notional"),
        ("abc", "60000", "quantity"),
        ("0", "60000", "quantity"),
    ],
)
async def test_instrument_rules_raise_invalid_request_naming_the_rule(
    sim: SimVenue, mk: Mk, qty: str, price: str, rule: str
) -> None:
    with pytest.raises(InvalidRequest, match=rule):
        await sim.place_order(mk("v1", "buy", qty, price))


async def test_other_invalid_requests(sim: SimVenue, mk: Mk) -> None:
    with pytest.raises(InvalidRequest, match="unknown symbol"):
        await sim.place_order(mk("u1", "buy", "0.1", "60000", symbol="ETH-USDT"))
    with pytest.raises(InvalidRequest, match="reduce_only"):
        await sim.place_order(mk("u2", "sell", "0.1", "60100", reduce_only=True))
    with pytest.raises(InvalidRequest, match="post-only"):
        await sim.place_order(
            mk("u3", "buy", "0.1", "59000", post_only=True, tif=order_pb2.TIME_IN_FORCE_IOC)
        )
    stop = mk("u4", "buy", "0.1", "61000")
    stop.order_type = order_pb2.ORDER_TYPE_STOP_LIMIT
    with pytest.raises(UnsupportedOperation):
        await sim.place_order(stop)


async def test_duplicate_client_order_id_leaves_the_existing_order_untouched(sim: SimVenue, mk: Mk) -> None:
    await sim.place_order(mk("dup", "buy", "0.1", "59000"))
    before = await sim.get_order(client_order_id="dup")
    with pytest.raises(DuplicateOrder) as info:
        await sim.place_order(mk("dup", "sell", "0.2", "61000"))
    assert info.value.client_order_id == "dup"
    assert await sim.get_order(client_order_id="dup") == before
    assert len(await sim.get_orders()) == 1
    await sim.cancel_order(client_order_id="dup")
    with pytest.raises(DuplicateOrder):  # still known after it ended
        await sim.place_order(mk("dup", "buy", "0.1", "59000"))


async def test_self_trade_prevention_expires_the_taker(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    await sim.place_order(mk("own", "sell", "1", "60000"))  # our best ask, inside the spread
    rep = await sim.place_order(mk("tk", "buy", "1"))
    assert rep.order_status == order_pb2.ORDER_STATUS_EXPIRED and rep.cumulative_quantity == "0"
    assert "self-trade" in rep.rejection_reason
    assert (await sim.get_order(client_order_id="own")).status == order_pb2.ORDER_STATUS_OPEN


async def test_quote_quantity_market_buy_never_overspends(sim: SimVenue, bal: Bal) -> None:
    req = order_pb2.Order(
        client_order_id="qq",
        symbol="BTC-USDT",
        side=BUY,
        order_type=order_pb2.ORDER_TYPE_MARKET,
        quote_quantity="1000",
    )
    rep = await sim.place_order(req)
    assert rep.order_status == order_pb2.ORDER_STATUS_FILLED
    spent = D("1000000") - (await bal(sim, "USDT"))[0]
    assert spent <= D("1000") and D(rep.cumulative_quantity) == D(
        "0.01663"
    )  # floor(1000 / (60000.01 * 1.002))


async def test_gtd_order_expires_at_its_time(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    req = mk("gtd", "buy", "0.1", "59000", tif=order_pb2.TIME_IN_FORCE_GTD)
    req.expires_at.FromDatetime(sim.clock.now() + timedelta(seconds=2))
    await sim.place_order(req)
    await sim.run_for(1.5)
    assert (await sim.get_order(client_order_id="gtd")).status == order_pb2.ORDER_STATUS_OPEN
    await sim.run_for(1)
    assert (await sim.get_order(client_order_id="gtd")).status == order_pb2.ORDER_STATUS_EXPIRED
    assert (await bal(sim, "USDT"))[2] == 0


async def test_batch_place_cancel_and_cancel_all(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    results = await sim.place_orders(
        [
            mk("b1", "buy", "0.1", "59000"),
            mk("b2", "buy", "0.1", "59000.001"),
            mk("b3", "sell", "0.1", "61000"),
        ]
    )
    assert isinstance(results[0], execution_pb2.ExecutionReport)
    assert isinstance(results[1], InvalidRequest)
    assert isinstance(results[2], execution_pb2.ExecutionReport)
    refs = [order_pb2.OrderRef(client_order_id="b1"), order_pb2.OrderRef(client_order_id="zz")]
    cancelled = await sim.cancel_orders(refs)
    assert isinstance(cancelled[0], order_pb2.Order) and isinstance(cancelled[1], NotFound)
    await sim.place_order(mk("b4", "buy", "0.1", "59000"))
    gone = await sim.cancel_all_orders("BTC-USDT", side=SELL)
    assert [o.client_order_id for o in gone] == ["b3"]
    gone = await sim.cancel_all_orders()
    assert [o.client_order_id for o in gone] == ["b4"]
    assert (await bal(sim, "USDT"))[2] == 0 and (await bal(sim, "BTC"))[2] == 0
    history = await sim.get_orders(OrderFilter(statuses=frozenset({order_pb2.ORDER_STATUS_CANCELLED})))
    assert {o.client_order_id for o in history} == {"b1", "b3", "b4"}


async def test_execution_stream_fans_out_every_event(sim: SimVenue, mk: Mk) -> None:
    s1 = sim.subscribe_executions()
    s2 = sim.subscribe_executions(["BTC-USDT"])
    s3 = sim.subscribe_executions(["BTC-USDT-PERP"])
    await sim.place_order(mk("e1", "buy", "1", "60000"))
    sim.inject_trade("BTC-USDT", D("60000"), D("0.4"), SELL)
    await sim.cancel_order(client_order_id="e1")
    for stream in (s1, s2):
        kinds = [(await stream.__anext__()).execution_type for _ in range(3)]
        assert kinds == [
            execution_pb2.EXECUTION_TYPE_NEW,
            execution_pb2.EXECUTION_TYPE_TRADE,
            execution_pb2.EXECUTION_TYPE_CANCELLED,
        ]
    await s3.aclose()
    with pytest.raises(StopAsyncIteration):
        await s3.__anext__()
    await s1.aclose()
    await s2.aclose()
