"""Advanced Trade payloads -> cqc messages.

Every public function takes the raw bytes (or a decoded model) and returns cqc messages; anything that
does not have the documented shape raises :class:`~cqvx.errors.ParseError` and nothing else.  Decimal
fields are validated and printed canonically; timestamps (RFC 3339 with up to nanoseconds, or Unix
seconds for candles) go straight into ``google.protobuf.Timestamp`` without a datetime detour.

Semantics worth knowing (sources in venues.md §1.4-§1.6 and the channel docs):

* REST order ``status`` ``OPEN`` with a filled part is PARTIALLY_FILLED here; ``pending_cancel`` and
  ``CANCEL_QUEUED`` are PENDING_CANCEL; ``QUEUED``/``PENDING`` are PENDING_NEW.
* ``level2`` messages arrive on channel ``l2_data``; sides are ``bid``/``offer``; ``new_quantity`` is
  the absolute size (``0`` removes the level).
* ``market_trades`` ``side`` is the MAKER side (websocket-channels page), so the aggressor is the
  opposite; REST ``/products/{id}/ticker`` trades use the same convention.
* The ``user`` channel reports cumulative order state; fills are derived by the stream from deltas.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any, TypeVar

import msgspec
from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import candle_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2
from cqvx.errors import ParseError, VenueError
from cqvx.num import dec, dec_str
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase.errors import VENUE, cancel_error, create_order_error

__all__ = [
    "FuturesBalanceSummary",
    "ToCanonical",
    "accounts_from_json",
    "balance_from_account",
    "best_bid_ask_from_json",
    "book_from_json",
    "cancel_results_from_json",
    "candles_from_json",
    "create_order_from_json",
    "dec_text",
    "decode",
    "envelope_from_json",
    "fill_report",
    "fills_from_json",
    "futures_balance_from_json",
    "instrument_from_product",
    "market_trades_from_json",
    "order_from_json",
    "order_from_model",
    "orders_page_from_json",
    "position_from_fcm",
    "position_from_json",
    "positions_from_json",
    "products_from_json",
    "timestamp",
    "trade_from_model",
]

T = TypeVar("T")
# Product id -> canonical symbol (spot product ids already are canonical: identity by default).
ToCanonical = Callable[[str], str]


def _identity(product_id: str) -> str:
    return product_id


# --- decoding ---------------------------------------------------------------------------------

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(data: bytes | str, type_: type[T]) -> T:
    """Decode JSON into a model; any malformed input is a :class:`ParseError`."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        result: T = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"{type_.__name__}: {str(exc)[:160]}", venue=VENUE) from None
    return result


def _decode_list(data: bytes, type_: type[T]) -> list[T]:
    key = ("list", type_)
    decoder = _decoders.get(key)
    if decoder is None:
        decoder = _decoders[key] = msgspec.json.Decoder(list[type_])  # type: ignore[valid-type]
    try:
        result: list[T] = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"{type_.__name__} events: {str(exc)[:160]}", venue=VENUE) from None
    return result


# --- scalars ----------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?\s*"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
# The largest second a Timestamp may carry (9999-12-31T23:59:59Z).
_MAX_SECONDS = 253_402_300_799


def _unix_seconds(text: str, field: str) -> int:
    """Unix seconds from a digit string; ``str.isdigit`` also accepts "²", which ``int`` refuses."""
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) > _MAX_SECONDS:
        raise ParseError(f"{field}: not Unix seconds: {text[:20]!r}", venue=VENUE)
    return int(text)


def timestamp(text: str | None, field: str = "time") -> Timestamp | None:
    """RFC 3339 (any fraction up to ns, ``Z`` or offset) or Unix seconds -> Timestamp; empty/zero -> None."""
    if not text:
        return None
    if text.isdigit():
        return Timestamp(seconds=_unix_seconds(text, field))
    mt = _RFC3339.match(text)
    if mt is None:
        raise ParseError(f"{field}: not an RFC 3339 time: {text[:40]!r}", venue=VENUE)
    y, mo, d, h, mi, s, frac, zone = mt.groups()
    year, month, day, hour, minute, sec = int(y), int(mo), int(d), int(h), int(mi), int(s)
    if year <= 1:
        return None  # Go's zero time "0001-01-01T00:00:00Z" means "not set" on the user channel
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec <= 60):
        raise ParseError(f"{field}: time out of range: {text[:40]!r}", venue=VENUE)
    seconds = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return Timestamp(seconds=seconds, nanos=nanos)


