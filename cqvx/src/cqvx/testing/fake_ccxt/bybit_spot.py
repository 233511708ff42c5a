"""Spot (``category=spot``) on :class:`~cqvx.testing.fake_ccxt.bybit.FakeBybit`: the same v5 paths
reach the sim's spot instruments.

https://bybit-exchange.github.io/docs/v5/market/instrument, .../v5/market/tickers,
.../v5/order/create-order: Bybit names a spot pair and its linear perpetual alike (``BTCUSDT``), so the
category picks the instrument (:meth:`BybitSpot.lookup`).  A spot instrument carries
``lotSizeFilter.basePrecision`` and no leverage or funding fields; a spot ticker no mark, index or
funding fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cqvx.venues.sim.config import InstrumentSpec

if TYPE_CHECKING:
    from cqvx.testing.fake_ccxt.bybit import FakeBybit

__all__ = ["BybitSpot"]


class BybitSpot:
    """The spot instruments of the fake's simulated venue in Bybit's spot shapes."""

    def __init__(self, fake: FakeBybit) -> None:
        self.fake = fake

    def symbols(self) -> set[str]:
        return {s.symbol for s in self.fake.sim.config.instruments if not s.is_perpetual}

    def lookup(self, params: dict[str, Any]) -> str:
        """The sim symbol a request names: ``symbol`` within its ``category`` (spot and linear share
        venue symbols, e.g. ``BTCUSDT``)."""
        symbol = str(params.get("symbol", ""))
        if params.get("category") != "spot":
            return self.fake.canonical(symbol)
        for spec in self.fake.sim.config.instruments:
            if not spec.is_perpetual and self.fake.venue_symbol(spec.symbol) == symbol:
                return spec.symbol
        raise self.fake.unknown_symbol(symbol)

    async def tickers(self, params: dict[str, Any]) -> Any:
        # https://bybit-exchange.github.io/docs/v5/market/tickers (spot: no mark, index or funding)
        symbol = str(params.get("symbol", ""))
        price = await self.fake.sim.get_latest_price(self.lookup(params))
        row = {
            "symbol": symbol,
            "bid1Price": price.bid,
            "bid1Size": price.bid_size or "0",
            "ask1Price": price.ask,
            "ask1Size": price.ask_size or "0",
            "lastPrice": price.last,
            "prevPrice24h": price.last,
            "price24hPcnt": "0",
            "highPrice24h": price.last,
            "lowPrice24h": price.last,
            "turnover24h": "0",
            "volume24h": "0",
            "usdIndexPrice": price.last,
        }
        return {"category": "spot", "list": [row]}

    def instrument_row(self, spec: InstrumentSpec, common: dict[str, Any]) -> dict[str, Any]:
        """A spot row of ``/v5/market/instruments-info`` (``common``: what both categories carry)."""
        return common | {
            "innovation": "0",
            "marginTrading": "none",
            "lotSizeFilter": {
                "basePrecision": str(spec.lot_size),
                "quotePrecision": str(spec.tick_size),
                "minOrderQty": str(spec.min_quantity),
                "maxOrderQty": str(spec.max_quantity),
                "minOrderAmt": str(spec.min_notional),
                "maxOrderAmt": "10000000",
            },
        }
