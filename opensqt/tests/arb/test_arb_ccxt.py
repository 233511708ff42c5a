"""The funding arbitrage on the ccxt venues over the wire: spot ``BTC/USDT`` and the USDT perpetual
``BTC/USDT:USDT`` of one (fake) account, on Bybit v5 and on OKX v5.

The whole path is real: ``ArbRunner`` (DBOS on SQLite) -> ``RemoteVenue`` -> gRPC -> the connector
(``via="connector"``; ``"in_process"``: the ``CcxtClient`` is the arbitrage's venue) -> ``CcxtClient`` ->
unmodified ccxt -> loopback HTTP -> the wire-level fake (:mod:`cqvx.testing.fake_ccxt.bybit`:
``category=spot`` and ``category=linear`` on the same paths; :mod:`cqvx.testing.fake_ccxt.okx`:
``instType=SPOT`` ``BTC-USDT`` in ``tdMode=cash`` and ``instType=SWAP`` ``BTC-USDT-SWAP`` in contracts of
0.01 BTC) -> the simulated venue's matching, balances, positions and funding settlements (every 60
simulated seconds, 20x: every 3 s).  The audit reads the simulated venue itself, never the client under
test.

The ccxt client reads Bybit's transaction log (``type=SETTLEMENT``), in process and through the
connector (``GetFundingPayments``), so by default the funding PnL is exactly what the venue booked
(``funding_source: payments``); that test runs the sim at wall-clock speed, since the log is asked up
to the venue's "now".  The 20x end-to-end test pins ``funding_pnl: estimate`` (rate x position x mark
at each settlement, :mod:`opensqt.risk.funding`) and checks the estimate against what the venue booked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS

from cqc.venues.v1 import order_pb2
from cqvx.client import VenueClient
from cqvx.errors import InsufficientFunds
from cqvx.secrets import Secret
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.bybit import FakeBybit
from cqvx.testing.fake_ccxt.okx import FakeOkx
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.arb.config import ArbConfig, PairConfig
from opensqt.arb.runner import ArbRunner
from opensqt.arb.workflows import entry_id, entry_workflow, unregister
from opensqt.connector.remote import RemoteVenue
from opensqt.connector.server import ConnectorConfig, ConnectorServer
from opensqt.engine.workflows import system_database_url
from opensqt.model.client_ids import is_our_client_order_id

D = Decimal
SPOT, PERP = "BTC-USDT", "BTC-USDT-PERP"
ALL = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)
KEY, SECRET, PASSPHRASE = "arb-ccxt-key", "arb-ccxt-secret", "arb-ccxt-pass"
# The markets each venue entry loads for the pairing: spot and the USDT perpetual of one account.
MARKET_TYPES = {"bybit": ("spot", "linear"), "okx": ("spot", "swap")}
# What each fake answers a perp leg refused for funds (the sim's InsufficientFunds): Bybit retCode 110007
# (https://bybit-exchange.github.io/docs/v5/error), OKX sCode 51008 "Order failed. Insufficient ...
# margin in account" (https://www.okx.com/docs-v5/en/#error-code); ccxt maps both to InsufficientFunds.
REFUSED_FOR_FUNDS = {"bybit": "110007", "okx": "51008"}


@dataclass
class Served:
    sim: SimVenue
    fake: SimFake
    remote: VenueClient  # RemoteVenue (through the connector) or the CcxtClient itself (in process)
    venue: str


def _sim() -> SimVenue:
    spot = InstrumentSpec(symbol=SPOT, initial_price=D(60000))
    perp = InstrumentSpec(
        symbol=PERP, initial_price=D(60000), maker_fee=D("0.0002"), taker_fee=D("0.0005"),
        max_leverage=D(50), follows=SPOT, funding_interval_seconds=60, base_funding_rate=D("0.001"),
    )  # fmt: skip
    return SimVenue.default(
        seed=11, speed=20, instruments=(spot, perp), warmup_seconds=0,
        balances={"USDT": D(100_000), "BTC": D(0)},
    )  # fmt: skip


def _fake(venue: str, sim: SimVenue) -> SimFake:
    return FakeBybit(KEY, SECRET, sim=sim) if venue == "bybit" else FakeOkx(KEY, SECRET, PASSPHRASE, sim=sim)


def _ccxt(venue: str, fake: SimFake) -> CcxtClient:
    return CcxtClient(
        CcxtConfig(
            venue, Secret(KEY), Secret(SECRET), Secret(PASSPHRASE) if venue == "okx" else None,
            market_types=MARKET_TYPES[venue], rest_url=fake.url, ws_url=fake.ws_url, retry_initial_s=0.01,
            retry_max_s=0.05, rate_limit=False,
        )
    )  # fmt: skip


VENUES_VIA = [
    pytest.param(("bybit", "connector"), id="bybit-connector"),
    pytest.param(("okx", "connector"), id="okx-connector"),
    pytest.param(("okx", "in_process"), id="okx-in_process"),
]


@pytest.fixture(params=VENUES_VIA)
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    venue, via = request.param
    sim = _sim()
    fake = _fake(venue, sim)
    await fake.start()
    upstream = _ccxt(venue, fake)
    server: ConnectorServer | None = None
    remote: VenueClient = upstream
    if via == "connector":
        server = ConnectorServer([upstream], ConnectorConfig(port=0, validate_credentials=False, grace=0.5))
        await server.start()
        remote = await RemoteVenue.connect(server.address, venue, timeout=5.0)
    else:
        await upstream.start()
    DBOS(config={"name": "opensqt", "system_database_url": system_database_url("", tmp_path / "s.db")})
    try:
        yield Served(sim, fake, remote, venue)
    finally:
        DBOS.destroy(destroy_registry=False)
        unregister("acct")
        if server is not None:
            await remote.aclose()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.stop(0), 5.0)
        await upstream.aclose()
        await fake.stop()


def _config(**kw: Any) -> ArbConfig:
    base: dict[str, Any] = {
        "pairs": [PairConfig(spot=SPOT, perp=PERP)],
        "notional": D(1000),
        "entry_apr": D("0.10"),
        "exit_apr": D("0.01"),
        "poll_interval": D("0.1"),
    }
    return ArbConfig(**(base | kw))


async def _runner(s: Served, cfg: ArbConfig, sent: list[dict[str, Any]]) -> ArbRunner:
    runner = ArbRunner(cfg, s.remote, "acct", publish=lambda kind, data: sent.append({"type": kind, **data}))
    await runner.prepare()
    DBOS.launch()
    await runner.recover()
    return runner


async def _until(cond: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _btc(sim: SimVenue) -> Decimal:
    return next((D(b.total) for b in await sim.get_balances() if b.asset == "BTC"), D(0))


async def _perp(sim: SimVenue) -> tuple[Decimal, Decimal]:
    """The venue's signed perp position (short -) and the funding it booked into realized PnL."""
    for p in await sim.get_positions([PERP]):
        if p.symbol == PERP:
            qty = D(p.quantity or "0") * (-1 if p.side == 2 else 1)
            return qty, D(p.realized_pnl or "0")
    return D(0), D(0)


