"""The simulated venue: a complete in-process ``VenueClient`` with a matching engine and a market model.

``SimVenue.default(seed=...)`` is the paper-trading venue of ``make demo``; backtests build a
:class:`SimConfig` and drive a :class:`SimClock` with ``await sim.run_until(t)``.
"""

from cqvx.venues.sim.client import SimVenue
from cqvx.venues.sim.clock import Clock, SimClock, WallClock
from cqvx.venues.sim.config import InstrumentSpec, MarketModel, RateLimit, SimConfig
from cqvx.venues.sim.faults import FaultInjector

__all__ = [
    "Clock",
    "FaultInjector",
    "InstrumentSpec",
    "MarketModel",
    "RateLimit",
    "SimClock",
    "SimConfig",
    "SimVenue",
    "WallClock",
]
