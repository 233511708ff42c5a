"""Stream fan-out: one upstream per (venue, channel, symbol), ordered delivery to many subscribers,
slow subscribers dropped (or conflated) without delaying the others, and gap notices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpc import aio
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.markets.v1 import price_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqvx.errors import InvalidRequest, Unavailable
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from cqvx.testing.waits import until
from opensqt.connector import Gap, GapInfo, RemoteVenue, StreamHub, SubscriberOverflow, TopicKey

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def mock() -> AsyncIterator[MockVenue]:
    venue = MockVenue("mock")
    yield venue
    await venue.aclose()


async def _read(stream: Any, n: int) -> list[Any]:
    out = []
    async for msg in stream:
        out.append(msg)
        if len(out) == n:
            break
    return out


# -- the hub on its own ------------------------------------------------------------------------------


class _Feed:
    """An upstream stream the test controls."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self.closed = True


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(st.one_of(st.integers(0, 999), st.just(-1)), max_size=80),
    maxsize=st.integers(1, 8),
)
def test_subscription_delivers_in_order_or_drops(ops: list[int], maxsize: int) -> None:
    """Offers (ints) and reads (-1) in any interleaving on an account channel (FAIL policy): what is
    read is exactly what was offered, in order, unless the buffer overflowed, in which case the
    subscriber ends with SubscriberOverflow after a gap notice."""

    async def run() -> None:
        hub = StreamHub(maxsize=maxsize)
        sub: Any = hub.open("orders", [])
        offered: list[int] = []
        read: list[int] = []

        async def take() -> None:
            item = await sub.get()
            if not isinstance(item, Gap):
                read.append(item)

        for op in ops:
            if op >= 0:
                offered.append(op)
                sub.push(op)
            elif sub.pending():
                await take()
        while sub.pending():
            await take()
        if sub.dropped:
            assert read == offered[: len(read)]
            with pytest.raises(SubscriberOverflow):
                await sub.get()
        else:
            assert read == offered

    asyncio.run(run())


async def test_conflating_subscriber_keeps_newest_per_key_and_gaps_in_place() -> None:
    """A full prices queue keeps the newest per symbol, behind any gap notice that came before it."""
    hub = StreamHub(maxsize=4)
    sub: Any = hub.open("prices", [])
    for last in ("1", "2", "3"):
        sub.push(price_pb2.Price(symbol="BTC-USD", last=last))
    sub.push(price_pb2.Price(symbol="ETH-USD", last="10"))
    sub.gap(Gap("v", "prices", reason="upstream reconnect"))
    sub.push(price_pb2.Price(symbol="BTC-USD", last="4"))
    got = [await sub.get() for _ in range(3)]
    assert [(g.symbol, g.last) if not isinstance(g, Gap) else "gap" for g in got] == [
        ("ETH-USD", "10"),
        "gap",
        ("BTC-USD", "4"),
    ]
    assert not sub.dropped


async def test_topic_reconnects_with_gap_and_fatal_errors_end_it() -> None:
    feeds: list[_Feed] = []

    def factory() -> _Feed:
        feeds.append(_Feed())
        return feeds[-1]

    hub = StreamHub(retry_initial=0.001, retry_max=0.01)
    key = TopicKey("v", "trades", "X")
    sub: Any = hub.open("trades", [(key, factory)])
    await until(lambda: feeds)
    feeds[0].queue.put_nowait("a")
    assert await sub.get() == "a"
    feeds[0].queue.put_nowait(Unavailable("socket closed"))
    gap = await asyncio.wait_for(sub.get(), 2)
    assert isinstance(gap, Gap) and gap.reason == "upstream reconnect" and gap.since is not None
    assert feeds[0].closed and len(feeds) == 2 and hub.stats.reconnects == {"trades": 1}
    feeds[1].queue.put_nowait("b")
    assert await sub.get() == "b"
    feeds[1].queue.put_nowait(InvalidRequest("unknown symbol"))
    with pytest.raises(InvalidRequest):
        await asyncio.wait_for(sub.get(), 2)
    assert hub.topic_stats(key) is None


