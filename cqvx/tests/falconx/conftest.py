"""Shared fixtures of the FalconX adapter tests: the fake server on a controllable clock and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cqvx.testing.fake_falconx import FakeClock, FakeFalconX
from cqvx.transport.ratelimit import limiters
from cqvx.venues.falconx import FalconXClient, FalconXConfig

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "fx-test-key"
SECRET = "ZmFsY29ueC10ZXN0LXNlY3JldC0zMi1ieXRlcy1sb25n"  # base64 of a 33-byte test secret
PASSPHRASE = "fx-test-pass"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    limiters.clear()


@pytest.fixture(scope="session")
def load() -> Callable[[str], bytes]:
    return lambda name: (FIXTURES / name).read_bytes()


def make_config(url: str, **overrides: object) -> FalconXConfig:
    settings: dict[str, object] = {
        "rest_url": url,
        "retry_base_delay_s": 0.01,
        "requests_per_second": 1000.0,
        "quotes_per_second": 1000.0,
        "resolve_poll_s": 0.01,
        "resolve_timeout_s": 5.0,
        **overrides,
    }
    base = FalconXConfig(**settings)  # type: ignore[arg-type]
    return base.with_credentials(API_KEY, SECRET, PASSPHRASE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeFalconX]:
    async with FakeFalconX(api_key=API_KEY, secret=SECRET, passphrase=PASSPHRASE, clock=clock) as server:
        yield server


@pytest.fixture
async def client(fake: FakeFalconX, clock: FakeClock) -> AsyncIterator[FalconXClient]:
    async with FalconXClient(make_config(fake.url), clock=clock) as c:
        yield c
