"""Tick-to-order latency of the grid engine: price event -> the venue's place call.

The engine runs on the simulated venue (SimClock, in process) with the default SQLite state store
(WAL, synchronous=FULL: the intent is durable before the order is sent, so an fsync is on the path).
Each tick moves the price one grid interval up, so every tick places exactly one new buy (and
cancels the one that left the window); the 25/s order budget is lifted so the figure is the
engine's own.  Measured from ``PriceMonitor.publish`` (the price event) to the
moment the venue's ``place_orders`` / ``place_order`` is entered.  Prints median and p99.
"""

from __future__ import annotations

import asyncio
import json
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


async def _measure(store_url: str) -> list[float]:
    sim = SimVenue.default(seed=1, clock=SimClock())
    engine = GridEngine(parse_config(CFG, {}), sim, StateStore(store_url))
    await engine.start(run_tasks=False)
    published = 0.0
    samples: list[float] = []

    def wrap(name: str) -> None:
        inner = getattr(sim, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            samples.append((time.perf_counter() - published) * 1e6)
            return await inner(*args, **kwargs)

        setattr(sim, name, timed)

    wrap("place_orders")
    wrap("place_order")
    price = Decimal(60000)
    engine.monitor.min_interval = 0
    await engine.on_price(price)  # first tick: the whole window
    samples.clear()
    for _ in range(TICKS):
        price += 30
        sim.set_price(SYM, price)
        published = time.perf_counter()
        engine.monitor.publish(price)
        p, received = await engine.monitor.next()
        await engine.on_price(p, received)
    await engine.stop(cancel_orders=False)
    await sim.aclose()
    return samples


def _report(label: str, samples: list[float]) -> None:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    print(f"{label:<34} n={len(s):4d}  median {statistics.median(s):8.1f} us   p99 {p99:8.1f} us")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file_samples = asyncio.run(_measure(sqlite_url(Path(tmp) / "bench.db")))
    mem_samples = asyncio.run(_measure("sqlite://"))
    print("tick-to-order latency (price event -> venue place call)")
    _report("SQLite file (WAL, synchronous=FULL)", file_samples)
    _report("SQLite in memory (no fsync)", mem_samples)
    s = sorted(file_samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    fields = {
        "bench": "engine",
        "row": "tick-to-order p99, SQLite file store",
        "ours": p99,
        "unit": "µs",
        "target": "< 500 µs",
        "lower_is_better": True,
    }
    print("BENCH-ROW " + json.dumps(fields))


if __name__ == "__main__":
    main()
