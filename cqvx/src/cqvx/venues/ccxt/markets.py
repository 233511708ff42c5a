"""The one symbol map of a ccxt venue, built from its loaded markets (no guessing).

Canonical ids (:mod:`cqvx.symbols`) map to ccxt's *unified* symbols (``BTC/USDT:USDT``), which is
what every ccxt method takes; the venue's own id (``BTCUSDT``) is kept beside it for
``Order.venue_symbol``.  Spot ``BTC/USDT`` -> ``BTC-USDT``; linear or inverse perpetual
``BTC/USDT:USDT`` -> ``BTC-USDT-PERP``; dated future -> ``BTC-USDT-YYYYMMDD``.  Options are not
mapped.  Two markets that would share a canonical id (a USDT- and a USD-settled perpetual of the same
pair on one venue) are both left out, never one picked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cqc.markets.v1 import instrument_pb2
from cqvx.errors import ParseError, VenueError
from cqvx.symbols import SymbolMap, parse_symbol
from cqvx.venues.ccxt.parse import num

__all__ = ["MarketIndex", "canonical_of"]


def canonical_of(market: Mapping[str, Any]) -> str | None:
    """The canonical id of one ccxt market, or None (options, unparsable names)."""
    base, quote = str(market.get("base") or ""), str(market.get("quote") or "")
    if market.get("spot"):
        text = f"{base}-{quote}"
    elif market.get("swap"):
        text = f"{base}-{quote}-PERP"
    elif market.get("future"):
        expiry = str(market.get("expiryDatetime") or "")[:10].replace("-", "")
        text = f"{base}-{quote}-{expiry}"
    else:
        return None
    try:
        parse_symbol(text)
    except VenueError:
        return None
    return text


@dataclass(frozen=True, slots=True)
class MarketIndex:
    symbols: SymbolMap  # canonical <-> ccxt unified symbol
    venue_ids: Mapping[str, str]  # canonical -> venue id
    instrument_types: Mapping[str, int]
    contract_sizes: Mapping[str, Decimal]  # base units per ccxt ``amount`` unit (1 for spot)

    @classmethod
    def build(cls, venue: str, markets: Iterable[Mapping[str, Any]]) -> MarketIndex:
        found: dict[str, list[Mapping[str, Any]]] = {}
        for market in markets:
            if market.get("active") is False:
                continue
            canonical = canonical_of(market)
            if canonical is not None:
                found.setdefault(canonical, []).append(market)
        symbols = SymbolMap(venue)
        venue_ids: dict[str, str] = {}
        types: dict[str, int] = {}
        sizes: dict[str, Decimal] = {}
        for canonical, matches in sorted(found.items()):
            if len(matches) != 1:
                continue  # ambiguous: see the module docstring
            market = matches[0]
            symbols.add(canonical, str(market["symbol"]))
            venue_ids[canonical] = str(market.get("id") or "")
            types[canonical] = parse_symbol(canonical).instrument_type
            raw_size = market.get("contractSize")
            size = Decimal(num(raw_size, "contractSize", venue) or "1")
            if size <= 0:
                raise ParseError(f"{canonical}: contractSize {raw_size!r} is not positive", venue=venue)
            sizes[canonical] = size
        return cls(symbols, venue_ids, types, sizes)

    def contract_size(self, canonical: str) -> Decimal:
        return self.contract_sizes.get(canonical, Decimal(1))

    def is_derivative(self, canonical: str) -> bool:
        return self.instrument_types.get(canonical) in (
            instrument_pb2.INSTRUMENT_TYPE_PERPETUAL,
            instrument_pb2.INSTRUMENT_TYPE_FUTURE,
        )
