"""Tick-to-order latency and order throughput of the grid engine on the simulated venue (SimClock).

Tick-to-order: from ``PriceMonitor.publish`` (the price event) to the moment the venue's
``place_orders`` / ``place_order`` is entered.  On that path: the grid decision, the risk admission,
ONE commit of all of the tick's intents (group commit, the outbox rule: durable before the venue call)
and the executor's token bucket.  Each tick moves the price one grid interval up, so every tick places
exactly one new buy (and cancels the one that left the window); the 25/s order budget is lifted so the
figure is the engine's own.

Stores: SQLite file (WAL, synchronous=FULL: one fsync per tick on the path) and SQLite in memory (no
I/O), each with the store calls inline on the loop thread (the default for SQLite) and on the store's
own thread (the previous behaviour, and PostgreSQL's).  All four engines run in ONE process with their
ticks interleaved, so machine load hits them alike.

Throughput: placements per second of one engine on one symbol, and of ten engines (ten symbols: ten
simulated venues, one table set each) in one process sharing one SQLite file, ticking concurrently; a
store shared by several engines keeps its thread by default (``AsyncStore``), both modes are shown.
The price only rises, so every tick is one place + one cancel: four commits (intent, placement
outcome, cancel intent, cancel outcome), one of them before the venue call.  Prints medians and
p99s, and ``BENCH-ROW`` lines for the README table (``benchmarks/run_all.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from cqvx.venues.sim import SimClock, SimVenue
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url

SYM = "BTC-USDT-PERP"
TICKS = 400
THROUGHPUT_TICKS = 150
ROUNDS = 5
FLEET = 10
STEP = Decimal(30)
CFG = """
trading:
  symbol: BTC-USDT-PERP
  price_interval: 30
  order_quantity: 100
  buy_window_size: 10
  sell_window_size: 10
  position_safety_check: 1
venue:
  fee_rate: 0
engine:
  price_send_interval: 0
  order_rate: 1000000   # measure the engine, not the 25/s venue budget
  order_burst: 1000
