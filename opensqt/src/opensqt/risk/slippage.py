"""The dynamic slippage guard for market-like orders: the worst acceptable price, or a denial.

Every path that sends an order meant to take liquidity now (the position reduction on a breaker trip,
the arbitrage legs) asks :func:`worst_price` first and sends a LIMIT IOC at the returned bound, never a
bare market order: the venue can then fill only inside the allowance, whatever the book does in
between.

Rules (``risk.slippage``, config/risk.py):

* reference = the book's mid ``(best bid + best ask) / 2``; a one-sided, empty or crossed book is
  denied (no honest reference);
* allowance (percent of the reference) = ``base_percent + volatility_multiple x volatility``, capped at
  ``max_percent``: a calm market gets a tight bound, a fast one a wider bound, never beyond the cap;
  volatility is :func:`volatility_percent` of the recent prices (their range over the last one);
* bound: buy ``reference x (1 + allowance)``, rounded DOWN to the tick; sell ``reference x (1 -
  allowance)``, rounded UP (rounding never widens the allowance);
* denied when the far side's best price (ask for a buy, bid for a sell) is already beyond the bound
  (nothing would fill inside it), or, with a ``mark`` given, when the mid is further from the mark than
  the allowance (a book pulled away from the index: thin or manipulated);
* :attr:`Bound.fillable` is the far-side quantity at prices no worse than the bound: what an IOC at the
  bound can take from the book as seen.

Pure functions of their inputs; a denial is the exposure module's :class:`~opensqt.risk.exposure.Denied`
with ``limit="slippage"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cqc.markets.v1 import orderbook_pb2
from cqvx.num import ZERO, dec, dec_str, round_price
from opensqt.config import SlippageConfig
from opensqt.risk.exposure import Denied

__all__ = ["Bound", "Level", "book_levels", "volatility_percent", "worst_price"]

HUNDRED = Decimal(100)

Level = tuple[Decimal, Decimal]  # (price, quantity)


@dataclass(frozen=True, slots=True)
class Bound:
    """The worst acceptable price of one market-like order."""

    price: Decimal  # the IOC limit: tick-aligned, inside the allowance
    reference: Decimal  # the book's mid
    allowance_percent: Decimal
    fillable: Decimal  # far-side quantity at prices no worse than ``price``


def book_levels(book: orderbook_pb2.OrderBook) -> tuple[list[Level], list[Level]]:
    """(bids, asks) of a book message as decimals; a malformed level raises ``cqvx.errors.ParseError``."""
    bids = [(dec(lv.price, "bid price"), dec(lv.quantity, "bid quantity")) for lv in book.bids]
    asks = [(dec(lv.price, "ask price"), dec(lv.quantity, "ask quantity")) for lv in book.asks]
    return bids, asks


def volatility_percent(prices: Sequence[Decimal]) -> Decimal:
    """The range of ``prices`` (oldest first) in percent of the last one; 0 with fewer than two."""
    if len(prices) < 2 or prices[-1] <= 0:
        return ZERO
    return (max(prices) - min(prices)) / prices[-1] * HUNDRED


def worst_price(
    cfg: SlippageConfig,
    *,
    is_buy: bool,
    bids: Sequence[Level],
    asks: Sequence[Level],
    tick_size: Decimal,
    volatility: Decimal = ZERO,
    mark: Decimal | None = None,
) -> Bound | Denied:
    """The bound of a market-like order (see the module docstring), or why there is none."""
    bid = max((p for p, q in bids if p > 0 and q > 0), default=ZERO)
    ask = min((p for p, q in asks if p > 0 and q > 0), default=ZERO)
    if bid <= 0 or ask <= 0:
        return Denied("slippage", "no two-sided book: no reference price for a market order")
    if bid >= ask:
        return Denied("slippage", f"crossed book (bid {dec_str(bid)} >= ask {dec_str(ask)})")
    if tick_size <= 0:
        return Denied("slippage", "the instrument has no tick size")
    mid = (bid + ask) / 2
    allowance = min(cfg.max_percent, cfg.base_percent + cfg.volatility_multiple * max(volatility, ZERO))
    if mark is not None and mark > 0:
        off = abs(mid - mark) / mark * HUNDRED
        if off > allowance:
            return Denied(
                "slippage",
                f"book mid {dec_str(mid)} is {off:.3f} % from the mark {dec_str(mark)}"
                f" (allowance {allowance:.3f} %)",
            )
    factor = (1 + allowance / HUNDRED) if is_buy else (1 - allowance / HUNDRED)
    bound = round_price(mid * factor, tick_size, is_buy=is_buy)
    far = ask if is_buy else bid
    if (is_buy and far > bound) or (not is_buy and far < bound):
        side = "ask" if is_buy else "bid"
        return Denied(
            "slippage",
            f"best {side} {dec_str(far)} is beyond the bound {dec_str(bound)}"
            f" ({allowance:.3f} % of the mid {dec_str(mid)})",
        )
    levels = asks if is_buy else bids
    fillable = sum((q for p, q in levels if q > 0 and p > 0 and (p <= bound if is_buy else p >= bound)), ZERO)
    return Bound(bound, mid, allowance, fillable)
