from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from cqc.venues.v1 import order_pb2, venue_pb2
from cqvx.errors import (
    InsufficientFunds,
    NotFound,
    OrderRejected,
    RateLimited,
    Timeout,
    Unavailable,
)
from cqvx.testing.mock import MockVenue
from opensqt.engine.executor import Confirmed, OrderExecutor, Rejected, Unresolved, VenueOrderState

SYM = "BTC-USD"


def _order(cid: str, price: str = "100") -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=cid,
        symbol=SYM,
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_GTC,
        quantity="0.01",
        price=price,
        post_only=True,
    )


class _Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _executor(mock: MockVenue, **kw: Any) -> tuple[OrderExecutor, _Sleeps]:
    sleeps = _Sleeps()
    return OrderExecutor(mock, sleep=sleeps, retry_delay=0.5, **kw), sleeps


def _single(mock: MockVenue) -> MockVenue:
    """A mock that does not advertise batch placement."""
    mock._capabilities = frozenset({venue_pb2.CAPABILITY_ORDER_STREAM})
    return mock


async def test_confirmed_placement() -> None:
    mock = _single(MockVenue())
    ex, _ = _executor(mock)
    (out,) = await ex.place([_order("osqa")])
    assert isinstance(out, Confirmed) and out.state.order_id.startswith("mock-")
    assert out.state.status == order_pb2.ORDER_STATUS_OPEN


async def test_rate_limited_is_retried_with_the_same_client_order_id() -> None:
    mock = _single(MockVenue())
    mock.on("place_order", RateLimited("slow down", retry_after=0.25), times=2)
    ex, sleeps = _executor(mock)
    (out,) = await ex.place([_order("osqb")])
    assert isinstance(out, Confirmed)
    assert [c["order"].client_order_id for c in mock.calls("place_order")] == ["osqb"] * 3
    # The venue's Retry-After, plus at most 10 % jitter (cqvx.backoff).
    assert len(sleeps.calls) == 2 and all(0.25 <= c <= 0.275 for c in sleeps.calls)
    assert ex.retries == 2


async def test_unavailable_retries_are_bounded_then_rejected() -> None:
    mock = _single(MockVenue())
    mock.on("place_order", Unavailable("maintenance"))
    ex, sleeps = _executor(mock, max_retries=2)
    (out,) = await ex.place([_order("osqc")])
    assert isinstance(out, Rejected) and isinstance(out.error, Unavailable)
    assert mock.call_count("place_order") == 3
    # cqvx.backoff: full jitter under a doubling cap (retry_delay 0.5, then 1.0).
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.5 and 0 <= sleeps.calls[1] <= 1.0


async def test_timeout_is_unresolved_and_never_resent() -> None:
    mock = _single(MockVenue())
    mock.on("place_order", Timeout("gateway timeout"), times=1)
    ex, _ = _executor(mock)
    (out,) = await ex.place([_order("osqd")])
    assert isinstance(out, Unresolved)
    assert mock.call_count("place_order") == 1
    assert await ex.lookup(SYM, "osqd") is None  # the venue never got it


async def test_unavailable_that_may_have_landed_is_unresolved() -> None:
    mock = _single(MockVenue())
    mock.on("place_order", Unavailable("reset after send", retry_safe=False), times=1)
    ex, _ = _executor(mock)
    (out,) = await ex.place([_order("osqe")])
    assert isinstance(out, Unresolved)
    assert mock.call_count("place_order") == 1


async def test_duplicate_id_is_resolved_by_fetching_the_existing_order() -> None:
    mock = _single(MockVenue())
    ex, _ = _executor(mock)
    (first,) = await ex.place([_order("osqf")])
    (again,) = await ex.place([_order("osqf")])
    assert isinstance(first, Confirmed) and isinstance(again, Confirmed)
    assert again.state.order_id == first.state.order_id
    assert len(mock.orders) == 1


async def test_rejections_are_not_retried() -> None:
    mock = _single(MockVenue())
    mock.on("place_order", OrderRejected("post only would cross"), times=1)
    mock.on("place_order", InsufficientFunds("no margin"), times=1)
    ex, _ = _executor(mock)
    out = await ex.place([_order("osqg"), _order("osqh")])
    assert [type(o) for o in out] == [Rejected, Rejected]
    assert isinstance(out[0], Rejected) and isinstance(out[0].error, OrderRejected)
    assert mock.call_count("place_order") == 2


