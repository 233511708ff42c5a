"""REST paths, route labels and request builders of the FalconX RFQ API.

Paths follow the official client (PyPI ``falconx``, ``falconx/client.py``) and venues.md §3.2 with the
§11 correction: the v1 quote, execute and order paths are what the official client calls by default,
so they are used here (``/v3/quotes`` exists since 2024-08-29 but no official client calls it).
Builders turn cqc messages into the exact bytes that are signed and sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import dec, dec_str
from cqvx.symbols import parse_symbol

__all__ = [
    "BALANCES",
    "ORDER",
    "PAIRS",
    "QUOTES",
    "QUOTES_EXECUTE",
    "R_QUOTE",
    "build_execute",
    "build_order",
    "build_quote_request",
    "history_params",
    "quote_path",
    "side_name",
    "split_symbol",
]

VENUE = "falconx"

PAIRS = "/v1/pairs"
QUOTES = "/v1/quotes"  # POST: request a quote; GET ?t_start&t_end&platform: executed-quote history
QUOTES_EXECUTE = "/v1/quotes/execute"
ORDER = "/v1/order"
BALANCES = "/v1/balances"

# Metric route label for the one templated path.
R_QUOTE = "/v1/quotes/{fx_quote_id}"

_SIDES: dict[int, str] = {order_pb2.ORDER_SIDE_BUY: "buy", order_pb2.ORDER_SIDE_SELL: "sell"}


def quote_path(fx_quote_id: str) -> str:
    # Quote ids are 32 hex characters; anything that could change the path is refused, not escaped.
    if not fx_quote_id or len(fx_quote_id) > 128 or not fx_quote_id.isascii() or not fx_quote_id.isalnum():
        raise InvalidRequest(f"invalid quote id {fx_quote_id[:64]!r}", venue=VENUE)
    return f"{QUOTES}/{fx_quote_id}"


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTC-USD"`` -> ``("BTC", "USD")``; FalconX trades spot pairs only."""
    canon = parse_symbol(symbol)
    if canon.expiry or str(canon) != symbol:
        raise InvalidRequest(f"FalconX trades spot pairs only, not {symbol!r}", venue=VENUE)
    return canon.base, canon.quote


def side_name(side: int | order_pb2.OrderSide.ValueType, *, two_way_ok: bool = False) -> str:
    name = _SIDES.get(side)
    if name is not None:
        return name
    if two_way_ok and side == order_pb2.ORDER_SIDE_UNSPECIFIED:
        return "two_way"
    raise InvalidRequest("side must be BUY or SELL", venue=VENUE)


def _positive(value: str, what: str) -> Decimal:
    try:
        d = dec(value, what, VENUE)
    except ParseError:
        raise InvalidRequest(f"{what} is not a decimal number: {value[:40]!r}", venue=VENUE) from None
    if d <= 0:
        raise InvalidRequest(f"{what} must be positive", venue=VENUE)
    return d


def _encode(body: dict[str, Any]) -> bytes:
    return msgspec.json.encode(body)


def build_quote_request(symbol: str, quantity: str, quantity_asset: str, side: int, client_id: str) -> bytes:
    """POST /v1/quotes body; the quantity may be in the base or the quote token (official README,
    "RFQ in quote token terms")."""
    base, quote = split_symbol(symbol)
    token = quantity_asset or base
    if token not in (base, quote):
        raise InvalidRequest(f"quantity_asset {token!r} is neither {base} nor {quote}", venue=VENUE)
    body: dict[str, Any] = {
        "token_pair": {"base_token": base, "quote_token": quote},
        "quantity": {"token": token, "value": dec_str(_positive(quantity, "quantity"))},
        "side": side_name(side, two_way_ok=True),
    }
    if client_id:
        body["client_order_id"] = client_id
    return _encode(body)


def build_execute(fx_quote_id: str, side: int) -> bytes:
    """POST /v1/quotes/execute body: the side must be buy or sell even for a two-way quote."""
    quote_path(fx_quote_id)  # same id rules
    return _encode({"fx_quote_id": fx_quote_id, "side": side_name(side)})


def build_order(order: order_pb2.Order, client_order_id: str) -> bytes:
    """POST /v1/order body: a market order, or a limit fill-or-kill (the only limit FalconX takes)."""
    base, quote = split_symbol(order.symbol)
    if order.quantity and order.quote_quantity:
        raise InvalidRequest("give quantity or quote_quantity, not both", venue=VENUE)
    if order.quantity:
        quantity = {"token": base, "value": dec_str(_positive(order.quantity, "quantity"))}
    elif order.quote_quantity:
        quantity = {"token": quote, "value": dec_str(_positive(order.quote_quantity, "quote_quantity"))}
    else:
        raise InvalidRequest("quantity: required (or quote_quantity)", venue=VENUE)
    if order.post_only or order.reduce_only or order.stop_price:
        raise UnsupportedOperation("FalconX takes market and limit-FOK orders only", venue=VENUE)
    body: dict[str, Any] = {
        "token_pair": {"base_token": base, "quote_token": quote},
        "quantity": quantity,
        "side": side_name(order.side),
        "client_order_id": client_order_id,
    }
    if order.order_type == order_pb2.ORDER_TYPE_MARKET:
        if order.price:
            raise InvalidRequest("a market order takes no price", venue=VENUE)
        body["order_type"] = "market"
    elif order.order_type == order_pb2.ORDER_TYPE_LIMIT:
        if order.time_in_force != order_pb2.TIME_IN_FORCE_FOK:
            raise UnsupportedOperation(
                "FalconX limit orders are fill-or-kill only (time_in_force FOK)", venue=VENUE
            )
        body["order_type"] = "limit"
        body["time_in_force"] = "fok"
        body["limit_price"] = dec_str(_positive(order.price, "price"))
    else:
        raise UnsupportedOperation("FalconX takes market and limit-FOK orders only", venue=VENUE)
    return _encode(body)


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def history_params(start: datetime, end: datetime, platform: str) -> list[tuple[str, str]]:
    """Query of GET /v1/quotes (executed quotes): ISO 8601 bounds and the platform."""
    params = [("t_start", _iso(start)), ("t_end", _iso(end))]
    if platform:
        params.append(("platform", platform))
    return params
