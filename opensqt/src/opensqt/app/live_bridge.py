"""Engine -> live page: turn the engine's change notices into protocol messages on a :class:`LiveFeed`.

The engine only says "something changed" (:class:`opensqt.engine.events.EngineEvents`); this bridge
coalesces the notices into one diff scheduled right after the engine's current step (never inside it),
keeps what it last published and sends the difference:

* open orders (slots LOCKED / CANCEL_REQUESTED: acknowledged by the venue) -> ``orders`` NEW,
  ``PARTIALLY_FILLED`` when the filled quantity grows, and, when an order leaves the book, ``FILLED`` if
  a fill of its level and side arrived since, else ``CANCELED``;
* each new :class:`FillEvent` -> ``trade_event`` (its own time);
* position, entry price, realized PnL (the engine's ledger, not a counter) -> ``position``;
* slot states -> ``slots``; what pauses placement -> ``risk_status``;
* candles: the venue's 1-minute candle stream (the engine's own client; the bridge opens no venue
  connection) when it offers one, seeded with its last 100; otherwise built from the engine's price
  ticks; balances: the venue's balances every few seconds.

It never changes engine state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog

from cqc.markets.v1 import candle_pb2
from cqvx.client import SupportsCandles
from cqvx.num import ZERO, dec
from cqvx.symbols import parse_symbol
from cqvx.timeutil import to_seconds
from opensqt.engine.ledger import side_name
from opensqt.engine.orchestrator import GridEngine
from opensqt.live import protocol as p
from opensqt.live.feed import LiveFeed
from opensqt.model.slots import SlotState
from opensqt.strategy.grid import level_price

__all__ = ["LiveBridge"]

log = structlog.get_logger("opensqt.live")

_LIVE = (SlotState.LOCKED, SlotState.CANCEL_REQUESTED)


class LiveBridge:
    def __init__(
        self,
        engine: GridEngine,
        feed: LiveFeed,
        *,
        wall: Callable[[], float] = time.time,
        balance_interval: float = 5.0,
    ) -> None:
        self.engine = engine
        self.feed = feed
        self.symbol = engine.symbol
        self._wall = wall
        self._balance_interval = balance_interval
        self._orders: dict[str, dict[str, Any]] = {}
        self._fills_seen = len(engine.fills)
        self._last: dict[str, Any] = {}
        self._candles_from_venue = False
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._reasons: set[str] = set()
        self._scheduled = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._unsubscribe = self.engine.events.subscribe(self.on_change)
        client = self.engine.client
        if isinstance(client, SupportsCandles):
            try:
                bars = await client.get_candles(
                    self.symbol, candle_pb2.CANDLE_INTERVAL_1MIN, limit=p.HISTORY_LIMIT
                )
                self.feed.publish("history", [self._candle(b) for b in bars])
                self._candles_from_venue = True
                self._tasks.append(asyncio.create_task(self._stream_candles(client)))
            except Exception as exc:  # no candles on this venue after all: build them from ticks
                log.info("live page: candles from price ticks", reason=str(exc)[:120])
        self._tasks.append(asyncio.create_task(self._poll_balances()))
        self.flush()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def _stream_candles(self, client: SupportsCandles) -> None:
        stream = client.subscribe_candles(self.symbol, candle_pb2.CANDLE_INTERVAL_1MIN)
        try:
            async for bar in stream:
                self.feed.publish("kline", self._candle(bar))
        except Exception as exc:  # the chart keeps moving on the engine's price ticks instead
            log.warning("live page: candle stream ended, candles from price ticks", error=str(exc)[:200])
        finally:
            self._candles_from_venue = False
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _poll_balances(self) -> None:
        quote = parse_symbol(self.symbol).quote
        while True:
            with contextlib.suppress(
                Exception
            ):  # the page shows the last balance; the engine logs venue trouble
                for b in await self.engine.client.get_balances():
                    if b.asset == quote:
                        self._publish_changed(
                            "account",
                            p.account(
                                asset=quote,
                                free=dec(b.available or "0"),
                                balance=dec(b.total or "0"),
                                symbol=self.symbol,
                            ),
                        )
            await asyncio.sleep(self._balance_interval)

    @staticmethod
    def _candle(bar: candle_pb2.Candle) -> p.Candle:
        return p.candle(
            int(to_seconds(bar.open_time)),
            dec(bar.open or "0"),
            dec(bar.high or "0"),
            dec(bar.low or "0"),
            dec(bar.close or "0"),
            dec(bar.volume or "0"),
        )

    # ------------------------------------------------------------------ the diff

    def on_change(self, reason: str) -> None:
        """The engine's listener: coalesce notices into one diff run just after the engine's current step,
        so the page's work (diff, encode, fan-out) never runs inside a trading step."""
        self._reasons.add(reason)
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a synchronous caller): diff now
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        reasons, self._reasons = self._reasons, set()
        e = self.engine
        if "price" in reasons and not self._candles_from_venue and e.last_price is not None:
            self._tick(e.last_price)
        new_fills = e.fills[self._fills_seen :]
        self._fills_seen = len(e.fills)
        filled_keys = {(f.level, side_name(f.side)) for f in new_fills}
        self._diff_orders(filled_keys)
        for f in new_fills:
            self.feed.publish(
                "trade_event",
                p.trade_event(
                    side=side_name(f.side),
                    price=f.price,
                    amount=f.quantity,
                    symbol=self.symbol,
                    time_s=int(f.ts),
                ),
            )
        self._publish_changed("position", self._position())
        self._publish_changed("slots", self._slots())
        self._publish_changed("risk_status", self._risk())

    def _diff_orders(self, filled_keys: set[tuple[int, str]]) -> None:
        now: dict[str, dict[str, Any]] = {}
        for lvl, s in self.engine.slots.items():
            o = s.order
            if o is None or s.state not in _LIVE:
                continue
            now[o.client_order_id] = {
                "level": lvl,
                "oid": p.order_id(o.order_id, o.client_order_id),
                "price": o.price,
                "side": side_name(o.side),
                "quantity": o.quantity,
                "filled": o.filled,
            }
        for cid, row in now.items():
            before = self._orders.get(cid)
            if before is None or before["filled"] != row["filled"]:
                self._send_order(row, "PARTIALLY_FILLED" if row["filled"] > ZERO else "NEW")
        for cid, row in self._orders.items():
            if cid not in now:
                if (row["level"], row["side"]) in filled_keys:
                    self._send_order({**row, "filled": row["quantity"]}, "FILLED")
                else:
                    self._send_order(row, "CANCELED")
        self._orders = now

    def _send_order(self, o: dict[str, Any], status: str) -> None:
        self.feed.publish(
            "orders",
            p.order(
                oid=o["oid"],
                price=o["price"],
                side=o["side"],
                status=status,
                symbol=self.symbol,
                quantity=o["quantity"],
                filled=o["filled"],
            ),
        )

    def _position(self) -> dict[str, Any]:
        e = self.engine
        qty = e.position()
        cost = sum((s.position * s.entry_price for s in e.slots.values()), ZERO)
        entry = (cost / qty).quantize(Decimal("0.00000001")).normalize() if qty else ZERO
        return p.position(
            symbol=self.symbol,
            amount=qty,
            entry_price=entry,
            unrealized=e.unrealized_pnl(),
            realized=e.stats.realized_pnl,
            price=e.last_price,
        )

    def _slots(self) -> dict[str, Any]:
        e = self.engine
        anchor = e.anchor
        rows = []
        if anchor is not None:
            for lvl, s in sorted(e.slots.items()):
                rows.append(
                    {
                        "level": lvl,
                        "price": level_price(anchor, lvl, e.params.interval),
                        "state": s.state.value,
                        "position": s.position,
                        "side": side_name(s.order.side) if s.order is not None else "",
                    }
                )
        return p.slots(self.symbol, rows)

    def _risk(self) -> dict[str, Any]:
        g = self.engine.guards
        tripped = g.breakers.open_kinds() if g.breakers is not None else []
        if tripped:  # circuit breakers (docs/risk.md): the first one's numbers, the others by name
            first = g.breakers.states[tripped[0]].detail if g.breakers is not None else ""
            kind, sev, msg = "circuit_breaker", "critical", f"breaker open: {', '.join(tripped)}: {first}"
        elif g.breaker.open:
            kind, sev, msg = "circuit_breaker", "critical", f"position breaker open: {g.breaker.reason}"
        elif g.volume is not None and g.volume.triggered:
            kind, sev, msg = "volume_anomaly", "warning", "volume anomaly: opening orders paused"
        elif g.margin_lock.locked:
            kind, sev, msg = "margin_lock", "warning", "insufficient funds: placement paused"
        else:
            kind, sev, msg = "ok", "info", "trading"
        return {"kind": kind, "sev": sev, "msg": msg}

    def _publish_changed(self, kind: str, data: dict[str, Any]) -> None:
        if self._last.get(kind) == data:
            return
        self._last[kind] = data
        if kind == "risk_status":
            data = p.risk_status(
                symbol=self.symbol,
                kind=data["kind"],
                severity=data["sev"],
                message=data["msg"],
                time_s=int(self._wall()),
            )
        self.feed.publish(kind, data)

    def _tick(self, price: Decimal) -> None:
        """A 1-minute candle from price ticks (no volume: the ticks carry none)."""
        t = int(self._wall()) // 60 * 60
        last = self.feed.candles[-1] if self.feed.candles else None
        if last is not None and last["time"] == t:
            hi, lo = max(dec(last["high"]), price), min(dec(last["low"]), price)
            c = p.candle(t, dec(last["open"]), hi, lo, price, dec(last["volume"]))
        else:
            c = p.candle(t, price, price, price, price, ZERO)
        self.feed.publish("kline", c)
