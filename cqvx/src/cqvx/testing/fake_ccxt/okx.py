"""A thinner wire-level fake OKX v5: ``instType=SWAP`` (USDT-margined perpetuals, one-way ``net_mode``)
and ``instType=SPOT`` (cash mode, :mod:`.okx_spot`).

Signing (https://www.okx.com/docs-v5/en/#overview-rest-authentication): headers ``OK-ACCESS-KEY``,
``OK-ACCESS-PASSPHRASE``, ``OK-ACCESS-TIMESTAMP`` (ISO-8601 UTC with milliseconds) and
``OK-ACCESS-SIGN`` = base64 HMAC-SHA256(secret, ``timestamp + METHOD + requestPath(+ "?" + query) +
body``); a timestamp more than 30 s away from the server's is refused (50102).  Auth failures are HTTP
401 with 50111 (key), 50105 (passphrase), 50113 (signature).

Envelope (https://www.okx.com/docs-v5/en/#error-code): ``{"code":"0","msg":"","data":[...]}``.  Trade
calls carry a per-order ``sCode``/``sMsg`` in ``data[]`` and the envelope code is ``"1"`` when the only
order failed: 51016 duplicated ``clOrdId``, 51008 insufficient margin, 51400 cancel of an order that
is gone, 51603 order does not exist (query).  Rate limit: HTTP 429 with 50011.

Swap quantities are contracts: ``ctVal`` base units each (:attr:`FakeOkx.contract_size`); spot
quantities are base units (:meth:`FakeOkx.unit`).

Stream (https://www.okx.com/docs-v5/en/#overview-websocket-login and
#order-book-trading-trade-ws-order-channel):
``/ws/v5/private``; ``{"op":"login","args":[{"apiKey","passphrase","timestamp": unix s,
"sign": base64 HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify")}]}``, then
``{"op":"subscribe","args":[{"channel":"orders","instType":"SWAP"}]}``; the text ``ping`` is answered
``pong``; updates are ``{"arg":{...},"data":[order...]}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from cqc.venues.v1 import order_pb2
from cqvx.errors import DuplicateOrder, InsufficientFunds, NotFound, VenueError
from cqvx.testing.fake_ccxt import _ledgers
from cqvx.testing.fake_ccxt import _sim_shapes as sim_shapes
from cqvx.testing.fake_ccxt._base import Refused, SimFake, dec_text
from cqvx.testing.fake_ccxt._okx_fields import INSTRUMENT_REST, ORDER_REST
from cqvx.testing.fake_ccxt.okx_account import OkxAccount
from cqvx.testing.fake_ccxt.okx_spot import OkxSpot
from cqvx.testing.fake_ccxt.okx_ws import OkxPublic
from cqvx.types import OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec

__all__ = ["FakeOkx"]

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
_ORD_TYPES = {"limit", "market", "post_only", "ioc", "fok"}


# Place multiple orders / Cancel multiple orders: "Maximum 20 orders ... per request"
# (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-multiple-orders,
# .../#order-book-trading-trade-post-cancel-multiple-orders).
BATCH_MAX = 20


class _OrderFailed(Refused):
    """A trade call whose order failed: envelope code 1, the reason in ``data[0].sCode``."""

    def __init__(self, code: str, msg: str, cl_ord_id: str = "") -> None:
        super().__init__(200, code, msg)
        self.cl_ord_id = cl_ord_id


class _BatchFailed(Refused):
    def __init__(self, rows: list[dict[str, Any]], code: str) -> None:
        super().__init__(
            200, code, "All operations failed" if code == "1" else "Batch operation partially succeeded"
        )
        self.rows = rows


class FakeOkx(SimFake):
    """``async with FakeOkx(api_key, secret, passphrase) as fake:``."""

    contract_size: ClassVar[Decimal] = Decimal("0.01")  # BTC-USDT-SWAP ctVal
    public_feed = OkxPublic

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
        self.account = OkxAccount(self)  # okx_account: config, balance, positions
        self.spot = OkxSpot(self)  # okx_spot: instType=SPOT on the same paths

    @staticmethod
    def venue_symbol(canonical: str) -> str:
        base, quote, *_ = canonical.split("-")
        return f"{base}-{quote}-SWAP"

    def canonical(self, venue_symbol: str) -> str:
        """The sim symbol of an ``instId``: a SWAP (``BTC-USDT-SWAP``) or a SPOT pair (``BTC-USDT``)."""
        return self.spot.ids().get(venue_symbol) or self.perp(venue_symbol)

    def perp(self, venue_symbol: str) -> str:
        """The sim symbol of a SWAP ``instId`` (the funding routes take no other)."""
        return super().canonical(venue_symbol)

    def unit(self, symbol: str = "") -> Decimal:
        return Decimal(1) if symbol in self.spot.symbols() else self.contract_size

    def inst_type(self, symbol: str) -> str:
        return "SPOT" if symbol in self.spot.symbols() else "SWAP"

    def setup_routes(self, app: web.Application) -> None:
        for path, handler in (
            ("/api/v5/public/time", self._time),
            ("/api/v5/public/instruments", self._instruments),
            ("/api/v5/public/funding-rate", self._funding),
            ("/api/v5/public/funding-rate-history", self._funding_history),
            ("/api/v5/public/mark-price", self._mark_price),
            ("/api/v5/market/books", self._books),
            ("/api/v5/market/ticker", self._ticker),
            ("/api/v5/market/candles", self._candles),
            ("/api/v5/market/history-candles", self._candles),
        ):
            self.route(app, "GET", path, handler, signed=False)
        for method, path, handler in (
            ("GET", "/api/v5/asset/currencies", self._currencies),
            ("POST", "/api/v5/trade/order", self._create),
            ("POST", "/api/v5/trade/batch-orders", self._batch),
            ("GET", "/api/v5/trade/order", self._get),
            ("POST", "/api/v5/trade/cancel-order", self._cancel),
            ("POST", "/api/v5/trade/cancel-batch-orders", self._cancel_batch),
            ("GET", "/api/v5/trade/orders-pending", self._pending),
            ("GET", "/api/v5/trade/orders-history", self._history),
            ("GET", "/api/v5/account/bills-archive", self._bills),
        ):
            self.route(app, method, path, handler, signed=True)
        self.account.routes(app)  # okx_account: config, balance, positions
        app.router.add_get("/ws/v5/private", self._ws)
        self.public.routes(app)  # okx_ws: the public streams

    async def _bills(self, request: web.Request, params: dict[str, Any]) -> Any:
        return await _ledgers.okx_bills(self, request, params)  # the funding-fee ledger (_ledgers)

    # -- dialect ---------------------------------------------------------------------------------

    def _sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self.secret, text.encode(), hashlib.sha256).digest()).decode()

    async def verify(self, request: web.Request, body: bytes) -> None:
        h = request.headers
        if h.get("OK-ACCESS-KEY") != self.api_key:
            raise Refused(401, "50111", "Invalid OK-ACCESS-KEY.")
        if h.get("OK-ACCESS-PASSPHRASE") != self.passphrase:
            raise Refused(401, "50105", "Invalid OK-ACCESS-PASSPHRASE.")
        stamp = h.get("OK-ACCESS-TIMESTAMP", "")
        expected = self._sign(stamp + request.method + request.raw_path + body.decode())
        if not hmac.compare_digest(h.get("OK-ACCESS-SIGN", ""), expected):
            self.bad_signatures += 1
            raise Refused(401, "50113", "Invalid Sign.")
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise Refused(401, "50112", "Invalid OK-ACCESS-TIMESTAMP.") from None
        if abs(time.time() - at) > 30:
            raise Refused(401, "50102", "Timestamp request expired.")

    def ok(self, payload: Any) -> Any:
        return {"code": "0", "msg": "", "data": payload}

    def failure(self, err: Refused) -> tuple[int, Any]:
        if isinstance(err, _BatchFailed):
            return 200, {"code": err.code, "msg": err.msg, "data": err.rows}
        if isinstance(err, _OrderFailed):
            row = {"ordId": "", "clOrdId": err.cl_ord_id, "tag": "", "sCode": err.code, "sMsg": err.msg}
            return 200, {"code": "1", "msg": "All operations failed", "data": [row]}
        return err.status, {"code": err.code, "msg": err.msg, "data": []}

    def rate_limited_answer(self) -> tuple[int, dict[str, Any]]:
        return 429, {"code": "50011", "msg": "Too Many Requests", "data": []}

    def refusal(self, err: VenueError, op: str) -> Refused:
        coid = getattr(err, "client_order_id", "") or ""
        if isinstance(err, DuplicateOrder):
            return _OrderFailed("51016", "Duplicated clOrdId", coid)
        if isinstance(err, InsufficientFunds):
            return _OrderFailed("51008", "Order failed. Insufficient USDT margin in account", coid)
        if isinstance(err, NotFound):
            if op == "cancel":
                return _OrderFailed(
                    "51400",
                    "Order cancellation failed as the order has been filled, canceled or does not exist",
                )
            return Refused(200, "51603", "Order does not exist")
        return _OrderFailed("51000", f"Parameter error: {err.message}", coid)

    def unknown_symbol(self, venue_symbol: str) -> Refused:
        return Refused(200, "51001", "Instrument ID does not exist")

    # -- shapes ----------------------------------------------------------------------------------

    def _order(self, o: order_pb2.Order) -> dict[str, Any]:
        if o.post_only:
            ord_type = "post_only"
        elif o.order_type == order_pb2.ORDER_TYPE_MARKET:
            ord_type = "market"
        else:
            ord_type = {order_pb2.TIME_IN_FORCE_IOC: "ioc", order_pb2.TIME_IN_FORCE_FOK: "fok"}.get(
                o.time_in_force, "limit"
            )
        state = _STATE.get(o.status, "live")
        if state == "live" and Decimal(o.filled_quantity or "0") > 0:
            state = "partially_filled"
        created, updated = sim_shapes.ms(o.created_at), sim_shapes.ms(o.updated_at)
        shape = {
            "instType": "SWAP",
            "instId": self.venue_symbol(o.symbol),
            "ccy": "",
            "ordId": self.wire_id(o.order_id),
            "clOrdId": o.client_order_id,
            "tag": "",
            "px": o.price if o.order_type == order_pb2.ORDER_TYPE_LIMIT else "",
            "sz": self.to_wire(o.quantity, o.symbol),
            "pnl": "0",
            "ordType": ord_type,
            "side": "buy" if o.side == order_pb2.ORDER_SIDE_BUY else "sell",
            "posSide": "net",
            "tdMode": "cross",
            "accFillSz": self.to_wire(o.filled_quantity, o.symbol),
            "fillPx": "",
            "tradeId": "",
            "fillSz": "0",
            "fillTime": "",
            "avgPx": o.average_fill_price or "",
            "state": state,
            "lever": "10",
            "fee": ("-" + o.total_fees) if o.total_fees and o.total_fees != "0" else "0",
            "feeCcy": o.fee_asset or "USDT",
            "reduceOnly": "true" if o.reduce_only else "false",
            "cancelSource": "",
            "category": "normal",
            "uTime": str(updated or created),
            "cTime": str(created),
        } | ORDER_REST
        if o.symbol in self.spot.symbols():
            shape |= self.spot.order_fields(o.symbol)
        return shape

    def _instrument(self, spec: InstrumentSpec) -> dict[str, Any]:
        lot = dec_text(spec.lot_size / self.contract_size)
        return {
            "instType": "SWAP",
            "instId": self.venue_symbol(spec.symbol),
            "instFamily": f"{spec.base_asset}-{spec.quote_asset}",
            "uly": f"{spec.base_asset}-{spec.quote_asset}",
            "category": "1",
            "baseCcy": "",
            "quoteCcy": "",
            "settleCcy": spec.quote_asset,
            "ctVal": dec_text(self.contract_size),
            "ctMult": "1",
            "ctValCcy": spec.base_asset,
            "ctType": "linear",
            "listTime": "1573557408000",
            "expTime": "",
            "lever": dec_text(spec.max_leverage),
            "tickSz": str(spec.tick_size),
            "lotSz": lot,
            "minSz": dec_text(spec.min_quantity / self.contract_size),
            "maxLmtSz": dec_text(spec.max_quantity / self.contract_size),
            "maxMktSz": dec_text(spec.max_quantity / self.contract_size),
            "state": "live",
            "ruleType": "normal",
        } | INSTRUMENT_REST

    # -- public ----------------------------------------------------------------------------------

    async def _time(self, request: web.Request, params: dict[str, Any]) -> Any:
        return [{"ts": str(int(time.time() * 1000))}]

    async def _instruments(self, request: web.Request, params: dict[str, Any]) -> Any:
        if params.get("instType") == "SPOT":
            return [self.spot.instrument_row(s) for s in self.spot.specs()]
        if params.get("instType") != "SWAP":
            return []
        return [self._instrument(s) for s in self.perps.values()]

    async def _currencies(self, request: web.Request, params: dict[str, Any]) -> Any:
        return []  # the fake lists no deposit/withdrawal chains

    async def _books(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = self.canonical(params.get("instId", ""))
        book = await self.sim.get_order_book(symbol, int(params.get("sz", "20")))
        side = [[lv.price, self.to_wire(lv.quantity, symbol), "0", "1"] for lv in book.asks]
        bids = [[lv.price, self.to_wire(lv.quantity, symbol), "0", "1"] for lv in book.bids]
        at = sim_shapes.ms(book.timestamp) or int(time.time() * 1000)
        return [{"asks": side, "bids": bids, "ts": str(at), "seqId": book.sequence}]

    async def _ticker(self, request: web.Request, params: dict[str, Any]) -> Any:
        inst = params.get("instId", "")
        symbol = self.canonical(inst)
        price = await self.sim.get_latest_price(symbol)
        return [
            {
                "instType": self.inst_type(symbol),
                "instId": inst,
                "last": price.last,
                "lastSz": "0",
                "askPx": price.ask,
                "askSz": self.to_wire(price.ask_size or "0", symbol),
                "bidPx": price.bid,
                "bidSz": self.to_wire(price.bid_size or "0", symbol),
                "open24h": price.last,
                "high24h": price.last,
                "low24h": price.last,
                "volCcy24h": "0",
                "vol24h": "0",
                "sodUtc0": price.last,
                "sodUtc8": price.last,
                "ts": str(int(time.time() * 1000)),
            }
        ]

    async def _funding(self, request: web.Request, params: dict[str, Any]) -> Any:
        inst = params.get("instId", "")
        symbol = self.perp(inst)
        rate = await self.sim.get_funding_rate(symbol)
        # fundingTime: the coming settlement; nextFundingTime: the one after it (one funding interval
        # of the sim's instrument later; ccxt derives the interval from the two).
        interval_ms = self.perps[inst].funding_interval_seconds * 1000
        return [
            {
                "instType": "SWAP",
                "instId": inst,
                "fundingRate": rate.rate,
                "nextFundingRate": "",
                "fundingTime": str(sim_shapes.ms(rate.next_funding_time)),
                "nextFundingTime": str(sim_shapes.ms(rate.next_funding_time) + interval_ms),
                "ts": str(int(time.time() * 1000)),
            }
        ]

    async def _mark_price(self, request: web.Request, params: dict[str, Any]) -> Any:
        inst = params.get("instId", "")
        rate = await self.sim.get_funding_rate(self.perp(inst))
        return [
            {
                "instType": "SWAP",
                "instId": inst,
                "markPx": rate.mark_price,
                "ts": str(int(time.time() * 1000)),
            }
        ]

    async def _funding_history(self, request: web.Request, params: dict[str, Any]) -> Any:
        inst = params.get("instId", "")
        rate = await self.sim.get_funding_rate(self.perp(inst))
        at = sim_shapes.ms(rate.funding_time) or int(time.time() * 1000)
        row = {"instType": "SWAP", "instId": inst, "fundingRate": rate.rate, "realizedRate": rate.rate}
        return [row | {"fundingTime": str(at), "method": "current_period"}]

    async def _candles(self, request: web.Request, params: dict[str, Any]) -> Any:
        widths = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1H": 3600, "4H": 14400, "1D": 86400}
        bar = str(params.get("bar", "1m"))
        symbol = self.canonical(params.get("instId", ""))
        found = await sim_shapes.candles(self.sim, symbol, widths.get(bar, 0), params.get("limit"))
        if found is None:
            raise Refused(400, "51000", "Parameter bar error")
        rows = [
            [
                str(sim_shapes.ms(c.open_time)),
                c.open,
                c.high,
                c.low,
                c.close,
                self.to_wire(c.volume, symbol),  # vol: contracts (SPOT: base)
                c.volume,  # volCcy: base
                c.quote_volume or "0",  # volCcyQuote
                "1",  # confirm
            ]
            for c in reversed(found)  # newest first
        ]
        return rows

    # -- orders ----------------------------------------------------------------------------------

    async def _create(self, request: web.Request, params: dict[str, Any]) -> Any:
        coid = str(params.get("clOrdId", ""))
        canonical = self.canonical(str(params.get("instId", "")))
        kind, side = params.get("ordType"), params.get("side")
        spot = canonical in self.spot.symbols()
        if kind not in _ORD_TYPES or side not in ("buy", "sell"):
            raise _OrderFailed("51000", "Parameter ordType or side error", coid)
        if spot and (why := self.spot.order_error(params)):
            raise _OrderFailed("51000", why, coid)
        if not spot and params.get("tdMode") not in ("cross", "isolated"):
            raise _OrderFailed("51000", "Parameter tdMode error", coid)
        order = order_pb2.Order(
            symbol=canonical,
            client_order_id=coid,
            side=order_pb2.ORDER_SIDE_BUY if side == "buy" else order_pb2.ORDER_SIDE_SELL,
            order_type=order_pb2.ORDER_TYPE_MARKET if kind == "market" else order_pb2.ORDER_TYPE_LIMIT,
            quantity=self.to_base(params.get("sz", ""), canonical),
            price=str(params.get("px", "")) if kind != "market" else "",
            post_only=kind == "post_only",
            reduce_only=not spot and params.get("reduceOnly") in (True, "true"),
            time_in_force={"ioc": order_pb2.TIME_IN_FORCE_IOC, "fok": order_pb2.TIME_IN_FORCE_FOK}.get(
                str(kind), order_pb2.TIME_IN_FORCE_GTC
            ),
        )
        if kind == "market":
            order.time_in_force = order_pb2.TIME_IN_FORCE_IOC
        placed = await self.place(order)
        row = {"ordId": self.wire_id(placed.order_id), "clOrdId": coid, "tag": ""}
        return [row | {"ts": str(int(time.time() * 1000)), "sCode": "0", "sMsg": "Order placed"}]

    async def _batch(self, request: web.Request, params: dict[str, Any]) -> Any:
        """``/trade/batch-orders`` (ccxt's default for one order too): per-order ``sCode``; the
        envelope says 0 all placed, 1 none, 2 some (raised so that :meth:`failure` shapes it)."""
        items = params.get("_body")
        if not isinstance(items, list) or not items or len(items) > BATCH_MAX:
            raise Refused(400, "51000", f"Parameter error: 1 to {BATCH_MAX} orders")
        rows = []
        for item in items:
            one = item if isinstance(item, dict) else {}
            try:
                rows.extend(await self._create(request, one))
            except Refused as err:
                coid = str(one.get("clOrdId", ""))
                rows.append({"ordId": "", "clOrdId": coid, "tag": "", "sCode": err.code, "sMsg": err.msg})
        failed = sum(1 for r in rows if r["sCode"] != "0")
        if failed:
            raise _BatchFailed(rows, "1" if failed == len(rows) else "2")
        return rows

    async def _cancel_batch(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Cancel multiple orders (``/trade/cancel-batch-orders``, at most 20, each ``ordId`` or
        ``clOrdId`` with its ``instId``): per-order ``sCode``, envelope 0 / 1 / 2 as for placement."""
        items = params.get("_body")
        if not isinstance(items, list) or not items or len(items) > BATCH_MAX:
            raise Refused(400, "51000", f"Parameter error: 1 to {BATCH_MAX} orders")
        rows = []
        for item in items:
            one = item if isinstance(item, dict) else {}
            try:
                rows.extend(await self._cancel(request, one))
            except Refused as err:
                oid, coid = str(one.get("ordId", "")), str(one.get("clOrdId", ""))
                rows.append({"ordId": oid, "clOrdId": coid, "sCode": err.code, "sMsg": err.msg})
        failed = sum(1 for r in rows if r["sCode"] != "0")
        if failed:
            raise _BatchFailed(rows, "1" if failed == len(rows) else "2")
        return rows

    async def _get(self, request: web.Request, params: dict[str, Any]) -> Any:
        canonical = self.canonical(str(params.get("instId", "")))
        return [self._order(await self.lookup(canonical, params.get("ordId"), params.get("clOrdId")))]

    async def _cancel(self, request: web.Request, params: dict[str, Any]) -> Any:
        canonical = self.canonical(str(params.get("instId", "")))
        done = await self.cancel(canonical, params.get("ordId"), params.get("clOrdId"))
        row = {"ordId": self.wire_id(done.order_id), "clOrdId": done.client_order_id}
        return [row | {"ts": str(int(time.time() * 1000)), "sCode": "0", "sMsg": ""}]

    async def _orders(self, params: dict[str, Any], statuses: frozenset[int]) -> Any:
        inst = params.get("instId")
        canonical = self.canonical(inst) if inst else None
        orders = await self.sim.get_orders(OrderFilter(symbol=canonical, statuses=statuses))
        # instType SPOT | SWAP narrows the list (none: both kinds the fake serves).
        kind = params.get("instType")
        by_type = {"SPOT": self.spot.symbols(), "SWAP": self.perp_symbols()}
        wanted = set().union(*by_type.values()) if kind is None else by_type.get(str(kind), set())
        return [self._order(o) for o in orders if o.symbol in wanted]

    async def _pending(self, request: web.Request, params: dict[str, Any]) -> Any:
        return await self._orders(params, frozenset())

    async def _history(self, request: web.Request, params: dict[str, Any]) -> Any:
        done = frozenset(_STATE) - {order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PENDING_NEW}
        return await self._orders(params, done - {order_pb2.ORDER_STATUS_PARTIALLY_FILLED})

    # -- the order stream ------------------------------------------------------------------------

    def order_push(self, order: order_pb2.Order) -> Any:
        row = self._order(order) | {"execType": ""}  # T/M on a fill; the fake pushes order states
        arg = {"channel": "orders", "instType": self.inst_type(order.symbol), "uid": "1"}
        return {"arg": arg, "data": [row]}

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        state = {"authed": False}

        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            if text == "ping":
                await ws.send_str("pong")
                return
            try:
                msg = json.loads(text)
            except ValueError:
                await ws.send_json({"event": "error", "code": "60012", "msg": f"Invalid request: {text}"})
                return
            op, args = msg.get("op"), msg.get("args") or [{}]
            if op == "login":
                a = args[0] if isinstance(args[0], dict) else {}
                stamp = str(a.get("timestamp", ""))
                good = self._sign(stamp + "GET" + "/users/self/verify")
                fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 30
                state["authed"] = (
                    a.get("apiKey") == self.api_key
                    and a.get("passphrase") == self.passphrase
                    and fresh
                    and hmac.compare_digest(str(a.get("sign", "")), good)
                )
                if state["authed"]:
                    await ws.send_json({"event": "login", "code": "0", "msg": "", "connId": "fake"})
                else:
                    self.bad_signatures += 1
                    await ws.send_json(
                        {"event": "error", "code": "60009", "msg": "Login failed.", "connId": "fake"}
                    )
            elif op == "subscribe":
                for arg in args:
                    if not state["authed"]:
                        await ws.send_json(
                            {"event": "error", "code": "60011", "msg": "Please log in", "connId": "fake"}
                        )
                    elif arg.get("channel") == "orders":
                        await ws.send_json({"event": "subscribe", "arg": arg, "connId": "fake"})
                        self.order_sockets.add(ws)
                    else:
                        await ws.send_json(
                            {
                                "event": "error",
                                "code": "60018",
                                "msg": f"Wrong URL or channel:{arg.get('channel')}",
                            }
                        )

        return await self.serve_ws(request, on_text)
