"""Coinbase Prime payloads -> cqc messages.

Rules: decimals are read from their JSON text by :func:`cqvx.num.dec` (``NaN``, ``1e400``, ``"1_000"``
refused); every failure is a :class:`~cqvx.errors.ParseError`.  A reply missing the fields that carry
its meaning (an order without id or status, a balance without holds) is a ParseError, never empty.
An order status or type this table does not know is a ParseError too: unknown is not absent.

Venue facts (venues.md §2.3 and §11, which wins):

* Total fee of an order = ``commission`` + ``exchange_fee`` (cost-plus pricing); when Prime gives
  neither, the fee is unknown and left empty (never "0").
* Balance ``amount`` includes ``holds``: available = amount - holds, locked = holds.
* The price tick of a product is ``price_increment`` (not ``quote_increment``).
* Status ``OPEN`` with a filled quantity is PARTIALLY_FILLED; ``PENDING`` is PENDING_NEW.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import msgspec

from cqc.markets.v1 import candle_pb2, instrument_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, rfq_pb2
from cqvx.errors import ParseError
from cqvx.num import dec, dec_str
from cqvx.timeutil import CANDLE_SECONDS, timestamp_from_datetime
from cqvx.types import report_from_order
from cqvx.venues.prime import models as m
from cqvx.venues.prime.endpoints import VENUE

__all__ = [
    "OrderPreview",
    "balances",
    "candles",
    "decode",
    "fill_report",
    "instruments",
    "order_of",
    "parse_time",
    "preview",
    "quote_of",
    "report_of",
]

T = TypeVar("T")

_SIDES: dict[str, order_pb2.OrderSide.ValueType] = {
    "BUY": order_pb2.ORDER_SIDE_BUY,
    "SELL": order_pb2.ORDER_SIDE_SELL,
}
_STATUS = {
    "OPEN": order_pb2.ORDER_STATUS_OPEN,
    "FILLED": order_pb2.ORDER_STATUS_FILLED,
    "CANCELLED": order_pb2.ORDER_STATUS_CANCELLED,
    "EXPIRED": order_pb2.ORDER_STATUS_EXPIRED,
    "FAILED": order_pb2.ORDER_STATUS_FAILED,
    "PENDING": order_pb2.ORDER_STATUS_PENDING_NEW,
}
# Prime type -> (cqc type, algorithm name kept in venue_extras["order_type"]).
_TYPES: dict[str, order_pb2.OrderType.ValueType] = {
    "MARKET": order_pb2.ORDER_TYPE_MARKET,
    "LIMIT": order_pb2.ORDER_TYPE_LIMIT,
    "STOP_LIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "TWAP": order_pb2.ORDER_TYPE_LIMIT,
    "VWAP": order_pb2.ORDER_TYPE_LIMIT,
    "RFQ": order_pb2.ORDER_TYPE_LIMIT,
    "PEG": order_pb2.ORDER_TYPE_LIMIT,
    "BLOCK": order_pb2.ORDER_TYPE_UNSPECIFIED,  # MARKET or LIMIT by its limit price
}
_TIF = {
    "GOOD_UNTIL_CANCELLED": order_pb2.TIME_IN_FORCE_GTC,
    "GOOD_UNTIL_DATE_TIME": order_pb2.TIME_IN_FORCE_GTD,
    "IMMEDIATE_OR_CANCEL": order_pb2.TIME_IN_FORCE_IOC,
    "FILL_OR_KILL": order_pb2.TIME_IN_FORCE_FOK,
    "UNKNOWN_TIME_IN_FORCE": order_pb2.TIME_IN_FORCE_UNSPECIFIED,
}
_BALANCE_TYPES = {
    "TRADING_BALANCES": balance_pb2.BALANCE_TYPE_SPOT,
    "VAULT_BALANCES": balance_pb2.BALANCE_TYPE_CUSTODY,
    "PRIME_CUSTODY_BALANCES": balance_pb2.BALANCE_TYPE_CUSTODY,
}
_EXEC = {
    order_pb2.ORDER_STATUS_CANCELLED: execution_pb2.EXECUTION_TYPE_CANCELLED,
    order_pb2.ORDER_STATUS_EXPIRED: execution_pb2.EXECUTION_TYPE_EXPIRED,
    order_pb2.ORDER_STATUS_FAILED: execution_pb2.EXECUTION_TYPE_FAILED,
}


def decode(data: bytes | str, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(data, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"unexpected payload shape: {str(exc)[:200]}", venue=VENUE) from None


def parse_time(value: str, what: str = "time") -> datetime:
    """RFC 3339 (``...Z`` or an offset; fractions allowed) -> aware UTC datetime."""
    text = value.strip()
    if not text or len(text) > 40 or not text.isascii():
        raise ParseError(f"{what}: not an RFC 3339 time", venue=VENUE)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"{what}: not an RFC 3339 time: {value[:40]!r}", venue=VENUE) from None
    if moment.tzinfo is None or "T" not in text.upper():
        raise ParseError(f"{what}: time without a zone", venue=VENUE)
    return moment.astimezone(UTC)


def _num(value: str | None, what: str) -> Decimal | None:
    return None if value is None or value == "" else dec(value, what, VENUE)


def _need(value: str | None, what: str) -> Decimal:
    d = _num(value, what)
    if d is None:
        raise ParseError(f"{what}: required", venue=VENUE)
    return d


def _side(name: str) -> order_pb2.OrderSide.ValueType:
    side = _SIDES.get(name.upper())
    if side is None:
        raise ParseError(f"unknown side {name[:20]!r}", venue=VENUE)
    return side


def _split(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("-")
    if not sep or not base or not quote:
        raise ParseError(f"product id {symbol[:40]!r} is not BASE-QUOTE", venue=VENUE)
    return base, quote


def total_fee(commission: str | None, exchange_fee: str | None) -> Decimal | None:
    """commission + exchange fee (venues.md §11); None when Prime gave neither."""
    c = _num(commission, "commission")
    e = _num(exchange_fee, "exchange_fee")
    if c is None and e is None:
        return None
    return (c or Decimal(0)) + (e or Decimal(0))


def order_of(o: m.Order) -> order_pb2.Order:
    status = _STATUS.get(o.status.upper())
    if status is None:
        raise ParseError(f"unknown order status {o.status[:30]!r}", venue=VENUE)
    kind = o.type.upper()
    if kind not in _TYPES:
        raise ParseError(f"unknown order type {o.type[:30]!r}", venue=VENUE)
    tif = _TIF.get((o.time_in_force or "UNKNOWN_TIME_IN_FORCE").upper())
    if tif is None:
        raise ParseError(f"unknown time in force {o.time_in_force!r:.40}", venue=VENUE)
    _, quote = _split(o.product_id)
    price = _num(o.limit_price, "limit_price")
    order_type = _TYPES[kind] or (order_pb2.ORDER_TYPE_LIMIT if price else order_pb2.ORDER_TYPE_MARKET)
    filled = _num(o.filled_quantity, "filled_quantity") or Decimal(0)
    if status == order_pb2.ORDER_STATUS_OPEN and filled > 0:
        status = order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    out = order_pb2.Order(
        order_id=o.id,
        client_order_id=o.client_order_id or "",
        venue=VENUE,
        symbol=o.product_id,
        venue_symbol=o.product_id,
        side=_side(o.side),
        order_type=order_type,
        time_in_force=tif,
        status=status,
        filled_quantity=dec_str(filled),
        post_only=bool(o.post_only),
        account_id=o.portfolio_id or "",
        fee_asset=quote,
    )
    base_qty = _num(o.base_quantity, "base_quantity")
    if base_qty is not None:
        out.quantity = dec_str(base_qty)
        out.remaining_quantity = dec_str(max(base_qty - filled, Decimal(0)))
    quote_value = _num(o.quote_value, "quote_value")
    if quote_value is not None:
        out.quote_quantity = dec_str(quote_value)
    if base_qty is None and quote_value is None:
        raise ParseError("order: base_quantity or quote_value required", venue=VENUE)
    if price is not None:
        out.price = dec_str(price)
    stop = _num(o.stop_price, "stop_price")
    if stop is not None:
        out.stop_price = dec_str(stop)
    avg = _num(o.average_filled_price, "average_filled_price")
    if avg is not None and filled > 0:
        out.average_fill_price = dec_str(avg)
    fee = total_fee(o.commission, o.exchange_fee)
    if fee is not None:
        out.total_fees = dec_str(fee)
    if o.created_at:
        out.created_at.CopyFrom(timestamp_from_datetime(parse_time(o.created_at, "created_at")))
    if o.expiry_time:
        out.expires_at.CopyFrom(timestamp_from_datetime(parse_time(o.expiry_time, "expiry_time")))
    if kind in ("TWAP", "VWAP", "BLOCK", "RFQ", "PEG"):
        out.venue_extras["order_type"] = kind
    if o.start_time:
        parse_time(o.start_time, "start_time")
        out.venue_extras["start_time"] = o.start_time
    if o.historical_pov:
        out.venue_extras["participation"] = dec_str(_need(o.historical_pov, "historical_pov"))
    return out


def report_of(order: order_pb2.Order) -> execution_pb2.ExecutionReport:
    """A report of the order's current (cumulative) state; the id derives from that state."""
    if order.status in (order_pb2.ORDER_STATUS_FILLED, order_pb2.ORDER_STATUS_PARTIALLY_FILLED):
        kind = execution_pb2.EXECUTION_TYPE_TRADE
    else:
        kind = _EXEC.get(order.status, execution_pb2.EXECUTION_TYPE_NEW)
    report = report_from_order(order, kind)
    report.fee = order.total_fees
    return report


