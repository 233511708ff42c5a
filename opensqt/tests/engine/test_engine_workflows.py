"""DBOS workflows of the fleet (engine/workflows.py) on SQLite and the real PostgreSQL system database.

PostgreSQL cases FAIL (never skip) when the server at 127.0.0.1:5432 is missing.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from dbos import DBOS

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import order_pb2
from cqvx.backoff import Backoff
from cqvx.errors import Unavailable
from cqvx.testing.waits import until
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.app.multi import remove_symbol
from opensqt.config import default_paper_config
from opensqt.engine.fleet import Fleet
from opensqt.engine.lease import AccountLease
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.engine.symbols import SymbolRegistry, UnknownSymbol
from opensqt.engine.workflows import Durable, registry_request, system_database_url

BTC, ETH = "BTC-USDT-PERP", "ETH-USDT-PERP"
PG_BASE = os.environ.get("OPENSQT_TEST_PG_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _system_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return system_database_url("", tmp_path / "state.db")
    try:
        sqlalchemy.create_engine(f"{PG_BASE}/test").connect().close()
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at {PG_BASE}: {exc}")
    return f"{PG_BASE.replace('+psycopg', '')}/opensqt_dbos_{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def durable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Durable, SimVenue]]:
    spot = InstrumentSpec(symbol="BTC-USDT", initial_price=Decimal(60000))
    perps = tuple(
        InstrumentSpec(symbol=s, initial_price=p, maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"))
        for s, p in ((BTC, Decimal(60000)), (ETH, Decimal(3000)))
    )
    sim = SimVenue.default(seed=8, speed=10, instruments=(spot, *perps))
    sim.start()
    store = StateStore(sqlite_url(tmp_path / "state.db"))
    registry = SymbolRegistry(store.engine, f"acct-{uuid.uuid4().hex[:6]}")
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    fleet = Fleet(cfg, sim, store, registry, backoff=Backoff(initial=0.05, maximum=0.2), poll=0.1)
    d = Durable(fleet, _system_url(request.param, tmp_path))
    d.launch()
    await fleet.start()
    try:
        yield d, sim
    finally:
        await fleet.stop(cancel_orders=True)
        d.destroy()
        await sim.aclose()
        store.close()
        if request.param == "postgres":
            _drop_database(d.system_url)


def _drop_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    admin = sqlalchemy.create_engine(f"{base.replace('postgresql:', 'postgresql+psycopg:')}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _placed(fleet: Fleet, symbol: str) -> bool:
    engine = fleet.runs[symbol].engine
    return engine is not None and engine.stats.placed > 0


async def _ours_open(sim: SimVenue, symbol: str) -> list[Any]:
    return [o for o in await sim.get_orders(OrderFilter(symbol=symbol)) if o.status in OPEN_STATUSES]


async def test_add_and_remove_run_once_per_intent(durable: tuple[Durable, SimVenue]) -> None:
    d, sim = durable
    fleet = d.fleet
    calls: list[str] = []
    real_cancel = sim.cancel_order

    async def counting_cancel(**kw: Any) -> Any:
        calls.append(str(kw.get("client_order_id")))
        return await real_cancel(**kw)

    sim.cancel_order = counting_cancel  # type: ignore[method-assign]
    first = await d.add(ETH, {"price_interval": "3"}, request="r1")
    assert first == {"symbol": ETH, "state": "running"}
    await until(lambda: _placed(fleet, ETH), timeout=30.0)
    removed = await d.remove(ETH, request="r2")
    assert removed["state"] == "removed" and await _ours_open(sim, ETH) == []
    n = len(calls)
    # The same intents again: the recorded results, no second side effect.
    assert await d.remove(ETH, request="r2") == removed
    assert await d.add(ETH, {"price_interval": "3"}, request="r1") == first
    assert len(calls) == n and fleet.runs[ETH].state == "removed"
    assert fleet.registry.get(ETH).status == "removed"


async def test_cancel_all_pauses_every_symbol_and_leaves_no_order(durable: tuple[Durable, SimVenue]) -> None:
    d, sim = durable
    fleet = d.fleet
    await d.add(ETH, {"price_interval": "3"}, request="a")
    await until(
        lambda: all(r.engine is not None and r.engine.stats.placed for r in fleet.runs.values()), timeout=30.0
    )
    out = await d.cancel_all("volume anomaly", trip="trip-1")
    assert out["paused"] == [BTC, ETH]
    assert {s: r.state for s, r in fleet.runs.items()} == {BTC: "paused", ETH: "paused"}
    for sym in (BTC, ETH):
        assert await _ours_open(sim, sym) == []
    # The same trip again is the same workflow: nothing re-run.
    assert await d.cancel_all("volume anomaly", trip="trip-1") == out


async def test_a_registry_removal_runs_the_remove_workflow_once(durable: tuple[Durable, SimVenue]) -> None:
    """``opensqt symbols remove`` while a fleet owns the account writes the registry; the fleet's watcher
    runs the remove-symbol workflow (stop, cancel, sweep) under the id derived from that change."""
    d, sim = durable
    fleet = d.fleet
    await d.add(ETH, {"price_interval": "3"}, request="a")
    await until(lambda: _placed(fleet, ETH), timeout=30.0)
    other = SymbolRegistry(fleet.store.engine, fleet.registry.account)  # another process's writer
    entry = other.set_status(ETH, "removed")
    assert other.set_status(ETH, "removed") == entry  # asked again: the same change, the same id
    await until(lambda: fleet.runs[ETH].state == "removed", timeout=30.0)
    workflow_id = f"remove:{d.account}:{ETH}:{registry_request(entry)}"
    status = await _until_status(workflow_id)
    assert status == "SUCCESS"
    assert await _ours_open(sim, ETH) == []
    assert fleet.runs[BTC].state == "running"  # the others never stopped
    listed = await DBOS.list_workflows_async(workflow_ids=[workflow_id])
    assert len(listed) == 1


async def _until_status(workflow_id: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        st = await DBOS.get_workflow_status_async(workflow_id)
        if st is not None and st.status not in ("PENDING", "ENQUEUED"):
            return str(st.status)
        assert time.monotonic() < deadline, f"{workflow_id}: {st}"
        await asyncio.sleep(0.05)


async def test_cli_remove_with_no_fleet_up_cleans_the_venue_once(tmp_path: Path) -> None:
    """``opensqt symbols remove`` with the fleet down (it was killed: its orders still work): the CLI
    takes the lease and runs the remove workflow itself; the symbol's orders are settled through a
    one-shot engine (fills recorded) and cancelled; the other symbols' orders are left alone."""
    spot = InstrumentSpec(symbol="BTC-USDT", initial_price=Decimal(60000))
    perps = tuple(
        InstrumentSpec(symbol=s, initial_price=p, maker_fee=Decimal(0), taker_fee=Decimal(0))
        for s, p in ((BTC, Decimal(60000)), (ETH, Decimal(3000)))
    )
    sim = SimVenue.default(seed=9, speed=10, instruments=(spot, *perps))
    sim.start()
    path = tmp_path / "state.db"
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    account = cfg.state.account_key(cfg.venue)
    store = StateStore(sqlite_url(path), table_prefix=cfg.state.table_prefix)
    registry = SymbolRegistry(store.engine, account, table_prefix=cfg.state.table_prefix)
    fleet = Fleet(cfg, sim, store, registry, backoff=Backoff(initial=0.05, maximum=0.2), poll=0.1)
    d = Durable(fleet, system_database_url(store.url, path))
    try:
        d.launch()
        await fleet.start()
        await d.add(ETH, {"price_interval": "3"}, request="a")
        await until(lambda: _placed(fleet, ETH) and _placed(fleet, BTC), timeout=30.0)
        await fleet.stop(cancel_orders=False)  # as if killed: the orders stay at the venue
        d.destroy()
        btc_open = {o.client_order_id for o in await _ours_open(sim, BTC)}
        assert await _ours_open(sim, ETH) and btc_open

        out = await remove_symbol(cfg, state_path=path, symbol=ETH, client=sim)
        assert out is not None and out["state"] == "removed" and out["drained"] > 0
        assert await _ours_open(sim, ETH) == []
        btc = await sim.get_orders(
            OrderFilter(symbol=BTC, statuses=frozenset(TERMINAL_STATUSES | OPEN_STATUSES))
        )
        cancelled = {o.client_order_id for o in btc if o.status == order_pb2.ORDER_STATUS_CANCELLED}
        assert not cancelled & btc_open  # BTC's orders were left alone (some may have filled meanwhile)
        assert all(s.order is None for s in store.load_slots(ETH).values())
        assert registry.get(ETH).status == "removed"
        # Asked again: the same registry change, the same workflow, its recorded result.
        assert await remove_symbol(cfg, state_path=path, symbol=ETH, client=sim) == out
        lease = AccountLease(store.engine, account, table_prefix=cfg.state.table_prefix)
        assert lease.try_acquire() is not None  # released at the end
        with pytest.raises(UnknownSymbol):
            await remove_symbol(cfg, state_path=path, symbol="NOPE-USDT-PERP", client=sim)
    finally:
        await sim.aclose()
        store.close()


