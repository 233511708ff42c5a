"""Coinbase Advanced Trade error codes -> the cqvx taxonomy, as explicit tables.

Three places carry a code:

* A rejected create-order comes back as HTTP 200 with ``success: false`` and an ``error_response``
  holding ``new_order_failure_reason`` (current), ``error`` (deprecated, same enum) and
  ``preview_failure_reason`` (deprecated ``PREVIEW_*`` enum).  Source: the Create Order and Preview
  Order pages of the Advanced Trade REST reference
  (https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/orders/create-order).
* Each batch-cancel result carries ``failure_reason`` (Cancel Orders page, same reference).
* Non-2xx responses carry ``{"error": <gRPC status name>, "message", "error_details"}``, or on a few
  legacy routes ``{"errors": [{"id": ...}]}`` (venues.md §1.5).

Every documented value is listed here (the tests check the tables against the documented lists in
``tests/coinbase/fixtures/failure_reasons.json``); an undocumented value falls back to a class chosen
for safety: a create-order with ``success: false`` never created an order, so it is
:class:`~cqvx.errors.OrderRejected` (not retry-safe: the caller decides).  No message text is matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UnsupportedOperation,
    VenueError,
)
from cqvx.transport.http import HttpResponse, parse_retry_after

__all__ = [
    "CANCEL_FAILURE",
    "HTTP_ERROR_CODES",
    "ORDER_FAILURE",
    "VENUE",
    "cancel_error",
    "create_order_error",
    "http_error_mapper",
]

VENUE = "coinbase"

ErrorClass = type[VenueError]


def _both(cls: ErrorClass, *names: str) -> dict[str, ErrorClass]:
    """``NAME`` and its ``PREVIEW_NAME`` twin: the preview enum mirrors the new-order enum."""
    out: dict[str, ErrorClass] = {}
    for name in names:
        out[name] = cls
        out[f"PREVIEW_{name}"] = cls
    return out


def _only(cls: ErrorClass, names: Iterable[str]) -> dict[str, ErrorClass]:
    return dict.fromkeys(names, cls)


# --- create order: new_order_failure_reason / error / preview_failure_reason ---------------------
ORDER_FAILURE: dict[str, ErrorClass] = {
    # The venue refused the order on its merits or because of market state: nothing was created.
    **_both(
        OrderRejected,
        "INVALID_LIMIT_PRICE_POST_ONLY",  # post-only would cross
        "INVALID_NO_LIQUIDITY",  # FOK/IOC/market cannot fill
        "COMMANDER_REJECTED_NEW_ORDER",
        "ORDER_ENTRY_DISABLED",
        "UNTRADABLE_PRODUCT",
        "INVALID_FCM_TRADING_SESSION",
        "MISSING_MARKET_TRADE_DATA",
        "LIMIT_PRICE_TOO_FAR_FROM_MARKET",
        "LIMIT_ORDER_PRICE_EXCEEDS_PRICE_BAND_ON_BUY",
        "LIMIT_ORDER_PRICE_EXCEEDS_PRICE_BAND_ON_SELL",
        "BRACKET_LIMIT_PRICE_OUT_OF_BOUNDS",
        "STOP_TRIGGER_PRICE_OUT_OF_BOUNDS",
        "FUTURES_AFTER_HOUR_INVALID_ORDER_TYPE",
        "FUTURES_AFTER_HOUR_INVALID_TIME_IN_FORCE",
        "UBO_HIGH_LEVERAGE_QUANTITY_BREACHED",
        "IN_LIQUIDATION",
        "OPEN_BRACKET_ORDERS",
        "ORDER_IS_PENDING_CANCEL",
        "POSITION_SIZE_INCREASE_REJECT",
        "ASSET_BALANCE_INCREASE_REJECT",
        "TOO_MANY_PENDING_REPLACES",
        "REDUCE_ONLY_INCREASED_POSITION_SIZE",
        "STOP_ALREADY_TRIGGERED",
        "MARKET_ORDERS_PROHIBITED_DURING_NON_CORE_SESSION",
        "NOTIONAL_ORDERS_PROHIBITED_DURING_NON_CORE_SESSION",
        "MAX_NOTIONAL_PER_ORDER_BREACHED_15C35_CHECK",
        "MAX_SHARES_PER_ORDER_BREACHED_15C35_CHECK",
        "INVALID_EQUITY_TRADING_SESSION",
        "PRODUCT_TRADING_HALTED",
        "TRADING_DISABLED",
        "BREACHED_RISK_LIMIT",
        "MODIFY_POSITION_WORKFLOW_ALREADY_RUNNING",
        "RFQ_QUOTE_EXPIRED",
        "RFQ_TOO_MANY_OPEN_QUOTES",
        "RFQ_VENUE_REJECTED",
        "NBBO_NOT_PROVIDED",
        "CANNOT_CLOSE_ZERO_POSITION",
        "UNKNOWN_FAILURE_REASON",
    ),
    **_only(
        OrderRejected,
        (
            "UNKNOWN_PREVIEW_FAILURE_REASON",
            "PREVIEW_MISSING_PRODUCT_PRICE_BOOK",
            "PREVIEW_NOT_ALLOWED_BY_MARKET_STATE",
            "PREVIEW_BREACHED_PRICE_LIMIT",
            "PREVIEW_BREACHED_ACCOUNT_POSITION_LIMIT",
            "PREVIEW_BREACHED_COMPANY_POSITION_LIMIT",
            "PREVIEW_BREACHED_OPEN_INTEREST_LIMIT",
            "PREVIEW_RISK_PROXY_FAILURE",
            "PREVIEW_STOP_TRIGGERED",
            "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE",
            "PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE",
            "PREVIEW_ECOSYSTEM_LEVERAGE_UTILIZATION_BREACHED",
            "PREVIEW_UBO_HIGH_LEVERAGE_NOTIONAL_BREACHED",
            "PREVIEW_CLOSE_ONLY_FAILURE",
            "PREVIEW_MAX_DAILY_VOLUME_NOTIONAL_BREACHED",
            "PREVIEW_OPPOSITE_MARGIN_TYPE_EXISTS",
            "PREVIEW_BRACKET_ORDER_SIZE_EXCEEDS_POSITION",
            "PREVIEW_ORDER_SIZE_EXCEEDS_BRACKETED_POSITION",
            "PREVIEW_PREDICTIONS_HIGH_PRICE_CONTRACTS_BLOCKED",
            "PREVIEW_COMPLIANCE_PURCHASE_LIMIT_EXCEEDED",
        ),
    ),
    # Not enough balance or margin.
    **_both(InsufficientFunds, "INSUFFICIENT_FUND", "INSUFFICIENT_FUNDS", "INVALID_LEDGER_BALANCE"),
    **_only(
        InsufficientFunds,
        (
            "PREVIEW_INSUFFICIENT_LEDGER_BALANCE",
            "PREVIEW_INSUFFICIENT_FUNDS_FOR_FUTURES",
            "PREVIEW_INVALID_MARGIN_HEALTH",
        ),
    ),
    # The key or account may not trade this.
    **_both(PermissionDenied, "INELIGIBLE_PAIR", "GEOFENCING_RESTRICTION"),
    **_only(PermissionDenied, ("PREVIEW_UNTRADABLE_FCM_ACCOUNT_STATUS",)),
    # The same client order id was already used: resolve by fetching that order.
    "DUPLICATE_CLIENT_ORDER_ID": DuplicateOrder,
    "RFQ_RATE_LIMITED": RateLimited,
    # Order features this account/venue does not offer.
    **_both(
        UnsupportedOperation,
        "BRACKET_ORDER_NOT_SUPPORTED",
        "ICEBERG_ORDERS_NOT_SUPPORTED",
        "REPLACE_NOT_SUPPORTED",
        "FOK_DISABLED",
        "REDUCE_ONLY_NOT_ALLOWED_ON_VENUE",
        "REDUCE_ONLY_NOT_ALLOWED_ON_SPOT_PRODUCTS",
        "FRACTIONAL_ORDERS_NOT_ALLOWED_FOR_PRODUCT",
        "QUOTE_ORDERS_NOT_ALLOWED_FOR_PRODUCT",
        "INVALID_UNSUPPORTED_INSTRUMENT",
    ),
    "UNSUPPORTED_ORDER_CONFIGURATION": UnsupportedOperation,
    # Malformed request or a violated instrument rule (tick, lot, min/max size, times).
    **_both(
        InvalidRequest,
        "INVALID_SIDE",
        "INVALID_PRODUCT_ID",
        "INVALID_SIZE_PRECISION",
        "INVALID_PRICE_PRECISION",
        "INVALID_LIMIT_PRICE",
        "INVALID_REQUEST",
        "INVALID_MARGIN_TYPE",
        "INVALID_LEVERAGE",
        "QUOTE_SIZE_NOT_ALLOWED_FOR_BRACKET",
        "INVALID_BRACKET_PRICES",
        "INVALID_BRACKET_LIMIT_PRICE",
        "INVALID_BRACKET_STOP_TRIGGER_PRICE",
        "FOK_ONLY_ALLOWED_ON_LIMIT_ORDERS",
        "POST_ONLY_NOT_ALLOWED_WITH_FOK",
        "END_TIME_TOO_FAR_IN_FUTURE",
        "INVALID_ATTACHED_TAKE_PROFIT_PRICE",
        "INVALID_ATTACHED_STOP_LOSS_PRICE",
        "INVALID_ATTACHED_TAKE_PROFIT_PRICE_PRECISION",
        "INVALID_ATTACHED_STOP_LOSS_PRICE_PRECISION",
        "INVALID_ATTACHED_TAKE_PROFIT_PRICE_OUT_OF_BOUNDS",
        "INVALID_ATTACHED_STOP_LOSS_PRICE_OUT_OF_BOUNDS",
        "INVALID_ATTACHED_TAKE_PROFIT_PRICE_EXCEEDS_MAX_DISTANCE_FROM_ORIGINATING_PRICE",
        "INVALID_ATTACHED_TAKE_PROFIT_SIZE_BELOW_MIN",
        "INVALID_ATTACHED_TAKE_PROFIT_PRICE_OUT_OF_BOUNDS_ON_AGGRESSIVE_ORDER",
        "INVALID_ATTACHED_STOP_LOSS_PRICE_OUT_OF_BOUNDS_ON_AGGRESSIVE_ORDER",
        "ATTACHED_ORDER_SIZE_MUST_BE_NIL",
        "INVALID_SETTLEMENT_CURRENCY",
        "DURATION_TOO_SMALL",
        "DURATION_TOO_LARGE",
        "INTX_FOK_ONLY_ALLOWED_ON_LIMIT_AND_MARKET_ORDERS",
        "BUCKET_SIZE_SMALLER_THAN_QUOTE_MIN",
        "BUCKET_SIZE_SMALLER_THAN_BASE_MIN",
        "END_TIME_AFTER_CONTRACT_EXPIRATION",
        "START_TIME_MUST_BE_SPECIFIED",
        "END_TIME_IS_IN_THE_PAST",
        "GTD_ORDERS_MUST_HAVE_END_TIME",
        "ATTACHED_ORDER_MUST_HAVE_POSITIVE_PRICES",
        "INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL",
        "ATTACHED_ORDERS_ONLY_ALLOWED_ON_MARKET_LIMIT",
        "INVALID_ORDER_TYPE_FOR_ATTACHED",
        "PRICE_NOT_ALLOWED_FOR_MARKET_ORDERS",
        "INVALID_RFQ_BASE_SIZE_TOO_SMALL",
        "INVALID_RFQ_BASE_SIZE_TOO_LARGE",
        "INVALID_RFQ_QUOTE_SIZE_TOO_SMALL",
        "INVALID_RFQ_QUOTE_SIZE_TOO_LARGE",
        "SCALED_PARAM_INFEASIBLE",
        "SCALED_MIN_ORDER_VIOLATION",
        "SCALED_MAX_ORDER_VIOLATION",
        "SCALED_PARAM_DISCREPANCY",
        "POST_ONLY_NOT_ALLOWED_WITH_PEG",
        "INVALID_PEG_OFFSET",
        "INVALID_PEG_WIG_LEVEL",
        "INVALID_PEG_VENUE_OPTIONS",
        "PEG_INVALID_ORDER_TYPE",
        "SINGLE_LEGGED_TPSL_NOT_ALLOWED",
        "INVALID_NBBO_BID_PRICE",
        "INVALID_NBBO_ASK_PRICE",
        "NOTIONAL_SIZE_BREACHES_FRACTIONAL_MINIMUM",
        "STOP_LOSS_PRICE_TOO_LOW",
        "STOP_LOSS_PRICE_TOO_HIGH",
        "ATTACHED_STOP_LOSS_PRICE_TOO_LOW",
        "ATTACHED_STOP_LOSS_PRICE_TOO_HIGH",
        "TAKE_PROFIT_PRICE_TOO_HIGH",
        "TAKE_PROFIT_PRICE_TOO_LOW",
        "ATTACHED_TAKE_PROFIT_PRICE_TOO_HIGH",
        "ATTACHED_TAKE_PROFIT_PRICE_TOO_LOW",
    ),
    **_only(
        InvalidRequest,
        (
            "RFQ_INVALID_COMBO_LEGS",
            "RFQ_VALIDATION_FAILURE",
            "PREVIEW_MISSING_COMMISSION_RATE",
            "PREVIEW_INVALID_ORDER_CONFIG",
            "PREVIEW_INVALID_COMMISSION_CONFIGURATION",
            "PREVIEW_INVALID_STOP_PRICE",
            "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE",
            "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL",
            "PREVIEW_INVALID_QUOTE_SIZE_PRECISION",
            "PREVIEW_INVALID_QUOTE_SIZE_TOO_LARGE",
            "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL",
            "PREVIEW_INVALID_PRICE_TOO_LARGE",
            "PREVIEW_INVALID_END_TIME",
            "PREVIEW_INVALID_STOP_PRICE_PRECISION",
            "PREVIEW_STOP_PRICE_ABOVE_LIMIT_PRICE",
            "PREVIEW_STOP_PRICE_BELOW_LIMIT_PRICE",
            "PREVIEW_INVALID_BRACKET_ORDER_SIDE",
            "PREVIEW_INVALID_LIMIT_PRICE_PRECISION",
            "PREVIEW_INVALID_STOP_TRIGGER_PRICE_PRECISION",
            "PREVIEW_INVALID_BRACKET_LIMIT_PRICE_PRECISION",
            "PREVIEW_BELOW_MIN_SIZE_FOR_DURATION",
            "PREVIEW_NON_NUMERIC_ORDER_SIZE",
            "PREVIEW_INVALID_INTX_CLIENT_ORDER_ID",
            "PREVIEW_PREDICTIONS_QUOTE_SIZE_BELOW_MIN_CONTRACT_PRICE",
        ),
    ),
}

# --- batch_cancel results -------------------------------------------------------------------------
CANCEL_FAILURE: dict[str, ErrorClass] = {
    "UNKNOWN_CANCEL_ORDER": NotFound,
    # The order is no longer open: NotFound means "does not exist or is no longer open".
    "ORDER_IS_FULLY_FILLED": NotFound,
    "INVALID_CANCEL_REQUEST": InvalidRequest,
    "INVALID_CANCEL_PRODUCT_ID": InvalidRequest,
    "NOT_ALLOWED_TO_CANCEL": PermissionDenied,
    "COMMANDER_REJECTED_CANCEL_ORDER": OrderRejected,
    "INVALID_CANCEL_FCM_TRADING_SESSION": OrderRejected,
    "ORDER_IS_BEING_REPLACED": OrderRejected,
    # A cancel for this order is already in flight; the client re-reads the order instead.
    "DUPLICATE_CANCEL_REQUEST": OrderRejected,
    "UNKNOWN_CANCEL_FAILURE_REASON": OrderRejected,
}

# --- non-2xx bodies: {"error": <gRPC status name>} (and legacy {"errors":[{"id"}]}) ------------------
HTTP_ERROR_CODES: dict[str, ErrorClass] = {
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDenied,
    "NOT_FOUND": NotFound,
    "INVALID_ARGUMENT": InvalidRequest,
    "FAILED_PRECONDITION": InvalidRequest,
    "OUT_OF_RANGE": InvalidRequest,
    "ALREADY_EXISTS": DuplicateOrder,
    "RESOURCE_EXHAUSTED": RateLimited,
    "UNIMPLEMENTED": UnsupportedOperation,
    "UNAVAILABLE": Unavailable,
    # Legacy (Coinbase App v2 style) ids.
    "authentication_error": AuthenticationError,
    "invalid_token": AuthenticationError,
    "expired_token": AuthenticationError,
    "revoked_token": AuthenticationError,
    "invalid_scope": PermissionDenied,
    "not_found": NotFound,
    "validation_error": InvalidRequest,
    "invalid_request": InvalidRequest,
    "rate_limit_exceeded": RateLimited,
    "resource_exhausted": RateLimited,
    # Also: INTERNAL, DEADLINE_EXCEEDED, UNKNOWN, ABORTED, CANCELLED and "unknown" -> by HTTP status below.
}
# Codes whose outcome is unknown for a state-changing call: classified by status and method safety.
_SERVER_SIDE = frozenset({"INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN", "ABORTED", "CANCELLED", "unknown"})


def _lookup(table: Mapping[str, ErrorClass], code: str, default: ErrorClass) -> ErrorClass:
    return table.get(code, default)


def create_order_error(
    error_response: Mapping[str, Any] | None,
    failure_reason: str = "",
    *,
    client_order_id: str = "",
    raw: Any = None,
) -> VenueError:
    """The taxonomy error for a create-order answer with ``success: false``.

    The most specific documented field wins: ``new_order_failure_reason``, then ``error``, then
    ``preview_failure_reason``, then the top-level ``failure_reason``; ``UNKNOWN_*`` values are skipped
    in favour of a more specific one.
    """
    er = error_response or {}
    candidates = [
        er.get("new_order_failure_reason"),
        er.get("error"),
        er.get("preview_failure_reason"),
        failure_reason,
    ]
    codes = [c for c in candidates if isinstance(c, str) and c]
    specific = [c for c in codes if not c.startswith("UNKNOWN_")]
    code = (specific or codes or ["UNKNOWN_FAILURE_REASON"])[0]
    cls = _lookup(ORDER_FAILURE, code, OrderRejected)
    message = er.get("message") if isinstance(er.get("message"), str) else ""
    text = f"create order failed: {code}" + (f" ({message[:200]})" if message else "")
    if cls is DuplicateOrder:
        return DuplicateOrder(text, client_order_id=client_order_id, venue=VENUE, code=code, raw=raw)
    if cls is RateLimited:
        return RateLimited(text, venue=VENUE, code=code, raw=raw)
    # success:false means the order was NOT created, so nothing here is ambiguous; re-sending is the
    # caller's decision (never automatic), hence retry_safe stays False.
    return cls(text, venue=VENUE, code=code, raw=raw, retry_safe=False)


def cancel_error(failure_reason: str, order_id: str) -> VenueError:
    """The taxonomy error for one batch-cancel result with ``success: false``."""
    code = failure_reason or "UNKNOWN_CANCEL_FAILURE_REASON"
    cls = _lookup(CANCEL_FAILURE, code, OrderRejected)
    return cls(f"cancel of {order_id} failed: {code}", venue=VENUE, code=code)


class _ErrorBody(msgspec.Struct):
    error: str | None = None
    message: str | None = None
    error_details: str | None = None
    errors: list[dict[str, Any]] | None = None


_body_decoder = msgspec.json.Decoder(_ErrorBody)


def _body_code(body: bytes) -> tuple[str, str]:
    try:
        parsed = _body_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "", ""
    if parsed.error:
        return parsed.error, parsed.message or parsed.error_details or ""
    if parsed.errors:
        first = parsed.errors[0]
        ident = first.get("id")
        msg = first.get("message")
        return (ident if isinstance(ident, str) else ""), (msg if isinstance(msg, str) else "")
    return "", ""


def http_error_mapper(resp: HttpResponse) -> VenueError | None:
    """The transport's ``error_mapper``: the venue's error for a non-2xx response, else None.

    A 2xx is always passed through: ``success: false`` bodies are the client's to interpret.
    Returning None for an unknown code lets the transport's status-based mapping decide (which knows
    whether the request was safe to repeat, so a 5xx on a non-idempotent POST stays ambiguous).
    """
    status = resp.status
    if status < 400:
        return None
    code, message = _body_code(resp.body)
    kw: dict[str, Any] = {
        "venue": VENUE,
        "http_status": status,
        "code": code or None,
        "raw": resp.body[:2048],
    }
    text = f"{code or 'HTTP ' + str(status)}" + (f": {message[:200]}" if message else "")
    if status == 429:
        return RateLimited(text, retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw)
    if status == 401:
        return AuthenticationError(text, **kw)
    if not code or code in _SERVER_SIDE or status >= 500:
        return None
    cls = HTTP_ERROR_CODES.get(code)
    if cls is None:
        return None
    if cls is RateLimited:
        return RateLimited(text, retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw)
    return cls(text, **kw)
