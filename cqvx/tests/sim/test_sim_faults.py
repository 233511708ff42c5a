"""Fault injection: ambiguous outcomes, rejections, outages, rate limits, dropped streams, latency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import (
    DuplicateOrder,
    InsufficientFunds,
    NotFound,
    RateLimited,
    Timeout,
    Unavailable,
)
from cqvx.venues.sim import RateLimit, SimVenue

Mk = Callable[..., order_pb2.Order]


async def test_ambiguous_placement_is_found_by_client_order_id(sim: SimVenue, mk: Mk) -> None:
    executions = sim.subscribe_executions()
    sim.faults.ambiguous_next(1)
    with pytest.raises(Timeout):
        await sim.place_order(mk("amb", "buy", "0.1", "59000"))
    found = await sim.get_order(client_order_id="amb")
    assert found.status == order_pb2.ORDER_STATUS_OPEN and found.order_id
    new = await executions.__anext__()
    assert new.client_order_id == "amb" and new.execution_type == execution_pb2.EXECUTION_TYPE_NEW
    # A blind re-send is answered as a duplicate; the original stays the only order.
    with pytest.raises(DuplicateOrder):
        await sim.place_order(mk("amb", "buy", "0.1", "59000"))
    assert [o.client_order_id for o in await sim.get_orders()] == ["amb"]
    await executions.aclose()


async def test_ambiguous_cancel_took_effect(sim: SimVenue, mk: Mk) -> None:
    await sim.place_order(mk("c", "buy", "0.1", "59000"))
    sim.faults.ambiguous_next(1, "cancel")
    with pytest.raises(Timeout):
        await sim.cancel_order(client_order_id="c")
    assert (await sim.get_order(client_order_id="c")).status == order_pb2.ORDER_STATUS_CANCELLED


async def test_injected_rejections_create_nothing(sim: SimVenue, mk: Mk) -> None:
    sim.faults.reject_next(2, InsufficientFunds("margin locked", venue="sim"))
    for cid in ("r1", "r2"):
        with pytest.raises(InsufficientFunds):
            await sim.place_order(mk(cid, "buy", "0.1", "59000"))
    assert await sim.get_orders() == []
    assert (await sim.place_order(mk("r1", "buy", "0.1", "59000"))).order_id


async def test_unavailable_for_a_period(sim: SimVenue, mk: Mk) -> None:
    sim.faults.unavailable_for(5)
    with pytest.raises(Unavailable):
        await sim.place_order(mk("u", "buy", "0.1", "59000"))
    with pytest.raises(Unavailable):
        await sim.get_balances()
    assert not (await sim.health()).reachable
    stream = sim.subscribe_trades("BTC-USDT")
    with pytest.raises(Unavailable):
        await stream.__anext__()
    await sim.run_for(5)
    assert (await sim.health()).reachable
    assert (await sim.place_order(mk("u", "buy", "0.1", "59000"))).order_id


async def test_emulated_rate_limit(make_sim: Callable[..., SimVenue], mk: Mk) -> None:
    async with make_sim(rate_limit=RateLimit(per_second=5, burst=5)) as sim:
        for i in range(5):
            await sim.place_order(mk(f"o{i}", "buy", "0.1", "59000"))
        with pytest.raises(RateLimited) as info:
            await sim.place_order(mk("o5", "buy", "0.1", "59000"))
        assert info.value.retry_after is not None and 0 < info.value.retry_after <= 0.2 + 1e-9
        assert info.value.retry_safe
        with pytest.raises(RateLimited):  # a batch weighs its size
            await sim.place_orders([mk(f"x{i}", "buy", "0.1", "59000") for i in range(3)])
        await sim.run_for(1)
        assert (await sim.place_order(mk("o5", "buy", "0.1", "59000"))).order_id
        assert len(await sim.get_orders()) == 6


async def test_dropped_streams_end_with_unavailable_then_resubscribe(sim: SimVenue, mk: Mk) -> None:
    executions = sim.subscribe_executions()
    book = sim.subscribe_order_book("BTC-USDT", 5)
    await sim.place_order(mk("d1", "buy", "0.1", "59000"))
    sim.faults.drop_streams()
    # What had arrived is still delivered, then the stream ends.
    assert (await executions.__anext__()).client_order_id == "d1"
    with pytest.raises(Unavailable):
        await executions.__anext__()
    with pytest.raises(StopAsyncIteration):
        await executions.__anext__()
    await book.__anext__()
    with pytest.raises(Unavailable):
        await book.__anext__()
    again = sim.subscribe_executions()
    await sim.cancel_order(client_order_id="d1")
    assert (await again.__anext__()).execution_type == execution_pb2.EXECUTION_TYPE_CANCELLED
    await again.aclose()


async def test_dropped_streams_resume_with_a_fresh_snapshot(sim: SimVenue) -> None:
    from decimal import Decimal

    book = sim.subscribe_order_book("BTC-USDT", 2)
    first = await book.__anext__()
    sim.set_price("BTC-USDT", Decimal("60001"))  # published ...
    sim.set_price("BTC-USDT", Decimal("60002"), publish=False)
    sim.faults.drop_streams(resume=True)  # ... but lost in transit; a fresh snapshot follows
    fresh = await book.__anext__()
    assert fresh.bids[0].price == "60001.99" and fresh.sequence > first.sequence
    sim.faults.book_gap("BTC-USDT", missing=3)
    gapped = await book.__anext__()
    assert gapped.sequence == fresh.sequence + 3
    await book.aclose()


async def test_slow_account_stream_ends_instead_of_losing_fills(
    make_sim: Callable[..., SimVenue], mk: Mk
) -> None:
    async with make_sim(stream_queue_size=3) as sim:
        executions = sim.subscribe_executions()
        for i in range(4):
            await sim.place_order(mk(f"s{i}", "buy", "0.1", "59000"))
        got = [await executions.__anext__() for _ in range(3)]
        assert [r.client_order_id for r in got] == ["s0", "s1", "s2"]
        with pytest.raises(Unavailable):
            await executions.__anext__()


async def test_latency_delays_the_effect_in_simulated_time(sim: SimVenue, mk: Mk) -> None:
    sim.faults.latency = 0.5
    start = sim.clock.now_ns()
    task = asyncio.create_task(sim.place_order(mk("lat", "buy", "0.1", "59000")))
    await asyncio.sleep(0)
    assert not task.done()
    await sim.run_for(1)
    report = await task
    assert report.transact_time.ToNanoseconds() == start + 500_000_000


# -- slow acknowledgement and lost replies (issue 11) -------------------------------------------------


async def _settle() -> None:
    """Let just-created tasks reach the venue (the SimClock only moves when the test moves it)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_slow_ack_creates_the_order_only_when_acknowledged(sim: SimVenue, mk: Mk) -> None:
    sim.faults.slow_ack_next(1, seconds=12)
    start = sim.clock.now_ns()
    task = asyncio.create_task(sim.place_order(mk("slow", "buy", "0.1", "59000")))
    await _settle()
    await sim.run_for(11)
    assert not task.done() and sim.faults.pending_acks == 1
    # Not acknowledged yet: the venue does not know the order, a lookup says so.
    with pytest.raises(NotFound):
        await sim.get_order(client_order_id="slow")
    assert await sim.get_orders() == []
    await sim.run_for(1)
    report = await task
    assert report.transact_time.ToNanoseconds() == start + 12_000_000_000
    assert (await sim.get_order(client_order_id="slow")).status == order_pb2.ORDER_STATUS_OPEN
    assert sim.faults.pending_acks == 0


