"""The state store against SQLite and the real PostgreSQL (unique table prefix per run, dropped after)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy

from cqc.venues.v1 import order_pb2
from opensqt.engine.store import (
    AsyncStore,
    AuditRecord,
    FillRow,
    OrderRow,
    StateStore,
    StoreWriteFailed,
    sqlite_url,
)
from opensqt.model.slots import Slot, SlotState
from opensqt.tests.postgres import PG_URL

BUY = order_pb2.ORDER_SIDE_BUY
SYM = "BTC-USDT"


def _pg_store() -> StateStore:
    import sqlalchemy

    prefix = f"t{uuid.uuid4().hex[:10]}_"
    try:
        store = StateStore(PG_URL, table_prefix=prefix)
    except sqlalchemy.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_URL} (CI is set, so this fails): {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(sqlite_url(tmp_path / "state.db")) if request.param == "sqlite" else _pg_store()
    try:
        yield s
    finally:
        s.drop_all()
        s.close()


def _slot_with_intent(level: int = -2) -> Slot:
    slot = Slot(level=level, position=Decimal("0.5"), entry_price=Decimal(99))
    slot.submit(
        namespace="n", side=BUY, price=Decimal(98), quantity=Decimal("0.3"), post_only=True, reduce_only=False
    )
    return slot


def test_slots_round_trip_exactly(store: StateStore) -> None:
    slot = _slot_with_intent()
    slot.ack("venue-1")
    slot.fill(Decimal("0.1"), Decimal("97.5"))
    assert store.save(SYM, [slot, Slot(level=4)])
    loaded = store.load_slots(SYM)
    assert set(loaded) == {-2, 4}
    got = loaded[-2]
    assert (got.state, got.position, got.entry_price, got.cycle) == (
        slot.state,
        slot.position,
        slot.entry_price,
        slot.cycle,
    )
    assert got.order == slot.order
    assert loaded[4].state is SlotState.FREE and loaded[4].order is None
    assert store.load_slots("ETH-USDT") == {}


def test_fill_is_recorded_once_and_a_duplicate_commits_nothing(store: StateStore) -> None:
    slot = _slot_with_intent()
    store.save(SYM, [slot])
    fill = FillRow("t-1", "cid", SYM, -2, BUY, Decimal(98), Decimal("0.1"), Decimal(0), Decimal(0), 1.0)
    slot.ack()
    slot.fill(Decimal("0.1"), Decimal(98))
    assert store.save(SYM, [slot], fill=fill)
    later = slot.copy()
    later.fill(Decimal("0.1"), Decimal(98))
    assert not store.save(SYM, [later], fill=fill)  # same trade id: rejected, slot not written
    assert store.load_slots(SYM)[-2].order.filled == Decimal("0.1")  # type: ignore[union-attr]
    assert store.has_fill("t-1") and not store.has_fill("t-2")
    assert [f.fill_key for f in store.load_fills(SYM)] == ["t-1"]


def test_order_rows_upsert_and_meta(store: StateStore) -> None:
    row = OrderRow("osqabc", SYM, -2, BUY, Decimal(98), Decimal("0.3"), 1, "intent")
    store.save(SYM, orders=[row])
    store.save(
        SYM,
        orders=[OrderRow("osqabc", SYM, -2, BUY, Decimal(98), Decimal("0.3"), 1, "placed", order_id="v9")],
    )
    (got,) = store.load_orders(SYM)
    assert (got.status, got.order_id) == ("placed", "v9")
    epoch = store.epoch()
    assert store.epoch() == epoch and len(epoch) == 16
    assert store.get_meta("anchor") is None
    store.set_meta("anchor", "100.5")
    store.set_meta("anchor", "101")
    assert store.get_meta("anchor") == "101"


def test_intent_survives_a_reopen(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "s.db")
    first = StateStore(url)
    slot = _slot_with_intent()
    assert slot.order is not None
    cid = slot.order.client_order_id
    first.save(SYM, [slot], orders=[OrderRow(cid, SYM, -2, BUY, Decimal(98), Decimal("0.3"), 1, "intent")])
    epoch = first.epoch()
    first.engine.dispose()  # no clean shutdown work: what was committed is what a restart sees
    second = StateStore(url)
    assert second.load_slots(SYM)[-2].state is SlotState.PENDING
    assert second.load_orders(SYM)[0].status == "intent"
    assert second.epoch() == epoch
    second.close()


def test_a_failed_save_leaves_no_transaction_open_on_the_kept_connection(tmp_path: Path) -> None:
    """SQLite ``save`` keeps one connection: a save failing after its first write must not leave the
    write lock held (another connection's write would wait for busy_timeout, then fail)."""
    store = StateStore(sqlite_url(tmp_path / "s.db"))
    slot = _slot_with_intent()
    assert slot.order is not None
    # status NULL: the orders table refuses it (NOT NULL), after the slot row was written
    bad = OrderRow(slot.order.client_order_id, SYM, -2, BUY, Decimal(98), Decimal(1), 1, None)  # type: ignore[arg-type]
    try:
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            store.save(SYM, [slot], orders=[bad])
        store.set_meta("after", "ok")  # another connection writes at once
        assert store.load_slots(SYM) == {}  # the failed transaction was rolled back
        assert store.save(SYM, [slot])
        assert store.load_slots(SYM)[-2].state is SlotState.PENDING
    finally:
        store.close()


def test_saves_from_several_threads_all_commit(tmp_path: Path) -> None:
    store = StateStore(sqlite_url(tmp_path / "s.db"))

    def work(base: int) -> None:
        for i in range(40):
            store.save(SYM, [Slot(level=base + i)])

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(store.load_slots(SYM)) == 120
    finally:
        store.close()


@pytest.mark.parametrize(("durability", "level"), [("fsync", 2), ("process", 1)])
def test_durability_sets_sqlite_synchronous_on_every_connection(
    tmp_path: Path, durability: str, level: int
) -> None:
    """fsync = synchronous FULL (2), process = NORMAL (1); both WAL (docs/engine.md "Durability modes")."""
    store = StateStore(sqlite_url(tmp_path / "s.db"), durability=durability)
    try:
        for _ in range(2):  # a new pooled connection gets the same pragmas
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                conn.invalidate()
    finally:
        store.close()


def test_durability_is_checked() -> None:
    with pytest.raises(ValueError, match="durability"):
        StateStore("sqlite://", durability="none")
    with pytest.raises(ValueError, match="SQLite store only"):
        StateStore(PG_URL, durability="process")


@pytest.mark.parametrize("inline", [True, False])
async def test_async_store_runs_inline_or_on_its_thread(tmp_path: Path, inline: bool) -> None:
    store = AsyncStore(StateStore(sqlite_url(tmp_path / "a.db")), inline=inline)
    await store.run(store.store.save, SYM, [Slot(level=1)])
    loaded = await store.run(store.store.load_slots, SYM)
    assert list(loaded) == [1]
    ran_on = await store.run(threading.get_ident)
    assert (ran_on == threading.get_ident()) is inline
    await store.aclose()


async def test_async_store_is_inline_for_sqlite_only(store: StateStore) -> None:
    # SQLite commits are local (inline beats two thread wake-ups); PostgreSQL is a network round trip.
    wrapped = AsyncStore(store)
    assert wrapped.inline is (store.engine.dialect.name == "sqlite")
    await wrapped.write(store.save, SYM, [Slot(level=4)])
    assert list(await wrapped.run(store.load_slots, SYM)) == [4]
    wrapped._pool.shutdown(wait=True)


async def test_a_store_shared_by_two_engines_leaves_the_loop_for_good(tmp_path: Path) -> None:
    # The fleet: one SQLite store, many engines on one loop; one engine's fsync must not stall the rest.
    store = StateStore(sqlite_url(tmp_path / "f.db"))
    first = AsyncStore(store)
    assert first.inline
    second = AsyncStore(store)
    assert not first.inline and not second.inline
    await second.aclose()
    assert not first.inline  # never back to inline: a thread call may still be queued
    loop_thread = threading.get_ident()
    assert await first.run(threading.get_ident) != loop_thread
    await first.write(store.save, SYM, [Slot(level=6)])
    assert list(store.load_slots(SYM)) == [6]
    await first.aclose()


def test_audited_change_commits_slots_and_record_together(store: StateStore) -> None:
    slot = Slot(level=3, position=Decimal("0.2"), entry_price=Decimal(100))
    store.save_audited(SYM, [slot], AuditRecord(5.0, "resync", "alice", "venue restored", '{"venue": "0.2"}'))
    assert store.load_slots(SYM)[3].position == Decimal("0.2")
    assert store.load_audit(SYM) == [
        AuditRecord(5.0, "resync", "alice", "venue restored", '{"venue": "0.2"}')
    ]
    assert store.load_audit("ETH-USDT") == []


async def test_async_store_write_retries_a_failing_database_then_gives_up(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    calls = []

    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("connection reset"))
        return n

    async def no_wait(_s: float) -> None:
        return None

    store = AsyncStore(StateStore(sqlite_url(tmp_path / "w.db")), write_attempts=3, sleep=no_wait)
    assert await store.write(flaky, 7) == 7 and len(calls) == 3
    assert store.write_failures == 2
    calls.clear()

    def broken(n: int) -> int:
        raise OperationalError("INSERT", {}, Exception("connection reset"))

    with pytest.raises(StoreWriteFailed, match="3 times"):
        await store.write(broken, 1)
    await store.aclose()