_PLAIN_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def dec_text(value: str | None, field: str) -> str:
    """Validate a decimal string and print it canonically; empty stays empty.

    Venue numbers are almost always plain non-negative decimals ("68923.660"), which are validated by
    a regular expression and canonicalised by trimming the fraction: same result as
    ``dec_str(dec(value))``, several times faster.  Anything else takes the Decimal path.
    """
    if not value:
        return ""
    if _PLAIN_DECIMAL.fullmatch(value):
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        return value
    return dec_str(dec(value, field, VENUE))


_SIDE: dict[str, order_pb2.OrderSide.ValueType] = {
    "BUY": order_pb2.ORDER_SIDE_BUY,
    "SELL": order_pb2.ORDER_SIDE_SELL,
}

_TIF: dict[str, order_pb2.TimeInForce.ValueType] = {
    "GOOD_UNTIL_CANCELLED": order_pb2.TIME_IN_FORCE_GTC,
    "GOOD_UNTIL_DATE_TIME": order_pb2.TIME_IN_FORCE_GTD,
    "IMMEDIATE_OR_CANCEL": order_pb2.TIME_IN_FORCE_IOC,
    "FILL_OR_KILL": order_pb2.TIME_IN_FORCE_FOK,
}

# REST status (venues.md §1.4 enumerations) and user-channel status (channels page).
_STATUS: dict[str, order_pb2.OrderStatus.ValueType] = {
    "PENDING": order_pb2.ORDER_STATUS_PENDING_NEW,
    "QUEUED": order_pb2.ORDER_STATUS_PENDING_NEW,
    "OPEN": order_pb2.ORDER_STATUS_OPEN,
    "FILLED": order_pb2.ORDER_STATUS_FILLED,
    "CANCELLED": order_pb2.ORDER_STATUS_CANCELLED,
    "CANCEL_QUEUED": order_pb2.ORDER_STATUS_PENDING_CANCEL,
    "EXPIRED": order_pb2.ORDER_STATUS_EXPIRED,
    "FAILED": order_pb2.ORDER_STATUS_FAILED,
    "UNKNOWN_ORDER_STATUS": order_pb2.ORDER_STATUS_UNSPECIFIED,
}

# REST uses MARKET/LIMIT/STOP_LIMIT; the user channel uses "Market"/"Limit"/"Stop Limit" casing.
_TYPE: dict[str, order_pb2.OrderType.ValueType] = {
    "MARKET": order_pb2.ORDER_TYPE_MARKET,
    "LIMIT": order_pb2.ORDER_TYPE_LIMIT,
    "STOP": order_pb2.ORDER_TYPE_STOP_MARKET,
    "STOP_LIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "STOPLIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "STOP LIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "BRACKET": order_pb2.ORDER_TYPE_LIMIT,
}

_NO_REASON = frozenset({"", "REJECT_REASON_UNSPECIFIED", "UNKNOWN_CANCEL_REASON"})


def _status(raw: str, filled: Decimal, pending_cancel: bool = False) -> order_pb2.OrderStatus.ValueType:
    status = _STATUS.get(raw)
    if status is None:
        raise ParseError(f"order status: unknown value {raw[:40]!r}", venue=VENUE)
    if status == order_pb2.ORDER_STATUS_OPEN:
        if pending_cancel:
            return order_pb2.ORDER_STATUS_PENDING_CANCEL
        if filled > 0:
            return order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    return status


def _side(raw: str) -> order_pb2.OrderSide.ValueType:
    side = _SIDE.get(raw)
    if side is None:
        raise ParseError(f"side: unknown value {raw[:20]!r}", venue=VENUE)
    return side


def _quote_asset(product_id: str) -> str:
    # Fees are charged in the quote currency; spot product ids are BASE-QUOTE.
    parts = product_id.split("-")
    return parts[1] if len(parts) >= 2 else ""


# --- orders -------------------------------------------------------------------------------------


def _apply_config(out: order_pb2.Order, cfg: m.OrderConfig | None) -> None:
    """Order type, time in force, sizes and prices from the one ``order_configuration`` key."""
    if cfg is None:
        return
    leg: m.OrderLeg | None = None
    for entry in _CONFIG_KEYS:
        leg = getattr(cfg, entry[0])
        if leg is not None:
            name, otype, tif = entry
            break
    if leg is None:
        return
    out.order_type = otype
    out.time_in_force = tif
    out.quantity = dec_text(leg.base_size, "base_size")
    out.quote_quantity = dec_text(leg.quote_size, "quote_size")
    out.price = dec_text(leg.limit_price, "limit_price")
    out.stop_price = dec_text(leg.stop_price or leg.stop_trigger_price, "stop_price")
    out.post_only = leg.post_only
    if leg.end_time:
        end = timestamp(leg.end_time, "end_time")
        if end is not None:
            out.expires_at.CopyFrom(end)
    if name.startswith("trigger_bracket"):
        out.venue_extras["order_configuration"] = name


