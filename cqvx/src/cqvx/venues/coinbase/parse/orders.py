"""REST orders and fills -> cqc Orders and ExecutionReports (create, cancel, get, list, fills)."""

from __future__ import annotations

from decimal import Decimal, DivisionByZero, InvalidOperation

import msgspec

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import ParseError, VenueError
from cqvx.num import dec_str
from cqvx.types import TERMINAL_STATUSES
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase.errors import ORDER_FAILURE, VENUE, cancel_error, create_order_error
from cqvx.venues.coinbase.parse._common import (
    QuoteOf,
    ToCanonical,
    _identity,
    _spot_quote,
    dec_text,
    decode,
    non_negative,
    timestamp,
)

_SIDE: dict[str, order_pb2.OrderSide.ValueType] = {
    "BUY": order_pb2.ORDER_SIDE_BUY,
    "SELL": order_pb2.ORDER_SIDE_SELL,
}

_TIF: dict[str, order_pb2.TimeInForce.ValueType] = {
    "GOOD_UNTIL_CANCELLED": order_pb2.TIME_IN_FORCE_GTC,
    "GOOD_UNTIL_DATE_TIME": order_pb2.TIME_IN_FORCE_GTD,
    "IMMEDIATE_OR_CANCEL": order_pb2.TIME_IN_FORCE_IOC,
    "FILL_OR_KILL": order_pb2.TIME_IN_FORCE_FOK,
}

# REST status (venues.md §1.4 enumerations) and user-channel status (channels page).
_STATUS: dict[str, order_pb2.OrderStatus.ValueType] = {
    "PENDING": order_pb2.ORDER_STATUS_PENDING_NEW,
    "QUEUED": order_pb2.ORDER_STATUS_PENDING_NEW,
    "OPEN": order_pb2.ORDER_STATUS_OPEN,
    "FILLED": order_pb2.ORDER_STATUS_FILLED,
    "CANCELLED": order_pb2.ORDER_STATUS_CANCELLED,
    "CANCEL_QUEUED": order_pb2.ORDER_STATUS_PENDING_CANCEL,
    "EXPIRED": order_pb2.ORDER_STATUS_EXPIRED,
    "FAILED": order_pb2.ORDER_STATUS_FAILED,
    "UNKNOWN_ORDER_STATUS": order_pb2.ORDER_STATUS_UNSPECIFIED,
}

# REST uses MARKET/LIMIT/STOP_LIMIT; the user channel uses "Market"/"Limit"/"Stop Limit" casing.
_TYPE: dict[str, order_pb2.OrderType.ValueType] = {
    "MARKET": order_pb2.ORDER_TYPE_MARKET,
    "LIMIT": order_pb2.ORDER_TYPE_LIMIT,
    "STOP": order_pb2.ORDER_TYPE_STOP_MARKET,
    "STOP_LIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "STOPLIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "STOP LIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "BRACKET": order_pb2.ORDER_TYPE_LIMIT,
}

_NO_REASON = frozenset({"", "REJECT_REASON_UNSPECIFIED", "UNKNOWN_CANCEL_REASON"})


def _status(raw: str, filled: Decimal, pending_cancel: bool = False) -> order_pb2.OrderStatus.ValueType:
    status = _STATUS.get(raw)
    if status is None:
        raise ParseError(f"order status: unknown value {raw[:40]!r}", venue=VENUE)
    if status == order_pb2.ORDER_STATUS_OPEN:
        if pending_cancel:
            return order_pb2.ORDER_STATUS_PENDING_CANCEL
        if filled > 0:
            return order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    return status


def _side(raw: str) -> order_pb2.OrderSide.ValueType:
    side = _SIDE.get(raw)
    if side is None:
        raise ParseError(f"side: unknown value {raw[:20]!r}", venue=VENUE)
    return side


# --- orders -------------------------------------------------------------------------------------


def _apply_config(out: order_pb2.Order, cfg: m.OrderConfig | None) -> None:
    """Order type, time in force, sizes and prices from the one ``order_configuration`` key."""
    if cfg is None:
        return
    leg: m.OrderLeg | None = None
    for entry in _CONFIG_KEYS:
        leg = getattr(cfg, entry[0])
        if leg is not None:
            name, otype, tif = entry
            break
    if leg is None:
        return
    out.order_type = otype
    out.time_in_force = tif
    out.quantity = dec_text(leg.base_size, "base_size")
    out.quote_quantity = dec_text(leg.quote_size, "quote_size")
    out.price = dec_text(leg.limit_price, "limit_price")
    out.stop_price = dec_text(leg.stop_price or leg.stop_trigger_price, "stop_price")
    out.post_only = leg.post_only
    if leg.end_time:
        end = timestamp(leg.end_time, "end_time")
        if end is not None:
            out.expires_at.CopyFrom(end)
    if name.startswith("trigger_bracket"):
        out.venue_extras["order_configuration"] = name


