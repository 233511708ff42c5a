"""The account routes of :class:`~cqvx.testing.fake_ccxt.bybit.FakeBybit` (Bybit v5 Unified Trading
Account): coins, wallet balance, positions and the transaction log (funding settlements).

Paths: ``/v5/asset/coin/query-info``, ``/v5/account/wallet-balance``
(https://bybit-exchange.github.io/docs/v5/account/wallet-balance), ``/v5/position/list``
(https://bybit-exchange.github.io/docs/v5/position) and ``/v5/account/transaction-log``
(https://bybit-exchange.github.io/docs/v5/account/transaction-log).  Both categories' orders share the
one UTA wallet.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cqvx.testing.fake_ccxt import _sim_shapes as sim_shapes
from cqvx.testing.fake_ccxt._base import dec_text

if TYPE_CHECKING:
    from cqvx.testing.fake_ccxt.bybit import FakeBybit

__all__ = ["BybitAccount"]

# Fields of the documented position record the fake has no model for: present, with neutral values.
POSITION_REST = dict.fromkeys(
    ("bustPrice", "leverageSysUpdatedTime", "mmrSysUpdatedTime", "stopLoss", "takeProfit"), ""
) | {
    "adlRankIndicator": 0,
    "autoAddMargin": 0,
    "curRealisedPnl": "0",
    "isReduceOnly": False,
    "positionBalance": "0",
    "riskId": 1,
    "riskLimitValue": "2000000",
    "seq": 0,
    "tpslMode": "Full",
    "trailingStop": "0",
}


class BybitAccount:
    """The account's signed GET routes, read from the fake's simulated venue."""

    def __init__(self, fake: FakeBybit) -> None:
        self.fake = fake

    def routes(self, app: web.Application) -> None:
        for path, handler in (
            ("/v5/account/wallet-balance", self._wallet),
            ("/v5/position/list", self._positions),
            ("/v5/asset/coin/query-info", self._coins),
            ("/v5/account/transaction-log", self._transaction_log),
        ):
            self.fake.route(app, "GET", path, handler, signed=True)

    async def _coins(self, request: web.Request, params: dict[str, Any]) -> Any:
        # ccxt loads currencies with this (signed) call before the markets; no chains in the fake.
        assets = sorted({a for s in self.fake.sim.config.instruments for a in (s.base_asset, s.quote_asset)})
        return {"rows": [{"name": a, "coin": a, "remainAmount": "0", "chains": []} for a in assets]}

    async def _wallet(self, request: web.Request, params: dict[str, Any]) -> Any:
        coins = [
            {
                "coin": b.asset,
                "equity": b.total or "0",
                "walletBalance": b.total or "0",
                "locked": "0",
                "totalOrderIM": b.locked or "0",
                "totalPositionIM": "0",
                "totalPositionMM": "0",
                "unrealisedPnl": "0",
                "cumRealisedPnl": "0",
                "availableToWithdraw": b.available or "0",
                "usdValue": "0",
                "borrowAmount": "0",
                "accruedInterest": "0",
                "bonus": "0",
                "marginCollateral": True,
                "collateralSwitch": True,
                "availableToBorrow": "",
                "spotBorrow": "0",
            }
            for b in await self.fake.sim.get_balances()
        ]
        # The account totals (USD; the sim's only settlement asset is USDT, valued 1:1): wallet
        # balance, perpetual uPnL, margin balance = wallet + uPnL, order + position margin.
        usdt = next((b for b in await self.fake.sim.get_balances() if b.asset == "USDT"), None)
        positions = [p for p in await self.fake.sim.get_positions() if p.symbol in self.fake.perp_symbols()]
        wallet = Decimal(usdt.total or "0") if usdt else Decimal(0)
        upl = sum((Decimal(p.unrealized_pnl or "0") for p in positions), Decimal(0))
        position_im = sum((Decimal(p.margin or "0") for p in positions), Decimal(0))
        order_im = Decimal(usdt.locked or "0") if usdt else Decimal(0)
        maint = sum((Decimal(p.maintenance_margin or "0") for p in positions), Decimal(0))
        account = {
            "accountType": params.get("accountType", "UNIFIED"),
            "totalEquity": dec_text(wallet + upl),
            "totalWalletBalance": dec_text(wallet),
            "totalMarginBalance": dec_text(wallet + upl),
            "totalAvailableBalance": (usdt.available or "0") if usdt else "0",
            "totalPerpUPL": dec_text(upl),
            "totalInitialMargin": dec_text(order_im + position_im),
            "totalMaintenanceMargin": dec_text(maint),
            "accountIMRate": "0",
            "accountMMRate": "0",
            "accountLTV": "0",
            "coin": coins,
        }
        return {"list": [account]}

    async def _positions(self, request: web.Request, params: dict[str, Any]) -> Any:
        symbol = params.get("symbol")
        fake = self.fake
        wanted = {fake.canonical(s) for s in str(symbol).split(",")} if symbol else fake.perp_symbols()
        rows = []
        held: set[str] = set()
        for p in await self.fake.sim.get_positions():
            if p.symbol not in wanted:
                continue
            held.add(p.symbol)
            short = sim_shapes.position_side(p, "", "-", "") == "-"
            rows.append(
                {
                    # https://bybit-exchange.github.io/docs/v5/position: positionIdx 0 = one-way
                    # mode, 1/2 = the buy/sell side of hedge mode.
                    "positionIdx": (2 if short else 1) if self.fake.hedge_mode else 0,
                    "symbol": self.fake.venue_symbol(p.symbol),
                    "side": sim_shapes.position_side(p, "Buy", "Sell", ""),
                    "size": p.quantity or "0",
                    "avgPrice": p.entry_price or "0",
                    "positionValue": "0",
                    "tradeMode": 1 if sim_shapes.isolated(p) else 0,
                    "positionStatus": "Normal",
                    "leverage": p.leverage or "1",
                    "markPrice": p.mark_price or "0",
                    "liqPrice": p.liquidation_price or "",
                    "positionIM": "0",
                    "positionMM": "0",
                    "unrealisedPnl": p.unrealized_pnl or "0",
                    "cumRealisedPnl": p.realized_pnl or "0",
                    "createdTime": str(sim_shapes.ms(p.updated_at)),
                    "updatedTime": str(sim_shapes.ms(p.updated_at)),
                }
                | POSITION_REST
            )
        if symbol:  # "If symbol passed, it returns data regardless of having position or not"
            for canonical in sorted(wanted - held):
                for idx in (1, 2) if self.fake.hedge_mode else (0,):
                    rows.append(self._flat_row(canonical, idx))
        return {"category": "linear", "list": rows, "nextPageCursor": ""}

    def _flat_row(self, canonical: str, position_idx: int) -> dict[str, Any]:
        """Get Position Info's row for a symbol without a position (size 0, side "")."""
        return {
            "positionIdx": position_idx,
            "symbol": self.fake.venue_symbol(canonical),
            "side": "",
            "size": "0",
            "avgPrice": "0",
            "positionValue": "0",
            "tradeMode": 0,
            "positionStatus": "Normal",
            "leverage": "1",
            "markPrice": "0",
            "liqPrice": "",
            "positionIM": "0",
            "positionMM": "0",
            "unrealisedPnl": "0",
            "cumRealisedPnl": "0",
            "createdTime": "0",
            "updatedTime": "0",
        } | POSITION_REST

    # -- transaction log (funding settlements) ------------------------------------------------------

    async def _transaction_log(self, request: web.Request, params: dict[str, Any]) -> Any:
        """UTA ``GET /v5/account/transaction-log`` (https://bybit-exchange.github.io/docs/v5/account/transaction-log):
        the sim's funding settlements as ``type=SETTLEMENT`` rows, newest first.  ``funding``: "Positive
        value means receiving funding fee, negative value means deducting" (the UTA page; the classic
        account's contract log has the opposite sign).  ``startTime`` alone covers 7 days from it, no
        times the last 7 days; one page (no cursor)."""
        kind, category = params.get("type"), params.get("category")
        if kind not in (None, "SETTLEMENT") or category not in (None, "linear"):
            return {"list": [], "nextPageCursor": ""}
        week = 7 * 24 * 3600 * 1000
        end = int(params.get("endTime") or 0)
        start = int(params.get("startTime") or 0)
        if start and not end:
            end = start + week
        if not end:
            end = int(time.time() * 1000)
        start = start or end - week
        rows = []
        for n, pay in enumerate(self.fake.sim.funding_payments):
            at = pay.at_ns // 1_000_000
            if not start <= at <= end:
                continue
            rows.append(
                {
                    "id": f"settle-{n}",
                    "symbol": self.fake.venue_symbol(pay.symbol),
                    "category": "linear",
                    "side": "Buy" if pay.quantity > 0 else "Sell",
                    "transactionTime": str(at),
                    "type": "SETTLEMENT",
                    "qty": dec_text(abs(pay.quantity)),
                    "size": dec_text(pay.quantity),
                    "currency": pay.asset,
                    "tradePrice": dec_text(pay.mark),
                    "funding": dec_text(-pay.paid),
                    "fee": "0",
                    "cashFlow": "0",
                    "change": dec_text(-pay.paid),
                    "cashBalance": "0",
                    "feeRate": dec_text(pay.rate),
                    "bonusChange": "",
                    "tradeId": "",
                    "orderId": "",
                    "orderLinkId": "",
                }
            )
        rows.reverse()
        return {"list": rows, "nextPageCursor": ""}