_CONFIG_KEYS: tuple[tuple[str, order_pb2.OrderType.ValueType, order_pb2.TimeInForce.ValueType], ...] = (
    ("limit_limit_gtc", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTC),
    ("market_market_ioc", order_pb2.ORDER_TYPE_MARKET, order_pb2.TIME_IN_FORCE_IOC),
    ("limit_limit_gtd", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTD),
    ("sor_limit_ioc", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_IOC),
    ("limit_limit_fok", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_FOK),
    ("market_market_fok", order_pb2.ORDER_TYPE_MARKET, order_pb2.TIME_IN_FORCE_FOK),
    ("stop_limit_stop_limit_gtc", order_pb2.ORDER_TYPE_STOP_LIMIT, order_pb2.TIME_IN_FORCE_GTC),
    ("stop_limit_stop_limit_gtd", order_pb2.ORDER_TYPE_STOP_LIMIT, order_pb2.TIME_IN_FORCE_GTD),
    ("trigger_bracket_gtc", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTC),
    ("trigger_bracket_gtd", order_pb2.ORDER_TYPE_LIMIT, order_pb2.TIME_IN_FORCE_GTD),
)


def order_from_model(o: m.Order, to_canonical: ToCanonical = _identity) -> order_pb2.Order:
    """A REST ``Order`` object as a cqc Order."""
    if not o.order_id:
        raise ParseError("order: missing order_id", venue=VENUE)
    filled = dec(o.filled_size, "filled_size", VENUE) if o.filled_size else Decimal(0)
    out = order_pb2.Order(
        order_id=o.order_id,
        client_order_id=o.client_order_id,
        venue=VENUE,
        symbol=to_canonical(o.product_id),
        venue_symbol=o.product_id,
        side=_side(o.side),
        status=_status(o.status, filled, o.pending_cancel),
        filled_quantity=dec_str(filled),
        average_fill_price=dec_text(o.average_filled_price, "average_filled_price") if filled else "",
        total_fees=dec_text(o.total_fees, "total_fees"),
        fee_asset=_quote_asset(o.product_id),
        account_id=o.retail_portfolio_id or "",
        leverage=dec_text(o.leverage, "leverage"),
    )
    _apply_config(out, o.order_configuration)
    if not out.order_type:
        out.order_type = _TYPE.get(o.order_type.upper(), order_pb2.ORDER_TYPE_UNSPECIFIED)
    if not out.time_in_force:
        out.time_in_force = _TIF.get(o.time_in_force, order_pb2.TIME_IN_FORCE_UNSPECIFIED)
    if out.status in _TERMINAL:
        out.remaining_quantity = "0"
    elif out.quantity:
        out.remaining_quantity = dec_str(max(Decimal(out.quantity) - filled, Decimal(0)))
    created = timestamp(o.created_time, "created_time")
    if created is not None:
        out.created_at.CopyFrom(created)
    updated = timestamp(o.last_fill_time, "last_fill_time")
    if updated is not None:
        out.updated_at.CopyFrom(updated)
    reason = o.reject_reason or ""
    if reason in _NO_REASON:
        reason = o.reject_message or o.cancel_message or ""
    out.rejection_reason = reason[:200]
    return out


_TERMINAL = frozenset(
    {
        order_pb2.ORDER_STATUS_FILLED,
        order_pb2.ORDER_STATUS_CANCELLED,
        order_pb2.ORDER_STATUS_REJECTED,
        order_pb2.ORDER_STATUS_EXPIRED,
        order_pb2.ORDER_STATUS_FAILED,
    }
)


def order_from_json(data: bytes, to_canonical: ToCanonical = _identity) -> order_pb2.Order:
    """``GET /orders/historical/{order_id}`` -> Order."""
    return order_from_model(decode(data, m.GetOrderResponse).order, to_canonical)


def orders_page_from_json(
    data: bytes, to_canonical: ToCanonical = _identity
) -> tuple[list[order_pb2.Order], str | None]:
    """One ``GET /orders/historical/batch`` page -> (orders, next cursor or None)."""
    page = decode(data, m.OrdersResponse)
    orders = [order_from_model(o, to_canonical) for o in page.orders]
    return orders, (page.cursor if page.has_next and page.cursor else None)


