"""Request validation shared by the connector's RPCs: what the venue must never see.

Every failure is :class:`~cqvx.errors.InvalidRequest` naming the field (INVALID_ARGUMENT on the wire);
a capability the venue's client lacks is :class:`~cqvx.errors.UnsupportedOperation` (UNIMPLEMENTED).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from cqc.venues.v1 import order_pb2
from cqvx.client import VenueClient
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import dec, excerpt
from cqvx.timeutil import to_datetime

__all__ = [
    "VenueSet",
    "check_decimal",
    "check_order",
    "check_start",
    "check_symbol",
    "ref_ids",
    "unsupported",
]


class VenueSet:
    """The served venues by name; :meth:`get` is the one lookup every request goes through."""

    def __init__(self, venues: Mapping[str, VenueClient]) -> None:
        self.by_name = dict(venues)

    def get(self, name: str) -> VenueClient:
        serving = ", ".join(sorted(self.by_name))
        if not name:
            raise InvalidRequest(f"venue: required (serving: {serving})")
        client = self.by_name.get(name)
        if client is None:
            raise InvalidRequest(f"venue: unknown venue {name!r} (serving: {serving})")
        return client


def check_decimal(value: str, field: str, *, positive: bool) -> None:
    # cqvx.num.dec is the one parser (ASCII decimal grammar, bounded exponent); its message names the
    # field and quotes a bounded excerpt of the input.
    try:
        d = dec(value, field)
    except ParseError as err:
        raise InvalidRequest(err.message) from None
    if positive and d <= 0:
        raise InvalidRequest(f"{field}: must be greater than zero, got {excerpt(value)}")
    if not positive and d < 0:
        raise InvalidRequest(f"{field}: must not be negative, got {excerpt(value)}")


def check_order(order: order_pb2.Order, venue: str, path: str) -> order_pb2.Order:
    """Reject an order the venue must never see; returns a copy with ``venue`` filled in."""
    if not order.client_order_id:
        raise InvalidRequest(f"{path}.client_order_id: required (it makes placement safely retryable)")
    if not order.symbol:
        raise InvalidRequest(f"{path}.symbol: required")
    if order.side == order_pb2.ORDER_SIDE_UNSPECIFIED:
        raise InvalidRequest(f"{path}.side: required")
    if order.order_type == order_pb2.ORDER_TYPE_UNSPECIFIED:
        raise InvalidRequest(f"{path}.order_type: required")
    if order.venue and order.venue != venue:
        raise InvalidRequest(f"{path}.venue: {order.venue!r} does not match the request venue {venue!r}")
    if not order.quantity and not order.quote_quantity:
        raise InvalidRequest(f"{path}.quantity: required (or quote_quantity)")
    if order.quantity:
        check_decimal(order.quantity, f"{path}.quantity", positive=True)
    if order.quote_quantity:
        check_decimal(order.quote_quantity, f"{path}.quote_quantity", positive=True)
    if order.price:
        check_decimal(order.price, f"{path}.price", positive=True)
    elif order.order_type in (order_pb2.ORDER_TYPE_LIMIT, order_pb2.ORDER_TYPE_STOP_LIMIT):
        raise InvalidRequest(f"{path}.price: required for a limit order")
    if order.stop_price:
        check_decimal(order.stop_price, f"{path}.stop_price", positive=True)
    if order.leverage:
        check_decimal(order.leverage, f"{path}.leverage", positive=True)
    if order.venue:
        return order
    copy = order_pb2.Order()
    copy.CopyFrom(order)
    copy.venue = venue
    return copy


def ref_ids(ref: order_pb2.OrderRef, path: str) -> tuple[str, str | None, str | None]:
    which = ref.WhichOneof("id")
    if which == "order_id" and ref.order_id:
        return ref.symbol, ref.order_id, None
    if which == "client_order_id" and ref.client_order_id:
        return ref.symbol, None, ref.client_order_id
    raise InvalidRequest(f"{path}: give exactly one of order_id or client_order_id")


def check_symbol(symbol: str, field: str = "symbol") -> str:
    if not symbol:
        raise InvalidRequest(f"{field}: required")
    return symbol


# 1970-01-01 .. 9999-12-31T23:59:59Z: the span a venue's epoch-milliseconds and datetime both hold.
_MAX_SECONDS = 253_402_300_799


def check_start(request: Any, field: str = "start_time") -> datetime | None:
    """The request's optional start time as a UTC datetime; a Timestamp outside the epoch span or with
    out-of-range nanos is refused rather than handed to the venue as a nonsense window."""
    if not request.HasField(field):
        return None
    ts: Timestamp = getattr(request, field)
    if not 0 <= ts.seconds <= _MAX_SECONDS or not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidRequest(
            f"{field}: not a valid time (seconds={ts.seconds}, nanos={ts.nanos}; 1970..9999 UTC)"
        )
    return to_datetime(ts)


def unsupported(venue: str, rpc: str, protocol: str) -> UnsupportedOperation:
    return UnsupportedOperation(
        f"{rpc}: venue {venue!r} does not support it (its client does not implement {protocol})", venue=venue
    )
