"""The one error taxonomy every venue maps into.

Each venue adapter owns an explicit code table (``venues/<venue>/errors.py``) that turns the venue's
own error codes into one of these classes; nothing here string-matches messages.  Every error knows
whether retrying the *same* request is safe.  This module knows nothing about transports: the gRPC
connector owns the one table between these classes and status codes (``opensqt.connector.errors``),
so a remote caller sees the same class, with the same fields, as an in-process one.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

__all__ = [
    "AmbiguousOutcome",
    "AuthenticationError",
    "DuplicateOrder",
    "ErrorKind",
    "InsufficientFunds",
    "InvalidRequest",
    "NotFound",
    "OrderRejected",
    "ParseError",
    "PermissionDenied",
    "RateLimited",
    "Timeout",
    "Unavailable",
    "UnsupportedOperation",
    "VenueError",
    "error_class",
    "redact",
]


class ErrorKind(enum.StrEnum):
    """Stable names for the taxonomy; also the wire form in cqc messages (``cqc.venues.v1.ErrorKind``)."""

    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    INVALID_REQUEST = "invalid_request"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NOT_FOUND = "not_found"
    DUPLICATE_ORDER = "duplicate_order"
    ORDER_REJECTED = "order_rejected"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"
    PARSE = "parse"


# Keys whose values are secrets wherever they appear in a payload, a header map or a query string.
_SECRET_KEYS = re.compile(
    r"(secret|passphrase|password|private[_-]?key|signature|api[_-]?key|access[_-]?key|token|"
    r"authorization|cb-access-sign|cb-access-key|x-signature|fx-access|jwt|pem)",
    re.IGNORECASE,
)
REDACTED = "***"
# A "key": "value" pair whose key looks secret, in text that is not (or no longer) valid JSON; an
# unterminated value (cut off by truncation) is covered to the end of the text.
_SECRET_PAIR = re.compile(
    r'("[^"\\]*(?:' + _SECRET_KEYS.pattern[1:-1] + r')[^"\\]*"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)',
    re.IGNORECASE,
)


def redact(value: Any, _depth: int = 0) -> Any:
    """Return a copy of a payload with every secret-looking field replaced by ``***``.

    Works on the shapes venue payloads come in: mappings, sequences, and JSON text.  Used before a raw
    payload is attached to an error, so an exception or log line never carries a credential.
    """
    if _depth > 20:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) else redact(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.dumps(redact(json.loads(stripped), _depth + 1))
            except ValueError:
                pass
        # JSON that did not parse (typically a body cut to a size limit): secret-named fields still go.
        value = _SECRET_PAIR.sub(lambda m: m.group(1) + '"***"', value)
        # Bearer tokens and JWTs inside free text.
        value = re.sub(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+", "Bearer ***", value)
        return re.sub(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", REDACTED, value)
    return value


class VenueError(Exception):
    """Base of the taxonomy.

    ``retry_safe`` answers one question: may the caller send the *same* request again without risk of
    doing the thing twice?  It is a class default that an adapter may override per instance (a 5xx on
    an idempotent GET is retry-safe; the same 5xx on an order placement without a client order id is
    not).
    """

    kind: ClassVar[ErrorKind] = ErrorKind.UNAVAILABLE
    default_retry_safe: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        venue: str = "",
        code: str | None = None,
        http_status: int | None = None,
        retry_safe: bool | None = None,
        raw: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.venue = venue
        self.code = code
        self.http_status = http_status
        self.retry_safe = self.default_retry_safe if retry_safe is None else retry_safe
        self.raw = redact(raw) if raw is not None else None
        # Set only by an operation over many items that went on after a failure (e.g.
        # ``cancel_all_orders``): what did succeed, and ``(item id, its error)`` for each failure.
        self.completed: tuple[Any, ...] = ()
        self.failures: tuple[tuple[str, VenueError], ...] = ()
        # How many times a lower layer (the HTTP transport) already sent this request before giving up.
        # > 1 means the retry owner for this failure class has spent its budget: callers above it must
        # not retry the same failure again (no stacked retries; docs/architecture.md "One retry owner").
        self.attempts = 1

    @property
    def retried(self) -> bool:
        """True when a lower layer already retried this request and gave up."""
        return self.attempts > 1

    def with_partial(self, *, completed: Sequence[Any], failures: Sequence[tuple[str, VenueError]]) -> Self:
        """Attach the outcome of a partly failed multi-item operation; returns ``self`` to raise."""
        self.completed = tuple(completed)
        self.failures = tuple(failures)
        return self

    def __str__(self) -> str:
        parts = [self.message]
        if self.venue:
            parts.append(f"venue={self.venue}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, venue={self.venue!r}, code={self.code!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description, for logs and JSON APIs (gRPC carries the cqc ``VenueError`` message)."""
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "message": self.message,
            "venue": self.venue,
            "code": self.code,
            "http_status": self.http_status,
            "retry_safe": self.retry_safe,
            # Crosses the wire so a remote caller knows the venue-side retry owner already retried.
            "attempts": self.attempts,
        }
        if isinstance(self, RateLimited):
            out["retry_after"] = self.retry_after
        if isinstance(self, DuplicateOrder):
            # The ids the caller must look the existing order up by (never re-send).
            if self.client_order_id:
                out["client_order_id"] = self.client_order_id
            if self.order_id:
                out["order_id"] = self.order_id
        return out


