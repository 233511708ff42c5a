"""Conformance harness: the ccxt adapter against a thinner venue fake (bybit, okx, bitget, gate).

The REST hooks and the order shapes are :class:`BinanceCcxtHarness`'s (the same simulated venue behind
each fake, so the same orders rest, fill and fail to be funded).  The streams are what these fakes
serve and no more: ONE private WebSocket stream, the venue's order channel, which the adapter's
execution stream reads over the wire (REST and WebSocket both at the fake: ``rest_url`` and
``ws_url``).  No public book or trade stream is served, so those capabilities are off here (reported
as not covered, never as passed) instead of being dialled at the real venue.
"""

from __future__ import annotations

from decimal import Decimal

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import execution_pb2
from cqvx.client import VenueClient
from cqvx.secrets import Secret
from cqvx.testing.fake_binance.harness import BinanceCcxtHarness
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.gate import USER_ID
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
    # Only the order channel is served: no book, trades or ticker stream on these fakes.
    supports_order_book = False
    supports_book_resync = False
    supports_trades = False
    supports_stream_refusal = False  # its test subscribes to trades (a public stream)
    supports_stream_gaps = True  # the order channel's connection can be cut (force_stream_drop)

    def __init__(self, venue: str) -> None:
        from cqvx.testing.harnesses import quiet_sim_config

        self.venue = venue
        self.sim = SimVenue(quiet_sim_config(), clock=SimClock())
        self.venue_fake = fake_class(venue)(KEY, SECRET, PASSPHRASE, sim=self.sim)
        self.fake = self.venue_fake  # type: ignore[assignment]  # start/stop/url/rate limits: same API

    async def new_client(self) -> VenueClient:
        from cqvx.venues.ccxt import CcxtClient, CcxtConfig

        config = CcxtConfig(
            self.venue,
            Secret(KEY),
            Secret(SECRET),
            Secret(PASSPHRASE),
            uid=USER_ID if self.venue == "gate" else "",
            market_types=MARKET_TYPES[self.venue],
            rest_url=self.venue_fake.url,
            ws_url=self.venue_fake.ws_url,
            retry_initial_s=0.01,
            retry_max_s=0.05,
            stream_retry_max_s=0.2,
            positions_poll_s=0.1,
            rate_limit=False,  # the fake limits only when told to (rate_limit_next)
        )
        return CcxtClient(config)

    async def venue_order_count(self, client_order_id: str) -> int:
        return self.venue_fake.venue_order_count(client_order_id)

    # -- streams: the order channel only ---------------------------------------------------------

    async def force_stream_drop(self) -> None:
        await self.venue_fake.drop_ws()

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        # No await in between: the fake forgets its order sockets before its pump can push the fill.
        await self.fill(report, quantity)
        await self.venue_fake.drop_ws()

    async def drop_streams(self) -> None:
        raise NotImplementedError("no book stream on this fake (supports_order_book is False)")

    async def make_book_gap(self) -> None:
        raise NotImplementedError("no book stream on this fake (supports_book_resync is False)")

    async def emit_trade(self) -> None:
        raise NotImplementedError("no trade stream on this fake (supports_trades is False)")

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return await self.sim.get_order_book(self.symbol, depth)
