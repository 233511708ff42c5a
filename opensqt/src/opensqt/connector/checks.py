"""Request validation shared by the connector's RPCs: what the venue must never see.

Every failure is :class:`~cqvx.errors.InvalidRequest` naming the field (INVALID_ARGUMENT on the wire);
a capability the venue's client lacks is :class:`~cqvx.errors.UnsupportedOperation` (UNIMPLEMENTED).
"""

from __future__ import annotations

from collections.abc import Mapping

from cqc.venues.v1 import order_pb2
from cqvx.client import VenueClient
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.num import dec, excerpt

__all__ = ["VenueSet", "check_decimal", "check_order", "check_symbol", "ref_ids", "unsupported"]


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


def unsupported(venue: str, rpc: str, protocol: str) -> UnsupportedOperation:
    return UnsupportedOperation(
        f"{rpc}: venue {venue!r} does not support it (its client does not implement {protocol})", venue=venue
    )