def fill_report(f: m.Fill, client_order_id: str = "") -> execution_pb2.ExecutionReport:
    """One fill as a TRADE report; ``trade_id`` (= the fill id) lets a consumer count it once."""
    _, quote = _split(f.product_id)
    qty = _need(f.filled_quantity, "filled_quantity")
    price = _need(f.price, "price")
    if qty <= 0 or price <= 0:
        raise ParseError("fill: quantity and price must be positive", venue=VENUE)
    fee = total_fee(f.commission, f.venue_fees)
    report = execution_pb2.ExecutionReport(
        execution_id=f"fill:{f.id}",
        trade_id=f.id,
        order_id=f.order_id,
        client_order_id=client_order_id,
        venue=VENUE,
        symbol=f.product_id,
        execution_type=execution_pb2.EXECUTION_TYPE_TRADE,
        side=_side(f.side),
        last_price=dec_str(price),
        last_quantity=dec_str(qty),
        fee="" if fee is None else dec_str(fee),
        fee_asset=quote,
    )
    report.transact_time.CopyFrom(timestamp_from_datetime(parse_time(f.time, "fill time")))
    return report


def balances(data: bytes | str, balance_type: str) -> list[balance_pb2.Balance]:
    reply = decode(data, m.BalancesResponse)
    kind = _BALANCE_TYPES.get(balance_type.upper(), balance_pb2.BALANCE_TYPE_UNSPECIFIED)
    out: list[balance_pb2.Balance] = []
    for b in reply.balances:
        if not b.symbol:
            raise ParseError("balance.symbol: required", venue=VENUE)
        amount = _need(b.amount, "amount")
        holds = _need(b.holds, "holds")
        out.append(
            balance_pb2.Balance(
                venue=VENUE,
                asset=b.symbol.upper(),
                balance_type=kind,
                total=dec_str(amount),
                available=dec_str(amount - holds),  # amount includes holds (§11)
                locked=dec_str(holds),
            )
        )
    return out


