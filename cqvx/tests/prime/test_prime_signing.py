"""Prime REST signing on the wire: the fake checks every request; these tests pin the formula itself.

Formula (venues.md §2.2/§7): base64(HMAC-SHA256(signing key as RAW UTF-8 bytes, timestamp + METHOD +
path-with-/v1-without-query + body)), integer-second timestamp, X-CB-ACCESS-* headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cqvx.auth.hmac import COINBASE_PRIME, HmacSigner
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.venues.prime import PrimeClient

from .conftest import ACCESS_KEY, PASSPHRASE, PORTFOLIO, SIGNING_KEY, make_config


def _reference(ts: str, method: str, path: str, body: bytes) -> str:
    msg = ts.encode() + method.encode() + path.encode() + body
    return base64.b64encode(hmac.new(SIGNING_KEY.encode(), msg, hashlib.sha256).digest()).decode()


async def test_every_request_carries_a_valid_prime_signature(client: PrimeClient, fake: FakePrime) -> None:
    await client.get_balances()
    await client.get_orders()  # carries a query string: not signed
    assert fake.auth_failures == 0
    for req in fake.requests:
        h = req.headers
        ts = h["X-CB-ACCESS-TIMESTAMP"]
        assert ts.isdigit(), "integer seconds, no fraction"
        assert h["X-CB-ACCESS-KEY"] == ACCESS_KEY
        assert h["X-CB-ACCESS-PASSPHRASE"] == PASSPHRASE
        assert req.path.startswith("/v1/portfolios/")
        assert h["X-CB-ACCESS-SIGNATURE"] == _reference(ts, req.method, req.path, req.body)


async def test_post_body_signed_is_the_body_sent(client: PrimeClient, fake: FakePrime) -> None:
    from cqc.venues.v1 import order_pb2

    await client.place_order(
        order_pb2.Order(
            symbol="BTC-USD",
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            quantity="0.01",
            price="1000",
        )
    )
    (req,) = fake.requests_to(f"/v1/portfolios/{PORTFOLIO}/order", "POST")
    assert req.body
    assert req.headers["X-CB-ACCESS-SIGNATURE"] == _reference(
        req.headers["X-CB-ACCESS-TIMESTAMP"], "POST", req.path, req.body
    )


def test_signer_uses_the_raw_key_and_drops_the_query() -> None:
    signer = HmacSigner(
        COINBASE_PRIME,
        ACCESS_KEY,
        SIGNING_KEY,
        passphrase=PASSPHRASE,
        clock=lambda: 1_700_000_000_999_000_000,
    )
    assert signer.timestamp() == "1700000000"
    pre = signer.prehash("GET", "/v1/portfolios/p/orders?start_date=x", b"", "1700000000")
    assert pre == b"1700000000GET/v1/portfolios/p/orders"


async def test_wrong_key_is_refused_as_authentication_error(fake: FakePrime, clock: FakeClock) -> None:
    import pytest

    from cqvx.errors import AuthenticationError
    from cqvx.venues.prime import PrimeConfig

    cfg = make_config(fake.url)
    bad = PrimeConfig(rest_url=fake.url, retry_base_delay_s=0.01).with_credentials(
        ACCESS_KEY, PASSPHRASE, "another-key", cfg.portfolio_id
    )
    async with PrimeClient(bad, clock=clock) as c:
        with pytest.raises(AuthenticationError) as info:
            await c.get_balances()
    assert info.value.code == "authentication_failed"
    assert fake.auth_failures == 1


async def test_a_clock_skewed_beyond_30s_is_refused(fake: FakePrime, clock: FakeClock) -> None:
    import pytest

    from cqvx.errors import AuthenticationError

    skewed = FakeClock(clock.now + 31)
    async with PrimeClient(make_config(fake.url), clock=skewed) as c:
        with pytest.raises(AuthenticationError):
            await c.get_balances()
