"""The shared conformance suite run against the simulated venue (harness: :class:`SimHarness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqvx.testing.conformance import ConformanceHarness, ConformanceSuite
from cqvx.testing.harnesses import SimHarness


class TestSimConformance(ConformanceSuite):
    venue = "sim"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[SimHarness]:
        h = SimHarness()
        assert isinstance(h, ConformanceHarness)
        yield h
        await h.close()
