"""A wire-level fake of Coinbase Advanced Trade: REST under /api/v3/brokerage and both WebSockets.

Built from the documented shapes (REST reference, websocket-channels page, venues.md §1) and the real
samples in ``tests/coinbase/fixtures``; it is small on purpose: one in-memory book per product made of
external liquidity, balances with holds, orders that rest, cross (filling at the best opposite price) or
get rejected exactly as Coinbase answers (HTTP 200, ``success: false``, ``error_response``).

Authentication is checked on every private request: a CDP JWT (ES256 or EdDSA) verified with the
registered PUBLIC key, its ``kid``/``sub``, ``iss="cdp"``, ``nbf``/``exp`` and the ``uri`` claim
(``METHOD host/path``, no query); or legacy HMAC headers.  WebSocket subscribes are checked the same
way (JWT without ``uri``); ``user`` needs one.  A connection that sends no subscribe within
``subscribe_deadline`` seconds is closed, as the venue does.

Test controls: :meth:`push_l2`, :meth:`push_trade`, :meth:`push_ticker`, :meth:`push_candle`,
:meth:`fill` (a maker fill of a resting order), :meth:`inject_gap` (skip sequence numbers),
:meth:`drop_ws` (inherited) / :meth:`drop_kind`, ``refused_ws`` (an endpoint refusing connections),
``cancel_failures`` (scripted batch_cancel failure reasons), ``cfm_positions`` and
``cfm_balance_summary`` (the futures account), ``intx_portfolio_uuid``, ``intx_positions``,
``intx_portfolio`` and ``intx_balances`` (the INTX perpetuals portfolio; products with
``product_venue="INTX"``, ``quote_currency="USDC"``), plus the base class's HTTP faults (5xx, 429, resets,
latency) and its counters (``rate_limits_served``).

    async with FakeCoinbase(keys={"organizations/o/apiKeys/k": public_key}) as fake:
        client = CoinbaseClient(CoinbaseConfig(rest_url=fake.url, ws_market_url=fake.ws_market_url, ...))

Layout: ``server`` (construction, routes, auth, order routes), ``_reads`` (accounts, futures, market
data routes), ``_ws`` (both WebSockets and their test controls), ``_state`` (products, connections).
"""

from __future__ import annotations

from cqvx.testing.fake_coinbase._state import FakeProduct
from cqvx.testing.fake_coinbase.server import FakeCoinbase

__all__ = ["FakeCoinbase", "FakeProduct"]