def instruments(products: list[m.Product]) -> list[instrument_pb2.Instrument]:
    out: list[instrument_pb2.Instrument] = []
    for p in products:
        base, quote = _split(p.id)
        tick = _need(p.price_increment, "price_increment")
        lot = _need(p.base_increment, "base_increment")
        if tick <= 0 or lot <= 0:
            raise ParseError(f"{p.id}: increments must be positive", venue=VENUE)
        inst = instrument_pb2.Instrument(
            symbol=p.id,
            venue=VENUE,
            venue_symbol=p.id,
            instrument_type=instrument_pb2.INSTRUMENT_TYPE_SPOT,
            base_asset=base,
            quote_asset=quote,
            tick_size=dec_str(tick),
            lot_size=dec_str(lot),
            status=instrument_pb2.INSTRUMENT_STATUS_TRADING,
        )
        for field, value in (
            ("min_quantity", p.base_min_size),
            ("max_quantity", p.base_max_size),
            ("min_notional", p.quote_min_size),
        ):
            d = _num(value, field)
            if d is not None:
                setattr(inst, field, dec_str(d))
        out.append(inst)
    return out


@dataclass(frozen=True, slots=True)
class OrderPreview:
    """The answer of ``order_preview``: what the order would cost, before it is sent."""

    commission: Decimal
    slippage: Decimal
    best_bid: Decimal | None
    best_ask: Decimal | None
    average_filled_price: Decimal | None
    order_total: Decimal | None


