"""WebSocket envelopes and channel events (level2, market_trades, ticker, candles, heartbeats, user)."""

from __future__ import annotations

from decimal import Decimal

from cqc.markets.v1 import candle_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.venues.v1 import order_pb2
from cqvx.errors import ParseError
from cqvx.num import dec_str
from cqvx.timeutil import CANDLE_SECONDS
from cqvx.types import TERMINAL_STATUSES
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase.errors import VENUE
from cqvx.venues.coinbase.parse._common import (
    QuoteOf,
    ToCanonical,
    _decode_list,
    _identity,
    _spot_quote,
    dec_text,
    decode,
    non_negative,
    timestamp,
)
from cqvx.venues.coinbase.parse.market import _Lvl, candle_from_model, trade_from_model
from cqvx.venues.coinbase.parse.orders import _TIF, _TYPE, _side, _status

# --- WebSocket ------------------------------------------------------------------------------------


def envelope_from_json(data: bytes | str) -> m.Envelope:
    env = decode(data, m.Envelope)
    if not 0 <= env.sequence_num < 2**63:
        raise ParseError("sequence_num: out of range", venue=VENUE)
    return env


def l2_events(env: m.Envelope) -> list[m.L2Event]:
    return _decode_list(env.events, m.L2Event)


def l2_levels(ev: m.L2Event) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(bids, asks) as validated (price, size) string pairs for :class:`cqvx.book.OrderBookL2`."""
    bids: list[tuple[str, str]] = []
    asks: list[tuple[str, str]] = []
    for u in ev.updates:
        if u.side == "bid":
            bids.append((u.price_level, u.new_quantity))
        elif u.side == "offer":
            asks.append((u.price_level, u.new_quantity))
        else:
            raise _unknown_side(u.side)
    return bids, asks


def l2_level(ev: m.L2Event) -> tuple[bool, str, str] | None:
    """The one level of an event with exactly one update (most updates of a busy feed) as
    ``(is_bid, price, size)`` for :meth:`cqvx.book.OrderBookL2.apply_level`; None for any other
    count (then :func:`l2_levels`)."""
    updates = ev.updates
    if len(updates) != 1:
        return None
    u = updates[0]
    side = u.side
    if side == "bid":
        return True, u.price_level, u.new_quantity
    if side == "offer":
        return False, u.price_level, u.new_quantity
    raise _unknown_side(side)


def _unknown_side(side: str) -> ParseError:
    return ParseError(f"l2 side: unknown value {side[:20]!r}", venue=VENUE)


def l2_messages(
    data: bytes, to_canonical: ToCanonical = _identity
) -> list[orderbook_pb2.OrderBook | orderbook_pb2.OrderBookDelta]:
    """An ``l2_data`` message -> an OrderBook per snapshot event, an OrderBookDelta per update event.

    Levels are kept in the venue's order; the envelope ``timestamp`` stamps the message (per-level
    ``event_time`` is not monotonic across batches, venues.md §1.6).
    """
    env = envelope_from_json(data)
    if env.channel != "l2_data":
        raise ParseError(f"expected l2_data, got {env.channel[:30]!r}", venue=VENUE)
    when = timestamp(env.timestamp, "timestamp")
    out: list[orderbook_pb2.OrderBook | orderbook_pb2.OrderBookDelta] = []
    for ev in l2_events(env):
        bids, asks = l2_levels(ev)
        bid_levels = [
            _Lvl(price=dec_text(p, "price_level"), quantity=dec_text(q, "new_quantity")) for p, q in bids
        ]
        ask_levels = [
            _Lvl(price=dec_text(p, "price_level"), quantity=dec_text(q, "new_quantity")) for p, q in asks
        ]
        msg: orderbook_pb2.OrderBook | orderbook_pb2.OrderBookDelta
        if ev.type == "snapshot":
            msg = orderbook_pb2.OrderBook(
                venue=VENUE,
                symbol=to_canonical(ev.product_id),
                sequence=env.sequence_num,
                bids=bid_levels,
                asks=ask_levels,
            )
        elif ev.type == "update":
            msg = orderbook_pb2.OrderBookDelta(
                venue=VENUE,
                symbol=to_canonical(ev.product_id),
                sequence=env.sequence_num,
                bids=bid_levels,
                asks=ask_levels,
            )
        else:
            raise ParseError(f"l2 event type: unknown value {ev.type[:20]!r}", venue=VENUE)
        if when is not None:
            msg.timestamp.CopyFrom(when)
        out.append(msg)
    return out


def ws_trades(env: m.Envelope, to_canonical: ToCanonical = _identity) -> list[trade_pb2.Trade]:
    return [
        trade_from_model(t, to_canonical)
        for ev in _decode_list(env.events, m.MarketTradesEvent)
        for t in ev.trades
    ]


def ws_prices(env: m.Envelope, to_canonical: ToCanonical = _identity) -> list[price_pb2.Price]:
    when = timestamp(env.timestamp, "timestamp")
    out = []
    for ev in _decode_list(env.events, m.TickerEvent):
        for t in ev.tickers:
            p = price_pb2.Price(
                venue=VENUE,
                symbol=to_canonical(t.product_id),
                last=dec_text(t.price, "price"),
                bid=dec_text(t.best_bid, "best_bid"),
                ask=dec_text(t.best_ask, "best_ask"),
                bid_size=dec_text(t.best_bid_quantity, "best_bid_quantity"),
                ask_size=dec_text(t.best_ask_quantity, "best_ask_quantity"),
            )
            if when is not None:
                p.timestamp.CopyFrom(when)
            out.append(p)
    return out


# The candles channel pushes 5-minute candles (websocket-channels page).
WS_CANDLE_INTERVAL = candle_pb2.CANDLE_INTERVAL_5MIN
WS_CANDLE_WIDTH_S = CANDLE_SECONDS[WS_CANDLE_INTERVAL]


def ws_candles(env: m.Envelope, to_canonical: ToCanonical = _identity) -> list[candle_pb2.Candle]:
    now = timestamp(env.timestamp, "timestamp")
    now_s = now.seconds if now is not None else None
    return [
        candle_from_model(c, to_canonical(c.product_id), WS_CANDLE_INTERVAL, WS_CANDLE_WIDTH_S, now_s)
        for ev in _decode_list(env.events, m.WsCandlesEvent)
        for c in ev.candles
    ]


def ws_heartbeat_counter(env: m.Envelope) -> int:
    events = _decode_list(env.events, m.WsHeartbeatEvent)
    if not events:
        raise ParseError("heartbeats: no event", venue=VENUE)
    counter = events[0].heartbeat_counter
    if isinstance(counter, str):
        if not (counter.isascii() and counter.isdigit()) or len(counter) > 20:
            raise ParseError("heartbeat_counter: not an integer", venue=VENUE)
        return int(counter)
    if counter < 0:
        raise ParseError("heartbeat_counter: negative", venue=VENUE)
    return counter


def ws_user_events(env: m.Envelope) -> list[m.UserEvent]:
    return _decode_list(env.events, m.UserEvent)


def ws_order_state(
    o: m.WsOrder, to_canonical: ToCanonical = _identity, quote_of: QuoteOf = _spot_quote
) -> order_pb2.Order:
    """A ``user`` channel order (cumulative state) as a cqc Order (fee currency from ``quote_of``)."""
    if not o.order_id:
        raise ParseError("user order: missing order_id", venue=VENUE)
    filled = non_negative(o.cumulative_quantity, "cumulative_quantity", Decimal(0))
    leaves = non_negative(o.leaves_quantity, "leaves_quantity", Decimal(0))
    post_only = o.post_only if isinstance(o.post_only, bool) else o.post_only.lower() == "true"
    out = order_pb2.Order(
        order_id=o.order_id,
        client_order_id=o.client_order_id,
        venue=VENUE,
        symbol=to_canonical(o.product_id),
        venue_symbol=o.product_id,
        side=_side(o.order_side),
        order_type=_TYPE.get(o.order_type.upper(), order_pb2.ORDER_TYPE_UNSPECIFIED),
        time_in_force=_TIF.get(o.time_in_force, order_pb2.TIME_IN_FORCE_UNSPECIFIED),
        status=_status(o.status, filled),
        price=dec_text(o.limit_price, "limit_price"),
        stop_price=dec_text(o.stop_price, "stop_price"),
        post_only=post_only,
        filled_quantity=dec_str(filled),
        remaining_quantity=dec_str(leaves),
        average_fill_price=dec_text(o.avg_price, "avg_price") if filled else "",
        total_fees=dec_text(o.total_fees, "total_fees"),
        fee_asset=quote_of(o.product_id) or "",
        rejection_reason=(o.reject_reason or o.cancel_reason)[:200],
    )
    if out.status not in TERMINAL_STATUSES:
        out.quantity = dec_str(filled + leaves)
    created = timestamp(o.creation_time, "creation_time")
    if created is not None:
        out.created_at.CopyFrom(created)
    return out