"""


class _Rig:
    """One engine on its own simulated venue, with the venue's place calls timed."""

    def __init__(self, store: StateStore, *, inline: bool) -> None:
        self.sim = SimVenue.default(seed=1, clock=SimClock())
        self.engine = GridEngine(parse_config(CFG, {}), self.sim, store)
        self.engine.store.inline = inline
        self.price = Decimal(60000)
        self.published = 0.0
        self.samples: list[float] = []
        self.placed = 0
        for name in ("place_orders", "place_order"):
            self._wrap(name)

    def _wrap(self, name: str) -> None:
        inner = getattr(self.sim, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            self.samples.append((time.perf_counter() - self.published) * 1e6)
            self.placed += len(args[0]) if name == "place_orders" else 1
            return await inner(*args, **kwargs)

        setattr(self.sim, name, timed)

    async def start(self) -> None:
        await self.engine.start(run_tasks=False)
        self.engine.monitor.min_interval = 0
        await self.engine.on_price(self.price)  # first tick: the whole window
        self.samples.clear()
        self.placed = 0

    async def tick(self) -> None:
        self.price += STEP
        self.sim.set_price(SYM, self.price)
        self.published = time.perf_counter()
        self.engine.monitor.publish(self.price)
        price, received = await self.engine.monitor.next()
        await self.engine.on_price(price, received)

    async def stop(self) -> None:
        await self.engine.stop(cancel_orders=False)
        await self.sim.aclose()


def _p99(samples: list[float]) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


async def _latency(tmp: Path) -> dict[str, list[float]]:
    rigs = {
        "SQLite file, inline (now)": _Rig(StateStore(sqlite_url(tmp / "inline.db")), inline=True),
        "SQLite file, store thread (before)": _Rig(StateStore(sqlite_url(tmp / "thread.db")), inline=False),
        "SQLite memory, inline (now)": _Rig(StateStore("sqlite://"), inline=True),
        "SQLite memory, store thread (before)": _Rig(StateStore("sqlite://"), inline=False),
    }
    for rig in rigs.values():
        await rig.start()
    for _ in range(TICKS):
        for rig in rigs.values():
            await rig.tick()
    for rig in rigs.values():
        await rig.stop()
    return {label: rig.samples for label, rig in rigs.items()}


async def _throughput(tmp: Path, engines: int) -> dict[bool, float]:
    """Placements per second of ``engines`` engines (one symbol each) on one SQLite file, inline and
    with the store thread, in alternating rounds (a busy disk hits both alike)."""
    setups = {
        inline: [
            _Rig(
                StateStore(sqlite_url(tmp / f"fleet-{engines}-{inline}.db"), table_prefix=f"e{i}_"),
                inline=inline,
            )
            for i in range(engines)
        ]
        for inline in (True, False)
    }
    elapsed = dict.fromkeys(setups, 0.0)
    for rigs in setups.values():
        for rig in rigs:
            await rig.start()

    async def run(rig: _Rig) -> None:
        for _ in range(THROUGHPUT_TICKS // ROUNDS):
            await rig.tick()

    for _ in range(ROUNDS):
        for inline, rigs in setups.items():
            started = time.perf_counter()
            await asyncio.gather(*(run(rig) for rig in rigs))
            elapsed[inline] += time.perf_counter() - started
    for rigs in setups.values():
        for rig in rigs:
            await rig.stop()
    return {inline: sum(r.placed for r in rigs) / elapsed[inline] for inline, rigs in setups.items()}


def _row(row: str, ours: float, before: float, unit: str, *, target: str = "", lower: bool = False) -> None:
    """A README row; the peer column is the same engine with its store calls on the store thread."""
    fields = {"bench": "engine", "row": row, "ours": ours, "unit": unit, "peer": before}
    fields |= {"peer_name": "store thread, before", "target": target, "lower_is_better": lower}
    print("BENCH-ROW " + json.dumps(fields))


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} (the machine is shared; compare rows, not runs)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        lat = asyncio.run(_latency(tmp))
        print("tick-to-order latency (price event -> venue place call), interleaved in one process")
        for label, samples in lat.items():
            mid, p99 = statistics.median(samples), _p99(samples)
            print(f"  {label:<38} n={len(samples):4d}  median {mid:8.1f} us   p99 {p99:8.1f} us")
        rates = {}
        for engines in (1, FLEET):
            for inline, rate in asyncio.run(_throughput(tmp, engines)).items():
                rates[engines, inline] = rate
        print("placements/s, SQLite file store (one place + one cancel per tick and engine)")
        for (engines, inline), rate in rates.items():
            mode = "inline" if inline else "store thread"
            if (engines == 1) == inline:
                mode += " (default)"
            print(f"  {engines:2d} engine(s), {engines:2d} symbol(s), {mode:<22} {rate:10,.0f} orders/s")
    file_now, file_before = lat["SQLite file, inline (now)"], lat["SQLite file, store thread (before)"]
    mem_now, mem_before = lat["SQLite memory, inline (now)"], lat["SQLite memory, store thread (before)"]
    med = statistics.median
    _row("tick-to-order median, SQLite file store", med(file_now), med(file_before), "µs", lower=True)
    _row(
        "tick-to-order p99, SQLite file store",
        _p99(file_now),
        _p99(file_before),
        "µs",
        target="< 500 µs",
        lower=True,
    )
    _row("tick-to-order median, SQLite in memory", med(mem_now), med(mem_before), "µs", lower=True)
    _row("tick-to-order p99, SQLite in memory", _p99(mem_now), _p99(mem_before), "µs", lower=True)
    _row("orders/s, one engine, one symbol (SQLite file)", rates[1, True], rates[1, False], "orders/s")
    # A store shared by several engines keeps its thread (AsyncStore): that is the default measured.
    print(
        "BENCH-ROW "
        + json.dumps(
            {
                "bench": "engine",
                "row": f"orders/s, {FLEET} engines, {FLEET} symbols, one SQLite file (store thread)",
                "ours": rates[FLEET, False],
                "unit": "orders/s",
                "peer": rates[FLEET, True],
                "peer_name": "all inline",
            }
        )
    )


if __name__ == "__main__":
    main()
