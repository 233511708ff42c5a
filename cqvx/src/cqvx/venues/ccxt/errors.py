"""ccxt exceptions -> the cqvx taxonomy, through ONE table (:data:`ERROR_TABLE`).

Each row names a ccxt exception class and what it means for each kind of operation:

* ``read``: a query (fetch_*).  Safe to repeat, so transport failures are ``retry_safe``.
* ``write``: an order placement.  Anything that may have reached the venue (timeout, dropped
  connection, 5xx, an unparsable 200) is :class:`~cqvx.errors.Timeout` (unresolved, NOT retry-safe):
  the client looks the order up by its client order id and never re-sends it.  Only failures that
  prove the venue did not act (rate limit, maintenance answer, a rejection with an error body) are
  anything else.
* ``cancel``: like ``write``: an unanswered cancel is unresolved (the order may be gone).

The table is walked along the exception's MRO, so the most specific ccxt class wins and a ccxt
class added later lands on its nearest listed ancestor.  Exceptions that are not ccxt's (a bug in
ccxt's parsing raising ``KeyError``/``TypeError`` after the reply arrived) are :class:`ParseError`
on reads and :class:`Timeout` on writes (the request was sent).

Venue error codes: ccxt puts the venue's raw error body in the exception text
(``"<id> {json body}"``); :func:`venue_code` reads the code from it with the quirk table's key, and a
code in ``quirks.duplicate_codes`` becomes :class:`DuplicateOrder` whatever ccxt class carried it
(ccxt files Binance ``-4116`` under ``InvalidOrder``).  Likewise a code in ``quirks.pinned_codes``
decides the kind (ccxt selects Binance's per-market exception table by hostname, so the same venue
answer reached through a testnet, proxy or fake host would otherwise change class).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import ccxt

from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    ParseError,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unavailable,
    UnsupportedOperation,
    VenueError,
    error_class,
)
from cqvx.venues.ccxt.quirks import VenueQuirks

__all__ = ["ERROR_TABLE", "Op", "error_body", "map_error", "venue_code"]

Op = Literal["read", "write", "cancel"]

Factory = Callable[[str, Op], VenueError]


def _k(cls: type[VenueError], *, retry_safe: bool | None = None) -> Factory:
    def make(message: str, op: Op) -> VenueError:
        return cls(message, retry_safe=retry_safe)

    return make


def _transport(message: str, op: Op) -> VenueError:
    # The request may have reached the venue: unresolved for writes/cancels, repeatable for reads.
    if op == "read":
        return Unavailable(message, retry_safe=True)
    return Timeout(message, retry_safe=False)


def _bad_reply(message: str, op: Op) -> VenueError:
    if op == "read":
        return ParseError(message)
    return Timeout(message, retry_safe=False)


# Most specific first is not required (the MRO walk picks the nearest), but keep it readable.
ERROR_TABLE: tuple[tuple[type[BaseException], Factory], ...] = (
    (ccxt.DuplicateOrderId, _k(DuplicateOrder)),
    (ccxt.OrderNotFound, _k(NotFound)),
    (ccxt.OrderImmediatelyFillable, _k(OrderRejected)),  # post-only would cross
    (ccxt.OrderNotFillable, _k(OrderRejected)),  # FOK/IOC could not fill
    (ccxt.InvalidOrder, _k(InvalidRequest)),  # tick/lot/notional filters
    (ccxt.InsufficientFunds, _k(InsufficientFunds)),
    (ccxt.AccountSuspended, _k(PermissionDenied)),
    (ccxt.PermissionDenied, _k(PermissionDenied)),
    (ccxt.AuthenticationError, _k(AuthenticationError)),
    (ccxt.BadSymbol, _k(InvalidRequest)),
    (ccxt.BadRequest, _k(InvalidRequest)),
    (ccxt.ArgumentsRequired, _k(InvalidRequest)),
    (ccxt.NotSupported, _k(UnsupportedOperation)),
    (ccxt.OperationRejected, _k(OrderRejected)),  # MarketClosed, RestrictedLocation, NoChange
    # Answered with 429/418: the venue refused before acting.
    (ccxt.RateLimitExceeded, _k(RateLimited)),
    (ccxt.DDoSProtection, _k(RateLimited)),
    # A maintenance *answer* means nothing happened.
    (ccxt.OnMaintenance, _k(Unavailable, retry_safe=True)),
    # recvWindow/timestamp refused before acting (clock skew): safe to repeat once the clock is fixed.
    (ccxt.InvalidNonce, _k(InvalidRequest, retry_safe=True)),
    # Everything below may have acted.
    (ccxt.RequestTimeout, _transport),
    (ccxt.ExchangeNotAvailable, _transport),  # also aiohttp connection errors and 5xx
    (ccxt.NetworkError, _transport),
    (ccxt.BadResponse, _bad_reply),
    (ccxt.ExchangeError, _k(OrderRejected)),  # the venue answered with an error we do not know
    (ccxt.BaseError, _transport),
)

_BY_CLASS: dict[type[BaseException], Factory] = dict(ERROR_TABLE)


def error_body(message: str) -> Any:
    """The venue's JSON body quoted in a ccxt exception text (``"<id> {json}"``), or None."""
    start = message.find("{")
    if start < 0:
        return None
    try:
        return json.loads(message[start:])
    except ValueError:
        return None


def venue_code(quirks: VenueQuirks, message: str) -> str | None:
    """The venue's error code from a ccxt exception text, or None when it carries no JSON body."""
    body = error_body(message)
    if not isinstance(body, dict):
        return None
    code = body.get(quirks.error_code_key)
    if code is None and isinstance(data := body.get("data"), list) and data and isinstance(data[0], dict):
        code = data[0].get(quirks.error_code_key)  # OKX: per-order sCode inside data[]
    if code is None:
        code = body.get("code")
    return None if code is None else str(code)


def map_error(exc: BaseException, *, op: Op, quirks: VenueQuirks, client_order_id: str = "") -> VenueError:
    """The taxonomy error for ``exc`` raised by ccxt during an ``op`` on ``quirks.venue``."""
    if isinstance(exc, VenueError):
        return exc
    message = str(exc) or type(exc).__name__
    code = venue_code(quirks, message) if isinstance(exc, ccxt.BaseError) else None
    pinned = dict(quirks.pinned_codes).get(code) if code is not None else None
    if code is not None and code in quirks.duplicate_codes:
        err: VenueError = DuplicateOrder(message, client_order_id=client_order_id)
    elif pinned is not None:
        err = error_class(pinned)(message)
    elif isinstance(exc, ccxt.BaseError):
        factory = next((_BY_CLASS[c] for c in type(exc).__mro__ if c in _BY_CLASS), _transport)
        err = factory(message, op)
    else:
        err = _bad_reply(f"{type(exc).__name__} in ccxt: {message}", op)
    err.venue = quirks.venue
    err.code = code
    if isinstance(err, DuplicateOrder) and not err.client_order_id:
        err.client_order_id = client_order_id
    return err