# -- over gRPC -----------------------------------------------------------------------------------------


async def test_ten_clients_share_one_upstream_and_see_the_same_ordered_messages(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock)
    remotes: list[RemoteVenue] = [await connect(server) for _ in range(10)]
    streams = [r.subscribe_trades("BTC-USD") for r in remotes]
    n = 300
    readers = [asyncio.ensure_future(_read(s, n)) for s in streams]
    await until(lambda: server.hub.subscribers("trades") == 10)
    pushed = [await mock.push_trade("BTC-USD", trade_id=f"t{i}", price=str(50000 + i)) for i in range(n)]
    results = await asyncio.wait_for(asyncio.gather(*readers), 20)
    expected = [t.trade_id for t in pushed]
    for got in results:
        assert [t.trade_id for t in got] == expected
    assert mock.call_count("subscribe_trades") == 1
    assert server.hub.topic_stats(TopicKey("mock", "trades", "BTC-USD")) == (1, 10)
    assert server.metrics.value("opensqt_connector_stream_subscribers", {"channel": "trades"}) == 10
    for s in streams:
        await s.aclose()
    await until(lambda: server.hub.subscribers("trades") == 0)
    assert mock.stream("trades").subscriber_count == 0


async def test_slow_client_loses_oldest_trades_with_a_gap_without_delaying_the_others(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock, subscriber_queue=256)
    fast = await connect(server)
    fast_stream = fast.subscribe_trades("BTC-USD")
    # A raw client that subscribes and then never reads; no BDP probing, so its window stays small.
    channel = aio.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)])
    try:
        slow_call = gw_grpc.VenueGatewayStub(channel).StreamTrades(
            gw.StreamTradesRequest(venue="mock", symbol="BTC-USD")
        )
        await slow_call.initial_metadata()
        n = 1500
        got: list[Any] = []

        async def read_fast() -> None:
            async for msg in fast_stream:
                got.append(msg)
                if len(got) == n:
                    break

        reader = asyncio.ensure_future(read_fast())
        await until(lambda: server.hub.subscribers("trades") == 2)
        pad = "x" * 1000  # bigger messages fill the slow client's 64 KiB flow-control window sooner
        for i in range(n):
            await mock.push_trade("BTC-USD", trade_id=f"t{i}-{pad}")
            if i % 50 == 49:
                # A live feed has pauses: bursts stay below the queue size (256). Wait for the fast
                # reader to catch up rather than for a fixed time; were it held back by the slow
                # client, this times out.
                await until(lambda: len(got) > i)  # noqa: B023 - awaited before i changes
        await asyncio.wait_for(reader, 20)
        assert [t.trade_id for t in got] == [f"t{i}-{pad}" for i in range(n)]
        # Trades drop the oldest (policy DROP_OLDEST): the slow client stays subscribed...
        assert server.hub.stats.dropped.get("trades", 0) >= 1
        assert (
            server.metrics.value("opensqt_connector_slow_clients_dropped_total", {"channel": "trades"}) >= 1
        )
        assert server.hub.subscribers("trades") == 2
        # ... and finds out when it reads: what it buffered, then a StreamGap, then the newest trades.
        seen_gap = False
        last = ""
        while last != f"t{n - 1}-{pad}":
            msg: Any = await asyncio.wait_for(slow_call.read(), 5)
            assert msg is not aio.EOF
            if msg.WhichOneof("event") == "gap":
                seen_gap = True
                assert "overflowed" in msg.gap.reason
            else:
                last = msg.trade.trade_id
        assert seen_gap
    finally:
        await channel.close()