async def test_entry_funding_and_exit_on_spot_and_the_perpetual(served: Served) -> None:
    sim, sent = served.sim, list[dict[str, Any]]()
    btc0 = await _btc(sim)
    # The sim runs 20x ahead of the wall clock, past the "now" the transaction log is asked up to:
    # this test checks the estimate (payments: the wall-clock test below).
    runner = await _runner(served, _config(max_hold_seconds=D(8), funding_pnl="estimate"), sent)
    assert runner.funding_source == "estimate"
    await runner.step()  # the first reading is the settlement baseline
    st = runner.pairs[SPOT]
    await _until(lambda: _entered(runner))
    assert st.state == "open" and st.position is not None, st.history
    spot_qty, perp_qty = st.quantities()
    assert spot_qty > 0 and perp_qty == spot_qty, (spot_qty, perp_qty)
    # Bybit: lot 0.00001 BTC on both legs, nothing left over.  OKX: the swap trades in contracts of
    # 0.01 BTC and the hedge is whole contracts (LegRules.step), so the entry sold the spot remainder
    # back (a third spot order) and holds a whole number of contracts on both legs.
    trims = {"bybit": 0, "okx": 1}[served.venue]
    if served.venue == "okx":
        assert perp_qty % D("0.01") == 0, perp_qty
    assert await _btc(sim) == btc0 + spot_qty, "the spot leg did not reach the spot book"
    assert (await _perp(sim))[0] == -perp_qty, "the perp leg did not reach the perpetual's book"

    # A settlement while held: the venue books it (the sim's realized PnL); the arbitrage estimates it.
    async def settled() -> bool:
        await runner.step()
        return st.position is not None and (await _perp(sim))[1] > 0 and st.open_funding > 0

    await _until(settled, timeout=20)
    booked = (await _perp(sim))[1]
    status = runner.status()["pairs"][0]
    assert status["funding_source"] == "estimate" and D(status["open_funding"]) == st.open_funding
    assert abs(st.open_funding - booked) <= booked * D("0.25"), (st.open_funding, booked)

    await _until(lambda: _flat(runner), timeout=30)
    assert (await _perp(sim))[0] == 0, "the perp was not closed"
    assert await _btc(sim) == btc0, "the spot was not sold back"
    assert st.exits >= 1 and st.funding_pnl > 0
    states = [m["state"] for m in sent if m["type"] == "arb"]
    assert "open" in states and "exiting" in states and states[-1] == "flat"
    orders = await sim.get_orders(OrderFilter(statuses=ALL))
    cids = [o.client_order_id for o in orders]
    assert len(cids) == len(set(cids)) and all(is_our_client_order_id(c) for c in cids)
    # in, hedge, (OKX: the remainder sold back,) close, sell back
    assert sorted(o.symbol for o in orders) == [SPOT] * (2 + trims) + [PERP, PERP]
    assert not [o for o in orders if o.status in OPEN_STATUSES]


