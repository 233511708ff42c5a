"""Batch place, batch cancel, cancel-all and positions, per the contracts in :mod:`cqvx.client`.

* ``place_orders`` / ``cancel_orders``: one result per item, in order; a failed item is its taxonomy
  error in the list (never an exception sinking the batch) and the other items take effect.
* ``cancel_all_orders(symbol, side)``: cancels exactly the open orders of that symbol (and side) and
  returns them (CANCELLED, or PENDING_CANCEL on venues that cancel asynchronously); others stay open.
* ``get_positions``: after a perpetual fill, one position with the fill's side, size and entry price;
  flat is either no position for the symbol or one of size zero.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import SupportsBatchOrders, SupportsCancelAll, SupportsPositions, VenueClient
from cqvx.errors import InsufficientFunds, NotFound, VenueError
from cqvx.testing.conformance.base import SuiteBase
from cqvx.testing.conformance.capabilities import capability
from cqvx.testing.conformance.harness import ConformanceHarness, OtherSymbolHarness, PositionHarness
from cqvx.types import OPEN_STATUSES, OrderFilter

__all__ = ["AccountSuite"]

_ACCEPTED = (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PENDING_NEW)
_CANCELLING = (order_pb2.ORDER_STATUS_CANCELLED, order_pb2.ORDER_STATUS_PENDING_CANCEL)


def _is_flat(positions: list[position_pb2.Position], symbol: str) -> bool:
    return all(Decimal(p.quantity or "0") == 0 for p in positions if p.symbol == symbol)


class AccountSuite(SuiteBase):
    """``batch_place``, ``batch_cancel``, ``cancel_all`` and ``positions``."""

    def _need(self, harness: ConformanceHarness, client: VenueClient, proto: type, cap: str) -> None:
        self._require(harness, "supports_trading", cap)
        if not isinstance(client, proto):
            pytest.skip(
                f"{harness.venue or self.venue}: capability '{cap}' not supported "
                f"(the client does not implement {proto.__name__})"
            )

    async def _open_ids(self, client: VenueClient, harness: ConformanceHarness) -> set[str]:
        return {o.order_id for o in await client.get_orders(OrderFilter(symbol=harness.symbol))}

    @capability("batch_place")
    async def test_batch_place_answers_per_item(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._need(harness, client, SupportsBatchOrders, "batch_place")
        self._require(harness, "supports_insufficient_funds", "batch_place")
        assert isinstance(client, SupportsBatchOrders)
        good1 = harness.resting_order(self.new_client_order_id())
        bad = harness.unfundable_order(self.new_client_order_id())
        good2 = harness.resting_order(self.new_client_order_id())
        results = await client.place_orders([good1, bad, good2])
        placed = [r.order_id for r in results if isinstance(r, execution_pb2.ExecutionReport)]
        try:
            assert len(results) == 3, f"{len(results)} results for 3 orders"
            for order, result in ((good1, results[0]), (good2, results[2])):
                assert isinstance(result, execution_pb2.ExecutionReport), f"a good item failed: {result!r}"
                assert result.client_order_id == order.client_order_id, "results out of order"
                assert result.order_id
                assert result.order_status in _ACCEPTED
                assert await harness.venue_order_count(order.client_order_id) == 1
            assert isinstance(results[1], InsufficientFunds), (
                f"the refused item should be InsufficientFunds, got {results[1]!r}"
            )
            open_ids = await self._open_ids(client, harness)
            assert set(placed) <= open_ids, "a placed item is not open at the venue"
            listed = {o.client_order_id for o in await client.get_orders(OrderFilter(symbol=harness.symbol))}
            assert bad.client_order_id not in listed
        finally:
            for order_id in placed:
                await self._cleanup(client, harness, order_id)

    @capability("batch_cancel")
    async def test_batch_cancel_answers_per_item(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._need(harness, client, SupportsBatchOrders, "batch_cancel")
        assert isinstance(client, SupportsBatchOrders)
        _, first = await self._place_resting(client, harness)
        second_order, second = await self._place_resting(client, harness)
        refs = [
            order_pb2.OrderRef(symbol=harness.symbol, order_id=first.order_id),
            order_pb2.OrderRef(symbol=harness.symbol, order_id=self.unknown_order_id()),
            order_pb2.OrderRef(symbol=harness.symbol, client_order_id=second_order.client_order_id),
        ]
        try:
            results = await client.cancel_orders(refs)
            assert len(results) == 3, f"{len(results)} results for 3 refs"
            assert isinstance(results[1], NotFound), f"an unknown order gave {results[1]!r}, not NotFound"
            for expected, result in ((first, results[0]), (second, results[2])):
                assert isinstance(result, order_pb2.Order), f"a good item failed: {result!r}"
                assert result.order_id == expected.order_id, "results out of order"
                await self._wait_cancelled(client, harness, result)
            open_ids = await self._open_ids(client, harness)
            assert first.order_id not in open_ids and second.order_id not in open_ids
        finally:
            await self._cleanup(client, harness, first.order_id)
            await self._cleanup(client, harness, second.order_id)

    @capability("cancel_all")
    async def test_cancel_all_cancels_only_the_symbols_open_orders(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._need(harness, client, SupportsCancelAll, "cancel_all")
        assert isinstance(client, SupportsCancelAll)
        _, a = await self._place_resting(client, harness)
        _, b = await self._place_resting(client, harness)
        other: execution_pb2.ExecutionReport | None = None
        if isinstance(harness, OtherSymbolHarness):
            other = await client.place_order(harness.other_resting_order(self.new_client_order_id()))
        try:
            buy = (a.side or harness.resting_order("x").side) == order_pb2.ORDER_SIDE_BUY
            opposite = order_pb2.ORDER_SIDE_SELL if buy else order_pb2.ORDER_SIDE_BUY
            none = await client.cancel_all_orders(harness.symbol, opposite)
            assert not {o.order_id for o in none} & {a.order_id, b.order_id}, "cancel_all ignored the side"
            open_before = await self._open_ids(client, harness)
            assert {a.order_id, b.order_id} <= open_before, "cancel_all of the other side cancelled ours"
            cancelled = await client.cancel_all_orders(harness.symbol)
            got = {o.order_id for o in cancelled}
            assert got == open_before, (
                f"cancel_all returned {sorted(got)}, the open orders were {sorted(open_before)}"
            )
            for o in cancelled:
                assert o.symbol == harness.symbol
                assert o.status in _CANCELLING, f"status {order_pb2.OrderStatus.Name(o.status)}"
                await self._wait_cancelled(client, harness, o)
            assert not {a.order_id, b.order_id} & await self._open_ids(client, harness)
            if other is not None:
                kept = await client.get_order(symbol=other.symbol, order_id=other.order_id)
                assert kept.status in OPEN_STATUSES, "cancel_all(symbol) cancelled another symbol's order"
        finally:
            if other is not None:
                await self._cleanup_on(client, harness, other.symbol, other.order_id)

    async def _cleanup_on(
        self, client: VenueClient, harness: ConformanceHarness, symbol: str, oid: str
    ) -> None:
        with contextlib.suppress(VenueError):
            await client.cancel_order(symbol=symbol, order_id=oid)

    @capability("positions")
    async def test_position_after_a_perpetual_fill(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._need(harness, client, SupportsPositions, "positions")
        if not isinstance(harness, PositionHarness):
            self._not_covered(harness, "positions", "the harness names no perpetual (no position_order hook)")
        assert isinstance(client, SupportsPositions) and isinstance(harness, PositionHarness)
        symbol = harness.position_symbol
        before = await client.get_positions([symbol])
        assert _is_flat(before, symbol), f"the account is not flat on {symbol} to begin with: {before}"
        size = Decimal("0.01")
        opened = await client.place_order(
            harness.position_order(self.new_client_order_id(), order_pb2.ORDER_SIDE_BUY, size)
        )
        filled = await self._poll(
            harness,
            lambda: client.get_order(symbol=symbol, order_id=opened.order_id),
            lambda o: o.status == order_pb2.ORDER_STATUS_FILLED,
            "the position order did not fill",
        )
        positions = await self._poll(
            harness,
            lambda: client.get_positions([symbol]),
            lambda ps: not _is_flat(ps, symbol),
            f"no position on {symbol} after a fill",
        )
        mine = [p for p in positions if p.symbol == symbol and Decimal(p.quantity or "0") != 0]
        assert len(mine) == 1, f"{len(mine)} positions on {symbol}"
        pos = mine[0]
        assert pos.side == position_pb2.POSITION_SIDE_LONG, f"side {position_pb2.PositionSide.Name(pos.side)}"
        assert Decimal(pos.quantity) == Decimal(filled.filled_quantity) == size, f"size {pos.quantity}"
        assert Decimal(pos.entry_price) == Decimal(filled.average_fill_price), (
            f"entry {pos.entry_price}, fill price {filled.average_fill_price}"
        )
        closed = await client.place_order(
            harness.position_order(self.new_client_order_id(), order_pb2.ORDER_SIDE_SELL, size)
        )
        await self._poll(
            harness,
            lambda: client.get_order(symbol=symbol, order_id=closed.order_id),
            lambda o: o.status == order_pb2.ORDER_STATUS_FILLED,
            "the closing order did not fill",
        )
        await self._poll(
            harness,
            lambda: client.get_positions([symbol]),
            lambda ps: _is_flat(ps, symbol),
            f"the position on {symbol} is not flat after closing it",
        )
