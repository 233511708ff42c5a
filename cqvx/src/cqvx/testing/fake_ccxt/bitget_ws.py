"""Bitget v2 public streams for :class:`~cqvx.testing.fake_ccxt.bitget.FakeBitget` (``/v2/ws/public``).

From the docs (https://www.bitget.com/api-doc/common/websocket-intro,
https://www.bitget.com/api-doc/contract/websocket/public/Order-Book-Channel,
.../contract/websocket/public/New-Trades-Channel, .../contract/websocket/public/Tickers-Channel):

* ``{"op":"subscribe","args":[{"instType":"USDT-FUTURES","channel":..,"instId":..}]}`` is answered per
  arg ``{"event":"subscribe","arg":{..}}`` (``unsubscribe`` alike; an unknown one is
  ``{"event":"error","code":30001,...}``); the text ``ping`` is answered ``pong``.
* ``books`` (all levels): ``action`` ``snapshot`` first, then ``update``; ``data[0]`` = ``{asks, bids,
  checksum, seq, ts}``, levels ``[price, size]``, absolute sizes (``"0"`` deletes).  ``checksum`` (on
  updates): CRC32, as a signed 32-bit integer, of the top 25 levels after the update, interleaved
  ``bid1px:bid1sz:ask1px:ask1sz:...`` (a side that runs out is skipped), using the wire text.  A
  mismatch means the local book is wrong: unsubscribe and subscribe again for a new snapshot.
* ``trade``: ``data`` = ``[{ts, price, size, side (taker), tradeId}]``, ``snapshot`` then ``update``.
* ``ticker``: ``data`` = ``[{instId, lastPr, bidPr, askPr, bidSz, askSz, open24h, high24h, low24h,
  change24h, fundingRate, nextFundingTime, markPrice, indexPrice, holdingAmount, baseVolume,
  quoteVolume, openUtc, symbolType, symbol, deliveryPrice, ts}]``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cqc.markets.v1 import trade_pb2
from cqvx.testing.fake_ccxt._public_ws import BookState, PublicFeed, Sub, interleaved_checksum, now_ms
from cqvx.timeutil import to_ns

__all__ = ["BitgetPublic"]

_KINDS = {"books": ("book", 1000), "trade": ("trades", 0), "ticker": ("ticker", 0)}
_PRODUCT = "USDT-FUTURES"


class BitgetPublic(PublicFeed):
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/ws/public", self._ws)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            if text == "ping":
                self.send(ws, "pong")
                return
            try:
                msg = json.loads(text)
                op, args = msg.get("op"), msg.get("args") or []
            except (ValueError, AttributeError):
                self.send(ws, {"event": "error", "code": 30001, "msg": "Invalid request"})
                return
            if op not in ("subscribe", "unsubscribe"):
                self.send(ws, {"event": "error", "code": 30001, "msg": "Invalid request"})
                return
            for arg in args:
                ok = isinstance(arg, dict) and str(arg.get("instType", "")).upper() == _PRODUCT
                channel, inst = (
                    (arg.get("channel"), arg.get("instId")) if isinstance(arg, dict) else (None, None)
                )
                if not ok or channel not in _KINDS or inst not in self.fake.perps:
                    self.send(
                        ws, {"event": "error", "arg": arg, "code": 30001, "msg": "channel does not exist"}
                    )
                    continue
                kind, depth = _KINDS[channel]
                echo = {"instType": _PRODUCT, "channel": channel, "instId": inst}
                self.send(ws, {"event": op, "arg": echo})
                if op == "subscribe":
                    await self.subscribe(Sub(ws, kind, inst, depth, arg=echo))
                else:
                    self.unsubscribe(ws, kind, inst)

        return await self.fake.serve_ws(request, on_text)

    # -- shapes ----------------------------------------------------------------------------------

    def _book(self, sub: Sub, action: str, state: BookState, bids: Any, asks: Any) -> dict[str, Any]:
        top_bids, top_asks = state.top(25)
        checksum = 0
        if action == "update":
            checksum = interleaved_checksum(self.wire_levels(top_bids), self.wire_levels(top_asks))
        now = now_ms()
        row = {
            "asks": self.wire_levels(asks),
            "bids": self.wire_levels(bids),
            "checksum": checksum,
            "seq": state.seq,
            "ts": str(now),
        }
        return {"action": action, "arg": sub.arg, "data": [row], "ts": now}

    def book_snapshot(self, sub: Sub, state: BookState, *, restart: bool = False) -> Any:
        bids, asks = state.top(sub.depth)
        return self._book(sub, "snapshot", state, bids, asks)

    def book_update(
        self, sub: Sub, state: BookState, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
    ) -> Any:
        return self._book(sub, "update", state, bids, asks)

    def trade_push(self, sub: Sub, trade: trade_pb2.Trade) -> Any:
        at = to_ns(trade.timestamp) // 1_000_000 or now_ms()
        row = {
            "ts": str(at),
            "price": trade.price,
            "size": self.fake.to_wire(trade.quantity),
            "side": "buy" if trade.side == trade_pb2.TRADE_SIDE_BUY else "sell",
            "tradeId": "".join(ch for ch in trade.trade_id if ch.isdigit()) or "0",
        }
        return {"action": "update", "arg": sub.arg, "data": [row], "ts": now_ms()}

    async def ticker_push(self, sub: Sub, *, first: bool) -> Any:
        q = await self.quote(sub.symbol)
        now = now_ms()
        row = {
            "instId": sub.symbol,
            "lastPr": q["last"],
            "bidPr": q["bid"],
            "askPr": q["ask"],
            "bidSz": q["bid_size"],
            "askSz": q["ask_size"],
            "open24h": q["last"],
            "high24h": q["last"],
            "low24h": q["last"],
            "change24h": "0",
            "fundingRate": q["funding_rate"],
            "nextFundingTime": q["next_funding_ms"],
            "markPrice": q["mark"],
            "indexPrice": q["index"],
            "holdingAmount": "0",
            "baseVolume": "0",
            "quoteVolume": "0",
            "openUtc": q["last"],
            "symbolType": 1,
            "symbol": sub.symbol,
            "deliveryPrice": "0",
            "ts": str(now),
        }
        return {"action": "snapshot", "arg": sub.arg, "data": [row], "ts": now}
