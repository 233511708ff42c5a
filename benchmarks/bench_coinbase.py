"""Coinbase Advanced Trade: payload normalization vs ccxt's coinbase parser, and place_order internals.

1. Normalizing the documented order, fill, product-book and l2_data payloads (the real samples in
   cqvx/tests/coinbase/fixtures) into cqc messages, against ccxt's coinbase parser on the same bytes
   (``json.loads`` + ``parse_order`` / ``parse_trade`` / ``parse_order_book``; for l2_data ccxt.pro's
   ``handle_order_book_helper`` into a ccxt order book).  Both sides start from raw bytes.
2. The whole internal cost of one ``place_order`` without a network: build the body, sign it (a fresh
   ES256 JWT), parse the venue's reply into an ExecutionReport.  Target: median < 100 us.

Run: ``.venv/bin/python benchmarks/bench_coinbase.py`` (one process, < 60 s).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cqc.venues.v1 import order_pb2
from cqvx.secrets import Secret
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig, parse
from cqvx.venues.coinbase import endpoints as ep

FIX = Path(__file__).resolve().parents[1] / "cqvx" / "tests" / "coinbase" / "fixtures"


def bench(fn: Callable[[], Any], *, rounds: int = 15, inner: int = 200) -> float:
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


def main() -> None:
    order_b = (FIX / "http_order.json").read_bytes()
    fills_b = (FIX / "http_fills.json").read_bytes()
    book_b = (FIX / "http_product_book.json").read_bytes()
    l2_b = (FIX / "ws_l2_data_snapshot.json").read_bytes()
    cx = ccxt.coinbase()
    cxp = ccxt.pro.coinbase()

    def ccxt_l2() -> Any:
        msg = json.loads(l2_b)
        ob = cxp.order_book()
        for ev in msg["events"]:
            cxp.handle_order_book_helper(ob, ev["updates"])
        return ob

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (
            "order (GET /orders/historical/{id})",
            lambda: parse.order_from_json(order_b),
            lambda: cx.parse_order(json.loads(order_b)["order"]),
        ),
        (
            "fills page (2 fills)",
            lambda: parse.fills_from_json(fills_b),
            lambda: [cx.parse_trade(f) for f in json.loads(fills_b)["fills"]],
        ),
        (
            "product book (5x5)",
            lambda: parse.book_from_json(book_b),
            lambda: cx.parse_order_book(
                json.loads(book_b)["pricebook"], "BTC/USD", None, "bids", "asks", "price", "size"
            ),
        ),
        ("l2_data snapshot (3x3)", lambda: parse.l2_messages(l2_b), ccxt_l2),
    ]
    print("Coinbase payload -> normalized message (median us per payload, lower is better)")
    print(f"{'payload':40s} {'cqvx':>9s} {'ccxt':>9s} {'ccxt/cqvx':>10s}")
    for name, ours, theirs in cases:
        a = bench(ours)
        b = bench(theirs)
        print(f"{name:40s} {a:9.1f} {b:9.1f} {b / a:9.2f}x")

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    client = CoinbaseClient(CoinbaseConfig().with_credentials("organizations/o/apiKeys/k", Secret(pem)))
    assert client._auth is not None
    signer = client._auth.signer
    order = order_pb2.Order(
        client_order_id="grid-BTC-USD-12-b-3",
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.01",
        price="40000",
        post_only=True,
    )
    reply = json.dumps(
        {
            "success": True,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "52cf9ab1",
            "success_response": {
                "order_id": "52cf9ab1",
                "product_id": "BTC-USD",
                "side": "BUY",
                "client_order_id": "grid-BTC-USD-12-b-3",
            },
        }
    ).encode()

    def place_internals() -> Any:
        body, product_id, coid = client.build_order_request(order)
        signer.sign("POST", ep.ORDERS, body)
        return parse.create_order_from_json(reply, order, order.symbol, product_id, coid)

    build = bench(lambda: client.build_order_request(order), inner=500)
    sign = bench(lambda: signer.sign("POST", ep.ORDERS, b"{}"), inner=200)
    reply_parse = bench(
        lambda: parse.create_order_from_json(reply, order, "BTC-USD", "BTC-USD", order.client_order_id),
        inner=500,
    )
    total = bench(place_internals, inner=200)
    print()
    print("place_order internals, no network (median us)")
    print(f"  build body {build:7.1f}   sign (ES256 JWT) {sign:7.1f}   parse reply {reply_parse:7.1f}")
    print(f"  total      {total:7.1f}   target < 100 us: {'OK' if total < 100 else 'MISSED'}")


if __name__ == "__main__":
    main()
