"""FalconX payloads -> cqc messages.

Rules: numbers are read from their raw JSON text (string or number) by :func:`cqvx.num.dec`, so a
price is exact and ``NaN``, ``1e400``, ``"1_000"`` or a boolean is refused; every failure is a
:class:`~cqvx.errors.ParseError`.  A reply missing a field that carries its meaning (an executed quote
without a price, a quote without an id) is a ParseError too, never an empty value.

Quote status: ``is_filled`` true is EXECUTED; otherwise the quote is OPEN until ``t_expiry`` and
EXPIRED after it (FalconX keeps no other state for a quote).  The executed price is
``price_executed`` when present, else the ``buy_price`` / ``sell_price`` of the executed side (the
order response carries no ``price_executed``; venues.md §11).
"""

from __future__ import annotations

import decimal
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import msgspec
from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import instrument_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, rfq_pb2
from cqvx.errors import ParseError
from cqvx.num import dec, dec_str
from cqvx.timeutil import timestamp_from_datetime
from cqvx.types import report_from_order
from cqvx.venues.falconx import models as m
from cqvx.venues.falconx.endpoints import VENUE

__all__ = [
    "QuoteView",
    "balances",
    "decode_quote",
    "decode_quotes",
    "instruments",
    "num",
    "order_of",
    "quote_of",
    "report_of",
    "view",
]

T = TypeVar("T")

_SIDES = {"buy": order_pb2.ORDER_SIDE_BUY, "sell": order_pb2.ORDER_SIDE_SELL}
_TWO_WAY = frozenset({"two_way", "two-way"})
# Base quantity of a quote-denominated fill = quote value / price, truncated (never rounded up) to
# this many decimal places: finer than any token's smallest unit.
_QUANT = Decimal("1e-18")


