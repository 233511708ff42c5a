"""One owner per account: the lease and its fencing, on SQLite and the real PostgreSQL.

PostgreSQL tests FAIL (never skip) when the server at 127.0.0.1:5432 (db ``test``) is missing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy

from cqc.venues.v1 import order_pb2
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.app.runner import run_engine
from opensqt.config import default_paper_config
from opensqt.engine.lease import AccountLease, Fenced, LeaseHeld
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import OrderRow, StateStore, sqlite_url
from opensqt.model.slots import SlotState
from opensqt.tests.postgres import PG_URL

SYM = "BTC-USDT-PERP"


class Wall:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _pg_store(prefix: str) -> StateStore:
    try:
        return StateStore(PG_URL, table_prefix=prefix)
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at {PG_URL}: {exc}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    s = (
        StateStore(sqlite_url(tmp_path / "state.db"), table_prefix=prefix)
        if request.param == "sqlite"
        else _pg_store(prefix)
    )
    try:
        yield s
    finally:
        with s.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}lease")
        s.drop_all()
        s.close()


def _lease(store: StateStore, wall: Wall, owner: str, ttl: float = 10.0) -> AccountLease:
    prefix = store.meta.name.removesuffix("meta")
    return AccountLease(store.engine, "acct", owner=owner, ttl=ttl, table_prefix=prefix, wall=wall)


def _intent(cid: str) -> OrderRow:
    return OrderRow(cid, SYM, 1, order_pb2.ORDER_SIDE_BUY, Decimal(100), Decimal(1), 0, "intent")


def test_second_owner_is_refused_while_the_first_lease_is_live(store: StateStore) -> None:
    wall = Wall()
    a, b = _lease(store, wall, "a"), _lease(store, wall, "b")
    assert a.try_acquire() == 1
    assert b.try_acquire() is None
    wall.now += 9.9
    assert b.try_acquire() is None
    assert "owned by another engine (a, token 1" in b.held_message()
    with pytest.raises(LeaseHeld, match="owned by another engine"):
        asyncio.run(b.acquire(wait=False))


def test_renewal_keeps_the_lease_and_a_stale_lease_is_taken_over_with_a_new_token(store: StateStore) -> None:
    wall = Wall()
    a, b = _lease(store, wall, "a"), _lease(store, wall, "b")
    assert a.try_acquire() == 1
    wall.now += 8
    assert a.renew()
    wall.now += 8  # 16 s after the start, but renewed at 8: still live
    assert b.try_acquire() is None
    wall.now += 2.1  # past the renewed expiry
    assert b.try_acquire() == 2
    assert not a.renew()  # a learns it is fenced
    cur = b.current()
    assert cur is not None and (cur.owner, cur.token) == ("b", 2)


def test_a_fenced_out_owner_cannot_commit_an_order_intent(store: StateStore) -> None:
    wall = Wall()
    a, b = _lease(store, wall, "a"), _lease(store, wall, "b")
    a.try_acquire()
    store.fence = a.fence_check
    assert store.save(SYM, orders=[_intent("cid-1")])
    wall.now += 11
    # Expired, not yet taken over: still no placement on a stale view.
    with pytest.raises(Fenced):
        store.save(SYM, orders=[_intent("cid-2")])
    assert b.try_acquire() == 2
    with pytest.raises(Fenced, match="no longer valid"):
        store.save(SYM, orders=[_intent("cid-3")])
    assert [r.client_order_id for r in store.load_orders(SYM)] == ["cid-1"]
    # Writes that place nothing (a fill, a cancel request) are not fenced.
    assert store.save(
        SYM, orders=[OrderRow("cid-1", SYM, 1, 1, Decimal(100), Decimal(1), 0, "cancel_requested")]
    )
    # The new owner places.
    store.fence = b.fence_check
    assert store.save(SYM, orders=[_intent("cid-4")])


def _race(contenders: list[AccountLease]) -> list[int | None]:
    start = threading.Barrier(len(contenders))
    won: list[int | None] = [None] * len(contenders)

    def go(i: int) -> None:
        start.wait()
        try:
            won[i] = contenders[i].try_acquire()
        except sqlalchemy.exc.OperationalError:
            won[i] = None  # SQLite: a loser may see "database is locked"; it lost

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def test_racing_takeovers_of_a_stale_lease_have_exactly_one_winner(store: StateStore) -> None:
    wall = Wall()
    old = _lease(store, wall, "old")
    old.try_acquire()
    wall.now += 100
    for round_ in range(5):
        won = _race([_lease(store, wall, f"c{round_}-{i}") for i in range(4)])
        winners = [w for w in won if w is not None]
        assert len(winners) == 1, won
        assert winners[0] == round_ + 2
        wall.now += 100  # the winner's lease expires for the next round


async def test_a_second_engine_on_the_same_account_exits_with_one_line(tmp_path: Path) -> None:
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    cfg = cfg.model_copy(update={"http": cfg.http.model_copy(update={"enabled": False})})
    state = tmp_path / "paper.db"
    first = asyncio.create_task(
        run_engine(cfg, state_path=state, duration=30, speed=10, plain=True, chart=False)
    )
    store = StateStore(sqlite_url(state))
    try:
        lease = AccountLease(store.engine, "sim", owner="probe")
        for _ in range(500):  # the first engine holds the lease once it started
            cur = await asyncio.to_thread(lease.current)
            if cur is not None and cur.expires > 0:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(LeaseHeld) as err:
            await run_engine(cfg, state_path=state, duration=1, plain=True, chart=False)
        assert "\n" not in str(err.value) and "account 'sim' is owned by another engine" in str(err.value)
    finally:
        first.cancel()
        with pytest.raises((asyncio.CancelledError, Exception)):
            await first
        store.close()


async def test_a_fenced_engine_places_nothing(tmp_path: Path) -> None:
    """The engine whose lease was taken over commits no intent, so it sends no order."""
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    sim = SimVenue.default(seed=3, clock=SimClock())
    store = StateStore(sqlite_url(tmp_path / "paper.db"))
    wall = Wall()
    mine = AccountLease(store.engine, "sim", owner="mine", wall=wall)
    mine.try_acquire()
    store.fence = mine.fence_check
    engine = GridEngine(cfg, sim, store)
    await engine.start(run_tasks=False)
    await sim.run_for(1.0)
    await engine.on_price(Decimal((await sim.get_latest_price(SYM)).last))
    placed = engine.stats.placed
    assert placed > 0
    wall.now += 100
    assert AccountLease(store.engine, "sim", owner="other", wall=wall).try_acquire() == 2
    refused = 0
    for _ in range(10):
        await sim.run_for(5.0)
        try:  # the tick loop logs and counts this; the lease keeper stops the engine
            await engine.on_price(Decimal((await sim.get_latest_price(SYM)).last))
        except Fenced:
            refused += 1
    assert refused > 0
    assert engine.stats.placed == placed
    assert all(s.state is not SlotState.PENDING for s in engine.slots.values())
    await engine.stop(cancel_orders=False)


def test_a_dead_local_owner_is_taken_over_before_expiry(store: StateStore) -> None:
    """A killed process's lease (same host, pid gone) is taken at once; a live pid's lease is not."""
    import socket
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    dead_pid = int(proc.stdout)
    wall = Wall()
    host = socket.gethostname()
    live = _lease(store, wall, f"{host}:{os.getppid()}:x")
    assert live.try_acquire() == 1
    assert _lease(store, wall, "b").try_acquire() is None  # the parent process is alive
    wall.now += 11
    dead = _lease(store, wall, f"{host}:{dead_pid}:x")
    assert dead.try_acquire() == 2  # by expiry
    # No time passes: its pid is gone, so the lease is taken at once.
    assert _lease(store, wall, "c").try_acquire() == 3
    assert not dead.renew()