def create_order_from_json(
    data: bytes, order: order_pb2.Order, symbol: str, product_id: str, client_order_id: str
) -> execution_pb2.ExecutionReport:
    """``POST /orders`` answer -> the acknowledgement report, or the mapped error when
    ``success: false`` (HTTP 200 with a failure body; create-order reference)."""
    resp = decode(data, m.CreateOrderResponse)
    if not resp.success:
        er = resp.error_response
        error_fields = msgspec.structs.asdict(er) if er is not None else None
        raise create_order_error(
            error_fields, resp.failure_reason, client_order_id=client_order_id, raw=data[:2048]
        )
    sr = resp.success_response
    order_id = (sr.order_id if sr is not None else "") or resp.order_id
    if not order_id:
        raise ParseError("create order: success without an order_id", venue=VENUE)
    ack_coid = sr.client_order_id if sr is not None and sr.client_order_id else client_order_id
    return execution_pb2.ExecutionReport(
        execution_id=f"{order_id}:new",
        order_id=order_id,
        client_order_id=ack_coid,
        venue=VENUE,
        symbol=symbol,
        execution_type=execution_pb2.EXECUTION_TYPE_NEW,
        order_status=order_pb2.ORDER_STATUS_OPEN,
        side=order.side,
        order_type=order.order_type,
        time_in_force=order.time_in_force
        or (
            order_pb2.TIME_IN_FORCE_IOC
            if order.order_type == order_pb2.ORDER_TYPE_MARKET
            else order_pb2.TIME_IN_FORCE_GTC
        ),
        order_price=order.price,
        order_quantity=order.quantity,
        cumulative_quantity="0",
        remaining_quantity=order.quantity,
        post_only=order.post_only,
    )


def cancel_results_from_json(data: bytes) -> list[tuple[str, VenueError | None]]:
    """``POST /orders/batch_cancel`` -> [(order_id, None on success else the mapped error)]."""
    resp = decode(data, m.CancelResponse)
    out: list[tuple[str, VenueError | None]] = []
    for r in resp.results:
        out.append((r.order_id, None if r.success else cancel_error(r.failure_reason, r.order_id)))
    return out


# --- fills --------------------------------------------------------------------------------------

_LIQUIDITY = {"MAKER": execution_pb2.LIQUIDITY_SIDE_MAKER, "TAKER": execution_pb2.LIQUIDITY_SIDE_TAKER}


def fill_report(f: m.Fill, to_canonical: ToCanonical = _identity) -> execution_pb2.ExecutionReport:
    """A REST fill -> a TRADE ExecutionReport (``trade_id`` is the de-duplication key)."""
    if not f.trade_id or not f.order_id:
        raise ParseError("fill: missing trade_id or order_id", venue=VENUE)
    price = dec(f.price, "price", VENUE)
    size = dec(f.size, "size", VENUE)
    if f.size_in_quote:
        # ``size`` is quote currency when the order was sized in quote (fills reference).
        try:
            size = size / price
        except (DivisionByZero, InvalidOperation):
            raise ParseError("fill: size in quote with zero price", venue=VENUE) from None
    report = execution_pb2.ExecutionReport(
        execution_id=f.entry_id or f.trade_id,
        order_id=f.order_id,
        venue=VENUE,
        symbol=to_canonical(f.product_id),
        execution_type=execution_pb2.EXECUTION_TYPE_TRADE,
        side=_side(f.side),
        last_price=dec_str(price),
        last_quantity=dec_str(size),
        fee=dec_text(f.commission, "commission"),
        fee_asset=_quote_asset(f.product_id),
        liquidity=_LIQUIDITY.get(f.liquidity_indicator, execution_pb2.LIQUIDITY_SIDE_UNSPECIFIED),
        trade_id=f.trade_id,
        account_id=f.retail_portfolio_id or "",
    )
    when = timestamp(f.trade_time, "trade_time")
    if when is not None:
        report.transact_time.CopyFrom(when)
    return report


def fills_from_json(
    data: bytes, to_canonical: ToCanonical = _identity
) -> tuple[list[execution_pb2.ExecutionReport], str | None]:
    """One ``GET /orders/historical/fills`` page -> (reports, next cursor or None)."""
    page = decode(data, m.FillsResponse)
    return [fill_report(f, to_canonical) for f in page.fills], (page.cursor or None)


