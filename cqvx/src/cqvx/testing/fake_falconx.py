"""A wire-level fake of the FalconX RFQ REST API (v1 paths), sharing no code with the adapter.

Built from the official client's documented shapes (PyPI ``falconx``, ``falconx/client.py``
docstrings) and venues.md §3 / §11: quotes with a lifetime on a controllable clock, execution,
market and limit-FOK orders, executed-quote history, balances (JSON numbers, negative allowed),
pairs, and failures as ``{"status": "failure", "error": {"code", "reason"}}``.

Every request is authenticated with its own small HMAC check: ``FX-ACCESS-SIGN`` must equal
base64(HMAC-SHA256(base64-decoded secret, timestamp + METHOD + path-with-query + body)), the key and
passphrase must match, and the timestamp must be within ``max_skew`` seconds of the fake's clock.

Prices go out as JSON numbers written from their decimal text (``"buy_price": 50010.25``), as the
venue sends them, so a client that parsed through float would be caught by exact-value tests.

Test controls: ``clock`` (:class:`FakeClock`; ``advance(seconds)``), ``prices``, ``balances``,
``quote_ttl``, ``tamper`` (rewrite object replies), ``execute_failures`` (codes to answer the next
executes with), ``executions`` (how many times each quote was executed: never more than once),
``hold_execute`` (an :class:`asyncio.Event` the execute handler waits on, to race the clock), plus
the base class's
HTTP faults (5xx, 429, resets, latency; ``after=True`` = processed, reply lost) and
``rate_limits_served``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from cqvx.testing.fakeserver import FakeServer, Fault

__all__ = ["FakeClock", "FakeFalconX"]


class FakeClock:
    """Wall time the test controls; calling it returns Unix nanoseconds (the signer's clock type)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> int:
        return int(self.now * 1_000_000_000)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)


@dataclass
class _Quote:
    fx_quote_id: str
    base: str
    quote: str
    token: str
    value: Decimal
    side_requested: str
    buy_price: Decimal | None
    sell_price: Decimal | None
    t_quote: float
    t_expiry: float
    client_order_id: str | None
    is_filled: bool = False
    side_executed: str | None = None
    price_executed: Decimal | None = None
    t_execute: float | None = None
    order: dict[str, Any] = field(default_factory=dict)  # order fields (POST /v1/order only)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC).isoformat()


class _Num:
    """A Decimal written into JSON as a bare number with its exact text."""

    def __init__(self, value: Decimal) -> None:
        self.text = format(value, "f")


def _dumps(obj: Any) -> str:
    # json.dumps cannot write a Decimal as a number; placeholders are swapped for the exact text.
    marks: dict[str, str] = {}

    def default(o: Any) -> str:
        if isinstance(o, _Num):
            key = f"@@num{len(marks)}@@"
            marks[key] = o.text
            return key
        raise TypeError(type(o).__name__)

    text = json.dumps(obj, default=default)
    for key, num in marks.items():
        text = text.replace(f'"{key}"', num)
    return text


def _n(value: Decimal | None) -> _Num | None:
    return None if value is None else _Num(value)


