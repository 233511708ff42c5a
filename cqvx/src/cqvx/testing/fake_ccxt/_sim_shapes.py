"""Small readers of the simulated venue's cqc messages shared by every venue dialect (no venue shapes)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cqc.markets.v1 import candle_pb2
from cqc.portfolio.v1 import position_pb2
from cqvx.timeutil import candle_interval, to_ns
from cqvx.venues.sim import SimVenue

__all__ = ["Margin", "candles", "isolated", "margin", "ms", "places", "position_side"]


def ms(ts: Any) -> int:
    """Milliseconds of a protobuf Timestamp (0 when unset)."""
    return to_ns(ts) // 1_000_000 if ts.seconds or ts.nanos else 0


def places(step: Decimal) -> int:
    """Decimal places of a price or quantity step (``0.01`` -> 2)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def position_side(p: position_pb2.Position, long: str, short: str, flat: str) -> str:
    return {position_pb2.POSITION_SIDE_LONG: long, position_pb2.POSITION_SIDE_SHORT: short}.get(p.side, flat)


def isolated(p: position_pb2.Position) -> bool:
    return p.margin_mode == position_pb2.MARGIN_MODE_ISOLATED


async def candles(sim: SimVenue, symbol: str, seconds: int, limit: object) -> list[candle_pb2.Candle] | None:
    """The sim's candles ``seconds`` wide (None when no interval is that wide), oldest first."""
    interval = candle_interval(seconds)
    if interval is None:
        return None
    count = int(str(limit)) if str(limit or "").isdigit() else 100
    return list(await sim.get_candles(symbol, interval, limit=count))


@dataclass(frozen=True, slots=True)
class Margin:
    """The sim's USDT margin account as the venues' account replies report it (settle currency USDT)."""

    wallet: Decimal  # the sim's USDT total: excludes unrealized PnL
    available: Decimal
    upl: Decimal
    position_im: Decimal
    order_im: Decimal  # the sim's USDT ``locked`` (margin held by resting orders)
    maint: Decimal


async def margin(sim: SimVenue, perps: set[str]) -> Margin:
    usdt = next((b for b in await sim.get_balances() if b.asset == "USDT"), None)
    positions = [p for p in await sim.get_positions() if p.symbol in perps]

    def total(values: list[str]) -> Decimal:
        return sum((Decimal(v or "0") for v in values), Decimal(0))

    return Margin(
        wallet=Decimal(usdt.total or "0") if usdt else Decimal(0),
        available=Decimal(usdt.available or "0") if usdt else Decimal(0),
        upl=total([p.unrealized_pnl for p in positions]),
        position_im=total([p.margin for p in positions]),
        order_im=Decimal(usdt.locked or "0") if usdt else Decimal(0),
        maint=total([p.maintenance_margin for p in positions]),
    )