async def test_upstream_interruption_sends_gap_and_remote_reports_it(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock)
    seen: list[GapInfo] = []
    remote = await connect(server, on_gap=seen.append)
    stream = remote.subscribe_trades("BTC-USD")
    first = asyncio.ensure_future(_read(stream, 1))
    await mock.stream("trades").wait_subscribed()
    await mock.push_trade("BTC-USD", trade_id="before")
    assert [t.trade_id for t in await first] == ["before"]
    # Raw reader too, to check sequence numbers and the StreamGap message on the wire.
    channel = aio.insecure_channel(server.address)
    try:
        raw = gw_grpc.VenueGatewayStub(channel).StreamTrades(
            gw.StreamTradesRequest(venue="mock", symbol="BTC-USD")
        )
        await raw.initial_metadata()
        await until(lambda: server.hub.subscribers("trades") == 2)
        # Gaps are reported as the stream is read, so keep a reader going (as the engine does).
        after = asyncio.ensure_future(_read(stream, 1))
        mock.stream("trades").fail(Unavailable("websocket dropped"))
        gap = await remote.next_gap(timeout=5)
        assert (gap.stream, gap.source, gap.reason) == ("trades:BTC-USD", "connector", "upstream reconnect")
        assert seen == [gap] and remote.gap_count == 1
        await mock.stream("trades").wait_subscribed()
        assert mock.call_count("subscribe_trades") == 2
        await mock.push_trade("BTC-USD", trade_id="after")
        assert [t.trade_id for t in await asyncio.wait_for(after, 5)] == ["after"]
        m1: Any = await asyncio.wait_for(raw.read(), 5)
        m2: Any = await asyncio.wait_for(raw.read(), 5)
        assert (m1.sequence, m1.WhichOneof("event"), m1.gap.reason) == (1, "gap", "upstream reconnect")
        assert (m2.sequence, m2.trade.trade_id) == (2, "after")
        assert server.metrics.value("opensqt_connector_upstream_reconnects_total", {"channel": "trades"}) == 1
    finally:
        await channel.close()


async def test_price_stream_conflates_for_a_slow_reader(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock, subscriber_queue=4)
    remote: Any = await connect(server)
    stream = remote.subscribe_prices(["BTC-USD", "ETH-USD"])
    first = asyncio.ensure_future(_read(stream, 1))
    await mock.stream("prices").wait_subscribed(2)  # one upstream per symbol
    await mock.push_price(builders.price(venue="mock", symbol="BTC-USD", last="1"))
    await first
    for i in range(2, 2000):
        await mock.push_price(builders.price(venue="mock", symbol="BTC-USD", last=str(i)))
    await mock.push_price(builders.price(venue="mock", symbol="ETH-USD", last="7"))
    # The reader falls behind for real: wait until the connector has pulled every price from the
    # mock's upstream queues (into its conflating per-subscriber queue) before reading any.
    upstreams = mock.stream("prices")._hub.members("prices")
    await until(lambda: all(sub.pending() == 0 for sub in upstreams))
    # However far behind, the reader is never dropped and ends on the newest prices.
    latest: dict[str, str] = {}
    while latest.get("BTC-USD") != "1999" or latest.get("ETH-USD") != "7":
        p = await asyncio.wait_for(stream.__anext__(), 5)
        latest[p.symbol] = p.last
    assert server.hub.stats.dropped == {}
    assert mock.call_count("subscribe_prices") == 2


async def test_remote_stream_is_live_eagerly_refusals_are_typed_and_gaps_reach_on_gap(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    mock.refused_symbols["NOPE-USD"] = InvalidRequest("unknown symbol 'NOPE-USD'", venue="mock")
    server = await start_server(mock)
    remote = await connect(server)
    refused = remote.subscribe_trades("NOPE-USD")
    with pytest.raises(InvalidRequest):
        await asyncio.wait_for(refused.wait_live(), 5)
    stream = remote.subscribe_trades("BTC-USD")
    gaps: list[Gap] = []
    stream.on_gap(gaps.append)
    await asyncio.wait_for(stream.wait_live(), 5)
    # Live with nobody reading yet: the connector's upstream is subscribed already.
    assert mock.stream("trades").subscriber_count == 1
    mock.stream("trades").fail(Unavailable("websocket dropped"))
    await mock.stream("trades").wait_subscribed()
    await mock.push_trade("BTC-USD", trade_id="after")
    assert (await asyncio.wait_for(stream.__anext__(), 5)).trade_id == "after"
    assert [(g.source, g.reason) for g in gaps] == [("connector", "upstream reconnect")]
    await stream.aclose()