# --- accounts -------------------------------------------------------------------------------------


def balance_from_account(a: m.Account) -> balance_pb2.Balance:
    if not a.currency:
        raise ParseError("account: missing currency", venue=VENUE)
    available = dec(a.available_balance.value, "available_balance", VENUE) if a.available_balance else None
    hold = dec(a.hold.value, "hold", VENUE) if a.hold and a.hold.value else Decimal(0)
    if available is None:
        raise ParseError("account: missing available_balance", venue=VENUE)
    out = balance_pb2.Balance(
        venue=VENUE,
        account_id=a.uuid,
        asset=a.currency,
        balance_type=balance_pb2.BALANCE_TYPE_SPOT,
        total=dec_str(available + hold),
        available=dec_str(available),
        locked=dec_str(hold),
    )
    updated = timestamp(a.updated_at, "updated_at")
    if updated is not None:
        out.updated_at.CopyFrom(updated)
    return out


def accounts_from_json(data: bytes) -> tuple[list[balance_pb2.Balance], str | None]:
    """One ``GET /accounts`` page -> (balances, next cursor or None)."""
    page = decode(data, m.AccountsResponse)
    balances = [balance_from_account(a) for a in page.accounts]
    return balances, (page.cursor if page.has_next and page.cursor else None)


# --- US derivatives (CFM futures) account -------------------------------------------------------------

_POSITION_SIDE = {
    "LONG": position_pb2.POSITION_SIDE_LONG,
    "SHORT": position_pb2.POSITION_SIDE_SHORT,
    "UNSPECIFIED": position_pb2.POSITION_SIDE_UNSPECIFIED,
    "": position_pb2.POSITION_SIDE_UNSPECIFIED,
}


def _money(value: m.MoneyOrText, field: str) -> tuple[str, str]:
    """(canonical decimal text, currency) of a money field in either documented shape."""
    if value is None:
        return "", ""
    if isinstance(value, m.Money):
        return dec_text(value.value, field), value.currency
    return dec_text(value, field), ""


def position_from_fcm(
    p: m.FcmPosition, to_canonical: ToCanonical = _identity, contract_size: Decimal | None = None
) -> position_pb2.Position:
    """A futures position -> cqc Position.

    ``number_of_contracts`` counts contracts; cqc quantities are base units, so it is multiplied by the
    contract size (the position's own ``contract_size`` when sent, else the product's, else 1).
    ``daily_realized_pnl`` is realized today only, not since the position opened, so ``realized_pnl``
    stays empty.  Sides come as ``LONG``/``SHORT`` or ``FUTURES_POSITION_SIDE_*``.
    """
    if not p.product_id:
        raise ParseError("futures position: missing product_id", venue=VENUE)
    side_text = p.side.removeprefix("FUTURES_POSITION_SIDE_")
    side = _POSITION_SIDE.get(side_text)
    if side is None:
        raise ParseError(f"futures position: side {p.side[:40]!r}", venue=VENUE)
    contracts = dec(p.number_of_contracts or "0", "number_of_contracts", VENUE)
    size = dec(p.contract_size, "contract_size", VENUE) if p.contract_size else (contract_size or Decimal(1))
    if contracts < 0:
        # Some payloads sign the count instead of naming the side.
        side = position_pb2.POSITION_SIDE_SHORT if side == position_pb2.POSITION_SIDE_UNSPECIFIED else side
        contracts = -contracts
    if contracts == 0:
        side = position_pb2.POSITION_SIDE_FLAT
    mark, currency = _money(p.current_price, "current_price")
    entry, c2 = _money(p.avg_entry_price, "avg_entry_price")
    upnl, c3 = _money(p.unrealized_pnl, "unrealized_pnl")
    liq, _ = _money(p.liquidation_price, "liquidation_price")
    im, _ = _money(p.im_contribution, "im_contribution")
    mm, _ = _money(p.mm_contribution, "mm_contribution")
    return position_pb2.Position(
        venue=VENUE,
        symbol=to_canonical(p.product_id),
        side=side,
        quantity=dec_str(contracts * size),
        entry_price=entry,
        mark_price=mark,
        liquidation_price=liq,
        leverage=dec_text(p.leverage, "leverage"),
        unrealized_pnl=upnl,
        margin=im,
        maintenance_margin=mm,
        # CFM futures settle in USD (futures balance summary reference).
        settle_asset=currency or c2 or c3 or "USD",
    )


