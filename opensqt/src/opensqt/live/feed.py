"""The live page's state: what a client that connects now must be sent, kept by applying every message.

:meth:`LiveFeed.publish` applies one protocol message to the state and broadcasts it (encoded once);
:meth:`LiveFeed.snapshot` is what the hub sends a new client first: ``history`` (the last 100 candles),
``account``, ``position``, ``orders`` (the open orders, an array), ``slots``, ``risk_status`` and the
last fills (``trade_event``, so the markers come back after a reconnect; they carry their own time, so
the page does not ring for them).

State messages that can change many times a second (``position`` moves with every price tick,
``account``, ``slots``, the current ``kline``) are **conflated**: at most one per ``min_interval``
(0.25 s: 4 a second) per (type, symbol[, asset]), the latest value wins, and the last value is always
delivered (a trailing send when the interval is over).  A ``kline`` of a new minute first sends the held
last value of the previous one, so candles never arrive out of order.  The state (and so every
snapshot) is updated at once; only the broadcast is held.  Events (``orders``, ``trade_event``,
``risk_status``, ``history``) are never held: each one matters.

The same state serves the engine's embedded page (the app's bridge publishes into it) and ``opensqt
live`` (the relay publishes what it receives from the engine), so both send byte-identical snapshots.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from opensqt.live.hub import Hub
from opensqt.live.protocol import HISTORY_LIMIT, envelope

__all__ = ["LiveFeed"]

_OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
_TRADES_KEPT = 50  # the page keeps the last 50 markers
CONFLATED = frozenset({"position", "account", "slots", "kline"})
MIN_INTERVAL = 0.25  # seconds between two messages of one conflated (type, symbol)


def encode(kind: str, data: Any) -> str:
    return json.dumps(envelope(kind, data), separators=(",", ":"))


class LiveFeed:
    def __init__(
        self,
        hub: Hub | None = None,
        *,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.candles: list[dict[str, Any]] = []
        self.orders: dict[int, dict[str, Any]] = {}
        self.trades: deque[dict[str, Any]] = deque(maxlen=_TRADES_KEPT)
        self.latest: dict[str, Any] = {}  # account, position, slots, risk_status: the last of each
        self.min_interval = min_interval
        self._clock = clock
        self._sent_at: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], tuple[Any, str]] = {}  # the latest unsent value per key
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def publish(self, kind: str, data: Any) -> None:
        if not self.apply(kind, data) or self.hub is None:
            return
        text = encode(kind, data)
        if kind in CONFLATED and self.min_interval > 0 and isinstance(data, dict):
            self._conflate(kind, data, text)
        else:
            self.hub.broadcast(text)

    def _conflate(self, kind: str, data: dict[str, Any], text: str) -> None:
        key = (kind, f"{data.get('symbol', '')}/{data.get('asset', '')}")  # an account is per asset too
        now = self._clock()
        held = self._held.get(key)
        if held is not None and kind == "kline" and held[0].get("time") != data.get("time"):
            self._send(key, held[1], now)  # the previous minute's last value goes before the new one
            held = None
        if held is None and now - self._sent_at.get(key, float("-inf")) >= self.min_interval:
            self._send(key, text, now)
            return
        self._held[key] = (data, text)
        if key not in self._timers:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to wait on (a synchronous caller): send now, never lose it
                self._send(key, text, now)
                return
            due = self._sent_at.get(key, now) + self.min_interval - now
            self._timers[key] = loop.call_later(max(0.0, due), self._flush, key)

    def _flush(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)
        held = self._held.get(key)
        if held is not None:
            self._send(key, held[1], self._clock())

    def _send(self, key: tuple[str, str], text: str, now: float) -> None:
        self._held.pop(key, None)
        self._sent_at[key] = now
        if self.hub is not None:
            self.hub.broadcast(text)

    def close(self) -> None:
        """Send what is held now and stop the timers (shutdown)."""
        for key in list(self._held):
            self._flush(key)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def apply(self, kind: str, data: Any) -> bool:
        """Apply one message; False for a fill already known (an upstream snapshot replaying it)."""
        if kind == "history":
            self.candles = sorted(data, key=lambda c: c["time"])[-HISTORY_LIMIT:]
        elif kind == "kline":
            self._kline(data)
        elif kind == "orders":
            for o in data if isinstance(data, list) else [data]:
                if o["status"] in _OPEN:
                    self.orders[o["id"]] = o
                else:
                    self.orders.pop(o["id"], None)
            if isinstance(data, list):  # an array is a full snapshot: drop what it does not list
                keep = {o["id"] for o in data if o["status"] in _OPEN}
                self.orders = {k: v for k, v in self.orders.items() if k in keep}
        elif kind == "trade_event":
            if data in self.trades:
                return False
            self.trades.append(data)
        else:
            self.latest[kind] = data
        return True

    def _kline(self, c: dict[str, Any]) -> None:
        candles = self.candles
        if candles and candles[-1]["time"] == c["time"]:
            candles[-1] = c
        elif not candles or candles[-1]["time"] < c["time"]:
            candles.append(c)
            if len(candles) > HISTORY_LIMIT:
                del candles[0]
        # an older candle than the last one is late news: the page cannot update the past either

    def snapshot(self) -> list[str]:
        out = [encode("history", self.candles)]
        for kind in ("account", "position"):
            if kind in self.latest:
                out.append(encode(kind, self.latest[kind]))
        out.append(encode("orders", list(self.orders.values())))
        for kind in ("slots", "risk_status"):
            if kind in self.latest:
                out.append(encode(kind, self.latest[kind]))
        out.extend(encode("trade_event", t) for t in self.trades)
        return out