_CONFIG_KEYS: tuple[tuple[str, order_pb2.OrderType.ValueType, order_pb2.TimeInForce.ValueType], ...] = (
    ("limit_limit_gtc", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTC),
    ("market_market_ioc", order_pb2.ORDER_TYPE_MARKET, order_pb2.TIME_IN_FORCE_IOC),
    ("limit_limit_gtd", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTD),
    ("sor_limit_ioc", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_IOC),
    ("limit_limit_fok", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_FOK),
    ("market_market_fok", order_pb2.ORDER_TYPE_MARKET, order_pb2.TIME_IN_FORCE_FOK),
    ("stop_limit_stop_limit_gtc", order_pb2.ORDER_TYPE_STOP_LIMIT, order_pb2.TIME_IN_FORCE_GTC),
    ("stop_limit_stop_limit_gtd", order_pb2.ORDER_TYPE_STOP_LIMIT, order_pb2.TIME_IN_FORCE_GTD),
    ("trigger_bracket_gtc", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTC),
    ("trigger_bracket_gtd", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTD),
)


def order_from_model(
    o: m.Order, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> order_pb2.Order:
    """A REST ``Order`` object as a cqc Order (fees are in the product's quote currency, from
    ``quote_of``: the products table in the client)."""
    if not o.order_id:
        raise ParseError("order: missing order_id", venue=VENUE)
    filled = non_negative(o.filled_size, "filled_size", Decimal(0))
    out = order_pb2.Order(
        order_id=o.order_id,
        client_order_id=o.client_order_id,
        venue=VENUE,
        symbol=to_canonical(o.product_id),
        venue_symbol=o.product_id,
        side=_side(o.side),
        status=_status(o.status, filled, o.pending_cancel),
        filled_quantity=dec_str(filled),
        average_fill_price=dec_text(o.average_filled_price, "average_filled_price") if filled else "",
        total_fees=dec_text(o.total_fees, "total_fees"),
        fee_asset=quote_of(o.product_id) or "",
        account_id=o.retail_portfolio_id or "",
        leverage=dec_text(o.leverage, "leverage"),
    )
    _apply_config(out, o.order_configuration)
    if not out.order_type:
        out.order_type = _TYPE.get(o.order_type.upper(), order_pb2.ORDER_TYPE_UNSPECIFIED)
    if not out.time_in_force:
        out.time_in_force = _TIF.get(o.time_in_force, order_pb2.TIME_IN_FORCE_UNSPECIFIED)
    if out.status in TERMINAL_STATUSES:
        out.remaining_quantity = "0"
    elif out.quantity:
        out.remaining_quantity = dec_str(max(Decimal(out.quantity) - filled, Decimal(0)))
    created = timestamp(o.created_time, "created_time")
    if created is not None:
        out.created_at.CopyFrom(created)
    updated = timestamp(o.last_fill_time, "last_fill_time")
    if updated is not None:
        out.updated_at.CopyFrom(updated)
    reason = o.reject_reason or ""
    if reason in _NO_REASON:
        reason = o.reject_message or o.cancel_message or ""
    out.rejection_reason = reason[:200]
    return out


def order_from_json(
    data: bytes, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> order_pb2.Order:
    """``GET /orders/historical/{order_id}`` -> Order."""
    return order_from_model(decode(data, m.GetOrderResponse).order, to_canonical, quote_of)


def orders_page(
    page: m.OrdersResponse, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> tuple[list[order_pb2.Order], str | None]:
    """A decoded orders page -> (orders, next cursor or None)."""
    orders = [order_from_model(o, to_canonical, quote_of) for o in page.orders]
    return orders, (page.cursor if page.has_next and page.cursor else None)


def orders_page_from_json(
    data: bytes, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> tuple[list[order_pb2.Order], str | None]:
    """One ``GET /orders/historical/batch`` page -> (orders, next cursor or None); a reply without an
    ``orders`` list is a ParseError, never "no orders"."""
    return orders_page(decode(data, m.OrdersResponse), to_canonical, quote_of)


def create_order_from_json(
    data: bytes, order: order_pb2.Order, symbol: str, product_id: str, client_order_id: str
) -> execution_pb2.ExecutionReport:
    """``POST /orders`` answer -> the acknowledgement report, or the mapped error when
    ``success: false`` (HTTP 200 with a failure body; create-order reference,
    https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/orders/create-order).

    Only the documented failure shape is a rejection: ``success: false`` with a documented failure
    reason (a code of the create-order enums other than ``UNKNOWN_*``).  Any other 2xx body (no
    ``success`` flag, only an ``order_id``, a wrapper, a failure without a reason) raises
    :class:`ParseError`: the order may exist, so the client resolves it by client order id.
    """
    resp = decode(data, m.CreateOrderResponse)
    if resp.success is None:
        raise ParseError("create order: reply without a success flag (outcome unknown)", venue=VENUE)
    if not resp.success:
        er = resp.error_response
        error_fields = msgspec.structs.asdict(er) if er is not None else None
        if not _documented_failure(error_fields, resp.failure_reason):
            raise ParseError("create order: success false without a documented reason", venue=VENUE)
        raise create_order_error(
            error_fields, resp.failure_reason, client_order_id=client_order_id, raw=data[:2048]
        )
    sr = resp.success_response or m.SuccessResponse()
    order_id = sr.order_id or resp.order_id
    if not order_id:
        raise ParseError("create order: success without an order_id", venue=VENUE)
    # A success that names another order (client id, product or a second order id) is not an
    # acknowledgement of this one: unresolved, looked up by client order id.
    if (
        (sr.client_order_id and sr.client_order_id != client_order_id)
        or (sr.product_id and sr.product_id != product_id)
        or (sr.order_id and resp.order_id and sr.order_id != resp.order_id)
    ):
        raise ParseError("create order: the reply acknowledges a different order", venue=VENUE)
    ack_coid = client_order_id
    return execution_pb2.ExecutionReport(
        execution_id=f"{order_id}:new",
        order_id=order_id,
        client_order_id=ack_coid,
        venue=VENUE,
        symbol=symbol,
        execution_type=execution_pb2.EXECUTION_TYPE_NEW,
        order_status=order_pb2.ORDER_STATUS_OPEN,
        side=order.side,
        order_type=order.order_type,
        time_in_force=order.time_in_force
        or (
            order_pb2.TIME_IN_FORCE_IOC
            if order.order_type == order_pb2.ORDER_TYPE_MARKET
            else order_pb2.TIME_IN_FORCE_GTC
        ),
        order_price=order.price,
        order_quantity=order.quantity,
        cumulative_quantity="0",
        remaining_quantity=order.quantity,
        post_only=order.post_only,
    )


def _documented_failure(error_fields: dict[str, object] | None, failure_reason: str) -> bool:
    """Whether a ``success: false`` reply names a documented, specific failure reason."""
    fields = error_fields or {}
    codes = [
        fields.get("new_order_failure_reason"),
        fields.get("error"),
        fields.get("preview_failure_reason"),
        failure_reason,
    ]
    return any(isinstance(c, str) and c in ORDER_FAILURE and not c.startswith("UNKNOWN_") for c in codes)


def cancel_results_from_json(data: bytes) -> list[tuple[str, VenueError | None]]:
    """``POST /orders/batch_cancel`` -> [(order_id, None on success else the mapped error)]; a result
    without a ``success`` flag is a ParseError (the cancel may or may not have happened)."""
    resp = decode(data, m.CancelResponse)
    out: list[tuple[str, VenueError | None]] = []
    for r in resp.results:
        if r.success is None or not r.order_id:
            raise ParseError("cancel result: missing success flag or order_id", venue=VENUE)
        out.append((r.order_id, None if r.success else cancel_error(r.failure_reason, r.order_id)))
    return out


# --- fills --------------------------------------------------------------------------------------

_LIQUIDITY = {"MAKER": execution_pb2.LIQUIDITY_SIDE_MAKER, "TAKER": execution_pb2.LIQUIDITY_SIDE_TAKER}


def fill_report(
    f: m.Fill, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> execution_pb2.ExecutionReport:
    """A REST fill -> a TRADE ExecutionReport (``trade_id`` is the de-duplication key)."""
    if not f.trade_id or not f.order_id:
        raise ParseError("fill: missing trade_id or order_id", venue=VENUE)
    price = non_negative(f.price, "price")
    size = non_negative(f.size, "size")
    if f.size_in_quote:
        # ``size`` is quote currency when the order was sized in quote (fills reference).
        try:
            size = size / price
        except (DivisionByZero, InvalidOperation):
            raise ParseError("fill: size in quote with zero price", venue=VENUE) from None
    report = execution_pb2.ExecutionReport(
        execution_id=f.entry_id or f.trade_id,
        order_id=f.order_id,
        venue=VENUE,
        symbol=to_canonical(f.product_id),
        execution_type=execution_pb2.EXECUTION_TYPE_TRADE,
        side=_side(f.side),
        last_price=dec_str(price),
        last_quantity=dec_str(size),
        fee=dec_text(f.commission, "commission"),
        fee_asset=quote_of(f.product_id) or "",
        liquidity=_LIQUIDITY.get(f.liquidity_indicator, execution_pb2.LIQUIDITY_SIDE_UNSPECIFIED),
        trade_id=f.trade_id,
        account_id=f.retail_portfolio_id or "",
    )
    when = timestamp(f.trade_time, "trade_time")
    if when is not None:
        report.transact_time.CopyFrom(when)
    return report


def fills_page(
    page: m.FillsResponse, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> tuple[list[execution_pb2.ExecutionReport], str | None]:
    """A decoded fills page -> (reports, next cursor or None)."""
    return [fill_report(f, to_canonical, quote_of) for f in page.fills], (page.cursor or None)


def fills_from_json(
    data: bytes, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> tuple[list[execution_pb2.ExecutionReport], str | None]:
    """One ``GET /orders/historical/fills`` page -> (reports, next cursor or None)."""
    return fills_page(decode(data, m.FillsResponse), to_canonical, quote_of)


# --- accounts -------------------------------------------------------------------------------------