def positions_from_json(
    data: bytes, to_canonical: ToCanonical = _identity, contract_sizes: dict[str, Decimal] | None = None
) -> list[position_pb2.Position]:
    """``GET /cfm/positions`` -> positions."""
    sizes = contract_sizes or {}
    return [
        position_from_fcm(p, to_canonical, sizes.get(p.product_id))
        for p in decode(data, m.FcmPositionsResponse).positions
    ]


def position_from_json(
    data: bytes, to_canonical: ToCanonical = _identity, contract_sizes: dict[str, Decimal] | None = None
) -> position_pb2.Position | None:
    """``GET /cfm/positions/{product_id}`` -> the position, or None when the answer holds none."""
    p = decode(data, m.FcmPositionResponse).position
    if p is None or not p.product_id:
        return None
    return position_from_fcm(p, to_canonical, (contract_sizes or {}).get(p.product_id))


@dataclass(frozen=True, slots=True)
class FuturesBalanceSummary:
    """The US-derivatives account (``GET /cfm/balance_summary``), USD amounts as Decimals."""

    futures_buying_power: Decimal
    total_usd_balance: Decimal
    cbi_usd_balance: Decimal  # USD in the spot (Coinbase Inc.) account
    cfm_usd_balance: Decimal  # USD in the futures (FCM) account
    total_open_orders_hold_amount: Decimal
    unrealized_pnl: Decimal
    daily_realized_pnl: Decimal
    initial_margin: Decimal
    available_margin: Decimal
    liquidation_threshold: Decimal
    liquidation_buffer_amount: Decimal
    liquidation_buffer_percentage: Decimal

    def balance(self) -> balance_pb2.Balance:
        """The futures account as a cqc Balance: total = FCM USD balance, available = available
        margin, locked = the rest (so total = available + locked always holds)."""
        total = self.cfm_usd_balance
        available = min(self.available_margin, total)
        return balance_pb2.Balance(
            venue=VENUE,
            asset="USD",
            balance_type=balance_pb2.BALANCE_TYPE_FUTURES,
            total=dec_str(total),
            available=dec_str(available),
            locked=dec_str(total - available),
        )


def futures_balance_from_json(data: bytes) -> FuturesBalanceSummary:
    b = decode(data, m.FcmBalanceSummaryResponse).balance_summary
    if b is None:
        raise ParseError("futures balance summary: missing balance_summary", venue=VENUE)

    def amount(value: m.MoneyOrText, field: str) -> Decimal:
        text, _ = _money(value, field)
        return dec(text or "0", field, VENUE)

    return FuturesBalanceSummary(
        futures_buying_power=amount(b.futures_buying_power, "futures_buying_power"),
        total_usd_balance=amount(b.total_usd_balance, "total_usd_balance"),
        cbi_usd_balance=amount(b.cbi_usd_balance, "cbi_usd_balance"),
        cfm_usd_balance=amount(b.cfm_usd_balance, "cfm_usd_balance"),
        total_open_orders_hold_amount=amount(b.total_open_orders_hold_amount, "open_orders_hold"),
        unrealized_pnl=amount(b.unrealized_pnl, "unrealized_pnl"),
        daily_realized_pnl=amount(b.daily_realized_pnl, "daily_realized_pnl"),
        initial_margin=amount(b.initial_margin, "initial_margin"),
        available_margin=amount(b.available_margin, "available_margin"),
        liquidation_threshold=amount(b.liquidation_threshold, "liquidation_threshold"),
        liquidation_buffer_amount=amount(b.liquidation_buffer_amount, "liquidation_buffer_amount"),
        liquidation_buffer_percentage=dec(
            b.liquidation_buffer_percentage or "0", "liquidation_buffer_percentage", VENUE
        ),
    )


# --- products ------------------------------------------------------------------------------------


def _precision(step: str) -> int:
    if not step:
        return 0
    d = dec(step, "increment", VENUE).normalize()
    exp = d.as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def canonical_for_product(p: m.Product) -> str:
    """Canonical id: spot ids as they are; futures ``ROOT-QUOTE-PERP`` or ``ROOT-QUOTE-YYYYMMDD``."""
    if p.product_type != "FUTURE" or p.future_product_details is None:
        return p.product_id
    fd = p.future_product_details
    root = fd.contract_root_unit or p.base_currency_id or p.product_id.split("-")[0]
    quote = p.quote_currency_id or "USD"
    if fd.contract_expiry_type == "PERPETUAL":
        return f"{root}-{quote}-PERP"
    expiry = timestamp(fd.contract_expiry, "contract_expiry")
    if expiry is None:
        raise ParseError(f"future {p.product_id}: no contract_expiry", venue=VENUE)
    return f"{root}-{quote}-{expiry.ToDatetime().strftime('%Y%m%d')}"