async def test_position_recovery_runs_once_per_store_as_a_workflow(durable: tuple[Durable, SimVenue]) -> None:
    """A symbol added on an account that already holds a position: the recovery (read the venue, commit
    the FILLED slots) is the workflow ``recover-position:<account>:<symbol>:<epoch>``; it runs once, and
    the slots hold exactly the venue's position; a restart of the symbol does not recover it again."""
    d, sim = durable
    fleet = d.fleet
    await _manual_buy(sim, ETH, "0.3")
    await d.add(ETH, {"price_interval": "3"}, request="a")
    engine = fleet.runs[ETH].engine
    assert engine is not None
    epoch = engine.recovery.epoch
    workflow_id = f"recover-position:{d.account}:{ETH}:{epoch}"
    assert await _until_status(workflow_id) == "SUCCESS"
    handle: Any = await DBOS.retrieve_workflow_async(workflow_id)
    recovered = await handle.get_result()
    assert recovered["quantity"] == "0.3" and recovered["slots"] > 0
    await fleet.pause(ETH)
    await fleet.resume(ETH)
    await until(lambda: fleet.runs[ETH].state == "running", timeout=30.0)
    # Not recovered twice: the slots hold what the venue holds (the grid trades on meanwhile).
    await _until_slots_hold_venue(fleet, sim, ETH)
    ours = [w for w in await DBOS.list_workflows_async() if w.workflow_id.startswith("recover-position:")]
    assert sorted(w.workflow_id for w in ours if ETH in w.workflow_id) == [workflow_id]


