"""The fake Prime WebSocket feed (``/ws``): signed subscribes checked with the fake's own HMAC code,
the 5-second subscribe deadline, at most 10 products per connection, ``l2_data`` snapshots and
updates with a per-connection ``sequence_num``, ``heartbeats`` acks, and ``{"type": "error"}`` refusals.

Test controls on :class:`FakePrimeFeed`: ``books`` (product -> side -> price -> size), ``update``
(change a level and publish it, or apply it silently so the next message shows a sequence gap),
``expected_book``, ``subscribe_deadline`` and the base server's ``drop_ws``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from cqc.markets.v1 import orderbook_pb2
from cqvx.testing.fake_prime.book import FakeOrder

if TYPE_CHECKING:
    from cqvx.testing.fake_prime.server import FakePrime

__all__ = ["FakePrimeFeed"]

_ORDERS = "\x00orders"  # the orders subscription, beside product ids in a connection's set


class FakePrimeFeed:
    def __init__(self, server: FakePrime) -> None:
        self._server = server
        self.subscribe_deadline = 5.0
        self.max_products = 10
        self.books: dict[str, dict[str, dict[Decimal, Decimal]]] = {
            "BTC-USD": {
                "bid": {Decimal(50000 - i * 10): Decimal("1.5") + i for i in range(8)},
                "offer": {Decimal(50010 + i * 10): Decimal("2.5") + i for i in range(8)},
            }
        }
        self._seq: dict[web.WebSocketResponse, int] = {}
        self._subs: dict[web.WebSocketResponse, set[str]] = {}
        self.refusals = 0

    # --- connection -------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """One connection, tracked like the base server's ``serve_ws`` (``ws_connects``,
        ``ws_connections``, ``ws_received``), closed if no valid subscribe arrives in time."""
        server = self._server
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        server.ws_connects += 1
        number = server.ws_connects
        server.ws_connections.add(ws)
        self._seq[ws] = 0
        self._subs[ws] = set()
        subscribed = asyncio.Event()

        async def deadline() -> None:
            await asyncio.sleep(self.subscribe_deadline)
            if not subscribed.is_set():
                await ws.close(code=1008, message=b"no subscribe within the deadline")

        timer = asyncio.ensure_future(deadline())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    server.ws_received.append((number, msg.data))
                    if await self._on_text(ws, msg.data):
                        subscribed.set()
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            timer.cancel()
            server.ws_connections.discard(ws)
            self._seq.pop(ws, None)
            self._subs.pop(ws, None)
        return ws

    def _signed(self, msg: dict[str, Any]) -> bool:
        s = self._server
        products = msg.get("product_ids") or []
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            return False
        ts = str(msg.get("timestamp", ""))
        prehash = (
            str(msg.get("channel", ""))
            + str(msg.get("access_key", ""))
            + str(msg.get("api_key_id", ""))
            + ts
            + str(msg.get("portfolio_id", ""))
            + "".join(products)
        )
        want = base64.b64encode(hmac.new(s._key, prehash.encode(), hashlib.sha256).digest()).decode()
        fresh = ts.isdigit() and abs(int(ts) - s.clock.now) <= s.max_skew
        return (
            msg.get("access_key") == s.access_key
            and msg.get("passphrase") == s.passphrase
            and hmac.compare_digest(str(msg.get("signature", "")), want)
            and fresh
        )

    async def _refuse(self, ws: web.WebSocketResponse, message: str) -> bool:
        self.refusals += 1
        await ws.send_str(json.dumps({"type": "error", "message": message}))
        await ws.close()
        return False

    async def _on_text(self, ws: web.WebSocketResponse, text: str) -> bool:
        try:
            msg = json.loads(text)
        except ValueError:
            return await self._refuse(ws, "malformed message")
        if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
            return await self._refuse(ws, "unknown message type")
        if not self._signed(msg):
            return await self._refuse(ws, "authentication failure")
        channel = msg.get("channel")
        products = list(msg.get("product_ids") or [])
        if msg["type"] == "unsubscribe":
            self._subs[ws].difference_update(products)
            return True
        if channel == "l2_data":
            if len((self._subs[ws] - {_ORDERS}) | set(products)) > self.max_products:
                return await self._refuse(ws, "too many products for one connection")
            unknown = [p for p in products if p not in self.books]
            if unknown:
                return await self._refuse(ws, f"unknown product {unknown[0]}")
            self._subs[ws].update(products)
            await self._send(ws, "subscriptions", [{"subscriptions": {"l2_data": products}}])
            for p in products:
                await self._send(ws, "l2_data", [self._event("snapshot", p, self._levels(p))])
            return True
        if channel == "orders":
            if msg.get("portfolio_id") != self._server.portfolio_id:
                return await self._refuse(ws, "orders needs this key's portfolio id")
            self._subs[ws].add(_ORDERS)
            await self._send(
                ws, "subscriptions", [{"subscriptions": {"orders": [self._server.portfolio_id]}}]
            )
            open_orders = [
                self._order(o)
                for o in self._server.state.orders.values()
                if o.status == "OPEN" and o.type != "RFQ"
            ]
            await self._send(ws, "orders", [{"type": "snapshot", "orders": open_orders}])
            return True
        if channel == "heartbeats":
            await self._send(ws, "subscriptions", [{"subscriptions": {"heartbeats": ["heartbeats"]}}])
            return True
        return await self._refuse(ws, f"unsupported channel {channel}")

    # --- messages ---------------------------------------------------------------------------------

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def _send(self, ws: web.WebSocketResponse, channel: str, events: list[dict[str, Any]]) -> None:
        self._seq[ws] = self._seq.get(ws, 0) + 1
        body = {"channel": channel, "timestamp": self._now(), "sequence_num": self._seq[ws], "events": events}
        if not ws.closed:
            with contextlib.suppress(ConnectionError):
                await ws.send_str(json.dumps(body))

    def _event(self, kind: str, product: str, updates: list[dict[str, str]]) -> dict[str, Any]:
        return {"type": kind, "product_id": product, "updates": updates}

    def _levels(self, product: str) -> list[dict[str, str]]:
        now = self._now()
        book = self.books[product]
        return [
            {"side": side, "event_time": now, "px": str(px), "qty": str(qty)}
            for side in ("bid", "offer")
            for px, qty in sorted(book[side].items(), reverse=side == "bid")
        ]

    async def update(
        self, product: str, side: str, px: Decimal, qty: Decimal, *, publish: bool = True
    ) -> None:
        """Set one level (qty 0 removes it).  ``publish=False`` applies it and burns a sequence number
        on every subscribed connection, so the next published message reveals a gap."""
        levels = self.books[product][side]
        if qty == 0:
            levels.pop(px, None)
        else:
            levels[px] = qty
        for ws, products in list(self._subs.items()):
            if product not in products:
                continue
            if publish:
                update = {"side": side, "event_time": self._now(), "px": str(px), "qty": str(qty)}
                await self._send(ws, "l2_data", [self._event("update", product, [update])])
            else:
                self._seq[ws] = self._seq.get(ws, 0) + 1

    @staticmethod
    def _order(o: FakeOrder) -> dict[str, Any]:
        """Cumulative state as the orders channel carries it (empty fields omitted)."""
        out: dict[str, Any] = {
            "order_id": o.id,
            "client_order_id": o.client_order_id,
            "cum_qty": str(o.filled_quantity),
            "leaves_qty": str(o.base_quantity - o.filled_quantity if o.status == "OPEN" else Decimal(0)),
            "status": o.status,
            "product_id": o.product_id,
            "order_type": o.type.lower(),
            "side": o.side.lower(),
            "fees": str(o.commission + o.exchange_fee),
        }
        if o.filled_quantity:
            out["avg_px"] = str(o.filled_value / o.filled_quantity)
        if o.limit_price is not None:
            out["limit_px"] = str(o.limit_price)
        return out

    async def publish_order(self, order: FakeOrder, *, publish: bool = True) -> None:
        """An ``update`` with the order's cumulative state to every orders subscriber (RFQ orders
        never go out, venues.md §11); ``publish=False`` burns a sequence number instead (lost)."""
        if order.type == "RFQ":
            return
        for ws, subs in list(self._subs.items()):
            if _ORDERS not in subs:
                continue
            if publish:
                await self._send(ws, "orders", [{"type": "update", "orders": [self._order(order)]}])
            else:
                self._seq[ws] = self._seq.get(ws, 0) + 1

    async def heartbeat(self) -> None:
        for ws in list(self._subs):
            await self._send(ws, "heartbeats", [{"current_time": self._now(), "heartbeat_counter": 1}])

    def expected_book(self, product: str, depth: int) -> orderbook_pb2.OrderBook:
        book = self.books[product]
        bids = sorted(book["bid"].items(), reverse=True)[:depth]
        asks = sorted(book["offer"].items())[:depth]
        return orderbook_pb2.OrderBook(
            venue="prime",
            symbol=product,
            bids=[orderbook_pb2.OrderBookLevel(price=str(p), quantity=str(q)) for p, q in bids],
            asks=[orderbook_pb2.OrderBookLevel(price=str(p), quantity=str(q)) for p, q in asks],
        )
