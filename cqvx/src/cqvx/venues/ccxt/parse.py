"""ccxt unified structures -> cqc messages.  Every function raises only :class:`ParseError`.

Numbers: the client sets ``exchange.number = str`` on its ccxt instance, so ccxt's unified
structures carry the venue's own decimal text (or ccxt's ``Precise`` string arithmetic) instead of
floats, and :func:`cqvx.num.dec` parses that text exactly.  Where a ccxt code path still yields a
float (a few derived fields do float arithmetic), :func:`num` takes its shortest ``repr``, which is
the JSON text ccxt read when the float came straight from it; the value is then a Decimal string, so
no float reaches a cqc message.  Unknown is not absent: an order without id, side or a known status,
a balance entry that is not a mapping, etc. is a ParseError, never an empty message.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import candle_pb2, funding_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2, transaction_pb2
from cqc.venues.v1 import balance_pb2, order_pb2
from cqvx.errors import ParseError, VenueError
from cqvx.num import dec, dec_str, dec_text
from cqvx.symbols import SymbolMap
from cqvx.timeutil import set_timestamp_ns, timestamp_from_ms
from cqvx.venues.ccxt.reads import LedgerRead

__all__ = [
    "num",
    "parse_balances",
    "parse_bybit_settlements",
    "parse_candle",
    "parse_funding_income",
    "parse_funding_rate",
    "parse_ledger_page",
    "parse_order",
    "parse_order_book",
    "parse_position",
    "parse_price",
    "parse_ticker",
    "parse_trade",
]

_STATUS = {
    "open": order_pb2.ORDER_STATUS_OPEN,
    "closed": order_pb2.ORDER_STATUS_FILLED,
    "canceled": order_pb2.ORDER_STATUS_CANCELLED,
    "cancelled": order_pb2.ORDER_STATUS_CANCELLED,
    "expired": order_pb2.ORDER_STATUS_EXPIRED,
    "rejected": order_pb2.ORDER_STATUS_REJECTED,
}
_SIDE = {"buy": order_pb2.ORDER_SIDE_BUY, "sell": order_pb2.ORDER_SIDE_SELL}
_TIF = {
    "GTC": order_pb2.TIME_IN_FORCE_GTC,
    "PO": order_pb2.TIME_IN_FORCE_GTC,  # post-only is a flag on a GTC order
    "IOC": order_pb2.TIME_IN_FORCE_IOC,
    "FOK": order_pb2.TIME_IN_FORCE_FOK,
    "GTD": order_pb2.TIME_IN_FORCE_GTD,
}


# A canonical decimal string ("" when ccxt gave nothing); a float by its shortest ``repr``.
num = dec_text


def _map(value: object, what: str, venue: str) -> Mapping[str, Any]:
    if isinstance(value, dict):  # ccxt's structures (an order book is a dict subclass): no ABC check
        return value
    if not isinstance(value, Mapping):
        raise ParseError(f"{what}: expected an object, got {type(value).__name__}", venue=venue)
    return value


def _text(value: object, field: str, venue: str, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise ParseError(f"{field}: missing", venue=venue)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(f"{field}: expected text, got {type(value).__name__}", venue=venue)
    return str(value)


def _ms(value: object, field: str, venue: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ParseError(f"{field}: expected epoch milliseconds", venue=venue)
    return int(value)


def _stamp(field: Timestamp, ms: int) -> None:
    """Epoch milliseconds into a message's Timestamp field in place (no temporary message)."""
    field.seconds, rest = divmod(ms, 1000)
    field.nanos = rest * 1_000_000


def _canonical(symbols: SymbolMap, unified: object, venue: str) -> str:
    text = _text(unified, "symbol", venue, required=True)
    try:
        return symbols.to_canonical(text)
    except VenueError as err:
        raise ParseError(err.message, venue=venue) from None


def _base_units(contracts: str, size: Decimal | None) -> str:
    """``size`` None: one contract is one base unit (no arithmetic)."""
    return contracts if not contracts or size is None else dec_str(dec(contracts) * size)


def _size(sizes: Mapping[str, Decimal] | None, symbol: str) -> Decimal | None:
    size = sizes.get(symbol) if sizes else None
    return None if size is None or size == 1 else size


