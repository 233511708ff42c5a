"""Gate v4 futures public channels for :class:`~cqvx.testing.fake_ccxt.gate.FakeGate`, on the same
``/v4/ws/usdt`` endpoint as its order channel (Gate serves public and private futures channels on one
url; ``gate.py`` hands every non-order channel here).

From the docs (https://www.gate.com/docs/developers/futures/ws/en/#order-book-api,
#order-book-update-api (``futures.order_book_update``), #trades-api, #tickers-api):

* ``{"time","channel":..,"event":"subscribe"|"unsubscribe","payload":[..]}`` is answered
  ``{"time","time_ms","channel","event","error":null,"result":{"status":"success"}}``; an unknown
  contract is ``error: {"code": 2, ...}``.
* ``futures.order_book_update`` (payload ``[contract, interval, level]``): ``event: "update"``,
  ``result`` = ``{t, s, U, u, b, a}`` with ``[{p, s}]`` levels (absolute sizes in contracts, ``0``
  deletes), ``U``/``u`` the first/last order book update id of the message.  The client keeps the
  updates, reads ``GET /futures/usdt/order_book?with_id=true`` (its ``id`` is the same id line) and
  applies the updates with ``U <= id+1 <= u``; an update whose ``U`` is beyond its book's id + 1 means
  one was missed: start over.  Sizes are integers, or decimal strings when the connection was opened
  with ``X-Gate-Size-Decimal: 1`` (what ccxt sends).  On a subscription the fake pushes one update
  at the current id (``U`` = ``u`` = id, the touch restated), the message a live Gate book sends on its
  interval: a client waits for an update before reading the snapshot, and the fake's book only moves
  when the test moves it.
* ``futures.trades`` (payload ``[contract]``): ``result`` = ``[{size (signed: negative = the taker
  sold), id, create_time, create_time_ms, price, contract}]``.
* ``futures.tickers`` (payload ``[contract]``): ``result`` = ``[{contract, last, change_percentage,
  funding_rate, funding_rate_indicative, mark_price, index_price, total_size, volume_24h,
  volume_24h_base, volume_24h_quote, volume_24h_settle, low_24h, high_24h, ...}]`` (no touch).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from aiohttp import web

from cqc.markets.v1 import trade_pb2
from cqvx.testing.fake_ccxt._public_ws import BookState, PublicFeed, Sub, now_ms
from cqvx.timeutil import to_ns

__all__ = ["GatePublic"]

_KINDS = {"futures.order_book_update": "book", "futures.trades": "trades", "futures.tickers": "ticker"}


class GatePublic(PublicFeed):
    def __init__(self, fake: Any) -> None:
        super().__init__(fake)
        self.decimal_sizes: set[web.WebSocketResponse] = set()

    def channels(self) -> frozenset[str]:
        return frozenset(_KINDS)

    async def on_message(self, ws: web.WebSocketResponse, request: web.Request, msg: dict[str, Any]) -> None:
        """One public-channel request of a ``/v4/ws/usdt`` connection (``msg["channel"]`` in
        :meth:`channels`)."""
        if request.headers.get("X-Gate-Size-Decimal") == "1":
            self.decimal_sizes.add(ws)
        channel, event, now = str(msg.get("channel")), msg.get("event"), int(time.time())
        reply = {"time": now, "time_ms": now * 1000, "id": msg.get("id"), "channel": channel, "event": event}
        payload = msg.get("payload") or []
        contract = str(payload[0]) if payload else ""
        if event not in ("subscribe", "unsubscribe") or contract not in self.fake.perps:
            self.send(
                ws, reply | {"error": {"code": 2, "message": f"unknown contract {contract}"}, "result": None}
            )
            return
        kind = _KINDS[channel]
        self.send(ws, reply | {"error": None, "result": {"status": "success"}})
        if event == "unsubscribe":
            self.unsubscribe(ws, kind, contract)
            return
        depth = int(payload[2]) if kind == "book" and len(payload) > 2 and str(payload[2]).isdigit() else 100
        await self.subscribe(Sub(ws, kind, contract, depth, arg=channel))

    # -- shapes ----------------------------------------------------------------------------------

    def _size(self, ws: web.WebSocketResponse, wire: str) -> str | int:
        return wire if ws in self.decimal_sizes else int(Decimal(wire))

    def _push(self, channel: str, result: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"time": now, "time_ms": now * 1000, "channel": channel, "event": "update", "result": result}

    def _levels(self, sub: Sub, levels: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [{"p": p, "s": self._size(sub.ws, q)} for p, q in self.wire_levels(levels)]

    def book_snapshot(self, sub: Sub, state: BookState, *, restart: bool = False) -> Any:
        bids, asks = state.top(1)
        first = sub.prev if restart else state.seq
        result = {
            "t": now_ms(),
            "s": sub.symbol,
            "U": first,
            "u": state.seq,
            "b": self._levels(sub, bids),
            "a": self._levels(sub, asks),
        }
        sub.prev = state.seq
        return self._push(sub.arg, result)

    def book_update(
        self, sub: Sub, state: BookState, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
    ) -> Any:
        result = {
            "t": now_ms(),
            "s": sub.symbol,
            "U": sub.prev + 1,
            "u": state.seq,
            "b": self._levels(sub, bids),
            "a": self._levels(sub, asks),
        }
        sub.prev = state.seq
        return self._push(sub.arg, result)

    def trade_push(self, sub: Sub, trade: trade_pb2.Trade) -> Any:
        at = to_ns(trade.timestamp) // 1_000_000 or now_ms()
        contracts = self.fake.to_wire(trade.quantity)
        if trade.side == trade_pb2.TRADE_SIDE_SELL:
            contracts = "-" + contracts
        row = {
            "size": self._size(sub.ws, contracts),
            "id": int("".join(ch for ch in trade.trade_id if ch.isdigit()) or "0"),
            "create_time": at // 1000,
            "create_time_ms": at,
            "price": trade.price,
            "contract": sub.symbol,
        }
        return self._push(sub.arg, [row])

    async def ticker_push(self, sub: Sub, *, first: bool) -> Any:
        q = await self.quote(sub.symbol)
        row = {
            "contract": sub.symbol,
            "last": q["last"],
            "change_percentage": "0",
            "funding_rate": q["funding_rate"],
            "funding_rate_indicative": q["funding_rate"],
            "mark_price": q["mark"],
            "index_price": q["index"],
            "total_size": "0",
            "volume_24h": "0",
            "volume_24h_base": "0",
            "volume_24h_quote": "0",
            "volume_24h_settle": "0",
            "low_24h": q["last"],
            "high_24h": q["last"],
        }
        return self._push(sub.arg, [row])
