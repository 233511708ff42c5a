"""Coinbase ``l2_data`` pipeline: JSON text of an update message -> the local book, cqvx vs ccxt.pro.

Run: .venv/bin/python benchmarks/bench_l2_pipeline.py   (about 15 s)

Both sides start from the same bytes: Coinbase Advanced Trade ``l2_data`` update messages (the
documented shape, cqvx/tests/coinbase/fixtures/ws_l2_data_update.json), one level each as the feed
mostly is, built from bench_book's stream on a 500-level-per-side book.

* cqvx: what ``CoinbaseStream._on_l2`` does per message (cqvx/venues/coinbase/stream.py): strict
  envelope decode (msgspec), RFC 3339 timestamp, events, levels, ``OrderBookL2.apply_level`` for
  an event of one update (``apply_levels`` for more) with the sequence and crossed checks; every
  number validated and kept exact.
* ccxt.pro: what ``coinbase.handle_order_book`` does per message minus the market lookup and the
  future resolution (which only cost ccxt time): ``json.loads``, ``handle_order_book_helper`` (float
  prices into ccxt's OrderBook), ``parse8601`` of the message time.

Ratio = ccxt time / cqvx time (above 1: cqvx faster).  Median of interleaved repeats.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import ccxt.pro

from cqvx.book import ApplyResult, OrderBookL2
from cqvx.venues.coinbase import parse

# The same update stream as bench_book (a sibling script, not a package: imported by path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
_book_bench: Any = importlib.import_module("bench_book")
make_stream, _price, _size = _book_bench.make_stream, _book_bench._price, _book_bench._size

N = 50_000
REPEATS = 5


def messages() -> tuple[bytes, list[bytes]]:
    snap_b, snap_a, updates = make_stream()

    def msg(seq: int, kind: str, levels: list[tuple[str, str, str]]) -> bytes:
        stamp = f"2026-04-07T14:{seq // 60_000 % 60:02d}:{seq // 1000 % 60:02d}.{seq % 1000:03d}456789Z"
        return json.dumps(
            {
                "channel": "l2_data",
                "client_id": "",
                "timestamp": stamp,
                "sequence_num": seq,
                "events": [
                    {
                        "type": kind,
                        "product_id": "BTC-USD",
                        "updates": [
                            {"side": side, "event_time": stamp, "price_level": p, "new_quantity": q}
                            for side, p, q in levels
                        ],
                    }
                ],
            }
        ).encode()

    snap = msg(
        1,
        "snapshot",
        [("bid", _price(p), _size(s)) for p, s in snap_b]
        + [("offer", _price(p), _size(s)) for p, s in snap_a],
    )
    ups = [
        msg(i + 2, "update", [("bid" if is_bid else "offer", _price(p), _size(s))])
        for i, (is_bid, p, s) in enumerate(updates[:N])
    ]
    return snap, ups


def ours(snap: bytes, ups: list[bytes]) -> OrderBookL2:
    book = OrderBookL2("BTC-USD", "coinbase")

    def feed(data: bytes) -> ApplyResult:
        env = parse.envelope_from_json(data)
        when = parse.timestamp(env.timestamp, "timestamp")
        result = ApplyResult.REFUSED
        for ev in parse.l2_events(env):
            if ev.type == "update":
                one = parse.l2_level(ev)
                if one is not None:
                    result = book.apply_level(one[0], one[1], one[2], env.sequence_num, when)
                else:
                    bids, asks = parse.l2_levels(ev)
                    result = book.apply_levels(bids, asks, sequence=env.sequence_num, timestamp=when)
            else:
                bids, asks = parse.l2_levels(ev)
                result = book.apply_snapshot_levels(bids, asks, sequence=env.sequence_num, timestamp=when)
        return result

    assert feed(snap) is ApplyResult.APPLIED
    for data in ups:
        feed(data)
    return book


def peer(snap: bytes, ups: list[bytes]) -> Any:
    cxp = ccxt.pro.coinbase()
    ob = cxp.order_book()

    def feed(data: bytes) -> None:
        message = json.loads(data)
        stamp = message["timestamp"]
        for ev in message["events"]:
            if ev["type"] == "snapshot":
                ob.reset({})
            cxp.handle_order_book_helper(ob, ev["updates"])
            ob["timestamp"] = cxp.parse8601(stamp)
            ob["datetime"] = stamp

    feed(snap)
    for data in ups:
        feed(data)
    return ob


def main() -> None:
    snap, ups = messages()
    mine = ours(snap, ups)
    theirs = peer(snap, ups)
    assert not mine.needs_resync
    assert [(float(p), float(s)) for p, s in mine.bids(20)] == [tuple(lv) for lv in theirs["bids"][:20]]
    assert [(float(p), float(s)) for p, s in mine.asks(20)] == [tuple(lv) for lv in theirs["asks"][:20]]
    a: list[float] = []
    b: list[float] = []
    # CPU time of this process: on a shared machine, wall time also counts other jobs' slices.
    for _ in range(REPEATS):
        t0 = time.process_time()
        ours(snap, ups)
        a.append(time.process_time() - t0)
        t0 = time.process_time()
        peer(snap, ups)
        b.append(time.process_time() - t0)
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"Coinbase l2_data JSON -> book: {N:,} one-level update messages, median of {REPEATS}")
    print(f"cqvx (decode + checks + OrderBookL2) {N / ma:>12,.0f} msg/s")
    print(f"ccxt.pro (json + OrderBook)          {N / mb:>12,.0f} msg/s")
    print(f"ccxt.pro time / cqvx time            {mb / ma:>12.2f}x")
    fields = {
        "bench": "l2_pipeline",
        "row": "Coinbase l2_data JSON -> book",
        "ours": N / ma,
        "unit": "msg/s",
        "peer": N / mb,
        "peer_name": "ccxt.pro",
        "target": ">= 2x",
    }
    print("BENCH-ROW " + json.dumps(fields))


if __name__ == "__main__":
    main()
