"""The funding arbitrage on the simulated venue (in process, DBOS on SQLite): both directions with a real
funding payment, the compensation path, a replayed workflow id, and recovery by a fresh runner.

The sim settles funding every 60 simulated seconds (20x: every 3 s) so a payment lands during a test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS

from cqc.venues.v1 import order_pb2
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.arb.config import ArbConfig, PairConfig
from opensqt.arb.runner import ArbRunner
from opensqt.arb.workflows import unregister
from opensqt.engine.workflows import system_database_url

D = Decimal
SPOT, PERP = "BTC-USDT", "BTC-USDT-PERP"
ALL = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)


def _sim(rate: Decimal) -> SimVenue:
    spot = InstrumentSpec(symbol=SPOT, initial_price=D(60000))
    perp = InstrumentSpec(
        symbol=PERP, initial_price=D(60000), maker_fee=D("0.0002"), taker_fee=D("0.0005"),
        max_leverage=D(50), follows=SPOT, funding_interval_seconds=60, base_funding_rate=rate,
    )  # fmt: skip
    return SimVenue.default(seed=5, speed=20, instruments=(spot, perp), warmup_seconds=0)


def _config(**kw: Any) -> ArbConfig:
    base: dict[str, Any] = {
        "pairs": [PairConfig(spot=SPOT, perp=PERP)],
        "notional": D(1000),
        "entry_apr": D("0.10"),
        "exit_apr": D("0.01"),
        "poll_interval": D("0.1"),
    }
    return ArbConfig(**(base | kw))


async def _until(cond: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def dbos(tmp_path: Path) -> AsyncIterator[Path]:
    yield tmp_path
    DBOS.destroy(destroy_registry=False)


async def _runner(sim: SimVenue, cfg: ArbConfig, tmp_path: Path, sent: list[dict[str, Any]]) -> ArbRunner:
    runner = ArbRunner(cfg, sim, "acct", publish=lambda kind, data: sent.append({"type": kind, **data}))
    await runner.prepare()
    DBOS(config={"name": "opensqt", "system_database_url": system_database_url("", tmp_path / "s.db")})
    DBOS.launch()
    await runner.recover()
    return runner


async def _position(sim: SimVenue) -> Decimal:
    for p in await sim.get_positions([PERP]):
        if p.symbol == PERP and p.quantity:
            return D(p.quantity) * (-1 if p.side == 2 else 1)
    return D(0)


async def _realized(sim: SimVenue) -> Decimal:
    for p in await sim.get_positions([PERP]):
        if p.symbol == PERP:
            return D(p.realized_pnl or "0")
    return D(0)


async def _btc(sim: SimVenue) -> Decimal:
    return next(D(b.total) for b in await sim.get_balances() if b.asset == "BTC")


@pytest.mark.parametrize(("direction", "rate"), [("positive", D("0.001")), ("negative", D("-0.001"))])
async def test_both_directions_enter_collect_funding_and_exit(
    direction: str, rate: Decimal, dbos: Path
) -> None:
    sim = _sim(rate)
    sent: list[dict[str, Any]] = []
    async with sim:
        btc0 = await _btc(sim)
        cfg = _config(directions=[direction], spot_inventory=D("0.05"), max_hold_seconds=D(4))
        runner = await _runner(sim, cfg, dbos, sent)
        try:
            await runner.step()
            st = runner.pairs[SPOT]
            assert st.state == "open" and st.position is not None, st.history
            spot_qty, perp_qty = st.quantities()
            assert spot_qty > 0 and perp_qty == spot_qty  # lot 0.00001 on both: no dust
            sign = 1 if direction == "positive" else -1
            assert await _btc(sim) == btc0 + sign * spot_qty
            assert await _position(sim) == -sign * perp_qty
            # A funding payment settles while we hold: the venue credits it (the rate is paid by the
            # side we are not on, in both directions).
            await _until(lambda: _gt(_realized(sim), D(0)), timeout=20)
            # The sim keeps settling while the test runs, so the runner's reading lies between the
            # venue's realized PnL just before and just after its step (equal when none landed).
            before = await _realized(sim)
            await runner.step()
            after = await _realized(sim)
            assert 0 < before <= st.open_funding <= after
            status = runner.status()["pairs"][0]
            assert status["state"] == "open" and D(status["open_funding"]) > 0
            assert status["market"]["apr"] is not None and status["market"]["basis"] is not None
            assert 'arb_position_open{pair="BTC-USDT"} 1.0' in runner.metrics.text().decode()
            # Exit once the hold time is over: sized from the executed quantities, both legs closed.
            await _until(lambda: _step_until_flat(runner), timeout=20)
            assert await _position(sim) == 0
            assert await _btc(sim) == btc0
            assert st.exits == 1 and st.funding_pnl > 0
            assert 'arb_position_open{pair="BTC-USDT"} 0.0' in runner.metrics.text().decode()
            states = [m["state"] for m in sent if m["type"] == "arb"]
            assert "entering" in states and "open" in states and "exiting" in states and states[-1] == "flat"
            assert D(sent[-1]["fundingPnL"]) == st.funding_pnl
            orders = await sim.get_orders(OrderFilter(statuses=ALL))
            cids = [o.client_order_id for o in orders]
            assert len(cids) == len(set(cids)) == 4  # spot, perp, close perp, close spot
        finally:
            unregister("acct")


async def _gt(value: Any, floor: Decimal) -> bool:
    return bool(await value > floor)


async def _step_until_flat(runner: ArbRunner) -> bool:
    await runner.step()
    return runner.pairs[SPOT].state == "flat"


async def test_a_rejected_perp_leg_unwinds_the_spot_leg(dbos: Path) -> None:
    sim = _sim(D("0.001"))
    async with sim:
        btc0 = await _btc(sim)
        runner = await _runner(sim, _config(leg_pause=D("0.5")), dbos, [])
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
            assert await _btc(sim) == btc0, "the spot leg was not unwound"
            assert await _position(sim) == 0
            spot_orders = await sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL))
            assert sorted(o.side for o in spot_orders) == [
                order_pb2.ORDER_SIDE_BUY,
                order_pb2.ORDER_SIDE_SELL,
            ]
            assert D(spot_orders[0].filled_quantity) == D(spot_orders[1].filled_quantity) > 0
            assert not await sim.get_orders(OrderFilter(symbol=PERP, statuses=ALL))
            assert runner.metrics.text().decode().count('arb_compensations_total{pair="BTC-USDT"} 1.0') == 1
        finally:
            unregister("acct")


async def test_a_replayed_entry_places_nothing_and_a_new_runner_recovers_the_position(dbos: Path) -> None:
    sim = _sim(D("0.001"))
    async with sim:
        runner = await _runner(sim, _config(), dbos, [])
        try:
            await runner.step()
            st = runner.pairs[SPOT]
            assert st.state == "open"
            before = len(await sim.get_orders(OrderFilter(statuses=ALL)))
            # The same workflow id again (a retried request): joins the recorded run, no new order.
            from opensqt.arb.workflows import entry_id, entry_workflow

            again = await runner._run(entry_id("acct", SPOT, 0), entry_workflow, {"id": "ignored"})
            assert again == st.position
            assert len(await sim.get_orders(OrderFilter(statuses=ALL))) == before
            # A fresh runner (a restart) rebuilds the open position from DBOS's record.
            fresh = ArbRunner(_config(), sim, "acct")
            await fresh.prepare()
            await fresh.recover()
            assert fresh.pairs[SPOT].state == "open" and fresh.pairs[SPOT].position == st.position
            assert fresh.pairs[SPOT].seq == 0 and fresh.epoch == runner.epoch
        finally:
            unregister("acct")


async def test_lost_replies_are_looked_up_never_sent_twice(dbos: Path) -> None:
    sim = _sim(D("0.001"))
    async with sim:
        runner = await _runner(sim, _config(), dbos, [])
        try:
            sim.faults.ambiguous_next(2)  # both legs act at the venue, and both replies are lost (Timeout)
            await runner.step()
            st = runner.pairs[SPOT]
            assert st.state == "open" and st.compensations == 0, st.history
            spot_qty, perp_qty = st.quantities()
            assert spot_qty == perp_qty > 0
            orders = await sim.get_orders(OrderFilter(statuses=ALL))
            assert len(orders) == 2, "a leg whose reply was lost was sent again"
            assert await _position(sim) == -perp_qty
        finally:
            unregister("acct")


async def test_the_funding_estimate_survives_a_restart(dbos: Path) -> None:
    """``funding_pnl: estimate``: what the runner estimated while the position was open is recorded in the
    arbitrage's durable state (one ``arb-funding`` workflow per settlement), so a restarted process (DBOS
    destroyed and launched again on the same system database, a fresh runner) continues from it instead
    of from zero, and adds the next settlement to it."""
    sim = _sim(D("0.001"))
    cfg = _config(funding_pnl="estimate")
    async with sim:
        try:
            runner = await _runner(sim, cfg, dbos, [])
            assert runner.funding_source == "estimate"
            await runner.step()
            st = runner.pairs[SPOT]
            assert st.state == "open" and st.direction == "positive"

            async def estimated() -> bool:
                await runner.step()
                return len(st.funding_estimated) >= 2

            await _until(estimated)  # two settlements while held (every 3 s at 20x)
            before = st.open_funding
            assert before > 0, "a short perp receives a positive rate"
            assert before == sum(st.funding_estimated.values())
            recorded = dict(st.funding_estimated)
            # The restart: the process's memory is gone; DBOS comes back on the same database.
            DBOS.destroy(destroy_registry=False)
            unregister("acct")
            fresh = await _runner(sim, cfg, dbos, [])
            again = fresh.pairs[SPOT]
            assert again.state == "open" and again.seq == st.seq
            assert again.funding_estimated == recorded and again.open_funding == before

            async def next_one() -> bool:
                await fresh.step()
                return len(again.funding_estimated) > len(recorded)

            await _until(next_one)
            added = {k: v for k, v in again.funding_estimated.items() if k not in recorded}
            assert len(added) >= 1 and all(v > 0 for v in added.values())
            assert again.open_funding == before + sum(added.values())
            assert Decimal(fresh.status()["pairs"][0]["open_funding"]) == again.open_funding
        finally:
            unregister("acct")
