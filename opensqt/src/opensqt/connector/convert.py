"""Conversions shared by the server and RemoteVenue: taxonomy errors <-> gRPC status and cqc messages,
order filters <-> ListOrders requests, timestamps.

The status-code table itself lives in :data:`cqvx.errors.GRPC_STATUS` (and :func:`cqvx.errors.from_grpc`);
this module only carries the exact error (``VenueError.to_dict()``) beside it.
"""

from __future__ import annotations

import json
from typing import Any, cast

import grpc

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.venues.v1 import error_pb2
from cqvx import timeutil
from cqvx.errors import (
    GRPC_METADATA_KEY,
    GRPC_STATUS,
    ErrorKind,
    RateLimited,
    VenueError,
    error_class,
)
from cqvx.types import OrderFilter

__all__ = [
    "error_from_proto",
    "error_metadata",
    "error_to_proto",
    "filter_from_request",
    "filter_to_request",
    "status_of",
    "timestamp",
    "to_datetime",
]

_PROTO_PREFIX = "ERROR_KIND_"


def status_of(err: VenueError) -> grpc.StatusCode:
    """The gRPC status of a taxonomy error (through the one table in cqvx.errors)."""
    return GRPC_STATUS[err.kind]


def error_metadata(err: VenueError) -> tuple[tuple[str, str], ...]:
    """Trailing metadata carrying the exact error, read back by :func:`cqvx.errors.from_grpc`."""
    # to_dict() carries every field from_grpc() restores (DuplicateOrder's client_order_id included).
    return ((GRPC_METADATA_KEY, json.dumps(err.to_dict(), separators=(",", ":"), default=str)),)


def error_to_proto(err: VenueError) -> error_pb2.VenueError:
    """A taxonomy error as a cqc message (one failed item of a batch)."""
    msg = error_pb2.VenueError(
        kind=error_pb2.ErrorKind.Value(_PROTO_PREFIX + err.kind.name),
        message=err.message,
        venue=err.venue,
        code="" if err.code is None else str(err.code),
        http_status=err.http_status or 0,
        retry_safe=err.retry_safe,
    )
    if isinstance(err, RateLimited) and err.retry_after is not None:
        msg.retry_after_seconds = err.retry_after
    return msg


def error_from_proto(msg: error_pb2.VenueError) -> VenueError:
    """Rebuild the taxonomy error of a batch item."""
    name = error_pb2.ErrorKind.Name(msg.kind)
    kind = name[len(_PROTO_PREFIX) :].lower() if name.startswith(_PROTO_PREFIX) else ""
    cls = error_class(kind) if kind in ErrorKind._value2member_map_ else error_class("")
    code = msg.code or None
    http_status = msg.http_status or None
    if cls is RateLimited:
        return RateLimited(
            msg.message,
            retry_after=msg.retry_after_seconds or None,
            venue=msg.venue,
            code=code,
            http_status=http_status,
            retry_safe=msg.retry_safe,
        )
    return cls(msg.message, venue=msg.venue, code=code, http_status=http_status, retry_safe=msg.retry_safe)


# The connector's names for the one Timestamp helper (cqvx.timeutil).
timestamp = timeutil.timestamp_from_datetime
to_datetime = timeutil.to_datetime


def filter_to_request(venue: str, flt: OrderFilter | None) -> gw.ListOrdersRequest:
    req = gw.ListOrdersRequest(venue=venue)
    if flt is None:
        return req
    if flt.symbol:
        req.symbol = flt.symbol
    req.statuses.extend(cast(Any, sorted(flt.statuses)))
    req.side = flt.side  # type: ignore[assignment]
    if flt.start is not None:
        req.start_time.CopyFrom(timestamp(flt.start))
    if flt.end is not None:
        req.end_time.CopyFrom(timestamp(flt.end))
    if flt.limit is not None:
        req.page_size = flt.limit
    return req


def filter_from_request(req: gw.ListOrdersRequest, *, limit: int | None) -> OrderFilter:
    return OrderFilter(
        symbol=req.symbol or None,
        statuses=frozenset(req.statuses),
        side=req.side,
        start=to_datetime(req.start_time) if req.HasField("start_time") else None,
        end=to_datetime(req.end_time) if req.HasField("end_time") else None,
        limit=limit,
    )
