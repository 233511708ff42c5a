"""The ccxt adapter's polled streams: positions, funding rates and candles over REST.

Polled, not watched: the five venues' position, funding and kline pushes carry different fields
(and ccxt.pro has no unified funding stream), while the REST reads are the same unified calls on
every venue.  Rules: each poll waits the config's ``positions_poll_s``; an item is yielded when first
seen and whenever it changes (a position that disappears is yielded once as FLAT); a retry-safe
failure waits for the next poll, any other failure ends the stream (``cqvx.fanout.feed`` fails the
subscription with it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from cqc.markets.v1 import candle_pb2, funding_pb2
from cqc.portfolio.v1 import position_pb2
from cqvx.errors import VenueError

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["candles", "funding", "positions"]

T = TypeVar("T")


async def _reads(client: CcxtClient, read: Callable[[], Awaitable[T]]) -> AsyncGenerator[T, None]:
    """Each successful read, one poll interval apart (retry-safe failures skip a poll)."""
    while not client._closed:
        try:
            yield await read()
        except VenueError as err:
            if not err.retry_safe:
                raise
        await asyncio.sleep(client._config.positions_poll_s)


async def positions(
    client: CcxtClient, symbols: Sequence[str] | None
) -> AsyncGenerator[position_pb2.Position, None]:
    last: dict[str, bytes] = {}
    async for current in _reads(client, lambda: client.get_positions(symbols)):
        now = {p.symbol: p.SerializeToString(deterministic=True) for p in current}
        for p in current:
            if last.get(p.symbol) != now[p.symbol]:
                yield p
        for gone in sorted(last.keys() - now.keys()):
            yield position_pb2.Position(
                venue=client.venue, symbol=gone, side=position_pb2.POSITION_SIDE_FLAT, quantity="0"
            )
        last = now


async def funding(
    client: CcxtClient, symbols: Sequence[str] | None
) -> AsyncGenerator[funding_pb2.FundingRate, None]:
    last: dict[str, tuple[str, str, int]] = {}
    async for current in _reads(client, lambda: client.get_funding_rates(symbols)):
        for rate in current:
            key = (rate.rate, rate.mark_price, rate.next_funding_time.seconds)
            if last.get(rate.symbol) != key:
                last[rate.symbol] = key
                yield rate


async def candles(client: CcxtClient, symbol: str, interval: int) -> AsyncGenerator[candle_pb2.Candle, None]:
    last: dict[int, bytes] = {}
    async for current in _reads(client, lambda: client.get_candles(symbol, interval, limit=2)):
        for candle in current:
            blob = candle.SerializeToString(deterministic=True)
            if last.get(candle.open_time.seconds) != blob:
                last[candle.open_time.seconds] = blob
                yield candle
        if len(last) > 4:  # only the newest candles can still change
            for old in sorted(last)[:-4]:
                del last[old]
