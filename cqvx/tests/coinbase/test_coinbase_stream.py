"""WebSocket streams against the fake: subscribe deadline, JWT per subscribe, book, user fills, gaps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import jwt as pyjwt
import pytest

from cqc.markets.v1 import candle_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import InvalidRequest
from cqvx.fills import FillTracker
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.types import Stream
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig

T = TypeVar("T")
MakeConfig = Callable[..., CoinbaseConfig]


async def take(stream: Stream[T], n: int = 1, timeout: float = 3.0) -> list[T]:
    out: list[T] = []
    async with asyncio.timeout(timeout):
        async for item in stream:
            out.append(item)
            if len(out) >= n:
                break
    return out


def limit(coid: str, price: str = "40000", qty: str = "0.02") -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity=qty,
        price=price,
    )


async def test_subscribes_within_deadline_with_fresh_jwts(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    fake.subscribe_deadline = 0.5
    stream = client.subscribe_order_book("BTC-USD", 2)
    (book,) = await take(stream)
    assert [lv.price for lv in book.bids] == ["49990", "49980"] and book.asks[0].price == "50010"
    # No sleep past the deadline needed: the fake's deadline timer waits on the first subscribe, which
    # landed before the book was sent; a late subscribe shows up as a deadline close and a reconnect.
    assert fake.deadline_closes == 0 and fake.ws_connects == 1
    channels = [m["channel"] for m in fake.subscribe_messages]
    assert channels[:2] == ["heartbeats", "level2"]  # heartbeats first, one channel per message
    tokens = [m["jwt"] for m in fake.subscribe_messages]
    assert len(set(tokens)) == len(tokens)  # a new JWT in every message
    assert all("uri" not in pyjwt.decode(t, options={"verify_signature": False}) for t in tokens)
    await stream.aclose()
    async with asyncio.timeout(2):
        while fake.subscribe_messages[-1]["type"] != "unsubscribe":  # noqa: ASYNC110 - polling the fake's log
            await asyncio.sleep(0.01)
    assert fake.subscribe_messages[-1]["channel"] == "level2"


async def test_server_drops_a_silent_connection(fake: FakeCoinbase) -> None:
    import aiohttp

    fake.subscribe_deadline = 0.1
    async with aiohttp.ClientSession() as s, s.ws_connect(fake.ws_market_url) as ws:
        msg = await ws.receive(timeout=2)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert fake.deadline_closes == 1


async def test_book_follows_updates_and_resyncs_on_gap(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    stream = client.subscribe_order_book("BTC-USD", 5)
    await take(stream)
    await fake.push_l2("BTC-USD", bids=[("49995", "0.3")])
    (book,) = await take(stream)
    assert (book.bids[0].price, book.bids[0].quantity) == ("49995", "0.3")
    # A lost update (removes the best ask) and a gap in sequence numbers: the client must resubscribe.
    await fake.push_l2("BTC-USD", asks=[("50010", "0")], publish=False)
    fake.inject_gap(1)
    await fake.push_l2("BTC-USD", bids=[("49000", "1")])
    async with asyncio.timeout(3):
        async for book in stream:
            if book.asks[0].price == "50020":
                break
    assert client.streams.gaps == 1 and client.streams.resyncs >= 1
    await stream.aclose()


async def test_trades_prices_candles(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    trades = client.subscribe_trades("BTC-USD")
    prices = client.subscribe_prices(["BTC-USD"])
    candles = client.subscribe_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_5MIN)

    async def pump() -> None:
        while True:
            await fake.push_trade("BTC-USD", "50001", "0.2", "SELL")
            await fake.push_ticker("BTC-USD")
            await fake.push_candle("BTC-USD", "101")
            await asyncio.sleep(0.05)

    task = asyncio.create_task(pump())
    try:
        (t,) = await take(trades)
        (p,) = await take(prices)
        (c,) = await take(candles)
    finally:
        task.cancel()
        for s in (trades, prices, candles):
            await s.aclose()
    assert t.price == "50001" and t.trade_id
    assert p.bid == "49990" and p.ask == "50010"
    assert c.interval == candle_pb2.CANDLE_INTERVAL_5MIN and c.high == "101"
    with pytest.raises(InvalidRequest):
        client.subscribe_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1MIN)


async def _executions(
    client: CoinbaseClient, fake: FakeCoinbase | None = None
) -> tuple[Stream[execution_pb2.ExecutionReport], asyncio.Queue[Any]]:
    stream = client.subscribe_executions()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def reader() -> None:
        async for rep in stream:
            await queue.put(rep)

    asyncio.get_running_loop().create_task(reader())
    if fake is not None:
        # Wait for the subscription itself, not a fixed sleep: an order placed before it would
        # only show up in the snapshot (as STATUS), never as NEW.
        await fake.wait_subscribed("user")
    return stream, queue


async def _next(queue: asyncio.Queue[Any], kind: int) -> execution_pb2.ExecutionReport:
    async with asyncio.timeout(3):
        while True:
            rep = await queue.get()
            if rep.execution_type == kind:
                return rep  # type: ignore[no-any-return]


async def test_user_fills_once_across_reconnects(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    stream, queue = await _executions(client, fake)
    rep = await client.place_order(limit("u-1"))
    new = await _next(queue, execution_pb2.EXECUTION_TYPE_NEW)
    assert new.order_id == rep.order_id
    await fake.fill(rep.order_id, "0.005", "40000")
    f1 = await _next(queue, execution_pb2.EXECUTION_TYPE_TRADE)
    assert (f1.last_quantity, f1.last_price, f1.cumulative_quantity) == ("0.005", "40000", "0.005")
    assert f1.order_status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    # Drop the connection: the snapshot after the reconnect replays the same cumulative state.
    await fake.drop_ws()
    await fake.wait_subscribed("user")  # the client is back on a new connection
    await fake.fill(rep.order_id, "0.005", "39990")
    f2 = await _next(queue, execution_pb2.EXECUTION_TYPE_TRADE)
    assert (f2.last_quantity, f2.last_price, f2.cumulative_quantity) == ("0.005", "39990", "0.01")
    # Now a fill completes the order while we are disconnected: REST reconciliation reports it.
    await fake.drop_ws()
    await fake.fill(rep.order_id)
    f3 = await _next(queue, execution_pb2.EXECUTION_TYPE_TRADE)
    assert f3.last_quantity == "0.01" and f3.order_status == order_pb2.ORDER_STATUS_FILLED
    assert len({f1.trade_id, f2.trade_id, f3.trade_id}) == 3
    # A duplicate would come from the reconnect's snapshot replaying the fills: wait for the client to be
    # subscribed again (the snapshot follows on that connection), then give it a short bounded window
    # to arrive, since "nothing arrives" has no event to wait on.
    await fake.wait_subscribed("user")
    await asyncio.sleep(0.3)
    assert queue.empty(), "a fill was reported twice"
    await stream.aclose()


async def test_user_channel_needs_keys(fake: FakeCoinbase, make_config: MakeConfig) -> None:
    async with CoinbaseClient(make_config(fake)) as c:
        with pytest.raises(InvalidRequest):
            await take(c.subscribe_executions())


async def test_close_ends_streams(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    stream = client.subscribe_order_book("BTC-USD")
    await take(stream)
    reader = asyncio.create_task(take(stream, 100, timeout=5))
    await asyncio.sleep(0)  # one turn: the reader runs up to its wait for the next book
    await client.aclose()
    await asyncio.wait_for(reader, 2)
    await client.aclose()


def test_fill_tracker_dedups_and_prices_fills() -> None:
    tr = FillTracker(venue="coinbase")

    def state(
        cum: str, avg: str, status: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_OPEN
    ) -> order_pb2.Order:
        return order_pb2.Order(
            order_id="o",
            symbol="BTC-USD",
            filled_quantity=cum,
            average_fill_price=avg,
            status=status,
            total_fees="0",
        )

    assert [r.execution_type for r in tr.update(state("0", ""), baseline=True)] == [
        execution_pb2.EXECUTION_TYPE_STATUS
    ]
    (a,) = tr.update(state("1", "100"))
    assert (a.last_quantity, a.last_price) == ("1", "100")
    assert tr.update(state("1", "100")) == []  # replay
    reps = tr.update(state("3", "110", order_pb2.ORDER_STATUS_CANCELLED))
    assert [r.execution_type for r in reps] == [
        execution_pb2.EXECUTION_TYPE_TRADE,
        execution_pb2.EXECUTION_TYPE_CANCELLED,
    ]
    assert (reps[0].last_quantity, reps[0].last_price) == ("2", "115")  # (330 - 100) / 2
    assert tr.update(state("1", "100")) == []  # an older state never un-fills
    assert tr.open_order_ids() == []


async def test_reconnect_gives_every_market_stream_a_gap(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    trades = client.subscribe_trades("BTC-USD")
    gaps: list[Any] = []
    trades.on_gap(gaps.append)
    await asyncio.wait_for(trades.wait_live(), 3)
    await fake.drop_ws()
    async with asyncio.timeout(5):
        while not gaps:  # noqa: ASYNC110  (the reconnect happens in the client's own task)
            await asyncio.sleep(0.02)
    assert gaps[0].venue == "coinbase" and gaps[0].channel == "trades" and "reconnect" in gaps[0].reason
    await trades.aclose()
