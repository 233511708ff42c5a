"""Binance USD-M JSON shapes built from the simulated venue's cqc messages (the fake's only encoder).

Shapes follow the USD-M REST reference (developers.binance.com/docs/derivatives/usds-margined-futures):
New Order / Query Order (order object), Account Information V3, Position Information V2, Exchange
Information, Order Book, Mark Price (premiumIndex), Get Funding Rate History, Kline.  Shares no code
with the adapter under test.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from cqc.markets.v1 import candle_pb2, funding_pb2, orderbook_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, order_pb2
from cqvx.timeutil import to_ns
from cqvx.venues.sim.config import InstrumentSpec

STATUS = {
    order_pb2.ORDER_STATUS_PENDING_NEW: "NEW",
    order_pb2.ORDER_STATUS_OPEN: "NEW",
    order_pb2.ORDER_STATUS_PARTIALLY_FILLED: "PARTIALLY_FILLED",
    order_pb2.ORDER_STATUS_FILLED: "FILLED",
    order_pb2.ORDER_STATUS_CANCELLED: "CANCELED",
    order_pb2.ORDER_STATUS_PENDING_CANCEL: "CANCELED",
    order_pb2.ORDER_STATUS_REJECTED: "REJECTED",
    order_pb2.ORDER_STATUS_EXPIRED: "EXPIRED",
    order_pb2.ORDER_STATUS_FAILED: "REJECTED",
}
TIF = {
    order_pb2.TIME_IN_FORCE_GTC: "GTC",
    order_pb2.TIME_IN_FORCE_IOC: "IOC",
    order_pb2.TIME_IN_FORCE_FOK: "FOK",
}


def venue_symbol(canonical: str) -> str:
    """``BTC-USDT-PERP`` -> ``BTCUSDT`` (the fake lists perpetuals only)."""
    base, quote, _ = canonical.split("-")
    return base + quote


def _ms(ts: Any) -> int:
    return to_ns(ts) // 1_000_000 if ts.seconds or ts.nanos else 0


def _z(text: str) -> str:
    return text or "0"


def order(o: order_pb2.Order) -> dict[str, Any]:
    filled = _z(o.filled_quantity)
    avg = _z(o.average_fill_price)
    tif = "GTX" if o.post_only else TIF.get(o.time_in_force, "GTC")
    kind = "LIMIT" if o.order_type == order_pb2.ORDER_TYPE_LIMIT else "MARKET"
    return {
        "orderId": int(o.order_id.removeprefix("sim-")),
        "symbol": venue_symbol(o.symbol),
        "status": STATUS.get(o.status, "NEW"),
        "clientOrderId": o.client_order_id,
        "price": _z(o.price),
        "avgPrice": avg,
        "origQty": o.quantity,
        "executedQty": filled,
        "cumQuote": "0",
        "timeInForce": tif,
        "type": kind,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": "BUY" if o.side == order_pb2.ORDER_SIDE_BUY else "SELL",
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": kind,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": _ms(o.created_at),
        "updateTime": _ms(o.updated_at) or _ms(o.created_at),
    }


def symbol_info(spec: InstrumentSpec) -> dict[str, Any]:
    tick, lot = str(spec.tick_size), str(spec.lot_size)
    return {
        "symbol": venue_symbol(spec.symbol),
        "pair": venue_symbol(spec.symbol),
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "pricePrecision": max(0, -spec.tick_size.normalize().as_tuple().exponent),  # type: ignore[operator]
        "quantityPrecision": max(0, -spec.lot_size.normalize().as_tuple().exponent),  # type: ignore[operator]
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "triggerProtect": "0.0500",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "10000000", "tickSize": tick},
            {
                "filterType": "LOT_SIZE",
                "minQty": str(spec.min_quantity),
                "maxQty": str(spec.max_quantity),
                "stepSize": lot,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": str(spec.min_quantity),
                "maxQty": str(spec.max_quantity),
                "stepSize": lot,
            },
            {"filterType": "MIN_NOTIONAL", "notional": str(spec.min_notional)},
        ],
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def account(balances: list[balance_pb2.Balance], positions: list[position_pb2.Position]) -> dict[str, Any]:
    assets = [
        {
            "asset": b.asset,
            "walletBalance": _z(b.total),
            "unrealizedProfit": "0",
            "marginBalance": _z(b.total),
            "maintMargin": "0",
            "initialMargin": _z(b.locked),
            "positionInitialMargin": "0",
            "openOrderInitialMargin": _z(b.locked),
            "crossWalletBalance": _z(b.total),
            "crossUnPnl": "0",
            "availableBalance": _z(b.available),
            "maxWithdrawAmount": _z(b.available),
            "updateTime": int(time.time() * 1000),  # 0 marks an uninitialised asset (ccxt skips it)
        }
        for b in balances
    ]
    usdt = next((b for b in balances if b.asset == "USDT"), None)
    pnl = sum((Decimal(p.unrealized_pnl or "0") for p in positions), Decimal(0))
    margin = sum((Decimal(p.margin or "0") for p in positions), Decimal(0))
    maint = sum((Decimal(p.maintenance_margin or "0") for p in positions), Decimal(0))
    wallet = Decimal(usdt.total or "0") if usdt else Decimal(0)
    # Account Information V3, single-asset mode: the totals count the USDT asset only.
    return {
        "totalInitialMargin": str(margin + Decimal(usdt.locked or "0") if usdt else margin),
        "totalMaintMargin": str(maint),
        "totalWalletBalance": str(wallet),
        "totalUnrealizedProfit": str(pnl),
        "totalMarginBalance": str(wallet + pnl),
        "totalPositionInitialMargin": str(margin),
        "totalOpenOrderInitialMargin": _z(usdt.locked) if usdt else "0",
        "totalCrossWalletBalance": str(wallet),
        "totalCrossUnPnl": str(pnl),
        "availableBalance": _z(usdt.available) if usdt else "0",
        "maxWithdrawAmount": _z(usdt.available) if usdt else "0",
        "assets": assets,
        "positions": [{"symbol": venue_symbol(p.symbol), "positionAmt": _signed(p)} for p in positions],
    }


def _signed(p: position_pb2.Position) -> str:
    return ("-" + p.quantity) if p.side == position_pb2.POSITION_SIDE_SHORT else p.quantity


def position_risk(p: position_pb2.Position) -> dict[str, Any]:
    return {
        "symbol": venue_symbol(p.symbol),
        "positionAmt": _signed(p),
        "entryPrice": _z(p.entry_price),
        "markPrice": _z(p.mark_price),
        "unRealizedProfit": _z(p.unrealized_pnl),
        "liquidationPrice": _z(p.liquidation_price),
        "leverage": _z(p.leverage),
        "maxNotionalValue": "250000",
        "marginType": "isolated" if p.margin_mode == position_pb2.MARGIN_MODE_ISOLATED else "cross",
        "isolatedMargin": "0",
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": str(Decimal(_signed(p)) * Decimal(_z(p.mark_price))),
        "isolatedWallet": "0",
        "updateTime": _ms(p.updated_at),
    }


def depth(book: orderbook_pb2.OrderBook) -> dict[str, Any]:
    return {
        "lastUpdateId": book.sequence,
        "E": _ms(book.timestamp),
        "T": _ms(book.timestamp),
        "bids": [[lv.price, lv.quantity] for lv in book.bids],
        "asks": [[lv.price, lv.quantity] for lv in book.asks],
    }


def premium_index(f: funding_pb2.FundingRate, symbol: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "markPrice": _z(f.mark_price),
        "indexPrice": _z(f.index_price),
        "estimatedSettlePrice": _z(f.mark_price),
        "lastFundingRate": f.rate,
        "interestRate": "0.00010000",
        "nextFundingTime": _ms(f.next_funding_time),
        "time": _ms(f.timestamp),
    }


def kline(c: candle_pb2.Candle) -> list[Any]:
    return [
        _ms(c.open_time),
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        _ms(c.close_time) - 1,
        _z(c.quote_volume),
        c.trade_count,
        "0",
        "0",
        "0",
    ]