async def _entered(runner: ArbRunner) -> bool:
    await runner.step()
    return runner.pairs[SPOT].state == "open"


async def _flat(runner: ArbRunner) -> bool:
    await runner.step()
    return runner.pairs[SPOT].state == "flat" and runner.pairs[SPOT].exits > 0


async def test_a_perp_leg_refused_for_margin_unwinds_the_spot_leg(served: Served) -> None:
    sim = served.sim
    btc0 = await _btc(sim)
    runner = await _runner(served, _config(leg_pause=D("0.5")), [])
    entering = asyncio.create_task(_until(lambda: _entry_done(runner)))

    async def spot_leg_landed() -> bool:
        return bool(await sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL)))

    await _until(spot_leg_landed)
    # The next placement (the perp leg) is refused for funds: the fake answers it with the venue's
    # documented code (REFUSED_FOR_FUNDS), and nothing else says why.
    sim.faults.reject_next(1, InsufficientFunds("not enough for new order", venue="sim"))
    await entering
    sim.faults.clear()
    st = runner.pairs[SPOT]
    assert st.state == "flat" and st.compensations == 1, st.history
    assert await _btc(sim) == btc0, "the spot leg was not unwound"
    assert (await _perp(sim))[0] == 0
    spot_orders = await sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL))
    assert sorted(o.side for o in spot_orders) == [order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL]
    assert D(spot_orders[0].filled_quantity) == D(spot_orders[1].filled_quantity) > 0
    assert not await sim.get_orders(OrderFilter(symbol=PERP, statuses=ALL)), "a perp order exists"
    # The recorded entry (its id joined again: nothing new is placed) names the venue's refusal.
    result = await runner._run(entry_id("acct", SPOT, 0), entry_workflow, {"id": "ignored"})
    perp_legs = [leg for leg in result["legs"] if leg["symbol"] == PERP]
    assert [leg["outcome"] for leg in perp_legs] == ["rejected"]
    reason = perp_legs[0]["reason"]
    assert reason.startswith("insufficient_funds") and REFUSED_FOR_FUNDS[served.venue] in reason, reason
    assert len(await sim.get_orders(OrderFilter(statuses=ALL))) == 2


