"""Account summary of a ccxt venue: margin balance and margin mode (``CcxtClient.get_account_summary``).

ccxt's unified balance carries per-currency totals only, so the account-wide margin figures are read
from the venue's own balance reply (ccxt keeps it as ``info``) through the quirk table's
``summary_path`` and ``summary_keys``, a declarative line read only here:

* ``summary_path``: steps into the reply: a key, an index into a list, or a ``(key, value)`` pair
  selecting the one list row whose ``key`` equals ``value`` (OKX ``details`` row ``ccy={settle}``,
  Bitget's account row ``marginCoin={settle}``).  No such row, or two, is a
  :class:`~cqvx.errors.ParseError`.  ``{settle}`` is the settle currency (:func:`settle_currency`: the
  config's ``settle``, else the one settle currency of the loaded derivative markets; several are an
  :class:`~cqvx.errors.InvalidRequest` asking for ``settle``); ``summary_params`` are ccxt
  ``fetch_balance`` params filled the same way (Bitget's ``productType``).
* ``summary_keys``: summary field -> the venue's key, or a tuple of keys whose values are SUMMED (a
  key written ``-key`` is subtracted), for venues whose figure is documented as a sum (Gate's margin
  balance is ``total + unrealised_pnl``).  A field the line leaves out is one the venue does not
  document for that account mode: it is reported unset (``""``), never guessed.

A venue without a line answers :class:`~cqvx.errors.UnsupportedOperation` rather than a guess.
Margin mode comes from the unified positions (``marginMode``): one mode for the whole account
when every open position agrees, the per-symbol modes always.  A missing, empty or non-numeric key
is a :class:`~cqvx.errors.ParseError` (never read as 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from cqc.portfolio.v1 import position_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import dec, dec_str
from cqvx.venues.ccxt import parse

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["SUMMARY_FIELDS", "AccountSummary", "account_summary", "settle_currency"]

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
    """Account-wide margin figures (decimal strings, settlement-asset units) and margin mode.

    A figure is ``""`` where the venue's line does not name it (not documented for that venue/mode).
    """

    venue: str
    margin_balance: str
    wallet_balance: str
    available_balance: str
    unrealized_pnl: str
    initial_margin: str
    maintenance_margin: str
    margin_mode: int = position_pb2.MARGIN_MODE_UNSPECIFIED  # MarginMode; unspecified when mixed/none
    margin_modes: dict[str, int] = field(default_factory=dict)  # canonical symbol -> MarginMode


async def settle_currency(client: CcxtClient) -> str:
    """The config's ``settle``, else the one settle currency of the loaded derivative markets."""
    configured: str = client._config.settle
    if configured:
        return configured
    index = await client._markets()
    found: set[str] = set()
    for symbol in index.symbols.canonical_symbols():
        if index.is_derivative(symbol):
            market = client._ex.markets.get(index.symbols.to_venue(symbol)) or {}
            settle = market.get("settle")
            if isinstance(settle, str) and settle:
                found.add(settle)
    if len(found) != 1:
        raise InvalidRequest(
            f"account summary: the loaded derivative markets settle in {sorted(found) or 'nothing'}; "
            "set the config's settle",
            venue=client.venue,
        )
    return found.pop()


def _step(info: object, step: str | int | tuple[str, str], venue: str, settle: str) -> object:
    if isinstance(step, tuple):
        if not isinstance(info, list):
            return None
        key, value = step[0], step[1].replace("{settle}", settle)
        rows = [row for row in info if isinstance(row, Mapping) and row.get(key) == value]
        if len(rows) != 1:
            raise ParseError(f"account summary: {len(rows)} rows with {key}={value}, not one", venue=venue)
        return rows[0]
    if isinstance(step, int):
        return info[step] if isinstance(info, list) and -len(info) <= step < len(info) else None
    return info.get(step) if isinstance(info, Mapping) else None


def _figure(info: Mapping[str, object], keys: str | tuple[str, ...], venue: str) -> str:
    terms = (keys,) if isinstance(keys, str) else keys
    if not terms:
        raise ParseError("account summary: a field names no key", venue=venue)
    total = Decimal(0)
    for term in terms:
        key = term.removeprefix("-")
        text = parse.num(info.get(key), key, venue)
        if not text:
            raise ParseError(f"account summary: {key} missing", venue=venue)
        total += -dec(text) if term.startswith("-") else dec(text)
    return dec_str(total)


async def account_summary(client: CcxtClient) -> AccountSummary:
    keys = dict(client.quirks.summary_keys)
    if not keys:
        raise UnsupportedOperation(
            f"account summary: no summary_keys line for {client.venue} in the quirk table", venue=client.venue
        )
    lines = (client.quirks.summary_path, client.quirks.summary_params)
    settle = await settle_currency(client) if "{settle}" in repr(lines) else ""
    params = {k: v.replace("{settle}", settle) for k, v in client.quirks.summary_params}
    raw = await client._call("read", client._ex.fetch_balance, params)
    info: object = raw.get("info") if isinstance(raw, Mapping) else None
    for step in client.quirks.summary_path:  # into the venue's nested body (Bybit result.list[0])
        info = _step(info, step, client.venue, settle)
    if not isinstance(info, Mapping):
        raise ParseError("account summary: the balance reply carries no venue body", venue=client.venue)
    body = info
    figures = {
        name: _figure(body, keys[name], client.venue) if name in keys else "" for name in SUMMARY_FIELDS
    }
    modes = {p.symbol: int(p.margin_mode) for p in await client.get_positions()}
    distinct = set(modes.values())
    mode = distinct.pop() if len(distinct) == 1 else position_pb2.MARGIN_MODE_UNSPECIFIED
    return AccountSummary(venue=client.venue, margin_mode=mode, margin_modes=modes, **figures)
