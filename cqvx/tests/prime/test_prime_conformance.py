"""The shared conformance suite against the wire-level fake Prime (HMAC-checked; harness:
:class:`cqvx.testing.harnesses.PrimeHarness`).

The book comes from the fake's WebSocket ``l2_data`` feed (signed subscribes checked by the fake);
Prime has no public trade feed, so that capability is reported as not supported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.harnesses import PrimeHarness


class TestPrimeConformance(ConformanceSuite):
    venue = "prime"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[PrimeHarness]:
        h = PrimeHarness()
        await h.start()
        try:
            yield h
        finally:
            await h.close()
