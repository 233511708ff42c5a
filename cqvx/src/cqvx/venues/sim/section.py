"""The ``sim`` config section (registered in :mod:`cqvx.venues.registry`): the simulated venue of
``SimVenue.default`` (BTC-USDT and BTC-USDT-PERP near 60000), with the knobs a config may turn."""

from __future__ import annotations

from pydantic import Field

from cqvx.venues.sections import Section

__all__ = ["SimFaults", "SimLostReply", "SimRateLimit", "SimSection", "SimSlowAck"]


class SimRateLimit(Section):
    """The emulated venue-side order limit (place/cancel per second, burst)."""

    per_second: float = Field(gt=0)
    burst: float = Field(gt=0)


class SimSlowAck(Section):
    """Every ``every``-th placement is acknowledged (and the order created) ``seconds`` late."""

    every: int = Field(ge=1)
    seconds: float = Field(gt=0)


class SimLostReply(Section):
    """Every ``every``-th placement acts, then its reply is lost (Timeout after ``delay`` seconds)."""

    every: int = Field(ge=1)
    delay: float = Field(default=0.0, ge=0)


class SimFaults(Section):
    """Standing faults of a simulated venue served from config (testing only; docs/operations.md).

    Times are seconds on the venue's clock (divided by ``speed`` in real time)."""

    slow_ack: SimSlowAck | None = None
    lost_reply: SimLostReply | None = None


class SimSection(Section):
    seed: int = 0
    # Wall-clock speed-up of the market driver (1 = real time).
    speed: float = Field(default=1.0, gt=0)
    # Seconds of pre-simulated market history (None: SimVenue.default's).
    warmup_seconds: float | None = Field(default=None, ge=0)
    latency: float = Field(default=0.0, ge=0)
    rate_limit: SimRateLimit | None = None
    faults: SimFaults = Field(default_factory=SimFaults)
