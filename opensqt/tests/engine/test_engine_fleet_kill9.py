"""kill -9 a multi-symbol fleet at random points, >= 30 times, on SQLite and on the real PostgreSQL.

The venue outlives the engine: the simulated venue (wall clock, 10x) is served by the real connector in
this test process; the fleet (``opensqt fleet``, venue ``remote``) is a child forked by the test zygote
(:mod:`cqvx.testing.zygote`: the imports are paid once per module, each start costs milliseconds, and the
child is otherwise a fresh ``python -m opensqt.cli``).  Each cycle starts
the fleet, sends one operator request over the control endpoint (add / remove a symbol, cancel-all,
resume) with an ``Idempotency-Key``, and kills the process at a random moment (during start-up, during
the request, or while trading).  A request whose answer was lost is sent again, with the SAME key, by the
next process.  A final clean run finishes what is unanswered, resumes every symbol and exits on SIGTERM
(cancel on exit).  Then the audit:

* the venue's full history: no client order id twice, every order has an intent in the store, every
  order's filled quantity equals the fills the store recorded for it, nothing of ours left open;
* DBOS: every workflow we started finished (SUCCESS) exactly once, and none is left pending or failed;
* position recovery: the venue holds a BTC position before the first start, so the first start recovers
  it through the ``recover-position`` workflow.  The first cycles kill the fleet WHILE that workflow is
  pending (the venue's position reads are slowed then, and the kill waits for the workflow to show as
  PENDING); the next start finishes it.  At the end every symbol's slots hold exactly the venue's
  position (a second recovery would hold more, a lost fill one order more or less) and the workflow
  finished once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy

from cqc.venues.v1 import order_pb2
from cqvx.testing.zygote import Child, Zygote, ZygoteError
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.connector.server import ConnectorConfig, ConnectorServer
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.engine.workflows import system_database_url
from opensqt.model.client_ids import is_our_client_order_id
from opensqt.tests.engine.fleet_preload import FLEET_PRELOAD
from opensqt.tests.postgres import PG_URL, require_postgres

ROOT = Path(__file__).resolve().parents[3]
BTC, ETH, SOL = "BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"
SYMBOLS = (BTC, ETH, SOL)
KILLS = 30
TOKEN = "kill9-control-token"
# What ``opensqt fleet`` imports, paid once in the module's zygote (opensqt/tests/conftest.py).
PRELOAD = FLEET_PRELOAD

CONFIG = """
trading:
  symbol: BTC-USDT-PERP
  price_interval: 10
  order_quantity: 100
  min_order_value: 5
  buy_window_size: 4
  sell_window_size: 4
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
  control_token: {{env: OSQ_KILL9_TOKEN}}
engine:
  price_send_interval: 0.02
  reconcile_interval: 1
system:
  cancel_on_exit: true
  log_level: WARNING
