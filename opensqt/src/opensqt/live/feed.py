"""The live page's state: what a client that connects now must be sent, kept by applying every message.

:meth:`LiveFeed.publish` applies one protocol message to the state and broadcasts it (encoded once);
:meth:`LiveFeed.snapshot` is what the hub sends a new client first: ``history`` (the last 100 candles),
``account``, ``position``, ``orders`` (the open orders, an array), ``slots``, ``risk_status`` and the
last fills (``trade_event``, so the markers come back after a reconnect; they carry their own time, so
the page does not ring for them).

The same state serves the engine's embedded page (the app's bridge publishes into it) and ``opensqt
live`` (the relay publishes what it receives from the engine), so both send byte-identical snapshots.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from opensqt.live.hub import Hub
from opensqt.live.protocol import HISTORY_LIMIT, envelope

__all__ = ["LiveFeed"]

_OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
_TRADES_KEPT = 50  # the page keeps the last 50 markers


def encode(kind: str, data: Any) -> str:
    return json.dumps(envelope(kind, data), separators=(",", ":"))


class LiveFeed:
    def __init__(self, hub: Hub | None = None) -> None:
        self.hub = hub
        self.candles: list[dict[str, Any]] = []
        self.orders: dict[int, dict[str, Any]] = {}
        self.trades: deque[dict[str, Any]] = deque(maxlen=_TRADES_KEPT)
        self.latest: dict[str, Any] = {}  # account, position, slots, risk_status: the last of each

    def publish(self, kind: str, data: Any) -> None:
        if self.apply(kind, data) and self.hub is not None:
            self.hub.broadcast(encode(kind, data))

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
