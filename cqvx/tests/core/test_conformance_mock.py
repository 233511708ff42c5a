"""The shared conformance suite, run against MockVenue (proves the suite and the mock together)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqvx.testing import MockVenueHarness
from cqvx.testing.conformance import ConformanceHarness, ConformanceSuite
from cqvx.testing.conformance_streams import StreamContractTests


class TestMockConformance(ConformanceSuite, StreamContractTests):
    venue = "mock"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[MockVenueHarness]:
        h = MockVenueHarness()
        await h.start()
        assert isinstance(h, ConformanceHarness)
        yield h
        await h.close()
