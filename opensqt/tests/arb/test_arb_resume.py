"""A workflow that ended in error halts its pair, and each restart retries it once (forked from where it
failed, ``<id>~<n>``; in process, DBOS on SQLite): failing again keeps the pair halted; succeeding
rebuilds the position with no leg placed twice.

The failure is injected at the leg step's ownership check (``ArbContext.fence``, the lease's fence in
``opensqt arb``): the step raises before any order exists, as a fenced process does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from dbos import DBOS

from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.arb.config import ArbConfig, PairConfig
from opensqt.arb.runner import ArbRunner
from opensqt.arb.workflows import entry_id, unregister
from opensqt.engine.workflows import system_database_url

D = Decimal
SPOT, PERP = "BTC-USDT", "BTC-USDT-PERP"
ALL = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)


class Fence:
    """A fence that refuses while ``failing``; counts its checks."""

    def __init__(self) -> None:
        self.failing = True
        self.checks = 0

    def __call__(self) -> None:
        self.checks += 1
        if self.failing:
            raise RuntimeError("injected: the ownership check failed")


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimVenue]:
    spot = InstrumentSpec(symbol=SPOT, initial_price=D(60000))
    perp = InstrumentSpec(
        symbol=PERP, initial_price=D(60000), max_leverage=D(50), follows=SPOT, funding_interval_seconds=60,
        base_funding_rate=D("0.001"),
    )  # fmt: skip
    venue = SimVenue.default(seed=7, speed=20, instruments=(spot, perp), warmup_seconds=0)
    async with venue:
        DBOS(config={"name": "opensqt", "system_database_url": system_database_url("", tmp_path / "s.db")})
        try:
            yield venue
        finally:
            DBOS.destroy(destroy_registry=False)
            unregister("acct")


def _config() -> ArbConfig:
    return ArbConfig(
        pairs=[PairConfig(spot=SPOT, perp=PERP)], notional=D(1000), entry_apr=D("0.10"), exit_apr=D("0.01"),
        poll_interval=D("0.1"),
    )  # fmt: skip


async def _restart(sim: SimVenue, fence: Fence) -> ArbRunner:
    """A new runner on the same DBOS record, as a restarted process builds it."""
    runner = ArbRunner(_config(), sim, "acct", fence=fence)
    await runner.prepare()
    await runner.recover()
    return runner


async def _status(wid: str) -> str:
    status = await (await DBOS.retrieve_workflow_async(wid)).get_status()
    return str(status.status)


async def test_an_errored_entry_is_resumed_once_per_restart_then_halts_or_recovers(sim: SimVenue) -> None:
    fence = Fence()
    runner = ArbRunner(_config(), sim, "acct", fence=fence)
    await runner.prepare()
    DBOS.launch()
    await runner.recover()
    wid = entry_id("acct", SPOT, 0)

    await runner.step()  # the entry's first leg step fails: the workflow ends in error, the pair halts
    st = runner.pairs[SPOT]
    assert st.state == "halted" and st.halted_reason == f"{wid} ended in error"
    assert await _status(wid) == "ERROR" and fence.checks == 1
    await runner.step()  # halted: no new entry, no new workflow
    assert fence.checks == 1 and not await sim.get_orders(OrderFilter(statuses=ALL))
    assert runner.status()["pairs"][0]["state"] == "halted"

    again = await _restart(sim, fence)  # restart 1: retried once (forked), fails again, stays halted
    assert fence.checks == 2, "the errored workflow was not retried exactly once"
    assert again.pairs[SPOT].state == "halted" and await _status(f"{wid}~1") == "ERROR"
    await again.step()
    assert fence.checks == 2 and not await sim.get_orders(OrderFilter(statuses=ALL))

    fence.failing = False  # restart 2: the cause is gone; the retried entry completes
    healed = await _restart(sim, fence)
    st = healed.pairs[SPOT]
    assert st.state == "open" and st.position is not None, st.halted_reason
    assert await _status(f"{wid}~2") == "SUCCESS" and await _status(wid) == "ERROR"
    orders = await sim.get_orders(OrderFilter(statuses=ALL))
    assert sorted(o.symbol for o in orders) == [SPOT, PERP]  # one spot leg, one perp leg: nothing twice
    assert healed.pairs[SPOT].seq == 0 and healed.epoch == runner.epoch

    later = await _restart(sim, fence)  # restart 3: the healed retry is the record; nothing re-runs
    assert later.pairs[SPOT].position == st.position and fence.checks == 4
    assert len(await sim.get_orders(OrderFilter(statuses=ALL))) == 2
