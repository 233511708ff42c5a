"""Advanced Trade payloads -> cqc messages.

Every public function takes the raw bytes (or a decoded model) and returns cqc messages; anything that
does not have the documented shape raises :class:`~cqvx.errors.ParseError` and nothing else.  Decimal
fields are validated and printed canonically; timestamps (RFC 3339 with up to nanoseconds, or Unix
seconds for candles) go straight into ``google.protobuf.Timestamp`` without a datetime detour.

Semantics worth knowing (sources in venues.md §1.4-§1.6 and the channel docs):

* REST order ``status`` ``OPEN`` with a filled part is PARTIALLY_FILLED here; ``pending_cancel`` and
  ``CANCEL_QUEUED`` are PENDING_CANCEL; ``QUEUED``/``PENDING`` are PENDING_NEW.
* ``level2`` messages arrive on channel ``l2_data``; sides are ``bid``/``offer``; ``new_quantity`` is
  the absolute size (``0`` removes the level).
* ``market_trades`` ``side`` is the MAKER side (websocket-channels page), so the aggressor is the
  opposite; REST ``/products/{id}/ticker`` trades use the same convention.
* The ``user`` channel reports cumulative order state; fills are derived by the stream from deltas.

Layout: ``_common`` (decoding, times, decimal text), ``orders`` (orders, fills), ``account``
(balances, CFM futures positions), ``intx`` (INTX perpetuals portfolio: positions, balances,
summary), ``market`` (products, books, candles, trades), ``ws`` (channel events).
Every public name is re-exported here: import from ``cqvx.venues.coinbase.parse``.
"""

from __future__ import annotations

from cqvx.venues.coinbase.parse._common import QuoteOf, ToCanonical, dec_text, decode, timestamp
from cqvx.venues.coinbase.parse.account import (
    FuturesBalanceSummary,
    accounts_from_json,
    balance_from_account,
    futures_balance_from_json,
    position_from_fcm,
    position_from_json,
    positions_from_json,
)
from cqvx.venues.coinbase.parse.intx import (
    PerpsPortfolioSummary,
    intx_balances_from_json,
    intx_portfolio_from_json,
    intx_position,
    intx_position_from_json,
    intx_positions_from_json,
)
from cqvx.venues.coinbase.parse.market import (
    best_bid_ask_from_json,
    book_from_json,
    candle_from_model,
    candles_from_json,
    canonical_for_product,
    instrument_from_product,
    market_trades_from_json,
    products_from_json,
    trade_from_model,
)
from cqvx.venues.coinbase.parse.orders import (
    cancel_results_from_json,
    create_order_from_json,
    fill_report,
    fills_from_json,
    fills_page,
    order_from_json,
    order_from_model,
    orders_page,
    orders_page_from_json,
)
from cqvx.venues.coinbase.parse.ws import (
    WS_CANDLE_INTERVAL,
    WS_CANDLE_WIDTH_S,
    envelope_from_json,
    l2_events,
    l2_level,
    l2_levels,
    l2_messages,
    ws_candles,
    ws_heartbeat_counter,
    ws_order_state,
    ws_prices,
    ws_trades,
    ws_user_events,
)

__all__ = [
    "WS_CANDLE_INTERVAL",
    "WS_CANDLE_WIDTH_S",
    "FuturesBalanceSummary",
    "PerpsPortfolioSummary",
    "QuoteOf",
    "ToCanonical",
    "accounts_from_json",
    "balance_from_account",
    "best_bid_ask_from_json",
    "book_from_json",
    "cancel_results_from_json",
    "candle_from_model",
    "candles_from_json",
    "canonical_for_product",
    "create_order_from_json",
    "dec_text",
    "decode",
    "envelope_from_json",
    "fill_report",
    "fills_from_json",
    "fills_page",
    "futures_balance_from_json",
    "instrument_from_product",
    "intx_balances_from_json",
    "intx_portfolio_from_json",
    "intx_position",
    "intx_position_from_json",
    "intx_positions_from_json",
    "l2_events",
    "l2_level",
    "l2_levels",
    "l2_messages",
    "market_trades_from_json",
    "order_from_json",
    "order_from_model",
    "orders_page",
    "orders_page_from_json",
    "position_from_fcm",
    "position_from_json",
    "positions_from_json",
    "products_from_json",
    "timestamp",
    "trade_from_model",
    "ws_candles",
    "ws_heartbeat_counter",
    "ws_order_state",
    "ws_prices",
    "ws_trades",
    "ws_user_events",
]