async def test_slow_ack_lands_even_if_the_caller_gave_up(sim: SimVenue, mk: Mk) -> None:
    sim.faults.slow_ack_next(1, seconds=12)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # real time; the venue's clock does not move meanwhile
            await sim.place_order(mk("late", "buy", "0.1", "59000"))
    with pytest.raises(NotFound):
        await sim.get_order(client_order_id="late")
    await sim.run_for(12)
    assert (await sim.get_order(client_order_id="late")).status == order_pb2.ORDER_STATUS_OPEN


async def test_replacing_with_the_same_client_order_id_makes_the_late_one_a_duplicate(
    sim: SimVenue, mk: Mk
) -> None:
    sim.faults.slow_ack_next(1, seconds=12)
    late = asyncio.create_task(sim.place_order(mk("lvl-1", "buy", "0.1", "59000")))
    await _settle()
    await sim.run_for(1)
    again = await sim.place_order(mk("lvl-1", "buy", "0.1", "59000"))  # the same id, placed again
    await sim.run_for(11)
    with pytest.raises(DuplicateOrder):
        await late
    assert [o.order_id for o in await sim.get_orders()] == [again.order_id]


async def test_slow_ack_every_kth_placement(sim: SimVenue, mk: Mk) -> None:
    sim.faults.slow_ack_every(3, seconds=5)
    tasks = [asyncio.create_task(sim.place_order(mk(f"k{i}", "buy", "0.1", "59000"))) for i in range(7)]
    await _settle()
    await sim.run_for(0.1)
    assert [t.done() for t in tasks] == [True, True, False, True, True, False, True]
    assert sorted(o.client_order_id for o in await sim.get_orders()) == ["k0", "k1", "k3", "k4", "k6"]
    await sim.run_for(5)
    assert all(t.done() and t.exception() is None for t in tasks)
    assert len(await sim.get_orders()) == 7


