"""What the arbitrage shows: per-pair state (``/status`` JSON), Prometheus metrics and live-page ``arb``
messages.

Rules: metric labels are bounded (``pair`` = a configured spot symbol, ``direction`` and ``result`` fixed
enums); money is a decimal string in JSON; a gauge is a float only on the Prometheus side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from cqvx.num import ZERO, dec_str
from cqvx.transport.metrics import export_to
from opensqt.arb.monitor import PairView
from opensqt.live import protocol
from opensqt.risk.funding import FundingSettlements

__all__ = ["ArbMetrics", "PairState"]


@dataclass
class PairState:
    """One pair's position and books, rebuilt from the workflow results after a restart."""

    spot: str
    perp: str
    state: str = "flat"  # flat | entering | open | exiting | halted
    seq: int = 0  # the next (or the open) position's number
    exit_try: int = 0
    position: dict[str, Any] | None = None  # the open position (entry result, updated by partial exits)
    opened_at: float | None = None  # monotonic
    closed_at: float | None = None
    funding_pnl: Decimal = ZERO  # closed positions: funding the venue paid (negative: we paid)
    trading_pnl: Decimal = ZERO  # closed positions: quote cash flow of every leg, fees included
    open_funding: Decimal = ZERO  # the open position's funding so far (venue's realized PnL delta)
    open_cash: Decimal = ZERO  # the open position's entry cash flow
    # "payments" (the venue's funding log) | "realized" (the perp's realized PnL) | "estimate"
    funding_source: str = "realized"
    funding_counted: Decimal = ZERO  # payments/estimate: what exits of the open position already booked
    # estimate mode: the open position's estimated settlements (venue ns -> + received), each recorded
    # durably (an ``arb-funding`` workflow), so a restarted runner continues from them
    funding_estimated: dict[int, Decimal] = field(default_factory=dict)
    funding_since: datetime | None = None  # payments mode: the open position's first perp fill (venue time)
    settlements: FundingSettlements = field(default_factory=FundingSettlements)
    entries: int = 0
    exits: int = 0
    compensations: int = 0
    last_block: str = ""
    halted_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def direction(self) -> str:
        return str(self.position["direction"]) if self.position else ""

    def quantities(self) -> tuple[Decimal, Decimal]:
        if not self.position:
            return ZERO, ZERO
        return Decimal(self.position["spot_qty"]), Decimal(self.position["perp_qty"])

    def to_json(self, view: PairView | None, now: float) -> dict[str, Any]:
        spot_qty, perp_qty = self.quantities()
        return {
            "spot": self.spot,
            "perp": self.perp,
            "state": self.state,
            "direction": self.direction,
            "seq": self.seq,
            "spot_qty": dec_str(spot_qty),
            "perp_qty": dec_str(perp_qty),
            "funding_pnl": dec_str(self.funding_pnl + self.open_funding),
            "trading_pnl": dec_str(self.trading_pnl),
            "open_funding": dec_str(self.open_funding),
            # "estimate": rate x position x mark at each settlement seen, not the venue's booking;
            # "payments" / "realized": the venue's own figures
            "funding_source": self.funding_source,
            "entries": self.entries,
            "exits": self.exits,
            "compensations": self.compensations,
            "last_block": self.last_block,
            "halted_reason": self.halted_reason,
            "market": view.to_json(now) if view is not None else None,
            "recent": self.history[-10:],
        }

    def live(self, view: PairView | None) -> dict[str, Any]:
        spot_qty, perp_qty = self.quantities()
        return protocol.arb(
            symbol=self.spot,
            perp=self.perp,
            state=self.state,
            direction=self.direction,
            spot_qty=spot_qty,
            perp_qty=perp_qty,
            funding_pnl=self.funding_pnl + self.open_funding,
            trading_pnl=self.trading_pnl,
            apr=view.apr if view else None,
            basis=view.basis if view else None,
            next_funding_s=int(view.next_funding_s) if view and view.next_funding_s else None,
            time_s=int(time.time()),
        )


class ArbMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        export_to(self.registry)
        r = self.registry
        self.position_open = Gauge(
            "arb_position_open", "1 while a pair holds a position", ["pair"], registry=r
        )
        self.apr = Gauge("arb_funding_apr", "Annualized funding rate the decision uses", ["pair"], registry=r)
        self.basis = Gauge("arb_basis", "(perp mid - spot mid) / spot mid", ["pair"], registry=r)
        self.rate_age = Gauge(
            "arb_rate_age_seconds", "Age of the last funding rate read", ["pair"], registry=r
        )
        self.funding_pnl = Gauge(
            "arb_funding_pnl", "Funding received (quote), closed + open", ["pair"], registry=r
        )
        self.trading_pnl = Gauge(
            "arb_trading_pnl", "Leg cash flow of closed positions (quote)", ["pair"], registry=r
        )
        self.spot_qty = Gauge("arb_spot_quantity", "Spot leg held (base)", ["pair"], registry=r)
        self.perp_qty = Gauge("arb_perp_quantity", "Perp leg held (base)", ["pair"], registry=r)
        self.entries = Counter(
            "arb_entries", "Entry workflows finished", ["pair", "direction", "result"], registry=r
        )
        self.exits = Counter("arb_exits", "Exit workflows finished", ["pair", "result"], registry=r)
        self.compensations = Counter(
            "arb_compensations", "Entries whose first leg was (partly) unwound", ["pair"], registry=r
        )
        self.blocked = Counter("arb_entry_blocked", "Entry gate refusals", ["pair", "reason"], registry=r)

    def observe(self, st: PairState, view: PairView | None, now: float) -> None:
        pair = st.spot
        spot_qty, perp_qty = st.quantities()
        self.position_open.labels(pair).set(1 if st.position else 0)
        self.spot_qty.labels(pair).set(float(spot_qty))
        self.perp_qty.labels(pair).set(float(perp_qty))
        self.funding_pnl.labels(pair).set(float(st.funding_pnl + st.open_funding))
        self.trading_pnl.labels(pair).set(float(st.trading_pnl))
        if view is not None:
            if view.apr is not None:
                self.apr.labels(pair).set(float(view.apr))
            if view.basis is not None:
                self.basis.labels(pair).set(float(view.basis))
            if view.rate_at is not None:
                self.rate_age.labels(pair).set(now - view.rate_at)

    def text(self) -> bytes:
        return generate_latest(self.registry)
