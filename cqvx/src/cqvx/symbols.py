"""Canonical instrument ids and the one place each adapter maps them to and from venue symbols.

Canonical ids: ``BASE-QUOTE`` for spot (``BTC-USD``), ``BASE-QUOTE-PERP`` for perpetuals
(``BTC-USDT-PERP``), ``BASE-QUOTE-YYYYMMDD`` for dated futures.  An adapter builds a
:class:`SymbolMap` from the venue's instrument list (or a static table) and uses only it to
translate; an unknown symbol is an :class:`~cqvx.errors.InvalidRequest` naming it, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cqc.markets.v1 import instrument_pb2
from cqvx.errors import InvalidRequest

__all__ = ["CanonicalSymbol", "SymbolMap", "parse_symbol"]

_CANON = re.compile(r"^([A-Z0-9]{1,20})-([A-Z0-9]{1,20})(?:-(PERP|\d{8}))?$")


@dataclass(frozen=True, slots=True)
class CanonicalSymbol:
    base: str
    quote: str
    instrument_type: int
    expiry: str = ""

    def __str__(self) -> str:
        if self.instrument_type == instrument_pb2.INSTRUMENT_TYPE_PERPETUAL:
            return f"{self.base}-{self.quote}-PERP"
        if self.instrument_type == instrument_pb2.INSTRUMENT_TYPE_FUTURE:
            return f"{self.base}-{self.quote}-{self.expiry}"
        return f"{self.base}-{self.quote}"


def parse_symbol(symbol: str) -> CanonicalSymbol:
    """Split a canonical id; raises :class:`InvalidRequest` naming the bad id."""
    m = _CANON.match(symbol)
    if not m:
        raise InvalidRequest(
            f"symbol {symbol!r} is not a canonical instrument id (BASE-QUOTE, BASE-QUOTE-PERP or "
            "BASE-QUOTE-YYYYMMDD)"
        )
    base, quote, suffix = m.groups()
    if suffix == "PERP":
        return CanonicalSymbol(base, quote, instrument_pb2.INSTRUMENT_TYPE_PERPETUAL)
    if suffix:
        return CanonicalSymbol(base, quote, instrument_pb2.INSTRUMENT_TYPE_FUTURE, suffix)
    return CanonicalSymbol(base, quote, instrument_pb2.INSTRUMENT_TYPE_SPOT)


class SymbolMap:
    """Bidirectional canonical <-> venue symbol table for one venue."""

    __slots__ = ("_to_canon", "_to_venue", "venue")

    def __init__(self, venue: str, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.venue = venue
        self._to_venue: dict[str, str] = {}
        self._to_canon: dict[str, str] = {}
        for canonical, venue_symbol in pairs:
            self.add(canonical, venue_symbol)

    @classmethod
    def from_instruments(cls, venue: str, instruments: Iterable[instrument_pb2.Instrument]) -> SymbolMap:
        return cls(venue, ((i.symbol, i.venue_symbol) for i in instruments))

    def add(self, canonical: str, venue_symbol: str) -> None:
        parse_symbol(canonical)
        self._to_venue[canonical] = venue_symbol
        self._to_canon[venue_symbol] = canonical

    def to_venue(self, canonical: str) -> str:
        try:
            return self._to_venue[canonical]
        except KeyError:
            raise InvalidRequest(f"unknown symbol {canonical!r}", venue=self.venue) from None

    def to_canonical(self, venue_symbol: str) -> str:
        try:
            return self._to_canon[venue_symbol]
        except KeyError:
            raise InvalidRequest(f"unknown venue symbol {venue_symbol!r}", venue=self.venue) from None

    def __contains__(self, canonical: object) -> bool:
        return canonical in self._to_venue

    def __len__(self) -> int:
        return len(self._to_venue)

    def canonical_symbols(self) -> list[str]:
        return sorted(self._to_venue)
