"""A commit whose caller is cancelled while the database thread runs it (issue 18, the fleet kill -9 test's
slots one order above the venue).

A stop cancels the engine's loops; one of them may be inside a ledger write that the store runs on its
thread (PostgreSQL always, SQLite when the fleet shares the store).  The thread commits whatever happens
to the awaiting coroutine.  Before the fix the caller got ``CancelledError`` there and its slot never
took the committed row over: memory was one fill behind the store.  The stop's cancel path then wrote
that stale slot back (LOCKED -> CANCEL_REQUESTED with the old position) and the lookup that followed
found the fill recorded and credited it "position unchanged": the store lost one order's position.

The database really blocks here: another connection holds the write lock while the caller is cancelled,
then lets go, and the commit goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2
from opensqt.config import parse_config
from opensqt.engine.context import EngineStats, GridContext
from opensqt.engine.executor import VenueOrderState
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.store import AsyncStore, StateStore, sqlite_url
from opensqt.model.slots import SlotState
from opensqt.observability.metrics import EngineMetrics
from opensqt.strategy.grid import Cancel, GridParams, Place
from opensqt.tests.postgres import PG_URL, require_postgres

D = Decimal
SYM = "ETH-USDT-PERP"
BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL
CFG = """
trading:
  symbol: ETH-USDT-PERP
  price_interval: 1
  order_quantity: 30
  min_order_value: 20
  buy_window_size: 3
  sell_window_size: 3
  position_safety_check: 10
  recover_position: false
risk:
  enabled: false
"""


class _Db:
    """The state store on one database, and a second connection that can hold its write lock."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.prefix = f"c{uuid.uuid4().hex[:8]}_"
        if kind == "sqlite":
            self.path = tmp / "state.db"
            self.store = StateStore(sqlite_url(self.path), table_prefix=self.prefix)
        else:
            require_postgres()
            self.store = StateStore(PG_URL, table_prefix=self.prefix)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        if self.kind == "sqlite":
            lite = sqlite3.connect(self.path, isolation_level=None)
            lite.execute("BEGIN IMMEDIATE")  # the store's writer waits on busy_timeout (5 s)
            try:
                yield
            finally:
                lite.execute("ROLLBACK")
                lite.close()
            return
        with self.store.engine.connect() as conn:
            conn.exec_driver_sql(f"LOCK TABLE {self.prefix}slots IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()

    def lock_waiters(self) -> int:
        """Sessions waiting on a lock (PostgreSQL); SQLite cannot tell, so it answers 1."""
        if self.kind == "sqlite":
            return 1
        with self.store.engine.connect() as conn:
            n = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'test'"
            ).scalar()
        return int(n or 0)

    def close(self) -> None:
        self.store.drop_all()
        self.store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Db]:
    d = _Db(request.param, tmp_path)
    try:
        yield d
    finally:
        d.close()


def _ledger(db: _Db) -> SlotLedger:
    cfg = parse_config(CFG, {})
    ctx = GridContext(SYM, "grid", GridParams.from_config(cfg.trading))
    # The thread, as in the fleet (a shared SQLite store) and always on PostgreSQL.
    store = AsyncStore(db.store, inline=False)
    return SlotLedger(ctx, store, EngineStats(), EngineMetrics(), wall=lambda: 1.0)


def _filled(cid: str) -> execution_pb2.ExecutionReport:
    return execution_pb2.ExecutionReport(
        client_order_id=cid,
        symbol=SYM,
        order_id="v-" + cid,
        order_status=order_pb2.ORDER_STATUS_FILLED,
        execution_type=execution_pb2.EXECUTION_TYPE_TRADE,
        trade_id="T-" + cid,
        cumulative_quantity="1",
        last_quantity="1",
        last_price="100",
    )


async def _cancelled_mid_commit(db: _Db, ledger: SlotLedger, report: execution_pb2.ExecutionReport) -> None:
    """Apply ``report`` in a task that is cancelled while its commit waits on the database."""
    with db.write_lock():
        task = asyncio.create_task(ledger.apply_report(report))
        deadline = asyncio.get_running_loop().time() + 5
        while db.lock_waiters() < 1:  # the commit is on the database thread, waiting on our lock
            assert asyncio.get_running_loop().time() < deadline, "the ledger's commit never reached the db"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.sleep(0.05)  # the cancellation reaches the caller while the commit still waits
    with pytest.raises(asyncio.CancelledError):
        await task  # the caller is still cancelled: the stop goes on


