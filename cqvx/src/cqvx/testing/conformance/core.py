"""The core capabilities: orders (place, get, list, cancel, duplicates, funds), rate limits, the order
book and its resync, public trades, health and close."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from cqc.markets.v1 import trade_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.errors import DuplicateOrder, InsufficientFunds, NotFound, RateLimited, UnsupportedOperation
from cqvx.testing.conformance.base import SuiteBase, _same_book, assert_valid_book
from cqvx.testing.conformance.capabilities import capability
from cqvx.testing.conformance.harness import ConformanceHarness
from cqvx.types import OPEN_STATUSES, OrderFilter, Stream

__all__ = ["CoreSuite"]


class CoreSuite(SuiteBase):
    """The capabilities every trading venue has (the suite's first wave)."""

    @capability("place")
    async def test_place(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "place")
        order, report = await self._place_resting(client, harness)
        try:
            assert isinstance(report, execution_pb2.ExecutionReport)
            assert report.client_order_id == order.client_order_id
            assert report.order_id, "the venue's order id is missing"
            assert report.symbol == harness.symbol
            assert report.venue == harness.venue
            assert report.order_status in (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PENDING_NEW), (
                f"status {order_pb2.OrderStatus.Name(report.order_status)}"
            )
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("get")
    async def test_get_by_either_id(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "get")
        order, report = await self._place_resting(client, harness)
        try:
            by_id = await client.get_order(symbol=harness.symbol, order_id=report.order_id)
            by_coid = await client.get_order(symbol=harness.symbol, client_order_id=order.client_order_id)
            for got in (by_id, by_coid):
                assert got.order_id == report.order_id
                assert got.client_order_id == order.client_order_id
                assert got.symbol == harness.symbol
                assert got.side == order.side
                assert Decimal(got.quantity) == Decimal(order.quantity)
                if order.price:
                    assert Decimal(got.price) == Decimal(order.price)
                assert got.status in OPEN_STATUSES
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("list")
    async def test_list_open_orders(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "list")
        _, report = await self._place_resting(client, harness)
        try:
            listed = await client.get_orders(OrderFilter(symbol=harness.symbol))
            assert report.order_id in {o.order_id for o in listed}
            assert all(o.symbol == harness.symbol and o.status in OPEN_STATUSES for o in listed)
            assert report.order_id in {o.order_id for o in await client.get_orders()}
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("order_history")
    async def test_order_history_lists_finished_orders(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._require(harness, "supports_trading", "order_history")
        _, kept = await self._place_resting(client, harness)
        _, gone = await self._place_resting(client, harness)
        try:
            cancelled = await client.cancel_order(symbol=harness.symbol, order_id=gone.order_id)
            await self._wait_cancelled(client, harness, cancelled)
            every = frozenset(order_pb2.OrderStatus.values()) - {order_pb2.ORDER_STATUS_UNSPECIFIED}
            try:
                history = await client.get_orders(OrderFilter(symbol=harness.symbol, statuses=every))
            except UnsupportedOperation as err:
                pytest.skip(
                    f"{harness.venue or self.venue}: capability 'order_history' not supported ({err})"
                )
            status = {o.order_id: o.status for o in history}
            assert status.get(gone.order_id) == order_pb2.ORDER_STATUS_CANCELLED, (
                f"the cancelled order is {status.get(gone.order_id)!r} in the history"
            )
            assert status.get(kept.order_id) in OPEN_STATUSES, "the open order is missing from the history"
            assert all(o.symbol == harness.symbol for o in history)
            finished = await client.get_orders(
                OrderFilter(symbol=harness.symbol, statuses=frozenset({order_pb2.ORDER_STATUS_CANCELLED}))
            )
            assert gone.order_id in {o.order_id for o in finished}
            assert kept.order_id not in {o.order_id for o in finished}
        finally:
            await self._cleanup(client, harness, kept.order_id)

    @capability("cancel")
    async def test_cancel_by_either_id(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "cancel")
        _, first = await self._place_resting(client, harness)
        second_order, second = await self._place_resting(client, harness)
        cancelled = await client.cancel_order(symbol=harness.symbol, order_id=first.order_id)
        assert cancelled.order_id == first.order_id
        await self._wait_cancelled(client, harness, cancelled)
        cancelled2 = await client.cancel_order(
            symbol=harness.symbol, client_order_id=second_order.client_order_id
        )
        assert cancelled2.order_id == second.order_id
        await self._wait_cancelled(client, harness, cancelled2)
        open_ids = {o.order_id for o in await client.get_orders(OrderFilter(symbol=harness.symbol))}
        assert first.order_id not in open_ids and second.order_id not in open_ids
        after = await client.get_order(symbol=harness.symbol, order_id=first.order_id)
        assert after.status == order_pb2.ORDER_STATUS_CANCELLED

    @capability("cancel_not_found")
    async def test_cancel_unknown_raises_not_found(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._require(harness, "supports_trading", "cancel_not_found")
        with pytest.raises(NotFound):
            await client.cancel_order(symbol=harness.symbol, order_id=self.unknown_order_id())
        with pytest.raises(NotFound):
            await client.cancel_order(symbol=harness.symbol, client_order_id=self.new_client_order_id())

    @capability("duplicate")
    async def test_duplicate_client_order_id_never_makes_two_orders(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._require(harness, "supports_trading", "duplicate")
        order, report = await self._place_resting(client, harness)
        try:
            try:
                again = await client.place_order(harness.resting_order(order.client_order_id))
            except DuplicateOrder:
                pass
            else:
                # The adapter resolved the duplicate to the existing order: fine, if it is that order.
                assert again.order_id == report.order_id, "a reused client order id created a second order"
            # Either answer is acceptable only if the venue itself still holds exactly one order.
            held = await harness.venue_order_count(order.client_order_id)
            assert held == 1, f"the venue holds {held} orders under one client order id"
            same = [
                o
                for o in await client.get_orders(OrderFilter(symbol=harness.symbol))
                if o.client_order_id == order.client_order_id
            ]
            assert len(same) == 1, f"{len(same)} open orders share one client order id"
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("insufficient_funds")
    async def test_insufficient_funds(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_insufficient_funds", "insufficient_funds")
        coid = self.new_client_order_id()
        with pytest.raises(InsufficientFunds):
            await client.place_order(harness.unfundable_order(coid))
        if harness.supports_trading:
            listed = await client.get_orders(OrderFilter(symbol=harness.symbol))
            assert coid not in {o.client_order_id for o in listed}

    @capability("rate_limited")
    async def test_rate_limited(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_rate_limit", "rate_limited")
        before = await harness.rate_limits_served()
        await harness.rate_limit_next(1)
        if harness.rate_limit_retries:
            balances = await asyncio.wait_for(client.get_balances(), harness.timeout)
            assert isinstance(balances, list)
        else:
            with pytest.raises(RateLimited) as info:
                await client.get_balances()
            assert info.value.retry_after is not None and info.value.retry_after >= 0
            assert info.value.retry_safe
            assert isinstance(await client.get_balances(), list)  # and the next call goes through
        # A success proves nothing unless the venue really answered 429 once (and only once: the
        # call after the retry, or the next call, must not have been limited again).
        served = await harness.rate_limits_served() - before
        assert served == 1, f"the venue served {served} rate-limited answers, expected exactly 1"

    @capability("book_snapshot")
    async def test_book_snapshot(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_order_book", "book_snapshot")
        for depth in (1, 5):
            book = await asyncio.wait_for(client.get_order_book(harness.symbol, depth), harness.timeout)
            assert_valid_book(book, harness.symbol, depth)
            assert book.bids and book.asks, "the fake's book must have both sides"

    @capability("book_resync")
    async def test_book_stream_resyncs(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_order_book", "book_resync")
        self._require(harness, "supports_book_resync", "book_resync")
        depth = 10
        stream = client.subscribe_order_book(harness.symbol, depth)
        try:
            await self._until(stream, harness, await harness.expected_book(depth), depth)
            disturbances: tuple[tuple[str, Callable[[], Awaitable[None]]], ...] = (
                ("drop_streams", harness.drop_streams),
                ("make_book_gap", harness.make_book_gap),
            )
            for name, disturb in disturbances:
                before = await harness.expected_book(depth)
                await disturb()
                want = await harness.expected_book(depth)
                assert not _same_book(before, want), f"harness.{name} must change the venue's book"
                await self._until(stream, harness, want, depth)
        finally:
            await stream.aclose()

    @capability("trade_stream")
    async def test_trade_stream(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trades", "trade_stream")
        stream = client.subscribe_trades(harness.symbol)

        async def emit() -> None:
            # Keep trading until the client sees one: the subscription may take a moment to go live.
            while True:
                await harness.emit_trade()
                await asyncio.sleep(0.05)

        emitter = asyncio.create_task(emit())
        try:
            trade = await asyncio.wait_for(anext(aiter(stream)), harness.timeout)
        finally:
            emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await emitter
            await stream.aclose()
        assert isinstance(trade, trade_pb2.Trade)
        assert trade.symbol == harness.symbol and trade.venue == harness.venue
        assert Decimal(trade.price) > 0 and Decimal(trade.quantity) > 0
        assert trade.trade_id, "a public trade needs the venue's trade id (de-duplication)"

    @capability("health")
    async def test_health(self, harness: ConformanceHarness, client: VenueClient) -> None:
        report = await asyncio.wait_for(client.health(), harness.timeout)
        assert report.venue == harness.venue
        assert report.reachable, f"unreachable: {report.last_error}"
        assert report.latency_ms >= 0

    @capability("close")
    async def test_close_ends_streams_and_is_idempotent(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        stream: Stream[Any] | None = None
        if harness.supports_trades:
            stream = client.subscribe_trades(harness.symbol)
        elif harness.supports_order_book:
            stream = client.subscribe_order_book(harness.symbol, 5)
        reader: asyncio.Task[None] | None = None
        if stream is not None:
            live = stream

            async def read() -> None:
                async for _ in live:
                    pass

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.05)  # let the subscription start
        await asyncio.wait_for(client.aclose(), harness.timeout)
        if reader is not None:
            done, _ = await asyncio.wait({reader}, timeout=harness.timeout)
            if not done:
                reader.cancel()
                raise AssertionError("an active stream kept running after aclose()")
            exc = reader.exception()
            # Ending or raising are both fine; what matters is that the reader was released.
            assert exc is None or isinstance(exc, Exception)
        await asyncio.wait_for(client.aclose(), harness.timeout)  # second close: a no-op
