"""A grid order intent two ways: the intent-first store vs one DBOS workflow per order.

Both make the intent durable BEFORE the venue call, keyed by the client order id, on the same database:

* intent-first: ONE transaction (the account lease's fencing check + the ``orders`` row in ``intent``),
  then ``place_order`` (what ``GridEngine.on_price`` does per tick; engine/store.py);
* DBOS: a workflow whose id is the client order id (DBOS records the workflow, then the step's output)
  with ONE step calling ``place_order``.

Measured per order: decision -> the venue's ``place_order`` entered (the tick-to-order latency's
durability share), and sequential orders per second (decision -> place returned -> next).  SQLite
file (both WAL) always; PostgreSQL at 127.0.0.1:5432 when reachable.  ``BENCH-ROW`` lines put the
intent-first figures in the README table with the DBOS workflow as the peer (issue 18: the decision is
measured in ``make bench``; docs/engine.md "The measured decision").  The venue is the in-process sim
(SimClock) with a price far from the book, so every order rests.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import sqlalchemy
from dbos import DBOS, SetWorkflowID

from cqc.venues.v1 import order_pb2
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.engine.lease import AccountLease
from opensqt.engine.store import OrderRow, StateStore, sqlite_url

SYM = "BTC-USDT-PERP"
N = 300
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"

_SIM: SimVenue | None = None
_entered: list[float] = []


def _order(cid: str, i: int) -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=cid,
        symbol=SYM,
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_GTC,
        quantity="0.001",
        price=str(Decimal(30000) + i % 1000),
    )


@DBOS.step()
async def _place_step(cid: str, i: int) -> str:
    assert _SIM is not None
    _entered.append(time.perf_counter())
    report = await _SIM.place_order(_order(cid, i))
    return str(report.order_id)


@DBOS.workflow()
async def _place_workflow(cid: str, i: int) -> str:
    return await _place_step(cid, i)


async def _intent_first(url: str, prefix: str) -> tuple[list[float], float]:
    sim = SimVenue.default(seed=1, clock=SimClock())
    store = StateStore(url, table_prefix=prefix)
    lease = AccountLease(store.engine, "bench", table_prefix=prefix)
    lease.try_acquire()
    store.fence = lease.fence_check
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    started = time.perf_counter()
    for i in range(N):
        cid = f"osqb{uuid.uuid4().hex[:24]}"
        t0 = time.perf_counter()
        row = OrderRow(cid, SYM, i, order_pb2.ORDER_SIDE_BUY, Decimal(30000), Decimal("0.001"), 0, "intent")
        await loop.run_in_executor(None, lambda r=row: store.save(SYM, orders=[r]))  # type: ignore[misc]
        lat.append((time.perf_counter() - t0) * 1e6)
        await sim.place_order(_order(cid, i))
    rate = N / (time.perf_counter() - started)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}lease")
    store.drop_all()
    store.close()
    await sim.aclose()
    return lat, rate


async def _dbos(system_url: str) -> tuple[list[float], float]:
    global _SIM
    _SIM = SimVenue.default(seed=1, clock=SimClock())
    DBOS(config={"name": "opensqt-bench", "system_database_url": system_url, "log_level": "WARNING"})
    DBOS.launch()
    lat: list[float] = []
    started = time.perf_counter()
    try:
        for i in range(N):
            cid = f"osqb{uuid.uuid4().hex[:24]}"
            _entered.clear()
            t0 = time.perf_counter()
            with SetWorkflowID(cid):
                handle = await DBOS.start_workflow_async(_place_workflow, cid, i)
            await handle.get_result()
            lat.append((_entered[0] - t0) * 1e6)
        rate = N / (time.perf_counter() - started)
    finally:
        DBOS.destroy(destroy_registry=False)
        await _SIM.aclose()
    return lat, rate


def _p99(lat: list[float]) -> float:
    s = sorted(lat)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def _line(label: str, lat: list[float], rate: float) -> None:
    print(
        f"{label:<28} median {statistics.median(lat):8.0f} us  p99 {_p99(lat):8.0f} us  {rate:7.0f} orders/s"
    )


def _rows(db: str, ours: tuple[list[float], float], dbos: tuple[list[float], float]) -> None:
    """README rows (benchmarks/run_all.py): the intent-first store, with a DBOS workflow per order as
    the peer (issue 18's measured decision, docs/engine.md)."""
    peer_name = "DBOS workflow per order"
    for stat, fn in (("median", statistics.median), ("p99", _p99)):
        row: dict[str, object] = {"row": f"order intent -> venue call {stat}, intent-first store ({db})"}
        row |= {"unit": "µs"}
        row |= {"ours": fn(ours[0]), "peer": fn(dbos[0]), "lower_is_better": True}
        print("BENCH-ROW " + json.dumps({"bench": "dbos", "peer_name": peer_name} | row))
    row = {"row": f"orders/s sequential, intent-first store ({db})", "unit": "orders/s"}
    row |= {"ours": ours[1], "peer": dbos[1]}
    print("BENCH-ROW " + json.dumps({"bench": "dbos", "peer_name": peer_name} | row))


def _pg_ok() -> bool:
    try:
        sqlalchemy.create_engine(f"{PG}/test").connect().close()
    except Exception:
        return False
    return True


def main() -> None:
    print(
        f"order intent -> venue place call, {N} sequential orders each; load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        first = asyncio.run(_intent_first(sqlite_url(Path(tmp) / "s.db"), "b_"))
        _line("intent-first, SQLite file", *first)
        dbos = asyncio.run(_dbos(f"sqlite:///{Path(tmp) / 'dbos.db'}"))
        _line("DBOS workflow, SQLite file", *dbos)
    _rows("SQLite file", first, dbos)
    if not _pg_ok():
        print("PostgreSQL not reachable: skipped the PostgreSQL rows", file=sys.stderr)
        return
    first = asyncio.run(_intent_first(f"{PG}/test", f"b{uuid.uuid4().hex[:6]}_"))
    _line("intent-first, PostgreSQL", *first)
    name = f"opensqt_bench_{uuid.uuid4().hex[:6]}"
    try:
        dbos = asyncio.run(_dbos(f"postgresql://postgres@127.0.0.1:5432/{name}"))
        _line("DBOS workflow, PostgreSQL", *dbos)
    finally:
        admin = sqlalchemy.create_engine(f"{PG}/test")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    _rows("PostgreSQL", first, dbos)


if __name__ == "__main__":
    main()
