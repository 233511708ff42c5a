"""The execution stream: each fill exactly once, also across a cut connection and a lost update.

What the engine relies on: every fill the venue made reaches it once.  The tests count fills by
quantity against what the harness made the venue fill (the venue's side, not the client's word), and
refuse a fill id seen twice.  A fill may arrive late (the adapter reconciles after reconnecting); it
may also never arrive if, and only if, the stream announced a :class:`~cqvx.streams.Gap` (the
consumer then reconciles, so ``get_order`` must show the fill).  After every disturbance the stream
must keep delivering: a marker order's report is the barrier that proves it, and, the stream being
ordered, that no duplicate of an earlier fill is still on its way.

Liveness: when the stream offers ``wait_live()`` (the :class:`~cqvx.streams.LiveStream` contract) it
is awaited; a stream without it is probed by placing resting orders until one is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import SupportsOrderStream, VenueClient
from cqvx.testing.conformance.base import SuiteBase
from cqvx.testing.conformance.capabilities import capability
from cqvx.testing.conformance.harness import ConformanceHarness, ExecutionHarness, StreamDropHarness
from cqvx.types import Stream

__all__ = ["ExecutionLog", "ExecutionSuite"]

_TRADE = execution_pb2.EXECUTION_TYPE_TRADE


class ExecutionLog:
    """Reads an execution stream in the background and answers what it has seen so far."""

    def __init__(self, stream: Stream[execution_pb2.ExecutionReport]) -> None:
        self.stream = stream
        self.reports: list[execution_pb2.ExecutionReport] = []
        self.gaps: list[Any] = []
        self.error: BaseException | None = None
        self.ended = False
        self._changed = asyncio.Event()
        on_gap = getattr(stream, "on_gap", None)
        self.announces_gaps = callable(on_gap)
        if callable(on_gap):
            on_gap(self._gap)
        self._task = asyncio.create_task(self._read())

    def _gap(self, gap: Any) -> None:
        self.gaps.append(gap)
        self._changed.set()

    async def _read(self) -> None:
        try:
            async for report in self.stream:
                self.reports.append(report)
                self._changed.set()
        except Exception as exc:  # the verdict is the test's: it reads .error
            self.error = exc
        finally:
            self.ended = True
            self._changed.set()

    def fills(self, order_id: str) -> list[execution_pb2.ExecutionReport]:
        return [r for r in self.reports if r.order_id == order_id and r.execution_type == _TRADE]

    def filled(self, order_id: str) -> Decimal:
        return sum((Decimal(r.last_quantity or "0") for r in self.fills(order_id)), Decimal(0))

    def seen(self, client_order_id: str) -> bool:
        return any(r.client_order_id == client_order_id for r in self.reports)

    def reported_with(self, client_order_id: str, execution_type: int) -> bool:
        return any(
            r.client_order_id == client_order_id and r.execution_type == execution_type for r in self.reports
        )

    async def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()`` holds, waking on each message; False on timeout or a dead stream."""
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    if self.ended:
                        return done()
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return done()
        return True

    def assert_alive(self) -> None:
        assert not self.ended, f"the execution stream ended ({self.error!r}); it must heal, not end"

    async def aclose(self) -> None:
        await self.stream.aclose()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class ExecutionSuite(SuiteBase):
    """``executions``, ``exec_reconnect`` and ``exec_gap``."""

    def _need_executions(self, harness: ConformanceHarness, client: VenueClient, cap: str) -> None:
        self._require(harness, "supports_trading", cap)
        if not isinstance(client, SupportsOrderStream):
            self._not_covered(harness, cap, "the client has no subscribe_executions (SupportsOrderStream)")
        if not isinstance(harness, ExecutionHarness):
            self._not_covered(harness, cap, "the harness cannot make the venue fill an order (no fill hook)")

    def _need_drop(self, harness: ConformanceHarness, cap: str) -> StreamDropHarness:
        if not isinstance(harness, StreamDropHarness):
            self._not_covered(harness, cap, "the harness cannot cut the stream's connection (no hook)")
        assert isinstance(harness, StreamDropHarness)
        return harness

    async def _live_log(
        self, client: VenueClient, harness: ConformanceHarness, placed: list[str]
    ) -> tuple[ExecutionLog, execution_pb2.ExecutionReport]:
        """A running log of a live execution stream, and a resting order it has reported."""
        assert isinstance(client, SupportsOrderStream)
        log = ExecutionLog(client.subscribe_executions([harness.symbol]))
        wait_live = getattr(log.stream, "wait_live", None)
        if callable(wait_live):
            await asyncio.wait_for(wait_live(), harness.timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + harness.timeout
        while True:
            # A stream that starts on first read (no wait_live) may miss the first orders: keep
            # placing until one is reported; each probe is cleaned up by the caller.
            _, report = await self._place_resting(client, harness)
            placed.append(report.order_id)
            probe_wait = min(0.5, max(0.0, deadline - loop.time()))
            if await log.wait(partial(log.seen, report.client_order_id), probe_wait):
                # Earlier probes rest at the same price and would take the fills meant for this one.
                for order_id in placed[:-1]:
                    await self._cleanup(client, harness, order_id)
                return log, report
            log.assert_alive()
            if loop.time() >= deadline:
                raise AssertionError(f"the execution stream reported no order within {harness.timeout}s")

    async def _expect_fills(
        self, log: ExecutionLog, harness: ConformanceHarness, order_id: str, want: Decimal, step: str
    ) -> None:
        ok = await log.wait(lambda: log.filled(order_id) >= want, harness.timeout)
        log.assert_alive()
        assert ok, f"{step}: the stream delivered fills of {log.filled(order_id)}, the venue filled {want}"

    async def _barrier(
        self, client: VenueClient, harness: ConformanceHarness, log: ExecutionLog, placed: list[str]
    ) -> None:
        """A marker order's report: the stream still delivers, and everything before it has arrived."""
        order, report = await self._place_resting(client, harness)
        placed.append(report.order_id)
        ok = await log.wait(lambda: log.seen(order.client_order_id), harness.timeout)
        log.assert_alive()
        assert ok, f"the execution stream stopped delivering: no report for a new order in {harness.timeout}s"

    def _assert_exactly_once(self, log: ExecutionLog, order_id: str, want: Decimal) -> None:
        fills = log.fills(order_id)
        ids = [f.trade_id or f.execution_id for f in fills]
        assert all(ids), "a fill report carries neither trade_id nor execution_id (de-duplication key)"
        assert len(ids) == len(set(ids)), f"a fill was delivered twice: {ids}"
        got = log.filled(order_id)
        assert got == want, f"the stream delivered fills of {got}, the venue filled {want} (a fill twice?)"
        assert all(Decimal(f.last_quantity) > 0 for f in fills), "a fill report without a quantity"
        last = fills[-1]
        assert Decimal(last.cumulative_quantity or "0") == want, (
            f"cumulative quantity {last.cumulative_quantity} after fills of {want}"
        )

    async def _cleanup_all(self, client: VenueClient, harness: ConformanceHarness, placed: list[str]) -> None:
        for order_id in placed:
            await self._cleanup(client, harness, order_id)

    @staticmethod
    def _half(report: execution_pb2.ExecutionReport) -> tuple[Decimal, Decimal]:
        total = Decimal(report.order_quantity)
        first = total / 2
        return first, total - first

    @capability("executions")
    async def test_execution_stream_fills_exactly_once(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._need_executions(harness, client, "executions")
        assert isinstance(harness, ExecutionHarness)
        placed: list[str] = []
        log, report = await self._live_log(client, harness, placed)
        try:
            first, rest = self._half(report)
            await harness.fill(report, first)
            await self._expect_fills(log, harness, report.order_id, first, "partial fill")
            await harness.fill(report, rest)
            await self._expect_fills(log, harness, report.order_id, first + rest, "final fill")
            await self._barrier(client, harness, log, placed)
            self._assert_exactly_once(log, report.order_id, first + rest)
            assert log.fills(report.order_id)[-1].order_status == order_pb2.ORDER_STATUS_FILLED
        finally:
            await log.aclose()
            await self._cleanup_all(client, harness, placed)

    @capability("exec_reconnect")
    async def test_execution_stream_fills_exactly_once_across_a_reconnect(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._need_executions(harness, client, "exec_reconnect")
        dropper = self._need_drop(harness, "exec_reconnect")
        assert isinstance(harness, ExecutionHarness)
        placed: list[str] = []
        log, report = await self._live_log(client, harness, placed)
        try:
            first, rest = self._half(report)
            await harness.fill(report, first)
            await self._expect_fills(log, harness, report.order_id, first, "fill before the drop")
            await dropper.force_stream_drop()
            await harness.fill(report, rest)  # while the client is reconnecting
            await self._delivered_or_announced(client, harness, log, report, first + rest)
            await self._barrier(client, harness, log, placed)
            self._assert_at_most_once(log, report.order_id, first + rest)
        finally:
            await log.aclose()
            await self._cleanup_all(client, harness, placed)

    @capability("exec_gap")
    async def test_execution_stream_fill_lost_in_transit(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._need_executions(harness, client, "exec_gap")
        dropper = self._need_drop(harness, "exec_gap")
        assert isinstance(harness, ExecutionHarness)
        placed: list[str] = []
        log, report = await self._live_log(client, harness, placed)
        try:
            first, rest = self._half(report)
            await harness.fill(report, first)
            await self._expect_fills(log, harness, report.order_id, first, "fill before the gap")
            await dropper.fill_lost_in_transit(report, rest)
            await self._delivered_or_announced(client, harness, log, report, first + rest)
            await self._barrier(client, harness, log, placed)
            self._assert_at_most_once(log, report.order_id, first + rest)
        finally:
            await log.aclose()
            await self._cleanup_all(client, harness, placed)

    async def _delivered_or_announced(
        self,
        client: VenueClient,
        harness: ConformanceHarness,
        log: ExecutionLog,
        report: execution_pb2.ExecutionReport,
        want: Decimal,
    ) -> None:
        """All of ``want`` delivered; or a gap announced and the venue's order shows the fill."""
        order_id = report.order_id
        if await log.wait(lambda: log.filled(order_id) >= want or bool(log.gaps), harness.timeout):
            if log.filled(order_id) >= want:
                return
            # A gap was announced: the consumer reconciles, so the order must show the fill.
            await self._poll(
                harness,
                lambda: client.get_order(symbol=harness.symbol, order_id=order_id),
                lambda o: Decimal(o.filled_quantity or "0") == want,
                f"after a gap, get_order did not show the filled {want}",
            )
            return
        log.assert_alive()
        gaps = "announced no gap" if log.announces_gaps else "cannot announce gaps (no on_gap)"
        raise AssertionError(
            f"a fill was lost: the stream delivered {log.filled(order_id)} of {want} and {gaps}"
        )

    def _assert_at_most_once(self, log: ExecutionLog, order_id: str, want: Decimal) -> None:
        if log.filled(order_id) == want:
            self._assert_exactly_once(log, order_id, want)
            return
        ids = [f.trade_id or f.execution_id for f in log.fills(order_id)]
        assert len(ids) == len(set(ids)), f"a fill was delivered twice: {ids}"
        assert log.filled(order_id) < want, f"the stream delivered fills of {log.filled(order_id)} > {want}"
