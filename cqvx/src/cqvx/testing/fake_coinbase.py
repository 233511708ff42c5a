"""A wire-level fake of Coinbase Advanced Trade: REST under /api/v3/brokerage and both WebSockets.

Built from the documented shapes (REST reference, websocket-channels page, venues.md §1) and the real
samples in ``tests/coinbase/fixtures``; it is small on purpose: one in-memory book per product made of
external liquidity, balances with holds, orders that rest, cross (filling at the best opposite price) or
get rejected exactly as Coinbase answers (HTTP 200, ``success: false``, ``error_response``).

Authentication is checked on every private request: a CDP JWT (ES256 or EdDSA) verified with the
registered PUBLIC key, its ``kid``/``sub``, ``iss="cdp"``, ``nbf``/``exp`` and the ``uri`` claim
(``METHOD host/path``, no query); or legacy HMAC headers.  WebSocket subscribes are checked the same
way (JWT without ``uri``); ``user`` needs one.  A connection that sends no subscribe within
``subscribe_deadline`` seconds is closed, as the venue does.

Test controls: :meth:`push_l2`, :meth:`push_trade`, :meth:`push_ticker`, :meth:`push_candle`,
:meth:`fill` (a maker fill of a resting order), :meth:`inject_gap` (skip sequence numbers),
:meth:`drop_ws` (inherited) / :meth:`drop_kind`, ``refused_ws`` (an endpoint refusing connections),
``cancel_failures`` (scripted batch_cancel failure reasons), ``cfm_positions`` and
``cfm_balance_summary`` (the futures account), plus the base class's HTTP faults (5xx, 429, resets,
latency) and its counters (``rate_limits_served``).

    async with FakeCoinbase(keys={"organizations/o/apiKeys/k": public_key}) as fake:
        client = CoinbaseClient(CoinbaseConfig(rest_url=fake.url, ws_market_url=fake.ws_market_url, ...))
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Literal

import jwt as pyjwt
import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from cqvx.testing.fakeserver import FakeServer, Fault

__all__ = ["FakeCoinbase", "FakeProduct"]

P = "/api/v3/brokerage"
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_ZERO = Decimal(0)


def _s(d: Decimal) -> str:
    if not d:
        return "0"
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FakeProduct:
    product_id: str
    base_increment: str = "0.00000001"
    quote_increment: str = "0.01"
    base_min_size: str = "0.00000001"
    base_max_size: str = "3400"
    quote_min_size: str = "1"
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    # A futures product: its ``future_product_details`` object (products reference); None for spot.
    future: dict[str, Any] | None = None

    @property
    def base(self) -> str:
        if self.future is not None:
            return str(self.future.get("contract_root_unit", ""))
        return self.product_id.split("-")[0]

    @property
    def quote(self) -> str:
        return "USD" if self.future is not None else self.product_id.split("-")[1]

    def wire(self) -> dict[str, Any]:
        mid = ""
        if self.bids and self.asks:
            mid = _s((max(self.bids) + min(self.asks)) / 2)
        return {
            "product_id": self.product_id,
            "price": mid,
            "volume_24h": "100",
            "base_increment": self.base_increment,
            "quote_increment": self.quote_increment,
            "price_increment": self.quote_increment,
            "quote_min_size": self.quote_min_size,
            "quote_max_size": "1000000",
            "base_min_size": self.base_min_size,
            "base_max_size": self.base_max_size,
            "status": "online",
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": False,
            "is_disabled": False,
            "product_type": "SPOT" if self.future is None else "FUTURE",
            "quote_currency_id": self.quote,
            "base_currency_id": self.base if self.future is None else "",
            "future_product_details": self.future,
        }


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    kind: Literal["market", "user"]
    seq: int = -1
    skip: int = 0
    subs: dict[str, set[str]] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _AuthError(Exception):
    pass


class FakeCoinbase(FakeServer):
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

    async def drop_kind(self, kind: Literal["market", "user"]) -> int:
        """Close only the market-data or only the user-endpoint connections; returns how many."""
        conns = [c for c in self._conns if c.kind == kind and not c.ws.closed]
        for c in conns:
            self.ws_connections.discard(c.ws)
            await c.ws.close(code=1011, message=b"dropped by fake server")
        return len(conns)

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

    async def _accounts(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        items = [
            {
                "uuid": f"acct-{cur.lower()}",
                "name": f"{cur} Wallet",
                "currency": cur,
                "available_balance": {"value": _s(avail), "currency": cur},
                "default": False,
                "active": True,
                "created_at": "2021-05-31T09:59:59Z",
                "updated_at": _now_iso(),
                "deleted_at": None,
                "type": "ACCOUNT_TYPE_CRYPTO",
                "ready": True,
                "hold": {"value": _s(self.holds.get(cur, _ZERO)), "currency": cur},
                "retail_portfolio_id": "p1",
            }
            for cur, avail in sorted(self.available.items())
        ]
        page, cursor = self._page(request, items)
        return web.json_response(
            {"accounts": page, "has_next": bool(cursor), "cursor": cursor, "size": len(page)}
        )

    async def _cfm_positions(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        return web.json_response({"positions": list(self.cfm_positions.values())})

    async def _cfm_position(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        position = self.cfm_positions.get(request.match_info["product_id"])
        if position is None:
            return web.json_response(
                {"error": "NOT_FOUND", "message": "position not found", "error_details": ""}, status=404
            )
        return web.json_response({"position": position})

    async def _cfm_balance(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        if self.cfm_balance_summary is None:
            return web.json_response(
                {"error": "PERMISSION_DENIED", "message": "no futures account", "error_details": ""},
                status=403,
            )
        return web.json_response({"balance_summary": self.cfm_balance_summary})

    async def _time(self, request: web.Request) -> web.Response:
        now = time.time()
        return web.json_response(
            {"iso": _now_iso(), "epochSeconds": str(int(now)), "epochMillis": str(int(now * 1000))}
        )

    # --- market data -------------------------------------------------------------------------

    def _product_or_404(self, pid: str) -> FakeProduct:
        product = self.products.get(pid)
        if product is None:
            raise web.HTTPNotFound(
                text='{"error":"NOT_FOUND","message":"product not found"}', content_type="application/json"
            )
        return product

    async def _products(self, request: web.Request) -> web.Response:
        wanted = set(request.query.getall("product_ids", []))
        kind = request.query.get("product_type")
        items = [
            w
            for p in self.products.values()
            if (not wanted or p.product_id in wanted)
            for w in [p.wire()]
            if not kind or w["product_type"] == kind
        ]
        return web.json_response({"products": items, "num_products": len(items)})

    async def _product(self, request: web.Request) -> web.Response:
        return web.json_response(self._product_or_404(request.match_info["product_id"]).wire())

    @staticmethod
    def _book(product: FakeProduct, limit: int | None = None) -> dict[str, Any]:
        bids = sorted(product.bids.items(), reverse=True)[:limit]
        asks = sorted(product.asks.items())[:limit]
        return {
            "product_id": product.product_id,
            "bids": [{"price": _s(p), "size": _s(s)} for p, s in bids],
            "asks": [{"price": _s(p), "size": _s(s)} for p, s in asks],
            "time": _now_iso(),
        }

    async def _product_book(self, request: web.Request) -> web.Response:
        product = self._product_or_404(request.query.get("product_id", ""))
        limit = int(request.query.get("limit") or 0) or None
        return web.json_response({"pricebook": self._book(product, limit)})

    async def _best_bid_ask(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        ids = request.query.getall("product_ids", []) or list(self.products)
        return web.json_response({"pricebooks": [self._book(self._product_or_404(i), 1) for i in ids]})

    async def _candles(self, request: web.Request) -> web.Response:
        self._product_or_404(request.match_info["product_id"])
        start = int(request.query.get("start", "0"))
        end = int(request.query.get("end", "0"))
        width = {"ONE_MINUTE": 60, "FIVE_MINUTE": 300, "ONE_HOUR": 3600, "ONE_DAY": 86400}.get(
            request.query.get("granularity", ""), 0
        )
        if not width or end <= start:
            return web.json_response({"error": "INVALID_ARGUMENT", "message": "bad candle range"}, status=400)
        starts = list(range(start - start % width, end, width))[-350:]
        candles = [
            {"start": str(t), "low": "99", "high": "101", "open": "100", "close": "100.5", "volume": "1.5"}
            for t in reversed(starts)
        ]
        return web.json_response({"candles": candles})

    async def _ticker(self, request: web.Request) -> web.Response:
        product = self._product_or_404(request.match_info["product_id"])
        limit = int(request.query.get("limit") or 100)
        trades = list(reversed(self.trades.get(product.product_id, [])))[:limit]
        return web.json_response(
            {
                "trades": trades,
                "best_bid": _s(max(product.bids)) if product.bids else "",
                "best_ask": _s(min(product.asks)) if product.asks else "",
            }
        )

    # --- WebSocket ------------------------------------------------------------------------------

    async def _serve(self, request: web.Request, kind: Literal["market", "user"]) -> web.WebSocketResponse:
        if kind in self.refused_ws:
            raise web.HTTPServiceUnavailable(text="websocket endpoint down (fake)")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_connects += 1
        conn = _Conn(ws, kind)
        self._conns.append(conn)
        self.ws_connections.add(ws)
        deadline = asyncio.create_task(self._deadline(conn))
        try:
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    self.ws_received.append((self.ws_connects, msg.data))
                    await self._on_ws_text(conn, msg.data)
                elif msg.type == web.WSMsgType.ERROR:
                    break
        finally:
            deadline.cancel()
            for t in conn.tasks:
                t.cancel()
            self.ws_connections.discard(ws)
            if conn in self._conns:
                self._conns.remove(conn)
        return ws

    async def _deadline(self, conn: _Conn) -> None:
        try:
            await asyncio.wait_for(conn.subscribed.wait(), self.subscribe_deadline)
        except TimeoutError:
            self.deadline_closes += 1
            await conn.ws.close(code=1000, message=b"no subscribe within deadline")

    async def _send(self, conn: _Conn, channel: str, events: list[Any]) -> None:
        async with conn.lock:
            if conn.ws.closed:
                return
            conn.seq += 1 + conn.skip
            conn.skip = 0
            await conn.ws.send_str(
                msgspec.json.encode(
                    {
                        "channel": channel,
                        "client_id": "",
                        "timestamp": _now_iso(),
                        "sequence_num": conn.seq,
                        "events": events,
                    }
                ).decode()
            )

    def inject_gap(self, count: int = 1) -> None:
        """The next message on every live connection skips ``count`` sequence numbers."""
        for conn in self._conns:
            conn.skip += count

    async def _on_ws_text(self, conn: _Conn, text: str) -> None:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            await conn.ws.send_str('{"type":"error","message":"failure to parse message"}')
            return
        if not isinstance(msg, dict):
            return
        self.subscribe_messages.append(msg)
        mtype, channel = msg.get("type"), msg.get("channel")
        products = [str(p) for p in msg.get("product_ids") or []]
        if mtype not in ("subscribe", "unsubscribe") or not isinstance(channel, str):
            await conn.ws.send_str('{"type":"error","message":"unknown message type"}')
            return
        token = msg.get("jwt")
        try:
            if token is not None:
                self._verify_jwt(str(token), None)
            elif channel in ("user", "futures_balance_summary"):
                raise _AuthError("authentication required")
        except _AuthError as exc:
            self.auth_failures.append(f"ws: {exc}")
            await conn.ws.send_str(msgspec.json.encode({"type": "error", "message": str(exc)}).decode())
            return
        if channel == "user" and conn.kind != "user":
            pass  # the market endpoint also serves user (auth checked above)
        if mtype == "unsubscribe":
            if products:
                conn.subs.get(channel, set()).difference_update(products)
            else:
                conn.subs.pop(channel, None)
            await self._send(
                conn, "subscriptions", [{"subscriptions": {k: sorted(v) for k, v in conn.subs.items()}}]
            )
            return
        targets = set(products)
        if channel in ("level2", "market_trades", "ticker", "candles") and not targets:
            await conn.ws.send_str('{"type":"error","message":"product_ids required"}')
            return
        unknown = [p for p in targets if p not in self.products]
        if unknown:
            await conn.ws.send_str(
                msgspec.json.encode({"type": "error", "message": f"unknown product {unknown[0]}"}).decode()
            )
            return
        conn.subs.setdefault(channel, set()).update(targets or {channel})
        conn.subscribed.set()
        await self._send(
            conn, "subscriptions", [{"subscriptions": {k: sorted(v) for k, v in conn.subs.items()}}]
        )
        if channel == "heartbeats" and not any(t.get_name() == "hb" for t in conn.tasks):
            conn.tasks.append(asyncio.create_task(self._heartbeats(conn), name="hb"))
        elif channel == "level2":
            for pid in sorted(targets):
                await self._send(
                    conn, "l2_data", [self._l2_event("snapshot", pid, self._l2_levels(self.products[pid]))]
                )
        elif channel == "market_trades":
            for pid in sorted(targets):
                await self._send(
                    conn,
                    "market_trades",
                    [{"type": "snapshot", "trades": list(reversed(self.trades.get(pid, [])))[:50]}],
                )
        elif channel == "ticker":
            await self._send(
                conn,
                "ticker",
                [
                    {
                        "type": "snapshot",
                        "tickers": [self._ticker_obj(self.products[p]) for p in sorted(targets)],
                    }
                ],
            )
        elif channel == "candles":
            await self._send(
                conn,
                "candles",
                [{"type": "snapshot", "candles": [self._candle_obj(p) for p in sorted(targets)]}],
            )
        elif channel == "user":
            open_orders = [self._ws_order(o) for o in self.orders.values() if o["status"] == "OPEN"]
            # Open orders come in "snapshot" events batched by 50 (user channel reference); nothing
            # marks the last batch, so 50 or 100 open orders end on a FULL batch, and "update" events
            # follow.  At least one snapshot event is sent, empty when nothing is open.
            for i in range(0, max(len(open_orders), 1), 50):
                await self._send(
                    conn, "user", [{"type": "snapshot", "orders": open_orders[i : i + 50], "positions": {}}]
                )

    async def _heartbeats(self, conn: _Conn) -> None:
        while not conn.ws.closed:
            await self._send(
                conn,
                "heartbeats",
                [{"current_time": _now_iso(), "heartbeat_counter": next(self._hb_counter)}],
            )
            await asyncio.sleep(self.heartbeat_interval)

    @staticmethod
    def _l2_levels(product: FakeProduct) -> list[tuple[str, Decimal, Decimal]]:
        return [("bid", p, s) for p, s in sorted(product.bids.items(), reverse=True)] + [
            ("offer", p, s) for p, s in sorted(product.asks.items())
        ]

    @staticmethod
    def _l2_event(kind: str, pid: str, levels: list[tuple[str, Decimal, Decimal]]) -> dict[str, Any]:
        now = _now_iso()
        return {
            "type": kind,
            "product_id": pid,
            "updates": [
                {"side": side, "event_time": now, "price_level": _s(p), "new_quantity": _s(s)}
                for side, p, s in levels
            ],
        }

    def _ticker_obj(self, product: FakeProduct) -> dict[str, Any]:
        bid = max(product.bids) if product.bids else _ZERO
        ask = min(product.asks) if product.asks else _ZERO
        last = self.trades.get(product.product_id, [{}])[-1].get("price", _s((bid + ask) / 2))
        return {
            "type": "ticker",
            "product_id": product.product_id,
            "price": last,
            "volume_24_h": "100",
            "low_24_h": "1",
            "high_24_h": "1000000",
            "low_52_w": "1",
            "high_52_w": "1000000",
            "price_percent_chg_24_h": "0",
            "best_bid": _s(bid),
            "best_bid_quantity": _s(product.bids.get(bid, _ZERO)),
            "best_ask": _s(ask),
            "best_ask_quantity": _s(product.asks.get(ask, _ZERO)),
        }

    @staticmethod
    def _candle_obj(pid: str, close: str = "100.5") -> dict[str, Any]:
        start = int(time.time()) // 300 * 300
        return {
            "start": str(start),
            "high": "101",
            "low": "99",
            "open": "100",
            "close": close,
            "volume": "1.5",
            "product_id": pid,
        }

    def _subscribers(self, channel: str, key: str) -> list[_Conn]:
        return [c for c in self._conns if key in c.subs.get(channel, ()) and not c.ws.closed]

    async def wait_subscribed(self, channel: str, product_id: str = "", timeout: float = 3.0) -> None:
        """Until a live connection is subscribed to ``channel`` (for ``product_id``): tests synchronise on
        this instead of sleeping."""
        key = product_id or channel
        async with asyncio.timeout(timeout):
            while not self._subscribers(channel, key):  # noqa: ASYNC110 - polling our own state
                await asyncio.sleep(0.005)

    async def push_l2(
        self,
        product_id: str,
        bids: Sequence[tuple[str, str]] = (),
        asks: Sequence[tuple[str, str]] = (),
        *,
        publish: bool = True,
    ) -> None:
        """Change the book (absolute sizes, "0" removes) and send an l2_data update (unless not
        ``publish``: a change the clients never hear about, as after a lost message)."""
        product = self.products[product_id]
        levels: list[tuple[str, Decimal, Decimal]] = []
        for side_name, book, pairs in (("bid", product.bids, bids), ("offer", product.asks, asks)):
            for p_text, s_text in pairs:
                p, s = Decimal(p_text), Decimal(s_text)
                if s:
                    book[p] = s
                else:
                    book.pop(p, None)
                levels.append((side_name, p, s))
        if not publish:
            return
        for conn in self._subscribers("level2", product_id):
            await self._send(conn, "l2_data", [self._l2_event("update", product_id, levels)])

    async def push_trade(self, product_id: str, price: str, size: str, side: str = "BUY") -> dict[str, Any]:
        """A public trade (``side`` is the maker side, as on the venue)."""
        trade = {
            "trade_id": str(next(self._trade_ids)),
            "product_id": product_id,
            "price": price,
            "size": size,
            "side": side,
            "time": _now_iso(),
            "bid": "",
            "ask": "",
            "exchange": "coinbase",
        }
        self.trades.setdefault(product_id, []).append(trade)
        wire = {k: trade[k] for k in ("trade_id", "product_id", "price", "size", "side", "time")}
        for conn in self._subscribers("market_trades", product_id):
            await self._send(conn, "market_trades", [{"type": "update", "trades": [wire]}])
        return trade

    async def push_ticker(self, product_id: str) -> None:
        for conn in self._subscribers("ticker", product_id):
            await self._send(
                conn, "ticker", [{"type": "update", "tickers": [self._ticker_obj(self.products[product_id])]}]
            )

    async def push_candle(self, product_id: str, close: str = "100.5") -> None:
        for conn in self._subscribers("candles", product_id):
            await self._send(
                conn, "candles", [{"type": "update", "candles": [self._candle_obj(product_id, close)]}]
            )

    @staticmethod
    def _ws_order(o: Mapping[str, Any]) -> dict[str, Any]:
        ((_kind, leg),) = o["order_configuration"].items()
        base = o["_base"]
        filled = Decimal(o["filled_size"])
        leaves = _ZERO if o["status"] != "OPEN" else base - filled
        return {
            "order_id": o["order_id"],
            "client_order_id": o["client_order_id"],
            "cumulative_quantity": o["filled_size"],
            "leaves_quantity": _s(leaves),
            "avg_price": o["average_filled_price"],
            "total_fees": o["total_fees"],
            "status": o["status"],
            "product_id": o["product_id"],
            "creation_time": o["created_time"],
            "order_side": o["side"],
            "order_type": {"MARKET": "Market", "LIMIT": "Limit", "STOP_LIMIT": "Stop Limit"}[o["order_type"]],
            "cancel_reason": "",
            "reject_reason": "",
            "total_value_after_fees": "0",
            "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
            "product_type": "SPOT",
            "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
            "time_in_force": o["time_in_force"],
            "trigger_status": "INVALID_ORDER_TYPE",
            "limit_price": str(leg.get("limit_price", "")),
            "stop_price": str(leg.get("stop_price", "")),
            "post_only": "true" if leg.get("post_only") else "false",
            "number_of_fills": o["number_of_fills"],
            "filled_value": o["filled_value"],
            "end_time": "0001-01-01T00:00:00Z",
            "start_time": "0001-01-01T00:00:00Z",
        }

    def _notify_user(self, order: Mapping[str, Any]) -> None:
        if any(self._subscribers("user", "user")):
            # Called from a request handler: schedule so the HTTP answer is not held up.
            asyncio.get_running_loop().create_task(self._send_user(order))

    async def _send_user(self, order: Mapping[str, Any]) -> None:
        for conn in self._subscribers("user", "user"):
            await self._send(conn, "user", [{"type": "update", "orders": [self._ws_order(order)]}])


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


def _default_products() -> list[FakeProduct]:
    return [
        FakeProduct(
            "BTC-USD",
            bids={Decimal("49990"): Decimal("1.5"), Decimal("49980"): Decimal("2")},
            asks={Decimal("50010"): Decimal("1.2"), Decimal("50020"): Decimal("3")},
        ),
        FakeProduct(
            "ETH-USD",
            base_increment="0.0001",
            bids={Decimal("2999"): Decimal("10")},
            asks={Decimal("3001"): Decimal("12")},
        ),
    ]
