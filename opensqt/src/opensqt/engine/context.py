"""The small shared facts of one engine, handed to its collaborators instead of the engine itself.

* :class:`GridContext`: what the grid is (symbol, parameters, instrument rules, anchor, id namespace) and
  the last price.  ``rules`` and ``namespace`` are fixed by ``GridEngine.start()``; ``anchor`` is set once
  (first price, or position recovery) and persisted by the ledger.
* :class:`EngineStats`: counters for ``/status`` and the exit summary.
* :class:`Breaker` and :class:`RiskGuards`: what pauses placement (margin lock, volume anomaly, position
  breaker).
* :class:`FillEvent`: one applied fill, for the view and the chart.

Plain data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cqvx.num import ZERO
from opensqt.model.slots import MarginLock
from opensqt.risk.breakers import BreakerBook
from opensqt.risk.startup import Check
from opensqt.risk.volume import VolumeMonitor
from opensqt.strategy.grid import GridParams, InstrumentRules

__all__ = ["Breaker", "EngineStats", "FillEvent", "GridContext", "RiskGuards"]


@dataclass(frozen=True, slots=True)
class FillEvent:
    ts: float
    level: int
    side: int
    price: Decimal
    quantity: Decimal
    realized_pnl: Decimal


@dataclass
class GridContext:
    symbol: str
    strategy_id: str
    params: GridParams
    rules: InstrumentRules | None = None
    anchor: Decimal | None = None
    namespace: str = ""  # strategy|symbol|epoch: the client order id namespace
    last_price: Decimal | None = None
    started: bool = False
    checks: list[Check] = field(default_factory=list)

    @property
    def strategy_tag(self) -> str:
        """The ``strategy_id`` sent with every order (venues that echo it tell engines apart)."""
        return f"{self.strategy_id}:{self.symbol}"


@dataclass
class EngineStats:
    ticks: int = 0
    placed: int = 0
    rejected: int = 0
    unresolved: int = 0
    cancels: int = 0
    fills: int = 0
    anomalies: int = 0
    cleaned: int = 0
    recovered_slots: int = 0
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    tick_to_order_ms: list[float] = field(default_factory=list)

    def count_anomaly(self) -> None:
        self.anomalies += 1


@dataclass
class Breaker:
    """Opens when the local position and the venue's keep disagreeing; pauses placement until they agree."""

    open: bool = False
    reason: str = ""  # bounded: position_divergence
    detail: str = ""  # what the operator reads in /status: the numbers and the way back
    opened_at: float | None = None
    trips: int = 0


@dataclass
class RiskGuards:
    """Everything that pauses placement."""

    margin_lock: MarginLock
    volume: VolumeMonitor | None
    breaker: Breaker
    breakers: BreakerBook | None = None  # the circuit breakers of risk/breakers.py

    @property
    def paused(self) -> bool:
        """No placement: margin lock, volume anomaly, the position breaker or a circuit breaker."""
        return (
            self.margin_lock.locked
            or (self.volume is not None and self.volume.triggered)
            or self.breaker.open
            or (self.breakers is not None and self.breakers.open)
        )