def instrument_from_product(p: m.Product) -> instrument_pb2.Instrument:
    if not p.product_id:
        raise ParseError("product: missing product_id", venue=VENUE)
    tick = p.price_increment or p.quote_increment
    lot = p.base_increment
    if p.is_disabled or p.trading_disabled or p.status == "delisted":
        status = (
            instrument_pb2.INSTRUMENT_STATUS_HALTED
            if p.status != "delisted"
            else (instrument_pb2.INSTRUMENT_STATUS_DELISTED)
        )
    elif p.cancel_only:
        status = instrument_pb2.INSTRUMENT_STATUS_HALTED
    elif p.post_only:
        status = instrument_pb2.INSTRUMENT_STATUS_POST_ONLY
    else:
        status = instrument_pb2.INSTRUMENT_STATUS_TRADING
    is_future = p.product_type == "FUTURE" and p.future_product_details is not None
    out = instrument_pb2.Instrument(
        symbol=canonical_for_product(p),
        venue=VENUE,
        venue_symbol=p.product_id,
        base_asset=p.base_currency_id or p.base_display_symbol,
        quote_asset=p.quote_currency_id or p.quote_display_symbol,
        tick_size=dec_text(tick, "price_increment"),
        lot_size=dec_text(lot, "base_increment"),
        min_quantity=dec_text(p.base_min_size, "base_min_size"),
        max_quantity=dec_text(p.base_max_size, "base_max_size"),
        min_notional=dec_text(p.quote_min_size, "quote_min_size"),
        price_precision=_precision(tick),
        quantity_precision=_precision(lot),
        contract_size="1",
        status=status,
    )
    if is_future:
        fd = p.future_product_details
        assert fd is not None
        perpetual = fd.contract_expiry_type == "PERPETUAL"
        out.instrument_type = (
            instrument_pb2.INSTRUMENT_TYPE_PERPETUAL if perpetual else instrument_pb2.INSTRUMENT_TYPE_FUTURE
        )
        out.base_asset = fd.contract_root_unit or out.base_asset
        out.settle_asset = out.quote_asset
        out.contract_size = dec_text(fd.contract_size, "contract_size") or "1"
        expiry = timestamp(fd.contract_expiry, "contract_expiry")
        if expiry is not None and not perpetual:
            out.expiry.CopyFrom(expiry)
        if fd.funding_interval and fd.funding_interval.endswith("s") and fd.funding_interval[:-1].isdigit():
            out.funding_interval_seconds = int(fd.funding_interval[:-1])
    else:
        out.instrument_type = instrument_pb2.INSTRUMENT_TYPE_SPOT
    return out


def products_from_json(data: bytes) -> list[instrument_pb2.Instrument]:
    return [instrument_from_product(p) for p in decode(data, m.ProductsResponse).products]


# --- market data ------------------------------------------------------------------------------------

_Lvl = orderbook_pb2.OrderBookLevel


def _levels(levels: list[m.PriceLevel], field: str) -> list[orderbook_pb2.OrderBookLevel]:
    return [_Lvl(price=dec_text(lv.price, field), quantity=dec_text(lv.size, field)) for lv in levels]


def _pricebook(
    pb: m.PriceBook, to_canonical: ToCanonical, depth: int | None = None
) -> orderbook_pb2.OrderBook:
    bids = pb.bids if depth is None else pb.bids[:depth]
    asks = pb.asks if depth is None else pb.asks[:depth]
    book = orderbook_pb2.OrderBook(
        venue=VENUE,
        symbol=to_canonical(pb.product_id),
        bids=_levels(bids, "bid"),
        asks=_levels(asks, "ask"),
    )
    when = timestamp(pb.time, "pricebook.time")
    if when is not None:
        book.timestamp.CopyFrom(when)
    return book


def book_from_json(
    data: bytes, to_canonical: ToCanonical = _identity, depth: int | None = None
) -> orderbook_pb2.OrderBook:
    """``GET /product_book`` -> OrderBook (best levels first, as the venue sends them)."""
    return _pricebook(decode(data, m.ProductBookResponse).pricebook, to_canonical, depth)