async def test_a_failed_venue_read_inside_the_position_recovery_is_retried_not_final(
    durable: tuple[Durable, SimVenue],
) -> None:
    """The recovery's id is fixed per store: a venue error recorded as its result would be the answer to
    every later start of the symbol (it restarted forever).  Two failed reads, then the venue answers:
    the same workflow finishes, once, and the slots hold the venue's position."""
    d, sim = durable
    fleet = d.fleet
    await _manual_buy(sim, ETH, "0.3")
    real_positions = sim.get_positions
    failed: list[str] = []

    async def flaky_positions(symbols: Any = None) -> Any:
        wf = DBOS.workflow_id or ""
        if wf.startswith("recover-position:") and ETH in wf and len(failed) < 2:
            failed.append(wf)
            raise Unavailable("venue busy (test)")
        return await real_positions(symbols)

    sim.get_positions = flaky_positions  # type: ignore[method-assign]
    await d.add(ETH, {"price_interval": "3"}, request="a")
    await until(lambda: len(failed) == 2, timeout=30.0, what="two failed recovery reads")
    (workflow_id,) = set(failed)
    assert await _until_status(workflow_id, timeout=60.0) == "SUCCESS"
    handle: Any = await DBOS.retrieve_workflow_async(workflow_id)
    recovered = await handle.get_result()
    assert recovered["quantity"] == "0.3" and recovered["slots"] > 0
    await until(lambda: fleet.runs[ETH].state == "running", timeout=30.0)
    await _until_slots_hold_venue(fleet, sim, ETH)
    ours = [w for w in await DBOS.list_workflows_async() if w.workflow_id.startswith("recover-position:")]
    assert [w.workflow_id for w in ours if ETH in w.workflow_id] == [workflow_id]


async def _manual_buy(sim: SimVenue, symbol: str, quantity: str) -> None:
    """The account's own position before the fleet sees the symbol (not ours: a manual market order)."""
    order = order_pb2.Order(
        client_order_id="manual-" + symbol.lower(),
        symbol=symbol,
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_MARKET,
        quantity=quantity,
    )
    await sim.place_order(order)


async def _until_slots_hold_venue(fleet: Fleet, sim: SimVenue, symbol: str) -> None:
    venue: list[Decimal] = []

    async def agree() -> bool:
        (pos,) = await sim.get_positions([symbol])
        venue[:] = [Decimal(pos.quantity)]
        return sum(s.position for s in fleet.store.load_slots(symbol).values()) == venue[0]

    deadline = time.monotonic() + 30
    while not await agree():
        assert time.monotonic() < deadline, (venue, fleet.store.load_slots(symbol))
        await asyncio.sleep(0.1)


async def _venue_position(sim: SimVenue, symbol: str) -> Decimal:
    """The venue's signed position (the sim lists none when flat; a short by its side)."""
    out = Decimal(0)
    for p in await sim.get_positions([symbol]):
        qty = Decimal(p.quantity or "0")
        out += -abs(qty) if p.side == position_pb2.POSITION_SIDE_SHORT else qty
    return out


async def _reduce_orders(sim: SimVenue, symbol: str) -> list[Any]:
    """The reduction's orders (``osr`` ids, engine/reducer.py); the grid's closing sells are reduce-only
    too, under ``osq`` ids."""
    every = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)
    orders = await sim.get_orders(OrderFilter(symbol=symbol, statuses=every))
    return [o for o in orders if o.client_order_id.startswith("osr")]


