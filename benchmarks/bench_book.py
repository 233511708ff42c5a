"""Local L2 book: updates per second and top-of-book read cost, cqvx OrderBookL2 vs ccxt's OrderBook.

Run: .venv/bin/python benchmarks/bench_book.py   (about 20 s)

Both books are fed the same stream in one process: a 500-level-per-side snapshot, then 200k level
updates around a random-walking mid (5% of updates delete a level near the top; when the mid moves,
the levels it crossed are deleted, as a venue would).  One level per venue message, as Coinbase
``l2_data`` and Binance diff streams mostly are at this rate.  The peer is ccxt's own ``OrderBook``
(``ccxt.async_support.base.ws.order_book``), updated with ``book['bids'].store(price, size)``, the
call ccxt's exchange classes make per level; reading its top 20 is slicing its sorted lists.

cqvx keeps exact Decimals (wire strings validated and kept as given), checks the sequence number and
crossing on every message and validates every number; ccxt stores floats unchecked.  So each cqvx
row names the peer it is held against: ccxt with ready floats (no parsing at all), or ccxt with the
``float(str)`` its parsers do per wire string (the like-for-like comparison for str input).  Two
cqvx entry points: ``apply_level(is_bid, price, size, sequence)``, one level per call as ccxt's
``store(price, size)`` is, fed the very ``(is_bid, price str, size str)`` tuples the ccxt rows get
(the headline row); and ``apply_levels(bids, asks, sequence=...)``, the lists an adapter builds from
a message (``[(price, size)]`` on one side, ``()`` on the other), which hands a one-level message
to ``apply_level``.  Every
timed run gets freshly built input objects, as a venue parser would hand over: nothing is helped
by hashes cached on a previous run.  Repeats are interleaved so machine noise hits every row alike.

Ratios are peer time / cqvx time: above 1 means cqvx is faster.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ccxt.async_support.base.ws.order_book import OrderBook as CcxtOrderBook

from cqvx.book import ApplyResult, OrderBookL2

N_DELTAS = 200_000
N_PUBLISH = 50_000  # the update-then-read rows: fewer messages, each does more
SNAPSHOT_LEVELS = 500
REPEATS = 5
IDLE_LOOPS = 20_000
TOP = 20

Update = tuple[bool, int, int]  # (is_bid, price in cents, size in thousandths)


def make_stream(seed: int = 7) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[Update]]:
    """(snapshot bids, snapshot asks, updates) in integer ticks and lots."""
    rng = random.Random(seed)
    mid = 5_000_000  # 50000.00
    bids = {mid - k: rng.randint(1, 5000) for k in range(1, SNAPSHOT_LEVELS + 1)}
    asks = {mid + k: rng.randint(1, 5000) for k in range(1, SNAPSHOT_LEVELS + 1)}
    snap_b = sorted(bids.items(), reverse=True)
    snap_a = sorted(asks.items())
    updates: list[Update] = []
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
        if rng.random() < 0.05:  # delete a level near the top (where venues churn), if it is there
            k = rng.randint(1, 30)
            p = mid - k if is_bid else mid + k
            if p in side:
                del side[p]
                updates.append((is_bid, p, 0))
                continue
        k = min(int(rng.expovariate(1 / 15)) + 1, SNAPSHOT_LEVELS)
        p = mid - k if is_bid else mid + k
        size = rng.randint(1, 5000)
        side[p] = size
        updates.append((is_bid, p, size))
    return snap_b, snap_a, updates[:N_DELTAS]


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def _size(lots: int) -> str:
    return f"{lots // 1000}.{lots % 1000:03d}"


Msg = tuple[Any, Any]  # (bid levels, ask levels) of one venue message


def str_msgs(updates: list[Update]) -> list[Msg]:
    """Fresh wire strings, one level per message."""
    out: list[Msg] = []
    for is_bid, p, s in updates:
        level = [(_price(p), _size(s))]
        out.append((level, ()) if is_bid else ((), level))
    return out


def dec_msgs(updates: list[Update]) -> list[Msg]:
    out: list[Msg] = []
    for is_bid, p, s in updates:
        level = [(Decimal(p).scaleb(-2), Decimal(s).scaleb(-3))]
        out.append((level, ()) if is_bid else ((), level))
    return out


def float_updates(updates: list[Update]) -> list[tuple[bool, float, float]]:
    return [(b, float(_price(p)), float(_size(s))) for b, p, s in updates]


def str_updates(updates: list[Update]) -> list[tuple[bool, str, str]]:
    return [(b, _price(p), _size(s)) for b, p, s in updates]


def timed(fn: Callable[[Any], Any], make_input: Callable[[], Any]) -> float:
    """CPU seconds of this process for ``fn(data)``: on a shared machine wall time also counts the
    slices other jobs ran in, which land on rows at random; every row is measured the same way."""
    data = make_input()  # not timed
    started = time.process_time()
    fn(data)
    return time.process_time() - started


def main() -> None:
    snap_b, snap_a, updates = make_stream()
    pub = updates[:N_PUBLISH]
    s_snap = ([(_price(p), _size(s)) for p, s in snap_b], [(_price(p), _size(s)) for p, s in snap_a])
    d_snap = (
        [(Decimal(p), Decimal(s)) for p, s in s_snap[0]],
        [(Decimal(p), Decimal(s)) for p, s in s_snap[1]],
    )
    f_snap = ([[float(p), float(s)] for p, s in s_snap[0]], [[float(p), float(s)] for p, s in s_snap[1]])

    def new_ours(snap: tuple[Any, Any]) -> OrderBookL2:
        book = OrderBookL2("BTC-USD", "bench")
        book.apply_snapshot_levels(snap[0], snap[1], sequence=1)
        return book

    def new_ccxt() -> Any:
        return CcxtOrderBook({"bids": [lv[:] for lv in f_snap[0]], "asks": [lv[:] for lv in f_snap[1]]})

    def ours_apply(snap: tuple[Any, Any]) -> Callable[[list[Msg]], OrderBookL2]:
        def run(msgs: list[Msg]) -> OrderBookL2:
            book = new_ours(snap)
            apply = book.apply_levels
            seq = 1
            for bids, asks in msgs:
                seq += 1
                apply(bids, asks, sequence=seq)
            return book

        return run

    def ours_level(ups: list[tuple[bool, str, str]]) -> OrderBookL2:
        book = new_ours(s_snap)
        apply = book.apply_level
        seq = 1
        for is_bid, p, s in ups:
            seq += 1
            apply(is_bid, p, s, seq)
        return book

    def ccxt_floats(ups: list[tuple[bool, float, float]]) -> Any:
        ob = new_ccxt()
        bids_store = ob["bids"].store
        asks_store = ob["asks"].store
        for is_bid, p, s in ups:
            (bids_store if is_bid else asks_store)(p, s)
        return ob

    def ccxt_strs(ups: list[tuple[bool, str, str]]) -> Any:
        ob = new_ccxt()
        bids_store = ob["bids"].store
        asks_store = ob["asks"].store
        for is_bid, p, s in ups:
            (bids_store if is_bid else asks_store)(float(p), float(s))
        return ob

    def ours_then_top(msgs: list[Msg]) -> None:
        book = new_ours(s_snap)
        apply = book.apply_levels
        seq = 1
        for bids, asks in msgs:
            seq += 1
            apply(bids, asks, sequence=seq)
            book.bids(TOP)
            book.asks(TOP)

    def ours_then_snapshot(msgs: list[Msg]) -> None:
        book = new_ours(s_snap)
        apply = book.apply_levels
        snapshot = book.snapshot
        seq = 1
        for bids, asks in msgs:
            seq += 1
            apply(bids, asks, sequence=seq)
            snapshot(TOP)

    def ccxt_then_top(ups: list[tuple[bool, str, str]]) -> None:
        ob = new_ccxt()
        bids = ob["bids"]
        asks = ob["asks"]
        for is_bid, p, s in ups:
            (bids if is_bid else asks).store(float(p), float(s))
            _ = bids[:TOP], asks[:TOP]

    # Correctness first: both books end identical and ours never left LIVE.
    mine = ours_apply(s_snap)(str_msgs(updates))
    peer = ccxt_floats(float_updates(updates))
    assert not mine.needs_resync, mine
    assert [(float(p), float(s)) for p, s in mine.bids(TOP)] == [tuple(lv) for lv in peer["bids"][:TOP]]
    assert [(float(p), float(s)) for p, s in mine.asks(TOP)] == [tuple(lv) for lv in peer["asks"][:TOP]]
    assert mine.apply_levels([], [], sequence=mine.last_sequence + 1) is ApplyResult.APPLIED
    assert ours_apply(d_snap)(dec_msgs(updates)).bids() == mine.bids()
    level_book = ours_level(str_updates(updates))
    assert (level_book.bids(), level_book.asks()) == (mine.bids(), mine.asks())

    def idle(fn: Callable[[], object]) -> Callable[[None], None]:
        def run(_: None) -> None:
            for _i in range(IDLE_LOOPS):
                fn()

        return run

    pb = peer["bids"]
    pa = peer["asks"]
    rows: dict[str, tuple[Callable[[Any], Any], Callable[[], Any], int]] = {
        "ours level": (ours_level, lambda: str_updates(updates), N_DELTAS),
        "ours str": (ours_apply(s_snap), lambda: str_msgs(updates), N_DELTAS),
        "ours dec": (ours_apply(d_snap), lambda: dec_msgs(updates), N_DELTAS),
        "ccxt floats": (ccxt_floats, lambda: float_updates(updates), N_DELTAS),
        "ccxt float(str)": (ccxt_strs, lambda: str_updates(updates), N_DELTAS),
        "ours idle top": (idle(lambda: (mine.bids(TOP), mine.asks(TOP))), lambda: None, IDLE_LOOPS),
        "ours idle snapshot": (idle(lambda: mine.snapshot(TOP)), lambda: None, IDLE_LOOPS),
        "ccxt idle top": (idle(lambda: (pb[:TOP], pa[:TOP])), lambda: None, IDLE_LOOPS),
        "ours upd+top": (ours_then_top, lambda: str_msgs(pub), N_PUBLISH),
        "ours upd+snapshot": (ours_then_snapshot, lambda: str_msgs(pub), N_PUBLISH),
        "ccxt upd+top": (ccxt_then_top, lambda: str_updates(pub), N_PUBLISH),
    }
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(REPEATS):  # interleaved: noise lands on every row alike
        for name, (fn, make_input, count) in rows.items():
            samples[name].append(timed(fn, make_input) / count)
    med = {name: statistics.median(values) for name, values in samples.items()}

    def rate(name: str) -> str:
        return f"{1 / med[name]:>12,.0f} /s"

    def cost(name: str) -> str:
        return f"{med[name] * 1e6:>11.2f} µs"

    table = [
        (
            "update, str, apply_level",
            rate("ours level"),
            "ccxt float(str)",
            rate("ccxt float(str)"),
            "ours level",
            "ccxt float(str)",
        ),
        (
            "update, str, apply_level",
            rate("ours level"),
            "ccxt floats",
            rate("ccxt floats"),
            "ours level",
            "ccxt floats",
        ),
        (
            "update, str, apply_levels lists",
            rate("ours str"),
            "ccxt float(str)",
            rate("ccxt float(str)"),
            "ours str",
            "ccxt float(str)",
        ),
        (
            "update, Decimal input",
            rate("ours dec"),
            "ccxt floats",
            rate("ccxt floats"),
            "ours dec",
            "ccxt floats",
        ),
        (
            f"top-{TOP} both sides, idle book",
            cost("ours idle top"),
            "ccxt slices",
            cost("ccxt idle top"),
            "ours idle top",
            "ccxt idle top",
        ),
        (
            f"snapshot({TOP}) cqc OrderBook, idle",
            cost("ours idle snapshot"),
            "ccxt slices",
            cost("ccxt idle top"),
            "ours idle snapshot",
            "ccxt idle top",
        ),
        (
            f"update + top-{TOP} read, str",
            cost("ours upd+top"),
            "float(str)+slices",
            cost("ccxt upd+top"),
            "ours upd+top",
            "ccxt upd+top",
        ),
        (
            f"update + snapshot({TOP}), str",
            cost("ours upd+snapshot"),
            "float(str)+slices",
            cost("ccxt upd+top"),
            "ours upd+snapshot",
            "ccxt upd+top",
        ),
    ]
    print(
        f"L2 book: {N_DELTAS:,} one-level messages on a {SNAPSHOT_LEVELS}/side book "
        f"({N_PUBLISH:,} for update+read rows), median of {REPEATS} interleaved runs"
    )
    print(
        f"{'row':34} {'cqvx OrderBookL2':>16}   {'peer: ccxt OrderBook':<20} {'':>15}  {'peer/cqvx time':>14}"
    )
    for label, ours, peer_name, theirs, a, b in table:
        print(f"{label:34} {ours:>16}   {peer_name:<20} {theirs:>15}  {med[b] / med[a]:>14.2f}")
    print(
        "peer/cqvx time above 1 = cqvx faster.  cqvx: exact Decimals, sequence + crossed checks, validation."
    )
    for row, ours_key, peer_key, peer_label, unit, target in (
        (
            "L2 book update, wire strings (apply_level)",
            "ours level",
            "ccxt float(str)",
            "ccxt OrderBook store",
            "msg/s",
            ">= 1.0x",
        ),
        (
            "L2 book update, wire strings (apply_levels lists)",
            "ours str",
            "ccxt float(str)",
            "ccxt OrderBook store",
            "msg/s",
            "",
        ),
        (
            f"L2 book top-{TOP} read, both sides",
            "ours idle top",
            "ccxt idle top",
            "ccxt slices",
            "µs",
            ">= 0.5x",
        ),
    ):
        per_s = unit == "msg/s"
        fields = {
            "bench": "book",
            "row": row,
            "ours": 1 / med[ours_key] if per_s else med[ours_key] * 1e6,
            "unit": unit,
            "peer": 1 / med[peer_key] if per_s else med[peer_key] * 1e6,
            "peer_name": peer_label,
            "target": target,
            "lower_is_better": not per_s,
        }
        print("BENCH-ROW " + json.dumps(fields))


if __name__ == "__main__":
    main()
