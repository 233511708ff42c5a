"""Small readers of the simulated venue's cqc messages shared by every venue dialect (no venue shapes)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cqc.markets.v1 import candle_pb2
from cqc.portfolio.v1 import position_pb2
from cqvx.timeutil import candle_interval, to_ns
from cqvx.venues.sim import SimVenue

__all__ = ["candles", "isolated", "ms", "places", "position_side"]


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
