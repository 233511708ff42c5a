"""Venue error codes -> the cqvx taxonomy: the shape of a code-table row and the rules every REST
venue's mapper applies around its table (``venues/<venue>/errors.py`` holds the table itself).

Rules (:func:`classify`):

* A code in the table maps to its row's class with the row's ``retry_safe``.
* An :class:`~cqvx.errors.Unavailable` row that is not retry-safe (a server error that may have acted),
  answered to a state-changing call, is :class:`~cqvx.errors.Timeout`: the outcome is unknown, resolve it
  by lookup, never re-send.
* A code not in the table (or no code) falls back on the HTTP status.  On a state-changing call the
  venue answered in a way we cannot read, so unless the status itself says the request was refused
  before it was processed (401, 403, 429) the outcome is unknown: :class:`~cqvx.errors.Timeout`.
  Elsewhere: 401 AuthenticationError, 403 PermissionDenied, 404 NotFound, 429 RateLimited, 5xx
  Unavailable, any other status InvalidRequest (the same request would fail the same way).

Rows carry ``documented``: False marks a row the venue's public docs do not list, kept because the
adapter must act on the distinction; its table says why, and tests list the documented rows apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqvx.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)

__all__ = ["Code", "classify"]

# Statuses that mean "refused before it was processed" whatever the body says.
_NOT_PROCESSED = {401: AuthenticationError, 403: PermissionDenied, 429: RateLimited}


@dataclass(frozen=True, slots=True)
class Code:
    """One row of a venue's code table."""

    cls: type[VenueError]
    retry_safe: bool  # may the same request be sent again?
    what: str = ""  # when the code's name does not say it
    http_status: int = 0  # the status the venue documents for it (0: not documented)
    documented: bool = True


def _by_status(status: int) -> type[VenueError]:
    known = _NOT_PROCESSED.get(status)
    if known is not None:
        return known
    if status == 404:
        return NotFound
    if status >= 500:
        return Unavailable
    return InvalidRequest


def classify(
    venue: str,
    row: Code | None,
    *,
    code: str,
    message: str,
    http_status: int,
    state_changing: bool,
    raw: bytes,
) -> VenueError:
    """The taxonomy error of one venue failure (``row``: the table's row for ``code``, or None)."""
    body = raw[:2048]
    if row is None:
        unknown = code or None
        if state_changing and http_status not in _NOT_PROCESSED:
            return Timeout(
                f"{message}; outcome unknown", venue=venue, code=unknown, http_status=http_status, raw=body
            )
        return _by_status(http_status)(message, venue=venue, code=unknown, http_status=http_status, raw=body)
    if row.cls is Unavailable and state_changing and not row.retry_safe:
        return Timeout(
            f"{message}; outcome unknown", venue=venue, code=code, http_status=http_status, raw=body
        )
    return row.cls(
        message, venue=venue, code=code, http_status=http_status, retry_safe=row.retry_safe, raw=body
    )
