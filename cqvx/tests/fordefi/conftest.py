"""Shared fixtures of the Fordefi adapter tests: an API user's key, the fake server, a client on it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cqvx.secrets import Secret
from cqvx.testing.fake_fordefi import FakeClock, FakeFordefi
from cqvx.transport.ratelimit import limiters
from cqvx.venues.fordefi import FordefiClient, FordefiConfig

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "api-user-token-test"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    limiters.clear()
    yield
    limiters.clear()


@pytest.fixture(scope="session")
def load() -> Callable[[str], bytes]:
    return lambda name: (FIXTURES / name).read_bytes()


@pytest.fixture(scope="session")
def api_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def api_pem(api_key: ec.EllipticCurvePrivateKey) -> str:
    return api_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def make_config(url: str, pem: str, **overrides: object) -> FordefiConfig:
    fields: dict[str, object] = {
        "rest_url": url,
        "access_token": Secret(TOKEN),
        "signing_key": Secret(pem),
        "rps": 200.0,
        "retry_base_delay_s": 0.01,
        "poll_initial_s": 0.04,
        "poll_max_s": 0.08,
        "poll_multiplier": 2.0,
    }
    fields.update(overrides)
    return FordefiConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def fake(api_key: ec.EllipticCurvePrivateKey) -> AsyncIterator[FakeFordefi]:
    async with FakeFordefi(keys={TOKEN: api_key.public_key()}, clock=FakeClock()) as server:
        yield server


@pytest.fixture
async def client(fake: FakeFordefi, api_pem: str) -> AsyncIterator[FordefiClient]:
    async with FordefiClient(make_config(fake.url, api_pem), rng=random.Random(7)) as c:
        yield c


@pytest.fixture
def config_for() -> Callable[..., FordefiConfig]:
    """``config_for(url, pem, **overrides)``: a fast test config for a fake at ``url``."""
    return make_config
