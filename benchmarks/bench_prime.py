"""Coinbase Prime: payload normalization per message, and the internal cost of one place_order.

ccxt (4.5.90) has no Coinbase Prime exchange, so there is no ccxt parser to race.  The peer is the
plain standard-library way to read Prime's decimal strings exactly: ``json.loads`` + ``Decimal`` + a
dict walk into the same ``order_pb2.Order`` (what a hand-written adapter without msgspec does).
Both sides start from the raw bytes of the fixtures (cqvx/tests/prime/fixtures) and must agree.

1. order (GET .../orders/{id}), fills page, balances -> cqc messages, per message.
2. place_order without a network: build the body, encode once, sign it (HMAC), parse the reply.

Run: ``.venv/bin/python benchmarks/bench_prime.py`` (one process, < 30 s).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from cqc.venues.v1 import order_pb2
from cqvx.auth.hmac import COINBASE_PRIME, HmacSigner
from cqvx.num import dec_str
from cqvx.timeutil import timestamp_from_datetime
from cqvx.venues.prime import endpoints as ep
from cqvx.venues.prime import models as m
from cqvx.venues.prime import parse

FIX = Path(__file__).resolve().parents[1] / "cqvx" / "tests" / "prime" / "fixtures"
_SIDES = {"BUY": order_pb2.ORDER_SIDE_BUY, "SELL": order_pb2.ORDER_SIDE_SELL}
_STATUS = {"OPEN": order_pb2.ORDER_STATUS_OPEN, "FILLED": order_pb2.ORDER_STATUS_FILLED}


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


def stdlib_order(data: bytes) -> order_pb2.Order:
    """The peer: json + Decimal + dict walk into the same message as ``parse.order_of``."""
    o = json.loads(data)["order"]
    filled = Decimal(o["filled_quantity"])
    qty = Decimal(o["base_quantity"])
    status = _STATUS[o["status"]]
    if status == order_pb2.ORDER_STATUS_OPEN and filled > 0:
        status = order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    out = order_pb2.Order(
        order_id=o["id"],
        client_order_id=o["client_order_id"],
        venue="prime",
        symbol=o["product_id"],
        venue_symbol=o["product_id"],
        side=_SIDES[o["side"]],
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_GTC,
        status=status,
        filled_quantity=dec_str(filled),
        post_only=bool(o.get("post_only")),
        account_id=o["portfolio_id"],
        fee_asset=o["product_id"].split("-")[1],
        quantity=dec_str(qty),
        remaining_quantity=dec_str(qty - filled),
        price=dec_str(Decimal(o["limit_price"])),
        average_fill_price=dec_str(Decimal(o["average_filled_price"])),
        total_fees=dec_str(Decimal(o["commission"]) + Decimal(o["exchange_fee"])),
    )
    created = datetime.fromisoformat(o["created_at"].replace("Z", "+00:00"))
    out.created_at.CopyFrom(timestamp_from_datetime(created))
    return out


def _ours(data: bytes) -> order_pb2.Order:
    return parse.order_of(parse.decode(data, m.GetOrderResponse).order)


def main() -> None:
    order_b = (FIX / "order.json").read_bytes()
    fills_b = (FIX / "fills.json").read_bytes()
    balances_b = (FIX / "balances.json").read_bytes()
    assert _ours(order_b) == stdlib_order(order_b), "peers must agree"

    print("Prime payload -> cqc message (median us per message, lower is better)")
    print("(ccxt 4.5.90 has no Coinbase Prime parser; the peer is json.loads + Decimal + dict walk)")
    a = bench(partial(_ours, order_b))
    b = bench(partial(stdlib_order, order_b))
    print(f"{'order (GET .../orders/{id})':40s} cqvx {a:7.1f}   stdlib {b:7.1f}   stdlib/cqvx {b / a:5.2f}x")
    fills = bench(lambda: [parse.fill_report(f) for f in parse.decode(fills_b, m.FillsPage).fills])
    print(f"{'fill report (per fill)':40s} cqvx {fills:7.1f}")
    bal = bench(lambda: parse.balances(balances_b, "TRADING_BALANCES"))
    print(f"{'balances (2 assets)':40s} cqvx {bal / 2:7.1f} per balance")

    signer = HmacSigner(COINBASE_PRIME, "key", "signing-key", passphrase="pass")
    order = order_pb2.Order(
        client_order_id="bench-1",
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.5",
        price="50000.25",
    )
    reply = b'{"order_id":"82a4b8b0-8c3b-4a1f-8e7e-0c2d7b0a9f11"}'
    path = "/v1/portfolios/3e1fe27e-7c1b-4a2f-9d6c-0f5e2a7b9c10/order"

    def place_internals() -> Any:
        body = ep.encode(ep.build_order(order, order.client_order_id, "3e1fe27e-7c1b-4a2f-9d6c-0f5e2a7b9c10"))
        signer.sign("POST", path, body)
        return parse.decode(reply, m.CreateOrderResponse).order_id

    us = bench(place_internals)
    print(f"\nplace_order internals (body + encode + HMAC + reply): median {us:.1f} us")


if __name__ == "__main__":
    main()
