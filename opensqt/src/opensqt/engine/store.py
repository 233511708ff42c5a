"""The state store (SQLAlchemy 2 Core): SQLite by default, PostgreSQL by URL.

The outbox rule (reference §12.9): every intent is committed BEFORE its side effect.  A placement is the
slot row in ``PENDING`` with the client order id plus an ``orders`` row in ``intent``; a cancel is the slot
in ``CANCEL_REQUESTED``.  A process killed at any point restarts from these rows and reconciles with the
venue by client order id (see ``orchestrator.GridEngine.recover``).  Fills are keyed by the venue's trade
id (or, for a fill learned by reconciliation, ``<client order id>@<cumulative quantity>``) and inserted
with ON CONFLICT DO NOTHING in the same transaction as the slot update, so a fill is applied exactly once.

All methods are synchronous; the engine calls them through :class:`AsyncStore`, which keeps writes
strictly ordered.  It runs a SQLite store's calls inline on the event loop thread and a PostgreSQL
store's on one dedicated thread (see :class:`AsyncStore` for why).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import structlog
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from cqvx.backoff import Backoff
from cqvx.num import dec_str
from opensqt.model.slots import OrderIntent, Slot, SlotState

__all__ = [
    "SYNCHRONOUS",
    "AsyncStore",
    "AuditRecord",
    "FillRow",
    "OrderRow",
    "StateStore",
    "StoreWriteFailed",
    "sqlite_url",
]

log = structlog.get_logger("opensqt.engine")

P = ParamSpec("P")
T = TypeVar("T")


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One of our orders (one row per client order id): the outbox and the audit trail."""

    client_order_id: str
    symbol: str
    level: int
    side: int
    price: Decimal
    quantity: Decimal
    cycle: int
    # intent | placed | partial | unresolved | cancel_requested | filled | closed | rejected | absent
    # (not found after the landing window; may still land) | adopted | late (no slot holds it)
    status: str
    filled: Decimal = Decimal(0)
    order_id: str = ""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One operator action on the state (``resync``), with who and why; ``detail`` is JSON."""

    ts: float
    action: str
    operator: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class FillRow:
    fill_key: str  # "<cid>@<cumulative>"; a per-fill report without a cumulative figure: its trade id
    client_order_id: str
    symbol: str
    level: int
    side: int
    price: Decimal
    quantity: Decimal
    fee: Decimal
    realized_pnl: Decimal
    ts: float


#: SQLite ``synchronous`` per durability mode (``state.durability``; docs/engine.md "Durability modes").
#: fsync: FULL, the WAL is fsynced at every commit (survives power loss and an OS crash).  process:
#: NORMAL, in WAL mode a commit is written to the WAL file (the OS page cache) and fsynced only at a
#: checkpoint; it survives kill -9 of the process, and power loss may roll back the last commits.
SYNCHRONOUS = {"fsync": "FULL", "process": "NORMAL"}


class StateStore:
    def __init__(self, url: str, *, table_prefix: str = "osq_", durability: str = "fsync") -> None:
        if durability not in SYNCHRONOUS:
            raise ValueError(f"durability must be one of {sorted(SYNCHRONOUS)}, not {durability!r}")
        self.url = url
        self.durability = durability
        memory = url in ("sqlite://", "sqlite:///:memory:")
        # An in-memory SQLite database lives in one connection: share it (tests, benchmarks).
        kwargs: dict[str, Any] = (
            {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}} if memory else {}
        )
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            synchronous = SYNCHRONOUS[durability]
            event.listen(self.engine, "connect", lambda conn, _rec: _sqlite_pragmas(conn, synchronous))
        elif durability != "fsync":
            raise ValueError("durability: process applies to the SQLite store only")
        self._md = MetaData()
        p = table_prefix
        self.meta = Table(
            f"{p}meta", self._md, Column("key", String(64), primary_key=True), Column("value", String(256))
        )
        self.slots = Table(
            f"{p}slots",
            self._md,
            Column("symbol", String(64), primary_key=True),
            Column("level", Integer, primary_key=True),
            Column("state", String(20), nullable=False),
            Column("position", String(64), nullable=False),
            Column("entry_price", String(64), nullable=False),
            Column("cycle", Integer, nullable=False),
            Column("post_only_rejects", Integer, nullable=False),
            Column("cid", String(64)),
            Column("side", Integer),
            Column("price", String(64)),
            Column("quantity", String(64)),
            Column("filled", String(64)),
            Column("fill_cost", String(64)),
            Column("post_only", Boolean),
            Column("reduce_only", Boolean),
            Column("order_id", String(128)),
            Column("updated_at", Float, nullable=False),
        )
        self.orders = Table(
            f"{p}orders",
            self._md,
            Column("cid", String(64), primary_key=True),
            Column("symbol", String(64), nullable=False),
            Column("level", Integer, nullable=False),
            Column("side", Integer, nullable=False),
            Column("price", String(64), nullable=False),
            Column("quantity", String(64), nullable=False),
            Column("cycle", Integer, nullable=False),
            Column("status", String(20), nullable=False),
            Column("filled", String(64), nullable=False),
            Column("order_id", String(128), nullable=False),
            Column("updated_at", Float, nullable=False),
        )
        self.fills = Table(
            f"{p}fills",
            self._md,
            Column("fill_key", String(160), primary_key=True),
            Column("cid", String(64), nullable=False, index=True),
            Column("symbol", String(64), nullable=False),
            Column("level", Integer, nullable=False),
            Column("side", Integer, nullable=False),
            Column("price", String(64), nullable=False),
            Column("quantity", String(64), nullable=False),
            Column("fee", String(64), nullable=False),
            Column("realized_pnl", String(64), nullable=False),
            Column("ts", Float, nullable=False),
        )
        # Operator actions (``resync``): who, why, what changed.  Never updated, never deleted.
        self.audit = Table(
            f"{p}audit",
            self._md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("ts", Float, nullable=False),
            Column("symbol", String(64), nullable=False),
            Column("action", String(32), nullable=False),
            Column("operator", String(128), nullable=False),
            Column("reason", String(512), nullable=False),
            Column("detail", String(4000), nullable=False),
        )
        self._md.create_all(self.engine)
        # Upserts built once with bound parameters and run as executemany: building and compiling a
        # fresh statement per row cost ~0.5 ms per intent commit (the tick-to-order path).  ``save``
        # runs them as driver SQL (compiled once here): half the cost of ``Connection.execute`` per
        # statement (docs/performance.md, round 3); every value is a str, int, float, bool or None,
        # which both drivers bind as SQLAlchemy would.
        self._slot_upsert = self._upsert_stmt(self.slots, ["symbol", "level"])
        self._order_upsert = self._upsert_stmt(self.orders, ["cid"])
        self._slot_sql = self._driver_sql(self._slot_upsert)
        self._order_sql = self._driver_sql(self._order_upsert)
        self._fill_insert = self._insert(self.fills).on_conflict_do_nothing().returning(self.fills.c.fill_key)
        # Set once a second AsyncStore wraps this store (the fleet: many engines, one store, one loop);
        # never cleared, so a store never moves back from its thread to inline (see AsyncStore).
        self.shared = False
        self._wrapped = False
        # The account lease's fencing check (lease.AccountLease.fence_check), run inside every
        # order-placing transaction; None = no lease (a single-process test or tool).
        self.fence: Callable[[Connection], None] | None = None
        # SQLite: ``save`` (the tick-to-order commit) keeps one connection instead of a pool checkout
        # and its reset per call (~25 us of ~80 us on tmpfs; docs/performance.md, round 4).  Used by one
        # caller at a time (the lock; a concurrent caller takes a pooled connection), and never left
        # inside a transaction: every save ends in commit or rollback, a failed one discards it.
        self._keep_writer = self.engine.dialect.name == "sqlite"
        self._writer: Connection | None = None
        self._writer_lock = threading.Lock()

    # ---------------------------------------------------------------------------------- plumbing

    def _upsert_stmt(self, table: Table, keys: list[str]) -> Any:
        stmt = self._insert(table)
        return stmt.on_conflict_do_update(
            index_elements=keys,
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
        )

    def _driver_sql(self, stmt: Any) -> tuple[str, tuple[str, ...] | None]:
        """The statement's SQL for this dialect, and its parameter order when the driver binds by
        position (SQLite's qmark; None: by name, PostgreSQL's pyformat)."""
        compiled = stmt.compile(dialect=self.engine.dialect)
        return str(compiled), tuple(compiled.positiontup) if compiled.positiontup else None

    @staticmethod
    def _run_rows(
        conn: Connection, prepared: tuple[str, tuple[str, ...] | None], rows: list[dict[str, Any]]
    ) -> None:
        sql, order = prepared
        if order is None:
            conn.exec_driver_sql(sql, rows)
        else:
            conn.exec_driver_sql(sql, [tuple(r[n] for n in order) for r in rows])

    def _insert(self, table: Table) -> Any:
        return (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(table)

    def _upsert(self, conn: Connection, table: Table, row: dict[str, Any], keys: list[str]) -> None:
        stmt = self._insert(table).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in row.items() if k not in keys}
        )
        conn.execute(stmt)

    def close(self) -> None:
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    def drop_all(self) -> None:
        """Remove this store's tables (tests use a unique prefix per run)."""
        self._md.drop_all(self.engine)

    # ---------------------------------------------------------------------------------- meta

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(self.meta.c.value).where(self.meta.c.key == key)).scalar_one_or_none()

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, self.meta, {"key": key, "value": value}, ["key"])

    def meta_default(self, key: str, factory: Callable[[], str]) -> str:
        """The stored value, or store ``factory()`` the first time (insert-if-absent, race free)."""
        with self.engine.begin() as conn:
            conn.execute(self._insert(self.meta).values(key=key, value=factory()).on_conflict_do_nothing())
            return str(conn.execute(select(self.meta.c.value).where(self.meta.c.key == key)).scalar_one())

    def epoch(self) -> str:
        """A random value created once per store; salts client order ids (see slots.client_order_id)."""
        return self.meta_default("epoch", lambda: secrets.token_hex(8))

    # ---------------------------------------------------------------------------------- slots

    def load_slots(self, symbol: str) -> dict[int, Slot]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.slots).where(self.slots.c.symbol == symbol)).mappings().all()
        out: dict[int, Slot] = {}
        for r in rows:
            order = None
            if r["cid"]:
                order = OrderIntent(
                    client_order_id=r["cid"],
                    side=int(r["side"]),
                    price=Decimal(r["price"]),
                    quantity=Decimal(r["quantity"]),
                    cycle=int(r["cycle"]),
                    post_only=bool(r["post_only"]),
                    reduce_only=bool(r["reduce_only"]),
                    order_id=r["order_id"] or "",
                    filled=Decimal(r["filled"]),
                    fill_cost=Decimal(r["fill_cost"]),
                )
            out[int(r["level"])] = Slot(
                level=int(r["level"]),
                state=SlotState(r["state"]),
                position=Decimal(r["position"]),
                entry_price=Decimal(r["entry_price"]),
                cycle=int(r["cycle"]),
                post_only_rejects=int(r["post_only_rejects"]),
                order=order,
            )
        return out

    def _slot_row(self, symbol: str, slot: Slot) -> dict[str, Any]:
        o = slot.order
        return {
            "symbol": symbol,
            "level": slot.level,
            "state": slot.state.value,
            "position": dec_str(slot.position),
            "entry_price": dec_str(slot.entry_price),
            "cycle": slot.cycle,
            "post_only_rejects": slot.post_only_rejects,
            "cid": o.client_order_id if o else None,
            "side": o.side if o else None,
            "price": dec_str(o.price) if o else None,
            "quantity": dec_str(o.quantity) if o else None,
            "filled": dec_str(o.filled) if o else None,
            "fill_cost": dec_str(o.fill_cost) if o else None,
            "post_only": o.post_only if o else None,
            "reduce_only": o.reduce_only if o else None,
            "order_id": o.order_id if o else None,
            "updated_at": time.time(),
        }

    def _order_row(self, r: OrderRow) -> dict[str, Any]:
        return {
            "cid": r.client_order_id,
            "symbol": r.symbol,
            "level": r.level,
            "side": r.side,
            "price": dec_str(r.price),
            "quantity": dec_str(r.quantity),
            "cycle": r.cycle,
            "status": r.status,
            "filled": dec_str(r.filled),
            "order_id": r.order_id,
            "updated_at": time.time(),
        }

    def save(
        self,
        symbol: str,
        slots: Iterable[Slot] = (),
        orders: Iterable[OrderRow] = (),
        fill: FillRow | None = None,
    ) -> bool:
        """Commit slots, order rows and at most one fill in ONE transaction.

        Returns False (and commits nothing) when ``fill`` was already recorded: the caller then drops
        the in-memory change it computed from that fill.
        """
        orders = list(orders)
        if self._keep_writer and self._writer_lock.acquire(blocking=False):
            try:
                conn = self._writer
                if conn is None or conn.closed or conn.invalidated:
                    conn = self._writer = self.engine.connect()
                try:
                    return self._save(conn, symbol, slots, orders, fill)
                except BaseException:
                    self._writer = None
                    try:
                        conn.close()  # rolls back whatever the failed save began
                    except Exception:
                        conn.invalidate()  # the driver connection is closed: SQLite drops its locks
                    raise
            finally:
                self._writer_lock.release()
        with self.engine.connect() as conn:
            return self._save(conn, symbol, slots, orders, fill)

    def _save(
        self,
        conn: Connection,
        symbol: str,
        slots: Iterable[Slot],
        orders: list[OrderRow],
        fill: FillRow | None,
    ) -> bool:
        if self.fence is not None and any(r.status == "intent" for r in orders):
            self.fence(conn)  # raises lease.Fenced: the transaction rolls back, nothing is sent
        if fill is not None:
            res = conn.execute(
                self._fill_insert,
                {
                    "fill_key": fill.fill_key,
                    "cid": fill.client_order_id,
                    "symbol": fill.symbol,
                    "level": fill.level,
                    "side": fill.side,
                    "price": dec_str(fill.price),
                    "quantity": dec_str(fill.quantity),
                    "fee": dec_str(fill.fee),
                    "realized_pnl": dec_str(fill.realized_pnl),
                    "ts": fill.ts,
                },
            )
            # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
            if res.first() is None:
                conn.rollback()
                return False
        slot_rows = [self._slot_row(symbol, slot) for slot in slots]
        if slot_rows:
            self._run_rows(conn, self._slot_sql, slot_rows)
        order_rows = [self._order_row(row) for row in orders]
        if order_rows:
            self._run_rows(conn, self._order_sql, order_rows)
        conn.commit()
        return True

    def save_audited(self, symbol: str, slots: Iterable[Slot], record: AuditRecord) -> None:
        """Commit slots and an audit record in ONE transaction (an operator's change is never half done,
        and never done without its record).  Fenced like an intent: only the account's owner rewrites it."""
        with self.engine.begin() as conn:
            if self.fence is not None:
                self.fence(conn)  # raises lease.Fenced: nothing is written
            slot_rows = [self._slot_row(symbol, slot) for slot in slots]
            if slot_rows:
                conn.execute(self._slot_upsert, slot_rows)
            conn.execute(
                self.audit.insert().values(
                    ts=record.ts,
                    symbol=symbol,
                    action=record.action,
                    operator=record.operator,
                    reason=record.reason,
                    detail=record.detail,
                )
            )

    def load_audit(self, symbol: str) -> list[AuditRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.audit).where(self.audit.c.symbol == symbol).order_by(self.audit.c.id)
            ).mappings()
            return [AuditRecord(r["ts"], r["action"], r["operator"], r["reason"], r["detail"]) for r in rows]

    def has_fill(self, fill_key: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(self.fills.c.fill_key).where(self.fills.c.fill_key == fill_key))
            return found.first() is not None

    def load_fills(self, symbol: str) -> list[FillRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.fills).where(self.fills.c.symbol == symbol).order_by(self.fills.c.ts)
            ).mappings()
            return [
                FillRow(
                    fill_key=r["fill_key"],
                    client_order_id=r["cid"],
                    symbol=r["symbol"],
                    level=int(r["level"]),
                    side=int(r["side"]),
                    price=Decimal(r["price"]),
                    quantity=Decimal(r["quantity"]),
                    fee=Decimal(r["fee"]),
                    realized_pnl=Decimal(r["realized_pnl"]),
                    ts=float(r["ts"]),
                )
                for r in rows
            ]

    def load_orders(self, symbol: str) -> list[OrderRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.orders).where(self.orders.c.symbol == symbol)).mappings()
            return [
                OrderRow(
                    client_order_id=r["cid"],
                    symbol=r["symbol"],
                    level=int(r["level"]),
                    side=int(r["side"]),
                    price=Decimal(r["price"]),
                    quantity=Decimal(r["quantity"]),
                    cycle=int(r["cycle"]),
                    status=r["status"],
                    filled=Decimal(r["filled"]),
                    order_id=r["order_id"],
                )
                for r in rows
            ]


