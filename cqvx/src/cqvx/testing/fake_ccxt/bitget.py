"""A thinner wire-level fake Bitget v2 mix (``productType=USDT-FUTURES``, one-way mode).

Signing (https://www.bitget.com/api-doc/common/signature): headers ``ACCESS-KEY``,
``ACCESS-PASSPHRASE``, ``ACCESS-TIMESTAMP`` (ms) and ``ACCESS-SIGN`` = base64 HMAC-SHA256(secret,
``timestamp + METHOD + requestPath + ("?" + queryString when there is one) + body``).

Envelope: ``{"code":"00000","msg":"success","requestTime":ms,"data":...}``; errors are HTTP 400 with the
code in the same envelope (https://www.bitget.com/api-doc/contract/error-code/restapi): 40006 bad
key, 40011 bad passphrase, 40009 bad signature, 40008 timestamp expired, 40786 duplicate
``clientOid`` (https://bitgetlimited.github.io/apidoc/en/mix/ error table: "Duplicate clientOid"),
40762 amount exceeds the balance, 40768 order does not exist; HTTP 429 ``{"code":"429"}`` when rate
limited.  Place and cancel answer ``{orderId, clientOid}`` only (an ack).

Stream (https://www.bitget.com/api-doc/common/websocket-intro, .../contract/websocket/private/Order-Channel):
``/v2/ws/private``; ``{"op":"login","args":[{"apiKey","passphrase","timestamp": unix s,
"sign": base64 HMAC-SHA256(secret, timestamp + "GET" + "/user/verify")}]}``, then
``{"op":"subscribe","args":[{"instType":"USDT-FUTURES","channel":"orders","instId":"default"}]}``;
``ping`` is answered ``pong``; updates are ``{"action":"snapshot","arg":{...},"data":[order...],"ts"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any

from aiohttp import web

from cqc.venues.v1 import order_pb2
from cqvx.errors import DuplicateOrder, InsufficientFunds, NotFound, VenueError
from cqvx.testing.fake_ccxt import _ledgers
from cqvx.testing.fake_ccxt import _sim_shapes as sim_shapes
from cqvx.testing.fake_ccxt._base import Refused, SimFake, dec_text
from cqvx.testing.fake_ccxt.bitget_ws import BitgetPublic
from cqvx.types import OrderFilter
from cqvx.venues.sim.config import InstrumentSpec

__all__ = ["FakeBitget"]

_PRODUCT = "USDT-FUTURES"
_STATE = {
    order_pb2.ORDER_STATUS_PENDING_NEW: "live",
    order_pb2.ORDER_STATUS_OPEN: "live",
    order_pb2.ORDER_STATUS_PARTIALLY_FILLED: "partially_filled",
    order_pb2.ORDER_STATUS_FILLED: "filled",
    order_pb2.ORDER_STATUS_CANCELLED: "canceled",
    order_pb2.ORDER_STATUS_PENDING_CANCEL: "canceled",
    order_pb2.ORDER_STATUS_REJECTED: "canceled",
    order_pb2.ORDER_STATUS_EXPIRED: "canceled",
    order_pb2.ORDER_STATUS_FAILED: "canceled",
}
_FORCE_IN = {"ioc": order_pb2.TIME_IN_FORCE_IOC, "fok": order_pb2.TIME_IN_FORCE_FOK}
_FORCE_OUT = {order_pb2.TIME_IN_FORCE_IOC: "ioc", order_pb2.TIME_IN_FORCE_FOK: "fok"}


# Batch Order / Batch Cancel: "maximum length: 50" (orderList / orderIdList).
BATCH_MAX = 50


class FakeBitget(SimFake):
    """``async with FakeBitget(api_key, secret, passphrase) as fake:``."""

    public_feed = BitgetPublic

    @staticmethod
    def venue_symbol(canonical: str) -> str:
        base, quote, *_ = canonical.split("-")
        return base + quote

    def setup_routes(self, app: web.Application) -> None:
        for path, handler in (
            ("/api/v2/public/time", self._time),
            ("/api/v2/spot/public/coins", self._coins),
            ("/api/v2/mix/market/contracts", self._contracts),
            ("/api/v2/mix/market/merge-depth", self._depth),
            ("/api/v2/mix/market/orderbook", self._depth),
            ("/api/v2/mix/market/ticker", self._ticker),
            ("/api/v2/mix/market/current-fund-rate", self._funding),
            ("/api/v2/mix/market/history-fund-rate", self._funding_history),
            ("/api/v2/mix/market/candles", self._candles),
            ("/api/v2/mix/market/history-candles", self._candles),
        ):
            self.route(app, "GET", path, handler, signed=False)
        for method, path, handler in (
            ("POST", "/api/v2/mix/order/place-order", self._create),
            ("GET", "/api/v2/mix/order/detail", self._detail),
            ("POST", "/api/v2/mix/order/cancel-order", self._cancel),
            ("POST", "/api/v2/mix/order/batch-place-order", self._batch_place),
            ("POST", "/api/v2/mix/order/batch-cancel-orders", self._batch_cancel),
            ("GET", "/api/v2/mix/order/orders-pending", self._pending),
            ("GET", "/api/v2/mix/order/orders-history", self._history),
            ("GET", "/api/v2/mix/account/accounts", self._accounts),
            ("GET", "/api/v2/mix/account/account", self._account),
            ("GET", "/api/v2/mix/position/all-position", self._positions),
            ("GET", "/api/v2/mix/position/single-position", self._positions),
            ("GET", "/api/v2/mix/account/bill", self._bills),
        ):
            self.route(app, method, path, handler, signed=True)
        app.router.add_get("/v2/ws/private", self._ws)
        self.public.routes(app)  # bitget_ws: the public streams

    async def _bills(self, request: web.Request, params: dict[str, Any]) -> Any:
        return await _ledgers.bitget_bills(self, request, params)  # the funding-fee ledger (_ledgers)

    # -- dialect ---------------------------------------------------------------------------------

    def _sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self.secret, text.encode(), hashlib.sha256).digest()).decode()

    async def verify(self, request: web.Request, body: bytes) -> None:
        h = request.headers
        if h.get("ACCESS-KEY") != self.api_key:
            raise Refused(400, "40006", "Invalid ACCESS_KEY")
        if h.get("ACCESS-PASSPHRASE") != self.passphrase:
            raise Refused(400, "40011", "Invalid ACCESS_PASSPHRASE")
        stamp = h.get("ACCESS-TIMESTAMP", "")
        # requestPath and query exactly as sent (raw_path keeps the client's encoding).
        prehash = stamp + request.method + request.raw_path + body.decode()
        if not hmac.compare_digest(h.get("ACCESS-SIGN", ""), self._sign(prehash)):
            self.bad_signatures += 1
            raise Refused(400, "40009", "sign signature error")
        if not stamp.isdigit() or abs(time.time() * 1000 - int(stamp)) > 30_000:
            raise Refused(400, "40008", "Request timestamp expired")

    def ok(self, payload: Any) -> Any:
        return {"code": "00000", "msg": "success", "requestTime": int(time.time() * 1000), "data": payload}

    def failure(self, err: Refused) -> tuple[int, Any]:
        return err.status, {
            "code": err.code,
            "msg": err.msg,
            "requestTime": int(time.time() * 1000),
            "data": None,
        }

    def rate_limited_answer(self) -> tuple[int, dict[str, Any]]:
        return 429, {"code": "429", "msg": "Too Many Requests", "requestTime": 0, "data": None}

    def refusal(self, err: VenueError, op: str) -> Refused:
        if isinstance(err, DuplicateOrder):
            return Refused(400, "40786", "Duplicate clientOid")
        if isinstance(err, InsufficientFunds):
            return Refused(400, "40762", "The order amount exceeds the balance")
        if isinstance(err, NotFound):
            return Refused(400, "40768", "Order does not exist")
        return Refused(400, "40808", f"Parameter verification exception {err.message}")

    def unknown_symbol(self, venue_symbol: str) -> Refused:
        return Refused(400, "40034", f"Parameter {venue_symbol} does not exist")

    # -- shapes ----------------------------------------------------------------------------------

    def _order(self, o: order_pb2.Order) -> dict[str, Any]:
        state = _STATE.get(o.status, "live")
        filled = Decimal(o.filled_quantity or "0")
        if state == "live" and filled > 0:
            state = "partially_filled"
        created, updated = sim_shapes.ms(o.created_at), sim_shapes.ms(o.updated_at)
        return {
            "symbol": self.venue_symbol(o.symbol),
            "size": o.quantity,
            "orderId": self.wire_id(o.order_id),
            "clientOid": o.client_order_id,
            "baseVolume": dec_text(filled),
            "fee": ("-" + o.total_fees) if o.total_fees and o.total_fees != "0" else "0",
            "price": o.price or "",
            "priceAvg": o.average_fill_price or "",
            "state": state,
            "status": state,
            "side": "buy" if o.side == order_pb2.ORDER_SIDE_BUY else "sell",
            "force": "post_only" if o.post_only else _FORCE_OUT.get(o.time_in_force, "gtc"),
            "totalProfits": "0",
            "posSide": "net",
            "marginCoin": "USDT",
            "quoteVolume": dec_text(filled * Decimal(o.average_fill_price or "0")),
            "leverage": "10",
            "marginMode": "crossed",
            "reduceOnly": "YES" if o.reduce_only else "NO",
            "enterPointSource": "API",
            "tradeSide": "sell_single" if o.side == order_pb2.ORDER_SIDE_SELL else "buy_single",
            "posMode": "one_way_mode",
            "orderType": "limit" if o.order_type == order_pb2.ORDER_TYPE_LIMIT else "market",
            "orderSource": "normal",
            "cTime": str(created),
            "uTime": str(updated or created),
        }

    def _contract(self, spec: InstrumentSpec) -> dict[str, Any]:
        return {
            "symbol": self.venue_symbol(spec.symbol),
            "baseCoin": spec.base_asset,
            "quoteCoin": spec.quote_asset,
            "buyLimitPriceRatio": "0.05",
            "sellLimitPriceRatio": "0.05",
            "feeRateUpRatio": "0.005",
            "makerFeeRate": str(spec.maker_fee),
            "takerFeeRate": str(spec.taker_fee),
            "openCostUpRatio": "0.01",
            "supportMarginCoins": [spec.quote_asset],
            "minTradeNum": str(spec.min_quantity),
            "priceEndStep": "1",
            "volumePlace": str(sim_shapes.places(spec.lot_size)),
            "pricePlace": str(sim_shapes.places(spec.tick_size)),
            "sizeMultiplier": str(spec.lot_size),
            "symbolType": "perpetual",
            "minTradeUSDT": str(spec.min_notional),
            "maxSymbolOrderNum": "200",
            "maxProductOrderNum": "400",
            "maxPositionNum": "150",
            "symbolStatus": "normal",
            "offTime": "-1",
            "limitOpenTime": "-1",
            "deliveryTime": "",
            "deliveryStartTime": "",
            "launchTime": "",
            "fundInterval": str(spec.funding_interval_seconds // 3600),
            "minLever": "1",
            "maxLever": dec_text(spec.max_leverage),
            "posLimit": "0.05",
            "maintainTime": "",
        }

    # -- public ----------------------------------------------------------------------------------

    async def _time(self, request: web.Request, params: dict[str, Any]) -> Any:
        return {"serverTime": str(int(time.time() * 1000))}

    async def _coins(self, request: web.Request, params: dict[str, Any]) -> Any:
        return []  # the fake lists no deposit/withdrawal chains

    async def _contracts(self, request: web.Request, params: dict[str, Any]) -> Any:
        if str(params.get("productType", "")).upper() != _PRODUCT:
            return []
        return [self._contract(s) for s in self.perps.values()]

    async def _depth(self, request: web.Request, params: dict[str, Any]) -> Any:
        limit = str(params.get("limit", "100"))
        book = await self.sim.get_order_book(
            self.canonical(params.get("symbol", "")), int(limit) if limit.isdigit() else 100
        )
        at = sim_shapes.ms(book.timestamp) or int(time.time() * 1000)
        return {
            "asks": [[lv.price, lv.quantity] for lv in book.asks],
            "bids": [[lv.price, lv.quantity] for lv in book.bids],
            "precision": "scale0",
            "scale": "0.01",
            "isMaxPrecision": "NO",
            "ts": str(at),
        }

    async def _ticker(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = params.get("symbol", "")
        canonical = self.canonical(symbol)
        price = await self.sim.get_latest_price(canonical)
        rate = await self.sim.get_funding_rate(canonical)
        return [
            {
                "symbol": symbol,
                "lastPr": price.last,
                "askPr": price.ask,
                "bidPr": price.bid,
                "bidSz": price.bid_size or "0",
                "askSz": price.ask_size or "0",
                "high24h": price.last,
                "low24h": price.last,
                "ts": str(int(time.time() * 1000)),
                "change24h": "0",
                "baseVolume": "0",
                "quoteVolume": "0",
                "usdtVolume": "0",
                "openUtc": price.last,
                "changeUtc24h": "0",
                "indexPrice": rate.index_price or price.last,
                "fundingRate": rate.rate,
                "holdingAmount": "0",
                "deliveryStartTime": None,
                "deliveryTime": None,
                "deliveryStatus": "",
                "open24h": price.last,
                "markPrice": rate.mark_price or price.last,
            }
        ]

    async def _funding(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = params.get("symbol", "")
        rate = await self.sim.get_funding_rate(self.canonical(symbol))
        row = {"symbol": symbol, "fundingRate": rate.rate, "fundingRateInterval": "8"}
        return [row | {"nextUpdate": str(sim_shapes.ms(rate.next_funding_time)), "minFundingRate": "-0.003"}]

    async def _funding_history(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = params.get("symbol", "")
        rate = await self.sim.get_funding_rate(self.canonical(symbol))
        at = sim_shapes.ms(rate.funding_time) or int(time.time() * 1000)
        return [{"symbol": symbol, "fundingRate": rate.rate, "fundingTime": str(at)}]

    async def _candles(self, request: web.Request, params: dict[str, Any]) -> Any:
        widths = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1H": 3600, "4H": 14400, "1D": 86400}
        found = await sim_shapes.candles(
            self.sim,
            self.canonical(params.get("symbol", "")),
            widths.get(str(params.get("granularity", "")), 0),
            params.get("limit"),
        )
        if found is None:
            raise Refused(400, "40034", "Parameter granularity does not exist")
        return [
            [str(sim_shapes.ms(c.open_time)), c.open, c.high, c.low, c.close, c.volume, c.quote_volume or "0"]
            for c in found
        ]

    # -- orders ----------------------------------------------------------------------------------

    def _product(self, params: dict[str, Any]) -> None:
        if str(params.get("productType", "")).upper() != _PRODUCT:
            raise Refused(400, "40034", "Parameter productType does not exist")

    async def _create(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._product(params)
        canonical = self.canonical(str(params.get("symbol", "")))
        kind, side, force = (
            params.get("orderType"),
            params.get("side"),
            str(params.get("force", "gtc")).lower(),
        )
        if kind not in ("limit", "market") or side not in ("buy", "sell"):
            raise Refused(400, "40034", "Parameter orderType or side does not exist")
        if (
            params.get("marginMode") not in ("crossed", "isolated")
            or params.get("marginCoin", "").upper() != "USDT"
        ):
            raise Refused(400, "40034", "Parameter marginMode or marginCoin does not exist")
        order = order_pb2.Order(
            symbol=canonical,
            client_order_id=str(params.get("clientOid", "")),
            side=order_pb2.ORDER_SIDE_BUY if side == "buy" else order_pb2.ORDER_SIDE_SELL,
            order_type=order_pb2.ORDER_TYPE_LIMIT if kind == "limit" else order_pb2.ORDER_TYPE_MARKET,
            quantity=self.to_base(params.get("size", "")),
            price=str(params.get("price", "")) if kind == "limit" else "",
            post_only=force == "post_only",
            reduce_only=params.get("reduceOnly") == "YES",
            time_in_force=_FORCE_IN.get(force, order_pb2.TIME_IN_FORCE_GTC),
        )
        if kind == "market":
            order.time_in_force = order_pb2.TIME_IN_FORCE_IOC
        placed = await self.place(order)
        return {"orderId": self.wire_id(placed.order_id), "clientOid": placed.client_order_id}

    async def _detail(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._product(params)
        canonical = self.canonical(str(params.get("symbol", "")))
        return self._order(await self.lookup(canonical, params.get("orderId"), params.get("clientOid")))

    async def _cancel(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._product(params)
        canonical = self.canonical(str(params.get("symbol", "")))
        done = await self.cancel(canonical, params.get("orderId"), params.get("clientOid"))
        return {"orderId": self.wire_id(done.order_id), "clientOid": done.client_order_id}

    # -- batch (and cancel-all through batch-cancel-orders) ----------------------------------------

    async def _batch_place(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Batch Order (https://www.bitget.com/api-doc/contract/trade/Batch-Order): ``orderList`` of at
        most 50, each placed on its own; ``successList`` {orderId, clientOid} and ``failureList``
        {orderId, clientOid, errorMsg, errorCode}."""
        self._product(params)
        items = params.get("orderList")
        if not isinstance(items, list) or not items or len(items) > BATCH_MAX:
            raise Refused(400, "40034", f"Parameter orderList must hold 1 to {BATCH_MAX} orders")
        shared: dict[str, Any] = {
            k: params[k] for k in ("symbol", "productType", "marginMode", "marginCoin") if k in params
        }
        success, failure = [], []
        for item in items:
            one = item if isinstance(item, dict) else {}
            try:
                success.append(await self._create(request, shared | one))
            except Refused as err:
                coid = str(one.get("clientOid", ""))
                failure.append({"orderId": "", "clientOid": coid, "errorMsg": err.msg, "errorCode": err.code})
        return {"successList": success, "failureList": failure}

    async def _batch_cancel(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Batch Cancel (https://www.bitget.com/api-doc/contract/trade/Batch-Cancel-Orders):
        ``orderIdList`` (at most 50, each ``orderId`` or ``clientOid``) needs ``symbol``; without it
        every open order of the symbol (or of the product type) is cancelled."""
        self._product(params)
        symbol = params.get("symbol")
        items = params.get("orderIdList")
        if items is None:
            canonical = self.canonical(str(symbol)) if symbol else None
            targets = [
                {"orderId": self.wire_id(o.order_id), "_symbol": o.symbol}
                for o in await self.sim.get_orders(OrderFilter(symbol=canonical))
                if o.symbol in self.perp_symbols()
            ]
        else:
            if not symbol:
                raise Refused(400, "40034", "Parameter symbol does not exist")
            if not isinstance(items, list) or not items or len(items) > BATCH_MAX:
                raise Refused(400, "40034", f"Parameter orderIdList must hold 1 to {BATCH_MAX} ids")
            canonical = self.canonical(str(symbol))
            targets = [(i if isinstance(i, dict) else {}) | {"_symbol": canonical} for i in items]
        success, failure = [], []
        for t in targets:
            oid, coid = t.get("orderId") or None, t.get("clientOid") or None
            try:
                done = await self.cancel(str(t["_symbol"]), oid, coid)
            except Refused as err:
                failure.append(
                    {
                        "orderId": oid or "",
                        "clientOid": coid or "",
                        "errorMsg": err.msg,
                        "errorCode": err.code,
                    }
                )
                continue
            success.append({"orderId": self.wire_id(done.order_id), "clientOid": done.client_order_id})
        return {"successList": success, "failureList": failure}

    async def _orders(self, params: dict[str, Any], statuses: frozenset[int]) -> Any:
        self._product(params)
        symbol = params.get("symbol")
        canonical = self.canonical(symbol) if symbol else None
        orders = await self.sim.get_orders(OrderFilter(symbol=canonical, statuses=statuses))
        rows = [self._order(o) for o in orders if o.symbol in self.perp_symbols()]
        return {"entrustedList": rows or None, "endId": rows[-1]["orderId"] if rows else None}

    async def _pending(self, request: web.Request, params: dict[str, Any]) -> Any:
        return await self._orders(params, frozenset())

    async def _history(self, request: web.Request, params: dict[str, Any]) -> Any:
        return await self._orders(params, frozenset(_STATE))

    # -- account ---------------------------------------------------------------------------------

    async def _accounts(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._product(params)
        m = await sim_shapes.margin(self.sim, self.perp_symbols())
        # The USDT row carries the perpetual positions: accountEquity includes the unrealized PnL.
        usdt = {
            "accountEquity": dec_text(m.wallet + m.upl),
            "usdtEquity": dec_text(m.wallet + m.upl),
            "unrealizedPL": dec_text(m.upl),
            "crossedMargin": None,  # null, as in the documented sample (not read)
            "isolatedMargin": None,
        }
        return [row | (usdt if row["marginCoin"] == "USDT" else {}) for row in await self._account_rows()]

    async def _account_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "marginCoin": b.asset,
                "locked": b.locked or "0",
                "available": b.available or "0",
                "crossedMaxAvailable": b.available or "0",
                "isolatedMaxAvailable": b.available or "0",
                "maxTransferOut": b.available or "0",
                "accountEquity": b.total or "0",
                "usdtEquity": b.total or "0",
                "btcEquity": "0",
                "crossedRiskRate": "0",
                "unrealizedPL": "0",
                "coupon": "0",
                "crossedUnrealizedPL": "0",
                "isolatedUnrealizedPL": "0",
            }
            for b in await self.sim.get_balances()
        ]

    async def _account(self, request: web.Request, params: dict[str, Any]) -> Any:
        # Get Single Account (https://www.bitget.com/api-doc/contract/account/Get-Single-Account):
        # symbol, productType and marginCoin required; posMode "one_way_mode" | "hedge_mode".
        self._product(params)
        self.canonical(str(params.get("symbol", "")).upper())
        coin = str(params.get("marginCoin", "")).upper()
        balance = next((b for b in await self.sim.get_balances() if b.asset == coin), None)
        if balance is None:
            raise Refused(400, "40034", "Parameter marginCoin does not exist")
        return {
            "marginCoin": coin,
            "locked": balance.locked or "0",
            "available": balance.available or "0",
            "accountEquity": balance.total or "0",
            "usdtEquity": balance.total or "0",
            "crossedMarginLeverage": 20,
            "isolatedLongLever": 20,
            "isolatedShortLever": 20,
            "marginMode": "crossed",
            "posMode": "hedge_mode" if self.hedge_mode else "one_way_mode",
            "unrealizedPL": "0",
            "coupon": "0",
            "assetMode": "single",
        }

    async def _positions(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._product(params)
        symbol = params.get("symbol")
        wanted = {self.canonical(symbol)} if symbol else self.perp_symbols()
        return [
            {
                "marginCoin": "USDT",
                "symbol": self.venue_symbol(p.symbol),
                "holdSide": sim_shapes.position_side(p, "long", "short", "long"),
                "openDelegateSize": "0",
                "marginSize": "0",
                "available": p.quantity or "0",
                "locked": "0",
                "total": p.quantity or "0",
                "leverage": p.leverage or "1",
                "achievedProfits": p.realized_pnl or "0",
                "openPriceAvg": p.entry_price or "0",
                "marginMode": "isolated" if sim_shapes.isolated(p) else "crossed",
                "posMode": "one_way_mode",
                "unrealizedPL": p.unrealized_pnl or "0",
                "liquidationPrice": p.liquidation_price or "0",
                "keepMarginRate": "0.004",
                "markPrice": p.mark_price or "0",
                "marginRatio": "0",
                "cTime": str(sim_shapes.ms(p.updated_at)),
                "uTime": str(sim_shapes.ms(p.updated_at)),
            }
            for p in await self.sim.get_positions()
            if p.symbol in wanted
        ]

    # -- the order stream ------------------------------------------------------------------------

    def order_push(self, order: order_pb2.Order) -> Any:
        row = self._order(order)
        row |= {"instId": row["symbol"], "accBaseVolume": row["baseVolume"], "notionalUsd": "0"}
        arg = {"instType": _PRODUCT, "channel": "orders", "instId": "default"}
        return {"action": "snapshot", "arg": arg, "data": [row], "ts": int(time.time() * 1000)}

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        state = {"authed": False}

        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            if text == "ping":
                await ws.send_str("pong")
                return
            try:
                msg = json.loads(text)
            except ValueError:
                await ws.send_json({"event": "error", "code": 30001, "msg": "Invalid request"})
                return
            op, args = msg.get("op"), msg.get("args") or [{}]
            if op == "login":
                a = args[0] if isinstance(args[0], dict) else {}
                stamp = str(a.get("timestamp", ""))
                fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 30
                good = self._sign(stamp + "GET" + "/user/verify")
                state["authed"] = (
                    a.get("apiKey") == self.api_key
                    and a.get("passphrase") == self.passphrase
                    and fresh
                    and hmac.compare_digest(str(a.get("sign", "")), good)
                )
                if state["authed"]:
                    await ws.send_json({"event": "login", "code": 0, "msg": ""})
                else:
                    self.bad_signatures += 1
                    await ws.send_json({"event": "error", "code": 30005, "msg": "Login failed"})
            elif op == "subscribe":
                for arg in args:
                    if not state["authed"]:
                        await ws.send_json(
                            {"event": "error", "arg": arg, "code": 30004, "msg": "User needs to log in"}
                        )
                    elif arg.get("channel") == "orders" and str(arg.get("instType", "")).upper() == _PRODUCT:
                        await ws.send_json({"event": "subscribe", "arg": arg})
                        self.order_sockets.add(ws)
                    else:
                        await ws.send_json(
                            {"event": "error", "arg": arg, "code": 30001, "msg": "channel does not exist"}
                        )

        return await self.serve_ws(request, on_text)
