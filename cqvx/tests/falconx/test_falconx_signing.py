"""FalconX request signing: fixed vectors (computed from the published formula, venues.md §3.1/§7),
and the header set the adapter really sends, checked by the fake's own HMAC code."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from cqvx.auth.hmac import FALCONX, HmacSigner
from cqvx.errors import AuthenticationError
from cqvx.testing.fake_falconx import FakeClock, FakeFalconX
from cqvx.venues.falconx import FalconXClient

from .conftest import API_KEY, PASSPHRASE, SECRET, make_config

TS_NS = 1_700_000_000_123_456_000
QUOTE_BODY = (
    b'{"token_pair":{"base_token":"BTC","quote_token":"USD"},'
    b'"quantity":{"token":"BTC","value":"0.5"},"side":"two_way"}'
)
# (method, path with query, body, expected FX-ACCESS-SIGN) for timestamp "1700000000.123456".
VECTORS = [
    ("GET", "/v1/balances?platform=api", b"", "EIuxKZnYllBbkhM3Jxw0+FWYSVVTP+axKAY631OfoKk="),
    ("POST", "/v1/quotes", QUOTE_BODY, "pJxMwmln4KBG5ju9rTB5v315XPHVTw//VrSVa38aEdA="),
]


def _reference(ts: str, method: str, path: str, body: bytes) -> str:
    # The official client's FXRfqAuth, restated: base64(HMAC-SHA256(b64decode(secret), prehash)).
    mac = hmac.new(base64.b64decode(SECRET), (ts + method + path).encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@pytest.mark.parametrize(("method", "path", "body", "expected"), VECTORS)
def test_signature_vectors(method: str, path: str, body: bytes, expected: str) -> None:
    signer = HmacSigner(FALCONX, API_KEY, SECRET, passphrase=PASSPHRASE, clock=lambda: TS_NS)
    headers = signer.sign(method, path, body)
    assert headers["FX-ACCESS-TIMESTAMP"] == "1700000000.123456"
    assert headers["FX-ACCESS-SIGN"] == expected == _reference("1700000000.123456", method, path, body)
    assert headers["FX-ACCESS-KEY"] == API_KEY
    assert headers["FX-ACCESS-PASSPHRASE"] == PASSPHRASE


def test_query_string_is_signed() -> None:
    signer = HmacSigner(FALCONX, API_KEY, SECRET, passphrase=PASSPHRASE, clock=lambda: TS_NS)
    with_query = signer.sign("GET", "/v1/balances?platform=api", b"")["FX-ACCESS-SIGN"]
    without = signer.sign("GET", "/v1/balances", b"")["FX-ACCESS-SIGN"]
    assert with_query != without


def test_secret_that_is_not_base64_is_refused_without_echo() -> None:
    with pytest.raises(AuthenticationError) as info:
        HmacSigner(FALCONX, API_KEY, "not base64 !!", passphrase=PASSPHRASE)
    assert "not base64 !!" not in str(info.value)


async def test_fake_accepts_the_adapter_and_rejects_a_wrong_secret(clock: FakeClock) -> None:
    async with FakeFalconX(api_key=API_KEY, secret=SECRET, passphrase=PASSPHRASE, clock=clock) as fake:
        async with FalconXClient(make_config(fake.url), clock=clock) as good:
            assert await good.get_balances()
            request = fake.requests_to("/v1/balances")[-1]
            assert request.path_qs == "/v1/balances?platform=api"
            assert request.headers["FX-ACCESS-SIGN"] == _reference(
                request.headers["FX-ACCESS-TIMESTAMP"], "GET", request.path_qs, b""
            )
        wrong = make_config(fake.url).with_credentials(
            API_KEY, base64.b64encode(b"x" * 32).decode(), PASSPHRASE
        )
        async with FalconXClient(wrong, clock=clock) as bad:
            with pytest.raises(AuthenticationError):
                await bad.get_balances()
        assert fake.auth_failures == 1


async def test_stale_timestamp_is_rejected(fake: FakeFalconX, clock: FakeClock) -> None:
    skewed = FakeClock(clock.now - 120)
    async with FalconXClient(make_config(fake.url), clock=skewed) as c:
        with pytest.raises(AuthenticationError):
            await c.get_balances()
