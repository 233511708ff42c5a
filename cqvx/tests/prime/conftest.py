"""Shared fixtures of the Prime adapter tests: the fake server on a controllable clock and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.testing.harnesses import (
    PRIME_ACCESS_KEY,
    PRIME_PASSPHRASE,
    PRIME_PORTFOLIO,
    PRIME_SIGNING_KEY,
    PRIME_SVC_ACCOUNT,
    prime_config,
    prime_fake,
)
from cqvx.transport.ratelimit import limiters
from cqvx.venues.prime import PrimeClient

FIXTURES = Path(__file__).parent / "fixtures"
ACCESS_KEY = PRIME_ACCESS_KEY
PASSPHRASE = PRIME_PASSPHRASE
SIGNING_KEY = PRIME_SIGNING_KEY
PORTFOLIO = PRIME_PORTFOLIO
SVC_ACCOUNT = PRIME_SVC_ACCOUNT
make_config = prime_config
make_fake = prime_fake


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    limiters.clear()


@pytest.fixture(scope="session")
def load() -> Callable[[str], bytes]:
    return lambda name: (FIXTURES / name).read_bytes()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakePrime]:
    server = make_fake(clock)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(fake: FakePrime, clock: FakeClock) -> AsyncIterator[PrimeClient]:
    async with PrimeClient(make_config(fake.url), clock=clock) as c:
        yield c
