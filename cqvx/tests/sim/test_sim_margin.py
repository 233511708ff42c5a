"""Spot margin on the simulated venue (``Order.margin``): a sell borrows what the free balance lacks, within
``SimConfig.margin_limits``; a buy repays; balances report what is owed; a refusal borrows nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from cqc.venues.v1 import order_pb2, venue_pb2
from cqvx.client import supports_spot_margin
from cqvx.errors import InsufficientFunds, InvalidRequest, NotFound, UnsupportedOperation
from cqvx.testing import MockVenue
from cqvx.venues.sim import SimVenue

from .conftest import order

D = Decimal
Build = Callable[..., SimVenue]


def margin(cid: str, side: str, qty: str, price: str | None = None, **kw: object) -> order_pb2.Order:
    o = order(cid, side, qty, price, **kw)  # type: ignore[arg-type]
    o.margin = True
    return o


async def owed(sim: SimVenue, asset: str) -> tuple[Decimal, Decimal, Decimal]:
    """(total, available, borrowed) as get_balances reports them."""
    for b in await sim.get_balances():
        if b.asset == asset:
            return D(b.total), D(b.available), D(b.borrowed or "0")
    return D(0), D(0), D(0)


async def test_capability_is_listed(make_sim: Build) -> None:
    async with make_sim() as sim:
        assert venue_pb2.CAPABILITY_SPOT_MARGIN in sim.capabilities()
        assert supports_spot_margin(sim)


async def test_sell_borrows_the_lack_and_buy_repays(make_sim: Build) -> None:
    async with make_sim(balances={"USDT": D(1_000_000), "BTC": D("0.5")}, margin_limits={"BTC": D(2)}) as sim:
        rep = await sim.place_order(margin("s1", "sell", "1.5"))
        assert rep.order_status == order_pb2.ORDER_STATUS_FILLED
        assert (await sim.get_order(client_order_id="s1")).margin
        # Held 0.5, sold 1.5: 1 borrowed, nothing left, never a negative free balance.
        assert await owed(sim, "BTC") == (D(0), D(0), D(1))
        # A buy of 1.2 repays the 1 owed; 0.2 stays in the account.
        rep = await sim.place_order(margin("b1", "buy", "1.2"))
        assert rep.order_status == order_pb2.ORDER_STATUS_FILLED
        assert await owed(sim, "BTC") == (D("0.2"), D("0.2"), D(0))


async def test_sell_within_holdings_borrows_nothing(make_sim: Build) -> None:
    async with make_sim(margin_limits={"BTC": D(1)}) as sim:
        await sim.place_order(margin("s1", "sell", "3"))
        assert await owed(sim, "BTC") == (D(17), D(17), D(0))
        balances = {b.asset: b for b in await sim.get_balances()}
        assert balances["BTC"].borrowed == ""  # nothing owed: the field stays empty as before


@pytest.mark.parametrize("limits", [{"BTC": D("0.9")}, {}], ids=["over-limit", "asset-not-listed"])
async def test_borrow_beyond_the_limit_is_refused_and_borrows_nothing(
    make_sim: Build, limits: dict[str, Decimal]
) -> None:
    async with make_sim(balances={"USDT": D(1_000_000), "BTC": D("0.5")}, margin_limits=limits) as sim:
        with pytest.raises(InsufficientFunds, match="borrow limit"):
            await sim.place_order(margin("s1", "sell", "1.5"))
        with pytest.raises(NotFound):
            await sim.get_order(client_order_id="s1")
        assert await owed(sim, "BTC") == (D("0.5"), D("0.5"), D(0))


async def test_unsold_part_of_an_ioc_sell_is_repaid(make_sim: Build) -> None:
    async with make_sim(balances={"USDT": D(1_000_000), "BTC": D(1)}, margin_limits={"BTC": D(10)}) as sim:
        book = await sim.get_order_book("BTC-USDT", depth=1)
        top, size = book.bids[0].price, D(book.bids[0].quantity)
        qty = size + 3  # more than the top level: the rest of the IOC expires
        rep = await sim.place_order(margin("s1", "sell", str(qty), top, tif=order_pb2.TIME_IN_FORCE_IOC))
        assert rep.order_status == order_pb2.ORDER_STATUS_EXPIRED
        got = await sim.get_order(client_order_id="s1")
        sold = D(got.filled_quantity)
        assert sold == size
        # Borrowed qty - 1 at placement; what was not sold goes back: owed = sold - held.
        assert await owed(sim, "BTC") == (D(0), D(0), sold - 1)


async def test_margin_on_a_perpetual_is_invalid(sim: SimVenue) -> None:
    with pytest.raises(InvalidRequest, match="spot orders only"):
        await sim.place_order(margin("p1", "sell", "1", symbol="BTC-USDT-PERP"))


async def test_a_venue_without_spot_margin_refuses_and_sends_nothing() -> None:
    venue = MockVenue()
    assert not supports_spot_margin(venue)
    with pytest.raises(UnsupportedOperation, match="no spot margin"):
        await venue.place_order(margin("m1", "sell", "1"))
    assert await venue.get_orders() == []
