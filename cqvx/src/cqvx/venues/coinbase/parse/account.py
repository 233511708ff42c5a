"""REST accounts, futures (CFM) positions and the futures balance summary -> cqc messages."""

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
    timestamp,
)


def balance_from_account(a: m.Account) -> balance_pb2.Balance:
    """One account; ``available_balance`` and ``hold`` are both required (a missing hold is not
    "nothing locked") and neither may be negative."""
    if not a.currency:
        raise ParseError("account: missing currency", venue=VENUE)
    if a.available_balance is None or a.hold is None:
        raise ParseError("account: missing available_balance or hold", venue=VENUE)
    available = non_negative(a.available_balance.value, "available_balance")
    hold = non_negative(a.hold.value, "hold")
    out = balance_pb2.Balance(
        venue=VENUE,
        account_id=a.uuid,
        asset=a.currency,
        balance_type=balance_pb2.BALANCE_TYPE_SPOT,
        total=dec_str(available + hold),
        available=dec_str(available),
        locked=dec_str(hold),
    )
    updated = timestamp(a.updated_at, "updated_at")
    if updated is not None:
        out.updated_at.CopyFrom(updated)
    return out


def accounts_from_json(data: bytes) -> tuple[list[balance_pb2.Balance], str | None]:
    """One ``GET /accounts`` page -> (balances, next cursor or None)."""
    page = decode(data, m.AccountsResponse)
    balances = [balance_from_account(a) for a in page.accounts]
    return balances, (page.cursor if page.has_next and page.cursor else None)


# --- US derivatives (CFM futures) account -------------------------------------------------------------

_POSITION_SIDE = {
    "LONG": position_pb2.POSITION_SIDE_LONG,
    "SHORT": position_pb2.POSITION_SIDE_SHORT,
    "UNSPECIFIED": position_pb2.POSITION_SIDE_UNSPECIFIED,
    "": position_pb2.POSITION_SIDE_UNSPECIFIED,
}


def _money(value: m.MoneyOrText, field: str, *, signed: bool = False) -> tuple[str, str]:
    """(canonical decimal text, currency) of a money field in either documented shape; negative
    only where ``signed`` (PnL)."""
    if value is None:
        return "", ""
    if isinstance(value, m.Money):
        return dec_text(value.value, field, signed=signed), value.currency
    return dec_text(value, field, signed=signed), ""


def position_from_fcm(
    p: m.FcmPosition,
    to_canonical: ToCanonical = _identity,
    contract_size: Decimal | None = None,
    quote_of: QuoteOf = _spot_quote,
) -> position_pb2.Position:
    """A futures position -> cqc Position.

    ``number_of_contracts`` counts contracts; cqc quantities are base units, so it is multiplied by the
    contract size (the position's own ``contract_size`` when sent, else the product's, else 1).
    ``daily_realized_pnl`` is realized today only, not since the position opened, so ``realized_pnl``
    stays empty.  Sides come as ``LONG``/``SHORT`` or ``FUTURES_POSITION_SIDE_*``.  The size is
    required (a position without one is a ParseError, never "flat"); the settlement currency is the
    product's quote currency (``quote_of``), else the currency the money fields carry.
    """
    if not p.product_id:
        raise ParseError("futures position: missing product_id", venue=VENUE)
    side_text = p.side.removeprefix("FUTURES_POSITION_SIDE_")
    side = _POSITION_SIDE.get(side_text)
    if side is None:
        raise ParseError(f"futures position: side {p.side[:40]!r}", venue=VENUE)
    if not p.number_of_contracts:
        raise ParseError(f"futures position {p.product_id[:40]}: missing number_of_contracts", venue=VENUE)
    contracts = dec(p.number_of_contracts, "number_of_contracts", VENUE)
    size = (
        non_negative(p.contract_size, "contract_size") if p.contract_size else (contract_size or Decimal(1))
    )
    if size <= 0:
        raise ParseError("futures position: contract_size must be positive", venue=VENUE)
    if contracts < 0:
        if side == position_pb2.POSITION_SIDE_LONG:
            raise ParseError("futures position: LONG with a negative size", venue=VENUE)
        # Some payloads sign the count instead of naming the side.
        side = position_pb2.POSITION_SIDE_SHORT if side == position_pb2.POSITION_SIDE_UNSPECIFIED else side
        contracts = -contracts
    if contracts == 0:
        side = position_pb2.POSITION_SIDE_FLAT
    mark, currency = _money(p.current_price, "current_price")
    entry, c2 = _money(p.avg_entry_price, "avg_entry_price")
    upnl, c3 = _money(p.unrealized_pnl, "unrealized_pnl", signed=True)
    liq, _ = _money(p.liquidation_price, "liquidation_price")
    im, _ = _money(p.im_contribution, "im_contribution")
    mm, _ = _money(p.mm_contribution, "mm_contribution")
    return position_pb2.Position(
        venue=VENUE,
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
        # The product's quote currency (CFM futures: USD, futures balance summary reference).
        settle_asset=quote_of(p.product_id) or currency or c2 or c3,
    )