def parse_order(
    raw: object, symbols: SymbolMap, venue: str, sizes: Mapping[str, Decimal] | None = None
) -> order_pb2.Order:
    """``sizes``: base units per contract by canonical symbol (ccxt amounts are in contracts)."""
    o = _map(raw, "order", venue)
    symbol = _canonical(symbols, o.get("symbol"), venue)
    size = _size(sizes, symbol)
    status_text = o.get("status")
    if status_text not in _STATUS:
        raise ParseError(f"order status: unknown {status_text!r}", venue=venue)
    side = _SIDE.get(str(o.get("side")))
    if side is None:
        raise ParseError(f"order side: unknown {o.get('side')!r}", venue=venue)
    quantity = _base_units(num(o.get("amount"), "amount", venue), size)
    filled = _base_units(num(o.get("filled"), "filled", venue) or "0", size)
    remaining = _base_units(num(o.get("remaining"), "remaining", venue), size)
    status = _STATUS[str(status_text)]
    # filled is canonical text: "0" is the only zero, a leading "-" the only negative
    if status == order_pb2.ORDER_STATUS_OPEN and filled != "0" and filled[0] != "-":
        status = order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    trigger = num(o.get("triggerPrice") or o.get("stopPrice"), "triggerPrice", venue)
    kind = str(o.get("type") or "").lower()
    if kind == "limit":
        order_type = order_pb2.ORDER_TYPE_STOP_LIMIT if trigger else order_pb2.ORDER_TYPE_LIMIT
    elif kind == "market":
        order_type = order_pb2.ORDER_TYPE_STOP_MARKET if trigger else order_pb2.ORDER_TYPE_MARKET
    else:
        order_type = order_pb2.ORDER_TYPE_UNSPECIFIED
    tif_text = str(o.get("timeInForce") or "").upper()
    order = order_pb2.Order(
        order_id=_text(o.get("id"), "id", venue, required=True),
        client_order_id=_text(o.get("clientOrderId"), "clientOrderId", venue),
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=order_type,
        time_in_force=_TIF.get(tif_text, order_pb2.TIME_IN_FORCE_UNSPECIFIED),
        quantity=quantity,
        price=num(o.get("price"), "price", venue),
        stop_price=trigger,
        post_only=bool(o.get("postOnly")) or tif_text == "PO",
        reduce_only=bool(o.get("reduceOnly")),
        status=status,
        filled_quantity=filled,
        remaining_quantity=remaining,
        average_fill_price=num(o.get("average"), "average", venue),
    )
    fee = o.get("fee")
    if (type(fee) is dict or isinstance(fee, Mapping)) and fee.get("cost") is not None:
        order.total_fees = num(fee.get("cost"), "fee.cost", venue)
        order.fee_asset = _text(fee.get("currency"), "fee.currency", venue)
    if (created := _ms(o.get("timestamp"), "timestamp", venue)) is not None:
        _stamp(order.created_at, created)
    updated = _ms(o.get("lastUpdateTimestamp"), "lastUpdateTimestamp", venue)
    if updated is not None:
        _stamp(order.updated_at, updated)
    return order


def parse_balances(raw: object, venue: str, balance_type: int) -> list[balance_pb2.Balance]:
    """From ccxt's ``fetch_balance`` result: one Balance per currency present in ``total``."""
    b = _map(raw, "balance", venue)
    total = _map(b.get("total"), "balance.total", venue)
    free = _map(b.get("free") or {}, "balance.free", venue)
    used = _map(b.get("used") or {}, "balance.used", venue)
    out = []
    for asset in sorted(total):
        out.append(
            balance_pb2.Balance(
                venue=venue,
                asset=str(asset),
                balance_type=balance_type,  # type: ignore[arg-type]
                total=num(total[asset], f"total.{asset}", venue) or "0",
                available=num(free.get(asset), f"free.{asset}", venue) or "0",
                locked=num(used.get(asset), f"used.{asset}", venue) or "0",
            )
        )
    return out


_POSITION_SIDE = {"long": position_pb2.POSITION_SIDE_LONG, "short": position_pb2.POSITION_SIDE_SHORT}
_MARGIN_MODE = {"cross": position_pb2.MARGIN_MODE_CROSS, "isolated": position_pb2.MARGIN_MODE_ISOLATED}


