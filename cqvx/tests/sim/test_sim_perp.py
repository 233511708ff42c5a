"""Linear perpetuals on the simulated venue: positions, margin, PnL, liquidation, funding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from decimal import Decimal
from typing import Any

import pytest

from cqc.markets.v1 import funding_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import InvalidRequest, OrderRejected
from cqvx.venues.sim import SimVenue

from .conftest import PERP, SPOT

D = Decimal
P = "BTC-USDT-PERP"
Mk = Callable[..., order_pb2.Order]
Bal = Callable[[SimVenue, str], Any]


async def _position(sim: SimVenue) -> position_pb2.Position | None:
    positions = await sim.get_positions([P])
    return positions[0] if positions else None


async def test_long_position_entry_mark_upnl_margin_and_liquidation_price(
    sim: SimVenue, mk: Mk, bal: Bal
) -> None:
    rep = await sim.place_order(mk("l1", "buy", "1", symbol=P))
    assert rep.order_status == order_pb2.ORDER_STATUS_FILLED
    pos = await _position(sim)
    assert pos is not None
    entry, margin = D("60000.01"), D("6000.001")
    assert pos.side == position_pb2.POSITION_SIDE_LONG and pos.quantity == "1"
    assert D(pos.entry_price) == entry and D(pos.margin) == margin and pos.leverage == "10"
    liq = (entry - margin) / (1 - D("0.005"))
    assert D(pos.liquidation_price) == liq.quantize(D("0.01"))
    total, avail, locked = await bal(sim, "USDT")
    assert total == D("1000000") - entry * D("0.0005")
    assert locked == margin and avail == total - margin
    sim.set_price(P, D("61000"))
    pos = await _position(sim)
    assert pos is not None
    assert pos.mark_price == "61000" and D(pos.unrealized_pnl) == D("61000") - entry


async def test_closing_realizes_pnl_and_releases_margin(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    await sim.place_order(mk("o1", "buy", "1", symbol=P))
    sim.set_price(P, D("61000"))
    await sim.place_order(mk("c1", "sell", "0.4", symbol=P))
    pos = await _position(sim)
    assert pos is not None and pos.quantity == "0.6"
    realized = (D("60999.99") - D("60000.01")) * D("0.4")
    assert D(pos.realized_pnl) == realized
    assert D(pos.margin) == D("6000.001") * D("0.6")
    fees = D("60000.01") * D("0.0005") + D("60999.99") * D("0.4") * D("0.0005")
    total, _, locked = await bal(sim, "USDT")
    assert total == D("1000000") + realized - fees and locked == D(pos.margin)
    # Flip: selling 1 closes 0.6 and opens a 0.4 short at the fill price.
    await sim.place_order(mk("c2", "sell", "1", symbol=P))
    pos = await _position(sim)
    assert pos is not None and pos.side == position_pb2.POSITION_SIDE_SHORT and pos.quantity == "0.4"
    assert pos.entry_price == "60999.99"


async def test_reduce_only_orders(sim: SimVenue, mk: Mk) -> None:
    with pytest.raises(OrderRejected):
        await sim.place_order(mk("r0", "sell", "1", symbol=P, reduce_only=True))
    await sim.place_order(mk("o1", "buy", "1", symbol=P))
    with pytest.raises(OrderRejected):  # would increase the long
        await sim.place_order(mk("r1", "buy", "1", symbol=P, reduce_only=True))
    resting = await sim.place_order(mk("r2", "sell", "1", "61000", symbol=P, reduce_only=True))
    assert resting.order_status == order_pb2.ORDER_STATUS_OPEN
    rep = await sim.place_order(mk("r3", "sell", "2", symbol=P, reduce_only=True))
    assert rep.cumulative_quantity == "1" and rep.order_status == order_pb2.ORDER_STATUS_EXPIRED
    assert await _position(sim) is None
    # Flat position: the venue cancels the reduce-only orders left behind.
    assert (await sim.get_order(client_order_id="r2")).status == order_pb2.ORDER_STATUS_CANCELLED


async def test_funding_is_paid_at_each_funding_time(
    make_sim: Callable[..., SimVenue], mk: Mk, bal: Bal
) -> None:
    perp = replace(PERP, funding_interval_seconds=60)
    async with make_sim(instruments=(SPOT, perp), tick_interval=1.0) as sim:
        funding = sim.subscribe_funding_rates([P])
        await sim.place_order(mk("o1", "buy", "1", symbol=P))
        before = (await bal(sim, "USDT"))[0]
        rate = await sim.get_funding_rate(P)
        assert rate.interval_seconds == 60 and rate.next_funding_time.seconds % 60 == 0
        await sim.run_for(59)
        assert (await bal(sim, "USDT"))[0] == before
        await sim.run_for(1)
        paid = D("60000") * D("0.0001")
        assert (await bal(sim, "USDT"))[0] == before - paid
        await sim.run_for(60)
        assert (await bal(sim, "USDT"))[0] == before - 2 * paid
        pos = await _position(sim)
        assert pos is not None and D(pos.realized_pnl) == -2 * paid
        msgs: list[funding_pb2.FundingRate] = []
        while len(msgs) < 3:
            msgs.append(await funding.__anext__())
        assert all(m.symbol == P and m.rate == "0.0001" for m in msgs)
        await funding.aclose()


async def test_funding_history_lists_each_settlement_oldest_first(make_sim: Callable[..., SimVenue]) -> None:
    perp = replace(PERP, funding_interval_seconds=60)
    async with make_sim(instruments=(SPOT, perp), tick_interval=1.0) as sim:
        assert await sim.get_funding_rate_history(P) == []
        await sim.run_for(60)
        await sim.jump(120)  # two intervals in one tick: the one settlement due at the end
        history = await sim.get_funding_rate_history(P)
        times = [h.funding_time.seconds for h in history]
        assert len(history) == 2 and times == sorted(times) and times[1] - times[0] == 60
        now = await sim.get_funding_rate(P)
        assert history[-1].funding_time == now.funding_time and history[-1].rate == now.rate == "0.0001"
        assert [h.funding_time for h in await sim.get_funding_rate_history(P, limit=1)] == [now.funding_time]
        later = await sim.get_funding_rate_history(P, start=history[-1].funding_time.ToDatetime(UTC))
        assert [h.funding_time for h in later] == [now.funding_time]
        with pytest.raises(InvalidRequest):
            await sim.get_funding_rate_history("BTC-USDT")


async def test_liquidation_closes_the_position_and_takes_the_margin(sim: SimVenue, mk: Mk, bal: Bal) -> None:
    executions = sim.subscribe_executions([P])
    positions = sim.subscribe_positions([P])
    await sim.place_order(mk("o1", "buy", "1", symbol=P))
    await sim.place_order(mk("tp", "sell", "1", "65000", symbol=P, reduce_only=True))
    total_before = (await bal(sim, "USDT"))[0]
    sim.set_price(P, D("54000"))
    await sim.step()
    assert await _position(sim) is None
    total, _, locked = await bal(sim, "USDT")
    assert locked == 0 and total == total_before - D("6000.001")
    reports = [await executions.__anext__() for _ in range(5)]
    assert reports[-1].rejection_reason == "liquidation"
    assert reports[-1].execution_type == execution_pb2.EXECUTION_TYPE_TRADE
    assert (await sim.get_order(client_order_id="tp")).status == order_pb2.ORDER_STATUS_CANCELLED
    updates = [await positions.__anext__() for _ in range(2)]
    assert updates[-1].side == position_pb2.POSITION_SIDE_FLAT
    await executions.aclose()
    await positions.aclose()


async def test_insufficient_margin_and_leverage(sim: SimVenue, mk: Mk) -> None:
    from cqvx.errors import InsufficientFunds

    with pytest.raises(InsufficientFunds):
        await sim.place_order(mk("big", "buy", "200", "60000", symbol=P))  # 1.2M / 10 + fees
    sim.set_leverage(P, D("20"))
    await sim.place_order(mk("ok", "buy", "1", symbol=P))
    pos = await _position(sim)
    assert pos is not None and pos.leverage == "20" and D(pos.margin) == D("60000.01") / 20
    with pytest.raises(InvalidRequest):
        sim.set_leverage(P, D("5"))  # open position
    with pytest.raises(InvalidRequest):
        sim.set_leverage("BTC-USDT", D("5"))
