"""The fake's core: construction, routes, authentication (CDP JWT, legacy HMAC) and the order routes
(create, batch cancel, get, list, fills) with holds, matching against the product book and maker fills.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import Mapping, Sequence
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Literal

import jwt as pyjwt
import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from cqvx.testing.fake_coinbase._reads import _ReadRoutes
from cqvx.testing.fake_coinbase._state import (
    _ZERO,
    FakeProduct,
    P,
    PublicKey,
    _AuthError,
    _Conn,
    _default_products,
    _now_iso,
    _s,
)
from cqvx.testing.fake_coinbase._ws import _WebSockets
from cqvx.testing.fakeserver import Fault


class FakeCoinbase(_WebSockets, _ReadRoutes):
    def __init__(
        self,
        *,
        keys: Mapping[str, PublicKey] | None = None,
        legacy_keys: Mapping[str, str] | None = None,
        jwt_host: str = "api.coinbase.com",
        products: Sequence[FakeProduct] | None = None,
        balances: Mapping[str, str] | None = None,
        subscribe_deadline: float = 5.0,
        heartbeat_interval: float = 1.0,
        duplicate_mode: Literal["return_existing", "reject"] = "return_existing",
        taker_fee: str = "0.006",
        maker_fee: str = "0.004",
        max_page: int = 250,
    ) -> None:
        super().__init__()
        self.keys = dict(keys or {})
        self.legacy_keys = dict(legacy_keys or {})
        self.jwt_host = jwt_host
        self.products: dict[str, FakeProduct] = {p.product_id: p for p in (products or _default_products())}
        self.available: dict[str, Decimal] = {
            k: Decimal(v) for k, v in (balances or {"USD": "100000", "BTC": "10", "ETH": "100"}).items()
        }
        self.holds: dict[str, Decimal] = dict.fromkeys(self.available, _ZERO)
        self.subscribe_deadline = subscribe_deadline
        self.heartbeat_interval = heartbeat_interval
        self.duplicate_mode = duplicate_mode
        self.taker_fee = Decimal(taker_fee)
        self.maker_fee = Decimal(maker_fee)
        self.max_page = max_page
        self.orders: dict[str, dict[str, Any]] = {}
        self.by_client_id: dict[str, str] = {}
        self.fills: list[dict[str, Any]] = []
        self.trades: dict[str, list[dict[str, Any]]] = {}
        self.auth_failures: list[str] = []
        self.rate_limits_served = 0  # 429 answers actually given (scripted with rate_limit())
        # WebSocket endpoints refusing new connections (503), e.g. to keep the user stream down.
        self.refused_ws: set[Literal["market", "user"]] = set()
        # order id -> batch_cancel failure_reason to answer instead of cancelling.
        self.cancel_failures: dict[str, str] = {}
        # The US-derivatives account: product id -> position (wire shape), and the balance summary.
        self.cfm_positions: dict[str, dict[str, Any]] = {}
        self.cfm_balance_summary: dict[str, Any] | None = None
        # The INTX perpetuals portfolio: its uuid, positions by product id (wire shape), the portfolio
        # object of the summary and the per-asset balances (wire shape).
        self.intx_portfolio_uuid = "018c2b5e-4a1f-7c3d-9e2a-5b6c7d8e9f01"
        self.intx_positions: dict[str, dict[str, Any]] = {}
        self.intx_portfolio: dict[str, Any] | None = None
        self.intx_balances: list[dict[str, Any]] = []
        self.deadline_closes = 0
        self.subscribe_messages: list[dict[str, Any]] = []
        self._conns: list[_Conn] = []
        self._trade_ids = itertools.count(1000)
        self._hb_counter = itertools.count(1)
        self._jwt_nonces: set[str] = set()

    @property
    def ws_market_url(self) -> str:
        return f"{self.ws_url}/ws"

    @property
    def ws_user_url(self) -> str:
        return f"{self.ws_url}/ws-user"

    def _take_fault(self, path: str, method: str) -> Fault | None:
        fault = super()._take_fault(path, method)
        if fault is not None and fault.kind == "status" and fault.status == 429:
            self.rate_limits_served += 1
        return fault

    def orders_with_client_id(self, client_order_id: str) -> int:
        """How many orders (any status) this venue holds under ``client_order_id``."""
        return sum(1 for o in self.orders.values() if o["client_order_id"] == client_order_id)

    # --- routes ---------------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post(f"{P}/orders", self._create_order)
        r.add_post(f"{P}/orders/batch_cancel", self._batch_cancel)
        r.add_get(f"{P}/orders/historical/batch", self._list_orders)
        r.add_get(f"{P}/orders/historical/fills", self._list_fills)
        r.add_get(f"{P}/orders/historical/{{order_id}}", self._get_order)
        r.add_get(f"{P}/accounts", self._accounts)
        r.add_get(f"{P}/time", self._time)
        r.add_get(f"{P}/cfm/positions", self._cfm_positions)
        r.add_get(f"{P}/cfm/positions/{{product_id}}", self._cfm_position)
        r.add_get(f"{P}/cfm/balance_summary", self._cfm_balance)
        r.add_get(f"{P}/intx/positions/{{portfolio_uuid}}", self._intx_positions)
        r.add_get(f"{P}/intx/positions/{{portfolio_uuid}}/{{symbol}}", self._intx_position)
        r.add_get(f"{P}/intx/portfolio/{{portfolio_uuid}}", self._intx_summary)
        r.add_get(f"{P}/intx/balances/{{portfolio_uuid}}", self._intx_balances_route)
        for prefix, private in ((P, True), (f"{P}/market", False)):
            r.add_get(f"{prefix}/products", self._wrap(self._products, private))
            r.add_get(f"{prefix}/products/{{product_id}}", self._wrap(self._product, private))
            r.add_get(f"{prefix}/products/{{product_id}}/candles", self._wrap(self._candles, private))
            r.add_get(f"{prefix}/products/{{product_id}}/ticker", self._wrap(self._ticker, private))
            r.add_get(f"{prefix}/product_book", self._wrap(self._product_book, private))
        r.add_get(f"{P}/best_bid_ask", self._best_bid_ask)
        r.add_get("/ws", self._serve_market)
        r.add_get("/ws-user", self._serve_user)

    async def _serve_market(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, "market")

    async def _serve_user(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, "user")

    def _wrap(self, handler: Any, private: bool) -> Any:
        async def run(request: web.Request) -> web.StreamResponse:
            if private:
                failure = self._check_rest_auth(request)
                if failure is not None:
                    return failure
            result: web.StreamResponse = await handler(request)
            return result

        return run

    # --- auth ----------------------------------------------------------------------------------

    def _verify_jwt(self, token: str, uri: str | None) -> None:
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError:
            raise _AuthError("malformed token") from None
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _AuthError("unknown key")
        alg = "ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "EdDSA"
        if header.get("alg") != alg or not header.get("nonce"):
            raise _AuthError("bad header")
        try:
            claims = pyjwt.decode(
                token, key, algorithms=[alg], options={"require": ["exp", "nbf", "sub", "iss"]}, leeway=5
            )
        except pyjwt.PyJWTError as exc:
            raise _AuthError(f"invalid token ({type(exc).__name__})") from None
        if claims.get("sub") != kid or claims.get("iss") != "cdp":
            raise _AuthError("bad claims")
        if int(claims["exp"]) - int(claims["nbf"]) > 120:
            raise _AuthError("token lifetime over 120 s")
        if uri is None:
            if "uri" in claims:
                raise _AuthError("websocket token must not carry uri")
        elif claims.get("uri") != uri:
            raise _AuthError("uri claim does not match the request")

    def _check_rest_auth(self, request: web.Request) -> web.Response | None:
        try:
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                self._verify_jwt(auth[7:], f"{request.method} {self.jwt_host}{request.path}")
            elif "CB-ACCESS-KEY" in request.headers:
                self._verify_hmac(request)
            else:
                raise _AuthError("missing credentials")
        except _AuthError as exc:
            self.auth_failures.append(str(exc))
            return web.json_response(
                {"error": "UNAUTHENTICATED", "message": str(exc), "error_details": str(exc)}, status=401
            )
        return None

    def _verify_hmac(self, request: web.Request) -> None:
        key = request.headers.get("CB-ACCESS-KEY", "")
        secret = self.legacy_keys.get(key)
        ts = request.headers.get("CB-ACCESS-TIMESTAMP", "")
        sig = request.headers.get("CB-ACCESS-SIGN", "")
        if secret is None:
            raise _AuthError("unknown key")
        if not ts.isdigit() or abs(int(ts) - time.time()) > 30:
            raise _AuthError("stale timestamp")
        body = getattr(request, "_cb_body", b"")
        prehash = (ts + request.method + request.path).encode() + body
        want = hmac.new(secret.encode(), prehash, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            raise _AuthError("bad signature")

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        request._cb_body = raw
        try:
            data = msgspec.json.decode(raw) if raw else {}
        except msgspec.DecodeError:
            raise web.HTTPBadRequest(text='{"error":"INVALID_ARGUMENT","message":"bad json"}') from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text='{"error":"INVALID_ARGUMENT","message":"bad json"}')
        return data

    # --- orders --------------------------------------------------------------------------------

    async def _create_order(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        coid = str(body.get("client_order_id") or "")
        cfg = body.get("order_configuration")
        if coid and coid in self.by_client_id:
            existing = self.orders[self.by_client_id[coid]]
            if self.duplicate_mode == "reject":
                return self._reject(body, "DUPLICATE_CLIENT_ORDER_ID", "PREVIEW_UNKNOWN_FAILURE_REASON")
            return self._accept(existing)
        pid = str(body.get("product_id") or "")
        product = self.products.get(pid)
        side = body.get("side")
        if product is None:
            return self._reject(body, "INVALID_PRODUCT_ID", "PREVIEW_INVALID_PRODUCT_ID")
        if side not in ("BUY", "SELL"):
            return self._reject(body, "INVALID_SIDE", "PREVIEW_INVALID_SIDE")
        if not coid:
            return web.json_response(
                {"error": "INVALID_ARGUMENT", "message": "client_order_id is required"}, status=400
            )
        if not isinstance(cfg, dict) or len(cfg) != 1:
            return self._reject(body, "UNSUPPORTED_ORDER_CONFIGURATION", "PREVIEW_INVALID_ORDER_CONFIG")
        ((kind, leg),) = cfg.items()
        if not isinstance(leg, dict):
            return self._reject(body, "UNSUPPORTED_ORDER_CONFIGURATION", "PREVIEW_INVALID_ORDER_CONFIG")
        try:
            return self._place(body, coid=coid, product=product, side=side, kind=kind, leg=leg)
        except (InvalidOperation, ValueError, TypeError):
            return self._reject(body, "INVALID_REQUEST", "PREVIEW_INVALID_ORDER_CONFIG")

    def _reject(self, body: Mapping[str, Any], reason: str, preview: str) -> web.Response:
        return web.json_response(
            {
                "success": False,
                "failure_reason": "UNKNOWN_FAILURE_REASON",
                "order_id": "",
                "error_response": {
                    "error": reason,
                    "message": reason.lower().replace("_", " "),
                    "error_details": "",
                    "preview_failure_reason": preview,
                    "new_order_failure_reason": reason,
                },
                "order_configuration": body.get("order_configuration"),
            }
        )

    def _accept(self, order: Mapping[str, Any]) -> web.Response:
        return web.json_response(
            {
                "success": True,
                "failure_reason": "UNKNOWN_FAILURE_REASON",
                "order_id": order["order_id"],
                "success_response": {
                    "order_id": order["order_id"],
                    "product_id": order["product_id"],
                    "side": order["side"],
                    "client_order_id": order["client_order_id"],
                },
                "order_configuration": order["order_configuration"],
            }
        )

    @staticmethod
    def _multiple(value: Decimal, step: str) -> bool:
        return value == (value / Decimal(step)).to_integral_value(rounding=ROUND_DOWN) * Decimal(step)

    def _place(
        self,
        body: Mapping[str, Any],
        *,
        coid: str,
        product: FakeProduct,
        side: str,
        kind: str,
        leg: Mapping[str, Any],
    ) -> web.Response:
        buy = side == "BUY"
        limit = Decimal(str(leg["limit_price"])) if "limit_price" in leg else None
        base = Decimal(str(leg["base_size"])) if leg.get("base_size") else None
        quote_size = Decimal(str(leg["quote_size"])) if leg.get("quote_size") else None
        if kind not in _KINDS:
            return self._reject(body, "UNSUPPORTED_ORDER_CONFIGURATION", "PREVIEW_INVALID_ORDER_CONFIG")
        if base is not None and (base <= 0 or not self._multiple(base, product.base_increment)):
            return self._reject(body, "INVALID_SIZE_PRECISION", "PREVIEW_INVALID_SIZE_PRECISION")
        if base is not None and base < Decimal(product.base_min_size):
            return self._reject(body, "INVALID_REQUEST", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL")
        if limit is not None and (limit <= 0 or not self._multiple(limit, product.quote_increment)):
            return self._reject(body, "INVALID_PRICE_PRECISION", "PREVIEW_INVALID_PRICE_PRECISION")
        if base is None and quote_size is None:
            return self._reject(body, "INVALID_REQUEST", "PREVIEW_INVALID_ORDER_CONFIG")
        if quote_size is not None and not buy:
            return self._reject(body, "UNSUPPORTED_ORDER_CONFIGURATION", "PREVIEW_INVALID_ORDER_CONFIG")
        best_opp = (
            (min(product.asks) if product.asks else None)
            if buy
            else (max(product.bids) if product.bids else None)
        )
        market = kind.startswith("market")
        crosses = best_opp is not None and (
            market or (limit is not None and (limit >= best_opp if buy else limit <= best_opp))
        )
        if leg.get("post_only") and crosses:
            return self._reject(
                body, "INVALID_LIMIT_PRICE_POST_ONLY", "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY"
            )
        if market and best_opp is None:
            return self._reject(body, "INVALID_NO_LIQUIDITY", "PREVIEW_INVALID_NO_LIQUIDITY")
        # Funds: a buy needs quote (at the limit, or the fill price), a sell needs base.
        px = best_opp if (crosses and best_opp is not None) else limit
        if base is None and quote_size is not None and px is not None:
            base = (quote_size / px).quantize(Decimal(product.base_increment), rounding=ROUND_DOWN)
        assert base is not None
        need_asset = product.quote if buy else product.base
        need = (base * (px or _ZERO) * (1 + self.taker_fee)) if buy else base
        if self.available.get(need_asset, _ZERO) < need:
            return self._reject(body, "INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND")
        order_id = str(uuid.uuid4())
        tif = _KINDS[kind]
        order: dict[str, Any] = {
            "order_id": order_id,
            "product_id": product.product_id,
            "user_id": "fake-user",
            "order_configuration": {kind: dict(leg)},
            "side": side,
            "client_order_id": coid,
            "status": "OPEN",
            "time_in_force": tif,
            "created_time": _now_iso(),
            "completion_percentage": "0",
            "filled_size": "0",
            "average_filled_price": "0",
            "number_of_fills": "0",
            "filled_value": "0",
            "pending_cancel": False,
            "size_in_quote": quote_size is not None,
            "total_fees": "0",
            "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": "MARKET" if market else ("STOP_LIMIT" if kind.startswith("stop") else "LIMIT"),
            "reject_reason": "REJECT_REASON_UNSPECIFIED",
            "settled": False,
            "product_type": "SPOT",
            "reject_message": "",
            "cancel_message": "",
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0",
            "last_fill_time": None,
            "leverage": "",
            "margin_type": "",
            "retail_portfolio_id": "",
            "_base": base,
            "_limit": limit,
        }
        self.orders[order_id] = order
        self.by_client_id[coid] = order_id
        if crosses and best_opp is not None and not kind.startswith("stop"):
            self._execute(order, base, best_opp, maker=False)
        elif tif in ("IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"):
            order["status"] = "EXPIRED" if tif == "FILL_OR_KILL" else "CANCELLED"
        else:
            hold = base * (limit or _ZERO) if buy else base
            self._hold(need_asset, hold)
            order["outstanding_hold_amount"] = _s(hold)
        self._notify_user(order)
        return self._accept(order)

    def _hold(self, asset: str, amount: Decimal) -> None:
        self.available[asset] = self.available.get(asset, _ZERO) - amount
        self.holds[asset] = self.holds.get(asset, _ZERO) + amount

    def _execute(self, order: dict[str, Any], qty: Decimal, price: Decimal, *, maker: bool) -> dict[str, Any]:
        product = self.products[order["product_id"]]
        buy = order["side"] == "BUY"
        fee_rate = self.maker_fee if maker else self.taker_fee
        fee = (qty * price * fee_rate).quantize(Decimal("0.00000001"))
        filled = Decimal(order["filled_size"]) + qty
        value = Decimal(order["filled_value"]) + qty * price
        order["filled_size"] = _s(filled)
        order["filled_value"] = _s(value)
        order["average_filled_price"] = _s((value / filled).quantize(Decimal("0.00000001")))
        order["total_fees"] = _s(Decimal(order["total_fees"]) + fee)
        order["number_of_fills"] = str(int(order["number_of_fills"]) + 1)
        order["last_fill_time"] = _now_iso()
        if filled >= order["_base"]:
            order["status"] = "FILLED"
            order["completion_percentage"] = "100"
        # Balances: a maker fill consumes the hold, a taker fill the available balance.
        spend_asset, get_asset = (product.quote, product.base) if buy else (product.base, product.quote)
        spend = qty * (order["_limit"] if (maker and buy) else price) if buy else qty
        if maker:
            self.holds[spend_asset] = self.holds.get(spend_asset, _ZERO) - spend
            if buy and order["_limit"] is not None and order["_limit"] > price:
                self.available[spend_asset] += qty * (order["_limit"] - price)
        else:
            self.available[spend_asset] = self.available.get(spend_asset, _ZERO) - spend
        gain = qty if buy else qty * price
        self.available[get_asset] = self.available.get(get_asset, _ZERO) + gain
        self.available[product.quote] -= fee
        fill = {
            "entry_id": str(uuid.uuid4()),
            "trade_id": str(next(self._trade_ids)),
            "order_id": order["order_id"],
            "trade_time": _now_iso(),
            "trade_type": "FILL",
            "price": _s(price),
            "size": _s(qty),
            "commission": _s(fee),
            "product_id": order["product_id"],
            "sequence_timestamp": _now_iso(),
            "liquidity_indicator": "MAKER" if maker else "TAKER",
            "size_in_quote": False,
            "user_id": "fake-user",
            "side": order["side"],
            "retail_portfolio_id": "",
        }
        self.fills.append(fill)
        return fill

    async def fill(
        self, order_id: str, quantity: str | None = None, price: str | None = None, *, notify: bool = True
    ) -> dict[str, Any]:
        """A maker fill of a resting order (all of what is left unless ``quantity`` is given).

        ``notify=False`` fills without any WebSocket message: the update that was lost on the way.
        """
        order = self.orders[order_id]
        if order["status"] != "OPEN":
            raise ValueError(f"order {order_id} is {order['status']}")
        left = order["_base"] - Decimal(order["filled_size"])
        qty = Decimal(quantity) if quantity is not None else left
        fill = self._execute(order, min(qty, left), Decimal(price) if price else order["_limit"], maker=True)
        if notify:
            await self._send_user(order)
            await self.push_trade(order["product_id"], fill["price"], fill["size"], order["side"])
        return fill

    async def _batch_cancel(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        ids = body.get("order_ids")
        if not isinstance(ids, list) or len(ids) > 100:
            return web.json_response({"error": "INVALID_ARGUMENT", "message": "order_ids"}, status=400)
        results = []
        for oid in ids:
            order = self.orders.get(str(oid))
            scripted = self.cancel_failures.get(str(oid))
            if scripted is not None:
                results.append({"success": False, "failure_reason": scripted, "order_id": oid})
            elif order is None:
                results.append({"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": oid})
            elif order["status"] == "FILLED":
                results.append({"success": False, "failure_reason": "ORDER_IS_FULLY_FILLED", "order_id": oid})
            elif order["status"] != "OPEN":
                results.append(
                    {"success": False, "failure_reason": "DUPLICATE_CANCEL_REQUEST", "order_id": oid}
                )
            else:
                self._cancel(order)
                results.append(
                    {"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": oid}
                )
                await self._send_user(order)
        return web.json_response({"results": results})

    def _cancel(self, order: dict[str, Any]) -> None:
        product = self.products[order["product_id"]]
        left = order["_base"] - Decimal(order["filled_size"])
        if order["side"] == "BUY":
            self._hold(product.quote, -(left * order["_limit"]))
        else:
            self._hold(product.base, -left)
        order["status"] = "CANCELLED"
        order["outstanding_hold_amount"] = "0"

    @staticmethod
    def _public(order: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    async def _get_order(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            return web.json_response(
                {
                    "error": "NOT_FOUND",
                    "error_details": "order with this orderID was not found",
                    "message": "order with this orderID was not found",
                },
                status=404,
            )
        return web.json_response({"order": self._public(order)})

    def _page(self, request: web.Request, items: list[Any]) -> tuple[list[Any], str]:
        try:
            limit = min(int(request.query.get("limit", self.max_page)), self.max_page)
            start = int(request.query.get("cursor") or 0)
        except ValueError:
            raise web.HTTPBadRequest(text='{"error":"INVALID_ARGUMENT","message":"bad paging"}') from None
        page = items[start : start + max(1, limit)]
        end = start + len(page)
        return page, (str(end) if end < len(items) else "")

    async def _list_orders(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        q = request.query
        statuses = set(q.getall("order_status", []))
        products = set(q.getall("product_ids", []))
        ids = set(q.getall("order_ids", []))
        start = q.get("start_date")
        items = [
            self._public(o)
            for o in reversed(list(self.orders.values()))
            if (not statuses or o["status"] in statuses)
            and (not products or o["product_id"] in products)
            and (not ids or o["order_id"] in ids)
            and (not start or o["created_time"] >= start.replace("+00:00", "Z")[:19])
        ]
        page, cursor = self._page(request, items)
        return web.json_response(
            {"orders": page, "sequence": "0", "has_next": bool(cursor), "cursor": cursor}
        )

    async def _list_fills(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        q = request.query
        ids = set(q.getall("order_ids", []))
        products = set(q.getall("product_ids", []))
        items = [
            f
            for f in reversed(self.fills)
            if (not ids or f["order_id"] in ids) and (not products or f["product_id"] in products)
        ]
        page, cursor = self._page(request, items)
        return web.json_response({"fills": page, "cursor": cursor})


_KINDS = {
    "market_market_ioc": "IMMEDIATE_OR_CANCEL",
    "market_market_fok": "FILL_OR_KILL",
    "sor_limit_ioc": "IMMEDIATE_OR_CANCEL",
    "limit_limit_gtc": "GOOD_UNTIL_CANCELLED",
    "limit_limit_gtd": "GOOD_UNTIL_DATE_TIME",
    "limit_limit_fok": "FILL_OR_KILL",
    "stop_limit_stop_limit_gtc": "GOOD_UNTIL_CANCELLED",
    "stop_limit_stop_limit_gtd": "GOOD_UNTIL_DATE_TIME",
}
