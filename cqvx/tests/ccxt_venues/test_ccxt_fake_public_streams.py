"""The thinner fakes' public streams (book, trades, ticker) through the adapter and unmodified ccxt.pro.

The book, trade and gap behaviour is the conformance suite's (``test_ccxt_fakes_conformance.py``); here
what it cannot see: prices over the wire in base units, that the venue's own book integrity check
(OKX ``prevSeqId``, Bitget checksum, Gate ``U``/``u``) accepts every update the fake sends and fails on
the one it withholds (a bad checksum or chain would also converge, through resubscribing, so the
subscription count is what tells), and the checksum text rule from the OKX docs.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.client import SupportsPrices, VenueClient
from cqvx.testing.conformance.base import _same_book
from cqvx.testing.fake_ccxt._public_ws import crc32_signed, interleaved_checksum
from cqvx.testing.fake_ccxt.harness import FAKES, CcxtFakeHarness

# Where the venue's client checks the book's integrity (Bybit's ccxt handler checks nothing).
CHECKED = ("okx", "bitget", "gate")


@pytest.fixture(params=FAKES)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[CcxtFakeHarness]:
    h = CcxtFakeHarness(request.param)
    await h.start()
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
async def client(harness: CcxtFakeHarness) -> AsyncIterator[VenueClient]:
    c = await harness.new_client()
    try:
        yield c
    finally:
        await c.aclose()


async def _converge(client: VenueClient, harness: CcxtFakeHarness, stream: object, depth: int) -> None:
    want = await harness.expected_book(depth)
    async with asyncio.timeout(harness.timeout):
        async for book in stream:  # type: ignore[attr-defined]
            if _same_book(book, want):
                return


async def test_prices_stream_over_the_wire_in_base_units(
    harness: CcxtFakeHarness, client: VenueClient
) -> None:
    assert isinstance(client, SupportsPrices)
    stream = client.subscribe_prices([harness.symbol])
    try:
        await asyncio.wait_for(stream.wait_live(), harness.timeout)
        price = await asyncio.wait_for(anext(aiter(stream)), harness.timeout)
        touch = await harness.sim.get_latest_price(harness.symbol)
        assert price.symbol == harness.symbol and price.venue == harness.venue
        assert Decimal(price.last) > 0
        if harness.venue != "gate":  # Gate's futures.tickers carries no touch
            assert (price.bid, price.ask) == (touch.bid, touch.ask)
            # The fake sends contracts on OKX (0.01 BTC each): the adapter reports base units.
            assert Decimal(price.bid_size) == Decimal(touch.bid_size)
        # A trade moves the last price on the stream.
        at = Decimal(touch.bid)
        harness.sim.inject_trade(harness.symbol, at, Decimal("0.01"), order_pb2.ORDER_SIDE_SELL)
        async with asyncio.timeout(harness.timeout):
            async for update in stream:
                if Decimal(update.last) == at:
                    break
    finally:
        await stream.aclose()


@pytest.mark.parametrize("moves", [6])
async def test_the_venues_integrity_check_accepts_every_update_and_catches_the_withheld_one(
    harness: CcxtFakeHarness, client: VenueClient, moves: int
) -> None:
    if harness.venue not in CHECKED:
        pytest.skip("ccxt's Bybit handler has no integrity check (a fresh snapshot is Bybit's recovery)")
    public = harness.venue_fake.public
    stream = client.subscribe_order_book(harness.symbol, 10)
    try:
        await _converge(client, harness, stream, 10)
        subscribed = public.subscribe_requests
        for i in range(moves):  # published updates: each must pass the client's check
            mid = harness.sim.markets[harness.symbol].mid
            harness.sim.set_price(harness.symbol, mid + Decimal("0.01") * (1 if i % 2 else -1))
            await _converge(client, harness, stream, 10)
        assert public.subscribe_requests == subscribed, "an update the fake sent failed the venue's check"
        await harness.make_book_gap()
        await _converge(client, harness, stream, 10)
        assert public.subscribe_requests > subscribed, "the withheld update went unnoticed"
    finally:
        await stream.aclose()


def test_checksum_text_follows_the_okx_docs_example() -> None:
    # https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel ("Checksum"):
    # bids 3366.1/7 and 3366/6, asks 3366.8/9 and 3368/8 -> "3366.1:7:3366.8:9:3366:6:3368:8"; a side
    # that runs out is skipped.
    bids = [["3366.1", "7"], ["3366", "6"]]
    asks = [["3366.8", "9"], ["3368", "8"]]
    assert interleaved_checksum(bids, asks) == crc32_signed("3366.1:7:3366.8:9:3366:6:3368:8")
    assert interleaved_checksum(bids, asks[:1]) == crc32_signed("3366.1:7:3366.8:9:3366:6")
    assert interleaved_checksum([["1", "1"]] * 30, []) == crc32_signed(":".join(["1:1"] * 25))


def test_crc32_signed_is_the_signed_32_bit_value() -> None:
    # zlib gives the unsigned value; OKX and Bitget publish it as a signed int32.
    for text in ("", "a", "3366.1:7:3366.8:9", "x" * 1000):
        value = crc32_signed(text)
        assert -(2**31) <= value < 2**31
        assert value % 2**32 == zlib.crc32(text.encode())