def parse_position(
    raw: object, symbols: SymbolMap, venue: str, sizes: Mapping[str, Decimal] | None = None
) -> position_pb2.Position:
    p = _map(raw, "position", venue)
    symbol = _canonical(symbols, p.get("symbol"), venue)
    contracts = num(p.get("contracts"), "contracts", venue)
    if not contracts:
        raise ParseError("position: contracts missing", venue=venue)
    size = dec(contracts)
    side = _POSITION_SIDE.get(str(p.get("side")), position_pb2.POSITION_SIDE_UNSPECIFIED)
    if size == 0:
        side = position_pb2.POSITION_SIDE_FLAT
    elif side == position_pb2.POSITION_SIDE_UNSPECIFIED:
        raise ParseError(f"position side: unknown {p.get('side')!r}", venue=venue)
    contract_size = (sizes or {}).get(symbol, Decimal(1))
    position = position_pb2.Position(
        venue=venue,
        symbol=symbol,
        side=side,
        quantity=dec_str(abs(size) * contract_size),  # base units, never contracts
        entry_price=num(p.get("entryPrice"), "entryPrice", venue),
        mark_price=num(p.get("markPrice"), "markPrice", venue),
        liquidation_price=num(p.get("liquidationPrice"), "liquidationPrice", venue),
        leverage=num(p.get("leverage"), "leverage", venue),
        unrealized_pnl=num(p.get("unrealizedPnl"), "unrealizedPnl", venue),
        realized_pnl=num(p.get("realizedPnl"), "realizedPnl", venue),
        margin=num(p.get("collateral") or p.get("initialMargin"), "collateral", venue),
        margin_mode=_MARGIN_MODE.get(str(p.get("marginMode")), position_pb2.MARGIN_MODE_UNSPECIFIED),
        maintenance_margin=num(p.get("maintenanceMargin"), "maintenanceMargin", venue),
    )
    if (at := _ms(p.get("timestamp"), "timestamp", venue)) is not None:
        position.updated_at.CopyFrom(timestamp_from_ms(at))
    return position


_INTERVAL_UNITS = {"m": 60, "h": 3600, "d": 86400}


def _interval_seconds(value: object) -> int:
    """ccxt's funding ``interval`` (``"8h"``, ``"1h"``; docs.ccxt.com "Funding Rate Structure") in
    seconds; 0 (= not said) for anything else, so the caller's default applies instead of a guess."""
    if type(value) is not str or len(value) < 2 or not value[:-1].isdigit():
        return 0
    unit = _INTERVAL_UNITS.get(value[-1])
    return int(value[:-1]) * unit if unit is not None and len(value) <= 6 else 0


def parse_funding_rate(
    raw: object, symbol: str, venue: str, *, history: bool = False
) -> funding_pb2.FundingRate:
    """A current rate (ccxt ``FundingRate``: ``fundingTimestamp`` is the *next* settlement, see
    docs.ccxt.com "Funding Rate Structure") or, with ``history``, a settled one (ccxt
    ``FundingRateHistory``: ``timestamp`` is when it was charged)."""
    f = _map(raw, "funding rate", venue)
    rate = num(f.get("fundingRate"), "fundingRate", venue)
    if not rate:
        raise ParseError("funding rate: fundingRate missing", venue=venue)
    out = funding_pb2.FundingRate(
        venue=venue,
        symbol=symbol,
        rate=rate,
        predicted_rate=num(f.get("nextFundingRate"), "nextFundingRate", venue),
        mark_price=num(f.get("markPrice"), "markPrice", venue),
        index_price=num(f.get("indexPrice"), "indexPrice", venue),
    )
    ts = _ms(f.get("timestamp"), "timestamp", venue)
    if history:
        if ts is None:
            raise ParseError("funding history: timestamp missing", venue=venue)
        out.funding_time.CopyFrom(timestamp_from_ms(ts))
        return out
    out.interval_seconds = _interval_seconds(f.get("interval"))
    if (nxt := _ms(f.get("fundingTimestamp"), "fundingTimestamp", venue)) is not None:
        out.next_funding_time.CopyFrom(timestamp_from_ms(nxt))
    if ts is not None:
        out.timestamp.CopyFrom(timestamp_from_ms(ts))
    return out


