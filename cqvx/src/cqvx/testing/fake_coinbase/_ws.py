"""The fake's two WebSockets (``/ws`` market data, ``/ws-user``): subscribe checks and deadline,
sequence numbers and gaps, heartbeats, channel payloads and the test controls that push them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from aiohttp import web

from cqvx.testing.fake_coinbase._state import _ZERO, FakeProduct, _AuthError, _Conn, _now_iso, _s
from cqvx.testing.fakeserver import FakeServer


class _WebSockets(FakeServer):
    """WebSocket half of :class:`FakeCoinbase` (mixin; state lives on the fake)."""

    products: dict[str, FakeProduct]
    orders: dict[str, dict[str, Any]]
    trades: dict[str, list[dict[str, Any]]]
    auth_failures: list[str]
    refused_ws: set[Literal["market", "user"]]
    subscribe_deadline: float
    heartbeat_interval: float
    deadline_closes: int
    subscribe_messages: list[dict[str, Any]]
    _conns: list[_Conn]
    _trade_ids: Iterator[int]
    _hb_counter: Iterator[int]

    if TYPE_CHECKING:

        def _verify_jwt(self, token: str, uri: str | None) -> None: ...

    async def drop_kind(self, kind: Literal["market", "user"]) -> int:
        """Close only the market-data or only the user-endpoint connections; returns how many."""
        conns = [c for c in self._conns if c.kind == kind and not c.ws.closed]
        for c in conns:
            self.ws_connections.discard(c.ws)
            await c.ws.close(code=1011, message=b"dropped by fake server")
        return len(conns)

    async def _serve(self, request: web.Request, kind: Literal["market", "user"]) -> web.WebSocketResponse:
        if kind in self.refused_ws:
            raise web.HTTPServiceUnavailable(text="websocket endpoint down (fake)")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_connects += 1
        conn = _Conn(ws, kind)
        self._conns.append(conn)
        self.ws_connections.add(ws)
        deadline = asyncio.create_task(self._deadline(conn))
        try:
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    self.ws_received.append((self.ws_connects, msg.data))
                    await self._on_ws_text(conn, msg.data)
                elif msg.type == web.WSMsgType.ERROR:
                    break
        finally:
            deadline.cancel()
            for t in conn.tasks:
                t.cancel()
            self.ws_connections.discard(ws)
            if conn in self._conns:
                self._conns.remove(conn)
        return ws

    async def _deadline(self, conn: _Conn) -> None:
        try:
            await asyncio.wait_for(conn.subscribed.wait(), self.subscribe_deadline)
        except TimeoutError:
            self.deadline_closes += 1
            await conn.ws.close(code=1000, message=b"no subscribe within deadline")

    async def _send(self, conn: _Conn, channel: str, events: list[Any]) -> None:
        async with conn.lock:
            if conn.ws.closed:
                return
            conn.seq += 1 + conn.skip
            conn.skip = 0
            await conn.ws.send_str(
                msgspec.json.encode(
                    {
                        "channel": channel,
                        "client_id": "",
                        "timestamp": _now_iso(),
                        "sequence_num": conn.seq,
                        "events": events,
                    }
                ).decode()
            )

    def inject_gap(self, count: int = 1) -> None:
        """The next message on every live connection skips ``count`` sequence numbers."""
        for conn in self._conns:
            conn.skip += count

    async def _on_ws_text(self, conn: _Conn, text: str) -> None:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            await conn.ws.send_str('{"type":"error","message":"failure to parse message"}')
            return
        if not isinstance(msg, dict):
            return
        self.subscribe_messages.append(msg)
        mtype, channel = msg.get("type"), msg.get("channel")
        products = [str(p) for p in msg.get("product_ids") or []]
        if mtype not in ("subscribe", "unsubscribe") or not isinstance(channel, str):
            await conn.ws.send_str('{"type":"error","message":"unknown message type"}')
            return
        token = msg.get("jwt")
        try:
            if token is not None:
                self._verify_jwt(str(token), None)
            elif channel in ("user", "futures_balance_summary"):
                raise _AuthError("authentication required")
        except _AuthError as exc:
            self.auth_failures.append(f"ws: {exc}")
            await conn.ws.send_str(msgspec.json.encode({"type": "error", "message": str(exc)}).decode())
            return
        if channel == "user" and conn.kind != "user":
            pass  # the market endpoint also serves user (auth checked above)
        if mtype == "unsubscribe":
            if products:
                conn.subs.get(channel, set()).difference_update(products)
            else:
                conn.subs.pop(channel, None)
            await self._send(
                conn,
                "subscriptions",
                [{"subscriptions": {k: sorted(v) for k, v in conn.subs.items()}}],
            )
            return
        targets = set(products)
        if channel in ("level2", "market_trades", "ticker", "candles") and not targets:
            await conn.ws.send_str('{"type":"error","message":"product_ids required"}')
            return
        unknown = [p for p in targets if p not in self.products]
        if unknown:
            await conn.ws.send_str(
                msgspec.json.encode({"type": "error", "message": f"unknown product {unknown[0]}"}).decode()
            )
            return
        conn.subs.setdefault(channel, set()).update(targets or {channel})
        conn.subscribed.set()
        await self._send(
            conn,
            "subscriptions",
            [{"subscriptions": {k: sorted(v) for k, v in conn.subs.items()}}],
        )
        if channel == "heartbeats" and not any(t.get_name() == "hb" for t in conn.tasks):
            conn.tasks.append(asyncio.create_task(self._heartbeats(conn), name="hb"))
        elif channel == "level2":
            for pid in sorted(targets):
                await self._send(
                    conn,
                    "l2_data",
                    [self._l2_event("snapshot", pid, self._l2_levels(self.products[pid]))],
                )
        elif channel == "market_trades":
            for pid in sorted(targets):
                await self._send(
                    conn,
                    "market_trades",
                    [
                        {
                            "type": "snapshot",
                            "trades": list(reversed(self.trades.get(pid, [])))[:50],
                        }
                    ],
                )
        elif channel == "ticker":
            await self._send(
                conn,
                "ticker",
                [
                    {
                        "type": "snapshot",
                        "tickers": [self._ticker_obj(self.products[p]) for p in sorted(targets)],
                    }
                ],
            )
        elif channel == "candles":
            await self._send(
                conn,
                "candles",
                [
                    {
                        "type": "snapshot",
                        "candles": [self._candle_obj(p) for p in sorted(targets)],
                    }
                ],
            )
        elif channel == "user":
            open_orders = [self._ws_order(o) for o in self.orders.values() if o["status"] == "OPEN"]
            # Open orders come in "snapshot" events batched by 50 (user channel reference); nothing
            # marks the last batch, so 50 or 100 open orders end on a FULL batch, and "update" events
            # follow.  At least one snapshot event is sent, empty when nothing is open.
            for i in range(0, max(len(open_orders), 1), 50):
                await self._send(
                    conn,
                    "user",
                    [
                        {
                            "type": "snapshot",
                            "orders": open_orders[i : i + 50],
                            "positions": {},
                        }
                    ],
                )

    async def _heartbeats(self, conn: _Conn) -> None:
        while not conn.ws.closed:
            await self._send(
                conn,
                "heartbeats",
                [
                    {
                        "current_time": _now_iso(),
                        "heartbeat_counter": next(self._hb_counter),
                    }
                ],
            )
            await asyncio.sleep(self.heartbeat_interval)

    @staticmethod
    def _l2_levels(product: FakeProduct) -> list[tuple[str, Decimal, Decimal]]:
        return [("bid", p, s) for p, s in sorted(product.bids.items(), reverse=True)] + [
            ("offer", p, s) for p, s in sorted(product.asks.items())
        ]

    @staticmethod
    def _l2_event(kind: str, pid: str, levels: list[tuple[str, Decimal, Decimal]]) -> dict[str, Any]:
        now = _now_iso()
        return {
            "type": kind,
            "product_id": pid,
            "updates": [
                {
                    "side": side,
                    "event_time": now,
                    "price_level": _s(p),
                    "new_quantity": _s(s),
                }
                for side, p, s in levels
            ],
        }

    def _ticker_obj(self, product: FakeProduct) -> dict[str, Any]:
        bid = max(product.bids) if product.bids else _ZERO
        ask = min(product.asks) if product.asks else _ZERO
        last = self.trades.get(product.product_id, [{}])[-1].get("price", _s((bid + ask) / 2))
        return {
            "type": "ticker",
            "product_id": product.product_id,
            "price": last,
            "volume_24_h": "100",
            "low_24_h": "1",
            "high_24_h": "1000000",
            "low_52_w": "1",
            "high_52_w": "1000000",
            "price_percent_chg_24_h": "0",
            "best_bid": _s(bid),
            "best_bid_quantity": _s(product.bids.get(bid, _ZERO)),
            "best_ask": _s(ask),
            "best_ask_quantity": _s(product.asks.get(ask, _ZERO)),
        }

    @staticmethod
    def _candle_obj(pid: str, close: str = "100.5") -> dict[str, Any]:
        start = int(time.time()) // 300 * 300
        return {
            "start": str(start),
            "high": "101",
            "low": "99",
            "open": "100",
            "close": close,
            "volume": "1.5",
            "product_id": pid,
        }

    def _subscribers(self, channel: str, key: str) -> list[_Conn]:
        return [c for c in self._conns if key in c.subs.get(channel, ()) and not c.ws.closed]

    async def wait_subscribed(self, channel: str, product_id: str = "", timeout: float = 3.0) -> None:
        """Until a live connection is subscribed to ``channel`` (for ``product_id``): tests synchronise on
        this instead of sleeping."""
        key = product_id or channel
        async with asyncio.timeout(timeout):
            while not self._subscribers(channel, key):  # noqa: ASYNC110 - polling our own state
                await asyncio.sleep(0.005)

    async def push_l2(
        self,
        product_id: str,
        bids: Sequence[tuple[str, str]] = (),
        asks: Sequence[tuple[str, str]] = (),
        *,
        publish: bool = True,
    ) -> None:
        """Change the book (absolute sizes, "0" removes) and send an l2_data update (unless not
        ``publish``: a change the clients never hear about, as after a lost message)."""
        product = self.products[product_id]
        levels: list[tuple[str, Decimal, Decimal]] = []
        for side_name, book, pairs in (
            ("bid", product.bids, bids),
            ("offer", product.asks, asks),
        ):
            for p_text, s_text in pairs:
                p, s = Decimal(p_text), Decimal(s_text)
                if s:
                    book[p] = s
                else:
                    book.pop(p, None)
                levels.append((side_name, p, s))
        if not publish:
            return
        for conn in self._subscribers("level2", product_id):
            await self._send(conn, "l2_data", [self._l2_event("update", product_id, levels)])

    async def push_trade(self, product_id: str, price: str, size: str, side: str = "BUY") -> dict[str, Any]:
        """A public trade (``side`` is the maker side, as on the venue)."""
        trade = {
            "trade_id": str(next(self._trade_ids)),
            "product_id": product_id,
            "price": price,
            "size": size,
            "side": side,
            "time": _now_iso(),
            "bid": "",
            "ask": "",
            "exchange": "coinbase",
        }
        self.trades.setdefault(product_id, []).append(trade)
        wire = {k: trade[k] for k in ("trade_id", "product_id", "price", "size", "side", "time")}
        for conn in self._subscribers("market_trades", product_id):
            await self._send(conn, "market_trades", [{"type": "update", "trades": [wire]}])
        return trade

    async def push_ticker(self, product_id: str) -> None:
        for conn in self._subscribers("ticker", product_id):
            await self._send(
                conn,
                "ticker",
                [
                    {
                        "type": "update",
                        "tickers": [self._ticker_obj(self.products[product_id])],
                    }
                ],
            )

    async def push_candle(self, product_id: str, close: str = "100.5") -> None:
        for conn in self._subscribers("candles", product_id):
            await self._send(
                conn,
                "candles",
                [{"type": "update", "candles": [self._candle_obj(product_id, close)]}],
            )

    @staticmethod
    def _ws_order(o: Mapping[str, Any]) -> dict[str, Any]:
        ((_kind, leg),) = o["order_configuration"].items()
        base = o["_base"]
        filled = Decimal(o["filled_size"])
        leaves = _ZERO if o["status"] != "OPEN" else base - filled
        return {
            "order_id": o["order_id"],
            "client_order_id": o["client_order_id"],
            "cumulative_quantity": o["filled_size"],
            "leaves_quantity": _s(leaves),
            "avg_price": o["average_filled_price"],
            "total_fees": o["total_fees"],
            "status": o["status"],
            "product_id": o["product_id"],
            "creation_time": o["created_time"],
            "order_side": o["side"],
            "order_type": {
                "MARKET": "Market",
                "LIMIT": "Limit",
                "STOP_LIMIT": "Stop Limit",
            }[o["order_type"]],
            "cancel_reason": "",
            "reject_reason": "",
            "total_value_after_fees": "0",
            "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
            "product_type": "SPOT",
            "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
            "time_in_force": o["time_in_force"],
            "trigger_status": "INVALID_ORDER_TYPE",
            "limit_price": str(leg.get("limit_price", "")),
            "stop_price": str(leg.get("stop_price", "")),
            "post_only": "true" if leg.get("post_only") else "false",
            "number_of_fills": o["number_of_fills"],
            "filled_value": o["filled_value"],
            "end_time": "0001-01-01T00:00:00Z",
            "start_time": "0001-01-01T00:00:00Z",
        }

    def _notify_user(self, order: Mapping[str, Any]) -> None:
        if any(self._subscribers("user", "user")):
            # Called from a request handler: schedule so the HTTP answer is not held up.
            asyncio.get_running_loop().create_task(self._send_user(order))

    async def _send_user(self, order: Mapping[str, Any]) -> None:
        for conn in self._subscribers("user", "user"):
            await self._send(conn, "user", [{"type": "update", "orders": [self._ws_order(order)]}])
