"""Local L2 book: deltas applied per second and top-20 snapshot cost, cqvx OrderBookL2 vs ccxt.

Run: .venv/bin/python benchmarks/bench_book.py

Both books are fed the same stream in one process: a 500-level-per-side snapshot, then 200k level
updates around a random-walking mid (5% of updates delete a level; when the mid moves, the levels it
crossed are deleted, as a venue would).  The peer is ccxt's own ``OrderBook``
(``ccxt.async_support.base.ws.order_book``), updated with ``book['bids'].store(price, size)``, the
call ccxt's exchange classes make per level.

ccxt keeps floats; cqvx keeps Decimals and checks the sequence number and crossing on every update,
so it is fed both wire strings (what an adapter parses) and ready Decimals.  "top-20" for ccxt is
slicing its sorted lists (``book['bids'][:20]``); for cqvx it is ``bids(20)/asks(20)`` (tuples) and
``snapshot(20)`` (the cqc OrderBook message every book stream publishes).
Ratios are ccxt / cqvx time (above 1 = cqvx faster).  cqvx pays for exact Decimals, per-message
sequence and crossed-book checks and validation; ccxt stores floats unchecked.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ccxt.async_support.base.ws.order_book import OrderBook as CcxtOrderBook

from cqvx.book import ApplyResult, OrderBookL2

N_DELTAS = 200_000
SNAPSHOT_LEVELS = 500
REPEATS = 3
TICK_DECIMALS = 2  # prices in cents


def make_stream(
    seed: int = 7,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[bool, int, int]]]:
    """(snapshot bids, snapshot asks, updates) in integer ticks/lots; updates are (is_bid, price, size)."""
    rng = random.Random(seed)
    mid = 5_000_000  # 50000.00
    bids = {mid - k: rng.randint(1, 5000) for k in range(1, SNAPSHOT_LEVELS + 1)}
    asks = {mid + k: rng.randint(1, 5000) for k in range(1, SNAPSHOT_LEVELS + 1)}
    snap_b = sorted(bids.items(), reverse=True)
    snap_a = sorted(asks.items())
    updates: list[tuple[bool, int, int]] = []
    while len(updates) < N_DELTAS:
        if rng.random() < 0.01:  # the mid moves a few ticks; levels it crossed are deleted
            mid += rng.choice((-3, -2, -1, 1, 2, 3))
            for p in [p for p in bids if p >= mid]:
                del bids[p]
                updates.append((True, p, 0))
            for p in [p for p in asks if p <= mid]:
                del asks[p]
                updates.append((False, p, 0))
            continue
        is_bid = rng.random() < 0.5
        side = bids if is_bid else asks
        if rng.random() < 0.05 and side:
            # Delete a level near the top (where venues churn).
            near = sorted(side, reverse=is_bid)[: rng.randint(1, 30)]
            p = near[-1]
            del side[p]
            updates.append((is_bid, p, 0))
            continue
        k = min(int(rng.expovariate(1 / 15)) + 1, SNAPSHOT_LEVELS)
        p = mid - k if is_bid else mid + k
        size = rng.randint(1, 5000)
        side[p] = size
        updates.append((is_bid, p, size))
    return snap_b, snap_a, updates[:N_DELTAS]


def _str(ticks: int) -> str:
    return str(Decimal(ticks).scaleb(-TICK_DECIMALS))


def _size_str(lots: int) -> str:
    return str(Decimal(lots).scaleb(-3))


def median_time(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    snap_b, snap_a, updates = make_stream()
    # Three encodings of the same stream.
    s_snap_b = [(_str(p), _size_str(s)) for p, s in snap_b]
    s_snap_a = [(_str(p), _size_str(s)) for p, s in snap_a]
    s_updates = [(b, _str(p), _size_str(s)) for b, p, s in updates]
    d_snap_b = [(Decimal(p), Decimal(s)) for p, s in s_snap_b]
    d_snap_a = [(Decimal(p), Decimal(s)) for p, s in s_snap_a]
    d_updates = [(b, Decimal(p), Decimal(s)) for b, p, s in s_updates]
    f_snap_b = [[float(p), float(s)] for p, s in s_snap_b]
    f_snap_a = [[float(p), float(s)] for p, s in s_snap_a]
    f_updates = [(b, float(p), float(s)) for b, p, s in s_updates]
    # One level per venue message, as in Coinbase l2_data / Binance diff streams at this rate.
    s_msgs = [(([(p, s)], ()) if b else ((), [(p, s)])) for b, p, s in s_updates]
    d_msgs = [(([(p, s)], ()) if b else ((), [(p, s)])) for b, p, s in d_updates]

    def ours(snap: tuple[Any, Any], msgs: list[Any]) -> OrderBookL2:
        book = OrderBookL2("BTC-USD", "bench")
        book.apply_snapshot_levels(snap[0], snap[1], sequence=1)
        apply = book.apply_levels
        seq = 1
        for bids, asks in msgs:
            seq += 1
            apply(bids, asks, sequence=seq)
        return book

    def ccxt_book() -> Any:
        ob = CcxtOrderBook({"bids": [lv[:] for lv in f_snap_b], "asks": [lv[:] for lv in f_snap_a]})
        bids_store = ob["bids"].store
        asks_store = ob["asks"].store
        for is_bid, p, s in f_updates:
            (bids_store if is_bid else asks_store)(p, s)
        return ob

    def ccxt_book_parsing() -> Any:
        # The same, with the float() of each wire string that ccxt's parsers do before store().
        ob = CcxtOrderBook({"bids": [lv[:] for lv in f_snap_b], "asks": [lv[:] for lv in f_snap_a]})
        bids_store = ob["bids"].store
        asks_store = ob["asks"].store
        for is_bid, p, s in s_updates:
            (bids_store if is_bid else asks_store)(float(p), float(s))
        return ob

    # Correctness first: both books end identical and ours never left LIVE.
    mine = ours((s_snap_b, s_snap_a), s_msgs)
    peer = ccxt_book()
    assert not mine.needs_resync, mine
    assert [(float(p), float(s)) for p, s in mine.bids(20)] == [tuple(lv) for lv in peer["bids"][:20]]
    assert [(float(p), float(s)) for p, s in mine.asks(20)] == [tuple(lv) for lv in peer["asks"][:20]]
    assert mine.apply_levels([], [], sequence=mine.last_sequence + 1) is ApplyResult.APPLIED

    t_str = median_time(lambda: ours((s_snap_b, s_snap_a), s_msgs))
    t_dec = median_time(lambda: ours((d_snap_b, d_snap_a), d_msgs))
    t_ccxt = median_time(ccxt_book)
    t_ccxt_parse = median_time(ccxt_book_parsing)

    shape = f"snapshot {SNAPSHOT_LEVELS}/side, median of {REPEATS}"
    print(f"book deltas: {N_DELTAS} level updates (one per message), {shape}")
    print(f"  cqvx OrderBookL2, str input      : {N_DELTAS / t_str:>12,.0f} deltas/s")
    print(f"  cqvx OrderBookL2, Decimal input  : {N_DELTAS / t_dec:>12,.0f} deltas/s")
    print(f"  ccxt OrderBook (floats)          : {N_DELTAS / t_ccxt:>12,.0f} deltas/s")
    print(f"  ccxt OrderBook, float(str) inline: {N_DELTAS / t_ccxt_parse:>12,.0f} deltas/s")
    print(f"  ratio ccxt/cqvx time: str {t_ccxt / t_str:.2f}  Decimal {t_ccxt / t_dec:.2f}")
    print(f"  ratio ccxt(float(str))/cqvx(str) time: {t_ccxt_parse / t_str:.2f}")

    loops = 20_000

    def ours_top_tuples() -> None:
        for _ in range(loops):
            mine.bids(20)
            mine.asks(20)

    def ours_top_message() -> None:
        for _ in range(loops):
            mine.snapshot(20)

    def ccxt_top() -> None:
        bids = peer["bids"]
        asks = peer["asks"]
        for _ in range(loops):
            _ = bids[:20], asks[:20]

    t_tuples = median_time(ours_top_tuples) / loops
    t_msg = median_time(ours_top_message) / loops
    t_ctop = median_time(ccxt_top) / loops
    print(f"top-20 snapshot (both sides), median of {REPEATS} x {loops}")
    print(f"  cqvx bids(20)+asks(20) tuples     : {t_tuples * 1e6:8.2f} µs")
    print(f"  cqvx snapshot(20) cqc OrderBook   : {t_msg * 1e6:8.2f} µs")
    print(f"  ccxt bids[:20]+asks[:20] slices   : {t_ctop * 1e6:8.2f} µs")
    print(f"  ratio ccxt/cqvx time: tuples {t_ctop / t_tuples:.3f}  message {t_ctop / t_msg:.4f}")


if __name__ == "__main__":
    main()
