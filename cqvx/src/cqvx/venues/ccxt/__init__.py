"""Binance USD-M, Bybit, OKX, Bitget and Gate through ccxt: one adapter, one quirk table per venue."""

from cqvx.venues.ccxt.client import CcxtClient
from cqvx.venues.ccxt.config import CcxtConfig
from cqvx.venues.ccxt.quirks import QUIRKS, VenueQuirks

__all__ = ["QUIRKS", "CcxtClient", "CcxtConfig", "VenueQuirks"]
