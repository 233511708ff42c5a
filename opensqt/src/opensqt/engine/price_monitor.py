"""One price source per symbol from the venue stream, conflated: the latest value wins.

The original kept the latest price in an atomic and pushed it every ``price_send_interval`` (50 ms) into
a small channel, dropping when full.  Here the reader awaits :meth:`PriceMonitor.next`, which returns the
newest price not yet delivered and waits at least ``min_interval`` between deliveries; prices that
arrive in between overwrite each other (counted as ``conflated``).  The stream is re-subscribed after an
error or an end with :class:`cqvx.backoff.Backoff` (full jitter from ``reconnect_delay`` doubling up to
30 s; the attempt count resets once a price arrives), so many engines that lost the same connector come
back spread out, not in lockstep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from decimal import Decimal

import structlog

from cqc.markets.v1 import price_pb2, trade_pb2
from cqvx.backoff import Backoff, Sleep
from cqvx.client import SupportsPrices, VenueClient
from cqvx.errors import VenueError
from cqvx.num import dec_or_none

__all__ = ["PriceMonitor", "price_of"]

log = structlog.get_logger("opensqt.price")


def price_of(msg: price_pb2.Price | trade_pb2.Trade) -> Decimal | None:
    """The tradable price of a stream item: last trade, else the bid/ask mid."""
    if isinstance(msg, trade_pb2.Trade):
        return dec_or_none(msg.price, "price")
    last = dec_or_none(msg.last, "last")
    if last is not None and last > 0:
        return last
    bid, ask = dec_or_none(msg.bid, "bid"), dec_or_none(msg.ask, "ask")
    if bid and ask:
        return (bid + ask) / 2
    return None


class PriceMonitor:
    def __init__(
        self,
        client: VenueClient,
        symbol: str,
        *,
        min_interval: float = 0.05,
        reconnect_delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.symbol = symbol
        self.min_interval = min_interval
        self.reconnect_delay = reconnect_delay
        self.backoff = Backoff(initial=reconnect_delay, maximum=max(reconnect_delay, 30.0))
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self.latest: Decimal | None = None
        self.latest_at: float | None = None  # monotonic time the latest price arrived
        self._event = asyncio.Event()
        self._delivered_at = 0.0
        self.received = 0
        self.conflated = 0
        self.reconnects = 0
        self.last_error: str = ""

    def publish(self, price: Decimal) -> None:
        """Offer a price (the stream task calls this; tests and benchmarks may too)."""
        if price <= 0:
            return
        if self._event.is_set():
            self.conflated += 1
        self.latest = price
        self.latest_at = self._clock()
        self.received += 1
        self._event.set()

    async def next(self) -> tuple[Decimal, float]:
        """The newest undelivered price and the monotonic time it arrived."""
        wait = self._delivered_at + self.min_interval - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        await self._event.wait()
        self._event.clear()
        self._delivered_at = self._clock()
        assert self.latest is not None and self.latest_at is not None
        return self.latest, self.latest_at

    async def run(self) -> None:
        """Subscribe and publish until cancelled; re-subscribes after stream errors."""
        attempt = 0
        while True:
            stream = (
                self.client.subscribe_prices([self.symbol])
                if isinstance(self.client, SupportsPrices)
                else self.client.subscribe_trades(self.symbol)
            )
            try:
                async for msg in stream:
                    if msg.symbol and msg.symbol != self.symbol:
                        continue
                    price = price_of(msg)
                    if price is not None:
                        self.publish(price)
                        attempt = 0
                self.last_error = "stream ended"
            except VenueError as err:
                self.last_error = f"{type(err).__name__}: {err.message}"
                log.warning("price stream error", symbol=self.symbol, error=self.last_error)
            except Exception as exc:
                # A misbehaving adapter must not stop the price feed (and with it every tick) for good.
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.exception("price stream failed", symbol=self.symbol)
            finally:
                await stream.aclose()
            self.reconnects += 1
            attempt += 1
            await self.backoff.sleep(attempt, self._rng, sleep=self._sleep)

    def status(self) -> dict[str, object]:
        age = None if self.latest_at is None else round(self._clock() - self.latest_at, 3)
        return {
            "symbol": self.symbol,
            "price": str(self.latest) if self.latest is not None else None,
            "age_seconds": age,
            "received": self.received,
            "conflated": self.conflated,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }
