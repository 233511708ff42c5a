"""The one error wire form over gRPC, both ways: taxonomy error <-> status code + ``VenueError`` detail.

A failed call leaves the connector as the standard rich error model: the status code from
:data:`GRPC_STATUS` (the one table between the :mod:`cqvx.errors` taxonomy and gRPC codes) and a
``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer whose details hold one
``cqc.venues.v1.VenueError`` carrying the exact kind and its fields (message, venue, code, HTTP
status, retry_safe, retry_after, the duplicate's client order id / order id, attempts).  Any gRPC
client can read it with its language's rich-status helper; :func:`from_grpc` is the Python one.

The table is many-to-one in places (INVALID_ARGUMENT, FAILED_PRECONDITION), which is why the exact
kind travels in the detail.  Without a detail (the call failed before reaching the connector's code)
INTERNAL/UNKNOWN/CANCELLED read as :class:`~cqvx.errors.Timeout`: the effect is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.rpc import status_pb2  # type: ignore[import-untyped]  # googleapis-common-protos: no stubs

from cqc.venues.v1 import error_pb2
from cqvx.errors import DuplicateOrder, ErrorKind, RateLimited, VenueError, error_class

__all__ = [
    "DETAILS_KEY",
    "GRPC_STATUS",
    "error_from_proto",
    "error_to_proto",
    "from_grpc",
    "status_details",
    "status_of",
    "venue_error_detail",
]

DETAILS_KEY = "grpc-status-details-bin"
_PROTO_PREFIX = "ERROR_KIND_"

GRPC_STATUS: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.AUTHENTICATION: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.INSUFFICIENT_FUNDS: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.DUPLICATE_ORDER: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.ORDER_REJECTED: grpc.StatusCode.ABORTED,
    ErrorKind.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.UNSUPPORTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorKind.PARSE: grpc.StatusCode.DATA_LOSS,
}
_FROM_STATUS: dict[grpc.StatusCode, ErrorKind] = {}
for _kind, _code in GRPC_STATUS.items():
    _FROM_STATUS.setdefault(_code, _kind)
# Status codes a server may produce that have no class of their own.
_FROM_STATUS.update(
    {
        grpc.StatusCode.CANCELLED: ErrorKind.TIMEOUT,
        grpc.StatusCode.UNKNOWN: ErrorKind.TIMEOUT,
        grpc.StatusCode.INTERNAL: ErrorKind.TIMEOUT,
        grpc.StatusCode.OUT_OF_RANGE: ErrorKind.INVALID_REQUEST,
    }
)


def status_of(err: VenueError) -> grpc.StatusCode:
    """The gRPC status code of a taxonomy error."""
    return GRPC_STATUS[err.kind]


def error_to_proto(err: VenueError) -> error_pb2.VenueError:
    """A taxonomy error as a cqc message (a failed call's detail, or one failed item of a batch)."""
    msg = error_pb2.VenueError(
        kind=error_pb2.ErrorKind.Value(_PROTO_PREFIX + err.kind.name),
        message=err.message,
        venue=err.venue,
        code="" if err.code is None else str(err.code),
        http_status=err.http_status or 0,
        retry_safe=err.retry_safe,
        attempts=err.attempts if err.attempts > 1 else 0,
    )
    if isinstance(err, RateLimited) and err.retry_after is not None:
        msg.retry_after_seconds = err.retry_after
    if isinstance(err, DuplicateOrder):
        msg.client_order_id = err.client_order_id
        msg.order_id = err.order_id
    return msg


def _kind_of(msg: error_pb2.VenueError) -> ErrorKind | None:
    name = error_pb2.ErrorKind.Name(msg.kind)
    value = name[len(_PROTO_PREFIX) :].lower() if name.startswith(_PROTO_PREFIX) else ""
    return ErrorKind(value) if value in ErrorKind._value2member_map_ else None


def error_from_proto(msg: error_pb2.VenueError, *, default_kind: ErrorKind | None = None) -> VenueError:
    """Rebuild the taxonomy error (every field the message carries)."""
    kind = _kind_of(msg) or default_kind
    cls = error_class(kind.value if kind is not None else "")
    kwargs: dict[str, Any] = {
        "venue": msg.venue,
        "code": msg.code or None,
        "http_status": msg.http_status or None,
        "retry_safe": msg.retry_safe,
    }
    err: VenueError
    if cls is RateLimited:
        err = RateLimited(msg.message, retry_after=msg.retry_after_seconds or None, **kwargs)
    elif cls is DuplicateOrder:
        err = DuplicateOrder(
            msg.message, client_order_id=msg.client_order_id, order_id=msg.order_id, **kwargs
        )
    else:
        err = cls(msg.message, **kwargs)
    err.attempts = max(1, msg.attempts)
    return err


def status_details(err: VenueError) -> tuple[tuple[str, bytes], ...]:
    """The trailing metadata of a failed call: ``google.rpc.Status`` with the ``VenueError`` detail."""
    status = status_pb2.Status(code=status_of(err).value[0], message=err.message)
    status.details.add().Pack(error_to_proto(err))
    return ((DETAILS_KEY, status.SerializeToString()),)


def venue_error_detail(
    trailing_metadata: Sequence[tuple[str, str | bytes]] | None,
) -> error_pb2.VenueError | None:
    """The ``VenueError`` detail of a call's trailers, or None when the connector sent none."""
    for key, value in trailing_metadata or ():
        if key != DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # a malformed trailer is no detail; the status code still says enough
            return None
        for any_msg in status.details:
            if any_msg.Is(error_pb2.VenueError.DESCRIPTOR):
                detail = error_pb2.VenueError()
                any_msg.Unpack(detail)
                return detail
    return None


def from_grpc(
    code: grpc.StatusCode,
    details: str | None,
    trailing_metadata: Sequence[tuple[str, str | bytes]] | None = None,
) -> VenueError:
    """Rebuild a taxonomy error from a gRPC status and its rich details (when present)."""
    fallback = _FROM_STATUS.get(code, ErrorKind.TIMEOUT)
    detail = venue_error_detail(trailing_metadata)
    if detail is not None:
        err = error_from_proto(detail, default_kind=fallback)
        if not err.message:
            err.message = details or code.name
            err.args = (err.message,)
        return err
    return error_class(fallback)(details or code.name)
