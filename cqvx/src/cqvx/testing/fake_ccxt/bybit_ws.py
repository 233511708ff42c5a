"""Bybit v5 public linear streams for :class:`~cqvx.testing.fake_ccxt.bybit.FakeBybit`
(``/v5/public/linear``).

From the docs (https://bybit-exchange.github.io/docs/v5/ws/connect,
https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook, .../public/trade, .../public/ticker):

* ``{"op":"subscribe","args":[topic, ...],"req_id":...}`` is answered
  ``{"success":..,"ret_msg":"","conn_id":..,"req_id":..,"op":"subscribe"}``; ``unsubscribe`` alike;
  ``{"op":"ping"}`` -> ``op: "pong"``.  No login on the public endpoint.
* ``orderbook.{depth}.{symbol}`` (linear depths 1, 50, 200, 1000): a ``snapshot`` right after the
  subscription, then ``delta`` messages (absolute sizes, ``"0"`` deletes), ``data`` = ``{s, b, a, u,
  seq}``: ``u`` the update id (consecutive), ``seq`` the matching engine's sequence.  "If you receive a
  new snapshot message, you will have to reset your local orderbook": Bybit re-sends a snapshot (``u`` =
  1) after a service restart; that is how this fake answers a withheld update (skip_depth), since a
  Bybit client gets no sequence rule to detect one with.
* ``publicTrade.{symbol}``: ``data`` = ``[{T, s, S (taker side), v, p, L, i, BT}]``.
* ``tickers.{symbol}``: a ``snapshot`` first, then ``delta`` messages carrying the changed fields.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from cqc.markets.v1 import trade_pb2
from cqvx.testing.fake_ccxt._public_ws import BookState, PublicFeed, Sub, now_ms
from cqvx.timeutil import to_ns

__all__ = ["BybitPublic"]

_DEPTHS = frozenset((1, 50, 200, 1000))


class BybitPublic(PublicFeed):
    snapshot_after_skip = True

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v5/public/linear", self._ws)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        conn = uuid.uuid4().hex

        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            try:
                msg = json.loads(text)
                op, req_id = msg.get("op"), msg.get("req_id", "")
            except (ValueError, AttributeError):
                return
            if op == "ping":
                self.send(ws, {"req_id": req_id, "op": "pong", "args": [str(now_ms())], "conn_id": conn})
                return
            if op not in ("subscribe", "unsubscribe"):
                return
            parsed = [self._topic(str(t)) for t in msg.get("args") or []]
            ok = bool(parsed) and all(p is not None for p in parsed)
            answer = {"success": ok, "ret_msg": "" if ok else "Invalid topic", "conn_id": conn}
            self.send(ws, answer | {"req_id": req_id, "op": op})
            if not ok:
                return
            for topic, kind, symbol, depth in (p for p in parsed if p is not None):
                if op == "subscribe":
                    await self.subscribe(Sub(ws, kind, symbol, depth, arg=topic))
                else:
                    self.unsubscribe(ws, kind, symbol)

        return await self.fake.serve_ws(request, on_text)

    def _topic(self, topic: str) -> tuple[str, str, str, int] | None:
        parts = topic.split(".")
        if len(parts) == 3 and parts[0] == "orderbook" and parts[1].isdigit() and int(parts[1]) in _DEPTHS:
            kind, symbol, depth = "book", parts[2], int(parts[1])
        elif len(parts) == 2 and parts[0] == "publicTrade":
            kind, symbol, depth = "trades", parts[1], 0
        elif len(parts) == 2 and parts[0] == "tickers":
            kind, symbol, depth = "ticker", parts[1], 0
        else:
            return None
        return (topic, kind, symbol, depth) if symbol in self.fake.perps else None

    # -- shapes ----------------------------------------------------------------------------------

    def _book(self, sub: Sub, kind: str, bids: Any, asks: Any, *, u: int, seq: int) -> dict[str, Any]:
        now = now_ms()
        data = {"s": sub.symbol, "b": bids, "a": asks, "u": u, "seq": seq}
        return {"topic": sub.arg, "type": kind, "ts": now, "data": data, "cts": now}

    def book_snapshot(self, sub: Sub, state: BookState, *, restart: bool = False) -> Any:
        bids, asks = state.top(sub.depth)
        sub.counter = 1 if restart else sub.counter + 1
        return self._book(
            sub, "snapshot", self.wire_levels(bids), self.wire_levels(asks), u=sub.counter, seq=state.seq
        )

    def book_update(
        self, sub: Sub, state: BookState, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
    ) -> Any:
        sub.counter += 1
        wire_bids, wire_asks = self.wire_levels(bids), self.wire_levels(asks)
        return self._book(sub, "delta", wire_bids, wire_asks, u=sub.counter, seq=state.seq)

    def trade_push(self, sub: Sub, trade: trade_pb2.Trade) -> Any:
        at = to_ns(trade.timestamp) // 1_000_000 or now_ms()
        row = {
            "T": at,
            "s": sub.symbol,
            "S": "Buy" if trade.side == trade_pb2.TRADE_SIDE_BUY else "Sell",
            "v": self.fake.to_wire(trade.quantity),
            "p": trade.price,
            "L": "ZeroPlusTick",
            "i": trade.trade_id or uuid.uuid4().hex,
            "BT": False,
        }
        return {"topic": sub.arg, "type": "snapshot", "ts": now_ms(), "data": [row]}

    async def ticker_push(self, sub: Sub, *, first: bool) -> Any:
        q = await self.quote(sub.symbol)
        changing = {
            "symbol": sub.symbol,
            "lastPrice": q["last"],
            "markPrice": q["mark"],
            "indexPrice": q["index"],
            "bid1Price": q["bid"],
            "bid1Size": q["bid_size"],
            "ask1Price": q["ask"],
            "ask1Size": q["ask_size"],
            "fundingRate": q["funding_rate"],
        }
        data = changing
        if first:
            data = changing | {
                "tickDirection": "ZeroPlusTick",
                "price24hPcnt": "0",
                "prevPrice24h": q["last"],
                "highPrice24h": q["last"],
                "lowPrice24h": q["last"],
                "prevPrice1h": q["last"],
                "openInterest": "0",
                "openInterestValue": "0",
                "turnover24h": "0",
                "volume24h": "0",
                "nextFundingTime": q["next_funding_ms"],
            }
        return {
            "topic": sub.arg,
            "type": "snapshot" if first else "delta",
            "data": data,
            "cs": int(time.time() * 1000),
            "ts": now_ms(),
        }
