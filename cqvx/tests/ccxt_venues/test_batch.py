"""Batch place/cancel of the ccxt adapter against the fake Binance USD-M (``batchOrders``): per-item
results matched by id whatever order ccxt returns them in, the batch size from the quirk table, and
an unreadable batch reply resolved by client order id, never re-sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import InsufficientFunds, InvalidRequest, NotFound, Timeout
from cqvx.testing.fake_binance.harness import BinanceCcxtHarness
from cqvx.venues.ccxt import CcxtClient


@pytest.fixture
async def env() -> AsyncIterator[tuple[BinanceCcxtHarness, CcxtClient]]:
    h = BinanceCcxtHarness()
    await h.start()
    client = await h.new_client()
    assert isinstance(client, CcxtClient)
    await client.start()
    try:
        yield h, client
    finally:
        await client.aclose()
        await h.close()


def _batches(h: BinanceCcxtHarness, method: str) -> int:
    return len(h.fake.requests_to("/fapi/v1/batchOrders", method))


async def test_seven_orders_go_in_two_batches_with_per_item_results(
    env: tuple[BinanceCcxtHarness, CcxtClient],
) -> None:
    h, client = env
    assert client.quirks.batch_max == (5, 10)
    orders = [h.resting_order(f"bp{i}") for i in range(7)]
    orders[1] = h.unfundable_order("bpbad")
    orders[4].quantity = "0.0001234"  # off the lot step: refused before sending
    results = await client.place_orders(orders)
    assert _batches(h, "POST") == 2  # 6 sendable items: 5 + 1
    assert isinstance(results[1], InsufficientFunds)
    assert isinstance(results[4], InvalidRequest)
    good = [
        (o, r) for o, r in zip(orders, results, strict=True) if isinstance(r, execution_pb2.ExecutionReport)
    ]
    assert [o.client_order_id for o, _ in good] == ["bp0", "bp2", "bp3", "bp5", "bp6"]
    assert all(r.client_order_id == o.client_order_id for o, r in good)
    for o, _ in good:
        assert await h.venue_order_count(o.client_order_id) == 1

    refs = [order_pb2.OrderRef(symbol=h.symbol, order_id=r.order_id) for _, r in good]
    refs.insert(2, order_pb2.OrderRef(symbol=h.symbol, order_id="999999"))
    cancelled = await client.cancel_orders(refs)
    assert _batches(h, "DELETE") == 1
    assert isinstance(cancelled[2], NotFound)
    ids = [c.order_id for c in cancelled if isinstance(c, order_pb2.Order)]
    assert ids == [r.order_id for _, r in good]
    assert all(
        c.status == order_pb2.ORDER_STATUS_CANCELLED for c in cancelled if isinstance(c, order_pb2.Order)
    )


async def test_lost_batch_reply_is_looked_up_by_client_order_id_not_resent(
    env: tuple[BinanceCcxtHarness, CcxtClient],
) -> None:
    h, client = env
    h.fake.fail("/fapi/v1/batchOrders", status=502, method="POST", after=True)  # acted, reply lost
    orders = [h.resting_order("lost1"), h.resting_order("lost2")]
    results = await client.place_orders(orders)
    assert _batches(h, "POST") == 1  # never re-sent
    for o, r in zip(orders, results, strict=True):
        assert isinstance(r, execution_pb2.ExecutionReport), r
        assert r.execution_type == execution_pb2.EXECUTION_TYPE_STATUS
        assert r.client_order_id == o.client_order_id
        assert await h.venue_order_count(o.client_order_id) == 1


async def test_batch_that_never_arrived_stays_unresolved(env: tuple[BinanceCcxtHarness, CcxtClient]) -> None:
    h, client = env
    h.fake.fail("/fapi/v1/batchOrders", status=502, method="POST")  # not acted
    results = await client.place_orders([h.resting_order("gone1"), h.resting_order("gone2")])
    assert all(isinstance(r, Timeout) for r in results)  # unknown, never "rejected"
    assert await h.venue_order_count("gone1") == 0
