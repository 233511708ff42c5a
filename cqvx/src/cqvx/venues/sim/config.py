"""Configuration of the simulated venue: instruments, fees, balances, market model, faults.

Everything that changes what the simulation does lives here, so that a run is reproduced exactly by
its :class:`SimConfig` (seed included) plus the sequence of client actions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from cqc.markets.v1 import candle_pb2, instrument_pb2
from cqvx.symbols import parse_symbol

__all__ = ["FillModel", "InstrumentSpec", "MarketModel", "RateLimit", "SimConfig"]

FillModel = Literal["queue", "pessimistic"]

# 2024-01-01T00:00:00Z: a fixed default start keeps SimClock runs reproducible.
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


# Symbols are parsed on every order (is_perpetual, quote_asset): remember the few a sim trades.
_parsed = functools.lru_cache(maxsize=256)(parse_symbol)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One tradable instrument and its rules (spot ``BASE-QUOTE`` or linear perpetual ``BASE-QUOTE-PERP``)."""

    symbol: str
    initial_price: Decimal
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal("0.00001")
    min_quantity: Decimal = Decimal("0.00001")
    max_quantity: Decimal = Decimal("1000")
    min_notional: Decimal = Decimal("5")
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.002")
    max_leverage: Decimal = Decimal("20")
    # Perpetuals only.
    funding_interval_seconds: int = 8 * 3600
    base_funding_rate: Decimal = Decimal("0.0001")
    maintenance_margin_rate: Decimal = Decimal("0.005")
    # A perpetual may follow another instrument's price (e.g. BTC-USDT-PERP follows BTC-USDT) with a
    # small mean-reverting basis; that basis is what drives its funding rate.
    follows: str | None = None
    # Market model overrides for this instrument (None = SimConfig.market).
    market: MarketModel | None = None

    @property
    def is_perpetual(self) -> bool:
        return _parsed(self.symbol).instrument_type == instrument_pb2.INSTRUMENT_TYPE_PERPETUAL

    @property
    def base_asset(self) -> str:
        return _parsed(self.symbol).base

    @property
    def quote_asset(self) -> str:
        return _parsed(self.symbol).quote


@dataclass(frozen=True, slots=True)
class MarketModel:
    """The price process and the synthetic book/trade flow around it.

    ``kind="gbm"``: geometric Brownian motion with Poisson jumps and a two-state volatility regime.
    ``kind="replay"``: replay a CSV of trades (``timestamp,price,quantity[,side]``) or candles
    (``open_time,open,high,low,close,volume``); timestamps are epoch seconds/milliseconds or ISO 8601.
    Parquet is not supported (pyarrow is not a dependency of cqvx).
    """

    kind: Literal["gbm", "replay"] = "gbm"
    # GBM: annualised volatility and drift (fractions), jumps per year and jump size (log std).
    volatility: float = 0.6
    drift: float = 0.0
    jump_intensity: float = 50.0
    jump_std: float = 0.01
    # Volatility regimes: per-step probability to enter / leave the volatile regime, its multiplier.
    regime_enter_prob: float = 0.001
    regime_exit_prob: float = 0.01
    regime_vol_multiplier: float = 3.0
    # Synthetic book: distance of the best bid/ask from the mid and level spacing (in ticks), levels
    # per side, and the size of the best level (base units; deeper levels are a little larger).
    half_spread_ticks: int = 1
    level_step_ticks: int = 1
    levels: int = 20
    level_size: Decimal = Decimal("0.5")
    # Each step scales every level by a random factor in [1 - jitter/2, 1 + jitter/2].
    size_jitter: float = 0.5
    # Public trades per market step (besides the sweep trade of a price move) and their mean size.
    trades_per_step: int = 2
    trade_size: Decimal = Decimal("0.05")
    # Replay source.
    replay_path: Path | None = None
    replay_format: Literal["trades", "candles"] = "trades"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Emulated venue-side limit on order requests (place/cancel; a batch weighs its item count)."""

    per_second: float
    burst: float


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 0
    venue: str = "sim"
    instruments: tuple[InstrumentSpec, ...] = ()
    balances: dict[str, Decimal] = field(default_factory=dict)
    # Spot margin (Order.margin): the most of each asset the account may owe at once, in asset units
    # (an asset not listed cannot be borrowed).  No interest is charged on what is borrowed.
    margin_limits: dict[str, Decimal] = field(default_factory=dict)
    # Account leverage per perpetual (missing: min(10, max_leverage)).
    leverage: dict[str, Decimal] = field(default_factory=dict)
    market: MarketModel = field(default_factory=MarketModel)
    fill_model: FillModel = "queue"
    # Simulated seconds between market steps (also the wall-clock driver's interval, divided by speed).
    tick_interval: float = 0.1
    start_time: datetime = DEFAULT_START
    # Pre-simulated market history before start_time, so candles exist from the first call.
    warmup_seconds: float = 0.0
    warmup_step_seconds: float = 5.0
    candle_intervals: tuple[int, ...] = (
        candle_pb2.CANDLE_INTERVAL_1MIN,
        candle_pb2.CANDLE_INTERVAL_5MIN,
        candle_pb2.CANDLE_INTERVAL_1HOUR,
    )
    candle_history: int = 1000
    # Fault injection defaults (see faults.py for on-demand injection).
    latency: float = 0.0
    rate_limit: RateLimit | None = None
    stream_queue_size: int = 10_000
    # Terminal orders kept for lookups and duplicate-id checks.
    order_retention: int = 100_000
    # Event-loop yields after each simulated event so woken tasks run before time moves on.
    settle_yields: int = 3

    def instrument(self, symbol: str) -> InstrumentSpec | None:
        for spec in self.instruments:
            if spec.symbol == symbol:
                return spec
        return None
