"""Risk configuration: circuit breakers, exposure limits (docs/risk.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from opensqt.config.base import _check_symbol, _Model
from opensqt.observability.alerts.config import AlertsConfig

__all__ = ["BreakersConfig", "ExposureConfig", "OnTripConfig", "RiskConfig", "SlippageConfig"]


class _Breaker(_Model):
    # Seconds a trip stays tripped before it may close by itself (when its condition is clear);
    # 0 = only a manual reset closes it (docs/risk.md).
    cooldown_seconds: Decimal = Field(default=Decimal(300), ge=0)


class LosingStreakBreaker(_Breaker):
    max_losses: int = Field(ge=1, le=1000)  # consecutive losing round trips


class DrawdownBreaker(_Breaker):
    cooldown_seconds: Decimal = Field(default=Decimal(0), ge=0)
    percent: Decimal | None = Field(default=None, gt=0, le=100)  # of the equity peak
    absolute: Decimal | None = Field(default=None, gt=0)  # quote units below the peak
    # Equity = capital + realized + unrealized PnL; empty capital = the quote balance at start.
    capital: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_limit(self) -> DrawdownBreaker:
        if self.percent is None and self.absolute is None:
            raise ValueError("percent or absolute: at least one is required")
        return self


class LatencyBreaker(_Breaker):
    max_ms: Decimal = Field(gt=0)
    samples: int = Field(default=3, ge=1, le=100)  # consecutive placements above max_ms


class StaleFeedBreaker(_Breaker):
    cooldown_seconds: Decimal = Field(default=Decimal(30), ge=0)
    price_seconds: Decimal | None = Field(default=None, gt=0)  # no price tick for this long
    orders_seconds: Decimal | None = Field(default=None, gt=0)  # order stream down this long


class MarginBreaker(_Breaker):
    cooldown_seconds: Decimal = Field(default=Decimal(0), ge=0)
    # |mark - liquidation| / mark below this percent trips.
    min_liquidation_distance_percent: Decimal = Field(gt=0, le=100)


class RejectRateBreaker(_Breaker):
    max_percent: Decimal = Field(gt=0, le=100)
    window: int = Field(default=20, ge=1, le=1000)  # the last N placement outcomes
    min_orders: int = Field(default=10, ge=1, le=1000)


class BreakersConfig(_Model):
    """Circuit breakers (risk/breakers.py); a missing section = that breaker is off."""

    losing_streak: LosingStreakBreaker | None = None
    drawdown: DrawdownBreaker | None = None
    latency: LatencyBreaker | None = None
    stale_feed: StaleFeedBreaker | None = None
    margin: MarginBreaker | None = None
    reject_rate: RejectRateBreaker | None = None
    interval_seconds: Decimal = Field(default=Decimal(5), gt=0)  # the evaluation loop's period


class ExposureConfig(_Model):
    """Pre-trade limits (risk/exposure.py), quote notional; empty = no limit."""

    max_symbol_notional: Decimal | None = Field(default=None, gt=0)
    max_account_notional: Decimal | None = Field(default=None, gt=0)


class SlippageConfig(_Model):
    """The dynamic slippage guard of market-like orders (risk/slippage.py): allowance in percent of the
    book's mid = ``base_percent + volatility_multiple x volatility``, capped at ``max_percent``."""

    base_percent: Decimal = Field(default=Decimal("0.2"), ge=0, le=50)
    max_percent: Decimal = Field(default=Decimal(1), gt=0, le=50)
    volatility_multiple: Decimal = Field(default=Decimal(0), ge=0, le=100)
    volatility_window: int = Field(default=60, ge=2, le=10_000)  # the last N price ticks

    @model_validator(mode="after")
    def _base_within_cap(self) -> SlippageConfig:
        if self.base_percent > self.max_percent:
            raise ValueError("base_percent must not exceed max_percent")
        return self


class OnTripConfig(_Model):
    """What a circuit-breaker trip does to the POSITION (the opening orders are always cancelled):
    ``keep`` it, ``reduce`` it to ``reduce_to_percent`` of its size at the trip, or ``close`` it
    (engine/reducer.py; derivatives only: reduce-only limit IOC orders bounded by the slippage guard)."""

    position: Literal["keep", "reduce", "close"] = "keep"
    reduce_to_percent: Decimal = Field(default=Decimal(50), ge=0, lt=100)
    max_attempts: int = Field(default=3, ge=1, le=20)  # IOC orders per reduction (partial fills)


class RiskConfig(_Model):
    """The volume-anomaly monitor (reference §3.2 ``risk_control``), the position breaker, the circuit
    breakers, exposure limits and alerts (docs/risk.md)."""

    enabled: bool = True
    monitor_symbols: list[str] = Field(default_factory=list, max_length=10)  # empty: the trading symbol
    window_seconds: Decimal = Field(default=Decimal(60), gt=0)  # the original's kline interval (1m)
    average_window: int = Field(default=20, ge=5, le=100)
    volume_multiplier: Decimal = Field(default=Decimal(3), ge=1, le=10)
    require_price_drop: bool = True  # the original also needs close < MA(close)
    recovery_threshold: int = Field(default=1, ge=1, le=10)
    global_strategy: Literal["all", "any"] = "all"
    # Circuit breaker: local slot position vs the venue's position (derivatives), checked by the
    # reconciler; opens after two passes in a row diverge by more than this fraction (and a lot).
    position_divergence: Decimal = Field(default=Decimal("0.05"), ge=0)
    # The startup check refuses an account leverage (read from the venue's positions) above this.
    max_leverage: Decimal = Field(default=Decimal(10), gt=0)
    breakers: BreakersConfig = Field(default_factory=BreakersConfig)
    exposure: ExposureConfig = Field(default_factory=ExposureConfig)
    slippage: SlippageConfig = Field(default_factory=SlippageConfig)
    on_trip: OnTripConfig = Field(default_factory=OnTripConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @field_validator("monitor_symbols")
    @classmethod
    def _canonical_list(cls, values: list[str]) -> list[str]:
        return [_check_symbol(v) for v in values]