class FakeFalconX(FakeServer):
    def __init__(
        self,
        *,
        api_key: str = "fx-key",
        secret: str = base64.b64encode(b"fake-falconx-secret-0123456789ab").decode(),
        passphrase: str = "fx-pass",
        clock: FakeClock | None = None,
        quote_ttl: float = 10.0,
        max_skew: float = 30.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.passphrase = passphrase
        self._key = base64.b64decode(secret)
        self.clock = clock or FakeClock()
        self.quote_ttl = quote_ttl
        self.max_skew = max_skew
        # pair "BTC-USD" -> (bid = our sell price, ask = our buy price)
        self.prices: dict[str, tuple[Decimal, Decimal]] = {
            "BTC-USD": (Decimal("50000.5"), Decimal("50010.25")),
            "ETH-USD": (Decimal("2999.9"), Decimal("3000.1")),
        }
        self.balances: dict[str, Decimal] = {
            "USD": Decimal("1000000"),
            "BTC": Decimal("10"),
            "ETH": Decimal("-2.5"),
        }
        self.quotes: dict[str, _Quote] = {}
        self.executions: dict[str, int] = {}
        self.execute_failures: list[str] = []
        self.hold_execute: asyncio.Event | None = None
        # Rewrites every object reply before it is sent (a venue answering something else).
        self.tamper: Callable[[dict[str, Any]], None] | None = None
        self.rate_limits_served = 0
        self.auth_failures = 0

    # --- plumbing -----------------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/pairs", self._pairs)
        app.router.add_get("/v1/balances", self._balances)
        app.router.add_post("/v1/quotes", self._new_quote)
        app.router.add_get("/v1/quotes", self._history)
        app.router.add_post("/v1/quotes/execute", self._execute)
        app.router.add_get("/v1/quotes/{fx_quote_id}", self._get_quote)
        app.router.add_post("/v1/order", self._order)

    def _take_fault(self, path: str, method: str) -> Fault | None:
        fault = super()._take_fault(path, method)
        if fault is not None and fault.kind == "status" and fault.status == 429:
            self.rate_limits_served += 1
        return fault

    @staticmethod
    def failure(code: str, reason: str, status: int = 400) -> web.Response:
        body = {"status": "failure", "error": {"code": code, "reason": reason}}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    def _ok(self, obj: Any) -> web.Response:
        if self.tamper is not None and isinstance(obj, dict):
            obj = dict(obj)
            self.tamper(obj)
        return web.Response(status=200, text=_dumps(obj), content_type="application/json")

    async def _authenticate(self, request: web.Request) -> tuple[web.Response | None, bytes]:
        body = await request.read()
        h = request.headers
        ts = h.get("FX-ACCESS-TIMESTAMP", "")
        sign = h.get("FX-ACCESS-SIGN", "")
        prehash = ts.encode() + request.method.encode() + request.raw_path.encode() + body
        want = base64.b64encode(hmac.new(self._key, prehash, hashlib.sha256).digest()).decode()
        try:
            skew = abs(float(ts) - self.clock.now)
        except ValueError:
            skew = float("inf")
        ok = (
            h.get("FX-ACCESS-KEY") == self.api_key
            and h.get("FX-ACCESS-PASSPHRASE") == self.passphrase
            and hmac.compare_digest(sign, want)
            and skew <= self.max_skew
        )
        if not ok:
            self.auth_failures += 1
            return self.failure("unauthorized", "invalid signature, key, passphrase or timestamp", 401), body
        return None, body

    def _view(self, q: _Quote) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "success",
            "fx_quote_id": q.fx_quote_id,
            "buy_price": _n(q.buy_price),
            "sell_price": _n(q.sell_price),
            "platform": "api",
            "token_pair": {"base_token": q.base, "quote_token": q.quote},
            "quantity_requested": {"token": q.token, "value": format(q.value, "f")},
            "side_requested": q.side_requested,
            "t_quote": _iso(q.t_quote),
            "t_expiry": _iso(q.t_expiry),
            "is_filled": q.is_filled,
            "side_executed": q.side_executed,
            "price_executed": _n(q.price_executed),
            "t_execute": _iso(q.t_execute),
            "client_order_id": q.client_order_id,
            "trader_email": "trader@example.com",
            "error": None,
        }
        if q.order:
            # The order response carries no price_executed / t_execute (venues.md §11).
            del out["price_executed"], out["t_execute"]
            out.update(q.order)
        return out

    # --- routes -------------------------------------------------------------------------------------

    async def _pairs(self, request: web.Request) -> web.Response:
        denied, _ = await self._authenticate(request)
        if denied is not None:
            return denied
        pairs = [dict(zip(("base_token", "quote_token"), p.split("-"), strict=True)) for p in self.prices]
        return self._ok(pairs)

    async def _balances(self, request: web.Request) -> web.Response:
        denied, _ = await self._authenticate(request)
        if denied is not None:
            return denied
        platform = request.query.get("platform", "api")
        rows = [{"balance": _Num(v), "token": t, "platform": platform} for t, v in self.balances.items()]
        return self._ok(rows)

    async def _new_quote(self, request: web.Request) -> web.Response:
        denied, body = await self._authenticate(request)
        if denied is not None:
            return denied
        try:
            req = json.loads(body)
            base = req["token_pair"]["base_token"]
            quote = req["token_pair"]["quote_token"]
            token = req["quantity"]["token"]
            value = Decimal(str(req["quantity"]["value"]))
            side = req["side"]
        except (ValueError, KeyError, TypeError, ArithmeticError):
            return self.failure("invalid_request", "malformed quote request")
        pair = f"{base}-{quote}"
        if pair not in self.prices:
            return self.failure("invalid_token_pair", f"{pair} is not tradable")
        if token not in (base, quote) or not value.is_finite() or value <= 0:
            return self.failure("invalid_quantity", "bad quantity")
        if side not in ("buy", "sell", "two_way"):
            return self.failure("invalid_side", "side must be buy, sell or two_way")
        bid, ask = self.prices[pair]
        now = self.clock.now
        q = _Quote(
            fx_quote_id=uuid.uuid4().hex,
            base=base,
            quote=quote,
            token=token,
            value=value,
            side_requested=side,
            buy_price=ask if side in ("buy", "two_way") else None,
            sell_price=bid if side in ("sell", "two_way") else None,
            t_quote=now,
            t_expiry=now + self.quote_ttl,
            client_order_id=req.get("client_order_id"),
        )
        self.quotes[q.fx_quote_id] = q
        return self._ok(self._view(q))

    async def _get_quote(self, request: web.Request) -> web.Response:
        denied, _ = await self._authenticate(request)
        if denied is not None:
            return denied
        q = self.quotes.get(request.match_info["fx_quote_id"])
        if q is None:
            return self.failure("quote_not_found", "no such quote", 404)
        return self._ok(self._view(q))

    async def _history(self, request: web.Request) -> web.Response:
        denied, _ = await self._authenticate(request)
        if denied is not None:
            return denied
        try:
            start = datetime.fromisoformat(request.query["t_start"]).timestamp()
            end = datetime.fromisoformat(request.query["t_end"]).timestamp()
        except (KeyError, ValueError):
            return self.failure("invalid_request", "t_start and t_end are ISO 8601 times")
        done = [
            self._view(q)
            for q in self.quotes.values()
            if q.is_filled and q.t_execute is not None and start <= q.t_execute <= end
        ]
        return self._ok(done)

    def _settle(self, q: _Quote, side: str, price: Decimal) -> web.Response | None:
        """Move balances for a fill; a failure response when funds are short."""
        base_qty = q.value if q.token == q.base else q.value / price
        quote_qty = q.value if q.token == q.quote else q.value * price
        if side == "buy":
            if self.balances.get(q.quote, Decimal(0)) < quote_qty:
                return self.failure("insufficient_balance", f"not enough {q.quote}")
            self.balances[q.quote] -= quote_qty
            self.balances[q.base] = self.balances.get(q.base, Decimal(0)) + base_qty
        else:
            if self.balances.get(q.base, Decimal(0)) < base_qty:
                return self.failure("insufficient_balance", f"not enough {q.base}")
            self.balances[q.base] -= base_qty
            self.balances[q.quote] = self.balances.get(q.quote, Decimal(0)) + quote_qty
        q.is_filled = True
        q.side_executed = side
        q.price_executed = price
        q.t_execute = self.clock.now
        self.executions[q.fx_quote_id] = self.executions.get(q.fx_quote_id, 0) + 1
        return None

    async def _execute(self, request: web.Request) -> web.Response:
        denied, body = await self._authenticate(request)
        if denied is not None:
            return denied
        if self.hold_execute is not None:
            await self.hold_execute.wait()
        if self.execute_failures:
            code = self.execute_failures.pop(0)
            return self.failure(code, f"scripted {code}")
        try:
            req = json.loads(body)
            quote_id = req["fx_quote_id"]
            side = req["side"]
        except (ValueError, KeyError, TypeError):
            return self.failure("invalid_request", "fx_quote_id and side required")
        q = self.quotes.get(quote_id)
        if q is None:
            return self.failure("invalid_quote_id", "no such quote")
        if q.is_filled:
            return self.failure("quote_already_executed", "quote already executed")
        if self.clock.now >= q.t_expiry:
            return self.failure("quote_expired", "quote expired")
        price = q.buy_price if side == "buy" else q.sell_price if side == "sell" else None
        if price is None:
            return self.failure("invalid_side", f"quote has no {side} side")
        refused = self._settle(q, side, price)
        if refused is not None:
            return refused
        return self._ok(self._view(q))

    async def _order(self, request: web.Request) -> web.Response:
        denied, body = await self._authenticate(request)
        if denied is not None:
            return denied
        try:
            req = json.loads(body)
            base = req["token_pair"]["base_token"]
            quote = req["token_pair"]["quote_token"]
            token = req["quantity"]["token"]
            value = Decimal(str(req["quantity"]["value"]))
            side = req["side"]
            order_type = req["order_type"]
        except (ValueError, KeyError, TypeError, ArithmeticError):
            return self.failure("invalid_request", "malformed order")
        pair = f"{base}-{quote}"
        if pair not in self.prices:
            return self.failure("invalid_token_pair", f"{pair} is not tradable")
        if side not in ("buy", "sell") or order_type not in ("market", "limit"):
            return self.failure("invalid_request", "side buy|sell, order_type market|limit")
        bid, ask = self.prices[pair]
        price = ask if side == "buy" else bid
        limit: Decimal | None = None
        if order_type == "limit":
            if req.get("time_in_force") != "fok":
                return self.failure("invalid_request", "limit orders are fok")
            limit = Decimal(str(req["limit_price"]))
            if (side == "buy" and price > limit) or (side == "sell" and price < limit):
                return self.failure("limit_price_not_met", "limit price not met")
        now = self.clock.now
        q = _Quote(
            fx_quote_id=uuid.uuid4().hex,
            base=base,
            quote=quote,
            token=token,
            value=value,
            side_requested=side,
            buy_price=ask if side == "buy" else None,
            sell_price=bid if side == "sell" else None,
            t_quote=now,
            t_expiry=now + self.quote_ttl,
            client_order_id=req.get("client_order_id"),
            order={
                "order_type": order_type,
                "time_in_force": req.get("time_in_force"),
                "limit_price": _n(limit),
                "fee_usd": _Num(Decimal("1.25")),
            },
        )
        refused = self._settle(q, side, price)
        if refused is not None:
            return refused
        self.quotes[q.fx_quote_id] = q
        return self._ok(self._view(q))

    # --- test helpers -------------------------------------------------------------------------------

    def orders_with_client_id(self, client_order_id: str) -> int:
        return sum(1 for q in self.quotes.values() if q.client_order_id == client_order_id)
