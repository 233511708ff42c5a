"""The simulated venue: a complete in-process ``VenueClient`` with a matching engine and a market model.

``SimVenue.default(seed=...)`` is the paper-trading venue of ``make demo``; backtests build a
:class:`SimConfig` and drive a :class:`SimClock` with ``await sim.run_until(t)``.  A backtest that
replays its own trade history feeds it in batches on the integer grid with
``sim.match_trades(symbol, [(price_ticks, lots, aggressor_side), ...])``: only the trades that reach
our resting orders cost more than one compare; it places and cancels on the same grid with
``sim.place_grid(GridOrder(symbol, side, ticks, lots, ...))`` and ``sim.cancel_grid(order_id)``
(no protobuf, no decimal parsing; ``sim.grid(symbol)`` converts exactly, refusing what is off the
grid).
"""

from cqvx.venues.sim.client import SimVenue
from cqvx.venues.sim.clock import Clock, SimClock, WallClock
from cqvx.venues.sim.config import InstrumentSpec, MarketModel, RateLimit, SimConfig
from cqvx.venues.sim.faults import FaultInjector
from cqvx.venues.sim.grid import GridOrder, InstrumentGrid

__all__ = [
    "Clock",
    "FaultInjector",
    "GridOrder",
    "InstrumentGrid",
    "InstrumentSpec",
    "MarketModel",
    "RateLimit",
    "SimClock",
    "SimConfig",
    "SimVenue",
    "WallClock",
]
