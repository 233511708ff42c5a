"""The volume-anomaly risk monitor (reference §3.2), over the venue's public trade stream.

The original (L ``safety/risk_monitor.go``) read 1m/3m/5m klines of several symbols: a symbol is
anomalous when its newest candle's ``close < MA(close)`` and ``volume > multiplier * MA(volume)`` (MAs
over the ``average_window`` closed candles before it); the global trigger fires when ALL monitored
symbols are anomalous at once; it clears when at least ``recovery_threshold`` symbols have a closed
candle above the price MA with normal volume.  While triggered, the engine places nothing and cancels
its buys (sells stay).

Here the candles are built from the trade stream itself (one rolling window of ``window_seconds`` per
symbol; windows without trades close with zero volume), so no venue needs a kline stream with a
reliable ``is_closed`` flag (§12.5).  The baseline is seeded from historical candles when the venue
serves them, otherwise it warms up over ``average_window`` windows (no trigger before that).

Fixes of §12.5: only CLOSED windows form the MAs; recovery has an explicit rule: a symbol has recovered
when a window that closed AFTER the trigger (the anomalous window itself or a later one) is normal, so
the trigger cannot clear on the strength of a window from before the anomaly.  ``global_strategy``
(``all`` as in L, or ``any`` as in T) and the thresholds are configuration.

The monitor is pure state: time comes in with every call (seconds), the engine feeds it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from cqvx.num import ZERO

__all__ = ["SymbolVolume", "VolumeMonitor", "VolumeSettings"]


@dataclass(frozen=True, slots=True)
class VolumeSettings:
    window_seconds: float = 60.0
    average_window: int = 20
    volume_multiplier: Decimal = Decimal(3)
    require_price_drop: bool = True
    recovery_threshold: int = 1
    global_strategy: str = "all"  # "all" | "any"


class SymbolVolume:
    """Rolling trade-volume windows of one symbol."""

    def __init__(self, symbol: str, settings: VolumeSettings) -> None:
        self.symbol = symbol
        self.s = settings
        # closed windows, oldest first: (window index, volume, close price)
        self.closed: deque[tuple[int, Decimal, Decimal]] = deque(maxlen=settings.average_window + 1)
        self.index: int | None = None  # the current (open) window
        self.volume = ZERO
        self.close: Decimal | None = None
        self.trades = 0

    def _idx(self, ts: float) -> int:
        return math.floor(ts / self.s.window_seconds)

    def roll(self, now: float) -> None:
        """Close every window that ended before ``now`` (at most one baseline's worth of empty ones)."""
        target = self._idx(now)
        if self.index is None or target <= self.index:
            return
        if self.close is not None:
            self.closed.append((self.index, self.volume, self.close))
            gap = min(target - self.index - 1, self.s.average_window + 1)
            for k in range(gap):
                self.closed.append((target - gap + k, ZERO, self.close))
        self.index, self.volume = target, ZERO

    def add(self, ts: float, price: Decimal, quantity: Decimal) -> None:
        if self.index is None:
            self.index = self._idx(ts)
        self.roll(ts)
        if self._idx(ts) < self.index:
            return  # a late trade of a window already closed: the closed windows are final
        self.volume += quantity
        self.close = price
        self.trades += 1

    def seed(self, windows: Iterable[tuple[float, Decimal, Decimal]]) -> None:
        """Historical closed windows ``(start seconds, volume, close)``, oldest first."""
        for start, volume, close in windows:
            idx = self._idx(start)
            if self.closed and idx <= self.closed[-1][0]:
                continue
            self.closed.append((idx, volume, close))
            self.close = close

    def _ma(self, rows: list[tuple[int, Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
        n = Decimal(len(rows))
        return sum((r[1] for r in rows), ZERO) / n, sum((r[2] for r in rows), ZERO) / n

    def baseline(self) -> tuple[Decimal, Decimal] | None:
        """(MA volume, MA close) over the newest ``average_window`` closed windows, once warm."""
        rows = list(self.closed)[-self.s.average_window :]
        if len(rows) < self.s.average_window:
            return None
        return self._ma(rows)

    def ratio(self) -> Decimal | None:
        base = self.baseline()
        if base is None or base[0] <= 0:
            return None
        return self.volume / base[0]

    def anomalous(self) -> bool:
        """The current window: volume above ``multiplier x`` baseline (and price below its MA)."""
        base = self.baseline()
        if base is None or base[0] <= 0 or self.close is None:
            return False
        ma_vol, ma_px = base
        if self.volume <= ma_vol * self.s.volume_multiplier:
            return False
        return not self.s.require_price_drop or self.close < ma_px

    def recovered(self, since_index: int) -> bool:
        """The newest closed window (closed at/after ``since_index``) is normal vs the windows before it."""
        rows = list(self.closed)
        if len(rows) < self.s.average_window + 1:
            return False
        idx, volume, close = rows[-1]
        if idx < since_index:
            return False
        ma_vol, ma_px = self._ma(rows[-1 - self.s.average_window : -1])
        if ma_vol > 0 and volume >= ma_vol * self.s.volume_multiplier:
            return False
        return not self.s.require_price_drop or close > ma_px


class VolumeMonitor:
    """The per-symbol windows plus the global trigger."""

    def __init__(self, symbols: Iterable[str], settings: VolumeSettings) -> None:
        self.settings = settings
        self.symbols: dict[str, SymbolVolume] = {s: SymbolVolume(s, settings) for s in symbols}
        if not self.symbols:
            raise ValueError("the volume monitor needs at least one symbol")
        self.recovery_threshold = max(1, min(settings.recovery_threshold, len(self.symbols)))
        self.triggered = False
        self.trigger_index: dict[str, int] = {}
        self.triggers = 0
        self.recoveries = 0
        self.now = 0.0

    def add_trade(self, symbol: str, ts: float, price: Decimal, quantity: Decimal) -> None:
        sv = self.symbols.get(symbol)
        if sv is None or quantity <= 0 or price <= 0:
            return
        self.now = max(self.now, ts)
        sv.add(ts, price, quantity)

    def evaluate(self, now: float | None = None) -> bool:
        """Roll the windows to ``now`` and update the trigger; returns whether it is on."""
        if now is not None:
            self.now = max(self.now, now)
        for sv in self.symbols.values():
            sv.roll(self.now)
        if not self.triggered:
            flags = [sv.anomalous() for sv in self.symbols.values()]
            hit = all(flags) if self.settings.global_strategy == "all" else any(flags)
            if hit:
                self.triggered = True
                self.triggers += 1
                self.trigger_index = {s: sv.index or 0 for s, sv in self.symbols.items()}
        else:
            recovered = sum(1 for s, sv in self.symbols.items() if sv.recovered(self.trigger_index.get(s, 0)))
            if recovered >= self.recovery_threshold:
                self.triggered = False
                self.recoveries += 1
        return self.triggered

    def status(self) -> dict[str, object]:
        def per(sv: SymbolVolume) -> dict[str, object]:
            base = sv.baseline()
            ratio = sv.ratio()
            return {
                "window_volume": str(sv.volume),
                "baseline_volume": str(base[0]) if base else None,
                "baseline_close": str(base[1]) if base else None,
                "ratio": str(ratio.quantize(Decimal("0.001"))) if ratio is not None else None,
                "anomalous": sv.anomalous(),
                "warm": base is not None,
                "trades": sv.trades,
            }

        return {
            "triggered": self.triggered,
            "triggers": self.triggers,
            "recoveries": self.recoveries,
            "window_seconds": self.settings.window_seconds,
            "volume_multiplier": str(self.settings.volume_multiplier),
            "global_strategy": self.settings.global_strategy,
            "symbols": {s: per(sv) for s, sv in self.symbols.items()},
        }
