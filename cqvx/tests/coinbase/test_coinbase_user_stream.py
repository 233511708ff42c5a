"""The user stream's reconciliation edges, the bounded executions queue, and cancel-all failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from structlog.testing import capture_logs

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import OrderRejected, Unavailable
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.types import Stream
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig

MakeConfig = Callable[..., CoinbaseConfig]
Reports = asyncio.Queue[execution_pb2.ExecutionReport]


def limit(coid: str, price: str = "40000", qty: str = "0.02") -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity=qty,
        price=price,
    )


@pytest.fixture
async def fast(fake: FakeCoinbase, make_config: MakeConfig, ec_pem: str) -> AsyncIterator[CoinbaseClient]:
    """A client whose private budget does not slow down placing a hundred orders."""
    async with CoinbaseClient(make_config(fake, secret=ec_pem, private_rps=2000.0)) as c:
        yield c


async def _pump(stream: Stream[execution_pb2.ExecutionReport], queue: Reports) -> None:
    async for rep in stream:
        queue.put_nowait(rep)


async def _until(queue: Reports, pred: Callable[[execution_pb2.ExecutionReport], bool]) -> None:
    async with asyncio.timeout(3):
        while not pred(await queue.get()):
            pass


async def _snapshots(client: CoinbaseClient, n: int) -> None:
    async with asyncio.timeout(3):
        while client.streams.snapshots_completed < n:  # noqa: ASYNC110 - polling the client's state
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("open_at_reconnect", [50, 100])
async def test_snapshot_of_whole_batches_ends_and_reconciles(
    fake: FakeCoinbase, fast: CoinbaseClient, open_at_reconnect: int
) -> None:
    """Exactly 50 (or 100) open orders make full batches only: the snapshot must still end."""
    queue: Reports = asyncio.Queue()
    stream = fast.subscribe_executions()
    task = asyncio.create_task(_pump(stream, queue))
    try:
        await fake.wait_subscribed("user")
        await _snapshots(fast, 1)
        reports = [await fast.place_order(limit(f"b-{i}")) for i in range(open_at_reconnect + 1)]
        gone = reports[0].order_id
        # Its fill is never announced (the update was lost) and the connection drops: the snapshot
        # after the reconnect lists the other orders, in full batches of 50, and not this one.
        await fake.fill(gone, notify=False)
        await fake.drop_kind("user")
        await _snapshots(fast, 2)
        async with asyncio.timeout(3):
            while (got := await queue.get()).execution_type != execution_pb2.EXECUTION_TYPE_TRADE:
                pass
        assert got.order_id == gone and got.order_status == order_pb2.ORDER_STATUS_FILLED
        assert fake.requests_to(f"/api/v3/brokerage/orders/historical/{gone}"), "no REST reconciliation"
    finally:
        task.cancel()
        await stream.aclose()


async def test_order_placed_and_filled_while_disconnected_is_reported(
    fake: FakeCoinbase, fast: CoinbaseClient
) -> None:
    queue: Reports = asyncio.Queue()
    stream = fast.subscribe_executions()
    task = asyncio.create_task(_pump(stream, queue))
    try:
        await fake.wait_subscribed("user")
        await _snapshots(fast, 1)
        fake.refused_ws.add("user")
        await fake.drop_kind("user")
        # Placed and fully filled while the user stream is down: no WebSocket message ever names it.
        rep = await fast.place_order(limit("offline-1"))
        await fake.fill(rep.order_id)
        fake.refused_ws.discard("user")
        async with asyncio.timeout(3):
            while True:
                got = await queue.get()
                if got.execution_type == execution_pb2.EXECUTION_TYPE_TRADE:
                    break
        assert got.order_id == rep.order_id and got.client_order_id == "offline-1"
        assert got.last_quantity == "0.02" and got.order_status == order_pb2.ORDER_STATUS_FILLED
    finally:
        task.cancel()
        await stream.aclose()


async def test_slow_consumer_gets_unavailable_after_every_queued_report(
    fake: FakeCoinbase, make_config: MakeConfig, ec_pem: str
) -> None:
    cfg = make_config(fake, secret=ec_pem, executions_queue_max=3, private_rps=2000.0)
    async with CoinbaseClient(cfg) as client:
        slow = client.subscribe_executions()
        witness: Reports = asyncio.Queue()
        wstream = client.subscribe_executions()
        wtask = asyncio.create_task(_pump(wstream, witness))
        try:
            await fake.wait_subscribed("user")

            async def read_one() -> execution_pb2.ExecutionReport:
                return await anext(aiter(slow))

            first = asyncio.create_task(read_one())  # subscribes the slow stream
            await _snapshots(client, 1)
            ids = [(await client.place_order(limit(f"s-{i}"))).order_id for i in range(6)]
            assert (await asyncio.wait_for(first, 3)).order_id == ids[0]
            # Every report has been dispatched once the witness (same dispatch) has all six.
            for oid in ids:
                await _until(witness, lambda r, oid=oid: r.order_id == oid)  # type: ignore[misc]
            got = []
            with pytest.raises(Unavailable, match="overflow") as info:
                async with asyncio.timeout(3):
                    async for rep in slow:
                        got.append(rep.order_id)
            assert got == ids[1:4], "the reports queued before the overflow come first, in order"
            assert info.value.retry_safe
            # The other subscriber is unaffected.
            await client.place_order(limit("after"))
            await _until(witness, lambda r: r.client_order_id == "after")
        finally:
            wtask.cancel()
            await wstream.aclose()
            await slow.aclose()


async def test_cancel_all_cancels_the_rest_then_raises_with_failures(
    fake: FakeCoinbase, client: CoinbaseClient
) -> None:
    ids = [(await client.place_order(limit(f"ca-{i}"))).order_id for i in range(4)]
    fake.cancel_failures[ids[1]] = "COMMANDER_REJECTED_CANCEL_ORDER"
    fake.cancel_failures[ids[2]] = "ORDER_IS_FULLY_FILLED"  # closed on its own: not a failure
    with capture_logs() as logs, pytest.raises(OrderRejected) as info:
        await client.cancel_all_orders("BTC-USD")
    err = info.value
    assert err.retry_safe and err.code == "COMMANDER_REJECTED_CANCEL_ORDER"
    assert [oid for oid, _ in err.failures] == [ids[1]]
    assert isinstance(err.failures[0][1], OrderRejected)
    assert sorted(o.order_id for o in err.completed) == sorted([ids[0], ids[3]])
    assert all(o.status == order_pb2.ORDER_STATUS_PENDING_CANCEL for o in err.completed)
    # The orders after the failure were cancelled too.
    assert fake.orders[ids[3]]["status"] == "CANCELLED" and fake.orders[ids[0]]["status"] == "CANCELLED"
    assert fake.orders[ids[1]]["status"] == "OPEN"
    failed = [e for e in logs if e["event"] == "coinbase.cancel_all_failed"]
    assert [e["order_id"] for e in failed] == [ids[1]]
    assert any(e["event"] == "coinbase.cancel_all_order_closed" and e["order_id"] == ids[2] for e in logs)
    # Once the venue lets it go, a second call finishes the job and returns normally.
    fake.cancel_failures.clear()
    again = await client.cancel_all_orders("BTC-USD")
    assert {o.order_id for o in again} == {ids[1], ids[2]}


async def test_cancel_all_without_failures_returns_the_cancelled(
    fake: FakeCoinbase, client: CoinbaseClient
) -> None:
    ids = {(await client.place_order(limit(f"ok-{i}"))).order_id for i in range(3)}
    done = await client.cancel_all_orders()
    assert {o.order_id for o in done} == ids
    assert all(fake.orders[i]["status"] == "CANCELLED" for i in ids)
