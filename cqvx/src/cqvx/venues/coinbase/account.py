"""Coinbase account reads over REST: spot balances, US-derivatives (CFM) positions and the futures
balance summary, and the INTX perpetuals portfolio (positions, balances, summary).  Derivatives
quantities are base units (contracts x the product's contract size, from the products table).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2
from cqvx.errors import InvalidRequest, NotFound
from cqvx.transport.http import HttpResponse
from cqvx.venues.coinbase import endpoints as ep
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase import parse
from cqvx.venues.coinbase.config import CoinbaseConfig
from cqvx.venues.coinbase.errors import VENUE


class _Account:
    """Account reads of :class:`~cqvx.venues.coinbase.client.CoinbaseClient` (mixin; state on the client)."""

    config: CoinbaseConfig
    _to_product: dict[str, str]
    _contract_size: dict[str, Decimal]
    _quote: dict[str, str]

    if TYPE_CHECKING:

        async def _get(
            self, path: str, route: str, params: Any = None, *, private: bool = True
        ) -> HttpResponse: ...

        async def _learn_products(self, product_ids: Sequence[str]) -> None: ...

        def to_canonical(self, product_id: str) -> str: ...

        def _known(self, product_id: str) -> str: ...

        def quote_of(self, product_id: str) -> str: ...

    async def get_balances(self) -> list[balance_pb2.Balance]:
        """Every account, all pages (``limit`` up to 250, cursor until ``has_next`` is false), plus
        the INTX perpetuals portfolio's balances (type MARGIN) when one is configured."""
        out: list[balance_pb2.Balance] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params: list[tuple[str, str | int]] = [("limit", self.config.page_limit)]
            if cursor:
                params.append(("cursor", cursor))
            resp = await self._get(ep.ACCOUNTS, "/accounts", params)
            balances, cursor = parse.accounts_from_json(resp.body)
            out.extend(balances)
            if cursor is None or cursor in seen:
                break
            seen.add(cursor)
        if self.config.intx_portfolio_uuid:
            out.extend(await self.get_perps_balances())
        return out

    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        """Open derivatives positions, canonical symbols, quantities in base units (contracts x the
        product's contract size): the US futures (CFM) account when ``config.cfm_enabled``, and the
        INTX perpetuals portfolio ``config.intx_portfolio_uuid`` when set.

        CFM, one known dated-futures symbol: ``GET /cfm/positions/{product_id}``; otherwise
        ``GET /cfm/positions``.  INTX: ``GET /intx/positions/{portfolio_uuid}``.  Filtered locally.
        """
        out: list[position_pb2.Position] = []
        if self.config.cfm_enabled:
            out.extend(await self._cfm_positions(symbols))
        if self.config.intx_portfolio_uuid:
            out.extend(await self._intx_positions())
        if symbols:
            wanted = set(symbols)
            out = [p for p in out if p.symbol in wanted]
        return out

    async def _cfm_positions(self, symbols: Sequence[str] | None) -> list[position_pb2.Position]:
        one = symbols[0] if symbols and len(symbols) == 1 else ""
        if one in self._to_product and not one.endswith("-PERP"):
            try:
                resp = await self._get(ep.cfm_position_path(self._to_product[one]), ep.R_CFM_POSITION)
            except NotFound:
                return []
            raw = [parse.decode(resp.body, m.FcmPositionResponse).position]
        else:
            resp = await self._get(ep.CFM_POSITIONS, ep.R_CFM_POSITIONS)
            raw = parse.decode(resp.body, m.FcmPositionsResponse).positions
        await self._learn_products([p.product_id for p in raw])
        return [
            parse.position_from_fcm(p, self._known, self._contract_size.get(p.product_id), self.quote_of)
            for p in raw
        ]

    async def _intx_positions(self) -> list[position_pb2.Position]:
        uuid = self.config.intx_portfolio_uuid
        resp = await self._get(ep.intx_path("positions", uuid), ep.R_INTX_POSITIONS)
        raw = parse.decode(resp.body, m.IntxPositionsResponse).positions
        await self._learn_products([p.product_id for p in raw])
        return [
            parse.intx_position(p, self._known, self._contract_size.get(p.product_id), self.quote_of)
            for p in raw
        ]

    def _intx_uuid(self) -> str:
        uuid = self.config.intx_portfolio_uuid
        if not uuid:
            raise InvalidRequest("no INTX perpetuals portfolio configured (intx_portfolio_uuid)", venue=VENUE)
        return uuid

    async def get_perps_portfolio_summary(self) -> parse.PerpsPortfolioSummary:
        """``GET /intx/portfolio/{portfolio_uuid}``: collateral, balance, margins, buying power."""
        uuid = self._intx_uuid()
        resp = await self._get(ep.intx_path("portfolio", uuid), ep.R_INTX_PORTFOLIO)
        return parse.intx_portfolio_from_json(resp.body, uuid)

    async def get_perps_balances(self) -> list[balance_pb2.Balance]:
        """``GET /intx/balances/{portfolio_uuid}``: one MARGIN balance per asset of the portfolio."""
        uuid = self._intx_uuid()
        resp = await self._get(ep.intx_path("balances", uuid), ep.R_INTX_BALANCES)
        return parse.intx_balances_from_json(resp.body)

    async def get_futures_balance_summary(self) -> parse.FuturesBalanceSummary:
        """``GET /cfm/balance_summary``: the futures account's USD balance, margins and buying power
        (``.balance()`` gives it as a cqc Balance of type FUTURES)."""
        resp = await self._get(ep.CFM_BALANCE_SUMMARY, ep.R_CFM_BALANCE_SUMMARY)
        return parse.futures_balance_from_json(resp.body)
