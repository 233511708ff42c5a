"""The fake's read-only REST routes: accounts, the futures (CFM) account, the INTX perpetuals portfolio,
server time and market data
(products, product book, best bid/ask, candles, ticker) under both the private and ``/market`` prefixes.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cqvx.testing.fake_coinbase._state import _ZERO, FakeProduct, _now_iso, _s
from cqvx.testing.fakeserver import FakeServer


class _ReadRoutes(FakeServer):
    """Read-only REST routes of :class:`FakeCoinbase` (mixin; state lives on the fake)."""

    products: dict[str, FakeProduct]
    available: dict[str, Decimal]
    holds: dict[str, Decimal]
    trades: dict[str, list[dict[str, Any]]]
    cfm_positions: dict[str, dict[str, Any]]
    cfm_balance_summary: dict[str, Any] | None
    intx_portfolio_uuid: str
    intx_positions: dict[str, dict[str, Any]]
    intx_portfolio: dict[str, Any] | None
    intx_balances: list[dict[str, Any]]

    if TYPE_CHECKING:

        def _check_rest_auth(self, request: web.Request) -> web.Response | None: ...

        def _page(self, request: web.Request, items: list[Any]) -> tuple[list[Any], str]: ...

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
            {
                "accounts": page,
                "has_next": bool(cursor),
                "cursor": cursor,
                "size": len(page),
            }
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
                {
                    "error": "NOT_FOUND",
                    "message": "position not found",
                    "error_details": "",
                },
                status=404,
            )
        return web.json_response({"position": position})

    async def _cfm_balance(self, request: web.Request) -> web.Response:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        if self.cfm_balance_summary is None:
            return web.json_response(
                {
                    "error": "PERMISSION_DENIED",
                    "message": "no futures account",
                    "error_details": "",
                },
                status=403,
            )
        return web.json_response({"balance_summary": self.cfm_balance_summary})

    # --- perpetuals (INTX) portfolio: List/Get Perpetuals Position(s), Portfolio Summary, Balances ---

    def _intx_portfolio_or_error(self, request: web.Request) -> web.Response | None:
        failure = self._check_rest_auth(request)
        if failure is not None:
            return failure
        if not self.intx_portfolio_uuid or request.match_info["portfolio_uuid"] != self.intx_portfolio_uuid:
            return web.json_response(
                {"error": "NOT_FOUND", "message": "portfolio not found", "error_details": ""}, status=404
            )
        return None

    async def _intx_positions(self, request: web.Request) -> web.Response:
        failure = self._intx_portfolio_or_error(request)
        if failure is not None:
            return failure
        return web.json_response(
            {
                "positions": list(self.intx_positions.values()),
                "summary": {"aggregated_pnl": {"value": "0", "currency": "USDC"}},
            }
        )

    async def _intx_position(self, request: web.Request) -> web.Response:
        failure = self._intx_portfolio_or_error(request)
        if failure is not None:
            return failure
        position = self.intx_positions.get(request.match_info["symbol"])
        if position is None:
            return web.json_response(
                {"error": "NOT_FOUND", "message": "position not found", "error_details": ""}, status=404
            )
        return web.json_response({"position": position})

    async def _intx_summary(self, request: web.Request) -> web.Response:
        failure = self._intx_portfolio_or_error(request)
        if failure is not None:
            return failure
        portfolio = self.intx_portfolio or {}
        return web.json_response(
            {
                "portfolios": [{"portfolio_uuid": self.intx_portfolio_uuid, **portfolio}],
                "summary": {
                    key: portfolio[key] for key in ("unrealized_pnl", "total_balance") if key in portfolio
                },
            }
        )

    async def _intx_balances_route(self, request: web.Request) -> web.Response:
        failure = self._intx_portfolio_or_error(request)
        if failure is not None:
            return failure
        return web.json_response(
            {
                "portfolio_balances": [
                    {
                        "portfolio_uuid": self.intx_portfolio_uuid,
                        "balances": self.intx_balances,
                        "is_margin_limit_reached": False,
                    }
                ]
            }
        )

    async def _time(self, request: web.Request) -> web.Response:
        now = time.time()
        return web.json_response(
            {
                "iso": _now_iso(),
                "epochSeconds": str(int(now)),
                "epochMillis": str(int(now * 1000)),
            }
        )

    def _product_or_404(self, pid: str) -> FakeProduct:
        product = self.products.get(pid)
        if product is None:
            raise web.HTTPNotFound(
                text='{"error":"NOT_FOUND","message":"product not found"}',
                content_type="application/json",
            )
        return product

    async def _products(self, request: web.Request) -> web.Response:
        wanted = set(request.query.getall("product_ids", []))
        kind = request.query.get("product_type")
        expiry = request.query.get("contract_expiry_type")
        items = [
            w
            for p in self.products.values()
            if (not wanted or p.product_id in wanted)
            for w in [p.wire()]
            if not kind or w["product_type"] == kind
            if not expiry or (w["future_product_details"] or {}).get("contract_expiry_type") == expiry
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
        width = {
            "ONE_MINUTE": 60,
            "FIVE_MINUTE": 300,
            "ONE_HOUR": 3600,
            "ONE_DAY": 86400,
        }.get(request.query.get("granularity", ""), 0)
        if not width or end <= start:
            return web.json_response({"error": "INVALID_ARGUMENT", "message": "bad candle range"}, status=400)
        starts = list(range(start - start % width, end, width))[-350:]
        candles = [
            {
                "start": str(t),
                "low": "99",
                "high": "101",
                "open": "100",
                "close": "100.5",
                "volume": "1.5",
            }
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
