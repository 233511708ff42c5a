"""Conformance harness: the ccxt adapter against a thinner venue fake (bybit, okx, bitget, gate).

Everything but the fake and the client's configuration is :class:`BinanceCcxtHarness`'s (the same
simulated venue behind each fake, so the same orders rest, fill and fail to be funded).
"""

from __future__ import annotations

from cqvx.client import VenueClient
from cqvx.secrets import Secret
from cqvx.testing.fake_binance.harness import BinanceCcxtHarness
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.venues.sim import SimClock, SimVenue

__all__ = ["FAKES", "CcxtFakeHarness", "fake_class"]

KEY, SECRET, PASSPHRASE = "conformance-key", "conformance-secret", "conformance-passphrase"
# The derivatives markets each fake lists (ccxt ``fetchMarkets.types``).
MARKET_TYPES = {"bybit": ("linear",), "okx": ("swap",), "bitget": ("swap",), "gate": ("swap",)}
FAKES = tuple(MARKET_TYPES)


def fake_class(venue: str) -> type[SimFake]:
    import importlib

    module = importlib.import_module(f"cqvx.testing.fake_ccxt.{venue}")
    cls: type[SimFake] = getattr(module, f"Fake{venue.title()}")
    return cls


class CcxtFakeHarness(BinanceCcxtHarness):
    def __init__(self, venue: str) -> None:
        from cqvx.testing.harnesses import quiet_sim_config

        self.venue = venue
        self.sim = SimVenue(quiet_sim_config(), clock=SimClock())
        self.venue_fake = fake_class(venue)(KEY, SECRET, PASSPHRASE, sim=self.sim)
        self.fake = self.venue_fake  # type: ignore[assignment]  # the base's hooks use the same API

    async def new_client(self) -> VenueClient:
        from cqvx.venues.ccxt import CcxtClient, CcxtConfig

        config = CcxtConfig(
            self.venue,
            Secret(KEY),
            Secret(SECRET),
            Secret(PASSPHRASE),
            market_types=MARKET_TYPES[self.venue],
            rest_url=self.fake.url,
            retry_initial_s=0.01,
            retry_max_s=0.05,
            rate_limit=False,  # the fake limits only when told to (rate_limit_next)
        )
        return CcxtClient(config)

    async def venue_order_count(self, client_order_id: str) -> int:
        return self.venue_fake.venue_order_count(client_order_id)
