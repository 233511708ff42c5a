"""A client written only from reference §5 (``/work/shared/reference/opensqt.md``), not from the server code.

It imports nothing from ``opensqt.live``: the shape checks below restate the reference's text (envelope
``{type, data}``; numbers from the exchange as strings, ids and times as integers, time in Unix seconds;
``orders`` object or array with uppercase side/status; ``trade_event`` lowercase side with amount and time;
``history`` 100 one-minute candles per client on connect with account, positions and open orders).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from cqvx.testing import builders

from .rig import Rig

NOW = time.time()


def _is_decimal_string(v: Any) -> bool:
    if not isinstance(v, str) or not v or "e" in v.lower() or v.strip() != v:
        return False
    try:
        Decimal(v)
    except ArithmeticError:
        return False
    return True


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_unix_seconds(v: Any) -> bool:
    # seconds, not milliseconds: within a day of now, and far below 1e12
    return _is_int(v) and abs(v - NOW) < 86_400 * 2


def check_candle(c: dict[str, Any]) -> None:
    assert _is_unix_seconds(c["time"]) and c["time"] % 60 == 0, c
    for k in ("open", "high", "low", "close", "volume"):
        assert _is_decimal_string(c[k]), (k, c)


def check_order(o: dict[str, Any]) -> None:
    assert _is_int(o["id"]) and o["id"] > 0, o
    assert _is_decimal_string(o["price"])
    assert o["side"] in ("BUY", "SELL")
    assert o["status"] in ("NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "REJECTED")
    assert o["type"] == "LIMIT" and isinstance(o["symbol"], str)


def check_history(d: list[dict[str, Any]]) -> None:
    assert isinstance(d, list) and len(d) <= 100
    for c in d:
        check_candle(c)


def check_account(d: dict[str, Any]) -> None:
    assert isinstance(d["asset"], str)
    assert all(_is_decimal_string(d[k]) for k in ("free", "balance")), d
    assert "marginBalance" not in d or _is_decimal_string(d["marginBalance"])


def check_orders(d: Any) -> None:
    for o in d if isinstance(d, list) else [d]:
        check_order(o)


def check_trade(d: dict[str, Any]) -> None:
    assert d["side"] in ("buy", "sell"), d
    assert _is_decimal_string(d["price"]) and _is_decimal_string(d["amount"]), d
    assert isinstance(d["symbol"], str) and _is_unix_seconds(d["time"]), d


def check_position(d: dict[str, Any]) -> None:
    assert isinstance(d["symbol"], str)
    assert all(_is_decimal_string(d[k]) for k in ("amount", "entryPrice", "unrealizedPnL")), d


def check_risk(d: dict[str, Any]) -> None:
    assert all(isinstance(d[k], str) for k in ("symbol", "type", "severity", "message")), d
    assert _is_unix_seconds(d["timestamp"]), d


def check_slots(d: Any) -> None:
    assert isinstance(d, dict | list)


CHECKS: dict[str, Callable[[Any], None]] = {
    "history": check_history,
    "kline": check_candle,
    "account": check_account,
    "orders": check_orders,
    "trade_event": check_trade,
    "position": check_position,
    "risk_status": check_risk,
    "slots": check_slots,
}


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def next(self, kind: str, timeout: float = 5.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            msg = await self.ws.receive(timeout=max(0.01, deadline - asyncio.get_running_loop().time()))
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            env = json.loads(msg.data)
            assert set(env) == {"type", "data"}, env
            t = env["type"]
            if t in CHECKS:
                CHECKS[t](env["data"])
            self.seen.append(env)
            if t == kind:
                return env["data"]


async def test_a_client_written_from_the_reference_understands_every_message(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig, aiohttp.ClientSession() as s:
        await rig.tick("100")  # places the buy window
        c = Client(await s.ws_connect(rig.url + "/ws"))
        # on connect: history first (100 one-minute candles), then the snapshot with open orders as an array
        first = json.loads((await c.ws.receive(timeout=5)).data)
        assert first["type"] == "history" and len(first["data"]) == 100
        check_history(first["data"])
        snapshot = await c.next("orders")
        assert isinstance(snapshot, list) and len(snapshot) == len(rig.open_orders()) > 0
        assert {o["side"] for o in snapshot} == {"BUY"}
        # a fill: the order leaves as FILLED, a lowercase trade_event, the engine's realized PnL moves
        buy = await rig.fill_highest_buy()
        filled = await c.next("orders")
        assert filled["status"] == "FILLED" and Decimal(filled["price"]) == Decimal(buy.price)
        trade = await c.next("trade_event")
        assert trade["side"] == "buy" and Decimal(trade["amount"]) == Decimal(buy.quantity)
        pos = await c.next("position")
        assert Decimal(pos["amount"]) == Decimal(buy.quantity)
        # the sell one interval higher appears as a NEW order (object, not array)
        await rig.tick("99.2")
        sell = await c.next("orders")
        while sell["side"] != "SELL":
            sell = await c.next("orders")
        assert sell["status"] == "NEW" and Decimal(sell["price"]) == Decimal(buy.price) + 1
        sell_order = next(o for o in rig.open_orders() if o.client_order_id and o.side == 2)
        await rig.fill(sell_order)
        pos = await c.next("position")
        while Decimal(pos["realizedPnL"]) == 0:
            pos = await c.next("position")
        assert Decimal(pos["realizedPnL"]) == rig.engine.stats.realized_pnl > 0
        # a kline from the venue's candle stream, and the account from its balances
        minute = int(NOW) // 60 * 60
        opened = datetime.fromtimestamp(minute, UTC)
        await rig.mock.push_candle(builders.candle(symbol="BTC-USD", open_time=opened, open="99"))
        kline = await c.next("kline")
        assert kline["time"] == minute
        account = [e["data"] for e in c.seen if e["type"] == "account"]  # in the snapshot on connect
        assert account and account[0]["asset"] == "USD" and Decimal(account[0]["free"]) == 999000
        # risk: the margin lock shows as a banner, then clears
        rig.engine.margin_lock.trigger()
        rig.engine.events.emit("risk")
        risk = await c.next("risk_status")
        assert risk["type"] != "ok" and risk["severity"] in ("warning", "critical")
        kinds = {e["type"] for e in c.seen} | {"history"}
        assert {
            "history",
            "kline",
            "account",
            "orders",
            "trade_event",
            "position",
            "risk_status",
            "slots",
        } <= kinds
        await c.ws.close()


async def test_a_reconnecting_client_gets_the_same_state_back(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig, aiohttp.ClientSession() as s:
        await rig.tick("100")
        await rig.fill_highest_buy()
        first = Client(await s.ws_connect(rig.url + "/ws"))
        orders_a = await first.next("orders")
        await first.next("trade_event")
        await first.ws.close()
        again = Client(await s.ws_connect(rig.url + "/ws"))
        orders_b = await again.next("orders")
        trade = await again.next("trade_event")
        assert orders_a == orders_b and trade["side"] == "buy"
        await again.ws.close()
