"""FalconX failures -> the cqvx taxonomy, through one explicit table.

A failure is a body ``{"status": "failure", "error": {"code": ..., "reason": ...}}`` (HTTP 200 or
4xx/5xx); the error object shape is the Go client's ``{code, reason}`` (venues.md §11).  FalconX does
not publish its code list on the public docs page (venues.md §3.2 and §10 item 4: confirm against the
authenticated portal), so the table holds the codes the adapter acts on, each with its class and
whether re-sending the same request is safe; the fake server speaks the same codes.  A code not in
the table falls back on the HTTP status, and an unknown failure of a state-changing call is never
retry-safe.  Codes are matched case-insensitively; the ``reason`` text is never interpreted.

``QUOTE_EXPIRED`` is an :class:`~cqvx.errors.OrderRejected` with ``code="quote_expired"``: the quote
did not execute and never will (request a new one).  The client's own price guard raises
``OrderRejected`` with ``code="price_guard"`` before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.transport.http import HttpResponse, parse_retry_after
from cqvx.venues.falconx import models as m
from cqvx.venues.falconx.endpoints import ORDER, QUOTES_EXECUTE, VENUE
from cqvx.venues.falconx.parse import failure

__all__ = [
    "CODES",
    "PRICE_GUARD",
    "QUOTE_EXPIRED",
    "Entry",
    "error_from_failure",
    "http_error_mapper",
]

QUOTE_EXPIRED = "quote_expired"
PRICE_GUARD = "price_guard"
QUOTE_ALREADY_EXECUTED = "quote_already_executed"


@dataclass(frozen=True, slots=True)
class Entry:
    cls: type[VenueError]
    retry_safe: bool
    what: str


CODES: dict[str, Entry] = {
    # Quotes and execution.
    "quote_expired": Entry(OrderRejected, False, "the quote expired before execution; request a new one"),
    "quote_already_executed": Entry(
        DuplicateOrder, False, "the quote was executed already; look it up, never re-execute"
    ),
    "invalid_quote_id": Entry(NotFound, False, "no such quote"),
    "quote_not_found": Entry(NotFound, False, "no such quote"),
    "order_not_found": Entry(NotFound, False, "no such order"),
    "no_liquidity": Entry(OrderRejected, False, "no price available for this pair and size"),
    "quote_unavailable": Entry(Unavailable, True, "the desk is not quoting now; nothing was done"),
    "limit_price_not_met": Entry(OrderRejected, False, "the fill-or-kill limit price could not be met"),
    "slippage_exceeded": Entry(OrderRejected, False, "price moved beyond slippage_bps"),
    "trade_limit_exceeded": Entry(OrderRejected, False, "over the account's trade limit"),
    # Funds.
    "insufficient_balance": Entry(InsufficientFunds, False, "not enough balance or credit"),
    "insufficient_funds": Entry(InsufficientFunds, False, "not enough balance or credit"),
    # Request shape.
    "invalid_request": Entry(InvalidRequest, False, "malformed request"),
    "invalid_token_pair": Entry(InvalidRequest, False, "pair not tradable for this account"),
    "invalid_quantity": Entry(InvalidRequest, False, "quantity malformed, too small or too large"),
    "quantity_too_low": Entry(InvalidRequest, False, "quantity below the minimum trade size"),
    "quantity_too_high": Entry(InvalidRequest, False, "quantity above the maximum trade size"),
    "invalid_side": Entry(InvalidRequest, False, "side must be buy, sell (or two_way for quotes)"),
    # Access.
    "unauthorized": Entry(AuthenticationError, False, "key, passphrase or signature rejected"),
    "invalid_signature": Entry(AuthenticationError, False, "signature rejected"),
    "invalid_timestamp": Entry(AuthenticationError, False, "timestamp too far from server time"),
    "forbidden": Entry(PermissionDenied, False, "key not allowed to do this"),
    # Load.
    "rate_limit_exceeded": Entry(RateLimited, True, "too many requests"),
    "internal_error": Entry(Unavailable, False, "server error; outcome of a state change unknown"),
}


def _status_error(
    status: int, state_changing: bool, message: str, code: str | None, raw: bytes
) -> VenueError:
    cls: type[VenueError]
    if status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDenied
    elif status == 404:
        cls = NotFound
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        if state_changing:
            return Timeout(message + "; outcome unknown", venue=VENUE, code=code, http_status=status, raw=raw)
        cls = Unavailable
    else:
        # A failure the venue answered in full (200/4xx) without a known code: it did not act, but
        # the same request would fail the same way.
        cls = InvalidRequest
    return cls(message, venue=VENUE, code=code, http_status=status, raw=raw)


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
    message = f"FalconX: {reason[:200] or key or 'failure'}"
    body = raw[:2048]
    entry = CODES.get(key)
    error: VenueError
    if entry is None:
        error = _status_error(http_status, state_changing, message, key or None, body)
    elif entry.cls is Unavailable and state_changing and not entry.retry_safe:
        error = Timeout(
            message + "; outcome unknown", venue=VENUE, code=key, http_status=http_status, raw=body
        )
    else:
        error = entry.cls(
            message, venue=VENUE, code=key, http_status=http_status, retry_safe=entry.retry_safe, raw=body
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
