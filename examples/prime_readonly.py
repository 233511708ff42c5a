"""First run with Coinbase Prime keys: the portfolio, balances, products, hourly candles and open orders.

Read-only: it never places, previews or cancels anything.

    export PRIME_ACCESS_KEY=...  PRIME_PASSPHRASE=...  PRIME_SIGNING_KEY=...  PRIME_PORTFOLIO_ID=...
    .venv/bin/python examples/prime_readonly.py [BALANCE_TYPE]

A missing variable is reported by name; the keys themselves are never printed.
"""

from __future__ import annotations

import asyncio
import os
import sys

from cqc.markets.v1 import candle_pb2
from cqvx.errors import VenueError
from cqvx.secrets import Secret
from cqvx.venues.prime import PrimeClient, PrimeConfig

_VARS = ("PRIME_ACCESS_KEY", "PRIME_PASSPHRASE", "PRIME_SIGNING_KEY", "PRIME_PORTFOLIO_ID")


def config_from_env() -> PrimeConfig | None:
    missing = [name for name in _VARS if not os.environ.get(name)]
    if missing:
        print(f"missing credentials: set {', '.join(missing)}", file=sys.stderr)
        return None
    return PrimeConfig().with_credentials(
        os.environ["PRIME_ACCESS_KEY"],
        Secret(os.environ["PRIME_PASSPHRASE"]),
        Secret(os.environ["PRIME_SIGNING_KEY"]),
        os.environ["PRIME_PORTFOLIO_ID"],
        os.environ.get("PRIME_SVC_ACCOUNT_ID", ""),
    )


async def main(balance_type: str) -> int:
    config = config_from_env()
    if config is None:
        return 2
    async with PrimeClient(config) as prime:
        try:
            health = await prime.health()
            print(f"prime reachable={health.reachable} latency={health.latency_ms:.0f} ms")
            portfolio = await prime.get_portfolio()
            print(f"portfolio {portfolio.name!r} ({portfolio.id})")
            balances = [b for b in await prime.get_balances_of_type(balance_type) if b.total not in ("", "0")]
            print(f"\n{len(balances)} non-zero {balance_type}:")
            for b in balances:
                print(f"  {b.asset:8s} total={b.total:>20s} available={b.available:>20s} holds={b.locked}")
            products = await prime.get_instruments()
            print(f"\n{len(products)} products, e.g.:")
            for inst in products[:5]:
                print(f"  {inst.symbol:12s} tick={inst.tick_size:<12s} lot={inst.lot_size}")
            if products:
                await _candles(prime, products[0].symbol)
            orders = await prime.get_orders()
            print(f"\n{len(orders)} open orders")
            for o in orders[:10]:
                price = o.price or "market"
                print(f"  {o.symbol:10s} {o.order_id} {o.quantity}@{price} filled={o.filled_quantity}")
        except VenueError as exc:
            print(f"prime error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


async def _candles(prime: PrimeClient, symbol: str) -> None:
    # The candles endpoint is documented as beta (enabled per account): a refusal is shown, not fatal.
    try:
        candles = await prime.get_candles(symbol, candle_pb2.CANDLE_INTERVAL_1HOUR, limit=3)
    except VenueError as exc:
        print(f"\ncandles of {symbol}: not available ({type(exc).__name__}: {exc})")
        return
    print(f"\nlast {len(candles)} hourly candles of {symbol}:")
    for c in candles:
        print(f"  {c.open_time.ToJsonString()} o={c.open} h={c.high} l={c.low} c={c.close} v={c.volume}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "TRADING_BALANCES")))