def _decode(data: bytes | str, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(data, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"unexpected payload shape: {str(exc)[:200]}", venue=VENUE) from None


def num(raw: msgspec.Raw | None, field: str) -> Decimal | None:
    """An exact Decimal from a raw JSON value (number or decimal string); ``None`` for null/absent."""
    if raw is None:
        return None
    text = bytes(raw)
    if text == b"null":
        return None
    if text[:1] == b'"':
        try:
            value: object = msgspec.json.decode(text, type=str)
        except msgspec.DecodeError:
            raise ParseError(f"{field}: not a string", venue=VENUE) from None
    else:
        try:
            value = text.decode("ascii")
        except UnicodeDecodeError:
            raise ParseError(f"{field}: not a number", venue=VENUE) from None
    return dec(value, field, VENUE)


def _required(raw: msgspec.Raw | None, field: str) -> Decimal:
    value = num(raw, field)
    if value is None:
        raise ParseError(f"{field}: required", venue=VENUE)
    return value


def _time(text: str | None, field: str) -> datetime | None:
    if text is None or text == "":
        return None
    if len(text) > 64:
        raise ParseError(f"{field}: not an ISO 8601 time", venue=VENUE)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"{field}: not an ISO 8601 time: {text[:40]!r}", venue=VENUE) from None
    # Naive times are UTC by the platform's convention (FalconX sends +00:00).
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ts(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    try:
        return timestamp_from_datetime(moment)
    except (ValueError, OverflowError):
        raise ParseError("time out of range", venue=VENUE) from None


class QuoteView:
    """A validated quote: exact numbers, parsed times, derived status; built once per payload."""

    __slots__ = (
        "base",
        "buy_price",
        "client_order_id",
        "executed_at",
        "executed_price",
        "expires_at",
        "fee_usd",
        "filled",
        "limit_price",
        "order_type",
        "quantity",
        "quantity_token",
        "quote_id",
        "quote_token",
        "quoted_at",
        "sell_price",
        "side_executed",
        "side_requested",
    )

    def __init__(self, q: m.Quote) -> None:
        if not q.fx_quote_id:
            raise ParseError("fx_quote_id: required", venue=VENUE)
        self.quote_id = q.fx_quote_id
        self.base = q.token_pair.base_token
        self.quote_token = q.token_pair.quote_token
        if not self.base or not self.quote_token:
            raise ParseError("token_pair: base_token and quote_token required", venue=VENUE)
        self.quantity_token = q.quantity_requested.token
        if self.quantity_token not in (self.base, self.quote_token):
            raise ParseError("quantity_requested.token is neither token of the pair", venue=VENUE)
        self.quantity = _required(q.quantity_requested.value, "quantity_requested.value")
        side = q.side_requested.lower()
        if side not in _SIDES and side not in _TWO_WAY:
            raise ParseError(f"side_requested: unknown {q.side_requested[:20]!r}", venue=VENUE)
        self.side_requested = _SIDES.get(side, order_pb2.ORDER_SIDE_UNSPECIFIED)
        self.buy_price = num(q.buy_price, "buy_price")
        self.sell_price = num(q.sell_price, "sell_price")
        self.quoted_at = _time(q.t_quote, "t_quote")
        self.expires_at = _time(q.t_expiry, "t_expiry")
        if self.expires_at is None:
            raise ParseError("t_expiry: required", venue=VENUE)
        self.client_order_id = q.client_order_id or ""
        self.order_type = (q.order_type or "").lower()
        self.limit_price = num(q.limit_price, "limit_price")
        self.fee_usd = num(q.fee_usd, "fee_usd")
        self.filled = q.is_filled
        self.side_executed = order_pb2.ORDER_SIDE_UNSPECIFIED
        self.executed_price: Decimal | None = None
        self.executed_at = _time(q.t_execute, "t_execute")
        if self.filled:
            executed = (q.side_executed or "").lower()
            if executed not in _SIDES:
                raise ParseError("side_executed: required on a filled quote", venue=VENUE)
            self.side_executed = _SIDES[executed]
            price = num(q.price_executed, "price_executed")
            if price is None:
                price = self.buy_price if executed == "buy" else self.sell_price
            if price is None or price <= 0:
                raise ParseError("a filled quote without its executed price", venue=VENUE)
            self.executed_price = price
        elif self.buy_price is None and self.sell_price is None:
            raise ParseError("a quote without any price", venue=VENUE)

    @property
    def symbol(self) -> str:
        return f"{self.base}-{self.quote_token}"

    def expired(self, now: datetime) -> bool:
        assert self.expires_at is not None
        return not self.filled and now >= self.expires_at

    def price_for(self, side: int) -> Decimal | None:
        return self.buy_price if side == order_pb2.ORDER_SIDE_BUY else self.sell_price

    def base_quantity(self) -> Decimal:
        """Filled base quantity: exact for base-denominated quotes, truncated down otherwise."""
        if self.quantity_token == self.base:
            return self.quantity
        assert self.executed_price is not None
        ctx = decimal.Context(prec=60, rounding=decimal.ROUND_DOWN)
        return ctx.divide(self.quantity, self.executed_price).quantize(_QUANT, rounding=decimal.ROUND_DOWN)


def view(q: m.Quote) -> QuoteView:
    return QuoteView(q)


def decode_quote(data: bytes | str) -> QuoteView:
    return QuoteView(_decode(data, m.Quote))


def decode_quotes(data: bytes | str) -> list[QuoteView]:
    return [QuoteView(q) for q in _decode(data, list[m.Quote])]


def quote_of(v: QuoteView, now: datetime) -> rfq_pb2.Quote:
    status = (
        rfq_pb2.QUOTE_STATUS_EXECUTED
        if v.filled
        else rfq_pb2.QUOTE_STATUS_EXPIRED
        if v.expired(now)
        else rfq_pb2.QUOTE_STATUS_OPEN
    )
    out = rfq_pb2.Quote(
        quote_id=v.quote_id,
        venue=VENUE,
        symbol=v.symbol,
        side=v.side_requested,
        buy_price=dec_str(v.buy_price),
        sell_price=dec_str(v.sell_price),
        quantity=dec_str(v.quantity),
        quantity_asset=v.quantity_token,
        status=status,
        executed_side=v.side_executed,
        executed_price=dec_str(v.executed_price),
        client_quote_id=v.client_order_id,
    )
    if (t := _ts(v.quoted_at)) is not None:
        out.created_at.CopyFrom(t)
    if (t := _ts(v.expires_at)) is not None:
        out.expires_at.CopyFrom(t)
    return out


def order_of(v: QuoteView, now: datetime, *, order_reply: bool = False) -> order_pb2.Order:
    """A quote or order as a cqc Order: FILLED when executed, EXPIRED past expiry, else OPEN.

    ``order_reply``: the answer to a placement (market or fill-or-kill): unfilled means killed, so
    EXPIRED whatever the quote's expiry says (nothing rests at FalconX).
    """
    side = v.side_executed or v.side_requested
    limit = v.order_type == "limit"
    out = order_pb2.Order(
        order_id=v.quote_id,
        client_order_id=v.client_order_id,
        venue=VENUE,
        symbol=v.symbol,
        venue_symbol=v.symbol,
        side=side,
        order_type=order_pb2.ORDER_TYPE_LIMIT if limit else order_pb2.ORDER_TYPE_MARKET,
        time_in_force=order_pb2.TIME_IN_FORCE_FOK if limit else order_pb2.TIME_IN_FORCE_UNSPECIFIED,
        price=dec_str(v.limit_price),
    )
    if v.quantity_token == v.base:
        out.quantity = dec_str(v.quantity)
    else:
        out.quote_quantity = dec_str(v.quantity)
    if v.filled:
        out.status = order_pb2.ORDER_STATUS_FILLED
        out.filled_quantity = dec_str(v.base_quantity())
        out.remaining_quantity = "0"
        out.average_fill_price = dec_str(v.executed_price)
        if v.fee_usd is not None:
            out.total_fees = dec_str(v.fee_usd)
            out.fee_asset = "USD"
    else:
        dead = order_reply or v.expired(now)
        out.status = order_pb2.ORDER_STATUS_EXPIRED if dead else order_pb2.ORDER_STATUS_OPEN
        out.filled_quantity = "0"
    if (t := _ts(v.quoted_at)) is not None:
        out.created_at.CopyFrom(t)
    if (t := _ts(v.executed_at)) is not None:
        out.updated_at.CopyFrom(t)
    if (t := _ts(v.expires_at)) is not None:
        out.expires_at.CopyFrom(t)
    return out


def report_of(v: QuoteView, now: datetime, *, order_reply: bool = False) -> execution_pb2.ExecutionReport:
    """The execution report of a placement or execute: one fill for a filled quote (its id is the
    quote id, so a replay de-duplicates), EXPIRED for one that did not fill (see :func:`order_of`)."""
    order = order_of(v, now, order_reply=order_reply)
    if not v.filled:
        expired = order.status == order_pb2.ORDER_STATUS_EXPIRED
        kind = execution_pb2.EXECUTION_TYPE_EXPIRED if expired else execution_pb2.EXECUTION_TYPE_NEW
        return report_from_order(order, kind)
    report = report_from_order(order, execution_pb2.EXECUTION_TYPE_TRADE, execution_id=v.quote_id)
    report.last_price = order.average_fill_price
    report.last_quantity = order.filled_quantity
    report.trade_id = v.quote_id
    report.fee = order.total_fees
    report.liquidity = execution_pb2.LIQUIDITY_SIDE_TAKER
    if order.HasField("updated_at"):
        report.transact_time.CopyFrom(order.updated_at)
    return report


def balances(data: bytes | str, platform: str = "") -> list[balance_pb2.Balance]:
    out: list[balance_pb2.Balance] = []
    for b in _decode(data, list[m.Balance]):
        if not b.token:
            raise ParseError("balance.token: required", venue=VENUE)
        if platform and b.platform and b.platform != platform:
            continue
        amount = dec_str(_required(b.balance, "balance"))
        out.append(
            balance_pb2.Balance(
                venue=VENUE,
                account_id=b.platform or "",
                asset=b.token,
                balance_type=balance_pb2.BALANCE_TYPE_SPOT,
                total=amount,
                available=amount,
                locked="0",
            )
        )
    return out


def instruments(data: bytes | str) -> list[instrument_pb2.Instrument]:
    out: list[instrument_pb2.Instrument] = []
    for p in _decode(data, list[m.Pair]):
        if not p.base_token or not p.quote_token:
            raise ParseError("pair: base_token and quote_token required", venue=VENUE)
        symbol = f"{p.base_token}-{p.quote_token}"
        out.append(
            instrument_pb2.Instrument(
                symbol=symbol,
                venue=VENUE,
                venue_symbol=symbol,
                instrument_type=instrument_pb2.INSTRUMENT_TYPE_SPOT,
                base_asset=p.base_token,
                quote_asset=p.quote_token,
                status=instrument_pb2.INSTRUMENT_STATUS_TRADING,
            )
        )
    return out


def failure(data: bytes) -> m.Status | None:
    """The envelope of an object body, or None when the body is not one (a list, not JSON)."""
    try:
        return msgspec.json.decode(data, type=m.Status)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
