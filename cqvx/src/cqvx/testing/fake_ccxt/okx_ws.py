"""OKX v5 public streams for :class:`~cqvx.testing.fake_ccxt.okx.FakeOkx` (``/ws/v5/public``).

From the docs (https://www.okx.com/docs-v5/en/#overview-websocket-subscribe,
https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel, ...-ws-trades-channel,
...-ws-tickers-channel):

* ``{"op":"subscribe","args":[{"channel":..,"instId":..}]}`` is answered per arg
  ``{"event":"subscribe","arg":{..},"connId":..}`` (``unsubscribe`` alike; an unknown channel or
  instrument is ``{"event":"error","code":"60018",...}``); the text ``ping`` is answered ``pong``.
* ``books`` (400 levels): ``action`` ``snapshot`` first, then ``update``; each ``data[0]`` =
  ``{asks, bids, ts, checksum, prevSeqId, seqId}``, levels ``[price, size in contracts, "0", orders]``,
  absolute sizes (``"0"`` deletes).  ``prevSeqId`` is the previous message's ``seqId`` (``-1`` on a
  snapshot): a client whose last ``seqId`` differs has lost a message.  ``checksum``: CRC32, as a
  signed 32-bit integer, of the top 25 levels after applying the message, interleaved
  ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` (a side that runs out is skipped), wire text as sent.
* ``trades``: ``data`` = ``[{instId, tradeId, px, sz (contracts), side (taker), ts, count, source}]``.
* ``tickers``: ``data`` = ``[{instType, instId, last, lastSz, askPx, askSz, bidPx, bidSz, open24h,
  high24h, low24h, volCcy24h, vol24h, sodUtc0, sodUtc8, ts}]``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cqc.markets.v1 import trade_pb2
from cqvx.testing.fake_ccxt._public_ws import BookState, PublicFeed, Sub, interleaved_checksum, now_ms
from cqvx.timeutil import to_ns

__all__ = ["OkxPublic"]

_KINDS = {"books": ("book", 400), "trades": ("trades", 0), "tickers": ("ticker", 0)}


class OkxPublic(PublicFeed):
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/ws/v5/public", self._ws)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            if text == "ping":
                self.send(ws, "pong")
                return
            try:
                msg = json.loads(text)
                op, args = msg.get("op"), msg.get("args") or []
            except (ValueError, AttributeError):
                self.send(ws, {"event": "error", "code": "60012", "msg": f"Invalid request: {text}"})
                return
            if op not in ("subscribe", "unsubscribe"):
                self.send(ws, {"event": "error", "code": "60012", "msg": f"Invalid request: {text}"})
                return
            for arg in args:
                channel = arg.get("channel") if isinstance(arg, dict) else None
                inst = arg.get("instId") if isinstance(arg, dict) else None
                if channel not in _KINDS or inst not in self.fake.perps:
                    self.send(
                        ws,
                        {
                            "event": "error",
                            "code": "60018",
                            "msg": f"Wrong URL or channel:{channel},instId:{inst}",
                        },
                    )
                    continue
                kind, depth = _KINDS[channel]
                echo = {"channel": channel, "instId": inst}
                self.send(ws, {"event": op, "arg": echo, "connId": "fake-public"})
                if op == "subscribe":
                    await self.subscribe(Sub(ws, kind, inst, depth, arg=echo))
                else:
                    self.unsubscribe(ws, kind, inst)

        return await self.fake.serve_ws(request, on_text)

    # -- shapes ----------------------------------------------------------------------------------

    def _book(self, sub: Sub, action: str, state: BookState, bids: Any, asks: Any) -> dict[str, Any]:
        top_bids, top_asks = state.top(25)
        row = {
            "asks": [[p, q, "0", "1"] for p, q in self.wire_levels(asks)],
            "bids": [[p, q, "0", "1"] for p, q in self.wire_levels(bids)],
            "ts": str(now_ms()),
            "checksum": interleaved_checksum(self.wire_levels(top_bids), self.wire_levels(top_asks)),
            "prevSeqId": -1 if action == "snapshot" else sub.prev,
            "seqId": state.seq,
        }
        sub.prev = state.seq
        return {"arg": sub.arg, "action": action, "data": [row]}

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
            "instId": sub.symbol,
            "tradeId": "".join(ch for ch in trade.trade_id if ch.isdigit()) or "0",
            "px": trade.price,
            "sz": self.fake.to_wire(trade.quantity),
            "side": "buy" if trade.side == trade_pb2.TRADE_SIDE_BUY else "sell",
            "ts": str(at),
            "count": "1",
            "source": "0",
        }
        return {"arg": sub.arg, "data": [row]}

    async def ticker_push(self, sub: Sub, *, first: bool) -> Any:
        q = await self.quote(sub.symbol)
        row = {
            "instType": "SWAP",
            "instId": sub.symbol,
            "last": q["last"],
            "lastSz": q["last_size"],
            "askPx": q["ask"],
            "askSz": q["ask_size"],
            "bidPx": q["bid"],
            "bidSz": q["bid_size"],
            "open24h": q["last"],
            "high24h": q["last"],
            "low24h": q["last"],
            "volCcy24h": "0",
            "vol24h": "0",
            "sodUtc0": q["last"],
            "sodUtc8": q["last"],
            "ts": str(now_ms()),
        }
        return {"arg": sub.arg, "data": [row]}
