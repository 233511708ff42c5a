"""Coinbase Prime WebSocket protocol pieces: the signed subscribe and the channel payloads.

These are the wire facts the Prime streams are built from (venues.md §2.4 and §8; docs
https://docs.cdp.coinbase.com/prime/websocket-feed/overview and /channels); the connection handling
is :mod:`cqvx.venues.prime.feed`.

* :func:`subscribe_message`: every subscribe/unsubscribe is signed: base64(HMAC-SHA256(signing key raw,
  channel + access_key + svc_account_id + timestamp + portfolio_id + product ids joined with no
  separator)), the signed timestamp string equal to the one sent (integer seconds, as the official
  samples).  It must reach the server within 5 s of connecting (:data:`SUBSCRIBE_DEADLINE_S`); at most
  :data:`MAX_PRODUCTS_PER_CONNECTION` products per connection; ``orders`` needs the portfolio id.
* :func:`decode_envelope`: ``{"channel", "timestamp", "sequence_num", "events"}``; ``sequence_num``
  rises by one per message on a connection (a jump = lost messages: resubscribe for a snapshot).
* :func:`l2_levels`: an ``l2_data`` event (``snapshot`` / ``update``) as ``(price, size)`` bid and ask
  pairs for :class:`cqvx.book.OrderBookL2` (fields ``px`` / ``qty``, sides ``bid`` / ``offer``; a
  size of 0 removes the level).
* :func:`ws_order`: an ``orders`` event entry (cumulative state: ``cum_qty``, ``leaves_qty``,
  ``avg_px``, ``fees``, ``status``) as an ``order_pb2.Order``, ready for a cumulative-state fill
  tracker (each fill derived once from increases of ``cum_qty``).  Empty fields are omitted by Prime.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from cqc.venues.v1 import order_pb2
from cqvx.auth.hmac import prime_ws_signature
from cqvx.errors import InvalidRequest, ParseError
from cqvx.num import dec, dec_str
from cqvx.secrets import Secret
from cqvx.venues.prime.endpoints import VENUE

__all__ = [
    "CHANNELS",
    "MAX_PRODUCTS_PER_CONNECTION",
    "SUBSCRIBE_DEADLINE_S",
    "Envelope",
    "decode_envelope",
    "l2_levels",
    "subscribe_message",
    "ws_order",
]

SUBSCRIBE_DEADLINE_S = 5.0
MAX_PRODUCTS_PER_CONNECTION = 10
CHANNELS = frozenset({"heartbeats", "products", "orders", "l2_data"})

_WS_STATUS = {
    "OPEN": order_pb2.ORDER_STATUS_OPEN,
    "FILLED": order_pb2.ORDER_STATUS_FILLED,
    "CANCELLED": order_pb2.ORDER_STATUS_CANCELLED,
    "EXPIRED": order_pb2.ORDER_STATUS_EXPIRED,
    "FAILED": order_pb2.ORDER_STATUS_FAILED,
    "PENDING": order_pb2.ORDER_STATUS_PENDING_NEW,
}
_WS_SIDES: dict[str, order_pb2.OrderSide.ValueType] = {
    "BUY": order_pb2.ORDER_SIDE_BUY,
    "SELL": order_pb2.ORDER_SIDE_SELL,
}


def subscribe_message(
    channel: str,
    *,
    access_key: str,
    passphrase: Secret,
    signing_key: Secret,
    svc_account_id: str,
    timestamp: str,
    portfolio_id: str = "",
    product_ids: tuple[str, ...] = (),
    unsubscribe: bool = False,
) -> dict[str, object]:
    if channel not in CHANNELS:
        raise InvalidRequest(f"unknown Prime channel {channel[:30]!r}", venue=VENUE)
    if len(product_ids) > MAX_PRODUCTS_PER_CONNECTION:
        raise InvalidRequest(
            f"Prime allows at most {MAX_PRODUCTS_PER_CONNECTION} products per connection", venue=VENUE
        )
    if channel == "orders" and not portfolio_id:
        raise InvalidRequest("the orders channel needs the portfolio id", venue=VENUE)
    if not timestamp.isdigit():
        raise InvalidRequest("the subscribe timestamp is integer Unix seconds", venue=VENUE)
    signature = prime_ws_signature(
        signing_key,
        channel=channel,
        access_key=access_key,
        svc_account_id=svc_account_id,
        timestamp=timestamp,
        portfolio_id=portfolio_id,
        product_ids=product_ids,
    )
    return {
        "type": "unsubscribe" if unsubscribe else "subscribe",
        "channel": channel,
        "access_key": access_key,
        "api_key_id": svc_account_id,
        "timestamp": timestamp,
        "passphrase": passphrase.reveal(),
        "signature": signature,
        "portfolio_id": portfolio_id,
        "product_ids": list(product_ids),
    }


class Envelope(msgspec.Struct):
    channel: str
    events: list[dict[str, object]]
    sequence_num: int
    timestamp: str | None = None


def decode_envelope(data: bytes | str) -> Envelope:
    try:
        env = msgspec.json.decode(data, type=Envelope)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"unexpected Prime WebSocket message: {str(exc)[:200]}", venue=VENUE) from None
    if env.sequence_num < 0:
        raise ParseError("negative sequence_num", venue=VENUE)
    return env


def _text(event: dict[str, object], key: str, *, required: bool = True) -> str:
    value = event.get(key)
    if value is None or value == "":
        if required:
            raise ParseError(f"{key}: required", venue=VENUE)
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{key}: not a string", venue=VENUE)
    return value


def l2_levels(
    event: dict[str, object],
) -> tuple[bool, str, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """``(is_snapshot, product_id, bids, asks)`` of one ``l2_data`` event."""
    kind = _text(event, "type")
    if kind not in ("snapshot", "update"):
        raise ParseError(f"unknown l2_data event type {kind[:20]!r}", venue=VENUE)
    product = _text(event, "product_id")
    updates = event.get("updates")
    if not isinstance(updates, list):
        raise ParseError("l2_data event without updates", venue=VENUE)
    bids: list[tuple[Decimal, Decimal]] = []
    asks: list[tuple[Decimal, Decimal]] = []
    for u in updates:
        if not isinstance(u, dict):
            raise ParseError("l2_data update is not an object", venue=VENUE)
        side = _text(u, "side")
        price = dec(_text(u, "px"), "px", VENUE)
        size = dec(_text(u, "qty"), "qty", VENUE)
        if price <= 0 or size < 0:
            raise ParseError("l2_data level with a non-positive price or negative size", venue=VENUE)
        if side == "bid":
            bids.append((price, size))
        elif side == "offer":
            asks.append((price, size))
        else:
            raise ParseError(f"unknown l2_data side {side[:20]!r}", venue=VENUE)
    return kind == "snapshot", product, bids, asks


def ws_order(entry: dict[str, object]) -> order_pb2.Order:
    """One ``orders`` channel entry (cumulative state) as an Order; fees = ``fees`` (total)."""
    status = _WS_STATUS.get(_text(entry, "status").upper())
    if status is None:
        raise ParseError(f"unknown order status {entry.get('status')!r:.30}", venue=VENUE)
    side = _WS_SIDES.get(_text(entry, "side").upper())
    if side is None:
        raise ParseError("unknown order side", venue=VENUE)
    product = _text(entry, "product_id")
    base, sep, quote = product.partition("-")
    if not sep or not base or not quote:
        raise ParseError(f"product id {product[:40]!r} is not BASE-QUOTE", venue=VENUE)
    cum = dec(_text(entry, "cum_qty", required=False) or "0", "cum_qty", VENUE)
    leaves_text = _text(entry, "leaves_qty", required=False)
    order = order_pb2.Order(
        order_id=_text(entry, "order_id"),
        client_order_id=_text(entry, "client_order_id", required=False),
        venue=VENUE,
        symbol=product,
        venue_symbol=product,
        side=side,
        status=status,
        filled_quantity=dec_str(cum),
        fee_asset=quote,
    )
    if status == order_pb2.ORDER_STATUS_OPEN and cum > 0:
        order.status = order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    if leaves_text:
        leaves = dec(leaves_text, "leaves_qty", VENUE)
        order.remaining_quantity = dec_str(leaves)
        order.quantity = dec_str(cum + leaves)
    avg = _text(entry, "avg_px", required=False)
    if avg and cum > 0:
        order.average_fill_price = dec_str(dec(avg, "avg_px", VENUE))
    fees = _text(entry, "fees", required=False)
    if fees:
        order.total_fees = dec_str(dec(fees, "fees", VENUE))
    limit = _text(entry, "limit_px", required=False)
    if limit:
        order.price = dec_str(dec(limit, "limit_px", VENUE))
    kind = _text(entry, "order_type", required=False).upper()
    order.order_type = {
        "MARKET": order_pb2.ORDER_TYPE_MARKET,
        "LIMIT": order_pb2.ORDER_TYPE_LIMIT,
        "STOP_LIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    }.get(kind, order_pb2.ORDER_TYPE_LIMIT if limit else order_pb2.ORDER_TYPE_UNSPECIFIED)
    if kind in ("TWAP", "VWAP", "BLOCK", "PEG"):
        order.venue_extras["order_type"] = kind
    return order
