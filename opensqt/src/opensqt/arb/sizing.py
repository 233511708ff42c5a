"""Sizing and price bounds of the arbitrage legs: pure functions, no I/O.

Rules:

* Quantities are base units, as in every cqc ``Order`` (a contract-sized venue's adapter converts, and
  refuses a quantity that is not a whole number of contracts).
* The perpetual leg hedges what the spot leg EXECUTED, never what it asked for: ``floor(spot_executed /
  step) * step`` with ``step`` a whole number of contracts AND of perp lots (:attr:`LegRules.step`).
  Never rounded up: an over-hedge is a naked perpetual position.  What the floor leaves over (less than one
  step) stays as unhedged spot dust and is reported.
* A compensation (unwind) sells or buys back exactly the unhedged part of the first leg, floored to the
  spot lot.
* Market-like legs are limit IOC orders whose price is bounded by the shared slippage guard
  (:func:`opensqt.risk.slippage.worst_price`, the one home of the bound): ``arb.max_slippage`` (a
  fraction) is its fixed allowance (``base_percent = max_percent = 100 x max_slippage``, no volatility
  term) around the book's mid; :func:`bounded_price` only translates, and passes a denial (one-sided or
  crossed book, far side already beyond the bound) through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cqvx.num import ZERO, round_quantity
from opensqt.config import SlippageConfig
from opensqt.risk.exposure import Denied
from opensqt.risk.slippage import Level, worst_price

__all__ = ["LegRules", "bounded_price", "hedge_quantity", "spot_quantity", "unhedged_spot"]


@dataclass(frozen=True, slots=True)
class LegRules:
    """An instrument's order rules (from the venue's instrument list; empty rule = 0)."""

    tick: Decimal
    lot: Decimal
    min_quantity: Decimal = ZERO
    min_notional: Decimal = ZERO
    contract_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if self.tick <= 0 or self.lot <= 0 or self.contract_size <= 0:
            raise ValueError(f"tick, lot and contract size must be > 0: {self}")

    @property
    def step(self) -> Decimal:
        """The smallest base quantity that is a whole number of lots AND of contracts.

        ``lot`` is in base units (cqc ``Instrument.lot_size``).  A contract size of 1 is the linear
        venues' "quantity is base" (the simulator, USDT-margined perps quoting base lots): the lot alone
        rules.  Otherwise the step is the least common multiple of lot and contract size, so a quantity
        is never a fraction of a contract even where the venue's lot is finer."""
        lot, size = self.lot, self.contract_size
        if size == 1:
            return lot
        exp = max(-lot.as_tuple().exponent, -size.as_tuple().exponent, 0)  # type: ignore[operator]
        scale = Decimal(10) ** exp
        a, b = int(lot * scale), int(size * scale)
        return Decimal(a * b // math.gcd(a, b)) / scale

    def tradable(self, quantity: Decimal, price: Decimal) -> bool:
        """May ``quantity`` base units be sent at ``price``?"""
        return quantity > 0 and quantity >= self.min_quantity and quantity * price >= self.min_notional


def spot_quantity(notional: Decimal, price: Decimal, spot: LegRules) -> Decimal:
    """Base units of the spot leg for ``notional`` quote at ``price``, floored to the lot."""
    if notional <= 0 or price <= 0:
        raise ValueError(f"notional and price must be > 0 (got {notional}, {price})")
    return round_quantity(notional / price, spot.lot)


def hedge_quantity(spot_executed: Decimal, perp: LegRules) -> Decimal:
    """Perp quantity (base units) that hedges ``spot_executed``: floored to :attr:`LegRules.step`, so the
    result is never above ``spot_executed`` and always a whole number of lots and contracts."""
    if spot_executed <= 0:
        return ZERO
    return round_quantity(spot_executed, perp.step)


def unhedged_spot(spot_held: Decimal, hedged: Decimal, spot: LegRules) -> Decimal:
    """Base units of the spot leg NOT covered by ``hedged`` perp base units, floored to the spot lot (what
    an unwind sends); never negative."""
    rest = spot_held - hedged
    return round_quantity(rest, spot.lot) if rest > 0 else ZERO


def bounded_price(
    bids: Sequence[Level], asks: Sequence[Level], *, is_buy: bool, slippage: Decimal, rules: LegRules
) -> Decimal | Denied:
    """The limit of a market-like IOC leg: at most ``slippage`` (a fraction) worse than the book's mid, on
    the tick (:func:`~opensqt.risk.slippage.worst_price`), or why there is none."""
    if not ZERO < slippage < 1:
        raise ValueError(f"0 < slippage < 1 required (got {slippage})")
    percent = slippage * 100
    cfg = SlippageConfig(base_percent=percent, max_percent=percent)
    bound = worst_price(cfg, is_buy=is_buy, bids=bids, asks=asks, tick_size=rules.tick)
    return bound if isinstance(bound, Denied) else bound.price