def positions_from_json(
    data: bytes,
    to_canonical: ToCanonical = _identity,
    contract_sizes: dict[str, Decimal] | None = None,
    quote_of: QuoteOf = _spot_quote,
) -> list[position_pb2.Position]:
    """``GET /cfm/positions`` -> positions (a reply without a ``positions`` list is a ParseError)."""
    sizes = contract_sizes or {}
    return [
        position_from_fcm(p, to_canonical, sizes.get(p.product_id), quote_of)
        for p in decode(data, m.FcmPositionsResponse).positions
    ]


def position_from_json(
    data: bytes,
    to_canonical: ToCanonical = _identity,
    contract_sizes: dict[str, Decimal] | None = None,
    quote_of: QuoteOf = _spot_quote,
) -> position_pb2.Position:
    """``GET /cfm/positions/{product_id}`` -> the position.  No position is a 404 from the venue; a
    200 without a ``position`` is a ParseError, never "flat"."""
    p = decode(data, m.FcmPositionResponse).position
    return position_from_fcm(p, to_canonical, (contract_sizes or {}).get(p.product_id), quote_of)


@dataclass(frozen=True, slots=True)
class FuturesBalanceSummary:
    """The US-derivatives account (``GET /cfm/balance_summary``), USD amounts as Decimals."""

    futures_buying_power: Decimal
    total_usd_balance: Decimal
    cbi_usd_balance: Decimal  # USD in the spot (Coinbase Inc.) account
    cfm_usd_balance: Decimal  # USD in the futures (FCM) account
    total_open_orders_hold_amount: Decimal
    unrealized_pnl: Decimal
    daily_realized_pnl: Decimal
    initial_margin: Decimal
    available_margin: Decimal
    liquidation_threshold: Decimal
    liquidation_buffer_amount: Decimal
    liquidation_buffer_percentage: Decimal

    def balance(self) -> balance_pb2.Balance:
        """The futures account as a cqc Balance: total = FCM USD balance, available = available
        margin, locked = the rest (so total = available + locked always holds)."""
        total = self.cfm_usd_balance
        available = min(self.available_margin, total)
        return balance_pb2.Balance(
            venue=VENUE,
            asset="USD",
            balance_type=balance_pb2.BALANCE_TYPE_FUTURES,
            total=dec_str(total),
            available=dec_str(available),
            locked=dec_str(total - available),
        )


def futures_balance_from_json(data: bytes) -> FuturesBalanceSummary:
    b = decode(data, m.FcmBalanceSummaryResponse).balance_summary
    if b is None:
        raise ParseError("futures balance summary: missing balance_summary", venue=VENUE)

    def amount(value: m.MoneyOrText, field: str, *, signed: bool = False, required: bool = True) -> Decimal:
        text, _ = _money(value, field, signed=signed)
        if not text and required:
            raise ParseError(f"futures balance summary: missing {field}", venue=VENUE)
        return dec(text or "0", field, VENUE)

    return FuturesBalanceSummary(
        futures_buying_power=amount(b.futures_buying_power, "futures_buying_power"),
        total_usd_balance=amount(b.total_usd_balance, "total_usd_balance"),
        cbi_usd_balance=amount(b.cbi_usd_balance, "cbi_usd_balance"),
        cfm_usd_balance=amount(b.cfm_usd_balance, "cfm_usd_balance"),
        total_open_orders_hold_amount=amount(b.total_open_orders_hold_amount, "open_orders_hold"),
        unrealized_pnl=amount(b.unrealized_pnl, "unrealized_pnl", signed=True),
        daily_realized_pnl=amount(b.daily_realized_pnl, "daily_realized_pnl", signed=True, required=False),
        initial_margin=amount(b.initial_margin, "initial_margin"),
        available_margin=amount(b.available_margin, "available_margin"),
        liquidation_threshold=amount(b.liquidation_threshold, "liquidation_threshold", required=False),
        liquidation_buffer_amount=amount(
            b.liquidation_buffer_amount, "liquidation_buffer_amount", signed=True, required=False
        ),
        liquidation_buffer_percentage=dec(
            b.liquidation_buffer_percentage or "0", "liquidation_buffer_percentage", VENUE
        ),
    )
