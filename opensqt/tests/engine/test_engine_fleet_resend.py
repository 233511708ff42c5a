"""Control requests across a kill -9 of ``opensqt fleet`` (children of the module's zygote).

1. A control request whose first attempt died with its process (kill -9 while its workflow was pending)
is finished by the account's next process and answered 200 when it is sent again: never taken, and
failed for good, by another opensqt process on the same DBOS system database.

This was the fleet kill -9 test's rare HTTP 500 (docs/engine.md "Crash test"): every process ran DBOS
under one application name, DBOS recovers a dead process's workflows by putting them back on a queue
every process of that application dequeues from, and a process of another account (another test, another
fleet on the same PostgreSQL server) ran the recovered workflow, found no fleet for its account, and
recorded ``RuntimeError`` as its outcome: the re-sent request then answered 500 forever.  Here the
other account's process is this test process: its DBOS recovery pass must not touch the dead process's
workflow (with the shared name it did, on every run), and the re-sent request must succeed.

2. A removal with ``position: close`` killed while its settle step is sending the reduce-only IOC order:
the next process resumes the removal (same request) and the position is closed exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy
from dbos import DBOS

from cqc.venues.v1 import order_pb2
from cqvx.testing.waits import until
from cqvx.testing.zygote import Child, Zygote
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.config import default_paper_config
from opensqt.connector.server import ConnectorConfig, ConnectorServer
from opensqt.engine.fleet import Fleet
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.engine.symbols import SymbolRegistry
from opensqt.engine.workflows import Durable, system_database_url
from opensqt.tests.engine.fleet_preload import FLEET_PRELOAD
from opensqt.tests.postgres import PG_URL, require_postgres

ROOT = Path(__file__).resolve().parents[3]
BTC, ETH = "BTC-USDT-PERP", "ETH-USDT-PERP"
TOKEN = "resend-control-token"
# What ``opensqt fleet`` imports, paid once in the module's zygote (opensqt/tests/conftest.py).
PRELOAD = FLEET_PRELOAD

CONFIG = """
trading:
  symbol: {symbol}
  price_interval: 10
  order_quantity: 100
  min_order_value: 5
  buy_window_size: 2
  sell_window_size: 2
  position_safety_check: 1
venue:
  kind: remote
  address: 127.0.0.1:{port}
  fee_rate: 0
state:
  url: "{url}"
  table_prefix: {prefix}
  account: {account}
http:
  enabled: true
  port: 0
  live: false
  control_token: {{env: OSQ_RESEND_TOKEN}}
engine:
  # A lost placement is proven absent after 8 s here (the sim answers in process behind the connector;
  # docs/engine.md "Landing window"), so a kill during a send costs seconds, not the default minute.
  call_deadline: 2
  request_lifetime: 3
  landing_window: 8
system:
  cancel_on_exit: true
  log_level: WARNING
