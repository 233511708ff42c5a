"""Test-data builders for the core cqc messages: sensible defaults, keyword overrides.

    from cqvx.testing import builders as b
    order = b.limit_buy(price="49000", quantity="0.1")
    report = b.execution_report(order, order_status=ORDER_STATUS_FILLED)
    book = b.order_book(bids=[("49999", "1")], asks=[("50001", "2")])

Every override is a field name of the message.  Decimal fields take ``Decimal``, ``int`` or ``str``
(always stored as the canonical decimal string; a float is refused, as everywhere in the platform);
timestamp fields take a ``datetime`` (naive = UTC) or a ``Timestamp``.  Ids that must be unique
(client order ids, order ids, trade ids) come from a process-wide counter unless given.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, rfq_pb2
from cqvx.num import dec_str
from cqvx.timeutil import timestamp_from_datetime

__all__ = [
    "DEFAULT_TIME",
    "balance",
    "candle",
    "execution_report",
    "fill_report",
    "funding_rate",
    "instrument",
    "limit_buy",
    "limit_sell",
    "market_buy",
    "market_sell",
    "next_id",
    "order",
    "order_book",
    "order_book_delta",
    "position",
    "price",
    "quote",
    "ticker",
    "timestamp",
    "trade",
]

M = TypeVar("M", bound=Message)

# A fixed default time keeps built messages deterministic (and comparable across runs).
DEFAULT_TIME = datetime(2025, 1, 1, tzinfo=UTC)
_counter = itertools.count(1)

LevelsIn = Iterable[tuple[Decimal | int | str, Decimal | int | str]]


def next_id(prefix: str) -> str:
    """A process-unique id such as ``"cqtest-17"``."""
    return f"{prefix}-{next(_counter)}"


def timestamp(moment: datetime | Timestamp | None = None) -> Timestamp:
    """A protobuf Timestamp (``None`` = :data:`DEFAULT_TIME`; naive datetimes are UTC)."""
    if isinstance(moment, Timestamp):
        return moment
    return timestamp_from_datetime(moment or DEFAULT_TIME)


def _value(field: Any, value: Any) -> Any:
    if (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type.full_name == "google.protobuf.Timestamp"
    ):
        return timestamp(value)
    if (
        field.type == FieldDescriptor.TYPE_STRING
        and isinstance(value, Decimal | int)
        and not isinstance(value, bool)
    ):
        return dec_str(value)
    if isinstance(value, float):
        raise TypeError(f"{field.name}: floats are not money; pass a str or Decimal")
    return value


def _build(cls: type[M], defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> M:
    fields: Mapping[str, Any] = cls.DESCRIPTOR.fields_by_name
    msg = cls()
    for name, value in {**defaults, **overrides}.items():
        field = fields.get(name)
        if field is None:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        if value is None:
            continue  # None = leave the field unset
        if field.is_repeated:
            target = getattr(msg, name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                target.update(value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(msg, name).CopyFrom(_value(field, value))
        else:
            setattr(msg, name, _value(field, value))
    return msg


# ------------------------------------------------------------------------------------------ orders


def order(**overrides: Any) -> order_pb2.Order:
    """A GTC limit buy of 0.01 BTC-USD at 50000 with a fresh client order id, status unspecified."""
    defaults: dict[str, Any] = {
        "client_order_id": next_id("cqtest"),
        "venue": "mock",
        "symbol": "BTC-USD",
        "side": order_pb2.ORDER_SIDE_BUY,
        "order_type": order_pb2.ORDER_TYPE_LIMIT,
        "time_in_force": order_pb2.TIME_IN_FORCE_GTC,
        "quantity": "0.01",
        "price": "50000",
    }
    return _build(order_pb2.Order, defaults, overrides)


def limit_buy(
    price: Decimal | str = "50000", quantity: Decimal | str = "0.01", **overrides: Any
) -> order_pb2.Order:
    return order(side=order_pb2.ORDER_SIDE_BUY, price=price, quantity=quantity, **overrides)


def limit_sell(
    price: Decimal | str = "50000", quantity: Decimal | str = "0.01", **overrides: Any
) -> order_pb2.Order:
    return order(side=order_pb2.ORDER_SIDE_SELL, price=price, quantity=quantity, **overrides)


def market_buy(quantity: Decimal | str = "0.01", **overrides: Any) -> order_pb2.Order:
    return order(
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_MARKET,
        time_in_force=order_pb2.TIME_IN_FORCE_IOC,
        price="",
        quantity=quantity,
        **overrides,
    )


def market_sell(quantity: Decimal | str = "0.01", **overrides: Any) -> order_pb2.Order:
    return order(
        side=order_pb2.ORDER_SIDE_SELL,
        order_type=order_pb2.ORDER_TYPE_MARKET,
        time_in_force=order_pb2.TIME_IN_FORCE_IOC,
        price="",
        quantity=quantity,
        **overrides,
    )


def execution_report(of: order_pb2.Order | None = None, **overrides: Any) -> execution_pb2.ExecutionReport:
    """An acknowledgement (NEW, OPEN) of ``of`` (default: a fresh :func:`order`)."""
    o = of if of is not None else order()
    quantity = o.quantity or "0"
    defaults: dict[str, Any] = {
        "execution_id": next_id("exec"),
        "order_id": o.order_id or next_id("order"),
        "client_order_id": o.client_order_id,
        "venue": o.venue or "mock",
        "symbol": o.symbol,
        "execution_type": execution_pb2.EXECUTION_TYPE_NEW,
        "order_status": order_pb2.ORDER_STATUS_OPEN,
        "side": o.side,
        "order_type": o.order_type,
        "time_in_force": o.time_in_force,
        "order_price": o.price,
        "order_quantity": o.quantity,
        "cumulative_quantity": "0",
        "remaining_quantity": quantity,
        "transact_time": DEFAULT_TIME,
        "account_id": o.account_id,
        "post_only": o.post_only,
        "reduce_only": o.reduce_only,
    }
    return _build(execution_pb2.ExecutionReport, defaults, overrides)


def fill_report(
    of: order_pb2.Order,
    last_quantity: Decimal | str,
    last_price: Decimal | str,
    **overrides: Any,
) -> execution_pb2.ExecutionReport:
    """A TRADE report for a fill of ``last_quantity`` at ``last_price`` (order status from the totals)."""
    filled = Decimal(of.filled_quantity or "0")
    cum = filled + Decimal(str(last_quantity))
    total = Decimal(of.quantity or "0")
    status = order_pb2.ORDER_STATUS_FILLED if cum >= total else order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    defaults: dict[str, Any] = {
        "execution_type": execution_pb2.EXECUTION_TYPE_TRADE,
        "order_status": status,
        "last_quantity": Decimal(str(last_quantity)),
        "last_price": Decimal(str(last_price)),
        "cumulative_quantity": cum,
        "remaining_quantity": max(total - cum, Decimal(0)),
        "average_fill_price": Decimal(str(last_price)) if not filled else None,
        "trade_id": next_id("trade"),
        "liquidity": execution_pb2.LIQUIDITY_SIDE_MAKER,
    }
    return execution_report(of, **{**defaults, **overrides})


# --------------------------------------------------------------------------------------- account


def balance(**overrides: Any) -> balance_pb2.Balance:
    """1.5 BTC available, 0.5 locked, 2 total, spot wallet."""
    defaults: dict[str, Any] = {
        "venue": "mock",
        "asset": "BTC",
        "balance_type": balance_pb2.BALANCE_TYPE_SPOT,
        "total": "2",
        "available": "1.5",
        "locked": "0.5",
        "updated_at": DEFAULT_TIME,
    }
    return _build(balance_pb2.Balance, defaults, overrides)


def position(**overrides: Any) -> position_pb2.Position:
    """A 0.5 BTC long on BTC-USDT-PERP at 50000, 5x cross."""
    defaults: dict[str, Any] = {
        "venue": "mock",
        "symbol": "BTC-USDT-PERP",
        "side": position_pb2.POSITION_SIDE_LONG,
        "quantity": "0.5",
        "entry_price": "50000",
        "mark_price": "50100",
        "leverage": "5",
        "unrealized_pnl": "50",
        "realized_pnl": "0",
        "margin": "5000",
        "margin_mode": position_pb2.MARGIN_MODE_CROSS,
        "settle_asset": "USDT",
        "updated_at": DEFAULT_TIME,
    }
    return _build(position_pb2.Position, defaults, overrides)


# ------------------------------------------------------------------------------------ market data


def _levels(levels: LevelsIn) -> list[orderbook_pb2.OrderBookLevel]:
    return [orderbook_pb2.OrderBookLevel(price=dec_str(p), quantity=dec_str(q)) for p, q in levels]


def order_book(
    bids: LevelsIn | None = None, asks: LevelsIn | None = None, **overrides: Any
) -> orderbook_pb2.OrderBook:
    """A 3x3 BTC-USD book around 50000 (levels given as ``(price, quantity)``, best first)."""
    bid_levels = _levels(bids if bids is not None else [("49999", "1"), ("49998", "2"), ("49997", "3")])
    ask_levels = _levels(asks if asks is not None else [("50001", "1"), ("50002", "2"), ("50003", "3")])
    defaults: dict[str, Any] = {
        "venue": "mock",
        "symbol": "BTC-USD",
        "timestamp": DEFAULT_TIME,
        "sequence": 1,
        "bids": bid_levels,
        "asks": ask_levels,
    }
    return _build(orderbook_pb2.OrderBook, defaults, overrides)


def order_book_delta(
    bids: LevelsIn = (), asks: LevelsIn = (), **overrides: Any
) -> orderbook_pb2.OrderBookDelta:
    """An incremental update (absolute sizes; quantity 0 removes the level)."""
    defaults: dict[str, Any] = {
        "venue": "mock",
        "symbol": "BTC-USD",
        "timestamp": DEFAULT_TIME,
        "sequence": 2,
        "bids": _levels(bids),
        "asks": _levels(asks),
    }
    return _build(orderbook_pb2.OrderBookDelta, defaults, overrides)


def trade(**overrides: Any) -> trade_pb2.Trade:
    """A 0.01 BTC-USD taker buy at 50000."""
    defaults: dict[str, Any] = {
        "trade_id": next_id("trade"),
        "venue": "mock",
        "symbol": "BTC-USD",
        "timestamp": DEFAULT_TIME,
        "price": "50000",
        "quantity": "0.01",
        "side": trade_pb2.TRADE_SIDE_BUY,
    }
    return _build(trade_pb2.Trade, defaults, overrides)


def price(**overrides: Any) -> price_pb2.Price:
    defaults: dict[str, Any] = {
        "venue": "mock",
        "symbol": "BTC-USD",
        "last": "50000",
        "bid": "49999",
        "ask": "50001",
        "bid_size": "1",
        "ask_size": "1",
        "timestamp": DEFAULT_TIME,
    }
    return _build(price_pb2.Price, defaults, overrides)


def ticker(**overrides: Any) -> price_pb2.Ticker:
    defaults: dict[str, Any] = {
        "venue": "mock",
        "symbol": "BTC-USD",
        "last": "50000",
        "bid": "49999",
        "ask": "50001",
        "open_24h": "49000",
        "high_24h": "51000",
        "low_24h": "48500",
        "volume_24h": "1234.5",
        "quote_volume_24h": "61725000",
        "timestamp": DEFAULT_TIME,
    }
    return _build(price_pb2.Ticker, defaults, overrides)


def instrument(**overrides: Any) -> instrument_pb2.Instrument:
    """BTC-USD spot: tick 0.01, lot 0.00000001, min notional 1, trading."""
    defaults: dict[str, Any] = {
        "symbol": "BTC-USD",
        "venue": "mock",
        "venue_symbol": "BTC-USD",
        "instrument_type": instrument_pb2.INSTRUMENT_TYPE_SPOT,
        "base_asset": "BTC",
        "quote_asset": "USD",
        "tick_size": "0.01",
        "lot_size": "0.00000001",
        "min_quantity": "0.00000001",
        "min_notional": "1",
        "price_precision": 2,
        "quantity_precision": 8,
        "contract_size": "1",
        "maker_fee": "0.001",
        "taker_fee": "0.002",
        "status": instrument_pb2.INSTRUMENT_STATUS_TRADING,
    }
    return _build(instrument_pb2.Instrument, defaults, overrides)


def funding_rate(**overrides: Any) -> funding_pb2.FundingRate:
    """BTC-USDT-PERP at 0.01% per 8 h."""
    defaults: dict[str, Any] = {
        "venue": "mock",
        "symbol": "BTC-USDT-PERP",
        "rate": "0.0001",
        "predicted_rate": "0.0001",
        "funding_time": DEFAULT_TIME,
        "next_funding_time": datetime(2025, 1, 1, 8, tzinfo=UTC),
        "interval_seconds": 28800,
        "mark_price": "50000",
        "index_price": "49995",
        "timestamp": DEFAULT_TIME,
    }
    return _build(funding_pb2.FundingRate, defaults, overrides)


def candle(**overrides: Any) -> candle_pb2.Candle:
    """A closed 1-minute BTC-USD candle."""
    defaults: dict[str, Any] = {
        "venue": "mock",
        "symbol": "BTC-USD",
        "interval": candle_pb2.CANDLE_INTERVAL_1MIN,
        "open_time": DEFAULT_TIME,
        "close_time": datetime(2025, 1, 1, 0, 1, tzinfo=UTC),
        "open": "50000",
        "high": "50100",
        "low": "49900",
        "close": "50050",
        "volume": "12.5",
        "quote_volume": "625000",
        "trade_count": 321,
        "is_closed": True,
    }
    return _build(candle_pb2.Candle, defaults, overrides)


def quote(**overrides: Any) -> rfq_pb2.Quote:
    """An open two-way RFQ quote for 1 BTC-USD."""
    defaults: dict[str, Any] = {
        "quote_id": next_id("quote"),
        "venue": "mock",
        "symbol": "BTC-USD",
        "status": rfq_pb2.QUOTE_STATUS_OPEN,
        "buy_price": "50010",
        "sell_price": "49990",
        "quantity": "1",
        "quantity_asset": "BTC",
        "created_at": DEFAULT_TIME,
        "expires_at": datetime(2025, 1, 1, 0, 0, 10, tzinfo=UTC),
    }
    return _build(rfq_pb2.Quote, defaults, overrides)