def best_bid_ask_from_json(data: bytes, to_canonical: ToCanonical = _identity) -> list[price_pb2.Price]:
    """``GET /best_bid_ask`` -> one Price (bid/ask, no last) per product."""
    out = []
    for pb in decode(data, m.BestBidAskResponse).pricebooks:
        price = price_pb2.Price(venue=VENUE, symbol=to_canonical(pb.product_id))
        if pb.bids:
            price.bid = dec_text(pb.bids[0].price, "bid")
            price.bid_size = dec_text(pb.bids[0].size, "bid size")
        if pb.asks:
            price.ask = dec_text(pb.asks[0].price, "ask")
            price.ask_size = dec_text(pb.asks[0].size, "ask size")
        when = timestamp(pb.time, "pricebook.time")
        if when is not None:
            price.timestamp.CopyFrom(when)
        out.append(price)
    return out


def candle_from_model(
    c: m.Candle, symbol: str, interval: int, width_s: int, now_s: int | None = None
) -> candle_pb2.Candle:
    start = _unix_seconds(c.start, "candle start")
    out = candle_pb2.Candle(
        venue=VENUE,
        symbol=symbol,
        interval=candle_pb2.CandleInterval.ValueType(interval),
        open=dec_text(c.open, "open"),
        high=dec_text(c.high, "high"),
        low=dec_text(c.low, "low"),
        close=dec_text(c.close, "close"),
        volume=dec_text(c.volume, "volume"),
        is_closed=now_s is not None and start + width_s <= now_s,
    )
    out.open_time.seconds = start
    out.close_time.seconds = start + width_s
    return out


def candles_from_json(
    data: bytes, symbol: str, interval: int, width_s: int, now_s: int | None = None
) -> list[candle_pb2.Candle]:
    """``GET /products/{id}/candles`` -> candles, OLDEST first (the venue sends newest first)."""
    candles = [
        candle_from_model(c, symbol, interval, width_s, now_s)
        for c in decode(data, m.CandlesResponse).candles
    ]
    candles.sort(key=lambda c: c.open_time.seconds)
    return candles


# ``side`` on market trades is the maker side (websocket-channels page, market_trades), so the taker
# (aggressor, what cqc Trade.side means) is the opposite.
_AGGRESSOR = {"BUY": trade_pb2.TRADE_SIDE_SELL, "SELL": trade_pb2.TRADE_SIDE_BUY}


def trade_from_model(t: m.MarketTrade, to_canonical: ToCanonical = _identity) -> trade_pb2.Trade:
    if not t.trade_id:
        raise ParseError("trade: missing trade_id", venue=VENUE)
    out = trade_pb2.Trade(
        trade_id=t.trade_id,
        venue=VENUE,
        symbol=to_canonical(t.product_id),
        price=dec_text(t.price, "price"),
        quantity=dec_text(t.size, "size"),
        side=_AGGRESSOR.get(t.side, trade_pb2.TRADE_SIDE_UNSPECIFIED),
    )
    when = timestamp(t.time, "trade time")
    if when is not None:
        out.timestamp.CopyFrom(when)
    return out


def market_trades_from_json(data: bytes, to_canonical: ToCanonical = _identity) -> list[trade_pb2.Trade]:
    """``GET /products/{id}/ticker`` -> public trades (newest first, as sent)."""
    return [trade_from_model(t, to_canonical) for t in decode(data, m.TickerResponse).trades]


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
            raise ParseError(f"l2 side: unknown value {u.side[:20]!r}", venue=VENUE)
    return bids, asks


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
WS_CANDLE_WIDTH_S = 300


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
    return counter


def ws_user_events(env: m.Envelope) -> list[m.UserEvent]:
    return _decode_list(env.events, m.UserEvent)


def ws_order_state(o: m.WsOrder, to_canonical: ToCanonical = _identity) -> order_pb2.Order:
    """A ``user`` channel order (cumulative state) as a cqc Order."""
    if not o.order_id:
        raise ParseError("user order: missing order_id", venue=VENUE)
    filled = dec(o.cumulative_quantity, "cumulative_quantity", VENUE) if o.cumulative_quantity else Decimal(0)
    leaves = dec(o.leaves_quantity, "leaves_quantity", VENUE) if o.leaves_quantity else Decimal(0)
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
        fee_asset=_quote_asset(o.product_id),
        rejection_reason=(o.reject_reason or o.cancel_reason)[:200],
    )
    if out.status not in _TERMINAL:
        out.quantity = dec_str(filled + leaves)
    created = timestamp(o.creation_time, "creation_time")
    if created is not None:
        out.created_at.CopyFrom(created)
    return out
