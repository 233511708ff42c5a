"""REST paths, route labels and request builders of the Advanced Trade API (all under /api/v3/brokerage).

Paths follow the REST reference (https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api)
and venues.md §1.4.  Builders turn cqc messages into the exact bytes that are signed and sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from cqc.markets.v1 import candle_pb2
from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import dec, dec_str
from cqvx.timeutil import CANDLE_SECONDS

__all__ = [
    "ACCOUNTS",
    "BATCH_CANCEL",
    "BEST_BID_ASK",
    "CFM_BALANCE_SUMMARY",
    "CFM_POSITIONS",
    "FILLS",
    "GRANULARITY",
    "INTX",
    "ORDERS",
    "ORDERS_BATCH",
    "PREFIX",
    "PRODUCTS",
    "PRODUCT_BOOK",
    "TIME",
    "build_cancel_body",
    "build_create_order",
    "candles_path",
    "cfm_position_path",
    "intx_path",
    "order_path",
    "product_path",
    "ticker_path",
]

PREFIX = "/api/v3/brokerage"
ORDERS = f"{PREFIX}/orders"
BATCH_CANCEL = f"{PREFIX}/orders/batch_cancel"
ORDERS_BATCH = f"{PREFIX}/orders/historical/batch"
FILLS = f"{PREFIX}/orders/historical/fills"
ACCOUNTS = f"{PREFIX}/accounts"
PRODUCTS = f"{PREFIX}/products"
PRODUCT_BOOK = f"{PREFIX}/product_book"
BEST_BID_ASK = f"{PREFIX}/best_bid_ask"
TIME = f"{PREFIX}/time"
# US-derivatives (CFM/FCM futures) account: list/get futures positions, futures balance summary
# (https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/futures/...).
CFM_POSITIONS = f"{PREFIX}/cfm/positions"
CFM_BALANCE_SUMMARY = f"{PREFIX}/cfm/balance_summary"
# Perpetuals on Coinbase International (INTX), per perpetuals portfolio: List/Get Perpetuals
# Position(s), Get Perpetuals Portfolio Summary, Get Portfolio Balances
# (https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/perpetuals/...).
INTX = f"{PREFIX}/intx"

# Metric route labels (templates, never raw paths).
R_ORDER = "/orders/historical/{order_id}"
R_PRODUCT = "/products/{product_id}"
R_CANDLES = "/products/{product_id}/candles"
R_TICKER = "/products/{product_id}/ticker"
R_CFM_POSITIONS = "/cfm/positions"
R_CFM_POSITION = "/cfm/positions/{product_id}"
R_CFM_BALANCE_SUMMARY = "/cfm/balance_summary"
R_INTX_POSITIONS = "/intx/positions/{portfolio_uuid}"
R_INTX_POSITION = "/intx/positions/{portfolio_uuid}/{symbol}"
R_INTX_PORTFOLIO = "/intx/portfolio/{portfolio_uuid}"
R_INTX_BALANCES = "/intx/balances/{portfolio_uuid}"

# cqc CandleInterval -> Advanced Trade granularity (candles endpoint enum; venues.md §1.4).
# Widths come from the one candle table (cqvx.timeutil).
_GRANULARITY_NAMES: dict[int, str] = {
    candle_pb2.CANDLE_INTERVAL_1MIN: "ONE_MINUTE",
    candle_pb2.CANDLE_INTERVAL_5MIN: "FIVE_MINUTE",
    candle_pb2.CANDLE_INTERVAL_15MIN: "FIFTEEN_MINUTE",
    candle_pb2.CANDLE_INTERVAL_30MIN: "THIRTY_MINUTE",
    candle_pb2.CANDLE_INTERVAL_1HOUR: "ONE_HOUR",
    candle_pb2.CANDLE_INTERVAL_2HOUR: "TWO_HOUR",
    candle_pb2.CANDLE_INTERVAL_6HOUR: "SIX_HOUR",
    candle_pb2.CANDLE_INTERVAL_1DAY: "ONE_DAY",
}
GRANULARITY: dict[int, tuple[str, int]] = {i: (n, CANDLE_SECONDS[i]) for i, n in _GRANULARITY_NAMES.items()}
# The candles endpoint returns at most 350 candles per request (REST reference, Get Product Candles).
MAX_CANDLES = 350


def order_path(order_id: str) -> str:
    return f"{PREFIX}/orders/historical/{_segment(order_id)}"


def intx_path(kind: str, portfolio_uuid: str, symbol: str = "") -> str:
    """``/intx/{kind}/{portfolio_uuid}[/{symbol}]`` (kind: positions, portfolio, balances)."""
    return f"{INTX}/{kind}/{_segment(portfolio_uuid)}" + (f"/{_segment(symbol)}" if symbol else "")


def product_path(product_id: str) -> str:
    return f"{PRODUCTS}/{_segment(product_id)}"


def candles_path(product_id: str) -> str:
    return f"{PRODUCTS}/{_segment(product_id)}/candles"


def ticker_path(product_id: str) -> str:
    return f"{PRODUCTS}/{_segment(product_id)}/ticker"


def _segment(value: str) -> str:
    # Ids are UUIDs / product ids; anything that could change the path is refused, not escaped.
    if not value or any(c in value for c in "/?#%\\ ") or value in (".", ".."):
        raise InvalidRequest(f"invalid id {value[:64]!r}", venue="coinbase")
    return value


def _positive(value: str, what: str) -> str:
    try:
        d = dec(value, what, "coinbase")
    except ParseError:
        raise InvalidRequest(f"{what} is not a decimal number: {value[:40]!r}", venue="coinbase") from None
    if d <= 0:
        raise InvalidRequest(f"{what} must be positive", venue="coinbase")
    return dec_str(d)


_TIF_NAMES = {
    order_pb2.TIME_IN_FORCE_UNSPECIFIED: "UNSPECIFIED",
    order_pb2.TIME_IN_FORCE_GTC: "GTC",
    order_pb2.TIME_IN_FORCE_IOC: "IOC",
    order_pb2.TIME_IN_FORCE_FOK: "FOK",
    order_pb2.TIME_IN_FORCE_GTD: "GTD",
    order_pb2.TIME_IN_FORCE_DAY: "DAY",
}


def order_configuration(order: order_pb2.Order) -> dict[str, dict[str, Any]]:
    """The ``order_configuration`` object for a cqc order (orders guide,
    https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/guides/orders)."""
    otype = order.order_type
    tif = order.time_in_force
    buy = order.side == order_pb2.ORDER_SIDE_BUY
    if order.reduce_only:
        raise UnsupportedOperation("reduce_only is not offered for Advanced Trade orders", venue="coinbase")
    if otype == order_pb2.ORDER_TYPE_MARKET:
        if order.post_only:
            raise InvalidRequest("a market order cannot be post-only", venue="coinbase")
        leg: dict[str, Any] = {}
        if order.quote_quantity:
            if not buy:
                # Market sells are sized in base units only (create-order reference).
                raise InvalidRequest("a market sell must give quantity, not quote_quantity", venue="coinbase")
            if order.quantity:
                raise InvalidRequest("give quantity or quote_quantity, not both", venue="coinbase")
            leg["quote_size"] = _positive(order.quote_quantity, "quote_quantity")
        else:
            leg["base_size"] = _positive(order.quantity, "quantity")
        if tif == order_pb2.TIME_IN_FORCE_FOK:
            return {"market_market_fok": leg}
        if tif not in (order_pb2.TIME_IN_FORCE_UNSPECIFIED, order_pb2.TIME_IN_FORCE_IOC):
            raise InvalidRequest(
                f"market orders are IOC or FOK, not {_TIF_NAMES.get(tif, tif)}", venue="coinbase"
            )
        return {"market_market_ioc": leg}
    if order.quote_quantity:
        raise InvalidRequest("only market buys may be sized by quote_quantity", venue="coinbase")
    base = _positive(order.quantity, "quantity")
    price = _positive(order.price, "price")
    if otype == order_pb2.ORDER_TYPE_LIMIT:
        if tif in (order_pb2.TIME_IN_FORCE_GTC, order_pb2.TIME_IN_FORCE_UNSPECIFIED):
            return {
                "limit_limit_gtc": {"base_size": base, "limit_price": price, "post_only": order.post_only}
            }
        if tif == order_pb2.TIME_IN_FORCE_GTD:
            return {
                "limit_limit_gtd": {
                    "base_size": base,
                    "limit_price": price,
                    "end_time": _end_time(order),
                    "post_only": order.post_only,
                }
            }
        if order.post_only:
            raise InvalidRequest("post-only orders must be GTC or GTD", venue="coinbase")
        if tif == order_pb2.TIME_IN_FORCE_FOK:
            return {"limit_limit_fok": {"base_size": base, "limit_price": price}}
        if tif == order_pb2.TIME_IN_FORCE_IOC:
            # Limit IOC is the smart-order-routed variant (``sor_limit_ioc``).
            return {"sor_limit_ioc": {"base_size": base, "limit_price": price}}
        raise InvalidRequest(f"time in force {_TIF_NAMES.get(tif, tif)} is not offered", venue="coinbase")
    if otype == order_pb2.ORDER_TYPE_STOP_LIMIT:
        if order.post_only:
            raise InvalidRequest("stop-limit orders cannot be post-only", venue="coinbase")
        leg = {
            "base_size": base,
            "limit_price": price,
            "stop_price": _positive(order.stop_price, "stop_price"),
            "stop_direction": _stop_direction(order, buy),
        }
        if tif in (order_pb2.TIME_IN_FORCE_GTC, order_pb2.TIME_IN_FORCE_UNSPECIFIED):
            return {"stop_limit_stop_limit_gtc": leg}
        if tif == order_pb2.TIME_IN_FORCE_GTD:
            leg["end_time"] = _end_time(order)
            return {"stop_limit_stop_limit_gtd": leg}
        raise InvalidRequest("stop-limit orders are GTC or GTD", venue="coinbase")
    raise UnsupportedOperation(f"order type {otype} is not offered by Advanced Trade", venue="coinbase")


def _end_time(order: order_pb2.Order) -> str:
    if not order.HasField("expires_at"):
        raise InvalidRequest("GTD orders need expires_at", venue="coinbase")
    text: str = order.expires_at.ToJsonString()
    return text


def _stop_direction(order: order_pb2.Order, buy: bool) -> str:
    """STOP_UP triggers when the price rises to the stop, STOP_DOWN when it falls.  A buy stop guards
    against a rise and a sell stop against a fall, unless ``venue_extras["stop_direction"]`` says so."""
    explicit = order.venue_extras.get("stop_direction", "")
    if explicit:
        if explicit not in ("STOP_DIRECTION_STOP_UP", "STOP_DIRECTION_STOP_DOWN"):
            raise InvalidRequest(f"invalid stop_direction {explicit[:40]!r}", venue="coinbase")
        return explicit
    return "STOP_DIRECTION_STOP_UP" if buy else "STOP_DIRECTION_STOP_DOWN"


# Optional create-order fields passed through from venue_extras (create-order reference).
_PASSTHROUGH = ("retail_portfolio_id", "self_trade_prevention_id", "margin_type", "preview_id")
_encode = msgspec.json.Encoder().encode


def build_create_order(order: order_pb2.Order, product_id: str, client_order_id: str) -> bytes:
    """The POST /orders body, serialised once (these exact bytes are signed and sent)."""
    if order.side == order_pb2.ORDER_SIDE_BUY:
        side = "BUY"
    elif order.side == order_pb2.ORDER_SIDE_SELL:
        side = "SELL"
    else:
        raise InvalidRequest("order side is not set", venue="coinbase")
    body: dict[str, Any] = {
        "client_order_id": client_order_id,
        "product_id": product_id,
        "side": side,
        "order_configuration": order_configuration(order),
    }
    if order.leverage:
        body["leverage"] = _positive(order.leverage, "leverage")
    extras = order.venue_extras
    for key in _PASSTHROUGH:
        value = extras.get(key)
        if value:
            body[key] = value
    return _encode(body)


def build_cancel_body(order_ids: Sequence[str]) -> bytes:
    return _encode({"order_ids": list(order_ids)})


def cfm_position_path(product_id: str) -> str:
    return f"{CFM_POSITIONS}/{_segment(product_id)}"
