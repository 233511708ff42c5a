"""The funding monitor: per venue and pair, the current and predicted funding rate, the next funding time,
the annualized rate and the spot-perp basis, with staleness gates.

Rules:

* Polling (``get_funding_rate`` + a depth-1 book per leg) works on every venue with the funding capability,
  in process or through the connector; a failed read keeps the previous value, which then ages.
* Ages are measured on this process's monotonic clock from when a value was RECEIVED (a venue's own
  event time may run on another clock: the simulator's runs faster than real time).
* :meth:`FundingMonitor.gate` is the entry gate: no entry on a missing or stale rate or price (limits
  ``max_rate_age`` / ``max_price_age``), on a crossed or empty book, or when the venue has no funding.
* Annualized rate = rate x (seconds per year / funding interval); the decision uses the predicted rate
  (the next payment) when the venue gives one, else the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import structlog

from cqc.markets.v1 import funding_pb2
from cqvx.client import SupportsFundingRates, VenueClient
from cqvx.errors import ParseError, VenueError
from cqvx.num import dec_or_none
from cqvx.timeutil import to_seconds
from opensqt.arb.config import PairConfig

__all__ = ["BLOCKS", "YEAR_SECONDS", "FundingMonitor", "PairView", "annualized"]

log = structlog.get_logger("opensqt.arb.monitor")

YEAR_SECONDS = 365 * 24 * 3600
_DEFAULT_INTERVAL = 8 * 3600
BLOCKS = ("no_rate", "stale_rate", "no_price", "stale_price")  # when a venue does not say (the common 8 h)


def annualized(rate: Decimal, interval_seconds: int) -> Decimal:
    """A per-interval funding rate as a yearly fraction (simple, not compounded)."""
    interval = interval_seconds if interval_seconds > 0 else _DEFAULT_INTERVAL
    return rate * YEAR_SECONDS / interval


@dataclass(slots=True)
class _Touch:
    bid: Decimal
    ask: Decimal
    at: float  # monotonic receive time

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(slots=True)
class PairView:
    """What the monitor knows about one pair on one venue."""

    venue: str
    pair: PairConfig
    rate: Decimal | None = None
    predicted: Decimal | None = None
    interval: int = _DEFAULT_INTERVAL
    next_funding_s: float | None = None
    rate_at: float | None = None
    spot: _Touch | None = None
    perp: _Touch | None = None
    errors: int = 0
    last_error: str = ""
    reading: funding_pb2.FundingRate | None = None  # the last funding rate read (settlement detection)

    @property
    def decision_rate(self) -> Decimal | None:
        return self.predicted if self.predicted is not None else self.rate

    @property
    def apr(self) -> Decimal | None:
        r = self.decision_rate
        return None if r is None else annualized(r, self.interval)

    @property
    def basis(self) -> Decimal | None:
        """(perp mid - spot mid) / spot mid."""
        if self.spot is None or self.perp is None or self.spot.mid <= 0:
            return None
        return (self.perp.mid - self.spot.mid) / self.spot.mid

    def touch(self, leg: str) -> _Touch | None:
        return self.spot if leg == "spot" else self.perp

    def to_json(self, now: float) -> dict[str, object]:
        def s(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        return {
            "venue": self.venue,
            "spot": self.pair.spot,
            "perp": self.pair.perp,
            "rate": s(self.rate),
            "predicted_rate": s(self.predicted),
            "interval_seconds": self.interval,
            "apr": s(self.apr),
            "next_funding_time": self.next_funding_s,
            "basis": s(self.basis),
            "rate_age": None if self.rate_at is None else round(now - self.rate_at, 3),
            "price_age": None
            if self.spot is None or self.perp is None
            else round(now - min(self.spot.at, self.perp.at), 3),
            "errors": self.errors,
            "last_error": self.last_error,
        }


class FundingMonitor:
    def __init__(
        self,
        venues: Mapping[str, VenueClient],
        pairs: Mapping[str, list[PairConfig]],
        *,
        max_rate_age: Decimal,
        max_price_age: Decimal,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venues = dict(venues)
        self.max_rate_age = float(max_rate_age)
        self.max_price_age = float(max_price_age)
        self.clock = clock
        self.views: dict[tuple[str, str], PairView] = {
            (venue, p.key): PairView(venue, p) for venue, ps in pairs.items() for p in ps
        }

    def view(self, venue: str, key: str) -> PairView:
        return self.views[(venue, key)]

    async def refresh(self) -> None:
        """Read every pair's funding rate and both books once."""
        for (venue, _), view in self.views.items():
            client = self.venues[venue]
            await self._funding(client, view)
            view.spot = await self._touch(client, view, view.pair.spot) or view.spot
            view.perp = await self._touch(client, view, view.pair.perp) or view.perp

    async def _funding(self, client: VenueClient, view: PairView) -> None:
        if not isinstance(client, SupportsFundingRates):
            view.last_error = "venue has no funding rates"
            return
        try:
            fr = await client.get_funding_rate(view.pair.perp)
            rate = dec_or_none(fr.rate, "rate")
            predicted = dec_or_none(fr.predicted_rate, "predicted_rate")
        except (VenueError, ParseError) as exc:
            self._failed(view, exc)
            return
        if rate is None and predicted is None:
            self._failed(view, ParseError("funding rate without a rate"))
            return
        view.rate, view.predicted, view.reading = rate, predicted, fr
        view.interval = int(fr.interval_seconds) or _DEFAULT_INTERVAL
        view.next_funding_s = to_seconds(fr.next_funding_time) if fr.HasField("next_funding_time") else None
        view.rate_at = self.clock()

    async def _touch(self, client: VenueClient, view: PairView, symbol: str) -> _Touch | None:
        try:
            book = await client.get_order_book(symbol, depth=1)
            if not book.bids or not book.asks:
                raise ParseError(f"{symbol}: empty book side")
            bid = dec_or_none(book.bids[0].price, "bid")
            ask = dec_or_none(book.asks[0].price, "ask")
        except (VenueError, ParseError) as exc:
            self._failed(view, exc)
            return None
        if bid is None or ask is None or bid <= 0 or ask < bid:
            self._failed(view, ParseError(f"{symbol}: crossed or empty touch {bid}/{ask}"))
            return None
        return _Touch(bid, ask, self.clock())

    def _failed(self, view: PairView, exc: Exception) -> None:
        view.errors += 1
        view.last_error = f"{type(exc).__name__}: {exc}"[:200]
        log.warning("arb monitor read failed", venue=view.venue, pair=view.pair.key, error=view.last_error)

    def gate(self, venue: str, key: str) -> tuple[str, str] | None:
        """Why an entry must not start now: ``(kind, message)`` with ``kind`` one of :data:`BLOCKS`
        (a bounded metric label); None: it may."""
        view = self.views[(venue, key)]
        now = self.clock()
        if view.rate_at is None or view.decision_rate is None:
            return "no_rate", "no funding rate yet"
        if now - view.rate_at > self.max_rate_age:
            return (
                "stale_rate",
                f"funding rate is stale ({now - view.rate_at:.1f} s > {self.max_rate_age:g} s)",
            )
        for leg in ("spot", "perp"):
            t = view.touch(leg)
            if t is None:
                return "no_price", f"no {leg} price yet"
            if now - t.at > self.max_price_age:
                return "stale_price", f"{leg} price is stale ({now - t.at:.1f} s > {self.max_price_age:g} s)"
        return None
