"""The shared conformance suite against the wire-level fake Fordefi, for what a custody venue offers.

Fordefi has no trading, order book or public trades (``supports_* = False``: those tests skip with a
reason naming the venue); balances under a 429, health and close apply.  The transport retries a 429
after its Retry-After, so the call succeeds (``rate_limit_retries``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cqc.venues.v1 import order_pb2
from cqvx.client import VenueClient
from cqvx.secrets import Secret
from cqvx.testing.conformance import ConformanceSuite, HarnessDefaults
from cqvx.testing.fake_fordefi import FakeFordefi
from cqvx.venues.fordefi import FordefiClient, FordefiConfig

TOKEN = "conformance-token"


class FordefiHarness(HarnessDefaults):
    venue = "fordefi"
    symbol = "ETH-USD"
    timeout = 5.0
    supports_trading = False
    supports_insufficient_funds = False
    supports_order_book = False
    supports_book_resync = False
    supports_trades = False
    rate_limit_retries = True

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.fake = FakeFordefi(keys={TOKEN: self._key.public_key()})

    async def start(self) -> None:
        await self.fake.start()

    async def new_client(self) -> VenueClient:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        cfg = FordefiConfig(
            rest_url=self.fake.url,
            access_token=Secret(TOKEN),
            signing_key=Secret(pem),
            rps=100.0,
            retry_base_delay_s=0.01,
        )
        return FordefiClient(cfg, rng=random.Random(3))

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        raise NotImplementedError("Fordefi does not trade")

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        raise NotImplementedError("Fordefi does not trade")

    async def rate_limit_next(self, n: int) -> None:
        self.fake.rate_limit(times=n, retry_after=0.05)

    async def rate_limits_served(self) -> int:
        return self.fake.rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return 0

    async def drop_streams(self) -> None:
        return None

    async def make_book_gap(self) -> None:
        return None

    async def expected_book(self, depth: int) -> object:
        raise NotImplementedError

    async def emit_trade(self) -> None:
        return None

    async def close(self) -> None:
        await self.fake.stop()


class TestFordefiConformance(ConformanceSuite):
    venue = "fordefi"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[FordefiHarness]:
        h = FordefiHarness()
        await h.start()
        yield h
        await h.close()
