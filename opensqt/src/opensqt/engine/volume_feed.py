"""Feeds the volume-anomaly monitor (pure state in ``risk/volume.py``) from the venue (reference §3.2).

* :meth:`VolumeFeed.seed`: baselines from historical candles where the venue serves them.
* :meth:`VolumeFeed.trades`: one public trade stream into the monitor (a loop body for the engine's
  supervisor, which restarts it when the stream fails or ends).
* :meth:`VolumeFeed.check`: evaluate; returns the edge (``"on"`` when the anomaly starts, ``"off"``
  when it clears, None otherwise).  Windows also roll without trades, on venue time since the last
  trade, so a quiet market recovers.  What to do on an edge (cancel the buys) is the coordinator's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from cqvx import timeutil
from cqvx.client import SupportsCandles, VenueClient
from cqvx.errors import VenueError
from cqvx.num import ZERO, dec, dec_or_none
from opensqt.risk.volume import VolumeMonitor

__all__ = ["VolumeFeed"]

log = structlog.get_logger("opensqt.engine")


class VolumeFeed:
    def __init__(
        self,
        monitor: VolumeMonitor,
        client: VenueClient,
        *,
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.monitor = monitor
        self.client = client
        self._clock = clock
        self._wall = wall
        self._last_trade_clock: float | None = None

    @property
    def period(self) -> float:
        """How often windows are rolled without trades."""
        return min(1.0, self.monitor.settings.window_seconds / 4)

    async def seed(self) -> None:
        """Seed the volume baselines from historical candles where the venue serves them."""
        interval = timeutil.candle_interval(int(self.monitor.settings.window_seconds))
        if interval is None or not isinstance(self.client, SupportsCandles):
            return
        for sym, sv in self.monitor.symbols.items():
            try:
                candles = await self.client.get_candles(
                    sym, interval, limit=self.monitor.settings.average_window + 2
                )
            except VenueError as err:
                log.info("volume baseline: no candles, warming up from trades", symbol=sym, error=str(err))
                continue
            closed = [c for c in candles if c.is_closed]
            sv.seed(
                (
                    timeutil.to_seconds(c.open_time),
                    dec_or_none(c.volume, "volume") or ZERO,
                    dec(c.close),
                )
                for c in closed
            )

    async def trades(self, symbol: str, after_trade: Callable[[], Awaitable[None]]) -> None:
        """Read the public trades of ``symbol`` into the monitor until the stream ends or fails."""
        stream = self.client.subscribe_trades(symbol)
        try:
            async for t in stream:
                if t.symbol and t.symbol != symbol:
                    continue
                self.on_trade(symbol, t)
                await after_trade()
        finally:
            await stream.aclose()

    def on_trade(self, symbol: str, trade: Any) -> None:
        """Feed one public trade (a ``cqc.markets.v1.Trade``) to the volume monitor."""
        price = dec_or_none(trade.price, "price")
        qty = dec_or_none(trade.quantity, "quantity")
        if price is None or qty is None:
            return
        ts = timeutil.to_seconds(trade.timestamp) if trade.HasField("timestamp") else self._wall()
        self.monitor.add_trade(symbol, ts, price, qty)
        self._last_trade_clock = self._clock()

    def check(self) -> str | None:
        """Evaluate the monitor; ``"on"`` on the rising edge, ``"off"`` on the falling one."""
        was = self.monitor.triggered
        now = self.monitor.now
        if self._last_trade_clock is not None:
            now += max(0.0, self._clock() - self._last_trade_clock)  # venue time since the last trade
        on = self.monitor.evaluate(now)
        if on and not was:
            log.warning("volume anomaly: placement paused, buys cancelled", status=self.monitor.status())
            return "on"
        if was and not on:
            log.info("volume back to normal: placement resumed")
            return "off"
        return None