async def _entry_done(runner: ArbRunner) -> bool:
    await runner.step()
    return runner.pairs[SPOT].entries > 0


@pytest.mark.parametrize("via", ["in_process", "connector"])
async def test_the_funding_pnl_is_the_venues_own_settlement_log(via: str, tmp_path: Path) -> None:
    # The sim at wall-clock speed: the transaction log is asked up to "now" (the venue's clock), so the
    # settlements must not run ahead of it.  Funding every 3 s.
    spot = InstrumentSpec(symbol=SPOT, initial_price=D(60000))
    perp = InstrumentSpec(
        symbol=PERP, initial_price=D(60000), max_leverage=D(50), follows=SPOT, funding_interval_seconds=3,
        base_funding_rate=D("0.001"),
    )  # fmt: skip
    sim = SimVenue.default(
        seed=12, speed=1, instruments=(spot, perp), warmup_seconds=0, balances={"USDT": D(100_000)}
    )
    fake = FakeBybit(KEY, SECRET, sim=sim)
    await fake.start()
    client = CcxtClient(
        CcxtConfig(
            "bybit", Secret(KEY), Secret(SECRET), market_types=("spot", "linear"), rest_url=fake.url,
            ws_url=fake.ws_url, retry_initial_s=0.01, retry_max_s=0.05, rate_limit=False,
        )
    )  # fmt: skip
    server: ConnectorServer | None = None
    venue: VenueClient = client
    DBOS(config={"name": "opensqt", "system_database_url": system_database_url("", tmp_path / "s.db")})
    try:
        await client.start()
        if via == "connector":
            # GetFundingPayments: the same ledger, read by the connector's ccxt client.
            server = ConnectorServer([client], ConnectorConfig(port=0, validate_credentials=False, grace=0.5))
            await server.start()
            venue = await RemoteVenue.connect(server.address, "bybit", timeout=5.0)
        runner = ArbRunner(_config(), venue, "acct")
        await runner.prepare()
        DBOS.launch()
        await runner.recover()
        assert runner.funding_source == "payments"
        st = runner.pairs[SPOT]
        await _until(lambda: _entered(runner))
        settled_before = len(sim.funding_payments)

        async def two_settlements() -> bool:
            await runner.step()
            return len(sim.funding_payments) >= settled_before + 2 and st.open_funding > 0

        await _until(two_settlements, timeout=30)
        since = sim.funding_payments[settled_before].at_ns
        booked = -sum((p.paid for p in sim.funding_payments if p.at_ns >= since), D(0))
        assert st.open_funding == booked > 0, (st.open_funding, booked)
        assert runner.status()["pairs"][0]["funding_source"] == "payments"
        runner.config = _config(exit_apr=D(50), entry_apr=D(60))  # the rate no longer pays enough: exit
        await _until(lambda: _flat(runner), timeout=30)
        booked = -sum((p.paid for p in sim.funding_payments if p.at_ns >= since), D(0))
        assert st.funding_pnl == booked, (st.funding_pnl, booked)
        assert (await _perp(sim))[0] == 0
    finally:
        DBOS.destroy(destroy_registry=False)
        unregister("acct")
        if server is not None:
            if venue is not client:
                await venue.aclose()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.stop(0), 5.0)
        await client.aclose()
        await fake.stop()
