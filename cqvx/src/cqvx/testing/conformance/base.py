"""The suite's base: the ``client`` fixture, the per-venue id hooks and the helpers every capability
group uses (skip with a reason, place a resting order, wait for a cancel, poll the venue)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import pytest

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.errors import VenueError
from cqvx.testing.conformance.harness import ConformanceHarness
from cqvx.types import Stream

__all__ = ["SuiteBase", "assert_valid_book"]

T = TypeVar("T")


def _levels(side: Any) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(lv.price), Decimal(lv.quantity)) for lv in side]


def assert_valid_book(book: orderbook_pb2.OrderBook, symbol: str, depth: int | None = None) -> None:
    """Sorted best-first, no duplicate or zero levels, uncrossed, within ``depth``."""
    assert book.symbol == symbol, f"book for {book.symbol!r}, expected {symbol!r}"
    bids = _levels(book.bids)
    asks = _levels(book.asks)
    bid_prices = [p for p, _ in bids]
    ask_prices = [p for p, _ in asks]
    assert bid_prices == sorted(set(bid_prices), reverse=True), f"bids not strictly descending: {bid_prices}"
    assert ask_prices == sorted(set(ask_prices)), f"asks not strictly ascending: {ask_prices}"
    assert all(q > 0 for _, q in (*bids, *asks)), "book holds a zero or negative size"
    assert all(p > 0 for p in (*bid_prices, *ask_prices)), "book holds a non-positive price"
    if bids and asks:
        assert bid_prices[0] < ask_prices[0], f"crossed book: bid {bid_prices[0]} >= ask {ask_prices[0]}"
    if depth is not None:
        assert len(bids) <= depth and len(asks) <= depth, f"depth {depth} exceeded: {len(bids)}/{len(asks)}"


def _same_book(a: orderbook_pb2.OrderBook, b: orderbook_pb2.OrderBook) -> bool:
    return _levels(a.bids) == _levels(b.bids) and _levels(a.asks) == _levels(b.asks)


class SuiteBase:
    """What every capability group of :class:`~cqvx.testing.conformance.ConformanceSuite` shares."""

    venue: ClassVar[str] = ""  # the matrix row
    # Test name -> why it is known to fail on this venue: run as xfail (non-strict) and shown as ✗ with
    # the reason in the matrix, so a known gap is visible rather than hidden by a skip.
    known_failures: ClassVar[Mapping[str, str]] = {}

    # ------------------------------------------------------------------ hooks to override

    def new_client_order_id(self) -> str:
        """A fresh id that fits every venue's limits (override for venues with a required format)."""
        return "cqx" + uuid.uuid4().hex[:20]

    def unknown_order_id(self) -> str:
        """A well-formed order id the venue has never issued."""
        return str(uuid.uuid4())

    # ---------------------------------------------------------------------------- fixtures

    @pytest.fixture
    async def client(
        self, harness: ConformanceHarness, request: pytest.FixtureRequest
    ) -> AsyncIterator[VenueClient]:
        known = self.known_failures.get(request.node.originalname)
        if known is not None:
            request.applymarker(pytest.mark.xfail(reason=known, strict=False))
        c = await harness.new_client()
        try:
            yield c
        finally:
            await c.aclose()

    # ----------------------------------------------------------------------------- helpers

    def _require(self, harness: ConformanceHarness, flag: str, cap: str) -> None:
        if not getattr(harness, flag):
            pytest.skip(
                f"{harness.venue or self.venue}: capability '{cap}' not supported (harness.{flag}=False)"
            )

    async def _place_resting(
        self, client: VenueClient, harness: ConformanceHarness
    ) -> tuple[order_pb2.Order, execution_pb2.ExecutionReport]:
        order = harness.resting_order(self.new_client_order_id())
        report = await asyncio.wait_for(client.place_order(order), harness.timeout)
        return order, report

    async def _cleanup(self, client: VenueClient, harness: ConformanceHarness, order_id: str) -> None:
        # Best effort: leave the fake clean; the test's verdict is already decided.
        with contextlib.suppress(VenueError, TimeoutError):
            await asyncio.wait_for(
                client.cancel_order(symbol=harness.symbol, order_id=order_id), harness.timeout
            )

    async def _wait_cancelled(
        self, client: VenueClient, harness: ConformanceHarness, order: order_pb2.Order
    ) -> None:
        """CANCELLED directly, or PENDING_CANCEL followed by CANCELLED within the timeout."""
        if order.status == order_pb2.ORDER_STATUS_CANCELLED:
            return
        assert order.status == order_pb2.ORDER_STATUS_PENDING_CANCEL, (
            f"cancel returned status {order_pb2.OrderStatus.Name(order.status)}"
        )
        async with asyncio.timeout(harness.timeout):
            while True:
                current = await client.get_order(symbol=harness.symbol, order_id=order.order_id)
                if current.status == order_pb2.ORDER_STATUS_CANCELLED:
                    return
                await asyncio.sleep(0.02)

    def _not_covered(self, harness: ConformanceHarness, cap: str, why: str) -> None:
        pytest.skip(f"{harness.venue or self.venue}: capability '{cap}' not covered: {why}")

    async def _poll(
        self,
        harness: ConformanceHarness,
        read: Callable[[], Awaitable[T]],
        done: Callable[[T], bool],
        what: str,
    ) -> T:
        """Read until ``done`` holds (polling with a deadline, not a fixed sleep)."""
        last: T | None = None
        try:
            async with asyncio.timeout(harness.timeout):
                while True:
                    last = await read()
                    if done(last):
                        return last
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pass
        raise AssertionError(f"{what} within {harness.timeout}s (last seen: {last})")

    async def _until(
        self,
        stream: Stream[orderbook_pb2.OrderBook],
        harness: ConformanceHarness,
        want: orderbook_pb2.OrderBook,
        depth: int,
    ) -> orderbook_pb2.OrderBook:
        """Read books (each must be valid) until one equals ``want``."""
        last: orderbook_pb2.OrderBook | None = None
        try:
            async with asyncio.timeout(harness.timeout):
                async for book in stream:
                    assert_valid_book(book, harness.symbol, depth)
                    last = book
                    if _same_book(book, want):
                        return book
        except TimeoutError:
            pass
        raise AssertionError(
            f"book stream did not converge on the venue's book within {harness.timeout}s\n"
            f"want bids={_levels(want.bids)} asks={_levels(want.asks)}\n"
            f"last bids={_levels(last.bids) if last else None} asks={_levels(last.asks) if last else None}"
        )
