"""MockVenue: defaults, configurable behaviours, call recording, stream injection, lifecycle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cqc.markets.v1 import candle_pb2, orderbook_pb2
from cqc.venues.v1 import custody_pb2, execution_pb2, order_pb2, rfq_pb2, venue_pb2
from cqvx import client as cqvx_client
from cqvx.errors import (
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.testing import MockVenue, builders
from cqvx.types import OrderFilter


def test_implements_the_interface_and_every_capability() -> None:
    mock = MockVenue()
    for proto in (
        cqvx_client.VenueClient,
        cqvx_client.SupportsInstruments,
        cqvx_client.SupportsOrderStream,
        cqvx_client.SupportsPositions,
        cqvx_client.SupportsFundingRates,
        cqvx_client.SupportsCandles,
        cqvx_client.SupportsBatchOrders,
        cqvx_client.SupportsCancelAll,
        cqvx_client.SupportsPrices,
        cqvx_client.SupportsBalanceStream,
        cqvx_client.SupportsRfq,
        cqvx_client.SupportsCustody,
    ):
        assert isinstance(mock, proto), proto.__name__
    assert venue_pb2.CAPABILITY_RFQ in mock.capabilities()
    limited = MockVenue(capabilities=frozenset({venue_pb2.CAPABILITY_INSTRUMENTS}))
    assert limited.capabilities() == frozenset({venue_pb2.CAPABILITY_INSTRUMENTS})


async def test_default_order_store_lifecycle() -> None:
    mock = MockVenue()
    order = builders.limit_buy(price="50000", quantity="0.5", client_order_id="c1")
    report = await mock.place_order(order)
    assert report.client_order_id == "c1" and report.order_id
    assert report.execution_type == execution_pb2.EXECUTION_TYPE_NEW
    assert report.order_status == order_pb2.ORDER_STATUS_OPEN
    assert report.remaining_quantity == "0.5"

    by_id = await mock.get_order(order_id=report.order_id)
    by_coid = await mock.get_order(client_order_id="c1")
    assert by_id == by_coid and by_id.status == order_pb2.ORDER_STATUS_OPEN
    assert [o.order_id for o in await mock.get_orders()] == [report.order_id]

    with pytest.raises(DuplicateOrder) as dup:
        await mock.place_order(builders.limit_buy(client_order_id="c1"))
    assert dup.value.client_order_id == "c1"
    assert len(mock.orders) == 1  # never two orders

    cancelled = await mock.cancel_order(client_order_id="c1")
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    assert await mock.get_orders() == []
    assert (
        len(await mock.get_orders(OrderFilter(statuses=frozenset({order_pb2.ORDER_STATUS_CANCELLED})))) == 1
    )
    with pytest.raises(NotFound):
        await mock.cancel_order(order_id=report.order_id)  # no longer open
    with pytest.raises(NotFound):
        await mock.cancel_order(order_id="nope")
    with pytest.raises(NotFound):
        await mock.get_order(client_order_id="nope")
    with pytest.raises(InvalidRequest):
        await mock.get_order(order_id="a", client_order_id="b")


async def test_validation_and_funds_check() -> None:
    mock = MockVenue()
    with pytest.raises(InvalidRequest):
        await mock.place_order(builders.limit_buy(quantity="0"))
    with pytest.raises(InvalidRequest):
        await mock.place_order(builders.order(price=""))
    with pytest.raises(InsufficientFunds):
        await mock.place_order(builders.limit_buy(price="50000", quantity="1000"))  # 50M > 1M USD
    with pytest.raises(InsufficientFunds):
        await mock.place_order(builders.limit_sell(quantity="11"))  # 10 BTC available
    assert mock.orders == {}
    unchecked = MockVenue(check_funds=False)
    await unchecked.place_order(builders.limit_buy(quantity="1000"))


async def test_behaviours_values_exceptions_handlers_and_times() -> None:
    mock = MockVenue()
    bal = [builders.balance(asset="ETH", total="3")]
    mock.on("get_balances", bal)
    got = await mock.get_balances()
    assert got == bal
    got[0].total = "999"  # mutating a returned value does not change the configured one
    assert (await mock.get_balances())[0].total == "3"

    mock.on("place_order", RateLimited("slow down", retry_after=0.5), times=2)
    mock.on("place_order", lambda order: builders.execution_report(order, order_id="fixed"))
    for _ in range(2):
        with pytest.raises(RateLimited) as rl:
            await mock.place_order(builders.order())
        assert rl.value.retry_after == 0.5
    assert (await mock.place_order(builders.order())).order_id == "fixed"

    async def slow_get(**kwargs: object) -> order_pb2.Order:
        await asyncio.sleep(0)
        return builders.order(order_id=str(kwargs["order_id"]))

    mock.on("get_order", slow_get)
    assert (await mock.get_order(order_id="x9")).order_id == "x9"
    mock.on("cancel_order", NotFound)  # an exception class
    with pytest.raises(NotFound):
        await mock.cancel_order(order_id="x")
    mock.default("cancel_order")
    with pytest.raises(NotFound, match="no order"):
        await mock.cancel_order(order_id="x")

    with pytest.raises(ValueError):
        mock.on("plaec_order", 1)  # typos are caught
    with pytest.raises(ValueError):
        mock.on("push_trade", 1)  # helpers are not mockable


async def test_fail_next_applies_to_any_method() -> None:
    mock = MockVenue()
    mock.fail_next(Unavailable("down"), times=2)
    with pytest.raises(Unavailable):
        await mock.get_balances()
    with pytest.raises(Unavailable):
        await mock.get_order_book("BTC-USD")
    assert await mock.get_balances()


async def test_call_recording_copies_arguments_and_counts() -> None:
    mock = MockVenue()
    order = builders.limit_buy(client_order_id="rec-1")
    await mock.place_order(order)
    order.client_order_id = "mutated-later"
    await mock.get_orders(OrderFilter(symbol="BTC-USD"))
    assert mock.call_count("place_order") == 1
    assert mock.calls("place_order")[0]["order"].client_order_id == "rec-1"
    assert mock.calls("get_orders")[0]["filter"].symbol == "BTC-USD"
    assert [c.method for c in mock.all_calls] == ["place_order", "get_orders"]
    # Failed calls are recorded too.
    with pytest.raises(NotFound):
        await mock.get_order(order_id="missing")
    assert mock.call_count("get_order") == 1
    mock.reset()
    assert mock.call_count("place_order") == 0 and mock.all_calls == []


async def test_concurrent_calls_are_recorded_in_start_order_and_ids_unique() -> None:
    mock = MockVenue()
    orders = [builders.limit_buy(client_order_id=f"cc-{i}") for i in range(50)]
    reports = await asyncio.gather(*(mock.place_order(o) for o in orders))
    assert len({r.order_id for r in reports}) == 50
    assert [c["order"].client_order_id for c in mock.calls("place_order")] == [f"cc-{i}" for i in range(50)]
    # Racing duplicates: exactly one wins.
    results = await asyncio.gather(
        *(mock.place_order(builders.limit_buy(client_order_id="race")) for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, execution_pb2.ExecutionReport) for r in results) == 1
    assert sum(isinstance(r, DuplicateOrder) for r in results) == 9


async def test_trade_stream_push_end_and_fail() -> None:
    mock = MockVenue()
    stream = mock.subscribe_trades("BTC-USD")
    other = mock.subscribe_trades("ETH-USD")
    assert mock.stream("trades").subscriber_count == 2
    await mock.push_trade("BTC-USD", price="50100")
    await mock.push_trade("ETH-USD", price="3000")
    first = await anext(stream)
    assert first.symbol == "BTC-USD" and first.price == "50100"
    assert (await anext(other)).price == "3000"
    mock.stream("trades").end()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)

    again = mock.subscribe_trades("BTC-USD")
    await mock.stream("trades").push(builders.trade(price="1"))
    mock.stream("trades").fail(Unavailable("dropped"))
    assert (await anext(again)).price == "1"  # queued messages first, then the failure
    with pytest.raises(Unavailable):
        await anext(again)


async def test_wait_subscribed_avoids_the_race_with_a_consumer_task() -> None:
    mock = MockVenue()
    seen: list[str] = []

    async def consumer() -> None:
        async for t in mock.subscribe_trades("BTC-USD"):
            seen.append(t.price)
            if len(seen) == 2:
                return

    task = asyncio.create_task(consumer())
    await mock.stream("trades").wait_subscribed(timeout=1)
    await mock.push_trade("BTC-USD", price="1")
    await mock.push_trade("BTC-USD", price="2")
    await asyncio.wait_for(task, 1)
    assert seen == ["1", "2"]


async def test_book_stream_starts_with_snapshot_and_follows_deltas() -> None:
    mock = MockVenue()
    await mock.push_book("BTC-USD", builders.order_book(sequence=10))
    stream = mock.subscribe_order_book("BTC-USD", depth=2)
    first = await anext(stream)
    assert [lv.price for lv in first.bids] == ["49999", "49998"]
    await mock.push_book(
        "BTC-USD", builders.order_book_delta(bids=[("49999", "0")], asks=[("50000.5", "4")], sequence=11)
    )
    second = await anext(stream)
    assert [lv.price for lv in second.bids] == ["49998", "49997"]
    assert [(lv.price, lv.quantity) for lv in second.asks] == [("50000.5", "4"), ("50001", "1")]
    book = await mock.get_order_book("BTC-USD", depth=1)
    assert len(book.bids) == 1 and book.sequence == 11
    with pytest.raises(ValueError, match="gap"):
        await mock.push_book("BTC-USD", builders.order_book_delta(bids=[("1", "1")], sequence=20))
    with pytest.raises(NotFound):
        await mock.get_latest_price("ETH-USD")
    # The mock's book is now waiting for a resync; a snapshot restores it.
    await mock.push_book("BTC-USD", builders.order_book(sequence=30))
    latest = await mock.get_latest_price("BTC-USD")
    assert Decimal(latest.bid) == Decimal("49999") and Decimal(latest.ask) == Decimal("50001")


async def test_execution_stream_sees_place_fill_cancel() -> None:
    mock = MockVenue()
    execs = mock.subscribe_executions(["BTC-USD"])
    report = await mock.place_order(builders.limit_buy(quantity="1", price="100", client_order_id="f1"))
    part = await mock.fill(client_order_id="f1", quantity="0.4", price="99")
    assert part.order_status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    rest = await mock.fill(order_id=report.order_id, price="101")
    assert rest.order_status == order_pb2.ORDER_STATUS_FILLED
    assert Decimal(rest.average_fill_price) == (Decimal("0.4") * 99 + Decimal("0.6") * 101) / 1
    assert part.trade_id != rest.trade_id
    stored = await mock.get_order(client_order_id="f1")
    assert stored.status == order_pb2.ORDER_STATUS_FILLED and stored.filled_quantity == "1"
    with pytest.raises(NotFound):
        await mock.cancel_order(client_order_id="f1")
    kinds = [(await anext(execs)).execution_type for _ in range(3)]
    assert kinds == [
        execution_pb2.EXECUTION_TYPE_NEW,
        execution_pb2.EXECUTION_TYPE_TRADE,
        execution_pb2.EXECUTION_TYPE_TRADE,
    ]


async def test_batch_and_cancel_all() -> None:
    mock = MockVenue()
    results = await mock.place_orders(
        [
            builders.limit_buy(client_order_id="b1"),
            builders.limit_buy(client_order_id="b1"),
            builders.limit_sell(),
        ]
    )
    assert isinstance(results[0], execution_pb2.ExecutionReport)
    assert isinstance(results[1], DuplicateOrder)
    assert isinstance(results[2], execution_pb2.ExecutionReport)
    assert mock.call_count("place_order") == 3  # batch items go through place_order (and its handlers)
    cancelled = await mock.cancel_orders(
        [order_pb2.OrderRef(client_order_id="b1"), order_pb2.OrderRef(order_id="missing")]
    )
    assert isinstance(cancelled[0], order_pb2.Order) and isinstance(cancelled[1], VenueError)
    remaining = await mock.cancel_all_orders(symbol="BTC-USD")
    assert len(remaining) == 1 and await mock.get_orders() == []


async def test_seeded_capabilities() -> None:
    mock = MockVenue()
    assert [i.symbol for i in await mock.get_instruments()] == ["BTC-USD"]
    mock.positions.append(builders.position())
    assert len(await mock.get_positions(["BTC-USDT-PERP"])) == 1
    assert await mock.get_positions(["ETH-USDT-PERP"]) == []
    with pytest.raises(NotFound):
        await mock.get_funding_rate("BTC-USDT-PERP")
    fr = mock.subscribe_funding_rates()
    await mock.push_funding_rate(builders.funding_rate())
    assert (await anext(fr)).rate == "0.0001"
    assert (await mock.get_funding_rate("BTC-USDT-PERP")).rate == "0.0001"
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    mock.candles.extend(builders.candle(open_time=datetime(2025, 1, 1, 0, m, tzinfo=UTC)) for m in (2, 0, 1))
    candles = await mock.get_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1MIN, start=t0, limit=2)
    assert [c.open_time.ToDatetime().minute for c in candles] == [1, 2]
    quote = await mock.request_quote(rfq_pb2.QuoteRequest(symbol="BTC-USD", quantity="1"))
    done = await mock.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED and done.report.last_price == quote.buy_price
    with pytest.raises(InvalidRequest):
        await mock.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)


async def test_custody_await_transaction() -> None:
    mock = MockVenue()
    req = custody_pb2.CustodyTransferRequest(asset="BTC", amount="1", destination="bc1q", idempotence_id="i1")
    tx = await mock.create_transaction(req)
    assert (await mock.create_transaction(req)).transaction_id == tx.transaction_id  # idempotent
    with pytest.raises(Timeout):
        await mock.await_transaction(
            tx.transaction_id, frozenset({custody_pb2.CUSTODY_TRANSACTION_STATE_APPROVED}), timeout=0.02
        )

    waiter = asyncio.create_task(
        mock.await_transaction(
            tx.transaction_id, frozenset({custody_pb2.CUSTODY_TRANSACTION_STATE_APPROVED}), timeout=1
        )
    )
    # Approve only once the waiter is waiting (its call is recorded), so the state change is what wakes it.
    async with asyncio.timeout(1):
        while mock.call_count("await_transaction") < 2:  # noqa: ASYNC110 - polling the mock's call log
            await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not waiter.done()
    mock.set_transaction_state(tx.transaction_id, custody_pb2.CUSTODY_TRANSACTION_STATE_APPROVED)
    assert (await waiter).state == custody_pb2.CUSTODY_TRANSACTION_STATE_APPROVED


async def test_aclose_ends_streams_is_idempotent_and_later_calls_fail() -> None:
    async with MockVenue() as mock:
        stream = mock.subscribe_trades("BTC-USD")
        books = mock.subscribe_order_book("BTC-USD")

        async def drain() -> int:
            return len([t async for t in stream])

        task = asyncio.create_task(drain())
        await asyncio.sleep(0)
    assert await asyncio.wait_for(task, 1) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(books)
    await mock.aclose()  # second close: no-op
    assert mock.call_count("aclose") == 1
    with pytest.raises(Unavailable):
        await mock.get_balances()
    with pytest.raises(Unavailable):
        mock.subscribe_trades("BTC-USD")
    health = await mock.health()
    assert health.reachable is False


async def test_health_reports_streams() -> None:
    mock = MockVenue()
    h = await mock.health()
    assert h.reachable and h.latency_ms == 0 and h.venue == "mock"
    stream = mock.subscribe_trades("BTC-USD")
    assert [s.name for s in (await mock.health()).streams] == ["trades"]
    await stream.aclose()
    assert (await mock.health()).streams == []
    mock.on("health", venue_pb2.VenueHealth(venue="mock", reachable=False, last_error="boom"))
    assert (await mock.health()).last_error == "boom"


def test_sync_subscribe_rejects_async_handlers() -> None:
    mock = MockVenue()

    async def bad(**_: object) -> None:
        return None

    mock.on("subscribe_trades", bad)
    with pytest.raises(TypeError):
        mock.subscribe_trades("BTC-USD")


def test_builders_refuse_floats_and_unknown_fields() -> None:
    with pytest.raises(TypeError):
        builders.order(price=1.5)
    with pytest.raises(TypeError):
        builders.order(pricee="1")
    assert builders.order(quantity=Decimal("1.2300")).quantity == "1.23"
    book = builders.order_book(bids=[(Decimal("1.50"), 2)], asks=[])
    assert isinstance(book, orderbook_pb2.OrderBook) and book.bids[0].price == "1.5"
