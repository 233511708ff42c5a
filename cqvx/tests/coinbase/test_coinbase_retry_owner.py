"""One retry owner: under a sustained 429 one placement reaches Coinbase a bounded, documented number
of times (``1 + retries``, docs/architecture.md "One retry owner"), counted at the wire-level fake."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.errors import RateLimited
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig

ORDERS = "/api/v3/brokerage/orders"


def _order(coid: str) -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_GTC,
        quantity="0.01",
        price="40000",
    )


@pytest.mark.parametrize("retries", [0, 2, 3])
async def test_sustained_429_reaches_the_venue_one_plus_retries_times(
    fake: FakeCoinbase, make_config: Callable[..., CoinbaseConfig], ec_pem: str, retries: int
) -> None:
    fake.fail(ORDERS, times=None, status=429, headers={"Retry-After": "0"}, method="POST")
    async with CoinbaseClient(make_config(fake, secret=ec_pem, retries=retries)) as client:
        with pytest.raises(RateLimited) as info:
            await client.place_order(_order(f"cq-429-{retries}"))
    assert len(fake.requests_to(ORDERS, "POST")) == 1 + retries
    # Every attempt carried the same client order id: a late landing is a duplicate, never a second order.
    assert len({r.body for r in fake.requests_to(ORDERS, "POST")}) == 1
    assert info.value.attempts == 1 + retries
    assert info.value.retried is (retries > 0)
