"""Tick-to-order latency and order throughput of the grid engine on the simulated venue (SimClock).

Tick-to-order: from ``PriceMonitor.publish`` (the price event) to the moment the venue's
``place_orders`` / ``place_order`` is entered.  On that path: the grid decision, the risk admission,
ONE commit of all of the tick's intents (group commit, the outbox rule: durable before the venue call)
and the executor's token bucket.  Each tick moves the price one grid interval up, so every tick places
exactly one new buy (and cancels the one that left the window); the 25/s order budget is lifted so the
figure is the engine's own.

Stores (all with the default ``AsyncStore`` placement: inline on the loop for one engine), ticked
interleaved in ONE process so machine load hits them alike:

* SQLite file on the disk, ``state.durability: fsync`` (synchronous=FULL: one fsync per tick on the path);
* the same, ``durability: process`` (synchronous=NORMAL: the commit reaches the OS page cache, no fsync);
* SQLite file on tmpfs (``/dev/shm``; fsync is a no-op there): the same code with no I/O wait, i.e. the
  path's CPU cost;
* SQLite in memory (no file at all).

A bare 4 KiB write + fsync on the bench's disk is timed in between, the floor of the fsync mode.

Throughput: placements per second of one engine on one symbol, and of ten engines (ten symbols: ten
simulated venues, one table set each) in one process sharing one SQLite file (the fleet's shape; its
store is on the store thread, ``AsyncStore``'s default for a shared store), each in both durability
modes in alternating rounds.  The price only rises, so every tick is one place + one cancel: four
commits (intent, placement outcome, cancel intent, cancel outcome), one of them before the venue call.
Prints medians and p99s, and ``BENCH-ROW`` lines for the README table (``benchmarks/run_all.py``).
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
TMPFS = Path("/dev/shm")
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
FSYNC, PROCESS = "durability fsync", "durability process"


class _Rig:
    """One engine on its own simulated venue, with the venue's place calls timed."""

    def __init__(self, store: StateStore) -> None:
        self.sim = SimVenue.default(seed=1, clock=SimClock())
        self.engine = GridEngine(parse_config(CFG, {}), self.sim, store)
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


