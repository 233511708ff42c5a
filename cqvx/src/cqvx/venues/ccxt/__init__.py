"""Binance USD-M, Bybit, OKX, Bitget and Gate through ccxt: one adapter, one quirk table per venue.

The package imports ccxt lazily (on first use of :class:`CcxtClient`), so the registry can import the
config sections without paying for ccxt's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cqvx.venues.ccxt.config import CcxtConfig
from cqvx.venues.ccxt.quirks import QUIRKS, VenueQuirks

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["QUIRKS", "CcxtClient", "CcxtConfig", "VenueQuirks"]


def __getattr__(name: str) -> Any:
    if name == "CcxtClient":
        from cqvx.venues.ccxt.client import CcxtClient

        return CcxtClient
    raise AttributeError(name)
