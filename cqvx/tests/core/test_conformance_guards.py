"""The conformance suite must not pass for the wrong reason.

Two venues that used to pass: one whose rate-limit hook served no 429 at all (a "transparent retry"
that never happened), and one that answers a reused client order id with the existing order while
quietly creating a second one that does not show as open.  Both must now fail, on the venue's own
counters (``rate_limits_served``, ``venue_order_count``), while the honest mock still passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

import pytest

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.errors import VenueError
from cqvx.streams import Gap, GapListener
from cqvx.testing import MockVenue, MockVenueHarness, builders
from cqvx.testing.conformance import ConformanceHarness, ConformanceSuite
from cqvx.testing.harnesses import SimHarness, quiet_sim_config
from cqvx.types import OrderFilter, Stream
from cqvx.venues.sim import SimClock, SimVenue


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


# ---------------------------------------------------------------- the capabilities the engine relies on
#
# Each new capability fails a venue broken in the way that capability exists to catch, while an honest
# venue passes it.


async def _run_any(harness: object, test: str) -> None:
    """Run one suite test on a harness with or without a start() (the sim needs none)."""
    start = getattr(harness, "start", None)
    if start is not None:
        await start()
    assert isinstance(harness, ConformanceHarness)
    client = await harness.new_client()
    try:
        await getattr(ConformanceSuite(), test)(harness, client)
    finally:
        await client.aclose()
        await harness.close()


class _TwiceFillHarness(MockVenueHarness):
    """Every fill's report reaches the stream twice (a replay after a reconnect, say)."""

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        fill = await self.mock.fill(order_id=report.order_id, quantity=quantity)
        await self.mock.push_execution(fill)


class _SilentFillHarness(MockVenueHarness):
    """The venue fills, but the fill never reaches the execution stream."""

    timeout = 0.3

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        stored = self.mock.orders[report.order_id]
        stored.filled_quantity = str(Decimal(stored.filled_quantity or "0") + quantity)


async def test_executions_fail_a_fill_delivered_twice_or_never() -> None:
    await _run(MockVenueHarness(), "test_execution_stream_fills_exactly_once")
    with pytest.raises(AssertionError, match="delivered twice"):
        await _run(_TwiceFillHarness(), "test_execution_stream_fills_exactly_once")
    with pytest.raises(AssertionError, match="the venue filled"):
        await _run(_SilentFillHarness(), "test_execution_stream_fills_exactly_once")


class _EndingDropSim(SimHarness):
    """The connection drops and the stream simply ends: the consumer is left to notice and recover."""

    async def force_stream_drop(self) -> None:
        self.sim.faults.drop_streams(resume=False)


async def test_exec_reconnect_fails_a_stream_that_ends_instead_of_healing() -> None:
    await _run_any(SimHarness(), "test_execution_stream_fills_exactly_once_across_a_reconnect")
    with pytest.raises(AssertionError, match="must heal, not end"):
        await _run_any(_EndingDropSim(), "test_execution_stream_fills_exactly_once_across_a_reconnect")


class _GapStream:
    """The sim's execution stream plus gap notices (what the stream contract asks of every venue)."""

    def __init__(self, inner: Stream[execution_pb2.ExecutionReport], listeners: list[GapListener]) -> None:
        self._inner = inner
        self._listeners = listeners

    def on_gap(self, listener: GapListener) -> None:
        self._listeners.append(listener)

    def __aiter__(self) -> _GapStream:
        return self

    async def __anext__(self) -> execution_pb2.ExecutionReport:
        return await anext(self._inner)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _GapClient:
    """A sim client whose execution stream announces gaps."""

    def __init__(self, sim: SimVenue, listeners: list[GapListener]) -> None:
        self._sim = sim
        self._listeners = listeners

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)

    def subscribe_executions(self, symbols: Sequence[str] | None = None) -> _GapStream:
        return _GapStream(self._sim.subscribe_executions(symbols), self._listeners)