class AuthenticationError(VenueError):
    """Credentials missing, malformed, expired or rejected."""

    kind = ErrorKind.AUTHENTICATION


class PermissionDenied(VenueError):
    """Credentials valid but not allowed to do this (key scope, account restriction, IP allow-list)."""

    kind = ErrorKind.PERMISSION


class InvalidRequest(VenueError):
    """The request is malformed or violates an instrument rule (tick, lot, min notional)."""

    kind = ErrorKind.INVALID_REQUEST


class InsufficientFunds(VenueError):
    """Not enough available balance or margin for the order."""

    kind = ErrorKind.INSUFFICIENT_FUNDS


class NotFound(VenueError):
    """The order, instrument or resource does not exist (or is no longer open)."""

    kind = ErrorKind.NOT_FOUND


class DuplicateOrder(VenueError):
    """The client order id was already used; resolve by fetching that order, never by re-sending."""

    kind = ErrorKind.DUPLICATE_ORDER

    def __init__(self, message: str, *, client_order_id: str = "", order_id: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.client_order_id = client_order_id
        # The venue's id of the existing order, when the venue said.
        self.order_id = order_id


class OrderRejected(VenueError):
    """The venue refused the order on its merits (post-only would cross, FOK unfillable, ...)."""

    kind = ErrorKind.ORDER_REJECTED


class RateLimited(VenueError):
    """Too many requests; ``retry_after`` is seconds to wait when the venue said so."""

    kind = ErrorKind.RATE_LIMITED
    default_retry_safe = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unavailable(VenueError):
    """The venue or the connection is down, overloaded or in maintenance; the request did not happen."""

    kind = ErrorKind.UNAVAILABLE
    default_retry_safe = True


class Timeout(VenueError):
    """The outcome is unknown: the request may or may not have taken effect (timeout, reset, 5xx).

    For an order placement this is the *unresolved* outcome: resolve it by looking the order up by its
    client order id, never by re-sending blindly.
    """

    kind = ErrorKind.TIMEOUT


AmbiguousOutcome = Timeout


class UnsupportedOperation(VenueError):
    """This venue (or this adapter) does not offer the operation."""

    kind = ErrorKind.UNSUPPORTED


class ParseError(VenueError):
    """A venue payload (or any external input) did not have the documented shape."""

    kind = ErrorKind.PARSE


_BY_KIND: dict[ErrorKind, type[VenueError]] = {
    cls.kind: cls
    for cls in (
        AuthenticationError,
        PermissionDenied,
        InvalidRequest,
        InsufficientFunds,
        NotFound,
        DuplicateOrder,
        OrderRejected,
        RateLimited,
        Unavailable,
        Timeout,
        UnsupportedOperation,
        ParseError,
    )
}


def error_class(kind: ErrorKind | str) -> type[VenueError]:
    """The class for a kind name (unknown names map to :class:`Unavailable`, never retry-safe)."""
    try:
        return _BY_KIND[ErrorKind(kind)]
    except ValueError:
        return Unavailable