def parse_bybit_settlements(
    raw: object, venue_id: str, symbol: str, venue: str
) -> tuple[list[transaction_pb2.Transaction], str]:
    """One page of Bybit's UTA transaction log (``GET /v5/account/transaction-log``, the raw reply ccxt's
    implicit method returns): the funding settlements of ``venue_id`` as funding transactions, and the
    next page's cursor ("" = none).  The documented ``funding`` sign is kept: + received, - paid
    (https://bybit-exchange.github.io/docs/v5/account/transaction-log)."""
    result = _map(_map(raw, "transaction log", venue).get("result"), "transaction log result", venue)
    rows = result.get("list")
    if not isinstance(rows, list):
        raise ParseError("transaction log: list missing", venue=venue)
    out = []
    for row in rows:
        r = _map(row, "transaction log row", venue)
        if r.get("type") != "SETTLEMENT" or r.get("symbol") != venue_id:
            continue
        amount = num(r.get("funding"), "funding", venue)
        if not amount or Decimal(amount) == 0:
            continue
        at = _text(r.get("transactionTime"), "transactionTime", venue, required=True)
        if not at.isdigit() or len(at) > 15:
            raise ParseError("transactionTime: expected epoch milliseconds", venue=venue)
        tx = transaction_pb2.Transaction(
            transaction_id=_text(r.get("id"), "id", venue, required=True),
            venue=venue,
            transaction_type=transaction_pb2.TRANSACTION_TYPE_FUNDING,
            status=transaction_pb2.TRANSACTION_STATUS_CONFIRMED,
            asset=_text(r.get("currency"), "currency", venue, required=True),
            amount=amount,
            price=num(r.get("tradePrice"), "tradePrice", venue),
        )
        _stamp(tx.timestamp, int(at))
        out.append(tx)
    cursor = _text(result.get("nextPageCursor"), "nextPageCursor", venue)
    return out, cursor


def parse_funding_income(raw: object, venue: str) -> transaction_pb2.Transaction:
    """One ccxt ``FundingHistory`` entry (docs.ccxt.com "Funding History Structure": ``id``, ``amount``,
    ``code``, ``timestamp``) as a funding transaction; ``amount`` as the venue signs it (the quirk table
    uses this only where that is + received)."""
    f = _map(raw, "funding income", venue)
    amount = num(f.get("amount"), "amount", venue)
    if not amount:
        raise ParseError("funding income: amount missing", venue=venue)
    at = _ms(f.get("timestamp"), "timestamp", venue)
    if at is None or at > 10**15:
        raise ParseError("funding income: timestamp missing", venue=venue)
    tx = transaction_pb2.Transaction(
        transaction_id=_text(f.get("id"), "id", venue, required=True),
        venue=venue,
        transaction_type=transaction_pb2.TRANSACTION_TYPE_FUNDING,
        status=transaction_pb2.TRANSACTION_STATUS_CONFIRMED,
        asset=_text(f.get("code"), "code", venue, required=True),
        amount=amount,
    )
    _stamp(tx.timestamp, at)
    return tx


