"""The funding-fee ledgers of the thinner fakes (OKX bills, Bitget mix account bills, Gate futures account
book): the simulated venue's own funding settlements (``sim.funding_payments``) in each venue's documented
shape, written from the venue docs (never from the adapter or ccxt).  A settlement's ``paid`` is what
the account paid; the venues write the balance change, so the amount is ``-paid`` (+ received).

Bill ids are the settlement's position in the sim's record plus one: they grow with time, as the
venues' ids do, so "older than id" paging works as documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cqvx.testing.fake_ccxt._base import Refused, dec_text

if TYPE_CHECKING:
    from cqvx.testing.fake_ccxt._base import SimFake
    from cqvx.venues.sim.client import FundingPayment

__all__ = ["bitget_bills", "gate_account_book", "okx_bills"]

_DAY_MS = 24 * 3600 * 1000


def _int(params: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = params.get(key)
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError:
        raise Refused(400, "400", f"{key} is not an integer") from None


def _newest_first(fake: SimFake, symbol: str) -> Iterator[tuple[int, FundingPayment]]:
    """(bill id, settlement) of the perpetual's venue symbol ``symbol`` ("" = all), newest first."""
    pays = list(enumerate(fake.sim.funding_payments, start=1))
    for n, pay in reversed(pays):
        if not symbol or fake.venue_symbol(pay.symbol) == symbol:
            yield n, pay


async def okx_bills(fake: SimFake, request: web.Request, params: dict[str, Any]) -> Any:
    """``GET /api/v5/account/bills-archive``
    (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details-last-3-months): filters
    instType, instId, type (8 = funding fee), begin/end (ms, inclusive), after (billId: older records),
    limit (default and max 100); newest first; subType 173 = funding fee expense, 174 = income."""

    if params.get("type", "8") != "8" or params.get("instType", "SWAP") != "SWAP":
        return []
    begin, end = _int(params, "begin", 0), _int(params, "end")
    after, limit = _int(params, "after"), min(_int(params, "limit", 100) or 100, 100)
    rows = []
    for n, pay in _newest_first(fake, params.get("instId", "")):
        at = pay.at_ns // 1_000_000
        if (after is not None and n >= after) or at < (begin or 0) or (end is not None and at > end):
            continue
        change = -pay.paid
        rows.append(
            {
                "billId": str(n), "instType": "SWAP", "instId": fake.venue_symbol(pay.symbol),
                "ccy": pay.asset, "mgnMode": "cross", "type": "8",
                "subType": "174" if change > 0 else "173", "balChg": dec_text(change),
                "posBal": "0", "posBalChg": "0", "sz": fake.to_wire(dec_text(abs(pay.quantity))),
                "fee": "0", "pnl": "0", "ordId": "", "execType": "", "from": "", "to": "",
                "notes": "", "ts": str(at),
            }
        )  # fmt: skip
        if len(rows) == limit:
            break
    return rows


async def bitget_bills(fake: SimFake, request: web.Request, params: dict[str, Any]) -> Any:
    """``GET /api/v2/mix/account/bill`` (https://www.bitget.com/api-doc/contract/account/Get-Account-Bill):
    productType required; symbol, businessType (contract_settle_fee = funding fee), startTime/endTime
    (ms, at most 30 days apart), idLessThan (the previous reply's endId), limit (default 20, max 100);
    ``data = {"bills": [...], "endId": the last bill's id}``."""

    if params.get("productType") not in ("USDT-FUTURES", "USDC-FUTURES", "COIN-FUTURES"):
        raise Refused(400, "400", "productType missing or unknown")  # code not documented: generic
    start, end = _int(params, "startTime", 0) or 0, _int(params, "endTime")
    if end is not None and end - start > 30 * _DAY_MS:
        raise Refused(400, "400", "startTime and endTime more than 30 days apart")  # generic code
    below, limit = _int(params, "idLessThan"), min(_int(params, "limit", 20) or 20, 100)
    if params.get("businessType", "contract_settle_fee") != "contract_settle_fee":
        return {"bills": [], "endId": ""}
    bills = []
    for n, pay in _newest_first(fake, params.get("symbol", "")):
        at = pay.at_ns // 1_000_000
        if (below is not None and n >= below) or at < start or (end is not None and at > end):
            continue
        bills.append(
            {
                "billId": str(n), "symbol": fake.venue_symbol(pay.symbol), "amount": dec_text(-pay.paid),
                "fee": "0", "feeByCoupon": "", "businessType": "contract_settle_fee", "coin": pay.asset,
                "balance": "0", "cTime": str(at),
            }
        )  # fmt: skip
        if len(bills) == limit:
            break
    return {"bills": bills, "endId": bills[-1]["billId"] if bills else ""}


async def gate_account_book(fake: SimFake, request: web.Request, params: dict[str, Any]) -> Any:
    """``GET /futures/{settle}/account_book``
    (https://www.gate.com/docs/developers/apiv4/en/#query-futures-account-change-history): contract,
    type (fund = funding), from/to (Unix seconds, inclusive), limit (default 100), offset; newest first;
    ``time`` in seconds with a fraction, ``change`` the signed balance change, ``id`` the record id."""

    if request.match_info.get("settle") != "usdt":
        raise Refused(400, "INVALID_PARAM_VALUE", "settle")  # the one settle currency served
    if params.get("type", "fund") != "fund":
        return []
    start, end = _int(params, "from", 0) or 0, _int(params, "to")
    offset, limit = _int(params, "offset", 0) or 0, _int(params, "limit", 100) or 100
    rows = []
    for n, pay in _newest_first(fake, params.get("contract", "")):
        at = Decimal(pay.at_ns) / 10**9
        if at < start or (end is not None and at > end):
            continue
        contract = fake.venue_symbol(pay.symbol)
        rows.append(
            {
                "time": float(at), "change": dec_text(-pay.paid), "balance": "0",
                "text": f"{contract}:funding", "type": "fund", "contract": contract, "trade_id": "",
                "id": str(n),
            }
        )  # fmt: skip
    return rows[offset : offset + limit]
