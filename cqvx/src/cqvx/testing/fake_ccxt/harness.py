"""Conformance harness: the ccxt adapter against a thinner venue fake (bybit, okx, bitget, gate).

The REST hooks and the order shapes are :class:`BinanceCcxtHarness`'s (the same simulated venue behind
each fake, so the same orders rest, fill and fail to be funded).  REST and WebSocket both at the fake
(``rest_url`` and ``ws_url``): the venue's order channel carries the execution stream, and its public
channels (``fake.public``: book, trades, ticker) the book, trade and price streams.  The book hooks act
on the fake: ``drop_streams`` cuts every connection and moves the book unpublished (only a fresh
snapshot shows it), ``make_book_gap`` withholds one update (OKX: the next ``prevSeqId`` does not chain;
Bitget: the next checksum fails; Gate: the next ``U`` skips an id; Bybit: the next message is a fresh
snapshot, Bybit's documented recovery).
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
    supports_stream_gaps = True  # every connection can be cut (force_stream_drop)

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

    # -- streams ---------------------------------------------------------------------------------

    async def force_stream_drop(self) -> None:
        await self.venue_fake.drop_ws()

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        # No await in between: the fake forgets its order sockets before its pump can push the fill.
        await self.fill(report, quantity)
        await self.venue_fake.drop_ws()

    async def drop_streams(self) -> None:
        # The book changes while the client is away (not published: only a fresh snapshot shows it).
        await self.venue_fake.drop_ws()
        self.sim.set_price(self.symbol, self._mid() - Decimal("0.05"), publish=False)

    async def make_book_gap(self) -> None:
        self.venue_fake.public.skip_depth(self.venue_fake.venue_symbol(self.symbol), 1)
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.02"))
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.03"))

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return await self.sim.get_order_book(self.symbol, depth)
