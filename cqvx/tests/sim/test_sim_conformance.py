"""The shared conformance suite run against the simulated venue (harness: :class:`SimHarness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqvx.testing.conformance import ConformanceHarness, ConformanceSuite
from cqvx.testing.harnesses import SimHarness

# The sim loses what was in transit when its streams drop but announces no Gap yet (the stream
# contract's gap notices land with the shared fan-out); remove the entry once it does.
SIM_KNOWN_FAILURES = {
    "test_execution_stream_fill_lost_in_transit": (
        "the sim announces no Gap when a dropped stream lost an execution report"
    ),
}


class TestSimConformance(ConformanceSuite):
    venue = "sim"
    known_failures = SIM_KNOWN_FAILURES

    @pytest.fixture
    async def harness(self) -> AsyncIterator[SimHarness]:
        h = SimHarness()
        assert isinstance(h, ConformanceHarness)
        yield h
        await h.close()