def preview(data: bytes | str) -> OrderPreview:
    v = decode(data, m.Preview)
    return OrderPreview(
        commission=_need(v.commission, "commission"),
        slippage=_need(v.slippage, "slippage"),
        best_bid=_num(v.best_bid, "best_bid"),
        best_ask=_num(v.best_ask, "best_ask"),
        average_filled_price=_num(v.average_filled_price, "average_filled_price"),
        order_total=_num(v.order_total, "order_total"),
    )


def quote_of(
    q: m.QuoteResponse, request: rfq_pb2.QuoteRequest, created: datetime
) -> tuple[rfq_pb2.Quote, datetime]:
    """The cqc Quote of an RFQ reply and its expiry (one-sided: the price is on the asked side)."""
    price = _need(q.best_price, "best_price")
    if price <= 0:
        raise ParseError("best_price must be positive", venue=VENUE)
    expires = parse_time(q.expiration_time, "expiration_time")
    base, _ = _split(request.symbol)
    quote = rfq_pb2.Quote(
        quote_id=q.quote_id,
        venue=VENUE,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        quantity_asset=base,
        status=rfq_pb2.QUOTE_STATUS_OPEN,
        client_quote_id=request.client_quote_id,
    )
    if request.side == order_pb2.ORDER_SIDE_BUY:
        quote.buy_price = dec_str(price)
    else:
        quote.sell_price = dec_str(price)
    quote.created_at.CopyFrom(timestamp_from_datetime(created))
    quote.expires_at.CopyFrom(timestamp_from_datetime(expires))
    return quote, expires


def candles(items: list[m.Candle], symbol: str, interval: int, now: datetime) -> list[candle_pb2.Candle]:
    """Prime candles -> cqc candles, oldest first, one per bucket.

    The docs call the bucket's time ``timestamp`` without saying which end of the bucket it is; it is
    read as the bucket's start, as every other Coinbase candle API defines its time (``start`` on
    Advanced Trade, ``time`` = bucket start on Exchange).  A bucket twice is a ParseError.
    """
    width = CANDLE_SECONDS[interval]
    out: dict[int, candle_pb2.Candle] = {}
    for c in items:
        start = parse_time(c.timestamp, "candle timestamp")
        seconds = int(start.timestamp())
        if seconds in out:
            raise ParseError(f"candle {c.timestamp[:40]!r} twice", venue=VENUE)
        candle = candle_pb2.Candle(
            venue=VENUE,
            symbol=symbol,
            interval=candle_pb2.CandleInterval.ValueType(interval),
            open=dec_str(_need(c.open, "candle open")),
            high=dec_str(_need(c.high, "candle high")),
            low=dec_str(_need(c.low, "candle low")),
            close=dec_str(_need(c.close, "candle close")),
            volume=dec_str(_need(c.volume, "candle volume")),
            is_closed=seconds + width <= now.timestamp(),
        )
        candle.open_time.CopyFrom(timestamp_from_datetime(start))
        candle.close_time.seconds = seconds + width
        candle.close_time.nanos = candle.open_time.nanos
        out[seconds] = candle
    return [out[k] for k in sorted(out)]