"""

# (method, path, body, is a DBOS workflow)
OPS: list[tuple[str, str, dict[str, Any] | None, bool]] = [
    ("POST", "/symbols", {"symbol": ETH, "overrides": {"price_interval": "1"}}, True),
    ("POST", "/symbols", {"symbol": SOL, "overrides": {"price_interval": "0.05"}}, True),
    ("POST", f"/symbols/{SOL}/remove", None, True),
    ("POST", "/cancel-all", {"reason": "kill9"}, True),
    ("POST", f"/symbols/{BTC}/resume", None, False),
    ("POST", f"/symbols/{ETH}/resume", None, False),
    ("POST", "/symbols", {"symbol": SOL, "overrides": {"price_interval": "0.05"}}, True),
]


def _sim() -> SimVenue:
    spot = InstrumentSpec(symbol="BTC-USDT", initial_price=Decimal(60000))
    perps = tuple(
        InstrumentSpec(symbol=s, initial_price=p, maker_fee=Decimal(0), taker_fee=Decimal(0))
        for s, p in ((BTC, Decimal(60000)), (ETH, Decimal(3000)), (SOL, Decimal(150)))
    )
    sim = SimVenue.default(seed=11, speed=10, instruments=(spot, *perps))
    sim.start()
    return sim


class Fleet:
    """One ``opensqt fleet`` child of the zygote and its announced HTTP port."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.port: asyncio.Task[int] = asyncio.create_task(self._port())

    @classmethod
    async def spawn(cls, zygote: Zygote, cfg: Path, state: Path, duration: float, out: Path) -> Fleet:
        env = {**os.environ, "CI": "1", "PYTHONUNBUFFERED": "1", "OSQ_KILL9_TOKEN": TOKEN}
        args = ["fleet", "--config", str(cfg), "--state", str(state), "--duration", str(duration), "--plain"]
        return cls(await zygote.spawn("opensqt.cli", args, out=out, env=env, cwd=ROOT))

    async def _port(self) -> int:
        line = await self.child.line_containing("opensqt: http://", timeout=600)
        return int(line.rsplit(":", 1)[1].split("/")[0])

    async def _forget_port(self) -> None:
        self.port.cancel()  # the child is gone: it never announces (ZygoteError) or announced already
        with contextlib.suppress(asyncio.CancelledError, ZygoteError, TimeoutError):
            await self.port

    async def kill(self) -> None:
        await self.child.kill()
        await self._forget_port()

    async def term(self, timeout: float) -> None:
        """SIGTERM (a clean exit: cancel on exit), then reap."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.child.pid, signal.SIGTERM)
        try:
            await self.child.wait(timeout=timeout)
        finally:
            await self._forget_port()


async def _send(port: int, op: tuple[str, str, dict[str, Any] | None, bool], key: str) -> dict[str, Any]:
    method, path, body, _ = op
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as http,
            http.request(method, f"http://127.0.0.1:{port}{path}", json=body, headers=headers) as r,
        ):
            assert r.status == 200, f"{path}: {r.status} {await r.text()}"
            out: dict[str, Any] = await r.json()
            return out
    except TimeoutError:  # aiohttp's total timeout: name the request instead of a bare TimeoutError
        raise AssertionError(f"{method} {path} ({key}) unanswered after {REQUEST_TIMEOUT} s") from None


REQUEST_TIMEOUT = 240  # seconds an operator request may take (a resumed workflow's bounded stops)
MANUAL = "manual-btc"  # the account's own order before the fleet ever ran: not ours, not audited
RECOVERY_KILLS = 3  # cycles that kill the fleet while BTC's position recovery is pending
SLOW_POSITIONS = 1.5  # seconds each venue position read takes during those cycles


def _workflow_status(system_url: str, prefix: str) -> list[tuple[str, str]]:
    """(workflow id, status) of the workflows whose id starts with ``prefix``."""
    engine = sqlalchemy.create_engine(system_url.replace("postgresql:", "postgresql+psycopg:", 1))
    schema = "dbos." if engine.dialect.name == "postgresql" else ""
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT workflow_uuid, status FROM {schema}workflow_status WHERE workflow_uuid LIKE {mark}",
                (f"{prefix}%",),
            ).all()
    except sqlalchemy.exc.OperationalError:  # not created yet
        return []
    finally:
        engine.dispose()
    return [(str(r[0]), str(r[1])) for r in rows]


async def _drive(fleet: Fleet, pending: dict[str, int], answered: set[str]) -> None:
    """Once the fleet is up: re-send every unanswered request (same key), then nothing more."""
    port = await fleet.port
    for key, idx in sorted(pending.items(), key=lambda kv: int(kv[0].split("-")[1])):
        await _send(port, OPS[idx], key)
        answered.add(key)
        del pending[key]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_fleet_survives_kill9_at_random_points(db: str, tmp_path: Path, zygote: Zygote) -> None:
    rng = random.Random(int(os.environ.get("OSQ_KILL9_SEED", "18")))
    prefix = f"k{uuid.uuid4().hex[:8]}_"
    account = f"kill9-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "fleet.db"
    url = sqlite_url(state) if db == "sqlite" else PG_URL
    if db == "postgres":
        require_postgres()
    sim = _sim()
    # The account already holds a BTC position: the first start recovers it (recover_position: true).
    await sim.place_order(
        order_pb2.Order(
            client_order_id=MANUAL,
            symbol=BTC,
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity="0.01",
        )
    )
    real_positions = sim.get_positions

    async def slow_positions(symbols: Any = None) -> Any:
        await asyncio.sleep(SLOW_POSITIONS)
        return await real_positions(symbols)

    sim.get_positions = slow_positions  # type: ignore[method-assign]
    system_url = system_database_url(url, state)
    recovering = f"recover-position:{account}:{BTC}:"
    killed_mid_recovery = 0
    server = ConnectorServer([sim], ConnectorConfig(port=0, validate_credentials=False, grace=0.5))
    port = await server.start()
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text(CONFIG.format(port=port, url=url, prefix=prefix, account=account))
    pending: dict[str, int] = {}  # request key -> op index, answer not seen yet
    answered: set[str] = set()
    started = time.monotonic()
    try:
        for cycle in range(KILLS):
            key = f"op-{cycle}"
            pending[key] = cycle % len(OPS)
            fleet = await Fleet.spawn(zygote, cfg, state, 120, tmp_path / f"fleet{cycle}.out")
            driver = asyncio.create_task(_drive(fleet, pending, answered))
            if cycle < RECOVERY_KILLS:
                # Inside BTC's position recovery: once its workflow shows PENDING, within a slow read.
                deadline = time.monotonic() + 60
                while not any(st == "PENDING" for _, st in _workflow_status(system_url, recovering)):
                    assert time.monotonic() < deadline, "the position recovery workflow never started"
                    await asyncio.sleep(0.02)
                await asyncio.sleep(rng.uniform(0.0, SLOW_POSITIONS * 0.8))
                if cycle == RECOVERY_KILLS - 1:
                    sim.get_positions = real_positions  # type: ignore[method-assign]
            # A random moment: during start-up (before the port is known), or 0-2.5 s after it.
            elif rng.random() < 0.25:
                await asyncio.sleep(rng.uniform(0.2, 2.0))
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(fleet.port), timeout=30)
                await asyncio.sleep(rng.uniform(0.0, 2.5))
            await fleet.kill()
            if cycle < RECOVERY_KILLS and any(
                st == "PENDING" for _, st in _workflow_status(system_url, recovering)
            ):
                killed_mid_recovery += 1
            driver.cancel()
            # ZygoteError: the port task saw the killed child exit before it announced its port.
            lost = (asyncio.CancelledError, aiohttp.ClientError, AssertionError, ZygoteError)
            with contextlib.suppress(*lost):
                await driver
            assert fleet.child.returncode == -signal.SIGKILL, fleet.child.tail(40)
        killed_in = time.monotonic() - started

        # The final run: finish every unanswered request (a resumed workflow may take its time: a drain,
        # a landing window), resume every symbol, trade a little, then SIGTERM: exit cleanly.
        final = await Fleet.spawn(zygote, cfg, state, 600, tmp_path / "final.out")
        try:
            await _drive(final, pending, answered)
            port_ = await final.port
            for sym in SYMBOLS:
                await _send(port_, ("POST", f"/symbols/{sym}/resume", None, False), f"resume-{sym}")
        except (aiohttp.ClientError, AssertionError) as exc:
            await final.term(timeout=120)
            raise AssertionError(f"{exc}\n{final.child.tail(80)}") from exc
        await asyncio.sleep(5)
        await final.term(timeout=120)
        assert final.child.returncode == 0, final.child.tail(60)
        statuses = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)
        history = [
            o
            for sym in SYMBOLS
            for o in await sim.get_orders(OrderFilter(symbol=sym, statuses=statuses))
            if o.client_order_id != MANUAL
        ]
        venue_position = {
            p.symbol: Decimal(p.quantity or "0") for p in await sim.get_positions(list(SYMBOLS))
        }
    finally:
        await server.stop()
        await sim.aclose()

    assert not pending and len(answered) == KILLS
    store = StateStore(url, table_prefix=prefix)
    try:
        ours = {r.client_order_id for sym in SYMBOLS for r in store.load_orders(sym)}
        fills = [f for sym in SYMBOLS for f in store.load_fills(sym)]
        held = {sym: sum((s.position for s in store.load_slots(sym).values()), Decimal(0)) for sym in SYMBOLS}
    finally:
        if db == "postgres":
            with store.engine.begin() as conn:
                for t in ("lease", "symbols"):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{t}")
            store.drop_all()
        store.close()
    cids = [o.client_order_id for o in history]
    assert len(history) >= 20, "too little trading to prove anything"
    assert len(cids) == len(set(cids)), "a client order id was placed twice"
    assert all(is_our_client_order_id(c) and c in ours for c in cids), "a venue order without an intent"
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills:
        filled[f.client_order_id] += f.quantity
    missing = {
        o.client_order_id: (o.filled_quantity, filled.get(o.client_order_id))
        for o in history
        if Decimal(o.filled_quantity or "0") != filled.get(o.client_order_id, Decimal(0))
    }
    detail = {
        cid: [(f.fill_key, f.symbol, f.level, str(f.quantity)) for f in fills if f.client_order_id == cid]
        + [(o.symbol, o.status, o.quantity, o.filled_quantity) for o in history if o.client_order_id == cid]
        for cid in missing
    }
    assert not missing, f"fills not accounted for: {missing} {detail}"
    assert not [o for o in history if o.status in OPEN_STATUSES], "an order of ours left open"
    # The slots hold exactly what the venue holds: a second recovery would put the venue's position into
    # the slots twice, and a slot that lost a fill's position (a commit whose caller was cancelled, fixed
    # in engine/store.py and engine/ledger.py) showed here as one order above or below.
    assert held == {s: venue_position.get(s, Decimal(0)) for s in SYMBOLS}, (
        "the slots do not hold the venue's position",
        held,
        venue_position,
    )
    assert killed_mid_recovery >= 1, "no kill landed inside the position recovery"
    _audit_workflows(system_url, account)
    # ~1 min on an idle 2-core box (3.5 min before the zygote); the bound leaves room for a loaded one.
    assert killed_in < 420, f"{KILLS} kills took {killed_in:.0f} s"


def _audit_workflows(system_url: str, account: str) -> None:
    """Every workflow of this account finished exactly once: one row per id, all SUCCESS."""
    sa_url = system_url.replace("postgresql:", "postgresql+psycopg:", 1)
    engine = sqlalchemy.create_engine(sa_url)
    schema = "dbos." if engine.dialect.name == "postgresql" else ""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT workflow_uuid, status FROM {schema}workflow_status WHERE workflow_uuid LIKE ?"
                if engine.dialect.name == "sqlite"
                else f"SELECT workflow_uuid, status FROM {schema}workflow_status WHERE workflow_uuid LIKE %s",
                (f"%:{account}:%",),
            ).all()
    finally:
        engine.dispose()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    recoveries = [i for i in ids if i.startswith("recover-position:")]
    assert any(i.startswith(f"recover-position:{account}:{BTC}:") for i in recoveries), ids
    workflow_ops = sum(1 for i in range(KILLS) if OPS[i % len(OPS)][3])
    assert len(ids) - len(recoveries) == workflow_ops, (len(ids), workflow_ops)
    assert {r[1] for r in rows} == {"SUCCESS"}, rows
