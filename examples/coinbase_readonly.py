"""First run with Coinbase Advanced Trade keys: balances, the BTC-USD book, a few live book updates.

Read-only: it never places or cancels anything.

    export COINBASE_API_KEY_NAME="organizations/{org_id}/apiKeys/{key_id}"
    export COINBASE_API_KEY_SECRET="$(cat cdp_private_key.pem)"     # or COINBASE_API_KEY_SECRET_FILE=path
    # or: export COINBASE_KEY_FILE=cdp_api_key.json   (the JSON file the CDP portal downloads)
    .venv/bin/python examples/coinbase_readonly.py [SYMBOL] [UPDATES]

A missing variable is reported by name; the key itself is never printed.
"""

from __future__ import annotations

import asyncio
import sys

from cqvx.errors import VenueError
from cqvx.secrets import MissingSecret
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig


async def main(symbol: str, updates: int) -> int:
    try:
        config = CoinbaseConfig.from_env()
    except MissingSecret as exc:
        print(f"missing credentials: {exc.message}", file=sys.stderr)
        return 2
    async with CoinbaseClient(config) as cb:
        try:
            health = await cb.health()
            print(f"coinbase reachable={health.reachable} latency={health.latency_ms:.0f} ms")
            balances = [b for b in await cb.get_balances() if b.total not in ("", "0")]
            print(f"\n{len(balances)} non-zero balances:")
            for b in balances:
                print(f"  {b.asset:8s} total={b.total:>20s} available={b.available:>20s} locked={b.locked}")
            book = await cb.get_order_book(symbol, 5)
            print(f"\n{symbol} book (REST, top 5):")
            for bid, ask in zip(book.bids, book.asks, strict=False):
                print(f"  {bid.quantity:>14s} @ {bid.price:<12s} | {ask.price:>12s} x {ask.quantity}")
            print(f"\n{updates} live book updates (WebSocket level2):")
            stream = cb.subscribe_order_book(symbol, 1)
            try:
                seen = 0
                async with asyncio.timeout(30):
                    async for top in stream:
                        best_bid = top.bids[0].price if top.bids else "-"
                        best_ask = top.asks[0].price if top.asks else "-"
                        print(f"  seq={top.sequence} bid={best_bid} ask={best_ask}")
                        seen += 1
                        if seen >= updates:
                            break
            finally:
                await stream.aclose()
        except VenueError as exc:
            print(f"coinbase error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sym = sys.argv[1] if len(sys.argv) > 1 else "BTC-USD"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    sys.exit(asyncio.run(main(sym, n)))