class _GapAnnouncingSim(SimHarness):
    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[GapListener] = []

    async def new_client(self) -> VenueClient:
        return cast(VenueClient, _GapClient(self.sim, self.listeners))

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await super().fill_lost_in_transit(report, quantity)
        for listener in self.listeners:
            listener(Gap(venue=self.venue, channel="executions", reason="connection dropped"))


class _MuteGapSim(_GapAnnouncingSim):
    """Loses the fill in transit and never says so."""

    timeout = 0.3

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await SimHarness.fill_lost_in_transit(self, report, quantity)


async def test_exec_gap_passes_a_lost_fill_only_when_a_gap_was_announced() -> None:
    await _run_any(_GapAnnouncingSim(), "test_execution_stream_fill_lost_in_transit")
    with pytest.raises(AssertionError, match=r"a fill was lost: .* and announced no gap"):
        await _run_any(_MuteGapSim(), "test_execution_stream_fill_lost_in_transit")


class _SinkingBatchMock(MockVenue):
    """place_orders gives up at the first refused item and reports the rest as failed too."""

    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        out: list[execution_pb2.ExecutionReport | VenueError] = []
        failed: VenueError | None = None
        for order in orders:
            if failed is not None:
                out.append(failed)
                continue
            try:
                out.append(await self.place_order(order))
            except VenueError as exc:
                failed = exc
                out.append(exc)
        return out

    async def cancel_orders(self, refs: Sequence[order_pb2.OrderRef]) -> list[order_pb2.Order | VenueError]:
        return list(reversed(await super().cancel_orders(refs)))  # answers out of order

    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        return await super().cancel_all_orders(None, side)  # ignores the symbol


class _SinkingBatchHarness(MockVenueHarness):
    def __init__(self) -> None:
        super().__init__()
        self.mock = _SinkingBatchMock(self.venue)


async def test_batch_and_cancel_all_fail_venues_that_break_their_contract() -> None:
    for test in (
        "test_batch_place_answers_per_item",
        "test_batch_cancel_answers_per_item",
        "test_cancel_all_cancels_only_the_symbols_open_orders",
    ):
        await _run(MockVenueHarness(), test)
    with pytest.raises(AssertionError, match="a good item failed"):
        await _run(_SinkingBatchHarness(), "test_batch_place_answers_per_item")
    with pytest.raises(AssertionError, match="results out of order"):
        await _run(_SinkingBatchHarness(), "test_batch_cancel_answers_per_item")
    with pytest.raises(AssertionError, match="cancel_all returned"):
        await _run(_SinkingBatchHarness(), "test_cancel_all_cancels_only_the_symbols_open_orders")


class _MarkEntrySim(SimVenue):
    """Reports the mark price as the position's entry price."""

    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        positions = await super().get_positions(symbols)
        for p in positions:
            p.entry_price = str(Decimal(p.mark_price) + 1)
        return positions


async def test_positions_fail_a_wrong_entry_price() -> None:
    await _run_any(SimHarness(), "test_position_after_a_perpetual_fill")
    broken = SimHarness(_MarkEntrySim(quiet_sim_config(), clock=SimClock()))
    with pytest.raises(AssertionError, match="entry"):
        await _run_any(broken, "test_position_after_a_perpetual_fill")


class _OpenOnlyHistoryMock(MockVenue):
    """Answers every order listing with the open orders only, whatever statuses were asked for."""

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        f = filter or OrderFilter()
        return await super().get_orders(OrderFilter(symbol=f.symbol, side=f.side))


class _OpenOnlyHistoryHarness(MockVenueHarness):
    def __init__(self) -> None:
        super().__init__()
        self.mock = _OpenOnlyHistoryMock(self.venue)


async def test_order_history_fails_a_venue_that_lists_open_orders_only() -> None:
    await _run(MockVenueHarness(), "test_order_history_lists_finished_orders")
    with pytest.raises(AssertionError, match="the cancelled order is None in the history"):
        await _run(_OpenOnlyHistoryHarness(), "test_order_history_lists_finished_orders")
