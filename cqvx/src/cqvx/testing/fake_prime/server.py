"""A wire-level fake of the Coinbase Prime REST API (v1, portfolio-scoped), sharing no code with the
adapter.

Built from the official SDK's shapes (``prime_sdk``) and venues.md §2 / §11.  Every request is
authenticated with the fake's own HMAC check: ``X-CB-ACCESS-SIGNATURE`` must equal
base64(HMAC-SHA256(signing key as raw UTF-8, timestamp + METHOD + path + body)) with the path
including ``/v1`` and excluding the query; the timestamp must be integer seconds within ``max_skew``
(30 s) of the fake's clock; key and passphrase must match.  A portfolio other than the key's is
``PERMISSION_DENIED`` (keys are portfolio-scoped).  Errors are ``{code, message, subcode, trace_id}``.

Test controls: ``clock`` (:class:`FakeClock`), ``state`` (:class:`~.book.PrimeState`: prices,
balances, orders, fills; ``child_fill`` plays an algorithm), ``quote_ttl`` (seconds; Prime holds
quotes ~2.5 s), ``candles`` (served by ``GET .../candles``), ``tamper`` (rewrite object replies),
``page_limit`` (cap page sizes to force pagination), plus the base class's HTTP faults (5xx, 429,
resets, latency; ``after=True`` = processed, reply lost) and ``rate_limits_served`` / ``auth_failures``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from cqvx.testing.fake_prime.book import FakeOrder, PrimeState, Refusal
from cqvx.testing.fake_prime.ws import FakePrimeFeed
from cqvx.testing.fakeserver import FakeServer, Fault

__all__ = ["FakeClock", "FakePrime"]


class FakeClock:
    """Wall time the test controls; calling it returns Unix nanoseconds (the signer's clock type)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> int:
        return int(self.now * 1_000_000_000)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def iso(self, offset: float = 0.0) -> str:
        return datetime.fromtimestamp(self.now + offset, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakePrime(FakeServer):
    def __init__(
        self,
        *,
        access_key: str,
        passphrase: str,
        signing_key: str,
        portfolio_id: str,
        clock: FakeClock | None = None,
        max_skew: float = 30.0,
    ) -> None:
        super().__init__()
        self.access_key = access_key
        self.passphrase = passphrase
        self._key = signing_key.encode("utf-8")  # raw, never base64-decoded (venues.md §2.2)
        self.portfolio_id = portfolio_id
        self.clock = clock or FakeClock()
        self.max_skew = max_skew
        self.state = PrimeState()
        self.quote_ttl = 2.5
        self.quotes: dict[str, dict[str, Any]] = {}
        # (product_id, granularity) -> candle objects as Prime sends them (a test fills it).
        self.candles: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.tamper: Callable[[dict[str, Any]], None] | None = None
        self.page_limit: int | None = None
        self.rate_limits_served = 0
        self.auth_failures = 0
        self.feed = FakePrimeFeed(self)

    # --- plumbing -----------------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        r = app.router
        base = "/v1/portfolios/{pid}"
        r.add_get("/v1/portfolios", self._portfolios)
        r.add_get(base, self._portfolio)
        r.add_post(base + "/order", self._create)
        r.add_post(base + "/order_preview", self._preview)
        r.add_get(base + "/open_orders", self._open_orders)
        r.add_get(base + "/orders", self._history)
        r.add_get(base + "/orders/{oid}", self._get_order)
        r.add_post(base + "/orders/{oid}/cancel", self._cancel)
        r.add_get(base + "/orders/{oid}/fills", self._order_fills)
        r.add_get(base + "/fills", self._fills)
        r.add_get(base + "/balances", self._balances)
        r.add_get(base + "/products", self._products)
        r.add_get(base + "/candles", self._candles)
        r.add_post(base + "/rfq", self._rfq)
        r.add_post(base + "/accept_quote", self._accept)
        r.add_get("/ws", self.feed.handle)

    def _take_fault(self, path: str, method: str) -> Fault | None:
        fault = super()._take_fault(path, method)
        if fault is not None and fault.kind == "status" and fault.status == 429:
            self.rate_limits_served += 1
        return fault

    async def fill_order(
        self, order_id: str, qty: Decimal, price: Decimal | None = None, *, publish: bool = True
    ) -> None:
        """A counterparty (or an algorithm's slice) fills ``qty`` of a resting order; the update goes
        out on the orders channel unless ``publish=False`` (lost in transit)."""
        order = self.state.orders[order_id]
        self.state.fill(
            order,
            qty,
            price if price is not None else order.limit_price or self.state.prices[order.product_id],
            self.clock.iso(),
        )
        await self.feed.publish_order(order, publish=publish)

    def orders_with_client_id(self, coid: str) -> int:
        return self.state.orders_with_client_id(coid)

    @staticmethod
    def error(status: int, code: str, message: str, subcode: str = "") -> web.Response:
        body = {"code": code, "message": message, "subcode": subcode, "trace_id": str(uuid.uuid4().int)[:19]}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    def _ok(self, obj: dict[str, Any]) -> web.Response:
        if self.tamper is not None:
            obj = dict(obj)
            self.tamper(obj)
        return web.Response(status=200, text=json.dumps(obj), content_type="application/json")

    async def _auth(self, request: web.Request) -> tuple[web.Response | None, bytes]:
        body = await request.read()
        h = request.headers
        ts = h.get("X-CB-ACCESS-TIMESTAMP", "")
        prehash = ts.encode() + request.method.encode() + request.path.encode() + body
        want = base64.b64encode(hmac.new(self._key, prehash, hashlib.sha256).digest()).decode()
        skew = abs(int(ts) - self.clock.now) if ts.isdigit() else float("inf")  # integer seconds only
        ok = (
            h.get("X-CB-ACCESS-KEY") == self.access_key
            and h.get("X-CB-ACCESS-PASSPHRASE") == self.passphrase
            and hmac.compare_digest(h.get("X-CB-ACCESS-SIGNATURE", ""), want)
            and skew <= self.max_skew
        )
        if not ok:
            self.auth_failures += 1
            return self.error(
                401, "AUTHENTICATION_FAILED", "invalid signature, key, passphrase or timestamp"
            ), body
        pid = request.match_info.get("pid")
        if pid is not None and pid != self.portfolio_id:
            return self.error(403, "PERMISSION_DENIED", "key is not scoped to this portfolio"), body
        return None, body

    def _page(self, request: web.Request, items: list[dict[str, Any]], key: str) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        if self.page_limit is not None:
            limit = min(limit, self.page_limit)
        start = int(request.query.get("cursor", "0") or "0")
        chunk = items[start : start + limit]
        has_next = start + limit < len(items)
        pagination = {
            "next_cursor": str(start + limit) if has_next else "",
            "sort_direction": "DESC",
            "has_next": has_next,
        }
        return self._ok({key: chunk, "pagination": pagination})

    def _order(self, request: web.Request) -> FakeOrder | None:
        return self.state.orders.get(request.match_info["oid"])

    # --- portfolios -------------------------------------------------------------------------------

    def _portfolio_json(self) -> dict[str, Any]:
        return {
            "id": self.portfolio_id,
            "name": "Fake portfolio",
            "entity_id": "fake-entity",
            "organization_id": "fake-org",
        }

    async def _portfolios(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        return refused or self._ok({"portfolios": [self._portfolio_json()]})

    async def _portfolio(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        return refused or self._ok({"portfolio": self._portfolio_json()})

    # --- orders -----------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        refused, raw = await self._auth(request)
        if refused:
            return refused
        try:
            body = json.loads(raw)
        except ValueError:
            return self.error(400, "VALIDATION_ERROR", "body is not JSON")
        if body.get("portfolio_id") != self.portfolio_id:
            return self.error(400, "VALIDATION_ERROR", "portfolio_id does not match the path")
        try:
            order = self.state.create(body, self.clock.iso())
        except Refusal as r:
            return self.error(r.status, r.code, r.message, r.subcode)
        await self.feed.publish_order(order)
        return self._ok({"order_id": order.id})

    async def _preview(self, request: web.Request) -> web.Response:
        refused, raw = await self._auth(request)
        if refused:
            return refused
        body = json.loads(raw)
        product = body.get("product_id", "")
        if product not in self.state.prices:
            return self.error(400, "VALIDATION_ERROR", "unknown product")
        price = self.state.prices[product]
        qty = Decimal(str(body.get("base_quantity") or "0"))
        total = qty * price
        return self._ok(
            {
                "portfolio_id": self.portfolio_id,
                "product_id": product,
                "side": body.get("side"),
                "type": body.get("type"),
                "base_quantity": str(qty),
                "commission": str(total * self.state.commission_rate),
                "slippage": "0.0001",
                "best_bid": str(price - 1),
                "best_ask": str(price + 1),
                "average_filled_price": str(price),
                "order_total": str(total),
            }
        )

    async def _get_order(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        order = self._order(request)
        if order is None:
            return self.error(
                404, "VALIDATION_ERROR", "Order with this orderID was not found", "ORDER_RESOURCE_NOT_FOUND"
            )
        return self._ok({"order": order.as_json(self.portfolio_id)})

    async def _cancel(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        order = self._order(request)
        if order is None:
            return self.error(
                404, "VALIDATION_ERROR", "Order with this orderID was not found", "ORDER_RESOURCE_NOT_FOUND"
            )
        if order.status == "OPEN":
            order.status = "CANCELLED"
            await self.feed.publish_order(order)
        return self._ok({"id": order.id})

    def _listed(self, request: web.Request, statuses: set[str] | None) -> list[dict[str, Any]]:
        products = set(request.query.getall("product_ids", []))
        out = [
            o.as_json(self.portfolio_id)
            for o in reversed(list(self.state.orders.values()))
            if (statuses is None or o.status in statuses) and (not products or o.product_id in products)
        ]
        return out

    async def _open_orders(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        return self._page(request, self._listed(request, {"OPEN", "PENDING"}), "orders")

    async def _history(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        if not request.query.get("start_date"):
            return self.error(400, "REQUIRED_FIELD_MISSING", "start_date is required")
        wanted = set(request.query.getall("order_statuses", [])) or None
        return self._page(request, self._listed(request, wanted), "orders")

    async def _order_fills(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        oid = request.match_info["oid"]
        return self._page(request, [f for f in self.state.fills if f["order_id"] == oid], "fills")

    async def _fills(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        if not request.query.get("start_date"):
            return self.error(400, "REQUIRED_FIELD_MISSING", "start_date is required")
        return self._page(request, list(self.state.fills), "fills")

    # --- account and products ---------------------------------------------------------------------

    async def _balances(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        kind = request.query.get("balance_type", "TRADING_BALANCES")
        balances = [
            {
                "symbol": sym.lower(),
                "amount": str(amount),
                "holds": str(self.state.holds(sym)),
                "bonded_amount": "0",
            }
            for sym, amount in sorted(self.state.balances.items())
        ]
        return self._ok({"balances": balances, "type": kind, "trading_balances": {}, "vault_balances": {}})

    async def _products(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        products = [
            {
                "id": pid,
                "base_increment": "0.00000001",
                "quote_increment": "0.01",
                "price_increment": "0.01" if pid.startswith("BTC") else "0.1",
                "base_min_size": "0.0001",
                "base_max_size": "1000",
                "quote_min_size": "1",
                "quote_max_size": "10000000",
                "permissions": ["PRODUCT_PERMISSION_READ", "PRODUCT_PERMISSION_TRADE"],
            }
            for pid in sorted(self.state.prices)
        ]
        return self._page(request, products, "products")

    # --- candles (Get Public Product Candles, beta) -------------------------------------------------

    async def _candles(self, request: web.Request) -> web.Response:
        refused, _ = await self._auth(request)
        if refused:
            return refused
        q = request.query
        product, granularity = q.get("product_id", ""), q.get("granularity", "")
        if not product or not granularity:
            return self.error(400, "REQUIRED_FIELD_MISSING", "product_id and granularity are required")
        if product not in self.state.prices:
            return self.error(400, "VALIDATION_ERROR", "unknown product")
        if granularity not in _GRANULARITIES:
            return self.error(400, "VALIDATION_ERROR", f"invalid granularity {granularity}")
        try:
            lo = _when(q.get("start_time"))
            hi = _when(q.get("end_time"))
        except ValueError:
            return self.error(400, "VALIDATION_ERROR", "start_time/end_time must be RFC 3339")
        rows = [
            c
            for c in self.candles.get((product, granularity), [])
            if _within(_moment(c["timestamp"]), lo, hi)
        ]
        rows.sort(key=lambda c: c["timestamp"], reverse=True)  # the default sort_direction: DESC
        return self._page(request, rows, "candles")

    # --- RFQ --------------------------------------------------------------------------------------

    async def _rfq(self, request: web.Request) -> web.Response:
        refused, raw = await self._auth(request)
        if refused:
            return refused
        body = json.loads(raw)
        product = body.get("product_id", "")
        if product not in self.state.prices:
            return self.error(400, "VALIDATION_ERROR", "unknown product")
        if body.get("quote_value"):
            return self.error(400, "VALIDATION_ERROR", "quote units are not yet supported")
        for key in ("base_quantity", "limit_price", "side", "client_quote_id"):
            if not body.get(key):
                return self.error(400, "REQUIRED_FIELD_MISSING", f"{key} is required")
        price = self.state.prices[product]
        side = body["side"]
        quoted = price + 5 if side == "BUY" else price - 5
        limit = Decimal(str(body["limit_price"]))
        if (side == "BUY" and limit < quoted) or (side == "SELL" and limit > quoted):
            return self.error(400, "FAILED_PRECONDITION", "limit price is not marketable")
        qid = str(uuid.uuid4())
        qty = Decimal(str(body["base_quantity"]))
        self.quotes[qid] = {
            "product_id": product,
            "side": side,
            "qty": qty,
            "price": quoted,
            "expires": self.clock.now + self.quote_ttl,
            "accepted": False,
        }
        return self._ok(
            {
                "quote_id": qid,
                "expiration_time": self.clock.iso(self.quote_ttl),
                "best_price": str(quoted),
                "order_total": str(quoted * qty),
                "price_inclusive_of_fees": str(quoted),
            }
        )

    async def _accept(self, request: web.Request) -> web.Response:
        refused, raw = await self._auth(request)
        if refused:
            return refused
        body = json.loads(raw)
        q = self.quotes.get(body.get("quote_id", ""))
        if q is None:
            return self.error(404, "RESOURCE_NOT_FOUND", "quote not found")
        if q["accepted"] or self.clock.now >= q["expires"]:
            return self.error(400, "FAILED_PRECONDITION", "quote expired", "QUOTE_EXPIRED")
        if body.get("side") != q["side"] or body.get("product_id") != q["product_id"]:
            return self.error(400, "VALIDATION_ERROR", "side or product does not match the quote")
        now = self.clock.iso()
        order = FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=str(body.get("client_order_id") or ""),
            product_id=q["product_id"],
            side=q["side"],
            type="RFQ",
            base_quantity=q["qty"],
            limit_price=q["price"],
            created_at=now,
            time_in_force="FILL_OR_KILL",
        )
        self.state.orders[order.id] = order
        self.state.fill(order, q["qty"], q["price"], now)
        q["accepted"] = True
        return self._ok({"order_id": order.id})


_GRANULARITIES = frozenset(
    {
        "ONE_MINUTE",
        "FIVE_MINUTES",
        "FIFTEEN_MINUTES",
        "THIRTY_MINUTE",
        "ONE_HOUR",
        "TWO_HOUR",
        "FOUR_HOUR",
        "SIX_HOURS",
        "ONE_DAY",
    }
)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _when(text: str | None) -> datetime | None:
    return None if text is None else _moment(text)


def _within(moment: datetime, lo: datetime | None, hi: datetime | None) -> bool:
    return (lo is None or moment >= lo) and (hi is None or moment < hi)
