"""Venues by name: one table from a venue type to its typed config section and its factory.

Every venue registers the same way, once, at the bottom of this module::

    registry.register("coinbase", CoinbaseSection, _coinbase)

and every process builds its clients from config through it (the connector's ``venues:`` map, the
engine's in-process ``venue:``)::

    client = registry.build("coinbase", {"credentials": {...}}, path="venues.cb-main")

Rules:

* A section is a pydantic model (:class:`cqvx.venues.sections.Section`): unknown keys are errors, and
  credentials are :data:`~cqvx.venues.sections.SecretField` values read from environment variables or
  files while the section is validated, so a bad config fails before anything connects.
* Every error is a :class:`VenueConfigError` whose lines start with the dotted key path, e.g.
  ``venues.cb1.credentials.key_secret: environment variable CB_KEY is not set``.  Messages never carry
  a secret's value (pydantic's input echo is dropped).
* Factories are cheap and do no I/O; starting the client (``async with client``) is the caller's job.
* Venue modules are imported by the factory, not here, so naming a venue costs only its section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from cqvx.client import VenueClient
from cqvx.errors import VenueError
from cqvx.venues.ccxt.section import (
    BinanceSection,
    BitgetSection,
    BybitSection,
    CcxtSection,
    GateSection,
    OkxSection,
)
from cqvx.venues.coinbase.section import CoinbaseSection
from cqvx.venues.falconx.section import FalconXSection
from cqvx.venues.fordefi.section import FordefiSection
from cqvx.venues.prime.section import PrimeSection
from cqvx.venues.sections import Section
from cqvx.venues.sim.section import SimSection

__all__ = [
    "VenueConfigError",
    "VenueRegistry",
    "VenueType",
    "build",
    "format_validation_error",
    "parse",
    "register",
    "registry",
]

S = TypeVar("S", bound=Section)


class VenueConfigError(ValueError):
    """A venue section is invalid; each ``; ``-separated part starts with the key path."""


@dataclass(frozen=True, slots=True)
class VenueType(Generic[S]):
    name: str
    section: type[S]
    factory: Callable[[S], VenueClient]


def _join(path: str, loc: tuple[int | str, ...]) -> str:
    parts = [path] if path else []
    for p in loc:
        parts.append(f"[{p}]" if isinstance(p, int) else str(p))
    return ".".join(parts).replace(".[", "[")


def _describe(err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
        bound = next(iter(ctx.values()), "")
        return f"must be {op[kind]} {bound}"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def format_validation_error(exc: ValidationError, path: str = "") -> str:
    """One line per problem, each led by its dotted key path (never the offending input)."""
    return "; ".join(
        f"{where}: {_describe(e)}" if (where := _join(path, tuple(e["loc"]))) else _describe(e)
        for e in exc.errors(include_input=False, include_url=False)
    )


class VenueRegistry:
    """The table.  :data:`registry` is the process-wide one; tests may make their own."""

    def __init__(self) -> None:
        self._types: dict[str, VenueType[Any]] = {}

    def register(self, name: str, section: type[S], factory: Callable[[S], VenueClient]) -> None:
        if name in self._types:
            raise ValueError(f"venue type {name!r} is already registered")
        self._types[name] = VenueType(name, section, factory)

    def names(self) -> list[str]:
        return sorted(self._types)

    def _type(self, name: str, path: str) -> VenueType[Any]:
        found = self._types.get(name)
        if found is None:
            where = f"{path}.type" if path else "type"
            raise VenueConfigError(
                f"{where}: unknown venue type {name!r} (registered: {', '.join(self.names())})"
            )
        return found

    def parse(
        self,
        name: str,
        raw: Mapping[str, Any] | Section | None,
        *,
        path: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> Section:
        """The validated section of venue type ``name`` (credentials read now)."""
        vt = self._type(name, path)
        if isinstance(raw, Section):
            if not isinstance(raw, vt.section):
                raise VenueConfigError(f"{path or name}: a {type(raw).__name__} is not a {name!r} section")
            given: Section = raw
            return given
        context = {"environ": environ} if environ is not None else None
        try:
            section: Section = vt.section.model_validate(dict(raw or {}), context=context)
        except ValidationError as exc:
            raise VenueConfigError(format_validation_error(exc, path)) from None
        return section

    def build(
        self,
        name: str,
        raw: Mapping[str, Any] | Section | None = None,
        *,
        path: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> VenueClient:
        """A new (not yet started) client of venue type ``name`` from its raw or parsed section."""
        section = self.parse(name, raw, path=path, environ=environ)
        try:
            return self._types[name].factory(section)
        except (VenueError, ValueError) as err:  # e.g. key material the signer cannot read
            where = f"{path}: " if path else ""
            raise VenueConfigError(f"{where}{err}") from None


def _sim(section: SimSection) -> VenueClient:
    from cqvx.venues.sim import SimVenue
    from cqvx.venues.sim.config import RateLimit

    overrides: dict[str, Any] = {"latency": section.latency}
    if section.warmup_seconds is not None:
        overrides["warmup_seconds"] = section.warmup_seconds
    if section.rate_limit is not None:
        overrides["rate_limit"] = RateLimit(section.rate_limit.per_second, section.rate_limit.burst)
    venue = SimVenue.default(section.seed, speed=section.speed, **overrides)
    if (slow := section.faults.slow_ack) is not None:
        venue.faults.slow_ack_every(slow.every, slow.seconds)
    if (lost := section.faults.lost_reply) is not None:
        venue.faults.lost_reply_every(lost.every, delay=lost.delay)
    return venue


def _coinbase(section: CoinbaseSection) -> VenueClient:
    from cqvx.venues.coinbase import CoinbaseClient

    return CoinbaseClient(section.to_config())


def _falconx(section: FalconXSection) -> VenueClient:
    from cqvx.venues.falconx import FalconXClient

    return FalconXClient(section.to_config())


def _fordefi(section: FordefiSection) -> VenueClient:
    from cqvx.venues.fordefi import FordefiClient

    return FordefiClient(section.to_config())


def _prime(section: PrimeSection) -> VenueClient:
    from cqvx.venues.prime import PrimeClient

    return PrimeClient(section.to_config())


def _ccxt(section: CcxtSection) -> VenueClient:
    from cqvx.venues.ccxt import CcxtClient

    return CcxtClient(section.to_config())


registry = VenueRegistry()
registry.register("sim", SimSection, _sim)
registry.register("coinbase", CoinbaseSection, _coinbase)
registry.register("fordefi", FordefiSection, _fordefi)
registry.register("falconx", FalconXSection, _falconx)
registry.register("prime", PrimeSection, _prime)
# One adapter, one quirk table each (cqvx.venues.ccxt.quirks).
registry.register("binance", BinanceSection, _ccxt)
registry.register("bybit", BybitSection, _ccxt)
registry.register("okx", OkxSection, _ccxt)
registry.register("bitget", BitgetSection, _ccxt)
registry.register("gate", GateSection, _ccxt)

register = registry.register
parse = registry.parse
build = registry.build
