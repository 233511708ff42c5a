"""FalconX failures -> the cqvx taxonomy, through one explicit table.

A failure is a body ``{"status": "failure", "error": {"code": ..., "reason": ...}}`` (HTTP 200 or
4xx/5xx); the error object shape is the Go client's ``{code, reason}`` (venues.md §11).  FalconX does
not publish its code list on the public docs page (venues.md §3.2 and §10 item 4: confirm against the
authenticated portal), so the table holds the codes the adapter acts on, each with its class and
whether re-sending the same request is safe, every row marked ``documented=False``; the fake server
speaks the same codes.  A code not in the table falls back on the HTTP status, and on a
state-changing call (execute, order) it is an unknown outcome (:func:`cqvx.venues.codes.classify`):
resolved by looking the quote up, never re-sent.  Codes are matched case-insensitively; the
``reason`` text is never interpreted.

``QUOTE_EXPIRED`` is an :class:`~cqvx.errors.OrderRejected` with ``code="quote_expired"``: the quote
did not execute and never will (request a new one).  The client's own price guard raises
``OrderRejected`` with ``code="price_guard"`` before anything is sent.
"""

from __future__ import annotations

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
    VenueError,
)
from cqvx.transport.http import HttpResponse, parse_retry_after
from cqvx.venues.codes import Code, classify
from cqvx.venues.falconx import models as m
from cqvx.venues.falconx.endpoints import ORDER, QUOTES_EXECUTE, VENUE
from cqvx.venues.falconx.parse import failure

__all__ = [
    "CODES",
    "PRICE_GUARD",
    "QUOTE_EXPIRED",
    "error_from_failure",
    "http_error_mapper",
]

QUOTE_EXPIRED = "quote_expired"
PRICE_GUARD = "price_guard"
QUOTE_ALREADY_EXECUTED = "quote_already_executed"


def _row(cls: type[VenueError], retry_safe: bool, what: str) -> Code:
    # FalconX publishes no code list (module docstring): every row is marked as not from the docs.
    return Code(cls, retry_safe, what, documented=False)


CODES: dict[str, Code] = {
    # Quotes and execution.
    "quote_expired": _row(OrderRejected, False, "the quote expired before execution; request a new one"),
    "quote_already_executed": _row(
        DuplicateOrder, False, "the quote was executed already; look it up, never re-execute"
    ),
    "invalid_quote_id": _row(NotFound, False, "no such quote"),
    "quote_not_found": _row(NotFound, False, "no such quote"),
    "order_not_found": _row(NotFound, False, "no such order"),
    "no_liquidity": _row(OrderRejected, False, "no price available for this pair and size"),
    "quote_unavailable": _row(Unavailable, True, "the desk is not quoting now; nothing was done"),
    "limit_price_not_met": _row(OrderRejected, False, "the fill-or-kill limit price could not be met"),
    "slippage_exceeded": _row(OrderRejected, False, "price moved beyond slippage_bps"),
    "trade_limit_exceeded": _row(OrderRejected, False, "over the account's trade limit"),
    # Funds.
    "insufficient_balance": _row(InsufficientFunds, False, "not enough balance or credit"),
    "insufficient_funds": _row(InsufficientFunds, False, "not enough balance or credit"),
    # Request shape.
    "invalid_request": _row(InvalidRequest, False, "malformed request"),
    "invalid_token_pair": _row(InvalidRequest, False, "pair not tradable for this account"),
    "invalid_quantity": _row(InvalidRequest, False, "quantity malformed, too small or too large"),
    "quantity_too_low": _row(InvalidRequest, False, "quantity below the minimum trade size"),
    "quantity_too_high": _row(InvalidRequest, False, "quantity above the maximum trade size"),
    "invalid_side": _row(InvalidRequest, False, "side must be buy, sell (or two_way for quotes)"),
    # Access.
    "unauthorized": _row(AuthenticationError, False, "key, passphrase or signature rejected"),
    "invalid_signature": _row(AuthenticationError, False, "signature rejected"),
    "invalid_timestamp": _row(AuthenticationError, False, "timestamp too far from server time"),
    "forbidden": _row(PermissionDenied, False, "key not allowed to do this"),
    # Load.
    "rate_limit_exceeded": _row(RateLimited, True, "too many requests"),
    "internal_error": _row(Unavailable, False, "server error; outcome of a state change unknown"),
}


def error_from_failure(
    envelope: m.Status,
    *,
    http_status: int,
    state_changing: bool,
    raw: bytes,
    retry_after: float | None = None,
) -> VenueError:
    """The taxonomy error of a ``status: failure`` body."""
    err = envelope.error
    code = ""
    reason = ""
    if isinstance(err, m.FxError):
        code = "" if err.code is None else str(err.code)
        reason = err.reason or ""
    elif isinstance(err, str):
        reason = err
    key = code.strip().lower()[:64]
    error = classify(
        VENUE,
        CODES.get(key),
        code=key,
        message=f"FalconX: {reason[:200] or key or 'failure'}",
        http_status=http_status,
        state_changing=state_changing,
        raw=raw,
    )
    if isinstance(error, RateLimited) and error.retry_after is None:
        error.retry_after = retry_after
    return error


def http_error_mapper(resp: HttpResponse) -> VenueError | None:
    """The transport's mapper: a ``status: failure`` body (any HTTP status) through :data:`CODES`;
    None for a success, and for a non-JSON error body (the transport's generic mapping applies)."""
    body = resp.body
    if resp.ok and b'"failure"' not in body:
        return None  # fast path: a success never needs decoding twice
    envelope = failure(body)
    if envelope is None or (envelope.status or "").lower() != "failure":
        return None
    return error_from_failure(
        envelope,
        http_status=resp.status,
        state_changing=resp.request_path.split("?")[0].endswith((QUOTES_EXECUTE, ORDER)),
        raw=body,
        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
    )
