"""Funding paid, estimated from the venue's funding-rate readings: the one home of the estimate (the
engine's ``risk_funding_paid`` and the arbitrage's funding PnL on venues that do not report funding).

Rules:

* A settlement is seen when a reading shows it happened since the previous reading:

  - the reading names the last settlement (``funding_time``, the simulator): it moved on, and its
    ``rate`` is the settled rate;
  - else the reading names only the next one (``next_funding_time``; what ccxt's current rate carries,
    docs.ccxt.com "Funding Rate Structure"): it moved forward, so the previous next time settled at the
    rate the previous reading announced for it.

* The first reading is the baseline: a settlement before it is not counted.
* Paid = the signed position (long +, short -) x the price x the rate: a long pays a positive rate; a
  negative amount is funding received.  The position is the one the caller holds when it sees the
  settlement (read at most one polling interval after it): an estimate, never the venue's booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cqc.markets.v1 import funding_pb2
from cqvx.num import dec_or_none
from cqvx.timeutil import to_ns

__all__ = ["FundingSettlements", "Settlement", "funding_paid"]


@dataclass(frozen=True, slots=True)
class Settlement:
    at_ns: int  # the settlement's venue time
    rate: Decimal
    mark: Decimal | None  # the reading's mark price, when it has one


def funding_paid(held: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """What a signed position ``held`` (base units; long +) pays at ``rate`` and ``price``."""
    return held * price * rate


class FundingSettlements:
    """Feed every funding-rate reading of one perpetual to :meth:`observe`; it answers the settlement
    that happened since the previous reading (None: none, or this is the baseline)."""

    def __init__(self) -> None:
        self._last_at = 0  # the last settlement seen (or the baseline), venue epoch ns
        self._next_at = 0  # the next settlement the previous reading announced
        self._next_rate: Decimal | None = None  # ... and its rate

    def observe(self, fr: funding_pb2.FundingRate) -> Settlement | None:
        rate = dec_or_none(fr.rate, "rate")
        mark = dec_or_none(fr.mark_price, "mark_price")
        if fr.HasField("funding_time"):
            at = to_ns(fr.funding_time)
            if at <= self._last_at:
                return None
            first, self._last_at = self._last_at == 0, at
            return None if first or rate is None else Settlement(at, rate, mark)
        if not fr.HasField("next_funding_time"):
            return None
        nxt = to_ns(fr.next_funding_time)
        settled: Settlement | None = None
        if self._next_at and nxt > self._next_at and self._next_rate is not None:
            settled = Settlement(self._next_at, self._next_rate, mark)
            self._last_at = self._next_at
        if nxt >= self._next_at:
            self._next_at, self._next_rate = nxt, rate
        return settled