async def test_batch_placement_retries_only_failed_items() -> None:
    mock = MockVenue()
    calls: list[list[str]] = []

    async def flaky(orders: list[order_pb2.Order]) -> list[Any]:
        calls.append([o.client_order_id for o in orders])
        out: list[Any] = []
        for o in orders:
            if o.client_order_id == "osq2" and len(calls) == 1:
                out.append(RateLimited("busy"))
            elif o.client_order_id == "osq3":
                out.append(OrderRejected("crosses"))
            else:
                out.append(await mock.place_order(o))
        return out

    mock.on("place_orders", flaky)
    ex, _ = _executor(mock, batch_size=10)
    assert ex.batch
    out = await ex.place([_order(f"osq{i}") for i in range(1, 5)])
    assert [type(o).__name__ for o in out] == ["Confirmed", "Confirmed", "Rejected", "Confirmed"]
    assert calls == [["osq1", "osq2", "osq3", "osq4"], ["osq2"]]


def _transport_retried(err: RateLimited, attempts: int = 4) -> RateLimited:
    """An error as the HTTP transport raises it after spending its own retry budget."""
    err.attempts = attempts
    return err


async def test_error_the_transport_already_retried_is_not_retried_again() -> None:
    """One retry owner: a sustained 429 the transport retried 4 times reaches the venue 4 times in all,
    not 4 x (1 + max_retries)."""
    mock = _single(MockVenue())
    mock.on("place_order", _transport_retried(RateLimited("slow down", retry_after=1.0)))
    ex, sleeps = _executor(mock, max_retries=3)
    (out,) = await ex.place([_order("osqr")])
    assert isinstance(out, Rejected) and isinstance(out.error, RateLimited)
    assert out.error.retried
    assert mock.call_count("place_order") == 1  # this intent is never sent again by the executor
    assert sleeps.calls == [] and ex.retries == 0


async def test_batch_item_the_transport_already_retried_is_not_retried_again() -> None:
    mock = MockVenue()
    mock.on("place_orders", _transport_retried(RateLimited("slow down")))
    ex, sleeps = _executor(mock, batch_size=10)
    assert ex.batch
    out = await ex.place([_order("osqs"), _order("osqt")])
    assert all(isinstance(o, Rejected) for o in out)
    assert mock.call_count("place_orders") == 1
    assert sleeps.calls == []


async def test_cancel_and_lookup_errors_the_transport_retried_are_final() -> None:
    mock = _single(MockVenue())
    retried = Unavailable("down")
    retried.attempts = 4
    mock.on("cancel_order", retried)
    mock.on("get_order", retried)
    ex, sleeps = _executor(mock)
    assert await ex.cancel(SYM, "osqu") is retried
    try:
        await ex.lookup(SYM, "osqu")
    except Unavailable as err:
        assert err is retried
    else:
        raise AssertionError("lookup should raise the transport's error")
    assert mock.call_count("cancel_order") == 1 and mock.call_count("get_order") == 1
    assert sleeps.calls == []


async def test_batch_call_failure_marks_every_item_unresolved() -> None:
    mock = MockVenue()
    mock.on("place_orders", Timeout("lost"), times=1)
    ex, _ = _executor(mock)
    out = await ex.place([_order("osqx"), _order("osqy")])
    assert all(isinstance(o, Unresolved) for o in out)


async def test_cancel_and_lookup() -> None:
    mock = _single(MockVenue())
    ex, _ = _executor(mock)
    await ex.place([_order("osqz")])
    state = await ex.cancel(SYM, "osqz")
    assert isinstance(state, VenueOrderState) and state.status == order_pb2.ORDER_STATUS_CANCELLED
    again = await ex.cancel(SYM, "osqz")
    assert isinstance(again, NotFound)
    found = await ex.lookup(SYM, "osqz")
    assert found is not None and found.cumulative == Decimal(0)


async def test_token_bucket_paces_at_25_per_second_after_the_burst() -> None:
    mock = _single(MockVenue(check_funds=False))
    ex = OrderExecutor(mock, rate=25, burst=30)
    start = time.monotonic()
    await ex.place([_order(f"osqr{i}") for i in range(35)])
    elapsed = time.monotonic() - start
    # 30 go at once, the next 5 need 5/25 s = 0.2 s
    assert 0.17 <= elapsed < 1.0