async def test_remove_closes_the_position_when_asked_and_keeps_it_by_default(
    durable: tuple[Durable, SimVenue],
) -> None:
    """``position: close``: after the orders are gone the venue's ACTUAL position (the account's manual
    buy included) is closed by reduce-only IOC orders under the reduction's deterministic ids, bounded
    by the slippage guard; the slots are adopted from the venue (empty).  ``keep`` (the default) sends
    nothing and leaves the position as it was.  Asked again, each removal answers its recorded result."""
    d, sim = durable
    fleet = d.fleet
    for symbol, qty in ((ETH, "0.3"), (BTC, "0.02")):
        await sim.place_order(
            order_pb2.Order(
                client_order_id=f"manual-{symbol[:3].lower()}",
                symbol=symbol,
                side=order_pb2.ORDER_SIDE_BUY,
                order_type=order_pb2.ORDER_TYPE_MARKET,
                quantity=qty,
            )
        )
    await d.add(ETH, {"price_interval": "3"}, request="a")
    await until(lambda: _placed(fleet, ETH), timeout=30.0)
    assert await _venue_position(sim, ETH) > 0

    closed = await d.remove(ETH, request="r-close", position="close")
    settled = closed["position"]
    assert closed["state"] == "removed" and settled["mode"] == "close" and settled["state"] == "done", closed
    assert await _venue_position(sim, ETH) == 0
    ioc = await _reduce_orders(sim, ETH)
    assert sorted(o.client_order_id for o in ioc) == sorted(settled["attempts"]) and ioc
    assert all(
        o.reduce_only
        and o.time_in_force == order_pb2.TIME_IN_FORCE_IOC
        and o.side == order_pb2.ORDER_SIDE_SELL
        for o in ioc
    )
    assert sum(s.position for s in fleet.store.load_slots(ETH).values()) == 0
    assert await _ours_open(sim, ETH) == []
    # The same intent again: the recorded result, nothing sent.
    assert await d.remove(ETH, request="r-close", position="close") == closed
    assert len(await _reduce_orders(sim, ETH)) == len(ioc)

    await fleet.pause(BTC)  # its orders cancelled: nothing of ours moves the position any more
    held = await _venue_position(sim, BTC)
    assert held > 0
    kept = await d.remove(BTC, request="r-keep")
    assert kept["state"] == "removed" and kept["position"] == {"mode": "keep"}, kept
    assert await _venue_position(sim, BTC) == held
    assert await _reduce_orders(sim, BTC) == []
    with pytest.raises(ValueError, match="position"):
        await d.remove(BTC, request="r-bad", position="sell")


async def test_cli_remove_with_close_settles_the_position_with_no_fleet_up(tmp_path: Path) -> None:
    """``opensqt symbols remove SYM --position close`` with the fleet down: the CLI's own remove workflow
    (executor ``opensqt-cli``) closes the venue's position through the close path."""
    perp = InstrumentSpec(symbol=ETH, initial_price=Decimal(3000), maker_fee=Decimal(0), taker_fee=Decimal(0))
    sim = SimVenue.default(seed=12, speed=10, instruments=(perp,))
    sim.start()
    path = tmp_path / "state.db"
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    cfg = cfg.model_copy(update={"trading": cfg.trading.model_copy(update={"symbol": ETH})})
    store = StateStore(sqlite_url(path), table_prefix=cfg.state.table_prefix)
    registry = SymbolRegistry(
        store.engine, cfg.state.account_key(cfg.venue), table_prefix=cfg.state.table_prefix
    )
    try:
        registry.seed(ETH)
        await sim.place_order(
            order_pb2.Order(
                client_order_id="manual-eth",
                symbol=ETH,
                side=order_pb2.ORDER_SIDE_SELL,
                order_type=order_pb2.ORDER_TYPE_MARKET,
                quantity="0.2",
            )
        )
        assert await _venue_position(sim, ETH) == Decimal("-0.2")  # a short: closed by buying back
        with pytest.raises(ValueError, match="position"):
            await remove_symbol(cfg, state_path=path, symbol=ETH, position="flatten", client=sim)
        assert registry.get(ETH).status == "active"  # refused before anything changed
        out = await remove_symbol(cfg, state_path=path, symbol=ETH, position="close", client=sim)
        assert out is not None and out["position"]["state"] == "done", out
        assert await _venue_position(sim, ETH) == 0
        ioc = await _reduce_orders(sim, ETH)
        assert [o.side for o in ioc] == [order_pb2.ORDER_SIDE_BUY] and ioc[0].reduce_only
        assert registry.get(ETH).status == "removed"
    finally:
        await sim.aclose()
        store.close()
