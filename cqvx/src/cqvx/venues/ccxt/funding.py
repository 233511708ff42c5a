"""Funding history and the account's funding payments of a ccxt venue (``CcxtClient``'s
``get_funding_rate_history`` / ``get_funding_payments``, ``SupportsFundingHistory`` /
``SupportsFundingPayments``).

Settled rates come from ccxt's unified ``fetchFundingRateHistory``.  Payments are read the way the quirk
table's ``funding_payments`` line says (:class:`~cqvx.venues.ccxt.quirks.VenueQuirks`); a venue without
a line answers :class:`~cqvx.errors.UnsupportedOperation`:

* ``"bybit_transaction_log"``: the UTA transaction log, ``type=SETTLEMENT``, 7 days per request (the
  venue's limit) from ``start`` to now, every cursor page;
* ``"ccxt_funding_history"``: ccxt ``fetchFundingHistory`` (Binance's income history), page after page;
* ``"ledger"``: the venue's funding-fee bill/ledger request as the line's
  :class:`~cqvx.venues.ccxt.quirks.LedgerRead` declares it (OKX bills, Bitget mix account bills, Gate
  futures account book: ccxt 4.5.90's ``fetchFundingHistory`` reads one page of them, and on Gate
  without the row id), every window and every page.

Every payment is a ``TRANSACTION_TYPE_FUNDING`` transaction whose ``amount`` is signed as the venue
documents it: positive = received, negative = paid; oldest first, one per venue id.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cqc.markets.v1 import funding_pb2
from cqc.portfolio.v1 import transaction_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.timeutil import to_ns
from cqvx.venues.ccxt import parse

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["funding_payments", "funding_rate_history"]

_WEEK_MS = 7 * 24 * 3600 * 1000  # Bybit's transaction log: at most 7 days per request
_INCOME_PAGE = 1000  # Binance Get Income History: limit max 1000


async def funding_rate_history(
    client: CcxtClient, symbol: str, start: datetime | None, limit: int | None
) -> list[funding_pb2.FundingRate]:
    """Settled rates (ccxt ``fetchFundingRateHistory``), oldest first."""
    since = int(start.timestamp() * 1000) if start else None
    unified = await client._unified(symbol)
    raws = await client._call("read", client._ex.fetch_funding_rate_history, unified, since, limit)
    if not isinstance(raws, list):
        raise ParseError("funding history: expected a list", venue=client.venue)
    rates = [parse.parse_funding_rate(raw, symbol, client.venue, history=True) for raw in raws]
    rates.sort(key=lambda f: (f.funding_time.seconds, f.funding_time.nanos))  # the contract: oldest first
    return rates


def _by_time(found: dict[str, transaction_pb2.Transaction]) -> list[transaction_pb2.Transaction]:
    return sorted(found.values(), key=lambda t: to_ns(t.timestamp))


async def funding_payments(
    client: CcxtClient, symbol: str, start: datetime | None
) -> list[transaction_pb2.Transaction]:
    """The account's funding payments on the perpetual ``symbol`` from ``start`` (default: the last 7
    days) to now, oldest first."""
    how = client.quirks.funding_payments
    if how not in _READERS:
        raise UnsupportedOperation(f"{client.venue}: funding payments are not read here", venue=client.venue)
    index = await client._markets()
    venue_id = index.venue_ids.get(symbol, "")
    if not venue_id or not index.is_derivative(symbol):
        raise InvalidRequest(f"{symbol} is not a perpetual listed on {client.venue}", venue=client.venue)
    now = int(time.time() * 1000)
    since = int(start.timestamp() * 1000) if start else now - _WEEK_MS
    return await _READERS[how](client, symbol, venue_id, since, now)


async def _bybit_transaction_log(
    client: CcxtClient, symbol: str, venue_id: str, since: int, now: int
) -> list[transaction_pb2.Transaction]:
    found: dict[str, transaction_pb2.Transaction] = {}
    while since <= now:
        end = min(since + _WEEK_MS, now)
        cursor = ""
        while True:
            request: dict[str, Any] = {
                "accountType": "UNIFIED", "category": "linear", "type": "SETTLEMENT",
                "startTime": since, "endTime": end, "limit": 50,
            }  # fmt: skip
            if cursor:
                request["cursor"] = cursor
            raw = await client._call("read", client._ex.privateGetV5AccountTransactionLog, request)
            rows, cursor = parse.parse_bybit_settlements(raw, venue_id, symbol, client.venue)
            found.update((t.transaction_id, t) for t in rows)
            if not cursor:
                break
        since = end + 1
    return _by_time(found)


async def _ccxt_funding_history(
    client: CcxtClient, symbol: str, venue_id: str, since: int, now: int
) -> list[transaction_pb2.Transaction]:
    """ccxt ``fetchFundingHistory`` from ``since``, page after page (a full page moves ``since`` past
    its last entry; an id seen twice is kept once)."""
    unified = await client._unified(symbol)
    found: dict[str, transaction_pb2.Transaction] = {}
    while True:
        raws = await client._call("read", client._ex.fetch_funding_history, unified, since, _INCOME_PAGE)
        if not isinstance(raws, list):
            raise ParseError("funding income: expected a list", venue=client.venue)
        page = [parse.parse_funding_income(r, client.venue) for r in raws]
        found.update((t.transaction_id, t) for t in page)
        if len(page) < _INCOME_PAGE:
            break
        since = max(to_ns(t.timestamp) for t in page) // 1_000_000 + 1
    return _by_time(found)


async def _ledger(
    client: CcxtClient, symbol: str, venue_id: str, since: int, now: int
) -> list[transaction_pb2.Transaction]:
    read = client.quirks.ledger
    if read is None:
        raise UnsupportedOperation(f"{client.venue}: no ledger line in the quirk table", venue=client.venue)
    market = client._ex.markets.get(await client._unified(symbol)) or {}
    fill = {k: str(v) for k, v in market.items() if isinstance(v, str)}
    try:
        fixed = dict(read.params) | {param: tmpl.format_map(fill) for param, tmpl in read.market_params}
    except KeyError as err:
        raise ParseError(f"ledger: the market of {symbol} has no {err}", venue=client.venue) from None
    settle = fill.get("settle", "")
    method = getattr(client._ex, read.method)
    found: dict[str, transaction_pb2.Transaction] = {}
    unit = read.time_unit_ms
    while True:
        end = since + read.max_window_ms if read.max_window_ms and since + read.max_window_ms < now else None
        cursor = ""
        offset = 0
        while True:
            request = fixed | {read.since_param: since // unit, read.limit_param: read.limit}
            if end is not None:
                request[read.until_param] = -(-end // unit)
            if read.paging == "offset":
                request[read.cursor_param] = offset
            elif cursor:
                request[read.cursor_param] = cursor
            raw = await client._call("read", method, request)
            rows, count, cursor = parse.parse_ledger_page(raw, read, venue_id, settle, client.venue)
            found.update((t.transaction_id, t) for t in rows)
            offset += count
            if count < read.limit or not cursor:
                break
        if end is None:
            return _by_time(found)
        since = end + 1


_READERS = {
    "bybit_transaction_log": _bybit_transaction_log,
    "ccxt_funding_history": _ccxt_funding_history,
    "ledger": _ledger,
}
