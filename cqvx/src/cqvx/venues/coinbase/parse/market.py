"""REST market data: products, order books, best bid/ask, candles and public trades -> cqc messages."""

from __future__ import annotations

from cqc.markets.v1 import candle_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqvx.errors import ParseError
from cqvx.num import dec
from cqvx.timeutil import to_datetime
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase.errors import VENUE
from cqvx.venues.coinbase.parse._common import (
    ToCanonical,
    _identity,
    _unix_seconds,
    dec_text,
    decode,
    timestamp,
)

# --- products ------------------------------------------------------------------------------------


def _precision(step: str) -> int:
    if not step:
        return 0
    d = dec(step, "increment", VENUE).normalize()
    exp = d.as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def canonical_for_product(p: m.Product) -> str:
    """Canonical id: spot ids as they are; futures ``ROOT-QUOTE-PERP`` or ``ROOT-QUOTE-YYYYMMDD``.
    A future without ``future_product_details`` has no canonical id (never its product id)."""
    if p.product_type != "FUTURE":
        return p.product_id
    if p.future_product_details is None:
        raise ParseError(f"future {p.product_id[:40]}: no future_product_details", venue=VENUE)
    fd = p.future_product_details
    # Root and quote come from the product, never from splitting its id or guessing USD.
    root = fd.contract_root_unit or p.base_currency_id
    quote = p.quote_currency_id
    if not root or not quote:
        raise ParseError(f"future {p.product_id[:40]}: no root unit or quote currency", venue=VENUE)
    if fd.contract_expiry_type == "PERPETUAL":
        return f"{root}-{quote}-PERP"
    expiry = timestamp(fd.contract_expiry, "contract_expiry")
    if expiry is None:
        raise ParseError(f"future {p.product_id[:40]}: no contract_expiry", venue=VENUE)
    day = to_datetime(expiry)
    # Zero-padded by hand: strftime("%Y") does not pad years before 1000 on every platform.
    return f"{root}-{quote}-{day.year:04d}{day.month:02d}{day.day:02d}"


def _funding_interval(text: str | None) -> int:
    """``funding_interval`` ("3600s", a protobuf Duration in JSON) -> whole seconds; 0 when absent."""
    if not text:
        return 0
    digits = text[:-1]
    if not (text.endswith("s") and digits.isascii() and digits.isdigit() and len(digits) <= 9):
        raise ParseError(f"funding_interval: not a duration in seconds: {text[:30]!r}", venue=VENUE)
    return int(digits)


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
        if out.contract_size == "0":
            raise ParseError(f"future {p.product_id[:40]}: contract_size 0", venue=VENUE)
        expiry = timestamp(fd.contract_expiry, "contract_expiry")
        if expiry is not None and not perpetual:
            out.expiry.CopyFrom(expiry)
        out.funding_interval_seconds = _funding_interval(fd.funding_interval)
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