def parse_ledger_page(
    raw: object, read: LedgerRead, venue_id: str, settle: str, venue: str
) -> tuple[list[transaction_pb2.Transaction], int, str]:
    """One page of a venue's funding-fee ledger (the raw reply ccxt's generated method returns, read as
    the quirk table's :class:`~cqvx.venues.ccxt.quirks.LedgerRead` says): the funding payments of
    ``venue_id`` as funding transactions (amount as the venue signs it: + received), how many rows the
    page held (every type, for paging) and the next cursor: the last row's id or the reply's cursor
    ("" = none).  ``settle`` is the asset where the rows name none."""
    body: object = raw
    for step in read.rows_path:
        body = _map(body, "ledger reply", venue).get(step)
    if not isinstance(body, list):
        raise ParseError("ledger: the rows are not a list", venue=venue)
    out = []
    last_id = ""
    for row in body:
        r = _map(row, "ledger row", venue)
        last_id = _text(r.get(read.id_key), read.id_key, venue, required=True)
        if r.get(read.type_key) != read.type_value or r.get(read.symbol_key) not in (None, "", venue_id):
            continue
        amount = num(r.get(read.amount_key), read.amount_key, venue)
        if not amount:
            raise ParseError(f"ledger row: {read.amount_key} missing", venue=venue)
        if Decimal(amount) == 0:
            continue
        at = r.get(read.time_key)
        if isinstance(at, bool) or not isinstance(at, str | int | float):
            raise ParseError(f"{read.time_key}: expected a time", venue=venue)
        ns = dec(at, read.time_key, venue) * read.time_unit_ms * 1_000_000
        if not 0 <= ns < 10**24:  # up to year 33658 in ns: far beyond any venue time
            raise ParseError(f"{read.time_key}: out of range", venue=venue)
        tx = transaction_pb2.Transaction(
            transaction_id=last_id,
            venue=venue,
            transaction_type=transaction_pb2.TRANSACTION_TYPE_FUNDING,
            status=transaction_pb2.TRANSACTION_STATUS_CONFIRMED,
            asset=_text(r.get(read.asset_key), read.asset_key, venue, required=True)
            if read.asset_key
            else settle,
            amount=amount,
        )
        tx.asset = tx.asset or settle
        set_timestamp_ns(tx.timestamp, int(ns))
        out.append(tx)
    cursor = last_id
    if read.paging == "body_cursor":
        at_path: object = raw
        for step in read.cursor_path:
            at_path = at_path.get(step) if isinstance(at_path, Mapping) else None
        cursor = _text(at_path, "cursor", venue)
    return out, len(body), cursor


def parse_candle(raw: object, symbol: str, interval: int, width_s: int, venue: str) -> candle_pb2.Candle:
    """A ccxt OHLCV row ``[ms, open, high, low, close, volume]``."""
    if not isinstance(raw, list | tuple) or len(raw) < 6:
        raise ParseError("candle: expected [time, open, high, low, close, volume]", venue=venue)
    start = _ms(raw[0], "candle time", venue)
    if start is None:
        raise ParseError("candle: time missing", venue=venue)
    candle = candle_pb2.Candle(
        venue=venue,
        symbol=symbol,
        interval=interval,  # type: ignore[arg-type]
        open=num(raw[1], "open", venue),
        high=num(raw[2], "high", venue),
        low=num(raw[3], "low", venue),
        close=num(raw[4], "close", venue),
        volume=num(raw[5], "volume", venue),
    )
    candle.open_time.CopyFrom(timestamp_from_ms(start))
    candle.close_time.CopyFrom(timestamp_from_ms(start + width_s * 1000))
    return candle


def parse_order_book(
    raw: object, symbol: str, venue: str, depth: int, size: Decimal | None = None
) -> orderbook_pb2.OrderBook:
    """``size``: base units per contract when ccxt's amounts are contracts (OKX, Gate), else None."""
    b = _map(raw, "order book", venue)
    bids, asks = b.get("bids"), b.get("asks")
    if not isinstance(bids, list) or not isinstance(asks, list):
        raise ParseError(f"order book {'asks' if isinstance(bids, list) else 'bids'}: missing", venue=venue)
    nonce = b.get("nonce")
    if type(nonce) is int and nonce >= 0:  # bool is not int here (type, not isinstance)
        book = orderbook_pb2.OrderBook(venue=venue, symbol=symbol, sequence=nonce)
    else:
        book = orderbook_pb2.OrderBook(venue=venue, symbol=symbol)
    for name, rows, levels in (("bids", bids, book.bids), ("asks", asks, book.asks)):
        add = levels.add
        for row in rows[:depth]:
            if (type(row) is not list and not isinstance(row, list | tuple)) or len(row) < 2:
                raise ParseError(f"order book {name}: bad level", venue=venue)
            price, qty = row[0], row[1]
            # ccxt.pro keeps book levels as floats: in this range a float's shortest repr is plain
            # digits with a point (what num() reads), ".0" the only trailing zero; else num() decides.
            if type(price) is float and 1e-4 <= price < 1e16:
                price_text = repr(price)
                if price_text[-2:] == ".0":
                    price_text = price_text[:-2]
            else:
                price_text = num(price, name, venue)
            if type(qty) is float and 1e-4 <= qty < 1e16:
                qty_text = repr(qty)
                if qty_text[-2:] == ".0":
                    qty_text = qty_text[:-2]
            else:
                qty_text = num(qty, name, venue)
            if size is not None:
                qty_text = _base_units(qty_text, size)
            add(price=price_text, quantity=qty_text)
    ts = b.get("timestamp")
    if type(ts) is int and ts >= 0:
        _stamp(book.timestamp, ts)
    elif ts is not None:
        _stamp(book.timestamp, _ms(ts, "timestamp", venue) or 0)
    return book


