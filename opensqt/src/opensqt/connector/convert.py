"""Conversions shared by the server and RemoteVenue: order filters <-> ListOrders requests, timestamps.

Errors have their own module, :mod:`opensqt.connector.errors` (the one wire form, both ways).
"""

from __future__ import annotations

from typing import Any, cast

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqvx import timeutil
from cqvx.types import OrderFilter

__all__ = ["filter_from_request", "filter_to_request", "timestamp", "to_datetime"]


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
