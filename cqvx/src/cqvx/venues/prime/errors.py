"""Coinbase Prime failures -> the cqvx taxonomy, through explicit tables.

An error body is ``{"code", "message", "subcode", "trace_id"}`` (Error Dictionary,
https://docs.cdp.coinbase.com/api-reference/prime-api/rest-api/errors; venues.md §2.3).  Every
documented ``code`` is in :data:`CODES` with its class and whether re-sending the same request is safe.
A ``subcode`` refines the code through :data:`SUBCODES`; a subcode not in the table falls back on its
code, a code not in the table on the HTTP status.  ``message`` is never interpreted.

Subcodes: the Error Dictionary's own example (``ORDER_RESOURCE_NOT_FOUND``) is documented.  The other
subcodes below are the ones the adapter must act on (funds, duplicate client order id, expired quote);
their exact names could not be confirmed from the public page at the time of writing (venues.md §10
style open question) and are marked ``confirmed=False``: check them against the Error Dictionary.

A 5xx or ``INTERNAL_ERROR`` answer to a state-changing call (create, cancel, accept quote) leaves the
outcome unknown: it becomes :class:`~cqvx.errors.Timeout` (resolve by lookup, never re-send).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    Timeout,
    Unavailable,
    UnsupportedOperation,
    VenueError,
)
from cqvx.transport.http import HttpResponse, parse_retry_after
from cqvx.venues.prime import models as m
from cqvx.venues.prime.endpoints import VENUE

__all__ = ["CODES", "QUOTE_EXPIRED", "SUBCODES", "Entry", "error_from_body", "http_error_mapper"]

QUOTE_EXPIRED = "quote_expired"


@dataclass(frozen=True, slots=True)
class Entry:
    cls: type[VenueError]
    retry_safe: bool
    what: str
    http_status: int = 0
    confirmed: bool = True


# Every documented code (Error Dictionary "Error codes" table, with its HTTP status).
CODES: dict[str, Entry] = {
    "AUTHENTICATION_FAILED": Entry(AuthenticationError, False, "credentials or signature rejected", 401),
    "FAILED_PRECONDITION": Entry(OrderRejected, False, "a required precondition was not met", 400),
    "INTERNAL_ERROR": Entry(Unavailable, False, "server error; a state change may have happened", 500),
    "NOT_IMPLEMENTED": Entry(UnsupportedOperation, False, "endpoint or operation not implemented", 501),
    "PERMISSION_DENIED": Entry(PermissionDenied, False, "the key may not do this", 403),
    "RATE_LIMIT_EXCEEDED": Entry(RateLimited, True, "too many requests (30 s cool-off per IP)", 429),
    "REQUIRED_FIELD_MISSING": Entry(InvalidRequest, False, "a required field is missing", 400),
    "RESOURCE_NOT_FOUND": Entry(NotFound, False, "no such resource", 404),
    "SERVICE_UNAVAILABLE": Entry(Unavailable, True, "service unavailable; nothing was done", 503),
    "VALIDATION_ERROR": Entry(InvalidRequest, False, "the request failed validation", 400),
}

SUBCODES: dict[str, Entry] = {
    "ORDER_RESOURCE_NOT_FOUND": Entry(NotFound, False, "no order with this id"),
    "INSUFFICIENT_FUNDS": Entry(InsufficientFunds, False, "not enough balance", confirmed=False),
    "INSUFFICIENT_BALANCE": Entry(InsufficientFunds, False, "not enough balance", confirmed=False),
    "DUPLICATE_CLIENT_ORDER_ID": Entry(
        DuplicateOrder, False, "an active order already uses this client order id", confirmed=False
    ),
    "QUOTE_EXPIRED": Entry(OrderRejected, False, "the quote expired; request a new one", confirmed=False),
}

# Paths whose failure leaves a state change unknown.
_STATE_CHANGING = ("/order", "/cancel", "/accept_quote")


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
        cls = InvalidRequest
    return cls(message, venue=VENUE, code=code, http_status=status, raw=raw)


def error_from_body(
    body: m.ErrorBody,
    *,
    http_status: int,
    state_changing: bool,
    raw: bytes,
    retry_after: float | None = None,
) -> VenueError:
    code = (body.code or "").strip().upper()[:64]
    sub = (body.subcode or "").strip().upper()[:64]
    message = f"Prime: {(body.message or '')[:200] or sub or code or 'error'}"
    raw = raw[:2048]
    entry = SUBCODES.get(sub) if sub else None
    key = sub if entry is not None else code
    if entry is None:
        entry = CODES.get(code)
    error: VenueError
    if entry is None:
        error = _status_error(http_status, state_changing, message, key or None, raw)
    elif entry.cls is Unavailable and state_changing and not entry.retry_safe:
        error = Timeout(
            message + "; outcome unknown", venue=VENUE, code=key, http_status=http_status, raw=raw
        )
    else:
        error = entry.cls(
            message,
            venue=VENUE,
            code=key.lower(),
            http_status=http_status,
            retry_safe=entry.retry_safe,
            raw=raw,
        )
    if isinstance(error, RateLimited) and error.retry_after is None:
        error.retry_after = retry_after if retry_after is not None else 30.0 if http_status == 429 else None
    return error


def http_error_mapper(resp: HttpResponse) -> VenueError | None:
    """The transport's mapper: None for a success and for a non-JSON error body (the transport's
    generic HTTP-status mapping applies then)."""
    if resp.ok:
        return None
    try:
        body = msgspec.json.decode(resp.body, type=m.ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not body.code and not body.subcode:
        return None
    path = resp.request_path.split("?")[0]
    return error_from_body(
        body,
        http_status=resp.status,
        state_changing=path.endswith(_STATE_CHANGING),
        raw=resp.body,
        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
    )