_TRADE_SIDE = {"buy": trade_pb2.TRADE_SIDE_BUY, "sell": trade_pb2.TRADE_SIDE_SELL}


def parse_trade(
    raw: object, symbols: SymbolMap, venue: str, sizes: Mapping[str, Decimal] | None = None
) -> trade_pb2.Trade:
    """A public trade (ccxt ``watch_trades``/``fetch_trades`` item); ``side`` is the aggressor's."""
    t = _map(raw, "trade", venue)
    symbol = _canonical(symbols, t.get("symbol"), venue)
    side = _TRADE_SIDE.get(str(t.get("side")))
    if side is None:
        raise ParseError(f"trade side: unknown {t.get('side')!r}", venue=venue)
    price = num(t.get("price"), "price", venue)
    amount = num(t.get("amount"), "amount", venue)
    if not price or not amount:
        raise ParseError("trade: price and amount are required", venue=venue)
    trade = trade_pb2.Trade(
        trade_id=_text(t.get("id"), "id", venue),
        venue=venue,
        symbol=symbol,
        price=price,
        quantity=_base_units(amount, _size(sizes, symbol)),
        side=side,
    )
    if (ts := _ms(t.get("timestamp"), "timestamp", venue)) is not None:
        _stamp(trade.timestamp, ts)
    return trade


def parse_price(raw: object, symbol: str, venue: str, size: Decimal | None = None) -> price_pb2.Price:
    """A ccxt ticker (``fetch_ticker``/``watch_ticker``) as a Price; a ticker without any price is a
    ParseError (never an empty price).  ``size``: base units per contract (touch sizes are contracts
    where ccxt's amounts are), else None."""
    t = _map(raw, "ticker", venue)
    price = price_pb2.Price(
        venue=venue,
        symbol=symbol,
        last=num(t.get("last"), "last", venue),
        bid=num(t.get("bid"), "bid", venue),
        ask=num(t.get("ask"), "ask", venue),
        bid_size=_base_units(num(t.get("bidVolume"), "bidVolume", venue), size),
        ask_size=_base_units(num(t.get("askVolume"), "askVolume", venue), size),
        mark=num(t.get("markPrice"), "markPrice", venue),
        index=num(t.get("indexPrice"), "indexPrice", venue),
    )
    if not (price.last or price.bid or price.ask or price.mark):
        raise ParseError("ticker: no price in it", venue=venue)
    if (ts := _ms(t.get("timestamp"), "timestamp", venue)) is not None:
        price.timestamp.CopyFrom(timestamp_from_ms(ts))
    return price


def parse_ticker(raw: object, symbol: str, venue: str) -> price_pb2.Ticker:
    t = _map(raw, "ticker", venue)
    ticker = price_pb2.Ticker(
        venue=venue,
        symbol=symbol,
        last=num(t.get("last"), "last", venue),
        bid=num(t.get("bid"), "bid", venue),
        ask=num(t.get("ask"), "ask", venue),
        open_24h=num(t.get("open"), "open", venue),
        high_24h=num(t.get("high"), "high", venue),
        low_24h=num(t.get("low"), "low", venue),
        volume_24h=num(t.get("baseVolume"), "baseVolume", venue),
        quote_volume_24h=num(t.get("quoteVolume"), "quoteVolume", venue),
    )
    if (ts := _ms(t.get("timestamp"), "timestamp", venue)) is not None:
        ticker.timestamp.CopyFrom(timestamp_from_ms(ts))
    return ticker
