"""Many symbols in one process (engine/fleet.py) over one simulated venue, with the durable registry.

The sim runs on its wall clock at 10x; assertions poll with a deadline (no fixed sleeps).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cqc.markets.v1.instrument_pb2 import Instrument
from cqvx.backoff import Backoff
from cqvx.testing.waits import until
from cqvx.types import OPEN_STATUSES, OrderFilter
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.config import default_paper_config
from opensqt.engine.fleet import Fleet
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.engine.symbols import SymbolRegistry, UnknownSymbol

BTC, ETH, SOL = "BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"
ETH_GRID = {"price_interval": "3", "order_quantity": "100", "min_order_value": "20"}


def _sim() -> SimVenue:
    spot = InstrumentSpec(symbol="BTC-USDT", initial_price=Decimal(60000))
    perps = tuple(
        InstrumentSpec(symbol=s, initial_price=p, maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"))
        for s, p in ((BTC, Decimal(60000)), (ETH, Decimal(3000)), (SOL, Decimal(150)))
    )
    sim = SimVenue.default(seed=4, speed=10, instruments=(spot, *perps))
    sim.start()
    return sim


async def _open_orders(sim: SimVenue, symbol: str) -> list[Any]:
    return [
        o
        for o in await sim.get_orders(OrderFilter(symbol=symbol, statuses=frozenset(OPEN_STATUSES)))
        if o.status in OPEN_STATUSES
    ]


def _placed(fleet: Fleet, symbol: str) -> bool:
    engine = fleet.runs[symbol].engine
    return engine is not None and engine.stats.placed > 0


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[SimVenue, StateStore, SymbolRegistry]]:
    sim = _sim()
    store = StateStore(sqlite_url(tmp_path / "fleet.db"))
    registry = SymbolRegistry(store.engine, "sim")
    try:
        yield sim, store, registry
    finally:
        await sim.aclose()
        store.close()


def _fleet(sim: SimVenue, store: StateStore, registry: SymbolRegistry, **kw: Any) -> Fleet:
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    return Fleet(
        cfg, sim, store, registry, backoff=Backoff(initial=0.05, maximum=0.2), poll=0.1, stop_timeout=10, **kw
    )


async def test_symbols_run_side_by_side_and_pause_resume_remove_at_runtime(
    setup: tuple[SimVenue, StateStore, SymbolRegistry],
) -> None:
    sim, store, registry = setup
    fleet = _fleet(sim, store, registry)
    await fleet.start()
    try:
        await fleet.add(ETH, ETH_GRID)
        await until(
            lambda: all(r.state == "running" for r in fleet.runs.values()) and len(fleet.runs) == 2,
            timeout=30.0,
        )
        for sym in (BTC, ETH):
            await until(lambda s=sym: _placed(fleet, s), timeout=30.0)  # type: ignore[misc]
        assert set(fleet.status()["symbols"]) == {BTC, ETH}
        assert fleet.status()["symbols"][ETH]["engine"]["symbol"] == ETH

        await fleet.pause(ETH)
        assert fleet.runs[ETH].state == "paused" and registry.get(ETH).status == "paused"
        assert await _open_orders(sim, ETH) == []  # its orders were cancelled
        btc = fleet.runs[BTC].engine
        assert btc is not None
        placed = btc.stats.placed
        ticks = btc.stats.ticks
        await until(lambda: btc.stats.ticks > ticks + 5, timeout=30.0)  # BTC trades on
        assert fleet.runs[BTC].state == "running" and btc.stats.placed >= placed

        await fleet.resume(ETH)
        await until(lambda: fleet.runs[ETH].state == "running", timeout=30.0)
        await fleet.remove(ETH)
        assert fleet.runs[ETH].state == "removed" and registry.get(ETH).status == "removed"
        assert await _open_orders(sim, ETH) == []
    finally:
        await fleet.stop(cancel_orders=True)
    assert await _open_orders(sim, BTC) == []


async def test_registry_changes_from_another_process_are_picked_up(
    setup: tuple[SimVenue, StateStore, SymbolRegistry],
) -> None:
    """``opensqt symbols add`` writes the registry only; the running fleet's sync applies it."""
    sim, store, registry = setup
    fleet = _fleet(sim, store, registry)
    await fleet.start()
    try:
        other = SymbolRegistry(StateStore(store.url).engine, "sim")  # a second connection, like the CLI
        other.add(SOL, {"price_interval": "0.2", "order_quantity": "100", "min_order_value": "20"})
        await until(lambda: SOL in fleet.runs and fleet.runs[SOL].state == "running", timeout=30.0)
        other.set_status(SOL, "paused")
        await until(lambda: fleet.runs[SOL].state == "paused", timeout=30.0)
        with pytest.raises(UnknownSymbol):
            other.set_status("NOPE-USDT", "paused")
    finally:
        await fleet.stop(cancel_orders=True)


async def test_a_failing_and_a_stuck_symbol_never_stop_the_others(
    setup: tuple[SimVenue, StateStore, SymbolRegistry],
) -> None:
    sim, store, registry = setup
    real = sim.get_instruments
    failures = {ETH: 3}
    stuck = asyncio.Event()

    async def get_instruments(symbols: Sequence[str] | None = None) -> list[Instrument]:
        symbols = symbols or []
        if SOL in symbols:
            await stuck.wait()  # a venue call that never returns
        if ETH in symbols and failures[ETH] > 0:
            failures[ETH] -= 1
            raise ConnectionError("venue hiccup")
        return await real(symbols)

    sim.get_instruments = get_instruments  # type: ignore[method-assign]
    fleet = _fleet(sim, store, registry, start_timeout=1.0)
    await fleet.start()
    try:
        registry.add(ETH, ETH_GRID)
        registry.add(SOL, {"price_interval": "0.2"})
        await fleet.sync()
        await until(lambda: fleet.runs[BTC].state == "running", timeout=30.0)
        await until(lambda: fleet.runs[ETH].state == "running", timeout=30.0)
        assert fleet.runs[ETH].restarts == 3 and "venue hiccup" in fleet.runs[ETH].last_error
        await until(lambda: fleet.runs[SOL].restarts >= 2, timeout=30.0)
        assert fleet.runs[SOL].state in ("starting", "restarting")
        assert "TimeoutError" in fleet.runs[SOL].last_error
        assert fleet.status()["symbols"][SOL]["restarts"] >= 2
        text = fleet.metrics.render().decode()
        assert f'market_maker_symbol_restarts_total{{symbol="{ETH}"}} 3.0' in text
        btc = fleet.runs[BTC].engine
        assert btc is not None and btc.stats.placed > 0
        stuck.set()
        await until(lambda: fleet.runs[SOL].state == "running", timeout=30.0)
    finally:
        await fleet.stop(cancel_orders=True)


def test_registry_refuses_a_changed_symbol_and_keeps_removed_rows(tmp_path: Path) -> None:
    store = StateStore(sqlite_url(tmp_path / "r.db"))
    reg = SymbolRegistry(store.engine, "acct")
    with pytest.raises(ValueError, match="must not differ"):
        reg.add(BTC, {"symbol": ETH})
    reg.add(BTC, {"price_interval": "5"})
    reg.set_status(BTC, "removed")
    assert [e.symbol for e in reg.entries()] == [BTC]
    assert reg.entries(include_removed=False) == []
    reg.seed(BTC)  # a first-start seed never revives a removed symbol
    assert reg.get(BTC).status == "removed" and reg.get(BTC).overrides == {"price_interval": "5"}
    assert SymbolRegistry(store.engine, "other").entries() == []
    store.close()
