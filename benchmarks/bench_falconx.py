"""FalconX: quote-response parsing, and the internal cost of one execute.

ccxt (4.5.90) has no FalconX exchange, so there is no ccxt parser to race.  The peer is the plain
standard-library way to read FalconX's JSON numbers exactly: ``json.loads(..., parse_float=Decimal)``
and a dict walk into the same ``rfq_pb2.Quote`` (what a hand-written adapter without msgspec does).
Both sides start from the raw bytes of the official client's documented payloads
(cqvx/tests/falconx/fixtures) and produce the same message.

1. quote (POST /v1/quotes reply) and executed quote (POST /v1/quotes/execute reply) -> rfq_pb2.Quote.
2. One execute without a network: build the body, sign it (HMAC), parse the reply into the quote and
   the execution report.

Run: ``.venv/bin/python benchmarks/bench_falconx.py`` (one process, < 30 s).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from cqc.venues.v1 import order_pb2, rfq_pb2
from cqvx.auth.hmac import FALCONX, HmacSigner
from cqvx.num import dec_str
from cqvx.timeutil import timestamp_from_datetime
from cqvx.venues.falconx import endpoints as ep
from cqvx.venues.falconx import parse

FIX = Path(__file__).resolve().parents[1] / "cqvx" / "tests" / "falconx" / "fixtures"
NOW = datetime(2019, 1, 1, tzinfo=UTC)
_SIDES = {"buy": order_pb2.ORDER_SIDE_BUY, "sell": order_pb2.ORDER_SIDE_SELL}


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


def stdlib_quote(data: bytes) -> rfq_pb2.Quote:
    """The peer: json + Decimal + dict walk into the same message (same fields, same statuses)."""
    d = json.loads(data, parse_float=Decimal, parse_int=Decimal)
    pair = d["token_pair"]
    qty = d["quantity_requested"]
    expiry = datetime.fromisoformat(d["t_expiry"])
    filled = bool(d.get("is_filled"))
    executed = d.get("side_executed") or ""
    price = d.get("price_executed")
    if filled and price is None:
        price = d["buy_price"] if executed == "buy" else d["sell_price"]
    out = rfq_pb2.Quote(
        quote_id=d["fx_quote_id"],
        venue="falconx",
        symbol=f"{pair['base_token']}-{pair['quote_token']}",
        side=_SIDES.get(d["side_requested"], order_pb2.ORDER_SIDE_UNSPECIFIED),
        buy_price=dec_str(d.get("buy_price")),
        sell_price=dec_str(d.get("sell_price")),
        quantity=dec_str(Decimal(qty["value"])),
        quantity_asset=qty["token"],
        status=rfq_pb2.QUOTE_STATUS_EXECUTED
        if filled
        else rfq_pb2.QUOTE_STATUS_EXPIRED
        if expiry <= NOW
        else rfq_pb2.QUOTE_STATUS_OPEN,
        executed_side=_SIDES.get(executed, order_pb2.ORDER_SIDE_UNSPECIFIED),
        executed_price=dec_str(price),
        client_quote_id=d.get("client_order_id") or "",
    )
    out.created_at.CopyFrom(timestamp_from_datetime(datetime.fromisoformat(d["t_quote"])))
    out.expires_at.CopyFrom(timestamp_from_datetime(expiry))
    return out


def _ours(data: bytes) -> rfq_pb2.Quote:
    return parse.quote_of(parse.decode_quote(data), NOW)


def main() -> None:
    quote_b = (FIX / "quote.json").read_bytes()
    executed_b = (FIX / "executed_quote.json").read_bytes()
    for data in (quote_b, executed_b):
        assert parse.quote_of(parse.decode_quote(data), NOW) == stdlib_quote(data), "peers must agree"

    print("FalconX quote payload -> rfq_pb2.Quote (median us per payload, lower is better)")
    print("(ccxt 4.5.90 has no FalconX parser; the peer is json.loads(parse_float=Decimal) + dict walk)")
    print(f"{'payload':40s} {'cqvx':>9s} {'stdlib':>9s} {'stdlib/cqvx':>12s}")
    for name, data in (
        ("quote (POST /v1/quotes)", quote_b),
        ("executed quote (POST /v1/quotes/execute)", executed_b),
    ):
        a = bench(partial(_ours, data))
        b = bench(partial(stdlib_quote, data))
        print(f"{name:40s} {a:9.1f} {b:9.1f} {b / a:11.2f}x")

    signer = HmacSigner(FALCONX, "key", "ZmFsY29ueC1iZW5jaC1zZWNyZXQ=", passphrase="pass")

    def execute_internals() -> Any:
        body = ep.build_execute("fad0ac687b1e439a92a0bafd92441e48", order_pb2.ORDER_SIDE_BUY)
        signer.sign("POST", ep.QUOTES_EXECUTE, body)
        v = parse.decode_quote(executed_b)
        return parse.quote_of(v, NOW), parse.report_of(v, NOW)

    us = bench(execute_internals)
    print(f"\nexecute internals (body + HMAC + reply -> Quote + ExecutionReport): median {us:.1f} us")


if __name__ == "__main__":
    main()
