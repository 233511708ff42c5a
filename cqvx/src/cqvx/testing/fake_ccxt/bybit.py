"""A thinner wire-level fake Bybit v5 (Unified Trading Account: ``category=linear`` perpetuals and
``category=spot``).

Signing (https://bybit-exchange.github.io/docs/v5/guide#authentication): headers ``X-BAPI-API-KEY``,
``X-BAPI-TIMESTAMP`` (ms), ``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` = hex HMAC-SHA256(secret,
``timestamp + apiKey + recvWindow + (query string | raw JSON body)``); the timestamp must lie within
the receive window.  Every answer (a rate limit too: retCode 10006) is HTTP 200 with
``retCode``/``retMsg``/``result``/``retExtInfo``/
``time`` (https://bybit-exchange.github.io/docs/v5/error): 10003 bad key, 10004 bad signature,
10002 timestamp outside the window, 110072 duplicate ``orderLinkId``, 110007 balance insufficient,
110001 order does not exist, 10001 parameter error.

Paths: ``/v5/market/{time,instruments-info,orderbook,tickers,kline,funding/history}``,
``/v5/order/{create,cancel,realtime,history,create-batch,cancel-batch,cancel-all}``; the account's
(wallet balance, positions, coins, transaction log) in :mod:`.bybit_account`.  Order create and cancel
answer ``{orderId, orderLinkId}`` only (an ack).

Spot (https://bybit-exchange.github.io/docs/v5/order/create-order, .../v5/market/orderbook,
.../v5/market/tickers): the same paths with ``category=spot`` reach the sim's spot instruments.  Bybit
names a spot pair and its linear perpetual alike (``BTCUSDT``), so the category picks the instrument
(:mod:`.bybit_spot`).  A spot order record has no ``tpslMode`` (the docs: "Spot does not have
this field"), a spot ticker no funding fields.  The perpetual ticker carries ``fundingRate`` and
``nextFundingTime`` (ms); both categories' orders share the one UTA wallet (``/v5/account/wallet-balance``).

Stream (https://bybit-exchange.github.io/docs/v5/ws/connect, .../ws/private/order): ``/v5/private``;
``{"op":"auth","args":[key, expires_ms, hex HMAC-SHA256(secret, "GET/realtime" + expires)]}``, then
``{"op":"subscribe","args":["order"]}``; ``{"op":"ping"}`` is answered with ``op: "pong"``; updates
are ``{"topic":"order","id","creationTime","data":[order...]}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal
from typing import Any

from aiohttp import web

from cqc.venues.v1 import order_pb2
from cqvx.errors import DuplicateOrder, InsufficientFunds, NotFound, VenueError
from cqvx.testing.fake_ccxt import _sim_shapes as sim_shapes
from cqvx.testing.fake_ccxt._base import Refused, SimFake, dec_text
from cqvx.testing.fake_ccxt.bybit_account import BybitAccount
from cqvx.testing.fake_ccxt.bybit_spot import BybitSpot
from cqvx.testing.fake_ccxt.bybit_ws import BybitPublic
from cqvx.types import OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec

__all__ = ["FakeBybit"]

_STATUS = {
    order_pb2.ORDER_STATUS_PENDING_NEW: "New",
    order_pb2.ORDER_STATUS_OPEN: "New",
    order_pb2.ORDER_STATUS_PARTIALLY_FILLED: "PartiallyFilled",
    order_pb2.ORDER_STATUS_FILLED: "Filled",
    order_pb2.ORDER_STATUS_CANCELLED: "Cancelled",
    order_pb2.ORDER_STATUS_PENDING_CANCEL: "Cancelled",
    order_pb2.ORDER_STATUS_REJECTED: "Rejected",
    order_pb2.ORDER_STATUS_EXPIRED: "Cancelled",
    order_pb2.ORDER_STATUS_FAILED: "Rejected",
}
# Fields of the documented records the fake has no model for (no TP/SL, SMP, options, borrowing):
# present, with neutral values, so the shapes match the venue's.
_ORDER_REST = dict.fromkeys(
    (
        "blockTradeId",
        "lastPriceOnCreated",
        "orderIv",
        "slTriggerBy",
        "smpOrderId",
        "tpTriggerBy",
        "triggerBy",
    ),
    "",
) | {"isLeverage": "0", "smpGroup": 0, "triggerDirection": 0, "slLimitPrice": "0", "tpLimitPrice": "0"}
_TIF_IN = {"IOC": order_pb2.TIME_IN_FORCE_IOC, "FOK": order_pb2.TIME_IN_FORCE_FOK}
_TIF_OUT = {order_pb2.TIME_IN_FORCE_IOC: "IOC", order_pb2.TIME_IN_FORCE_FOK: "FOK"}


# Batch Place / Batch Cancel (https://bybit-exchange.github.io/docs/v5/order/batch-place,
# .../v5/order/batch-cancel): at most 20 orders per request on linear (10 on spot, not served here).
BATCH_MAX_LINEAR = 20


class _Batch:
    """A batch answer: ``result.list`` rows and their ``retExtInfo.list`` codes, item by item."""

    def __init__(self, rows: list[dict[str, Any]], codes: list[dict[str, Any]]) -> None:
        self.rows, self.codes = rows, codes


class FakeBybit(SimFake):
    """``async with FakeBybit(api_key, secret) as fake:``; point ccxt's ``urls['api']`` at :attr:`url`."""

    public_feed = BybitPublic

    def __init__(
        self,
        api_key: str,
        secret: str,
        passphrase: str = "",
        *,
        sim: SimVenue | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(api_key, secret, passphrase, sim=sim, host=host)
        self.spot = BybitSpot(self)  # bybit_spot: category=spot on the same paths
        self.account = BybitAccount(self)  # bybit_account: wallet, positions, transaction log

    @staticmethod
    def venue_symbol(canonical: str) -> str:
        base, quote, *_ = canonical.split("-")
        return base + quote

    def setup_routes(self, app: web.Application) -> None:
        public = [
            ("/v5/market/time", self._time),
            ("/v5/market/instruments-info", self._instruments),
            ("/v5/market/orderbook", self._orderbook),
            ("/v5/market/tickers", self._tickers),
            ("/v5/market/kline", self._kline),
            ("/v5/market/funding/history", self._funding_history),
        ]
        for path, handler in public:
            self.route(app, "GET", path, handler, signed=False)
        self.route(app, "POST", "/v5/order/create", self._create, signed=True)
        self.route(app, "POST", "/v5/order/cancel", self._cancel, signed=True)
        self.route(app, "POST", "/v5/order/create-batch", self._create_batch, signed=True)
        self.route(app, "POST", "/v5/order/cancel-batch", self._cancel_batch, signed=True)
        self.route(app, "POST", "/v5/order/cancel-all", self._cancel_all, signed=True)
        self.route(app, "GET", "/v5/order/realtime", self._realtime, signed=True)
        self.route(app, "GET", "/v5/order/history", self._history, signed=True)
        self.account.routes(app)  # bybit_account: wallet, positions, coins, transaction log
        app.router.add_get("/v5/private", self._ws)
        self.public.routes(app)  # bybit_ws: the public linear streams

    # -- dialect ---------------------------------------------------------------------------------

    async def verify(self, request: web.Request, body: bytes) -> None:
        h = request.headers
        if h.get("X-BAPI-API-KEY") != self.api_key:
            raise Refused(401, "10003", "API key is invalid.")
        stamp, window = h.get("X-BAPI-TIMESTAMP", ""), h.get("X-BAPI-RECV-WINDOW", "5000")
        signed = request.query_string if request.method == "GET" else body.decode()
        expected = hmac.new(
            self.secret, (stamp + self.api_key + window + signed).encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(h.get("X-BAPI-SIGN", ""), expected):
            self.bad_signatures += 1
            raise Refused(401, "10004", "error sign! origin_string[...]")
        if not stamp.isdigit() or abs(time.time() * 1000 - int(stamp)) > int(window):
            raise Refused(
                200, "10002", "invalid request, please check your server timestamp or recv_window param"
            )

    def ok(self, payload: Any) -> Any:
        ext: Any = {}
        if isinstance(payload, _Batch):  # per-item codes ride in retExtInfo.list, same order
            payload, ext = {"list": payload.rows}, {"list": payload.codes}
        return {
            "retCode": 0,
            "retMsg": "OK",
            "result": payload,
            "retExtInfo": ext,
            "time": int(time.time() * 1000),
        }

    def failure(self, err: Refused) -> tuple[int, Any]:
        body = {"retCode": int(err.code), "retMsg": err.msg, "result": {}, "retExtInfo": {}}
        return (401 if err.status == 401 else 200), body | {"time": int(time.time() * 1000)}

    def rate_limited_answer(self) -> tuple[int, dict[str, Any]]:
        return 200, {
            "retCode": 10006,
            "retMsg": "Too many visits!",
            "result": {},
            "retExtInfo": {},
            "time": 0,
        }

    def refusal(self, err: VenueError, op: str) -> Refused:
        if isinstance(err, DuplicateOrder):
            return Refused(200, "110072", "OrderLinkedID is duplicate")
        if isinstance(err, InsufficientFunds):
            return Refused(200, "110007", "ab not enough for new order")
        if isinstance(err, NotFound):
            return Refused(200, "110001", "Order does not exist")
        return Refused(200, "10001", err.message)

    def unknown_symbol(self, venue_symbol: str) -> Refused:
        return Refused(200, "10001", "params error: symbol invalid")

    # -- shapes ----------------------------------------------------------------------------------

    def _order(self, o: order_pb2.Order) -> dict[str, Any]:
        qty, filled = Decimal(o.quantity or "0"), Decimal(o.filled_quantity or "0")
        status = _STATUS.get(o.status, "New")
        if status == "Cancelled" and filled > 0:
            status = "PartiallyFilledCanceled"
        created, updated = sim_shapes.ms(o.created_at), sim_shapes.ms(o.updated_at)
        shape = {
            "orderId": self.wire_id(o.order_id),
            "orderLinkId": o.client_order_id,
            "symbol": self.venue_symbol(o.symbol),
            "price": o.price or "0",
            "qty": o.quantity,
            "side": "Buy" if o.side == order_pb2.ORDER_SIDE_BUY else "Sell",
            "positionIdx": 0,
            "orderStatus": status,
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": o.average_fill_price or "",
            "leavesQty": dec_text(qty - filled) if status in ("New", "PartiallyFilled") else "0",
            "cumExecQty": dec_text(filled),
            "cumExecValue": dec_text(filled * Decimal(o.average_fill_price or "0")),
            "cumExecFee": o.total_fees or "0",
            "timeInForce": "PostOnly" if o.post_only else _TIF_OUT.get(o.time_in_force, "GTC"),
            "orderType": "Limit" if o.order_type == order_pb2.ORDER_TYPE_LIMIT else "Market",
            "stopOrderType": "",
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "reduceOnly": o.reduce_only,
            "closeOnTrigger": False,
            "tpslMode": "Full",  # present on derivatives orders (ccxt tells linear from spot by it)
            "smpType": "None",
            "placeType": "order",
            "leavesValue": dec_text((qty - filled) * Decimal(o.price or "0")),
            "createdTime": str(created),
            "updatedTime": str(updated or created),
        } | _ORDER_REST
        if o.symbol in self.spot.symbols():
            del shape["tpslMode"]  # create-order docs: "Spot does not have this field"
        return shape

    def _instrument(self, spec: InstrumentSpec, category: str) -> dict[str, Any]:
        tick = str(spec.tick_size)
        common = {
            "symbol": self.venue_symbol(spec.symbol),
            "status": "Trading",
            "baseCoin": spec.base_asset,
            "quoteCoin": spec.quote_asset,
            "priceFilter": {"minPrice": tick, "maxPrice": "10000000", "tickSize": tick},
        }
        if category == "spot":
            return self.spot.instrument_row(spec, common)
        return common | {
            "contractType": "LinearPerpetual",
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(sim_shapes.places(spec.tick_size)),
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": str(spec.max_leverage),
                "leverageStep": "0.01",
            },
            "lotSizeFilter": {
                "maxOrderQty": str(spec.max_quantity),
                "minOrderQty": str(spec.min_quantity),
                "qtyStep": str(spec.lot_size),
                "postOnlyMaxOrderQty": str(spec.max_quantity),
                "maxMktOrderQty": str(spec.max_quantity),
                "minNotionalValue": str(spec.min_notional),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": spec.funding_interval_seconds // 60,
            "settleCoin": spec.quote_asset,
            "copyTrading": "both",
        }

    # -- public ----------------------------------------------------------------------------------

    async def _time(self, request: web.Request, params: dict[str, Any]) -> Any:
        now = time.time_ns()
        return {"timeSecond": str(now // 1_000_000_000), "timeNano": str(now)}

    async def _instruments(self, request: web.Request, params: dict[str, Any]) -> Any:
        category = params.get("category", "")
        if category == "linear":
            specs = list(self.perps.values())
        elif category == "spot":
            specs = [s for s in self.sim.config.instruments if s.symbol in self.spot.symbols()]
        else:
            specs = []
        return {
            "category": category,
            "list": [self._instrument(s, category) for s in specs],
            "nextPageCursor": "",
        }

    async def _orderbook(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = params.get("symbol", "")
        book = await self.sim.get_order_book(self.spot.lookup(params), int(params.get("limit", "25")))
        return {
            "s": symbol,
            "b": [[lv.price, lv.quantity] for lv in book.bids],
            "a": [[lv.price, lv.quantity] for lv in book.asks],
            "ts": sim_shapes.ms(book.timestamp) or int(time.time() * 1000),
            "u": book.sequence,
            "seq": book.sequence,
            "cts": sim_shapes.ms(book.timestamp) or int(time.time() * 1000),
        }

    async def _tickers(self, request: web.Request, params: dict[str, Any]) -> Any:
        if params.get("category") == "spot":
            return await self.spot.tickers(params)
        symbol = params.get("symbol", "")
        canonical = self.canonical(symbol)
        price = await self.sim.get_latest_price(canonical)
        rate = await self.sim.get_funding_rate(canonical)
        row = {
            "symbol": symbol,
            "lastPrice": price.last,
            "indexPrice": rate.index_price or price.last,
            "markPrice": rate.mark_price or price.last,
            "prevPrice24h": price.last,
            "price24hPcnt": "0",
            "highPrice24h": price.last,
            "lowPrice24h": price.last,
            "openInterest": "0",
            "turnover24h": "0",
            "volume24h": "0",
            "fundingRate": rate.rate,
            "nextFundingTime": str(sim_shapes.ms(rate.next_funding_time)),
            "bid1Price": price.bid,
            "bid1Size": price.bid_size or "0",
            "ask1Price": price.ask,
            "ask1Size": price.ask_size or "0",
        }
        return {"category": "linear", "list": [row]}

    async def _kline(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = params.get("symbol", "")
        widths = {"1": 60, "5": 300, "15": 900, "30": 1800, "60": 3600, "240": 14400, "D": 86400}
        candles = await sim_shapes.candles(
            self.sim, self.canonical(symbol), widths.get(params.get("interval", ""), 0), params.get("limit")
        )
        if candles is None:
            raise Refused(200, "10001", "params error: interval invalid")
        rows = [
            [str(sim_shapes.ms(c.open_time)), c.open, c.high, c.low, c.close, c.volume, c.quote_volume or "0"]
            for c in reversed(candles)  # Bybit lists newest first
        ]
        return {"category": "linear", "symbol": symbol, "list": rows}

    async def _funding_history(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = params.get("symbol", "")
        rate = await self.sim.get_funding_rate(self.canonical(symbol))
        at = sim_shapes.ms(rate.funding_time) or int(time.time() * 1000)
        row = {"symbol": symbol, "fundingRate": rate.rate, "fundingRateTimestamp": str(at)}
        return {"category": "linear", "list": [row]}

    # -- orders ----------------------------------------------------------------------------------

    async def _create(self, request: web.Request, params: dict[str, Any]) -> Any:
        spot = params.get("category") == "spot"
        if params.get("category") != "linear" and not spot:
            raise Refused(200, "10001", "params error: category only linear or spot in this fake")
        canonical = self.spot.lookup(params)
        kind, tif = params.get("orderType"), params.get("timeInForce", "GTC")
        if kind not in ("Limit", "Market") or params.get("side") not in ("Buy", "Sell"):
            raise Refused(200, "10001", "params error: orderType or side")
        order = order_pb2.Order(
            symbol=canonical,
            client_order_id=str(params.get("orderLinkId", "")),
            side=order_pb2.ORDER_SIDE_BUY if params["side"] == "Buy" else order_pb2.ORDER_SIDE_SELL,
            order_type=order_pb2.ORDER_TYPE_LIMIT if kind == "Limit" else order_pb2.ORDER_TYPE_MARKET,
            quantity=self.to_base(params.get("qty", "")),
            price=str(params["price"]) if kind == "Limit" and "price" in params else "",
            post_only=tif == "PostOnly",
            reduce_only=not spot and params.get("reduceOnly") in (True, "true"),
            time_in_force=_TIF_IN.get(str(tif), order_pb2.TIME_IN_FORCE_GTC),
        )
        if kind == "Market":
            order.time_in_force = order_pb2.TIME_IN_FORCE_IOC
        placed = await self.place(order)
        return {"orderId": self.wire_id(placed.order_id), "orderLinkId": placed.client_order_id}

    async def _cancel(self, request: web.Request, params: dict[str, Any]) -> Any:
        canonical = self.spot.lookup(params)
        done = await self.cancel(canonical, params.get("orderId"), params.get("orderLinkId"))
        return {"orderId": self.wire_id(done.order_id), "orderLinkId": done.client_order_id}

    # -- batch and cancel-all ---------------------------------------------------------------------

    def _batch_items(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if params.get("category") != "linear":
            raise Refused(200, "10001", "params error: category only linear in this fake")
        items = params.get("request")
        if not isinstance(items, list) or not items or len(items) > BATCH_MAX_LINEAR:
            raise Refused(200, "10001", f"params error: request must hold 1 to {BATCH_MAX_LINEAR} orders")
        return [item if isinstance(item, dict) else {} for item in items]

    async def _create_batch(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Each item placed on its own: a refused one is ``{orderId: "", ...}`` with its code in
        ``retExtInfo.list`` at the same index; the others are placed."""
        rows, codes = [], []
        for item in self._batch_items(params):
            symbol = str(item.get("symbol", ""))
            try:
                ack = await self._create(request, item | {"category": "linear"})
            except Refused as err:
                rows.append(
                    {"category": "linear", "symbol": symbol, "orderId": "", "orderLinkId": "", "createAt": ""}
                )
                codes.append({"code": int(err.code), "msg": err.msg})
                continue
            rows.append(
                {"category": "linear", "symbol": symbol, **ack, "createAt": str(int(time.time() * 1000))}
            )
            codes.append({"code": 0, "msg": "OK"})
        return _Batch(rows, codes)

    async def _cancel_batch(self, request: web.Request, params: dict[str, Any]) -> Any:
        rows, codes = [], []
        for item in self._batch_items(params):
            symbol = str(item.get("symbol", ""))
            try:
                ack = await self._cancel(request, item)
            except Refused as err:
                rows.append({"category": "linear", "symbol": symbol, "orderId": "", "orderLinkId": ""})
                codes.append({"code": int(err.code), "msg": err.msg})
                continue
            rows.append({"category": "linear", "symbol": symbol, **ack})
            codes.append({"code": 0, "msg": "OK"})
        return _Batch(rows, codes)

    async def _cancel_all(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Cancel All Orders (https://bybit-exchange.github.io/docs/v5/order/cancel-all): linear by
        ``symbol`` (or every symbol of ``settleCoin``); answers the cancelled ids."""
        if params.get("category") != "linear":
            raise Refused(200, "10001", "params error: category only linear in this fake")
        symbol = params.get("symbol")
        if not symbol and not params.get("settleCoin") and not params.get("baseCoin"):
            raise Refused(200, "10001", "params error: symbol, baseCoin or settleCoin required")
        canonical = self.canonical(str(symbol)) if symbol else None
        cancelled = []
        for o in await self.sim.get_orders(OrderFilter(symbol=canonical)):
            if o.symbol not in self.perp_symbols():
                continue
            try:
                done = await self.sim.cancel_order(symbol=o.symbol, order_id=o.order_id)
            except VenueError:
                continue  # finished meanwhile: not cancelled by this request
            cancelled.append({"orderId": self.wire_id(done.order_id), "orderLinkId": done.client_order_id})
        return {"list": cancelled, "success": "1"}

    async def _list(self, params: dict[str, Any], open_only: bool) -> Any:
        symbol = params.get("symbol")
        canonical = self.spot.lookup(params) if symbol else None
        oid, coid = params.get("orderId"), params.get("orderLinkId")
        if oid or coid:
            try:
                orders = [await self.sim.get_order(symbol=canonical or "", **self.ref(oid, coid))]
            except VenueError:
                orders = []  # Bybit answers an unknown id with an empty list
        else:
            statuses = frozenset() if open_only else frozenset(_STATUS)
            orders = await self.sim.get_orders(OrderFilter(symbol=canonical, statuses=statuses))
        category = "spot" if params.get("category") == "spot" else "linear"
        wanted = self.spot.symbols() if category == "spot" else self.perp_symbols()
        orders = [o for o in orders if o.symbol in wanted]
        return {"category": category, "list": [self._order(o) for o in orders], "nextPageCursor": ""}

    async def _realtime(self, request: web.Request, params: dict[str, Any]) -> Any:
        # UTA: open orders, plus the recent closed ones when asked by id (what "realtime" serves).
        return await self._list(params, open_only=True)

    async def _history(self, request: web.Request, params: dict[str, Any]) -> Any:
        return await self._list(params, open_only=False)

    # -- account ---------------------------------------------------------------------------------
    # -- the order stream ------------------------------------------------------------------------

    def order_push(self, order: order_pb2.Order) -> Any:
        return {
            "id": uuid.uuid4().hex,
            "topic": "order",
            "creationTime": int(time.time() * 1000),
            "data": [
                self._order(order)
                | {"category": "linear", "feeCurrency": "USDT", "createType": "CreateByUser"}
            ],
        }

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        state = {"authed": False}
        conn = uuid.uuid4().hex

        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            try:
                msg = json.loads(text)
            except ValueError:
                return
            op, req_id = msg.get("op"), msg.get("req_id", "")
            if op == "ping":
                await ws.send_json(
                    {"req_id": req_id, "op": "pong", "args": [str(int(time.time() * 1000))], "conn_id": conn}
                )
            elif op == "auth":
                args = msg.get("args") or ["", "", ""]
                key, expires, sig = (str(a) for a in [*args, "", "", ""][:3])
                good = hmac.new(self.secret, f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
                fresh = expires.isdigit() and int(expires) > time.time() * 1000
                state["authed"] = key == self.api_key and fresh and hmac.compare_digest(sig, good)
                if not state["authed"]:
                    self.bad_signatures += 1
                await ws.send_json(
                    {
                        "success": state["authed"],
                        "ret_msg": "" if state["authed"] else "Params Error",
                        "op": "auth",
                        "conn_id": conn,
                        "req_id": req_id,
                    }
                )
            elif op == "subscribe":
                topics = msg.get("args") or []
                ok = state["authed"] and all(t in ("order", "order.linear") for t in topics)
                await ws.send_json(
                    {
                        "success": ok,
                        "ret_msg": "" if ok else "Request not authorized",
                        "conn_id": conn,
                        "req_id": req_id,
                        "op": "subscribe",
                    }
                )
                if ok:
                    self.order_sockets.add(ws)

        return await self.serve_ws(request, on_text)