async def test_slow_ack_in_a_batch_delays_the_reply_not_the_other_items(sim: SimVenue, mk: Mk) -> None:
    sim.faults.slow_ack_every(2, seconds=3)
    batch = asyncio.create_task(sim.place_orders([mk(f"b{i}", "buy", "0.1", "59000") for i in range(3)]))
    await _settle()
    await sim.run_for(0.1)
    assert not batch.done()
    assert sorted(o.client_order_id for o in await sim.get_orders()) == ["b0", "b2"]
    await sim.run_for(3)
    results = await batch
    assert [r.client_order_id for r in results if not isinstance(r, Exception)] == ["b0", "b1", "b2"]


async def test_lost_reply_after_a_delay_then_found(sim: SimVenue, mk: Mk) -> None:
    sim.faults.ambiguous_next(1, delay=10)
    task = asyncio.create_task(sim.place_order(mk("lost", "buy", "0.1", "59000")))
    await _settle()
    await sim.run_for(1)
    # The venue acted at once; the caller only learns (nothing) when its wait runs out.
    assert (await sim.get_order(client_order_id="lost")).status == order_pb2.ORDER_STATUS_OPEN
    assert not task.done()
    await sim.run_for(9)
    with pytest.raises(Timeout):
        await task


async def test_lost_reply_every_kth_placement(sim: SimVenue, mk: Mk) -> None:
    sim.faults.lost_reply_every(2)
    outcomes = []
    for i in range(4):
        try:
            await sim.place_order(mk(f"e{i}", "buy", "0.1", "59000"))
            outcomes.append("ok")
        except Timeout:
            outcomes.append("lost")
    assert outcomes == ["ok", "lost", "ok", "lost"]
    assert len(await sim.get_orders()) == 4  # every one acted
    sim.faults.clear()
    await sim.place_order(mk("e4", "buy", "0.1", "59000"))


async def test_closing_the_venue_drops_pending_acks(make_sim: Callable[..., SimVenue], mk: Mk) -> None:
    sim = make_sim()
    async with sim:
        sim.faults.slow_ack_next(1, seconds=5)
        task = asyncio.create_task(sim.place_order(mk("gone", "buy", "0.1", "59000")))
        await _settle()
        await asyncio.sleep(0)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.faults.pending_acks == 0


def test_faults_from_the_config_section() -> None:
    from cqvx.venues import registry
    from cqvx.venues.registry import VenueConfigError

    venue = registry.build(
        "sim",
        {"faults": {"slow_ack": {"every": 8, "seconds": 12}, "lost_reply": {"every": 20, "delay": 1}}},
    )
    assert isinstance(venue, SimVenue)
    assert venue.faults._slow_every == (8, 12.0) and venue.faults._lost_every == (20, 1.0)
    with pytest.raises(VenueConfigError, match=r"faults\.slow_ack\.every"):
        registry.build("sim", {"faults": {"slow_ack": {"every": 0, "seconds": 1}}})
    with pytest.raises(VenueConfigError, match=r"faults\.bogus"):
        registry.build("sim", {"faults": {"bogus": {}}})
