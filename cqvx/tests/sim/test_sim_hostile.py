"""Absurd order numbers are refused with a taxonomy error, never a bare decimal exception."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import order_pb2
from cqvx.errors import VenueError
from cqvx.venues.sim import SimVenue

numbers = st.one_of(
    st.sampled_from(["1e30", "1e40", "1e999", "1e-30", "123456789012345678901234567890.5", "-1", "0"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


@pytest.mark.parametrize(("price", "qty"), [("1e30", "0.001"), ("50000", "1e40"), ("1e-40", "1")])
async def test_huge_or_tiny_numbers_are_refused_cleanly(
    sim: SimVenue, mk: Callable[..., order_pb2.Order], price: str, qty: str
) -> None:
    with pytest.raises(VenueError):
        await sim.place_order(mk("h-1", "buy", qty, price))
    assert await sim.get_orders() == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=numbers, qty=numbers)
async def test_any_order_numbers_raise_only_the_taxonomy(
    sim: SimVenue, mk: Callable[..., order_pb2.Order], price: str, qty: str
) -> None:
    with contextlib.suppress(VenueError):
        await sim.place_order(mk("", "buy", qty, price))
