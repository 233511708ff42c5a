"""The ``opensqt arb`` configuration: YAML in the project's config style (strict pydantic, decimals through
the one parser, errors by dotted key path).

Rules:

* Thresholds are ANNUALIZED funding rates (fractions: 0.10 = 10 % a year), compared in the direction of
  the position: ``positive`` (long spot, short perp) collects a positive rate, ``negative`` (short spot by
  selling inventory, long perp) collects a negative one.  Entry needs ``|apr| >= entry_apr``; an open
  position exits when its direction's rate falls below ``exit_apr`` (``exit_apr < entry_apr``).
* ``negative`` needs a way to be short spot: ``negative_mode: inventory`` sells base the account already
  holds, at most ``spot_inventory`` base units (unset: none, so the direction is refused at load time);
  ``negative_mode: margin`` sells on spot margin (``Order.margin``: the venue borrows the base, the BUYs
  that close or unwind repay it).  Venues with the capability: the simulator in process
  (:data:`SPOT_MARGIN_VENUES`); a ``remote`` venue is checked against the connector's capabilities at
  start-up; any other venue kind is refused at load time with an error naming the key.
* Staleness: no entry on a funding rate older than ``max_rate_age`` or a price older than
  ``max_price_age`` seconds (measured from when this process last received it).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from opensqt.config import HttpConfig, StateConfig, SystemConfig, VenueConfig, load_model, parse_model
from opensqt.config.base import ConfigError, _check_symbol, _Model

__all__ = ["ArbConfig", "ArbFile", "PairConfig", "load_arb_config", "paper_arb_config"]

Direction = Literal["positive", "negative"]

# In-process venue kinds whose spot side can borrow (cqvx CAPABILITY_SPOT_MARGIN): the simulator.  A
# ``remote`` venue (a connector) is asked at start-up (ArbRunner.prepare), since its venue is unknown here.
SPOT_MARGIN_VENUES: frozenset[str] = frozenset({"sim"})
_ASKED_AT_START = frozenset({"remote"})


class PairConfig(_Model):
    """One spot/perpetual pair on the config's venue."""

    spot: str
    perp: str

    @field_validator("spot", "perp")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return _check_symbol(value)

    @model_validator(mode="after")
    def _kinds(self) -> PairConfig:
        if self.spot.endswith("-PERP"):
            raise ValueError(f"spot: {self.spot} is a perpetual")
        if not self.perp.endswith("-PERP"):
            raise ValueError(f"perp: {self.perp} is not a perpetual (BASE-QUOTE-PERP)")
        if self.perp.removesuffix("-PERP") != self.spot:
            raise ValueError(f"perp: {self.perp} does not hedge {self.spot} (same BASE-QUOTE expected)")
        return self

    @property
    def key(self) -> str:
        return self.spot


