"""Perpetuals on Coinbase International (INTX) through Advanced Trade -> cqc messages.

Endpoints (perpetuals section of the Advanced Trade REST reference,
https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/perpetuals/list-perpetuals-positions,
.../get-perpetuals-portfolio-summary, .../get-portfolio-balances), all per perpetuals portfolio uuid:

* positions: ``position_side`` ``POSITION_SIDE_LONG``/``_SHORT``/``_UNKNOWN``; ``net_size`` is the size
  in contracts (a sign, when present, must agree with the side); cqc quantities are base units, so it
  is multiplied by the product's contract size (products table).  ``entry_vwap`` is the entry price,
  ``im_notional``/``mm_notional`` the initial/maintenance margin.  Settlement is the product's quote
  currency (USDC for ``BTC-PERP-INTX``), never a piece of the product id.
* portfolio summary: collateral, notional, margins and the liquidation buffer per portfolio.
* balances: per asset ``quantity`` (total) and ``hold``; available = quantity - hold.

Absence is not emptiness: a reply without ``positions``, ``portfolios`` or ``portfolio_balances``, a
position without ``net_size``, or a balance without ``quantity``/``hold`` is a :class:`ParseError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2
from cqvx.errors import ParseError
from cqvx.num import dec, dec_str
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase.errors import VENUE
from cqvx.venues.coinbase.parse._common import (
    QuoteOf,
    ToCanonical,
    _identity,
    _spot_quote,
    dec_text,
    decode,
    non_negative,
)
from cqvx.venues.coinbase.parse.account import _money

_SIDE = {
    "POSITION_SIDE_LONG": position_pb2.POSITION_SIDE_LONG,
    "POSITION_SIDE_SHORT": position_pb2.POSITION_SIDE_SHORT,
    "POSITION_SIDE_UNKNOWN": position_pb2.POSITION_SIDE_UNSPECIFIED,
    "": position_pb2.POSITION_SIDE_UNSPECIFIED,
}
_MARGIN = {
    "MARGIN_TYPE_CROSS": position_pb2.MARGIN_MODE_CROSS,
    "MARGIN_TYPE_ISOLATED": position_pb2.MARGIN_MODE_ISOLATED,
}


def intx_position(
    p: m.IntxPosition,
    to_canonical: ToCanonical = _identity,
    contract_size: Decimal | None = None,
    quote_of: QuoteOf = _spot_quote,
) -> position_pb2.Position:
    """One INTX perpetuals position -> cqc Position (quantity in base units)."""
    if not p.product_id:
        raise ParseError("perpetuals position: missing product_id", venue=VENUE)
    side = _SIDE.get(p.position_side)
    if side is None:
        raise ParseError(f"perpetuals position: side {p.position_side[:40]!r}", venue=VENUE)
    if not p.net_size:
        raise ParseError(f"perpetuals position {p.product_id[:40]}: missing net_size", venue=VENUE)
    contracts = dec(p.net_size, "net_size", VENUE)
    if contracts < 0:
        if side == position_pb2.POSITION_SIDE_LONG:
            raise ParseError("perpetuals position: LONG with a negative net_size", venue=VENUE)
        side = position_pb2.POSITION_SIDE_SHORT
        contracts = -contracts
    elif contracts > 0 and side == position_pb2.POSITION_SIDE_UNSPECIFIED:
        side = position_pb2.POSITION_SIDE_LONG
    if contracts == 0:
        side = position_pb2.POSITION_SIDE_FLAT
    size = contract_size if contract_size is not None else Decimal(1)
    if size <= 0:
        raise ParseError("perpetuals position: contract size must be positive", venue=VENUE)
    entry, c1 = _money(p.entry_vwap if p.entry_vwap is not None else p.vwap, "entry_vwap")
    mark, c2 = _money(p.mark_price, "mark_price")
    upnl, c3 = _money(p.unrealized_pnl, "unrealized_pnl", signed=True)
    liq, _ = _money(p.liquidation_price, "liquidation_price")
    im, _ = _money(p.im_notional, "im_notional")
    mm, _ = _money(p.mm_notional, "mm_notional")
    return position_pb2.Position(
        venue=VENUE,
        account_id=p.portfolio_uuid,
        symbol=to_canonical(p.product_id),
        side=side,
        quantity=dec_str(contracts * size),
        entry_price=entry,
        mark_price=mark,
        liquidation_price=liq,
        leverage=dec_text(p.leverage, "leverage"),
        unrealized_pnl=upnl,
        margin=im,
        maintenance_margin=mm,
        margin_mode=_MARGIN.get(p.margin_type, position_pb2.MARGIN_MODE_UNSPECIFIED),
        settle_asset=quote_of(p.product_id) or c1 or c2 or c3,
    )


def intx_positions_from_json(
    data: bytes,
    to_canonical: ToCanonical = _identity,
    contract_sizes: dict[str, Decimal] | None = None,
    quote_of: QuoteOf = _spot_quote,
) -> list[position_pb2.Position]:
    """``GET /intx/positions/{portfolio_uuid}`` -> positions."""
    sizes = contract_sizes or {}
    return [
        intx_position(p, to_canonical, sizes.get(p.product_id), quote_of)
        for p in decode(data, m.IntxPositionsResponse).positions
    ]


def intx_position_from_json(
    data: bytes,
    to_canonical: ToCanonical = _identity,
    contract_sizes: dict[str, Decimal] | None = None,
    quote_of: QuoteOf = _spot_quote,
) -> position_pb2.Position:
    """``GET /intx/positions/{portfolio_uuid}/{symbol}`` -> the position."""
    p = decode(data, m.IntxPositionResponse).position
    return intx_position(p, to_canonical, (contract_sizes or {}).get(p.product_id), quote_of)


def intx_balances_from_json(data: bytes) -> list[balance_pb2.Balance]:
    """``GET /intx/balances/{portfolio_uuid}`` -> one MARGIN balance per asset and portfolio."""
    out: list[balance_pb2.Balance] = []
    for pb in decode(data, m.IntxBalancesResponse).portfolio_balances:
        for b in pb.balances:
            if b.asset is None or not b.asset.asset_name:
                raise ParseError("perpetuals balance: missing asset", venue=VENUE)
            total = non_negative(b.quantity, "quantity")
            hold = non_negative(b.hold, "hold")
            if hold > total:
                raise ParseError(f"perpetuals balance {b.asset.asset_name[:20]}: hold > total", venue=VENUE)
            out.append(
                balance_pb2.Balance(
                    venue=VENUE,
                    account_id=pb.portfolio_uuid,
                    asset=b.asset.asset_name,
                    balance_type=balance_pb2.BALANCE_TYPE_MARGIN,
                    total=dec_str(total),
                    available=dec_str(total - hold),
                    locked=dec_str(hold),
                    borrowed=dec_text(b.loan, "loan"),
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class PerpsPortfolioSummary:
    """One INTX perpetuals portfolio (``GET /intx/portfolio/{uuid}``): Decimals, None when not sent."""

    portfolio_uuid: str
    collateral: Decimal
    total_balance: Decimal
    unrealized_pnl: Decimal | None
    position_notional: Decimal | None
    open_position_notional: Decimal | None
    pending_fees: Decimal | None
    portfolio_initial_margin: Decimal | None  # a fraction of notional
    portfolio_maintenance_margin: Decimal | None
    initial_margin_notional: Decimal | None
    maintenance_margin_notional: Decimal | None
    liquidation_buffer: Decimal | None
    margin_type: str
    currency: str
    buying_power: Decimal | None  # from the response's summary
    max_withdrawal_amount: Decimal | None


def _opt(text: str, field: str, *, signed: bool = False) -> Decimal | None:
    value = dec_text(text, field, signed=signed)
    return Decimal(value) if value else None


def intx_portfolio_from_json(data: bytes, portfolio_uuid: str = "") -> PerpsPortfolioSummary:
    """``GET /intx/portfolio/{portfolio_uuid}`` -> the summary of that portfolio (the first one when
    no uuid is given); ``collateral`` and ``total_balance`` are required."""
    resp = decode(data, m.IntxPortfolioSummaryResponse)
    chosen = [p for p in resp.portfolios if not portfolio_uuid or p.portfolio_uuid == portfolio_uuid]
    if not chosen:
        raise ParseError("perpetuals portfolio summary: portfolio not in the reply", venue=VENUE)
    p = chosen[0]
    total, currency = _money(p.total_balance, "total_balance")
    if not p.collateral or not total:
        raise ParseError("perpetuals portfolio summary: missing collateral or total_balance", venue=VENUE)
    upnl, _ = _money(p.unrealized_pnl, "unrealized_pnl", signed=True)
    im, _ = _money(p.portfolio_im_notional, "portfolio_im_notional")
    mm, _ = _money(p.portfolio_mm_notional, "portfolio_mm_notional")
    summary = resp.summary or m.IntxSummary()
    power, _ = _money(summary.buying_power, "buying_power")
    withdraw, _ = _money(summary.max_withdrawal_amount, "max_withdrawal_amount")
    return PerpsPortfolioSummary(
        portfolio_uuid=p.portfolio_uuid,
        collateral=non_negative(p.collateral, "collateral"),
        total_balance=Decimal(total),
        unrealized_pnl=_opt(upnl, "unrealized_pnl", signed=True),
        position_notional=_opt(p.position_notional, "position_notional"),
        open_position_notional=_opt(p.open_position_notional, "open_position_notional"),
        pending_fees=_opt(p.pending_fees, "pending_fees"),
        portfolio_initial_margin=_opt(p.portfolio_initial_margin, "portfolio_initial_margin"),
        portfolio_maintenance_margin=_opt(p.portfolio_maintenance_margin, "portfolio_maintenance_margin"),
        initial_margin_notional=_opt(im, "portfolio_im_notional"),
        maintenance_margin_notional=_opt(mm, "portfolio_mm_notional"),
        liquidation_buffer=_opt(p.liquidation_buffer, "liquidation_buffer", signed=True),
        margin_type=p.margin_type,
        currency=currency,
        buying_power=_opt(power, "buying_power"),
        max_withdrawal_amount=_opt(withdraw, "max_withdrawal_amount"),
    )
