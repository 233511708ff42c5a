"""The l2_data book over the fake Prime feed: signed subscribe, gaps, reconnects, refusals."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from cqc.markets.v1 import orderbook_pb2
from cqvx.errors import AuthenticationError
from cqvx.fanout import Subscription
from cqvx.streams import Gap, LiveStream
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.types import Stream
from cqvx.venues.prime import PrimeClient, PrimeConfig

from .conftest import make_config


async def _until(stream: Stream[orderbook_pb2.OrderBook], want: orderbook_pb2.OrderBook) -> None:
    async with asyncio.timeout(5):
        async for book in stream:
            if list(book.bids) == list(want.bids) and list(book.asks) == list(want.asks):
                return


async def test_signed_subscribe_snapshot_updates_and_gap(client: PrimeClient, fake: FakePrime) -> None:
    stream = client.subscribe_order_book("BTC-USD", 5)
    assert isinstance(stream, Subscription) and isinstance(stream, LiveStream)
    gaps: list[Gap] = []
    stream.on_gap(gaps.append)
    try:
        await asyncio.wait_for(stream.wait_live(), 5)
        await _until(stream, fake.feed.expected_book("BTC-USD", 5))
        assert fake.feed.refusals == 0
        await fake.feed.update("BTC-USD", "bid", Decimal("50005"), Decimal("3"))
        await _until(stream, fake.feed.expected_book("BTC-USD", 5))
        # A lost update: the next message's sequence skips one, the client resyncs from a snapshot.
        await fake.feed.update("BTC-USD", "bid", Decimal("50005"), Decimal(0), publish=False)
        await fake.feed.update("BTC-USD", "offer", Decimal("50010"), Decimal("7"))
        await _until(stream, fake.feed.expected_book("BTC-USD", 5))
        assert any("sequence gap" in g.reason for g in gaps)
        assert fake.ws_connects >= 2
    finally:
        await stream.aclose()


async def test_dropped_connection_is_a_gap_and_resubscribes(client: PrimeClient, fake: FakePrime) -> None:
    stream = client.subscribe_order_book("BTC-USD", 3)
    assert isinstance(stream, Subscription)
    gaps: list[Gap] = []
    stream.on_gap(gaps.append)
    try:
        await asyncio.wait_for(stream.wait_live(), 5)
        await fake.drop_ws()
        await fake.feed.update("BTC-USD", "bid", Decimal("50000"), Decimal(0))  # while away
        await _until(stream, fake.feed.expected_book("BTC-USD", 3))
        assert [g.reason for g in gaps][:1] == ["reconnected"]
    finally:
        await stream.aclose()


async def test_refused_subscription_raises_from_wait_live(fake: FakePrime, clock: FakeClock) -> None:
    good = make_config(fake.url)
    bad = PrimeConfig(rest_url=fake.url, ws_url=good.ws_url).with_credentials(
        good.access_key, "wrong-passphrase", "wrong-key", good.portfolio_id
    )
    async with PrimeClient(bad, clock=clock) as c:
        stream = c.subscribe_order_book("BTC-USD")
        assert isinstance(stream, Subscription)
        with pytest.raises(AuthenticationError):
            await asyncio.wait_for(stream.wait_live(), 5)
        await stream.aclose()
    assert fake.feed.refusals >= 1


async def test_get_order_book_is_one_ws_snapshot(client: PrimeClient, fake: FakePrime) -> None:
    book = await client.get_order_book("BTC-USD", 2)
    want = fake.feed.expected_book("BTC-USD", 2)
    assert list(book.bids) == list(want.bids) and list(book.asks) == list(want.asks)
    assert fake.ws_connections == set() or all(ws.closed for ws in fake.ws_connections)


async def test_silent_connection_is_closed_after_the_subscribe_deadline(fake: FakePrime) -> None:
    import aiohttp

    fake.feed.subscribe_deadline = 0.05
    async with aiohttp.ClientSession() as session, session.ws_connect(fake.ws_url + "/ws") as ws:
        msg = await asyncio.wait_for(ws.receive(), 5)  # we never subscribe
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_algo_child_fills_stream_back_once_across_reconnects(
    client: PrimeClient, fake: FakePrime
) -> None:
    from datetime import UTC, datetime, timedelta

    from cqc.venues.v1 import execution_pb2, order_pb2
    from cqvx.types import AlgoParams

    stream = client.subscribe_executions(["BTC-USD"])
    assert isinstance(stream, Subscription)
    try:
        await asyncio.wait_for(stream.wait_live(), 5)
        start = datetime.now(UTC)
        parent = order_pb2.Order(
            client_order_id="twap-s",
            symbol="BTC-USD",
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            quantity="0.03",
            price="60000",
        )
        placed = await client.place_algo_order(
            parent, AlgoParams("TWAP", start=start, expiry=start + timedelta(hours=1))
        )
        await fake.fill_order(placed.order_id, Decimal("0.01"), Decimal("50000"))
        await fake.drop_ws()  # a reconnect replays the snapshot: nothing twice
        await fake.fill_order(placed.order_id, Decimal("0.01"), Decimal("50020"), publish=False)  # lost
        await fake.drop_ws()
        await fake.fill_order(placed.order_id, Decimal("0.01"), Decimal("50040"))  # completes: FILLED
        trades: list[execution_pb2.ExecutionReport] = []
        async with asyncio.timeout(5):
            async for rep in stream:
                if rep.execution_type == execution_pb2.EXECUTION_TYPE_TRADE:
                    trades.append(rep)
                if sum(Decimal(t.last_quantity) for t in trades) >= Decimal("0.03"):
                    break
        # Cumulative state: a fill lost in transit is derived from the next state it shows up in, so
        # the slices may arrive merged, but every unit is reported exactly once.
        assert sum(Decimal(t.last_quantity) for t in trades) == Decimal("0.03")
        assert len({t.trade_id for t in trades}) == len(trades) >= 2
        assert trades[-1].order_status == order_pb2.ORDER_STATUS_FILLED
    finally:
        await stream.aclose()