class ArbConfig(_Model):
    pairs: list[PairConfig] = Field(min_length=1)
    directions: list[Direction] = Field(default_factory=lambda: list[Direction](["positive"]), min_length=1)
    entry_apr: Decimal = Field(default=Decimal("0.10"), ge=0)
    exit_apr: Decimal = Field(default=Decimal("0.01"))
    # Sizing: quote amount of the spot leg per entry; the perp leg follows the spot leg's EXECUTED size.
    notional: Decimal = Field(gt=0)
    # Market-like legs are limit IOC at most this fraction away from the touch (arb/pricing.py).
    max_slippage: Decimal = Field(default=Decimal("0.005"), gt=0, lt=Decimal("0.2"))
    max_rate_age: Decimal = Field(default=Decimal(120), gt=0)
    max_price_age: Decimal = Field(default=Decimal(10), gt=0)
    poll_interval: Decimal = Field(default=Decimal(2), gt=0)
    negative_mode: Literal["inventory", "margin"] = "inventory"
    spot_inventory: Decimal | None = Field(default=None, gt=0)
    # A position is closed after this many seconds whatever the rate (unset: held while the rate pays).
    max_hold_seconds: Decimal | None = Field(default=None, gt=0)
    cooldown_seconds: Decimal = Field(default=Decimal(0), ge=0)
    # Leg retries: an IOC leg that filled only partly is sent again (new id per attempt) up to this many
    # times; a compensation (unwind) likewise.
    leg_attempts: int = Field(default=3, ge=1, le=10)
    # How long an unresolved placement (timeout, lost reply) may still land before "not found" proves it
    # never did (covers the connector's call deadline plus the transport's request lifetime).
    landing_window: Decimal = Field(default=Decimal(60), gt=0)
    # Pause between the two legs of an entry (seconds).  0 in production; crash tests widen the window in
    # which a kill lands between the legs.
    leg_pause: Decimal = Field(default=Decimal(0), ge=0, le=Decimal(60))
    # Where funding PnL comes from (docs/arbitrage.md "Funding in PnL"): ``payments`` = the account's
    # funding payments as the venue lists them (cqvx SupportsFundingPayments: Bybit); ``realized`` = the
    # perp position's realized PnL (the simulator books funding there); ``estimate`` = rate x position x
    # mark at each settlement (opensqt.risk.funding); ``auto`` = the first of these the venue offers.
    funding_pnl: Literal["auto", "payments", "realized", "estimate"] = "auto"

    @property
    def margin_shorts(self) -> bool:
        """Whether the negative direction's spot SELL is a spot margin order (it borrows the base)."""
        return "negative" in self.directions and self.negative_mode == "margin"

    @model_validator(mode="after")
    def _thresholds(self) -> ArbConfig:
        if self.exit_apr >= self.entry_apr:
            raise ValueError(f"exit_apr: must be below entry_apr ({self.entry_apr}), or it would churn")
        if len({p.key for p in self.pairs}) != len(self.pairs):
            raise ValueError("pairs: a spot symbol is listed twice (one workflow per symbol at a time)")
        return self


class ArbFile(_Model):
    """The whole ``opensqt arb`` file: ``arb`` plus the sections it shares with the grid's config."""

    arb: ArbConfig
    venue: VenueConfig = Field(default_factory=VenueConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    system: SystemConfig = Field(default_factory=SystemConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)

    @model_validator(mode="after")
    def _negative_needs_a_short(self) -> ArbFile:
        if "negative" not in self.arb.directions:
            return self
        if self.arb.negative_mode == "margin" and self.venue.kind not in SPOT_MARGIN_VENUES | _ASKED_AT_START:
            raise ValueError(
                f"arb.negative_mode: venue {self.venue.kind!r} has no spot margin (in process, only"
                f" {', '.join(sorted(SPOT_MARGIN_VENUES))} offers it; a remote venue is asked at start-up);"
                " use negative_mode: inventory with arb.spot_inventory, or drop 'negative' from"
                " arb.directions"
            )
        if self.arb.negative_mode == "inventory" and self.arb.spot_inventory is None:
            raise ValueError(
                "arb.spot_inventory: required for direction 'negative' with negative_mode: inventory (the"
                " base units the arbitrage may sell from the account's existing spot holdings)"
            )
        return self


def load_arb_config(path: str | Path) -> ArbFile:
    return load_model(path, ArbFile)


# The embedded default of ``opensqt arb`` (paper): the simulated venue's BTC-USDT / BTC-USDT-PERP.
PAPER_ARB_YAML = """\
arb:
  pairs:
    - {spot: BTC-USDT, perp: BTC-USDT-PERP}
  directions: [positive, negative]
  entry_apr: 0.05             # the sim's base funding 0.01 % / 8 h is ~11 % a year
  exit_apr: 0.01
  notional: 1000              # USDT of spot per entry
  spot_inventory: 0.05        # BTC the negative direction may sell (the sim account holds 0.1)
  max_slippage: 0.005
venue:
  kind: sim
  seed: ${OPENSQT_SEED:-42}
http:
  port: ${OPENSQT_HTTP_PORT:-8080}
"""


def paper_arb_config() -> ArbFile:
    return parse_model(PAPER_ARB_YAML, ArbFile, None, "<embedded arb paper config>")


__all__ += ["PAPER_ARB_YAML", "SPOT_MARGIN_VENUES", "ConfigError", "Direction"]
