"""Shared fixtures of the Coinbase adapter tests: keys, the fake server, a client pointed at it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from cqvx.secrets import Secret
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.transport.ratelimit import limiters
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig

FIXTURES = Path(__file__).parent / "fixtures"
KEY_NAME = "organizations/org-test/apiKeys/key-test"
ED_KEY_NAME = "organizations/org-test/apiKeys/key-ed"


def _fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Clients share the process-wide buckets (per key, per IP); each test starts with full ones so
    one test's traffic cannot slow the next."""
    limiters.clear()


@pytest.fixture(scope="session")
def load() -> Callable[[str], bytes]:
    """Read a payload sample from ``fixtures/``."""
    return _fixture_bytes


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ec_pem(ec_key: ec.EllipticCurvePrivateKey) -> str:
    return ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def ed_secret(ed_key: ed25519.Ed25519PrivateKey) -> str:
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed + pub).decode()


def _client_config(
    fake: FakeCoinbase, key_name: str = KEY_NAME, secret: str = "", **kw: object
) -> CoinbaseConfig:
    base = dict(
        rest_url=fake.url,
        ws_market_url=fake.ws_market_url,
        ws_user_url=fake.ws_user_url,
        retry_base_delay_s=0.01,
        reconnect_initial_s=0.02,
        reconnect_max_s=0.1,
        heartbeat_timeout_s=2.0,
        timeout_s=2.0,
    )
    base.update(kw)
    cfg = CoinbaseConfig(**base)  # type: ignore[arg-type]
    return cfg.with_credentials(key_name, Secret(secret)) if secret else cfg


@pytest.fixture
async def fake(
    ec_key: ec.EllipticCurvePrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> AsyncIterator[FakeCoinbase]:
    server = FakeCoinbase(
        keys={KEY_NAME: ec_key.public_key(), ED_KEY_NAME: ed_key.public_key()},
        legacy_keys={"legacy-key": "legacy-secret"},
        heartbeat_interval=0.2,
    )
    async with server:
        yield server


@pytest.fixture(scope="session")
def make_config() -> Callable[..., CoinbaseConfig]:
    """``make_config(fake, key_name=..., secret=..., **overrides)``: a config pointed at the fake."""
    return _client_config


@pytest.fixture
async def client(fake: FakeCoinbase, ec_pem: str) -> AsyncIterator[CoinbaseClient]:
    c = CoinbaseClient(_client_config(fake, secret=ec_pem))
    try:
        yield c
    finally:
        await c.aclose()
