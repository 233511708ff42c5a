"""Coinbase account reads over REST: spot balances, US-derivatives (CFM) positions and the futures
balance summary.  Futures quantities are base units (contracts x contract size).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2
from cqvx.errors import NotFound
from cqvx.transport.http import HttpResponse
from cqvx.venues.coinbase import endpoints as ep
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase import parse
from cqvx.venues.coinbase.config import CoinbaseConfig


class _Account:
    """Account reads of :class:`~cqvx.venues.coinbase.client.CoinbaseClient` (mixin; state on the client)."""

    config: CoinbaseConfig
    _to_product: dict[str, str]
    _contract_size: dict[str, Decimal]

    if TYPE_CHECKING:

        async def _get(
            self, path: str, route: str, params: Any = None, *, private: bool = True
        ) -> HttpResponse: ...

        async def _learn_products(self, product_ids: Sequence[str]) -> None: ...

        def to_canonical(self, product_id: str) -> str: ...

    async def get_balances(self) -> list[balance_pb2.Balance]:
        """Every account, all pages (``limit`` up to 250, cursor until ``has_next`` is false)."""
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
                return out
            seen.add(cursor)

    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        """Open futures positions of the US-derivatives (CFM) account, canonical symbols.

        One known symbol: ``GET /cfm/positions/{product_id}``; otherwise ``GET /cfm/positions``,
        filtered locally.  Quantities are base units (contracts x contract size).
        """
        if symbols and len(symbols) == 1 and symbols[0] in self._to_product:
            try:
                resp = await self._get(ep.cfm_position_path(self._to_product[symbols[0]]), ep.R_CFM_POSITION)
            except NotFound:
                return []
            raw = [parse.decode(resp.body, m.FcmPositionResponse).position]
        else:
            resp = await self._get(ep.CFM_POSITIONS, ep.R_CFM_POSITIONS)
            raw = parse.decode(resp.body, m.FcmPositionsResponse).positions
        await self._learn_products([p.product_id for p in raw])
        out = [
            parse.position_from_fcm(p, self.to_canonical, self._contract_size.get(p.product_id)) for p in raw
        ]
        if symbols:
            wanted = set(symbols)
            out = [p for p in out if p.symbol in wanted]
        return out

    async def get_futures_balance_summary(self) -> parse.FuturesBalanceSummary:
        """``GET /cfm/balance_summary``: the futures account's USD balance, margins and buying power
        (``.balance()`` gives it as a cqc Balance of type FUTURES)."""
        resp = await self._get(ep.CFM_BALANCE_SUMMARY, ep.R_CFM_BALANCE_SUMMARY)
        return parse.futures_balance_from_json(resp.body)
