"""REST paths, route labels and request builders of the Coinbase Prime API (v1).

Paths and bodies follow the official SDK (``prime_sdk/services/*/service.py``, ``CreateOrderRequest``)
and https://docs.cdp.coinbase.com/prime/rest-api (venues.md §2.3, §11 corrections).  Every trading path
is scoped to the key's portfolio: ``/v1/portfolios/{portfolio_id}/...``.  The ``/v1`` prefix is part of
the signed path; the query string is not (venues.md §2.2).

Builders turn cqc messages into the exact bytes that are signed and sent (decimals as strings, times
RFC 3339 UTC).  Order type mapping (``CreateOrderRequest.type``):

* MARKET -> ``MARKET``; LIMIT -> ``LIMIT`` with ``time_in_force`` GTC / GTD (``expiry_time`` =
  ``expires_at``) / IOC / FOK and ``post_only`` (LIMIT GTC/GTD only, as documented);
  STOP_LIMIT -> ``STOP_LIMIT`` (``stop_price`` + ``limit_price``, GTC or GTD).
* ``venue_extras["order_type"] = "BLOCK"`` on a MARKET or LIMIT order sends a ``BLOCK`` order.
* TWAP / VWAP come from :func:`build_algo` (``start_time``, ``expiry_time``, ``historical_pov``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from cqc.markets.v1 import candle_pb2
from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import dec, dec_str
from cqvx.timeutil import to_datetime
from cqvx.types import AlgoParams

__all__ = [
    "ALGO_STRATEGIES",
    "GRANULARITY",
    "PORTFOLIOS",
    "VENUE",
    "build_accept",
    "build_algo",
    "build_order",
    "build_quote",
    "check_id",
    "history_params",
    "p",
    "side_name",
]

VENUE = "prime"

PORTFOLIOS = "/v1/portfolios"

# Metric route labels (templates, never raw paths).
R_PORTFOLIO = "/v1/portfolios/{portfolio_id}"
R_ORDER_CREATE = R_PORTFOLIO + "/order"
R_PREVIEW = R_PORTFOLIO + "/order_preview"
R_ORDER = R_PORTFOLIO + "/orders/{order_id}"
R_CANCEL = R_ORDER + "/cancel"
R_ORDER_FILLS = R_ORDER + "/fills"
R_OPEN_ORDERS = R_PORTFOLIO + "/open_orders"
R_ORDERS = R_PORTFOLIO + "/orders"
R_FILLS = R_PORTFOLIO + "/fills"
R_BALANCES = R_PORTFOLIO + "/balances"
R_PRODUCTS = R_PORTFOLIO + "/products"
R_RFQ = R_PORTFOLIO + "/rfq"
R_ACCEPT = R_PORTFOLIO + "/accept_quote"
R_CANDLES = R_PORTFOLIO + "/candles"

ALGO_STRATEGIES = frozenset({"TWAP", "VWAP"})

# cqc CandleInterval -> Prime ``granularity``, spelled exactly as the Get Public Product Candles (Beta)
# page lists them (plural and singular forms mixed, as documented):
# https://docs.cdp.coinbase.com/api-reference/prime-api/rest-api/products/get-public-product-candles-beta
GRANULARITY: dict[int, str] = {
    candle_pb2.CANDLE_INTERVAL_1MIN: "ONE_MINUTE",
    candle_pb2.CANDLE_INTERVAL_5MIN: "FIVE_MINUTES",
    candle_pb2.CANDLE_INTERVAL_15MIN: "FIFTEEN_MINUTES",
    candle_pb2.CANDLE_INTERVAL_30MIN: "THIRTY_MINUTE",
    candle_pb2.CANDLE_INTERVAL_1HOUR: "ONE_HOUR",
    candle_pb2.CANDLE_INTERVAL_2HOUR: "TWO_HOUR",
    candle_pb2.CANDLE_INTERVAL_4HOUR: "FOUR_HOUR",
    candle_pb2.CANDLE_INTERVAL_6HOUR: "SIX_HOURS",
    candle_pb2.CANDLE_INTERVAL_1DAY: "ONE_DAY",
}

_SIDES: dict[int, str] = {order_pb2.ORDER_SIDE_BUY: "BUY", order_pb2.ORDER_SIDE_SELL: "SELL"}
_TIF: dict[int, str] = {
    order_pb2.TIME_IN_FORCE_GTC: "GOOD_UNTIL_CANCELLED",
    order_pb2.TIME_IN_FORCE_GTD: "GOOD_UNTIL_DATE_TIME",
    order_pb2.TIME_IN_FORCE_IOC: "IMMEDIATE_OR_CANCEL",
    order_pb2.TIME_IN_FORCE_FOK: "FILL_OR_KILL",
}


def check_id(value: str, what: str) -> str:
    """Ids go into paths: anything that could change the path is refused, not escaped."""
    if not value or len(value) > 128 or not value.isascii() or not value.replace("-", "").isalnum():
        raise InvalidRequest(f"invalid {what} {value[:64]!r}", venue=VENUE)
    return value


def p(portfolio_id: str, tail: str = "") -> str:
    """``/v1/portfolios/{portfolio_id}`` + ``tail``."""
    return f"{PORTFOLIOS}/{check_id(portfolio_id, 'portfolio id')}{tail}"


def side_name(side: int) -> str:
    name = _SIDES.get(side)
    if name is None:
        raise InvalidRequest("side must be BUY or SELL", venue=VENUE)
    return name


def rfc3339(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    utc = aware.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive(value: str, what: str) -> Decimal:
    try:
        d = dec(value, what, VENUE)
    except ParseError:
        raise InvalidRequest(f"{what} is not a decimal number: {value[:40]!r}", venue=VENUE) from None
    if d <= 0:
        raise InvalidRequest(f"{what} must be positive", venue=VENUE)
    return d


def _quantity(order: order_pb2.Order, body: dict[str, Any]) -> None:
    if order.quantity and order.quote_quantity:
        raise InvalidRequest("give quantity or quote_quantity, not both", venue=VENUE)
    if order.quantity:
        body["base_quantity"] = dec_str(_positive(order.quantity, "quantity"))
    elif order.quote_quantity:
        body["quote_value"] = dec_str(_positive(order.quote_quantity, "quote_quantity"))
    else:
        raise InvalidRequest("quantity: required (or quote_quantity)", venue=VENUE)


def _base(order: order_pb2.Order, client_order_id: str, kind: str) -> dict[str, Any]:
    if not order.symbol:
        raise InvalidRequest("symbol: required", venue=VENUE)
    if order.reduce_only:
        raise UnsupportedOperation("Prime spot orders have no reduce_only", venue=VENUE)
    body: dict[str, Any] = {
        "portfolio_id": "",  # filled by the client (the key's portfolio)
        "product_id": order.symbol,
        "side": side_name(order.side),
        "client_order_id": client_order_id,
        "type": kind,
    }
    _quantity(order, body)
    return body


def _expiry(order: order_pb2.Order) -> str:
    if not order.HasField("expires_at"):
        raise InvalidRequest("expires_at: required for a good-till-date order", venue=VENUE)
    return rfc3339(to_datetime(order.expires_at))


def build_order(order: order_pb2.Order, client_order_id: str, portfolio_id: str) -> dict[str, Any]:
    """The create-order body (a dict; the client encodes it once and signs those bytes)."""
    block = order.venue_extras.get("order_type", "").upper() == "BLOCK"
    ot = order.order_type
    if ot == order_pb2.ORDER_TYPE_MARKET:
        body = _base(order, client_order_id, "BLOCK" if block else "MARKET")
        if order.post_only or order.price or order.stop_price:
            raise InvalidRequest("a market order takes no price, stop price or post_only", venue=VENUE)
        tif = order.time_in_force
        if tif not in (order_pb2.TIME_IN_FORCE_UNSPECIFIED, order_pb2.TIME_IN_FORCE_IOC):
            raise InvalidRequest("a market order is immediate-or-cancel", venue=VENUE)
    elif ot in (order_pb2.ORDER_TYPE_LIMIT, order_pb2.ORDER_TYPE_STOP_LIMIT):
        stop = ot == order_pb2.ORDER_TYPE_STOP_LIMIT
        if block and stop:
            raise InvalidRequest("a BLOCK order is MARKET or LIMIT", venue=VENUE)
        body = _base(order, client_order_id, "BLOCK" if block else ("STOP_LIMIT" if stop else "LIMIT"))
        if not order.price:
            raise InvalidRequest("price: required for a limit order", venue=VENUE)
        body["limit_price"] = dec_str(_positive(order.price, "price"))
        tif = order.time_in_force or order_pb2.TIME_IN_FORCE_GTC
        name = _TIF.get(tif)
        if name is None:
            raise UnsupportedOperation("Prime takes GTC, GTD, IOC and FOK", venue=VENUE)
        if stop:
            if not order.stop_price:
                raise InvalidRequest("stop_price: required for a stop-limit order", venue=VENUE)
            body["stop_price"] = dec_str(_positive(order.stop_price, "stop_price"))
            if tif not in (order_pb2.TIME_IN_FORCE_GTC, order_pb2.TIME_IN_FORCE_GTD):
                raise InvalidRequest("a stop-limit order is GTC or GTD", venue=VENUE)
        elif order.stop_price:
            raise InvalidRequest("a limit order takes no stop_price", venue=VENUE)
        if order.post_only:
            if stop or tif not in (order_pb2.TIME_IN_FORCE_GTC, order_pb2.TIME_IN_FORCE_GTD):
                raise InvalidRequest("post_only is for LIMIT GTC or GTD orders only", venue=VENUE)
            body["post_only"] = True
        body["time_in_force"] = name
        if tif == order_pb2.TIME_IN_FORCE_GTD:
            body["expiry_time"] = _expiry(order)
    else:
        raise UnsupportedOperation(
            "Prime orders are MARKET, LIMIT or STOP_LIMIT (TWAP/VWAP: place_algo_order)", venue=VENUE
        )
    body["portfolio_id"] = portfolio_id
    return body


def build_algo(
    order: order_pb2.Order, algo: AlgoParams, client_order_id: str, portfolio_id: str
) -> dict[str, Any]:
    """A TWAP or VWAP body: limit price, start time and expiry (or historical participation) required."""
    strategy = algo.strategy.upper()
    if strategy not in ALGO_STRATEGIES:
        raise UnsupportedOperation(f"Prime algorithms are TWAP and VWAP, not {algo.strategy!r}", venue=VENUE)
    if order.order_type not in (order_pb2.ORDER_TYPE_UNSPECIFIED, order_pb2.ORDER_TYPE_LIMIT):
        raise InvalidRequest(
            "an algorithmic order is a limit order (its price caps every slice)", venue=VENUE
        )
    if order.post_only or order.stop_price:
        raise InvalidRequest("an algorithmic order takes no post_only or stop_price", venue=VENUE)
    body = _base(order, client_order_id, strategy)
    if not order.price:
        raise InvalidRequest("price: required for TWAP/VWAP (the limit price)", venue=VENUE)
    body["limit_price"] = dec_str(_positive(order.price, "price"))
    if algo.start is None:
        raise InvalidRequest("start: required for TWAP/VWAP", venue=VENUE)
    body["start_time"] = rfc3339(algo.start)
    if algo.participation is not None:
        pov = _positive(algo.participation, "participation")
        if pov > 1:
            raise InvalidRequest("participation is a fraction of volume (0 < p <= 1)", venue=VENUE)
        body["historical_pov"] = dec_str(pov)
    if algo.expiry is not None:
        if algo.expiry <= algo.start:
            raise InvalidRequest("expiry must be after start", venue=VENUE)
        body["expiry_time"] = rfc3339(algo.expiry)
    elif algo.participation is None:
        raise InvalidRequest("expiry: required for TWAP/VWAP unless participation is given", venue=VENUE)
    body["time_in_force"] = "GOOD_UNTIL_DATE_TIME"
    body["portfolio_id"] = portfolio_id
    return body


def build_quote(
    symbol: str, side: int, quantity: str, *, limit_price: str, client_quote_id: str, portfolio_id: str
) -> dict[str, Any]:
    """POST .../rfq: base quantity only (§11: "quote units are not yet supported"); the limit price
    is required and must be marketable."""
    if not symbol:
        raise InvalidRequest("symbol: required", venue=VENUE)
    return {
        "portfolio_id": portfolio_id,
        "product_id": symbol,
        "side": side_name(side),
        "client_quote_id": client_quote_id,
        "base_quantity": dec_str(_positive(quantity, "quantity")),
        "limit_price": dec_str(_positive(limit_price, "limit_price")),
    }


def build_accept(
    symbol: str, side: int, client_order_id: str, quote_id: str, portfolio_id: str
) -> dict[str, Any]:
    return {
        "portfolio_id": portfolio_id,
        "product_id": symbol,
        "side": side_name(side),
        "client_order_id": client_order_id,
        "quote_id": check_id(quote_id, "quote id"),
    }


def encode(body: dict[str, Any]) -> bytes:
    return msgspec.json.encode(body)


def page_params(cursor: str, limit: int, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The page query: ``limit`` only where the endpoint documents one (``limit=0``: none)."""
    out = list(extra)
    if limit:
        out.append(("limit", str(limit)))
    if cursor:
        out.append(("cursor", cursor))
    return out


def history_params(
    start: datetime, end: datetime | None, statuses: Sequence[str] = (), product_id: str = ""
) -> list[tuple[str, str]]:
    """Order history query: ``start_date`` is required by the API."""
    out: list[tuple[str, str]] = [("start_date", rfc3339(start))]
    if end is not None:
        out.append(("end_date", rfc3339(end)))
    out.extend(("order_statuses", s) for s in statuses)
    if product_id:
        out.append(("product_ids", product_id))
    return out


def candle_params(
    symbol: str, interval: int, start: datetime | None, end: datetime | None
) -> list[tuple[str, str]]:
    """``GET .../candles``: ``product_id`` and ``granularity`` are required, the window optional."""
    name = GRANULARITY.get(interval)
    if name is None:
        raise InvalidRequest(f"interval: candle interval {interval} is not offered by Prime", venue=VENUE)
    out = [("product_id", check_id(symbol, "product id")), ("granularity", name)]
    if start is not None:
        out.append(("start_time", rfc3339(start)))
    if end is not None:
        out.append(("end_time", rfc3339(end)))
    return out
