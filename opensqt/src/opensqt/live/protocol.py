"""The live page's WebSocket protocol (reference §5.1, byte-compatible with the original ``live.html``).

Rules (the original page depends on every one of them):

* envelope ``{"type": str, "data": object | array}``, server -> client only;
* numbers that are prices, quantities or money are **decimal strings** (``"3401.8"``, never a float, never
  ``value:"..."``); ids and times are **integers**; every time is **Unix seconds**;
* ``orders``: ``side`` ``BUY``/``SELL`` and ``status`` ``NEW``/``PARTIALLY_FILLED``/``FILLED``/``CANCELED``/
  ``EXPIRED``/``REJECTED`` in upper case; ``data`` is one object (an update) or an array (the snapshot);
* ``trade_event``: ``side`` ``buy``/``sell`` in lower case;
* ``history``: the last 100 one-minute candles, sent to each client on connect;
* additions of the rewrite (§5.3) kept: ``position`` carries ``realizedPnL`` (the engine's, not a counter),
  ``risk_status`` ``{symbol, type, severity, message, timestamp}``, and the grid's ``slots``;
* ``arb`` (funding arbitrage, docs/arbitrage.md): one object per pair, its position and funding PnL.

Builders take Decimals and ints and return plain JSON-ready dicts; they never see a float.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from cqvx.num import dec_str

__all__ = [
    "HISTORY_LIMIT",
    "ORDER_STATUSES",
    "TYPES",
    "Candle",
    "account",
    "arb",
    "candle",
    "envelope",
    "order",
    "order_id",
    "position",
    "risk_status",
    "slots",
    "trade_event",
]

HISTORY_LIMIT = 100
TYPES = ("history", "kline", "account", "orders", "trade_event", "position", "risk_status", "slots", "arb")
ORDER_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "REJECTED"})
_SIDES = frozenset({"BUY", "SELL"})
_JS_SAFE = (1 << 53) - 1  # JSON integers the page's JavaScript reads exactly

Candle = dict[str, Any]


def envelope(kind: str, data: Any) -> dict[str, Any]:
    if kind not in TYPES:
        raise ValueError(f"unknown live message type {kind!r}")
    return {"type": kind, "data": data}


def order_id(venue_order_id: str, client_order_id: str) -> int:
    """The integer ``id`` of an order: the venue's id when it is a (JS-safe) integer, else a stable 53-bit
    hash of the client order id (the page keys price lines by it; the same order always maps the same)."""
    if venue_order_id.isdigit() and 0 < int(venue_order_id) <= _JS_SAFE:
        return int(venue_order_id)
    digest = hashlib.blake2b((client_order_id or venue_order_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _JS_SAFE


def candle(  # noqa: PLR0917 - the OHLCV order is the protocol's
    time_s: int, o: Decimal, h: Decimal, low: Decimal, c: Decimal, volume: Decimal
) -> Candle:
    return {
        "time": int(time_s),
        "open": dec_str(o),
        "high": dec_str(h),
        "low": dec_str(low),
        "close": dec_str(c),
        "volume": dec_str(volume),
    }


def order(
    *, oid: int, price: Decimal, side: str, status: str, symbol: str, quantity: Decimal, filled: Decimal
) -> dict[str, Any]:
    side, status = side.upper(), status.upper()
    if side not in _SIDES or status not in ORDER_STATUSES:
        raise ValueError(f"order side/status {side}/{status}")
    return {
        "id": int(oid),
        "price": dec_str(price),
        "side": side,
        "status": status,
        "type": "LIMIT",
        "symbol": symbol,
        "quantity": dec_str(quantity),
        "executedQty": dec_str(filled),
    }


def trade_event(*, side: str, price: Decimal, amount: Decimal, symbol: str, time_s: int) -> dict[str, Any]:
    side = side.lower()
    if side not in ("buy", "sell"):
        raise ValueError(f"trade side {side}")
    return {
        "side": side,
        "price": dec_str(price),
        "amount": dec_str(amount),
        "symbol": symbol,
        "time": int(time_s),
    }


def account(*, asset: str, free: Decimal, balance: Decimal, symbol: str) -> dict[str, Any]:
    return {
        "asset": asset,
        "free": dec_str(free),
        "balance": dec_str(balance),
        "marginBalance": dec_str(balance),
        "symbol": symbol,
    }


def position(
    *,
    symbol: str,
    amount: Decimal,
    entry_price: Decimal,
    unrealized: Decimal,
    realized: Decimal,
    price: Decimal | None,
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "amount": dec_str(amount),
        "entryPrice": dec_str(entry_price),
        "unrealizedPnL": dec_str(unrealized),
        "realizedPnL": dec_str(realized),
        "currentPrice": dec_str(price) if price is not None else "0",
    }


def risk_status(*, symbol: str, kind: str, severity: str, message: str, time_s: int) -> dict[str, Any]:
    """``kind`` ``ok`` clears the page's banner; anything else shows it."""
    return {
        "symbol": symbol,
        "type": kind,
        "severity": severity,
        "message": message,
        "timestamp": int(time_s),
    }


def slots(symbol: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``rows``: ``{level:int, price:Decimal, state:str, position:Decimal, side:str}`` per slot."""
    out = []
    for r in rows:
        out.append(
            {
                "level": int(r["level"]),
                "price": dec_str(r["price"]),
                "state": str(r["state"]),
                "position": dec_str(r["position"]),
                "side": str(r.get("side", "")).upper(),
            }
        )
    counts: dict[str, int] = {}
    for r in rows:
        state = str(r["state"])
        counts[state] = counts.get(state, 0) + 1
    return {"symbol": symbol, "counts": counts, "slots": out}


def arb(
    *,
    symbol: str,
    perp: str,
    state: str,
    direction: str,
    spot_qty: Decimal,
    perp_qty: Decimal,
    funding_pnl: Decimal,
    trading_pnl: Decimal,
    apr: Decimal | None,
    basis: Decimal | None,
    next_funding_s: int | None,
    time_s: int,
) -> dict[str, Any]:
    """One pair of the funding arbitrage: ``state`` ``flat``/``entering``/``open``/``exiting``/``halted``."""
    return {
        "symbol": symbol,
        "perp": perp,
        "state": state,
        "direction": direction,
        "spotQty": dec_str(spot_qty),
        "perpQty": dec_str(perp_qty),
        "fundingPnL": dec_str(funding_pnl),
        "tradingPnL": dec_str(trading_pnl),
        "apr": dec_str(apr) if apr is not None else "",
        "basis": dec_str(basis) if basis is not None else "",
        "nextFundingTime": int(next_funding_s or 0),
        "time": int(time_s),
    }