"""


def _workflow_row(system_url: str, workflow_id: str) -> tuple[str, int, int] | None:
    """(status, recovery attempts, updated at) of one workflow, None before it exists."""
    engine = sqlalchemy.create_engine(system_url.replace("postgresql:", "postgresql+psycopg:", 1))
    pg = engine.dialect.name == "postgresql"
    table = "dbos.workflow_status" if pg else "workflow_status"
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                f"SELECT status, recovery_attempts, updated_at FROM {table} WHERE workflow_uuid = "
                + ("%s" if pg else "?"),
                (workflow_id,),
            ).first()
    except sqlalchemy.exc.OperationalError:  # the system database is not created yet
        return None
    finally:
        engine.dispose()
    return None if row is None else (str(row[0]), int(row[1] or 0), int(row[2] or 0))


async def _spawn(zygote: Zygote, cfg: Path, state: Path, out: Path) -> tuple[Child, int]:
    env = {**os.environ, "CI": "1", "PYTHONUNBUFFERED": "1", "OSQ_RESEND_TOKEN": TOKEN}
    args = ["fleet", "--config", str(cfg), "--state", str(state), "--duration", "120", "--plain"]
    child = await zygote.spawn("opensqt.cli", args, out=out, env=env, cwd=ROOT)
    line = await child.line_containing("opensqt: http://", timeout=120)
    return child, int(line.rsplit(":", 1)[1].split("/")[0])


async def _add_eth(port: int, key: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key}
    body = {"symbol": ETH, "overrides": {"price_interval": "1"}}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/symbols", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_resent_request_is_finished_by_its_account_never_by_another_process(
    db: str, tmp_path: Path, zygote: Zygote
) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}_"
    account = f"resend-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "fleet.db"
    url = sqlite_url(state) if db == "sqlite" else PG_URL
    if db == "postgres":
        require_postgres()
    system_url = system_database_url(url, state)
    perps = tuple(
        InstrumentSpec(symbol=s, initial_price=p, maker_fee=Decimal(0), taker_fee=Decimal(0))
        for s, p in ((BTC, Decimal(60000)), (ETH, Decimal(3000)))
    )
    sim = SimVenue.default(seed=3, speed=10, instruments=perps)
    sim.start()
    # ETH's instrument rules wait for the gate: the add workflow stays pending in its "engine started"
    # step until the test kills the process.
    gate = asyncio.Event()
    real_instruments = sim.get_instruments

    async def gated_instruments(symbols: Any = None) -> Any:
        if symbols and ETH in symbols:
            await gate.wait()
        return await real_instruments(symbols)

    sim.get_instruments = gated_instruments  # type: ignore[method-assign]
    server = ConnectorServer([sim], ConnectorConfig(port=0, validate_credentials=False, grace=0.5))
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text(
        CONFIG.format(symbol=BTC, port=await server.start(), url=url, prefix=prefix, account=account)
    )
    workflow_id = f"add:{account}:{ETH}:k1"
    other_store = StateStore(url, table_prefix=prefix)
    other: Durable | None = None
    children: list[Child] = []
    try:
        first, port = await _spawn(zygote, cfg, state, tmp_path / "first.out")
        children.append(first)
        request = asyncio.create_task(_add_eth(port, "k1"))
        pending = lambda: (_workflow_row(system_url, workflow_id) or ("",))[0] == "PENDING"  # noqa: E731
        await until(pending, timeout=60.0, interval=0.05, what="the add workflow pending")
        await first.kill()  # kill -9 while the add workflow is pending
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await request
        left = _workflow_row(system_url, workflow_id)
        assert left is not None and left[0] == "PENDING"

        # Another account's fleet on the same state and DBOS system database starts (this process).
        registry = SymbolRegistry(other_store.engine, f"other-{uuid.uuid4().hex[:8]}", table_prefix=prefix)
        fleet = Fleet(default_paper_config({"OPENSQT_HTTP_PORT": "0"}), sim, other_store, registry)
        other = Durable(fleet, system_url)
        other.launch()
        # Its recovery, run to the end here (launch also starts one in the background; this is the same
        # pass, DBOS's own, synchronous): the dead process's workflow is not its to recover.
        recovered = await asyncio.to_thread(DBOS._recover_pending_workflows, ["local"])
        assert workflow_id not in {h.workflow_id for h in recovered}
        assert _workflow_row(system_url, workflow_id) == left, "another account's process took it"

        # The account's next process resumes it; the same request again gets the one result.
        gate.set()
        second, port = await _spawn(zygote, cfg, state, tmp_path / "second.out")
        children.append(second)
        status, body = await _add_eth(port, "k1")
        assert (status, body) == (200, {"symbol": ETH, "state": "running"}), second.tail(60)
        assert await _add_eth(port, "k1") == (200, body)
        done = _workflow_row(system_url, workflow_id)
        assert done is not None and done[0] == "SUCCESS"
        with contextlib.suppress(ProcessLookupError):
            os.kill(second.pid, signal.SIGTERM)
        assert await second.wait(timeout=120) == 0, second.tail(60)
    finally:
        for child in children:
            if child.returncode is None:
                await child.kill()
        if other is not None:
            await asyncio.to_thread(other.destroy)
        await server.stop()
        await sim.aclose()
        if db == "postgres":
            with other_store.engine.begin() as conn:
                for t in ("lease", "symbols"):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{t}")
            other_store.drop_all()
        other_store.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.asyncio(loop_scope="module")
async def test_a_close_killed_mid_settle_is_resumed_and_closes_the_position_once(
    tmp_path: Path, zygote: Zygote
) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}_"
    account = f"settle-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "fleet.db"
    system_url = system_database_url(sqlite_url(state), state)
    perp = InstrumentSpec(symbol=ETH, initial_price=Decimal(3000), maker_fee=Decimal(0), taker_fee=Decimal(0))
    sim = SimVenue.default(seed=4, speed=10, instruments=(perp,))
    sim.start()
    manual = order_pb2.Order(
        client_order_id="manual-eth",
        symbol=ETH,
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_MARKET,
        quantity="0.3",
    )
    await sim.place_order(manual)  # the account holds 0.3 ETH: the fleet's first start recovers it
    # The reduction's first IOC order waits at the venue's door until the process is dead.
    reached, gate, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_place = sim.place_order
    sent: list[str] = []

    async def gated_place(order: order_pb2.Order) -> Any:
        if not order.client_order_id.startswith("osr"):
            return await real_place(order)
        sent.append(order.client_order_id)
        if len(sent) == 1:
            reached.set()
            try:
                await gate.wait()
            finally:
                done.set()
        return await real_place(order)

    sim.place_order = gated_place  # type: ignore[method-assign]
    server = ConnectorServer([sim], ConnectorConfig(port=0, validate_credentials=False, grace=0.5))
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text(
        CONFIG.format(
            symbol=ETH, port=await server.start(), url=sqlite_url(state), prefix=prefix, account=account
        )
    )
    workflow_id = f"remove:{account}:{ETH}:rm1"
    children: list[Child] = []

    async def remove(port: int) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "rm1"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/symbols/{ETH}/remove", json={"position": "close"}, headers=headers
            ) as r,
        ):
            return r.status, await r.json()

    try:
        first, port = await _spawn(zygote, cfg, state, tmp_path / "first.out")
        children.append(first)
        request = asyncio.create_task(remove(port))
        await asyncio.wait_for(reached.wait(), timeout=120)
        await first.kill()  # kill -9 inside the settle step, the IOC order in flight
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await request
        assert (_workflow_row(system_url, workflow_id) or ("",))[0] == "PENDING"
        gate.set()  # the order lands after its sender died (or never, if the connector dropped it)
        await asyncio.wait_for(done.wait(), timeout=30)

        second, port = await _spawn(zygote, cfg, state, tmp_path / "second.out")
        children.append(second)
        status, body = await remove(port)
        assert status == 200, (body, second.tail(60))
        settled = body["position"]
        assert settled["mode"] == "close" and settled["state"] == "done", (body, second.tail(60))
        assert await remove(port) == (200, body)  # the same request again: the one result
        every = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)
        history = await sim.get_orders(OrderFilter(symbol=ETH, statuses=every))
        held = sum((Decimal(p.quantity or "0") for p in await sim.get_positions([ETH])), Decimal(0))
        with contextlib.suppress(ProcessLookupError):
            os.kill(second.pid, signal.SIGTERM)
        assert await second.wait(timeout=120) == 0, second.tail(60)
    finally:
        for child in children:
            if child.returncode is None:
                await child.kill()
        await server.stop()
        await sim.aclose()
    cids = [o.client_order_id for o in history]
    assert len(cids) == len(set(cids)), "a client order id was placed twice"
    reduce = [o for o in history if o.client_order_id.startswith("osr")]
    # Every reduction order is one of the record's attempts, the one in flight at the kill its first
    # (looked up after the restart, never sent again under a new id while it could still land).
    assert {o.client_order_id for o in reduce} <= set(settled["attempts"]) and reduce
    assert sent[0] == settled["attempts"][0] and sent.count(sent[0]) == 1
    assert held == 0
    assert not [o for o in history if o.status in OPEN_STATUSES]
    assert _workflow_row(system_url, workflow_id) is not None
    assert (_workflow_row(system_url, workflow_id) or ("",))[0] == "SUCCESS"
