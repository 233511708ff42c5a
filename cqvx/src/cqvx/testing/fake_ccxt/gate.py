"""A thinner wire-level fake Gate v4 futures (``settle=usdt``, single position mode).

Signing (https://www.gate.com/docs/developers/apiv4/en/#apiv4-signed-request-requirements): headers
``KEY``, ``Timestamp`` (unix seconds) and ``SIGN`` = hex HMAC-SHA512(secret, ``METHOD + "\\n" + path +
"\\n" + query + "\\n" + hex SHA512(body) + "\\n" + timestamp``); a timestamp more than 60 s away is
refused.  Errors are ``{"label","message"}`` with an HTTP status
(https://www.gate.com/docs/developers/apiv4/en/#label-list): 401 INVALID_KEY / INVALID_SIGNATURE /
REQUEST_EXPIRED, 400 INSUFFICIENT_AVAILABLE, 404 ORDER_NOT_FOUND, 429 TOO_MANY_REQUESTS.

Quantities are signed whole contracts (positive buys, negative sells) of ``quanto_multiplier`` base
units (:attr:`FakeGate.contract_size`).  The order ``text`` must start with ``t-``; Gate documents no
uniqueness for it, so a reused text is accepted as another order (kept here, not in the sim), and an
order is found by its text as well as its id (``/orders/{order_id}``: "order ID or custom text").

Stream (https://www.gate.com/docs/developers/futures/ws/en/#orders-api): ``/v4/ws/usdt``;
``{"time","channel":"futures.orders","event":"subscribe","payload":[user_id,"!all"],"auth":{"method":
"api_key","KEY","SIGN": hex HMAC-SHA512(secret, "channel=futures.orders&event=subscribe&time=" + time)}}``;
``{"channel":"futures.ping"}`` is answered ``futures.pong``; updates are ``event: "update"`` with
``result: [order...]``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from cqc.venues.v1 import order_pb2
from cqvx.errors import InsufficientFunds, NotFound, VenueError
from cqvx.testing.fake_ccxt import _ledgers
from cqvx.testing.fake_ccxt import _sim_shapes as sim_shapes
from cqvx.testing.fake_ccxt._base import Refused, SimFake, dec_text
from cqvx.testing.fake_ccxt.gate_ws import GatePublic
from cqvx.types import OrderFilter
from cqvx.venues.sim.config import InstrumentSpec

__all__ = ["USER_ID", "FakeGate"]

_OPEN = {
    order_pb2.ORDER_STATUS_PENDING_NEW,
    order_pb2.ORDER_STATUS_OPEN,
    order_pb2.ORDER_STATUS_PARTIALLY_FILLED,
}
_FINISH_AS = {
    order_pb2.ORDER_STATUS_FILLED: "filled",
    order_pb2.ORDER_STATUS_CANCELLED: "cancelled",
    order_pb2.ORDER_STATUS_PENDING_CANCEL: "cancelled",
    order_pb2.ORDER_STATUS_REJECTED: "cancelled",
    order_pb2.ORDER_STATUS_EXPIRED: "ioc",
    order_pb2.ORDER_STATUS_FAILED: "cancelled",
}
_TIF_IN = {"ioc": order_pb2.TIME_IN_FORCE_IOC, "fok": order_pb2.TIME_IN_FORCE_FOK}
_TIF_OUT = {order_pb2.TIME_IN_FORCE_IOC: "ioc", order_pb2.TIME_IN_FORCE_FOK: "fok"}
_USER = 1000001
USER_ID = str(_USER)  # the account's Gate user id (the order channel's payload names it)
_API = "/api/v4"


# Place batch futures orders: "Up to 10 orders per request"; Cancel batch orders by specified ID
# list: "maximum 20 records per request" (Gate APIv4 futures).
BATCH_PLACE_MAX = 10
BATCH_CANCEL_MAX = 20


class FakeGate(SimFake):
    """``async with FakeGate(api_key, secret) as fake:``."""

    contract_size: ClassVar[Decimal] = Decimal("0.0001")  # BTC_USDT quanto_multiplier
    public_feed = GatePublic
    public: GatePublic

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.texts: dict[str, str] = {}  # sim order id -> Gate "text" (Gate's, not the sim's, id)

    @staticmethod
    def venue_symbol(canonical: str) -> str:
        base, quote, *_ = canonical.split("-")
        return f"{base}_{quote}"

    def setup_routes(self, app: web.Application) -> None:
        f = f"{_API}/futures/{{settle}}"
        for path, handler in (
            (f"{_API}/spot/time", self._time),
            (f"{_API}/spot/currencies", self._currencies),
            (f"{f}/contracts", self._contracts),
            (f"{f}/contracts/{{contract}}", self._contract_one),
            (f"{f}/order_book", self._book),
            (f"{f}/tickers", self._tickers),
            (f"{f}/funding_rate", self._funding_history),
            (f"{f}/candlesticks", self._candles),
        ):
            self.route(app, "GET", path, handler, signed=False)
        for method, path, handler in (
            ("POST", f"{f}/orders", self._create),
            ("GET", f"{f}/orders", self._list),
            ("GET", f"{f}/orders/{{order_id}}", self._get),
            ("DELETE", f"{f}/orders/{{order_id}}", self._cancel),
            ("DELETE", f"{f}/orders", self._cancel_all),
            ("POST", f"{f}/batch_orders", self._batch_place),
            ("POST", f"{f}/batch_cancel_orders", self._batch_cancel),
            ("GET", f"{f}/accounts", self._accounts),
            ("GET", f"{f}/positions", self._positions),
            ("GET", f"{f}/account_book", self._account_book),
        ):
            self.route(app, method, path, handler, signed=True)
        app.router.add_get("/v4/ws/usdt", self._ws)

    async def _account_book(self, request: web.Request, params: dict[str, Any]) -> Any:
        return await _ledgers.gate_account_book(self, request, params)  # the funding-fee ledger (_ledgers)

    # -- dialect ---------------------------------------------------------------------------------

    async def verify(self, request: web.Request, body: bytes) -> None:
        h = request.headers
        if h.get("KEY") != self.api_key:
            raise Refused(401, "INVALID_KEY", "Invalid key provided")
        stamp = h.get("Timestamp", "")
        prehash = "\n".join(
            (request.method, *request.raw_path.partition("?")[::2], hashlib.sha512(body).hexdigest(), stamp)
        )
        expected = hmac.new(self.secret, prehash.encode(), hashlib.sha512).hexdigest()
        if not hmac.compare_digest(h.get("SIGN", ""), expected):
            self.bad_signatures += 1
            raise Refused(401, "INVALID_SIGNATURE", "Signature mismatch")
        try:
            drift = abs(time.time() - float(stamp))
        except ValueError:
            drift = float("inf")
        if drift > 60:
            raise Refused(401, "REQUEST_EXPIRED", "Request Timestamp is far from the server time")

    def failure(self, err: Refused) -> tuple[int, Any]:
        return err.status, {"label": err.code, "message": err.msg}

    def rate_limited_answer(self) -> tuple[int, dict[str, Any]]:
        return 429, {"label": "TOO_MANY_REQUESTS", "message": "Request Rate Limit Exceeded"}

    def refusal(self, err: VenueError, op: str) -> Refused:
        if isinstance(err, InsufficientFunds):
            return Refused(400, "INSUFFICIENT_AVAILABLE", "Insufficient available balance")
        if isinstance(err, NotFound):
            return Refused(404, "ORDER_NOT_FOUND", "Order not found")
        return Refused(400, "INVALID_PARAM_VALUE", err.message)

    def unknown_symbol(self, venue_symbol: str) -> Refused:
        return Refused(400, "CONTRACT_NOT_FOUND", f"Contract {venue_symbol} not found")

    def _settle(self, request: web.Request) -> None:
        if request.match_info.get("settle") != "usdt":
            raise Refused(400, "INVALID_PARAM_VALUE", "settle: only usdt in this fake")

    # -- shapes ----------------------------------------------------------------------------------

    def _order(self, o: order_pb2.Order) -> dict[str, Any]:
        sign = "" if o.side == order_pb2.ORDER_SIDE_BUY else "-"
        size = self.to_wire(o.quantity)
        left = dec_text(Decimal(size) - Decimal(self.to_wire(o.filled_quantity)))
        finished = o.status not in _OPEN
        created = sim_shapes.ms(o.created_at) / 1000
        updated = (sim_shapes.ms(o.updated_at) / 1000) or created
        return {
            "id": int(self.wire_id(o.order_id)),
            "user": _USER,
            "create_time": created,
            "update_time": updated,
            "finish_time": updated if finished else None,
            "finish_as": _FINISH_AS.get(o.status, "cancelled") if finished else None,
            "status": "finished" if finished else "open",
            "contract": self.venue_symbol(o.symbol),
            "size": int(sign + size),
            "iceberg": 0,
            "price": o.price if o.order_type == order_pb2.ORDER_TYPE_LIMIT else "0",
            "close": False,
            "is_close": False,
            "reduce_only": o.reduce_only,
            "is_reduce_only": o.reduce_only,
            "is_liq": False,
            "tif": "poc" if o.post_only else _TIF_OUT.get(o.time_in_force, "gtc"),
            "left": int(sign + left) if left != "0" else 0,
            "fill_price": o.average_fill_price or "0",
            "text": self.texts.get(o.order_id, "api"),
            "tkfr": "0.0005",
            "mkfr": "0.0002",
            "refu": 0,
            "auto_size": "",
            "stp_id": 0,
            "stp_act": "-",
            "amend_text": "-",
        }

    def _contract(self, spec: InstrumentSpec, mark: str, rate: str, next_at: int) -> dict[str, Any]:
        return {
            "name": self.venue_symbol(spec.symbol),
            "type": "direct",
            "quanto_multiplier": dec_text(self.contract_size),
            "leverage_min": "1",
            "leverage_max": dec_text(spec.max_leverage),
            "maintenance_rate": str(spec.maintenance_margin_rate),
            "mark_type": "index",
            "mark_price": mark,
            "index_price": mark,
            "last_price": mark,
            "maker_fee_rate": str(spec.maker_fee),
            "taker_fee_rate": str(spec.taker_fee),
            "order_price_round": str(spec.tick_size),
            "mark_price_round": str(spec.tick_size),
            "funding_rate": rate,
            "funding_interval": spec.funding_interval_seconds,
            "funding_next_apply": next_at,
            "risk_limit_base": "1000000",
            "risk_limit_step": "1000000",
            "risk_limit_max": "8000000",
            "order_size_min": int(spec.min_quantity / self.contract_size) or 1,
            "order_size_max": int(spec.max_quantity / self.contract_size),
            "order_price_deviate": "0.5",
            "ref_discount_rate": "0",
            "ref_rebate_rate": "0.2",
            "orderbook_id": 1,
            "trade_id": 1,
            "trade_size": 0,
            "position_size": 0,
            "config_change_time": 1609899548,
            "in_delisting": False,
            "orders_limit": 100,
            "enable_bonus": False,
            "enable_credit": True,
            "create_time": 1609800048,
            "funding_cap_ratio": "0.75",
            "status": "trading",
        }

    async def _contract_for(self, spec: InstrumentSpec) -> dict[str, Any]:
        rate = await self.sim.get_funding_rate(spec.symbol)
        next_at = sim_shapes.ms(rate.next_funding_time) // 1000
        return self._contract(spec, rate.mark_price or str(spec.initial_price), rate.rate, next_at)

    # -- public ----------------------------------------------------------------------------------

    async def _time(self, request: web.Request, params: dict[str, Any]) -> Any:
        return {"server_time": int(time.time() * 1000)}

    async def _currencies(self, request: web.Request, params: dict[str, Any]) -> Any:
        return []  # the fake lists no deposit/withdrawal chains

    async def _contracts(self, request: web.Request, params: dict[str, Any]) -> Any:
        if request.match_info.get("settle") != "usdt":
            return []
        return [await self._contract_for(s) for s in self.perps.values()]

    async def _contract_one(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        name = request.match_info.get("contract", "")
        return await self._contract_for(self.perps[self.venue_symbol(self.canonical(name))])

    async def _book(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        limit = str(params.get("limit", "10"))
        book = await self.sim.get_order_book(
            self.canonical(params.get("contract", "")), int(limit) if limit.isdigit() else 10
        )
        now = time.time()
        return {
            "id": book.sequence,
            "current": now,
            "update": now,
            "asks": [{"p": lv.price, "s": int(Decimal(self.to_wire(lv.quantity)))} for lv in book.asks],
            "bids": [{"p": lv.price, "s": int(Decimal(self.to_wire(lv.quantity)))} for lv in book.bids],
        }

    async def _tickers(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        contract = params.get("contract", "")
        canonical = self.canonical(contract)
        price = await self.sim.get_latest_price(canonical)
        rate = await self.sim.get_funding_rate(canonical)
        return [
            {
                "contract": contract,
                "last": price.last,
                "change_percentage": "0",
                "total_size": "0",
                "low_24h": price.last,
                "high_24h": price.last,
                "volume_24h": "0",
                "volume_24h_base": "0",
                "volume_24h_quote": "0",
                "volume_24h_settle": "0",
                "mark_price": rate.mark_price or price.last,
                "funding_rate": rate.rate,
                "funding_rate_indicative": rate.rate,
                "index_price": rate.index_price or price.last,
                "highest_bid": price.bid,
                "highest_size": "0",
                "lowest_ask": price.ask,
                "lowest_size": "0",
            }
        ]

    async def _funding_history(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        rate = await self.sim.get_funding_rate(self.canonical(params.get("contract", "")))
        at = (sim_shapes.ms(rate.funding_time) or int(time.time() * 1000)) // 1000
        return [{"t": at, "r": rate.rate}]

    async def _candles(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        widths = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}
        found = await sim_shapes.candles(
            self.sim,
            self.canonical(params.get("contract", "")),
            widths.get(str(params.get("interval", "5m")), 0),
            params.get("limit"),
        )
        if found is None:
            raise Refused(400, "INVALID_PARAM_VALUE", "interval")
        return [
            {
                "t": sim_shapes.ms(c.open_time) // 1000,
                "v": int(Decimal(self.to_wire(c.volume))),
                "c": c.close,
                "h": c.high,
                "l": c.low,
                "o": c.open,
                "sum": c.quote_volume or "0",
            }
            for c in found
        ]

    # -- orders ----------------------------------------------------------------------------------

    def _find(self, symbol: str | None, ref: str) -> dict[str, str]:
        """``/orders/{order_id}``: the order id, or the custom text (the newest order carrying it)."""
        if ref.startswith("t-"):
            held = [oid for oid, text in self.texts.items() if text == ref]
            if not held:
                raise Refused(404, "ORDER_NOT_FOUND", "Order not found")
            return {"order_id": held[-1]}
        if not ref.isdigit():
            raise Refused(404, "ORDER_NOT_FOUND", "Order not found")
        return {"order_id": f"sim-{ref}"}

    async def _create(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        canonical = self.canonical(str(params.get("contract", "")))
        text = str(params.get("text", "") or "")
        if text and (not text.startswith("t-") or len(text) > 30):
            raise Refused(
                400, "INVALID_PARAM_VALUE", "text must start with t- and be at most 28 bytes after it"
            )
        try:
            size = int(str(params.get("size", "")))
        except ValueError:
            raise Refused(400, "INVALID_PARAM_VALUE", "size") from None
        price, tif = str(params.get("price", "0")), str(params.get("tif", "gtc"))
        if size == 0 or tif not in ("gtc", "ioc", "poc", "fok"):
            raise Refused(400, "INVALID_PARAM_VALUE", "size or tif")
        market = Decimal(price or "0") == 0
        order = order_pb2.Order(
            symbol=canonical,
            side=order_pb2.ORDER_SIDE_BUY if size > 0 else order_pb2.ORDER_SIDE_SELL,
            order_type=order_pb2.ORDER_TYPE_MARKET if market else order_pb2.ORDER_TYPE_LIMIT,
            quantity=self.to_base(abs(size)),
            price="" if market else price,
            post_only=tif == "poc",
            reduce_only=params.get("reduce_only") in (True, "true"),
            time_in_force=order_pb2.TIME_IN_FORCE_IOC
            if market
            else _TIF_IN.get(tif, order_pb2.TIME_IN_FORCE_GTC),
        )
        placed = await self.place(order)
        if text:
            self.texts[placed.order_id] = text
        return self._order(placed)

    async def _get(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        ref = self._find(None, request.match_info.get("order_id", ""))
        return self._order(await self.lookup("", ref["order_id"].removeprefix("sim-"), None))

    async def _cancel(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        ref = self._find(None, request.match_info.get("order_id", ""))
        order_id = ref["order_id"].removeprefix("sim-")
        current = await self.lookup("", order_id, None)
        return self._order(await self.cancel(current.symbol, order_id, None))

    async def _cancel_all(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Cancel all orders with 'open' status (``DELETE /futures/{settle}/orders?contract=``,
        https://www.gate.com/docs/developers/apiv4/en/#cancel-all-orders-with-open-status): the
        cancelled orders, as order objects; ``side`` ask/bid narrows it."""
        self._settle(request)
        contract = params.get("contract")
        if not contract:
            raise Refused(400, "MISSING_REQUIRED_PARAM", "contract")
        canonical = self.canonical(str(contract))
        side = {"ask": order_pb2.ORDER_SIDE_SELL, "bid": order_pb2.ORDER_SIDE_BUY}.get(
            str(params.get("side"))
        )
        done = []
        for o in await self.sim.get_orders(OrderFilter(symbol=canonical)):
            if side is not None and o.side != side:
                continue
            try:
                done.append(self._order(await self.sim.cancel_order(symbol=o.symbol, order_id=o.order_id)))
            except VenueError:
                continue  # finished meanwhile: not cancelled by this request
        return done

    async def _batch_place(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Place batch futures orders (https://www.gate.com/docs/developers/apiv4/en/#place-batch-futures-orders):
        up to 10; each executed on its own, answered in request order, ``succeeded`` true with the
        order or false with the error ``label`` (and the item's ``text``)."""
        self._settle(request)
        items = params.get("_body")
        if not isinstance(items, list) or not items or len(items) > BATCH_PLACE_MAX:
            raise Refused(400, "INVALID_PARAM_VALUE", f"1 to {BATCH_PLACE_MAX} orders")
        out = []
        for item in items:
            one = item if isinstance(item, dict) else {}
            try:
                out.append({"succeeded": True} | await self._create(request, one))
            except Refused as err:
                out.append(
                    {"succeeded": False, "label": err.code, "message": err.msg, "text": one.get("text", "")}
                )
        return out

    async def _batch_cancel(self, request: web.Request, params: dict[str, Any]) -> Any:
        """Cancel batch orders by specified ID list
        (https://www.gate.com/docs/developers/apiv4/en/#cancel-batch-orders-by-specified-id-list-2):
        at most 20 order ids; ``{id, user_id, succeeded, message}`` each."""
        self._settle(request)
        ids = params.get("_body")
        if not isinstance(ids, list) or not ids or len(ids) > BATCH_CANCEL_MAX:
            raise Refused(400, "INVALID_PARAM_VALUE", f"1 to {BATCH_CANCEL_MAX} order ids")
        out = []
        for raw_id in ids:
            oid = str(raw_id)
            try:
                if not oid.isdigit():
                    raise Refused(404, "ORDER_NOT_FOUND", "Order not found")
                current = await self.lookup("", oid, None)
                await self.cancel(current.symbol, oid, None)
            except Refused as err:
                out.append({"id": oid, "user_id": _USER, "succeeded": False, "message": err.msg})
                continue
            out.append({"id": oid, "user_id": _USER, "succeeded": True, "message": ""})
        return out

    async def _list(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        status = params.get("status")
        if status not in ("open", "finished"):
            raise Refused(400, "MISSING_REQUIRED_PARAM", "status")
        contract = params.get("contract")
        canonical = self.canonical(contract) if contract else None
        statuses = frozenset() if status == "open" else frozenset(_FINISH_AS)
        orders = await self.sim.get_orders(OrderFilter(symbol=canonical, statuses=statuses))
        return [self._order(o) for o in orders if o.symbol in self.perp_symbols()]

    def venue_order_count(self, client_order_id: str) -> int:
        return sum(1 for text in self.texts.values() if text == client_order_id)

    # -- account ---------------------------------------------------------------------------------

    async def _accounts(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        m = await sim_shapes.margin(self.sim, self.perp_symbols())
        total, available = dec_text(m.wallet), dec_text(m.available)
        # total excludes unrealised_pnl (documented); position/order margin from the sim.
        return {
            "user": _USER,
            "currency": "USDT",
            "total": total,
            "unrealised_pnl": dec_text(m.upl),
            "position_margin": dec_text(m.position_im),
            "order_margin": dec_text(m.order_im),
            "available": available,
            "point": "0",
            "bonus": "0",
            # https://www.gate.com/docs/developers/apiv4/en/#query-futures-account: dual (hedge) mode
            "in_dual_mode": self.hedge_mode,
            "enable_credit": False,
            "position_initial_margin": "0",
            "maintenance_margin": dec_text(m.maint),
            "margin_mode": 0,
            "cross_available": available or "0",
            "history": {},
        }

    async def _positions(self, request: web.Request, params: dict[str, Any]) -> Any:
        self._settle(request)
        rows = []
        for p in await self.sim.get_positions():
            if p.symbol not in self.perp_symbols():
                continue
            size = int(Decimal(self.to_wire(p.quantity or "0")))
            short = sim_shapes.position_side(p, "", "-", "") == "-"
            rows.append(
                {
                    "user": _USER,
                    "contract": self.venue_symbol(p.symbol),
                    "size": -size if short else size,
                    "leverage": "0" if not sim_shapes.isolated(p) else (p.leverage or "1"),
                    "cross_leverage_limit": p.leverage or "10",
                    "risk_limit": "1000000",
                    "leverage_max": "100",
                    "maintenance_rate": "0.005",
                    "value": "0",
                    "margin": p.margin or "0",
                    "entry_price": p.entry_price or "0",
                    "liq_price": p.liquidation_price or "0",
                    "mark_price": p.mark_price or "0",
                    "unrealised_pnl": p.unrealized_pnl or "0",
                    "realised_pnl": p.realized_pnl or "0",
                    "history_pnl": "0",
                    "last_close_pnl": "0",
                    "adl_ranking": 5,
                    "pending_orders": 0,
                    "mode": "single",
                    "update_time": sim_shapes.ms(p.updated_at) // 1000,
                }
            )
        return rows

    # -- the order stream ------------------------------------------------------------------------

    def order_push(self, order: order_pb2.Order) -> Any:
        row = self._order(order)
        row |= {"create_time_ms": int(row["create_time"] * 1000), "finish_time_ms": 0, "user": str(_USER)}
        now = int(time.time())
        return {
            "time": now,
            "time_ms": now * 1000,
            "channel": "futures.orders",
            "event": "update",
            "result": [row],
        }

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_text(ws: web.WebSocketResponse, text: str) -> None:
            try:
                msg = json.loads(text)
            except ValueError:
                return
            channel, event, now = msg.get("channel"), msg.get("event"), int(time.time())
            reply = {
                "time": now,
                "time_ms": now * 1000,
                "id": msg.get("id"),
                "channel": channel,
                "event": event,
            }
            if channel == "futures.ping":
                await ws.send_json(reply | {"channel": "futures.pong", "event": "", "result": None})
                return
            if channel in self.public.channels():  # gate_ws: the public channels share this url
                await self.public.on_message(ws, request, msg)
                return
            if channel != "futures.orders" or event != "subscribe":
                await ws.send_json(
                    reply | {"error": {"code": 2, "message": "unknown channel"}, "result": None}
                )
                return
            auth = msg.get("auth") or {}
            stamp = str(msg.get("time", ""))
            good = hmac.new(
                self.secret, f"channel={channel}&event={event}&time={stamp}".encode(), hashlib.sha512
            ).hexdigest()
            fresh = stamp.isdigit() and abs(now - int(stamp)) < 60
            if (
                auth.get("KEY") != self.api_key
                or not fresh
                or not hmac.compare_digest(str(auth.get("SIGN", "")), good)
            ):
                self.bad_signatures += 1
                await ws.send_json(
                    reply | {"error": {"code": 11, "message": "Signature mismatch"}, "result": None}
                )
                return
            payload = msg.get("payload") or []
            if not payload or str(payload[0]) != USER_ID:
                await ws.send_json(
                    reply | {"error": {"code": 2, "message": "invalid user id"}, "result": None}
                )
                return
            await ws.send_json(reply | {"error": None, "result": {"status": "success"}})
            self.order_sockets.add(ws)

        return await self.serve_ws(request, on_text)
