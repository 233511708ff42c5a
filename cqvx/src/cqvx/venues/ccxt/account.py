"""Account summary of a ccxt venue: margin balance and margin mode (``CcxtClient.get_account_summary``).

ccxt's unified balance carries per-currency totals only, so the account-wide margin figures are read
from the venue's own balance reply (ccxt keeps it as ``info``) through the quirk table's
``summary_keys`` (summary field -> the venue's key).  A venue without that line answers
:class:`~cqvx.errors.UnsupportedOperation` rather than a guess.  Margin mode comes from the unified
positions (``marginMode``): one mode for the whole account when every open position agrees, the
per-symbol modes always.  A missing or non-numeric figure is a :class:`~cqvx.errors.ParseError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cqc.portfolio.v1 import position_pb2
from cqvx.errors import ParseError, UnsupportedOperation
from cqvx.venues.ccxt import parse

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["SUMMARY_FIELDS", "AccountSummary", "account_summary"]

SUMMARY_FIELDS = (
    "margin_balance",
    "wallet_balance",
    "available_balance",
    "unrealized_pnl",
    "initial_margin",
    "maintenance_margin",
)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """Account-wide margin figures (decimal strings, settlement-asset units) and margin mode."""

    venue: str
    margin_balance: str
    wallet_balance: str
    available_balance: str
    unrealized_pnl: str
    initial_margin: str
    maintenance_margin: str
    margin_mode: int = position_pb2.MARGIN_MODE_UNSPECIFIED  # MarginMode; unspecified when mixed/none
    margin_modes: dict[str, int] = field(default_factory=dict)  # canonical symbol -> MarginMode


async def account_summary(client: CcxtClient) -> AccountSummary:
    keys = dict(client.quirks.summary_keys)
    if not keys:
        raise UnsupportedOperation(
            f"account summary: no summary_keys line for {client.venue} in the quirk table", venue=client.venue
        )
    raw = await client._call("read", client._ex.fetch_balance)
    info: object = raw.get("info") if isinstance(raw, Mapping) else None
    for step in client.quirks.summary_path:  # into the venue's nested body (Bybit result.list[0])
        if isinstance(step, int) and isinstance(info, list) and -len(info) <= step < len(info):
            info = info[step]
        elif isinstance(step, str) and isinstance(info, Mapping):
            info = info.get(step)
        else:
            info = None
    if not isinstance(info, Mapping):
        raise ParseError("account summary: the balance reply carries no venue body", venue=client.venue)
    figures: dict[str, str] = {}
    for name in SUMMARY_FIELDS:
        value = parse.num(info.get(keys[name]), keys[name], client.venue)
        if not value:
            raise ParseError(f"account summary: {keys[name]} missing", venue=client.venue)
        figures[name] = value
    modes = {p.symbol: int(p.margin_mode) for p in await client.get_positions()}
    distinct = set(modes.values())
    mode = distinct.pop() if len(distinct) == 1 else position_pb2.MARGIN_MODE_UNSPECIFIED
    return AccountSummary(venue=client.venue, margin_mode=mode, margin_modes=modes, **figures)
