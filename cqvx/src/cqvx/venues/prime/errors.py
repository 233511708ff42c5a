"""Coinbase Prime failures -> the cqvx taxonomy, through explicit tables of
:class:`~cqvx.venues.codes.Code` rows.

An error body is ``{"code", "message", "subcode", "trace_id"}`` (Error Dictionary,
https://docs.cdp.coinbase.com/api-reference/prime-api/rest-api/errors; venues.md §2.3).  Every
documented ``code`` is in :data:`CODES` with its documented HTTP status, its class and whether
re-sending the same request is safe.  A ``subcode`` refines the code through :data:`SUBCODES`; a
subcode not in the table falls back on its code, a code not in the table on the HTTP status (and on a
state-changing call to "outcome unknown", :func:`cqvx.venues.codes.classify`).  ``message`` is never
interpreted.

Subcodes: the Error Dictionary's published example, ``ORDER_RESOURCE_NOT_FOUND``, is the only subcode
the public page shows; its full subcode list could not be read from the public docs.  The other rows
are marked ``documented=False`` and each is kept because the adapter acts on the distinction:
``INSUFFICIENT_FUNDS`` (the engine treats missing funds apart from a bad request),
``DUPLICATE_CLIENT_ORDER_ID`` (the create path then looks the existing order up and reports its id)
and ``QUOTE_EXPIRED`` (``code="quote_expired"``, the same code FalconX gives: request a new quote).
Should Prime spell them differently, the answer falls back on its code (FAILED_PRECONDITION ->
OrderRejected, VALIDATION_ERROR -> InvalidRequest), never retry-safe, so nothing is re-sent.

A 5xx or ``INTERNAL_ERROR`` answer to a state-changing call (create, cancel, accept quote) leaves the
outcome unknown: it becomes :class:`~cqvx.errors.Timeout` (resolve by lookup, never re-send).
"""

from __future__ import annotations

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
from cqvx.venues.codes import Code, classify
from cqvx.venues.prime import models as m
from cqvx.venues.prime.endpoints import VENUE

__all__ = ["CODES", "QUOTE_EXPIRED", "SUBCODES", "error_from_body", "http_error_mapper"]

QUOTE_EXPIRED = "quote_expired"

# Every documented code (Error Dictionary "Error codes" table, with its HTTP status).
CODES: dict[str, Code] = {
    "AUTHENTICATION_FAILED": Code(AuthenticationError, False, "credentials or signature rejected", 401),
    "FAILED_PRECONDITION": Code(OrderRejected, False, "a required precondition was not met", 400),
    "INTERNAL_ERROR": Code(Unavailable, False, "server error; a state change may have happened", 500),
    "NOT_IMPLEMENTED": Code(UnsupportedOperation, False, "endpoint or operation not implemented", 501),
    "PERMISSION_DENIED": Code(PermissionDenied, False, "the key may not do this", 403),
    "RATE_LIMIT_EXCEEDED": Code(RateLimited, True, "too many requests (30 s cool-off per IP)", 429),
    "REQUIRED_FIELD_MISSING": Code(InvalidRequest, False, "a required field is missing", 400),
    "RESOURCE_NOT_FOUND": Code(NotFound, False, "no such resource", 404),
    "SERVICE_UNAVAILABLE": Code(Unavailable, True, "service unavailable; nothing was done", 503),
    "VALIDATION_ERROR": Code(InvalidRequest, False, "the request failed validation", 400),
}

SUBCODES: dict[str, Code] = {
    # The Error Dictionary's own example.
    "ORDER_RESOURCE_NOT_FOUND": Code(NotFound, False, "no order with this id"),
    # Not on the public page; kept for the reasons in the module docstring.
    "INSUFFICIENT_FUNDS": Code(InsufficientFunds, False, "not enough balance", documented=False),
    "DUPLICATE_CLIENT_ORDER_ID": Code(
        DuplicateOrder, False, "an active order already uses this client order id", documented=False
    ),
    "QUOTE_EXPIRED": Code(OrderRejected, False, "the quote expired; request a new one", documented=False),
}

# Paths whose failure leaves a state change unknown.
_STATE_CHANGING = ("/order", "/cancel", "/accept_quote")


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
    row = SUBCODES.get(sub) if sub else None
    key = sub if row is not None else code
    if row is None:
        row = CODES.get(code)
    error = classify(
        VENUE,
        row,
        code=key.lower(),
        message=message,
        http_status=http_status,
        state_changing=state_changing,
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