def _fsync_once(path: Path, block: bytes) -> float:
    """One 4 KiB write + fsync (what a synchronous=FULL commit waits for at least), in us."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        started = time.perf_counter()
        os.write(fd, block)
        os.fsync(fd)
        return (time.perf_counter() - started) * 1e6
    finally:
        os.close(fd)


async def _latency(tmp: Path, shm: Path | None) -> tuple[dict[str, list[float]], list[float]]:
    rigs = {
        "disk, durability fsync": _Rig(StateStore(sqlite_url(tmp / "fsync.db"))),
        "disk, durability process": _Rig(StateStore(sqlite_url(tmp / "process.db"), durability="process")),
        "SQLite in memory": _Rig(StateStore("sqlite://")),
    }
    if shm is not None:
        rigs["tmpfs, durability fsync (CPU only)"] = _Rig(StateStore(sqlite_url(shm / "tmpfs.db")))
    for rig in rigs.values():
        await rig.start()
    fsyncs: list[float] = []
    block = os.urandom(4096)
    for _ in range(TICKS):
        for rig in rigs.values():
            await rig.tick()
        fsyncs.append(_fsync_once(tmp / "fsync.probe", block))
    for rig in rigs.values():
        await rig.stop()
    return {label: rig.samples for label, rig in rigs.items()}, fsyncs


async def _throughput(tmp: Path, engines: int) -> dict[str, float]:
    """Placements per second of ``engines`` engines (one symbol each) on one SQLite file per mode, the
    two durability modes in alternating rounds (a busy disk hits both alike)."""
    setups = {
        label: [
            _Rig(
                StateStore(
                    sqlite_url(tmp / f"fleet-{engines}-{mode}.db"), table_prefix=f"e{i}_", durability=mode
                )
            )
            for i in range(engines)
        ]
        for label, mode in ((FSYNC, "fsync"), (PROCESS, "process"))
    }
    elapsed = dict.fromkeys(setups, 0.0)
    for rigs in setups.values():
        for rig in rigs:
            await rig.start()

    async def run(rig: _Rig) -> None:
        for _ in range(THROUGHPUT_TICKS // ROUNDS):
            await rig.tick()

    for _ in range(ROUNDS):
        for label, rigs in setups.items():
            started = time.perf_counter()
            await asyncio.gather(*(run(rig) for rig in rigs))
            elapsed[label] += time.perf_counter() - started
    for rigs in setups.values():
        for rig in rigs:
            await rig.stop()
    return {label: sum(r.placed for r in rigs) / elapsed[label] for label, rigs in setups.items()}


def _row(
    row: str,
    ours: float,
    unit: str,
    *,
    peer: float | None = None,
    peer_name: str = "",
    target: str = "",
    lower: bool = False,
) -> None:
    fields = {"bench": "engine", "row": row, "ours": ours, "unit": unit, "peer": peer, "peer_name": peer_name}
    fields |= {"target": target, "lower_is_better": lower}
    print("BENCH-ROW " + json.dumps(fields))


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} (the machine is shared; compare rows, not runs)")
    med = statistics.median
    # The default temporary directory is on the disk here (/tmp); tmpfs is used only for the CPU-only rig.
    with tempfile.TemporaryDirectory() as disk_name:
        shm_dir = tempfile.TemporaryDirectory(dir=TMPFS) if TMPFS.is_dir() else None
        disk, shm = Path(disk_name), Path(shm_dir.name) if shm_dir else None
        try:
            lat, fsyncs = asyncio.run(_latency(disk, shm))
        finally:
            if shm_dir is not None:
                shm_dir.cleanup()
        print(f"tick-to-order latency (price event -> venue place call), {TICKS} ticks each, interleaved")
        for label, samples in lat.items():
            print(f"  {label:<36} median {med(samples):8.1f} us   p99 {_p99(samples):8.1f} us")
        bare = "bare 4 KiB write + fsync, same disk"
        print(f"  {bare:<36} median {med(fsyncs):8.1f} us   p99 {_p99(fsyncs):8.1f} us")
        rates = {engines: asyncio.run(_throughput(disk, engines)) for engines in (1, FLEET)}
    print("placements/s, SQLite file on the disk (one place + one cancel per tick and engine)")
    for engines, by_mode in rates.items():
        for label, rate in by_mode.items():
            print(f"  {engines:2d} engine(s), {engines:2d} symbol(s), {label:<20} {rate:10,.0f} orders/s")

    fsync, process = lat["disk, durability fsync"], lat["disk, durability process"]
    _row("tick-to-order median, SQLite file, durability fsync", med(fsync), "µs", lower=True)
    _row("tick-to-order p99, SQLite file, durability fsync", _p99(fsync), "µs", target="< 500 µs", lower=True)
    for stat, fn in (("median", med), ("p99", _p99)):
        row = f"tick-to-order {stat}, SQLite file, durability process"
        _row(row, fn(process), "µs", peer=fn(fsync), peer_name=FSYNC, lower=True)
    cpu = lat.get("tmpfs, durability fsync (CPU only)")
    if cpu is not None:
        _row("tick-to-order median, CPU only (SQLite file on tmpfs)", med(cpu), "µs", lower=True)
        _row("tick-to-order p99, CPU only (SQLite file on tmpfs)", _p99(cpu), "µs", lower=True)
    _row("bare 4 KiB write + fsync p99 (the bench's disk)", _p99(fsyncs), "µs", lower=True)
    for engines, what in (
        (1, "one engine, one symbol"),
        (FLEET, f"{FLEET} engines, {FLEET} symbols, one SQLite file"),
    ):
        by_mode = rates[engines]
        _row(f"orders/s, {what}, durability fsync", by_mode[FSYNC], "orders/s")
        row = f"orders/s, {what}, durability process"
        _row(row, by_mode[PROCESS], "orders/s", peer=by_mode[FSYNC], peer_name=FSYNC)


if __name__ == "__main__":
    main()
