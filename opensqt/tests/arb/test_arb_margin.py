"""The negative direction on spot margin (``negative_mode: margin``) on the simulated venue, in process with
DBOS on SQLite: the entry's spot SELL borrows the base the account lacks and the perp BUY is sized from
what it sold; the exit's spot BUY repays; a refused perp leg is compensated by a margin BUY that repays;
a borrow beyond the venue's limit leaves the pair flat; a venue without spot margin is refused at start.

The sim account holds 0.1 BTC and may borrow 1 BTC (``SimVenue.default``); the notional (9000 USDT at
60000) sells 0.15 BTC, so about 0.05 BTC is borrowed.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.testing import MockVenue
from cqvx.types import OrderFilter
from opensqt.arb.config import ConfigError
from opensqt.arb.runner import ArbRunner
from opensqt.arb.workflows import unregister

from .test_arb_sim import ALL, PERP, SPOT, _config, _position, _runner, _sim, _step_until_flat, _until, dbos

__all__ = ["dbos"]  # the fixture, imported for its use here

D = Decimal
HELD = D("0.1")


def _margin(**kw: Any) -> Any:
    return _config(directions=["negative"], negative_mode="margin", notional=D(9000), **kw)


async def _btc(sim: Any) -> tuple[Decimal, Decimal]:
    """(total, borrowed) of BTC as the venue's balances report them."""
    b = next(b for b in await sim.get_balances() if b.asset == "BTC")
    return D(b.total), D(b.borrowed or "0")


async def _spot_orders(sim: Any) -> list[order_pb2.Order]:
    return sorted(await sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL)), key=lambda o: o.side)


async def test_margin_entry_borrows_and_the_exit_repays(dbos: Path) -> None:
    sim = _sim(D("-0.001"))
    async with sim:
        runner = await _runner(sim, _margin(max_hold_seconds=D(2)), dbos, [])
        try:
            await runner.step()
            st = runner.pairs[SPOT]
            assert st.state == "open" and st.direction == "negative", st.history
            assert st.position is not None and st.position["margin"] is True
            spot_qty, perp_qty = st.quantities()
            assert spot_qty > HELD and perp_qty == spot_qty  # sized from what the margin sell executed
            assert await _btc(sim) == (D(0), spot_qty - HELD)  # the lack is owed, never a negative balance
            assert await _position(sim) == perp_qty  # long perp
            await _until(lambda: _step_until_flat(runner), timeout=20)
            assert await _position(sim) == 0
            assert await _btc(sim) == (HELD, D(0))  # the margin BUY repaid, the holding is back
            orders = await _spot_orders(sim)
            assert [(o.side, o.margin) for o in orders] == [
                (order_pb2.ORDER_SIDE_BUY, True),
                (order_pb2.ORDER_SIDE_SELL, True),
            ]
            assert len(await sim.get_orders(OrderFilter(statuses=ALL))) == 4
        finally:
            unregister("acct")


async def test_a_refused_perp_leg_is_compensated_by_a_repaying_buy(dbos: Path) -> None:
    sim = _sim(D("-0.001"))
    async with sim:
        runner = await _runner(sim, _margin(leg_pause=D("0.5")), dbos, [])
        try:
            entering = asyncio.create_task(runner.step())

            async def spot_leg_landed() -> bool:
                return bool(await sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL)))

            await _until(spot_leg_landed)
            sim.faults.reject_next(1)  # the venue refuses the perp leg
            await entering
            sim.faults.clear()
            st = runner.pairs[SPOT]
            assert st.state == "flat" and st.compensations == 1, st.history
            assert await _btc(sim) == (HELD, D(0)), "the borrow was not repaid"
            assert await _position(sim) == 0
            orders = await _spot_orders(sim)
            assert [(o.side, o.margin) for o in orders] == [
                (order_pb2.ORDER_SIDE_BUY, True),
                (order_pb2.ORDER_SIDE_SELL, True),
            ]
            assert D(orders[0].filled_quantity) == D(orders[1].filled_quantity) > HELD
            assert not await sim.get_orders(OrderFilter(symbol=PERP, statuses=ALL))
        finally:
            unregister("acct")


async def test_a_borrow_beyond_the_limit_leaves_the_pair_flat(dbos: Path) -> None:
    sim = _sim(D("-0.001"))
    async with sim:
        # 90000 USDT at 60000 is 1.5 BTC: 1.4 to borrow, over the sim's 1 BTC limit.
        runner = await _runner(sim, _margin().model_copy(update={"notional": D(90000)}), dbos, [])
        try:
            await runner.step()
            st = runner.pairs[SPOT]
            assert st.state == "flat" and st.position is None
            assert "insufficient_funds" in st.history[-1]["reason"], st.history
            assert await _btc(sim) == (HELD, D(0))
            assert not await sim.get_orders(OrderFilter(statuses=ALL))
        finally:
            unregister("acct")


async def test_a_venue_without_spot_margin_is_refused_at_start() -> None:
    runner = ArbRunner(_margin(), MockVenue(), "acct")
    with pytest.raises(ConfigError, match=r"arb\.negative_mode: venue 'mock' has no spot margin"):
        await runner.prepare()
