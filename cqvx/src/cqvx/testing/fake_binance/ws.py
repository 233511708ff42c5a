"""The WebSocket half of the fake Binance USD-M: market streams and the user data stream.

Facts from the USD-M WebSocket docs (developers.binance.com/docs/derivatives/usds-margined-futures,
"WebSocket Market Streams" and "User Data Streams"):

* Routed endpoints: ``/public/ws`` (depth, bookTicker, trade), ``/market/ws`` (aggTrade, markPrice) and
  ``/private/ws?listenKey=<key>`` (user data); ccxt appends a stream index (``/public/ws/0``), which is
  accepted.  Live subscriptions: ``{"method":"SUBSCRIBE","params":[...],"id":N}`` answered
  ``{"result":null,"id":N}``.
* Diff depth ``<symbol>@depth@100ms``: ``depthUpdate`` with ``U`` (first update id), ``u`` (final) and
  ``pu`` (the previous event's ``u``); a client whose last ``u`` is not the new ``pu`` has lost an
  update and re-syncs from the REST snapshot (``lastUpdateId``).  Quantities are absolute ("0" removes).
* ``<symbol>@aggTrade`` / ``@trade``; ``<symbol>@ticker`` / ``@miniTicker`` (``24hrTicker`` /
  ``24hrMiniTicker``; ccxt's default is the mini one); ``<symbol>@markPrice[@1s]``
  (``markPriceUpdate``: mark, index, funding rate, next funding time); ``<symbol>@bookTicker``.
* The server sends a ping frame every 3 minutes; a client that sends no pong within 10 minutes is
  disconnected.  Unsolicited pongs are allowed.
* User data: ``ORDER_TRADE_UPDATE`` (per order event: ``x`` execution type, ``X`` status, ``l``/``L``
  last fill, ``z`` cumulative, ``ap`` average price, ``t`` trade id, ``n``/``N`` commission),
  ``ACCOUNT_UPDATE`` (balances ``B`` and positions ``P``), and ``listenKeyExpired`` when the key lapses
  (60 minutes after the last keepalive); the stream then ends.

Fault injection: :meth:`FakeBinanceWs.drop` (cut connections), :meth:`expire_listen_key`,
:meth:`skip_depth` (an update is applied but never sent: the next one's ``pu`` skips it).
Connections register before the handshake completes, so an event raised right after a client saw
its connection open is delivered (the "live means live" rule of the stream contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from cqc.markets.v1 import funding_pb2, orderbook_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2
from cqvx.testing.fake_binance import _shapes as shapes

if TYPE_CHECKING:
    from cqvx.testing.fake_binance.server import FakeBinance

__all__ = ["FakeBinanceWs"]

_EXEC = {
    execution_pb2.EXECUTION_TYPE_NEW: "NEW",
    execution_pb2.EXECUTION_TYPE_TRADE: "TRADE",
    execution_pb2.EXECUTION_TYPE_CANCELLED: "CANCELED",
    execution_pb2.EXECUTION_TYPE_EXPIRED: "EXPIRED",
    execution_pb2.EXECUTION_TYPE_REJECTED: "REJECTED",
}


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    kind: str  # public | market | private
    listen_key: str = ""
    streams: set[str] = field(default_factory=set)
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    pongs: int = 0


@dataclass
class _Depth:
    bids: dict[str, str]
    asks: dict[str, str]
    last_u: int
    skip: int = 0


class FakeBinanceWs:
    """Owned by :class:`FakeBinance` (``fake.ws``); reads the simulated venue's streams."""

    def __init__(self, fake: FakeBinance, *, ping_interval_s: float = 180.0) -> None:
        self._fake = fake
        self.ping_interval_s = ping_interval_s
        self.conns: set[_Conn] = set()
        self.pings_sent = 0
        self.pongs_received = 0
        self.subscribe_requests = 0
        self._depth: dict[str, _Depth] = {}
        self._last: dict[str, str] = {}  # venue symbol -> last trade price
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []

    def routes(self, app: web.Application) -> None:
        for kind in ("public", "market", "private"):
            app.router.add_get(f"/{kind}/ws", self._handler(kind))
            app.router.add_get(f"/{kind}/ws/{{index}}", self._handler(kind))

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        sim = self._fake.sim
        loop = asyncio.get_running_loop()
        for venue_sym, spec in self._fake._perps.items():
            book = await sim.get_order_book(spec.symbol, 1000)
            self._depth[venue_sym] = _Depth(_levels(book.bids), _levels(book.asks), book.sequence)
            pairs: list[tuple[Any, Any]] = [
                (sim.subscribe_order_book(spec.symbol, 1000), self._on_book),
                (sim.subscribe_trades(spec.symbol), self._on_trade),
            ]
            self._follow(loop, pairs)
        self._follow(
            loop,
            [
                (sim.subscribe_executions(), self._on_execution),
                (sim.subscribe_positions(), self._on_position),
                (sim.subscribe_funding_rates(), self._on_funding),
            ],
        )
        self._tasks.append(loop.create_task(self._ping_loop()))

    def _follow(self, loop: asyncio.AbstractEventLoop, pairs: list[tuple[Any, Any]]) -> None:
        for sub, handler in pairs:
            self._subs.append(sub)
            self._tasks.append(loop.create_task(self._pump(sub, handler)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.aclose()
        await self.drop()

    async def _pump(self, sub: Any, handler: Any) -> None:
        async for msg in sub:
            try:
                await handler(msg)
            except Exception:  # a fake must keep serving; the test sees the missing event
                continue

    # -- faults ----------------------------------------------------------------------------------

    async def drop(self, kind: str | None = None) -> int:
        """Cut every connection (of ``kind``) now: nothing queued is delivered."""
        victims = [c for c in self.conns if kind is None or c.kind == kind]
        for conn in victims:
            self.conns.discard(conn)
            self._fake.ws_connections.discard(conn.ws)
        for conn in victims:
            conn.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1011, message=b"dropped by fake server")
        return len(victims)

    async def expire_listen_key(self) -> None:
        """Every listen key lapses: ``listenKeyExpired`` on its stream, then the stream ends."""
        keys = list(self._fake.listen_keys)
        self._fake.listen_keys.clear()
        for conn in [c for c in self.conns if c.kind == "private" and c.listen_key in keys]:
            self._send(conn, {"e": "listenKeyExpired", "E": _now_ms(), "listenKey": conn.listen_key})
        await asyncio.sleep(0.05)  # let the event out before the close
        await self.drop("private")

    def skip_depth(self, venue_symbol: str, count: int = 1) -> None:
        """The next ``count`` depth updates of ``venue_symbol`` are applied but never sent."""
        self._depth[venue_symbol].skip += count

    # -- connections -----------------------------------------------------------------------------

    def _handler(self, kind: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            key = request.query.get("listenKey", "")
            if kind == "private" and key not in self._fake.listen_keys:
                return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
            ws = web.WebSocketResponse(autoping=False)
            conn = _Conn(ws, kind, key)
            self.conns.add(conn)  # before the handshake completes: see the module docstring
            try:
                await ws.prepare(request)
                self._fake.ws_connects += 1
                self._fake.ws_connections.add(ws)
                writer = asyncio.get_running_loop().create_task(self._write(conn))
                try:
                    await self._read(conn)
                finally:
                    conn.outbox.put_nowait(None)
                    await writer
            finally:
                self.conns.discard(conn)
                self._fake.ws_connections.discard(ws)
            return ws

        return handle

    async def _write(self, conn: _Conn) -> None:
        while (text := await conn.outbox.get()) is not None:
            if conn.ws.closed:
                return
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _read(self, conn: _Conn) -> None:
        async for msg in conn.ws:
            if msg.type == WSMsgType.PING:
                await conn.ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                conn.pongs += 1
                self.pongs_received += 1
            elif msg.type == WSMsgType.TEXT:
                self._on_request(conn, msg.data)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                return

    def _on_request(self, conn: _Conn, text: str) -> None:
        try:
            req = json.loads(text)
            method, rid = req["method"], req["id"]
            params = req.get("params") or []
        except (ValueError, KeyError, TypeError):
            self._send(conn, {"error": {"code": 2, "msg": "Invalid request"}, "id": None})
            return
        if method == "SUBSCRIBE":
            self.subscribe_requests += 1
            conn.streams.update(str(p) for p in params)
            self._send(conn, {"result": None, "id": rid})
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(str(p) for p in params)
            self._send(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            self._send(conn, {"result": sorted(conn.streams), "id": rid})
        else:
            self._send(
                conn, {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"}, "id": rid}
            )

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            for conn in list(self.conns):
                if conn.ws.prepared and not conn.ws.closed:
                    with contextlib.suppress(Exception):
                        await conn.ws.ping()
                        self.pings_sent += 1

    def _send(self, conn: _Conn, payload: Any) -> None:
        conn.outbox.put_nowait(json.dumps(payload))

    def _publish(self, stream_names: tuple[str, ...], payload: Any) -> None:
        text = json.dumps(payload)
        for conn in list(self.conns):
            if conn.kind != "private" and conn.streams.intersection(stream_names):
                conn.outbox.put_nowait(text)

    def _private(self, payload: Any) -> None:
        text = json.dumps(payload)
        for conn in list(self.conns):
            if conn.kind == "private":
                conn.outbox.put_nowait(text)

    # -- market streams --------------------------------------------------------------------------

    async def _on_book(self, book: orderbook_pb2.OrderBook) -> None:
        sym = shapes.venue_symbol(book.symbol)
        state = self._depth[sym]
        bids, asks = _levels(book.bids), _levels(book.asks)
        if book.sequence <= state.last_u:
            return
        event = {
            "e": "depthUpdate",
            "E": _now_ms(),
            "T": _now_ms(),
            "s": sym,
            "U": state.last_u + 1,
            "u": book.sequence,
            "pu": state.last_u,
            "b": _diff(state.bids, bids),
            "a": _diff(state.asks, asks),
        }
        state.bids, state.asks, state.last_u = bids, asks, book.sequence
        low = sym.lower()
        if book.bids and book.asks:
            self._publish(
                (f"{low}@bookTicker",),
                {
                    "e": "bookTicker",
                    "u": book.sequence,
                    "E": _now_ms(),
                    "T": _now_ms(),
                    "s": sym,
                    "b": book.bids[0].price,
                    "B": book.bids[0].quantity,
                    "a": book.asks[0].price,
                    "A": book.asks[0].quantity,
                },
            )
        if state.skip > 0:
            state.skip -= 1
            return
        self._publish(
            (f"{low}@depth", f"{low}@depth@100ms", f"{low}@depth@250ms", f"{low}@depth@500ms"), event
        )

    async def _on_trade(self, trade: trade_pb2.Trade) -> None:
        sym = shapes.venue_symbol(trade.symbol)
        at = shapes._ms(trade.timestamp) or _now_ms()
        tid = int("".join(ch for ch in trade.trade_id if ch.isdigit()) or "0")
        buyer_maker = trade.side == trade_pb2.TRADE_SIDE_SELL  # the aggressor sold into a resting bid
        low = sym.lower()
        self._last[sym] = trade.price
        now = _now_ms()
        # Individual Symbol Ticker (<symbol>@ticker, "24hrTicker"): the fake's 24 h figures are the
        # last trade's (no rolling window is kept).
        self._publish(
            (f"{low}@ticker",),
            {"e": "24hrTicker", "E": now, "s": sym, "p": "0", "P": "0", "w": trade.price, "c": trade.price,
             "Q": trade.quantity, "o": trade.price, "h": trade.price, "l": trade.price, "v": trade.quantity,
             "q": "0", "O": now - 86_400_000, "C": now, "F": tid, "L": tid, "n": 1},
        )  # fmt: skip
        self._publish(
            (f"{low}@miniTicker",),
            {"e": "24hrMiniTicker", "E": now, "s": sym, "c": trade.price, "o": trade.price, "h": trade.price,
             "l": trade.price, "v": trade.quantity, "q": "0"},
        )  # fmt: skip
        self._publish(
            (f"{low}@trade",),
            {"e": "trade", "E": _now_ms(), "T": at, "s": sym, "t": tid, "p": trade.price, "q": trade.quantity,
             "X": "MARKET", "m": buyer_maker},
        )  # fmt: skip
        self._publish(
            (f"{low}@aggTrade",),
            {"e": "aggTrade", "E": _now_ms(), "a": tid, "s": sym, "p": trade.price, "q": trade.quantity,
             "f": tid, "l": tid, "T": at, "m": buyer_maker},
        )  # fmt: skip

    async def _on_funding(self, rate: funding_pb2.FundingRate) -> None:
        sym = shapes.venue_symbol(rate.symbol)
        low = sym.lower()
        self._publish(
            (f"{low}@markPrice", f"{low}@markPrice@1s"),
            {
                "e": "markPriceUpdate",
                "E": _now_ms(),
                "s": sym,
                "p": rate.mark_price or "0",
                "i": rate.index_price or "0",
                "P": rate.mark_price or "0",
                "r": rate.rate,
                "T": shapes._ms(rate.next_funding_time),
            },
        )

    # -- user data -------------------------------------------------------------------------------

    async def _on_execution(self, rep: execution_pb2.ExecutionReport) -> None:
        if rep.execution_type not in _EXEC:
            return
        order = await self._fake.sim.get_order(symbol=rep.symbol, order_id=rep.order_id)
        body = shapes.order(order)
        trade = rep.execution_type == execution_pb2.EXECUTION_TYPE_TRADE
        self._private(
            {
                "e": "ORDER_TRADE_UPDATE",
                "E": _now_ms(),
                "T": _now_ms(),
                "o": {
                    "s": body["symbol"],
                    "c": body["clientOrderId"],
                    "S": body["side"],
                    "o": body["type"],
                    "f": body["timeInForce"],
                    "q": body["origQty"],
                    "p": body["price"],
                    "ap": body["avgPrice"],
                    "sp": "0",
                    "x": _EXEC[rep.execution_type],
                    "X": body["status"],
                    "i": body["orderId"],
                    "l": rep.last_quantity if trade else "0",
                    "z": body["executedQty"],
                    "L": rep.last_price if trade else "0",
                    "N": "USDT",
                    "n": rep.fee if trade and rep.fee else "0",
                    "T": _now_ms(),
                    "t": int("".join(ch for ch in rep.trade_id if ch.isdigit()) or "0") if trade else 0,
                    "b": "0",
                    "a": "0",
                    "m": rep.liquidity == execution_pb2.LIQUIDITY_SIDE_MAKER,
                    "R": body["reduceOnly"],
                    "wt": "CONTRACT_PRICE",
                    "ot": body["type"],
                    "ps": "BOTH",
                    "cp": False,
                    "rp": "0",
                    "pP": False,
                    "si": 0,
                    "ss": 0,
                    "V": "NONE",
                    "pm": "NONE",
                    "gtd": 0,
                },
            }
        )

    async def _on_position(self, p: position_pb2.Position) -> None:
        balances = await self._fake.sim.get_balances()
        amount = ("-" + p.quantity) if p.side == position_pb2.POSITION_SIDE_SHORT else (p.quantity or "0")
        self._private(
            {
                "e": "ACCOUNT_UPDATE",
                "E": _now_ms(),
                "T": _now_ms(),
                "a": {
                    "m": "ORDER",
                    "B": [
                        {"a": b.asset, "wb": b.total or "0", "cw": b.total or "0", "bc": "0"}
                        for b in balances
                    ],
                    "P": [
                        {
                            "s": shapes.venue_symbol(p.symbol),
                            "pa": amount,
                            "ep": p.entry_price or "0",
                            "bep": p.entry_price or "0",
                            "cr": "0",
                            "up": p.unrealized_pnl or "0",
                            "mt": "isolated"
                            if p.margin_mode == position_pb2.MARGIN_MODE_ISOLATED
                            else "cross",
                            "iw": "0",
                            "ps": "BOTH",
                        }
                    ],
                },
            }
        )


def _levels(levels: Any) -> dict[str, str]:
    return {str(Decimal(lv.price)): lv.quantity for lv in levels}


def _diff(old: dict[str, str], new: dict[str, str]) -> list[list[str]]:
    out = [[price, qty] for price, qty in new.items() if old.get(price) != qty]
    out.extend([price, "0"] for price in old if price not in new)
    return out
