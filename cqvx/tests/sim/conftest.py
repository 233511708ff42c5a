"""Fixtures for the simulated-venue tests: a quiet market whose book and trades the test controls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.venues.sim import InstrumentSpec, MarketModel, SimClock, SimConfig, SimVenue

QUIET = MarketModel(
    volatility=0.0,
    jump_intensity=0.0,
    regime_enter_prob=0.0,
    trades_per_step=0,
    level_size=Decimal("5"),
    size_jitter=0.0,
)
SPOT = InstrumentSpec(
    symbol="BTC-USDT",
    initial_price=Decimal("60000"),
    maker_fee=Decimal("0.001"),
    taker_fee=Decimal("0.002"),
)
PERP = InstrumentSpec(
    symbol="BTC-USDT-PERP",
    initial_price=Decimal("60000"),
    maker_fee=Decimal("0.0002"),
    taker_fee=Decimal("0.0005"),
    funding_interval_seconds=3600,
    base_funding_rate=Decimal("0.0001"),
)


def quiet_config(**overrides: Any) -> SimConfig:
    base: dict[str, Any] = {
        "seed": 7,
        "instruments": (SPOT, PERP),
        "balances": {"USDT": Decimal("1000000"), "BTC": Decimal("20")},
        "market": QUIET,
        "leverage": {"BTC-USDT-PERP": Decimal("10")},
    }
    base.update(overrides)
    return SimConfig(**base)


@pytest.fixture
def make_sim() -> Callable[..., SimVenue]:
    def build(**overrides: Any) -> SimVenue:
        return SimVenue(quiet_config(**overrides), clock=SimClock())

    return build


@pytest.fixture
async def sim(make_sim: Callable[..., SimVenue]) -> AsyncIterator[SimVenue]:
    venue = make_sim()
    async with venue:
        yield venue


def order(
    cid: str,
    side: str,
    qty: str,
    price: str | None = None,
    *,
    symbol: str = "BTC-USDT",
    tif: int = order_pb2.TIME_IN_FORCE_UNSPECIFIED,
    post_only: bool = False,
    reduce_only: bool = False,
) -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=cid,
        symbol=symbol,
        side=order_pb2.ORDER_SIDE_BUY if side == "buy" else order_pb2.ORDER_SIDE_SELL,
        order_type=order_pb2.ORDER_TYPE_LIMIT if price is not None else order_pb2.ORDER_TYPE_MARKET,
        time_in_force=tif,  # type: ignore[arg-type]
        quantity=qty,
        price=price or "",
        post_only=post_only,
        reduce_only=reduce_only,
    )


@pytest.fixture
def mk() -> Callable[..., order_pb2.Order]:
    return order


async def balance(venue: SimVenue, asset: str) -> tuple[Decimal, Decimal, Decimal]:
    for b in await venue.get_balances():
        if b.asset == asset:
            return Decimal(b.total), Decimal(b.available), Decimal(b.locked)
    return Decimal(0), Decimal(0), Decimal(0)


@pytest.fixture
def bal() -> Callable[[SimVenue, str], Any]:
    return balance
