"""Simulated venue throughput: order round trips, and market events with 50 resting orders.

Prints medians of 5 runs.  No peer is measured: nothing comparable runs in-process (ccxt has no
matching engine).  Run: ``.venv/bin/python benchmarks/bench_sim.py``.  Times are CPU seconds of this
process (``time.process_time``): the simulated clock never sleeps, so that is the work done, without
the slices other jobs on a shared machine ran in.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from decimal import Decimal

from cqc.venues.v1 import order_pb2
from cqvx.venues.sim import GridOrder, InstrumentSpec, MarketModel, SimClock, SimConfig, SimVenue

RUNS = 5
ORDERS = 3000
SIM_SECONDS = 300.0


def _config(market: MarketModel) -> SimConfig:
    return SimConfig(
        seed=1,
        instruments=(
            InstrumentSpec(symbol="BTC-USDT", initial_price=Decimal("60000")),
            InstrumentSpec(symbol="BTC-USDT-PERP", initial_price=Decimal("60000"), follows="BTC-USDT"),
        ),
        balances={"USDT": Decimal("10000000"), "BTC": Decimal("100")},
        market=market,
        tick_interval=0.1,
    )


def _limit(cid: str, side: int, price: Decimal, symbol: str = "BTC-USDT") -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=cid,
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.001",
        price=str(price),
        post_only=True,
    )


async def bench_round_trips(run: int) -> float:
    sim = SimVenue(_config(MarketModel(volatility=0.0, trades_per_step=0)), clock=SimClock())
    async with sim:
        price = Decimal("59000")
        start = time.process_time()
        for i in range(ORDERS):
            report = await sim.place_order(_limit(f"r{run}-{i}", order_pb2.ORDER_SIDE_BUY, price))
            await sim.cancel_order(order_id=report.order_id)
        elapsed = time.process_time() - start
    return ORDERS / elapsed


async def bench_direct_round_trips(run: int) -> float:
    """The path a backtest can drive without the VenueClient API: ``sim.engine.place`` / ``cancel``
    (the same validation, reservation, matching and event emission; no coroutine, no reply message)."""
    sim = SimVenue(_config(MarketModel(volatility=0.0, trades_per_step=0)), clock=SimClock())
    async with sim:
        engine = sim.engine
        price = Decimal("59000")
        orders = [_limit(f"d{run}-{i}", order_pb2.ORDER_SIDE_BUY, price) for i in range(ORDERS)]
        start = time.process_time()
        for order in orders:
            engine.cancel(engine.place(order).order_id, None)
        elapsed = time.process_time() - start
    return ORDERS / elapsed


async def bench_grid_round_trips(run: int) -> float:
    """The backtest path on the integer grid: ``sim.place_grid(GridOrder(...))`` / ``sim.cancel_grid``
    (the same admission, funds hold, matching and events; no protobuf and no decimal parsing in,
    the order record out).  Requests are built before the clock starts, as in the direct row."""
    sim = SimVenue(_config(MarketModel(volatility=0.0, trades_per_step=0)), clock=SimClock())
    async with sim:
        grid = sim.grid("BTC-USDT")
        ticks, lots = grid.ticks(Decimal("59000")), grid.lots(Decimal("0.001"))
        orders = [
            GridOrder("BTC-USDT", order_pb2.ORDER_SIDE_BUY, ticks, lots, f"g{run}-{i}", post_only=True)
            for i in range(ORDERS)
        ]
        place, cancel = sim.place_grid, sim.cancel_grid
        start = time.process_time()
        for order in orders:
            cancel(place(order).order_id)
        elapsed = time.process_time() - start
    return ORDERS / elapsed


async def bench_market_events(run: int) -> tuple[float, float, int]:
    sim = SimVenue(_config(MarketModel()), clock=SimClock())
    async with sim:
        mid = sim.markets["BTC-USDT"].mid
        for i in range(25):
            # A ladder 20..500 USDT from the mid: orders fill and stay in the book's way.
            await sim.place_order(_limit(f"b{run}-{i}", order_pb2.ORDER_SIDE_BUY, mid - 20 * (i + 1)))
            await sim.place_order(_limit(f"s{run}-{i}", order_pb2.ORDER_SIDE_SELL, mid + 20 * (i + 1)))
        counter = {"trades": 0}
        original = sim.public_trade

        def count(trade: object) -> None:
            counter["trades"] += 1
            original(trade)  # type: ignore[arg-type]

        sim.public_trade = count  # type: ignore[method-assign]
        start = time.process_time()
        await sim.run_for(SIM_SECONDS)
        elapsed = time.process_time() - start
        ticks = SIM_SECONDS / sim.config.tick_interval
        filled = sum(1 for o in sim.engine.orders.values() if o.filled)
    return ticks / elapsed, counter["trades"] / elapsed, filled


BATCH_EVENTS = 500_000


def _walk(mid_ticks: int, n: int) -> list[tuple[int, int, order_pb2.OrderSide.ValueType]]:
    """Public trades of a random walk around the mid (up to 40 ticks a step: it reaches the ladder)."""
    rng = random.Random(7)
    out: list[tuple[int, int, order_pb2.OrderSide.ValueType]] = []
    price = mid_ticks
    for _ in range(n):
        price += rng.randint(-40, 40)
        side = order_pb2.ORDER_SIDE_SELL if rng.random() < 0.5 else order_pb2.ORDER_SIDE_BUY
        out.append((price, rng.randint(1, 5000), side))
    return out


async def bench_batch_events(
    run: int, events: list[tuple[int, int, order_pb2.OrderSide.ValueType]]
) -> tuple[float, int]:
    """The backtest path: ``SimVenue.match_trades`` with trades on the integer grid (ticks, lots)
    against the same 50-order ladder; a trade reaching none of them costs one compare."""
    sim = SimVenue(_config(MarketModel()), clock=SimClock())
    async with sim:
        mid = sim.markets["BTC-USDT"].mid
        for i in range(25):
            await sim.place_order(_limit(f"b{run}-{i}", order_pb2.ORDER_SIDE_BUY, mid - 20 * (i + 1)))
            await sim.place_order(_limit(f"s{run}-{i}", order_pb2.ORDER_SIDE_SELL, mid + 20 * (i + 1)))
        start = time.process_time()
        sim.match_trades("BTC-USDT", events)
        elapsed = time.process_time() - start
        filled = sum(1 for o in sim.engine.orders.values() if o.filled)
    return len(events) / elapsed, filled


async def main() -> None:
    rt = [await bench_round_trips(r) for r in range(RUNS)]
    direct = [await bench_direct_round_trips(r) for r in range(RUNS)]
    grid = [await bench_grid_round_trips(r) for r in range(RUNS)]
    ev = [await bench_market_events(r) for r in range(RUNS)]
    events = _walk(int(Decimal("60000") / Decimal("0.01")), BATCH_EVENTS)
    batch = [await bench_batch_events(r, events) for r in range(RUNS)]
    print(f"sim: place+cancel round trips/s (median of {RUNS}): {statistics.median(rt):,.0f}")
    print(f"sim: place+cancel round trips/s, direct engine path (median): {statistics.median(direct):,.0f}")
    print(f"sim: place+cancel round trips/s, integer-grid path (median): {statistics.median(grid):,.0f}")
    print(
        f"sim: market ticks/s with 50 resting orders, 2 instruments (median of {RUNS}): "
        f"{statistics.median(t for t, _, _ in ev):,.0f}  "
        f"(= {statistics.median(t for t, _, _ in ev) * 0.1:,.0f}x real time at 100 ms ticks)"
    )
    print(
        f"sim: public trades processed/s against 50 resting orders (median): "
        f"{statistics.median(p for _, p, _ in ev):,.0f}; resting orders filled per run: "
        f"{statistics.median(f for _, _, f in ev)}"
    )
    print(
        f"sim: public trades/s against 50 resting orders, batch path match_trades (median): "
        f"{statistics.median(r for r, _ in batch):,.0f}; resting orders filled per run: "
        f"{statistics.median(f for _, f in batch)}"
    )
    for row, value, target in (
        ("place+cancel round trips, VenueClient API", statistics.median(rt), ">= 100,000 /s"),
        ("place+cancel round trips, direct engine (protobuf request)", statistics.median(direct), "-"),
        (
            "place+cancel round trips, integer-grid path (place_grid / cancel_grid)",
            statistics.median(grid),
            ">= 100,000 /s",
        ),
        ("market steps: public trades vs 50 resting orders", statistics.median(p for _, p, _ in ev), "-"),
        (
            "batch match_trades: trades vs 50 resting orders",
            statistics.median(r for r, _ in batch),
            ">= 1,000,000 /s",
        ),
    ):
        print(
            "BENCH-ROW "
            + json.dumps({"bench": "sim", "row": row, "ours": value, "unit": "/s", "target": target})
        )


if __name__ == "__main__":
    asyncio.run(main())