async def test_a_cancelled_callers_commit_reaches_memory_and_a_stop_keeps_it(db: _Db) -> None:
    ledger = _ledger(db)
    await ledger.load()
    # One bought unit at level -1, then its closing sell from the same slot (LOCKED, acknowledged).
    async with ledger.lock:
        ((buy, bmsg),) = await ledger.commit_intents([Place(-1, BUY, D(99), D(1), True, False, True)])
    await ledger.apply_report(_filled(bmsg.client_order_id))
    assert buy.position == D(1)
    async with ledger.lock:
        ((sell, smsg),) = await ledger.commit_intents([Place(-1, SELL, D(100), D(1), True, True, False)])
        await ledger.apply_state(
            sell, smsg.client_order_id, VenueOrderState("v-s", order_pb2.ORDER_STATUS_OPEN, D(0), None)
        )
    assert sell.state is SlotState.LOCKED
    held_before = ledger.position()

    # The sell fills; its commit is under way when a stop cancels the loop applying it.
    await _cancelled_mid_commit(db, ledger, _filled(smsg.client_order_id))
    stored = await ledger.store.run(db.store.load_slots, SYM)
    assert sum(s.position for s in stored.values()) == held_before - 1, "the sell's commit did not land"
    assert ledger.position() == held_before - 1, "memory did not take the committed sell over"
    assert {lv: s.position for lv, s in ledger.slots.items()} == {lv: s.position for lv, s in stored.items()}

    # The stop's cancel path: every order still held is cancelled (resend), then looked up (FILLED).
    async with ledger.lock:
        cancels = [Cancel(lv, cid, "shutdown") for cid in ledger.order_ids() if (lv := ledger.by_cid[cid])]
        await ledger.commit_cancels(cancels, resend=True)
        if (slot := ledger.slot_for(smsg.client_order_id)) is not None:
            await ledger.apply_state(
                slot,
                smsg.client_order_id,
                VenueOrderState("v-s", order_pb2.ORDER_STATUS_FILLED, D(1), D(100)),
            )
    stored = await ledger.store.run(db.store.load_slots, SYM)
    assert sum(s.position for s in stored.values()) == held_before - 1, "the stop wrote a stale slot back"
    fills = await ledger.store.run(db.store.load_fills, SYM)
    assert sum(f.quantity for f in fills if f.client_order_id == smsg.client_order_id) == D(1)

    # A restart loads what the store holds: one unit bought, one sold, nothing held.
    again = _ledger(db)
    await again.load()
    assert again.position() == D(0)
    await ledger.store.aclose()
    await again.store.aclose()


async def test_a_commit_that_does_not_finish_does_not_hang_the_stop(db: _Db) -> None:
    """The wait for a commit in flight is bounded (``commit_wait``): a database that stopped answering
    must not hang a stop; the caller's cancellation goes on with the outcome unknown."""
    ledger = _ledger(db)
    ledger.store.commit_wait = 0.3
    await ledger.load()
    async with ledger.lock:
        ((_, msg),) = await ledger.commit_intents([Place(-1, BUY, D(99), D(1), True, False, True)])
    loop = asyncio.get_running_loop()
    with db.write_lock():
        task = asyncio.create_task(ledger.apply_report(_filled(msg.client_order_id)))
        deadline = loop.time() + 5
        while db.lock_waiters() < 1:
            assert loop.time() < deadline, "the ledger's commit never reached the db"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # SQLite cannot tell: the task reaches the database thread meanwhile
        task.cancel()
        cancelled_at = loop.time()
        with pytest.raises(asyncio.CancelledError):
            await task
        waited = loop.time() - cancelled_at
        assert 0.25 <= waited < 2.0, f"the stop waited {waited:.2f} s for a commit that could not finish"
    await ledger.store.aclose()
