"""Pre-trade exposure limits, as pure functions.

Exposure of a symbol (quote notional) = ``|position| x price`` + the notional of its live OPENING orders
(those that would grow the position if they filled).  An order is checked against what the exposure
would be if it filled too:

* per symbol: ``max_symbol_notional``;
* per account: ``max_account_notional`` over every symbol the account trades (the :class:`AccountExposure`
  is shared by the engines of one account; each publishes its own symbol's exposure).

A closing or reduce-only order never grows the exposure and is never denied.  A denial is local (the
venue never sees the order): :class:`Denied`, distinct from a venue's rejection.

The slippage guard of market-like orders is :mod:`opensqt.risk.slippage`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cqvx.num import ZERO, dec_str
from opensqt.config import ExposureConfig

__all__ = ["AccountExposure", "Denied", "check_order"]

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Denied:
    """A placement refused locally, before the venue: ``limit`` is a bounded label."""

    limit: str  # symbol_notional | account_notional | slippage
    detail: str


@dataclass
class AccountExposure:
    """The notional exposure of every symbol of one account (quote units)."""

    by_symbol: dict[str, Decimal] = field(default_factory=dict)

    def publish(self, symbol: str, notional: Decimal) -> None:
        self.by_symbol[symbol] = notional

    def total(self) -> Decimal:
        return sum(self.by_symbol.values(), ZERO)

    def others(self, symbol: str) -> Decimal:
        return sum((v for k, v in self.by_symbol.items() if k != symbol), ZERO)


def check_order(
    limits: ExposureConfig,
    *,
    symbol: str,
    notional: Decimal,
    opening: bool,
    symbol_exposure: Decimal,
    account: AccountExposure | None = None,
) -> Denied | None:
    """Would an order of ``notional`` (quote) exceed a limit?  ``symbol_exposure`` is the symbol's
    current exposure (orders already admitted included)."""
    if not opening or notional <= 0:
        return None
    after = symbol_exposure + notional
    cap = limits.max_symbol_notional
    if cap is not None and after > cap:
        return Denied(
            "symbol_notional",
            f"{symbol} exposure would be {dec_str(after)} (now {dec_str(symbol_exposure)}),"
            f" limit {dec_str(cap)}",
        )
    acap = limits.max_account_notional
    if acap is not None:
        total = (account.others(symbol) if account is not None else ZERO) + after
        if total > acap:
            return Denied(
                "account_notional", f"account exposure would be {dec_str(total)}, limit {dec_str(acap)}"
            )
    return None
