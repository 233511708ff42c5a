"""The shared conformance suite against the wire-level fake Coinbase (harness: :class:`CoinbaseHarness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.harnesses import CoinbaseHarness


class TestCoinbaseConformance(ConformanceSuite):
    venue = "coinbase"

    # Coinbase documents a reused client_order_id as not creating a second order; whether the venue
    # answers with the existing order or with a failure, the suite runs against both answers.
    @pytest.fixture(params=["return_existing", "reject"])
    async def harness(self, request: pytest.FixtureRequest) -> AsyncIterator[CoinbaseHarness]:
        h = CoinbaseHarness(duplicate_mode=request.param)
        await h.start()
        try:
            yield h
        finally:
            await h.close()


async def test_rate_limit_hook_really_serves_a_429_that_is_retried() -> None:
    """The suite's rate-limit check (``rate_limit_retries=True``) only sees a success, which it would
    also see if the hook served no 429 at all; this pins that the 429 happened and was retried."""
    h = CoinbaseHarness()
    await h.start()
    try:
        client = await h.new_client()
        async with client:
            await h.rate_limit_next(1)
            assert isinstance(await client.get_balances(), list)
        attempts = h.fake.requests_to("/api/v3/brokerage/accounts")
        assert len(attempts) == 2, "one 429, then the retried request"
    finally:
        await h.close()
