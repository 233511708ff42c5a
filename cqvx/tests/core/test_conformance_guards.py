"""The conformance suite must not pass for the wrong reason.

Two venues that used to pass: one whose rate-limit hook served no 429 at all (a "transparent retry"
that never happened), and one that answers a reused client order id with the existing order while
quietly creating a second one that does not show as open.  Both must now fail, on the venue's own
counters (``rate_limits_served``, ``venue_order_count``), while the honest mock still passes.
"""

from __future__ import annotations

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.testing import MockVenue, MockVenueHarness, builders
from cqvx.testing.conformance import ConformanceHarness, ConformanceSuite


class _NoLimitHarness(MockVenueHarness):
    """Claims a transparent retry, but its hook scripts nothing: every call simply succeeds."""

    rate_limit_retries = True

    async def rate_limit_next(self, n: int) -> None:
        return None


class _HiddenTwinMock(MockVenue):
    """A reused id returns the first order, but a second, already-filled order is made behind it."""

    def _place(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        coid = order.client_order_id
        if coid and coid in self._by_client_id:
            first = self.orders[self._by_client_id[coid]]
            twin = order_pb2.Order()
            twin.CopyFrom(order)
            twin.order_id = f"twin-{len(self.orders)}"
            twin.status = order_pb2.ORDER_STATUS_FILLED  # not open: get_orders() does not show it
            self.orders[twin.order_id] = twin
            return builders.execution_report(first, execution_id=f"{first.order_id}-again")
        return super()._place(order)


class _HiddenTwinHarness(MockVenueHarness):
    def __init__(self) -> None:
        super().__init__()
        self.mock = _HiddenTwinMock(self.venue)


async def _run(harness: MockVenueHarness, test: str) -> None:
    await harness.start()
    assert isinstance(harness, ConformanceHarness)
    client = await harness.new_client()
    try:
        await getattr(ConformanceSuite(), test)(harness, client)
    finally:
        await harness.close()


async def test_rate_limit_passes_only_when_a_429_was_really_served() -> None:
    await _run(MockVenueHarness(), "test_rate_limited")  # the honest harness: RateLimited raised once
    with pytest.raises(AssertionError, match="served 0 rate-limited answers"):
        await _run(_NoLimitHarness(), "test_rate_limited")


async def test_duplicate_passes_only_with_one_order_at_the_venue() -> None:
    await _run(MockVenueHarness(), "test_duplicate_client_order_id_never_makes_two_orders")
    with pytest.raises(AssertionError, match="holds 2 orders under one client order id"):
        await _run(_HiddenTwinHarness(), "test_duplicate_client_order_id_never_makes_two_orders")


async def test_mock_harness_counts_only_answered_rate_limits() -> None:
    h = MockVenueHarness()
    await h.start()
    try:
        await h.rate_limit_next(2)
        assert await h.rate_limits_served() == 0  # scripted, not yet answered
        with pytest.raises(Exception, match="mock rate limit"):
            await h.mock.get_balances()
        assert await h.rate_limits_served() == 1
    finally:
        await h.close()
