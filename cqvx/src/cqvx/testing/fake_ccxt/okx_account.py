"""The account routes of :class:`~cqvx.testing.fake_ccxt.okx.FakeOkx` (OKX v5 trading account):
configuration, balance and positions.

Paths (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration,
...-get-balance, ...-get-positions): ``/api/v5/account/config``, ``/api/v5/account/balance``,
``/api/v5/account/positions``.  One trading account holds the spot currencies and the swap margin.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cqvx.testing.fake_ccxt import _sim_shapes as sim_shapes
from cqvx.testing.fake_ccxt._base import dec_text
from cqvx.testing.fake_ccxt._okx_fields import BALANCE_REST, DETAIL_REST, POSITION_REST

if TYPE_CHECKING:
    from cqvx.testing.fake_ccxt.okx import FakeOkx

__all__ = ["OkxAccount"]


class OkxAccount:
    """The account's signed GET routes, read from the fake's simulated venue."""

    def __init__(self, fake: FakeOkx) -> None:
        self.fake = fake

    def routes(self, app: web.Application) -> None:
        for path, handler in (
            ("/api/v5/account/balance", self._balance),
            ("/api/v5/account/positions", self._positions),
            ("/api/v5/account/config", self._config),
        ):
            self.fake.route(app, "GET", path, handler, signed=True)

    async def _config(self, request: web.Request, params: dict[str, Any]) -> Any:
        # Get account configuration (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration):
        # one account; posMode "long_short_mode" (hedge) | "net_mode" (one-way).
        return [
            {
                "uid": "44705892343619584",
                "mainUid": "44705892343619584",
                "acctLv": "2",
                "posMode": "long_short_mode" if self.fake.hedge_mode else "net_mode",
                "autoLoan": False,
                "ctIsoMode": "automatic",
                "mgnIsoMode": "automatic",
                "perm": "read_only,trade",
                "label": "fake",
                "level": "Lv1",
            }
        ]

    async def _balance(self, request: web.Request, params: dict[str, Any]) -> Any:
        now = str(int(time.time() * 1000))
        details = [
            {
                "ccy": b.asset,
                "eq": b.total or "0",
                "cashBal": b.total or "0",
                "availBal": b.available or "0",
                "availEq": b.available or "0",
                "frozenBal": b.locked or "0",
                "ordFrozen": b.locked or "0",
                "upl": "0",
                "uTime": now,
            }
            | DETAIL_REST
            for b in await self.fake.sim.get_balances()
        ]
        # Single-currency ("Futures mode") margin: the settle currency's row carries the swap
        # positions: eq = cashBal + upl; frozenBal holds position + order margin; imr/mmr are the
        # cross positions' requirements ("" when there is none, as documented).
        m = await sim_shapes.margin(self.fake.sim, self.fake.perp_symbols())
        positions = [p for p in await self.fake.sim.get_positions() if p.symbol in self.fake.perp_symbols()]
        cross = [p for p in positions if not sim_shapes.isolated(p)]
        imr = sum((Decimal(p.margin or "0") for p in cross), Decimal(0))
        mmr = sum((Decimal(p.maintenance_margin or "0") for p in cross), Decimal(0))
        for row in details:
            if row["ccy"] == "USDT":
                row |= {
                    "eq": dec_text(m.wallet + m.upl),
                    "upl": dec_text(m.upl),
                    "frozenBal": dec_text(m.position_im + m.order_im),
                    "imr": dec_text(imr) if cross else "",
                    "mmr": dec_text(mmr) if cross else "",
                }
        account = {"totalEq": "0", "adjEq": "", "imr": "", "mmr": "", "uTime": now, "details": details}
        return [account | BALANCE_REST]

    async def _positions(self, request: web.Request, params: dict[str, Any]) -> Any:
        inst = params.get("instId")
        wanted = {self.fake.canonical(s) for s in str(inst).split(",")} if inst else self.fake.perp_symbols()
        rows = []
        for p in await self.fake.sim.get_positions():
            if p.symbol not in wanted:
                continue
            signed = self.fake.to_wire(p.quantity or "0")
            short = sim_shapes.position_side(p, "", "-", "") == "-"
            rows.append(
                {
                    "instType": "SWAP",
                    "instId": self.fake.venue_symbol(p.symbol),
                    "mgnMode": "isolated" if sim_shapes.isolated(p) else "cross",
                    "posId": self.fake.venue_symbol(p.symbol),
                    "posSide": "net",
                    "pos": ("-" + signed) if short else signed,
                    "ccy": "USDT",
                    "posCcy": "",
                    "avgPx": p.entry_price or "",
                    "markPx": p.mark_price or "",
                    "liqPx": p.liquidation_price or "",
                    "lever": p.leverage or "1",
                    "upl": p.unrealized_pnl or "0",
                    "realizedPnl": p.realized_pnl or "0",
                    "margin": "",
                    "imr": "",
                    "mmr": "",
                    "notionalUsd": "",
                    "cTime": str(sim_shapes.ms(p.updated_at)),
                    "uTime": str(sim_shapes.ms(p.updated_at)),
                    "availPos": signed,
                }
                | POSITION_REST
            )
        return rows
