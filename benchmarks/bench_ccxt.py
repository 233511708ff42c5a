"""The ccxt adapter: what our layer adds per message on top of ccxt's own unified parse, and order
round trips against the fake Binance USD-M.

1. Normalization.  The canonical Binance USD-M samples (``/work/shared/fixtures/binance/futures``:
   ``ORDER_TRADE_UPDATE``, ``trade``, ``depthUpdate``) go through ccxt.pro's own parse (``json.loads`` +
   ``parse_ws_order`` / ``parse_ws_trade`` / ``handle_order_book_message`` into a ccxt order book), and
   through the same plus our layer (``cqvx.venues.ccxt.parse``: the unified structure -> a cqc message,
   and for orders the FillTracker step that turns the state into an execution report).  Printed: ccxt
   alone, ccxt + ours, and the ratio (1.0 = our layer adds nothing).  Interleaved in one process.
2. Round trips.  ``place_order`` + ``cancel_order`` through ``CcxtClient`` against the fake over
   loopback, interleaved with the same two calls made on ccxt directly (``create_order`` /
   ``cancel_order``): round trips per second each and the ratio.

Run: ``.venv/bin/python benchmarks/bench_ccxt.py`` (one process, well under a minute).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cqc.venues.v1 import order_pb2
from cqvx.fills import FillTracker
from cqvx.secrets import Secret
from cqvx.symbols import SymbolMap
from cqvx.testing.fake_binance import _shapes as shapes
from cqvx.testing.fake_binance.server import FakeBinance
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.venues.ccxt import CcxtClient, CcxtConfig, parse
from cqvx.venues.ccxt.config import build_exchange
from cqvx.venues.ccxt.quirks import quirks_for
from cqvx.venues.sim import SimClock, SimVenue

FIX = Path("/work/shared/fixtures/binance/futures")


def bench(fn: Callable[[], Any], *, rounds: int = 15, inner: int = 300) -> float:
    """Median microseconds per call over ``rounds`` batches of ``inner`` calls."""
    for _ in range(inner):
        fn()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner * 1e6)
    return statistics.median(samples)


def _sample(name: str) -> bytes:
    path = FIX / name
    if not path.exists():  # the shared fixtures are outside the repository; say so, do not guess
        raise SystemExit(f"bench_ccxt: missing sample {path}")
    return path.read_bytes()


def normalization(console: Console) -> None:
    ex = build_exchange(CcxtConfig("binance"), quirks_for("binance"))
    spec = quiet_sim_config().instruments[1]
    info = shapes.symbol_info(spec)
    info["symbol"] = info["pair"] = "BTCUSDT"
    ex.set_markets([ex.parse_market(info)])
    unified = "BTC/USDT:USDT"
    symbols = SymbolMap("binance", [("BTC-USDT-PERP", unified)])
    market = ex.market(unified)
    order_b = _sample("user_data_json/order_update_trade.json")
    trade_b = _sample("market_data_json/trade_stream.json")
    depth_b = _sample("market_data_json/depth_update_stream.json")

    def ccxt_order() -> Any:
        return ex.parse_ws_order(json.loads(order_b)["o"])

    def ours_order() -> Any:
        order = parse.parse_order(ccxt_order(), symbols, "binance")
        return FillTracker(venue="binance").update(order)

    def ccxt_trade() -> Any:
        return ex.parse_ws_trade(json.loads(trade_b), market)  # as handle_trade: market from the url

    def ours_trade() -> Any:
        return parse.parse_trade(ccxt_trade(), symbols, "binance")

    def ccxt_book() -> Any:
        book = ex.order_book({}, 1000)
        return ex.handle_order_book_message(None, json.loads(depth_b), book)

    def ours_book() -> Any:
        return parse.parse_order_book(ccxt_book(), "BTC-USDT-PERP", "binance", 20)

    rows: list[dict[str, object]] = []
    table = Table(title="per message: ccxt's unified parse vs ccxt + our normalization (us, median)")
    for col in ("payload", "ccxt", "ccxt + ours", "ratio"):
        table.add_column(col, justify="right" if col != "payload" else "left")
    for name, base, ours in (
        ("ORDER_TRADE_UPDATE -> ExecutionReport", ccxt_order, ours_order),
        ("trade -> Trade", ccxt_trade, ours_trade),
        ("depthUpdate -> OrderBook", ccxt_book, ours_book),
    ):
        a, b = [], []
        for _ in range(5):  # interleaved: both sides see the same machine load
            a.append(bench(base))
            b.append(bench(ours))
        ma, mb = statistics.median(a), statistics.median(b)
        table.add_row(name, f"{ma:.1f}", f"{mb:.1f}", f"{mb / ma:.2f}x")
        rows.append(
            {
                "bench": "ccxt",
                "row": name + " (ccxt parse + ours)",
                "ours": mb,
                "unit": "µs",
                "peer": ma,
                "peer_name": "ccxt's own parse",
                "target": ">= 0.77x (ours adds <= 30 %)",
                "lower_is_better": True,
            }
        )
    console.print(table)
    for fields in rows:
        print("BENCH-ROW " + json.dumps(fields))


async def round_trips(console: Console, n: int = 40) -> None:
    sim = SimVenue(quiet_sim_config(), clock=SimClock())
    fake = FakeBinance("bench-key", "bench-secret", sim=sim)
    await fake.start()
    client = CcxtClient(
        CcxtConfig(
            "binance", Secret("bench-key"), Secret("bench-secret"), rest_url=fake.url, ws_url=fake.ws_url
        )
    )
    await client.start()
    ex = client._ex
    ours: list[float] = []
    raw: list[float] = []
    try:
        for i in range(n):
            order = order_pb2.Order(
                client_order_id=f"bench{i}",
                symbol="BTC-USDT-PERP",
                side=order_pb2.ORDER_SIDE_BUY,
                order_type=order_pb2.ORDER_TYPE_LIMIT,
                time_in_force=order_pb2.TIME_IN_FORCE_GTC,
                quantity="0.01",
                price="50000",
            )
            t0 = time.perf_counter()
            rep = await client.place_order(order)
            await client.cancel_order(symbol=order.symbol, order_id=rep.order_id)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            placed = await ex.create_order(
                "BTC/USDT:USDT", "limit", "buy", "0.01", "50000", {"clientOrderId": f"raw{i}"}
            )
            await ex.cancel_order(placed["id"], "BTC/USDT:USDT")
            raw.append(time.perf_counter() - t0)
    finally:
        await client.aclose()
        await fake.stop()
    a, b = statistics.median(raw), statistics.median(ours)
    table = Table(title=f"order round trips against the fake Binance (place + cancel, {n} each, loopback)")
    for col in ("path", "median ms", "round trips/s"):
        table.add_column(col, justify="right" if col != "path" else "left")
    table.add_row("ccxt create_order + cancel_order", f"{a * 1e3:.2f}", f"{1 / a:.1f}")
    table.add_row("CcxtClient place_order + cancel_order", f"{b * 1e3:.2f}", f"{1 / b:.1f}")
    console.print(table)
    console.print(
        f"ratio CcxtClient / ccxt: {b / a:.2f}x (our cancel reads the final state back: one more GET)"
    )


def main() -> None:
    console = Console()
    normalization(console)
    asyncio.run(round_trips(console))


if __name__ == "__main__":
    main()
