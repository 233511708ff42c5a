"""Shared fixtures of the Prime adapter tests: the fake server on a controllable clock and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.transport.ratelimit import limiters
from cqvx.venues.prime import PrimeClient, PrimeConfig

FIXTURES = Path(__file__).parent / "fixtures"
ACCESS_KEY = "prime-test-access-key"
PASSPHRASE = "prime-test-passphrase"
SIGNING_KEY = "cHJpbWUtdGVzdC1zaWduaW5nLWtleQ=="  # looks base64 but is used RAW (venues.md §2.2)
PORTFOLIO = "3e1fe27e-7c1b-4a2f-9d6c-0f5e2a7b9c10"
SVC_ACCOUNT = "svc-test-account"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    limiters.clear()


@pytest.fixture(scope="session")
def load() -> Callable[[str], bytes]:
    return lambda name: (FIXTURES / name).read_bytes()


def make_config(url: str, **overrides: object) -> PrimeConfig:
    settings: dict[str, object] = {
        "rest_url": url,
        "ws_url": url.replace("http://", "ws://") + "/ws",
        "ws_reconnect_initial_s": 0.01,
        "ws_reconnect_max_s": 0.1,
        "retry_base_delay_s": 0.01,
        "ip_requests_per_second": 1000.0,
        "portfolio_requests_per_second": 1000.0,
        "portfolio_burst": 1000.0,
        **overrides,
    }
    base = PrimeConfig(**settings)  # type: ignore[arg-type]
    return base.with_credentials(ACCESS_KEY, PASSPHRASE, SIGNING_KEY, PORTFOLIO, SVC_ACCOUNT)


def make_fake(clock: FakeClock) -> FakePrime:
    return FakePrime(
        access_key=ACCESS_KEY,
        passphrase=PASSPHRASE,
        signing_key=SIGNING_KEY,
        portfolio_id=PORTFOLIO,
        clock=clock,
    )


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