def _sqlite_pragmas(dbapi_conn: Any, synchronous: str) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL (the default, durability "fsync"): a committed intent survives power loss too, not only a
    # killed process.  NORMAL ("process"): see SYNCHRONOUS.
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class StoreWriteFailed(RuntimeError):
    """A state write still failed after its bounded retries; nothing of it was applied in memory."""


class AsyncStore:
    """Runs :class:`StateStore` calls in submission order: inline, or on one dedicated thread.

    ``inline`` runs each call directly on the event loop thread.  Default: inline for a SQLite store
    wrapped by one engine, the thread otherwise.  A SQLite commit is local work plus one fsync (~0.3 ms
    median here); handing it to a thread costs two thread wake-ups, which on a loaded machine took
    longer than the commit itself and dominated tick-to-order latency (docs/performance.md, round 3).
    The price: the loop is blocked for the commit, and for up to ``busy_timeout`` when another
    connection holds SQLite's write lock.  So a store shared by several engines on one loop (the
    fleet) goes back to the thread for good once a second AsyncStore wraps it (one engine's fsync must
    not stall the others; measured: more orders/s for ten engines), and a PostgreSQL commit, a network
    round trip, always uses the thread.  The switch happens only from inline to the thread: an inline
    call is never in flight across an await, so order is kept.  Either way a call returns only after
    its commit: the outbox rule (intent durable before its venue call) is unchanged.

    :meth:`write` retries a failed write (a dropped database connection, a locked SQLite file) a bounded
    number of times with the one jittered :class:`cqvx.backoff.Backoff`, then raises
    :class:`StoreWriteFailed`.  Every write is one transaction, so a retry never applies half of one.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        inline: bool | None = None,
        write_attempts: int = 5,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self._inline = inline
        if store._wrapped:
            store.shared = True
        store._wrapped = True
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opensqt-store")
        self.write_attempts = max(1, write_attempts)
        self.backoff = backoff or Backoff(initial=0.05, maximum=2.0)
        self._sleep = sleep
        self._rng = rng
        self.write_failures = 0  # failed attempts, for /status
        self.commit_wait = 30.0  # seconds a cancelled caller waits for its commit in flight (_committed)

    @property
    def inline(self) -> bool:
        if self._inline is not None:
            return self._inline
        return self.store.engine.dialect.name == "sqlite" and not self.store.shared

    @inline.setter
    def inline(self, value: bool) -> None:
        self._inline = value

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.inline:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """:meth:`run` a write, retried (bounded, jittered) when the database fails.  A caller cancelled
        while the commit runs still gets its outcome (:meth:`_committed`)."""
        attempt = 0
        while True:
            try:
                return await self._committed(fn, *args, **kwargs)
            except SQLAlchemyError as err:
                self.write_failures += 1
                attempt += 1
                if attempt >= self.write_attempts:
                    raise StoreWriteFailed(f"state write failed {attempt} times: {err}"[:300]) from err
                log.warning("state write failed; retrying", attempt=attempt, error=str(err)[:200])
                await self.backoff.sleep(attempt, self._rng, sleep=self._sleep)

    async def _committed(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one write to its end, even when the caller is cancelled meanwhile.

        The database thread commits whatever happens to the coroutine awaiting it.  A caller that got
        ``CancelledError`` there never took the committed rows over: its memory lagged the store, and
        its next write (a stop cancelling orders) put the stale slot back, losing a fill's position
        (issue 18's fleet kill -9 test: slots one order above the venue).  So a cancellation that
        arrives during the commit waits for it; when the commit went through, its result is returned and
        the cancellation is re-armed: it lands at the caller's next await, after the caller has taken
        the committed state over (every ledger caller does that without awaiting in between).  A commit
        that failed raises the cancellation at once (nothing was written).  The wait is bounded by
        :attr:`commit_wait` (a database that stopped answering must not hang a stop): past it the
        cancellation goes on with the outcome unknown, logged as an error (the restart's recovery
        re-reads the store)."""
        if self.inline:  # never in flight across an await
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError as cancelled:
            deadline = loop.time() + self.commit_wait
            while not fut.done() and loop.time() < deadline:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({fut}, timeout=deadline - loop.time())
            if not fut.done():
                log.error("a cancelled caller's commit did not finish in time", seconds=self.commit_wait)
                raise cancelled from None
            if fut.cancelled() or fut.exception() is not None:
                raise cancelled from None
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # one request swallowed here, one re-armed: the count stays the same
                task.cancel()
            return fut.result()

    async def aclose(self) -> None:
        await self.run(self.store.close)
        self._pool.shutdown(wait=True)
