"""Conversions shared by the server and RemoteVenue: order filters <-> ListOrders requests, timestamps.

Errors have their own module, :mod:`opensqt.connector.errors` (the one wire form, both ways).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf import timestamp_pb2

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqvx.types import OrderFilter

__all__ = ["filter_from_request", "filter_to_request", "timestamp", "to_datetime"]


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return ts


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


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
