"""msgspec shapes of Coinbase Prime replies (official SDK models; venues.md §2.3).

Decimals arrive as JSON strings and stay ``str`` here; :mod:`cqvx.venues.prime.parse` reads them with
:func:`cqvx.num.dec`.  Fields that carry a reply's meaning have no default, so a reply without them
fails to decode (a ParseError), never reads as empty.  Unknown fields are ignored (Prime adds fields).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AcceptQuoteResponse",
    "Balance",
    "BalancesResponse",
    "CancelResponse",
    "CreateOrderResponse",
    "ErrorBody",
    "Fill",
    "FillsPage",
    "GetOrderResponse",
    "Order",
    "OrdersPage",
    "Pagination",
    "Portfolio",
    "PortfolioResponse",
    "PortfoliosResponse",
    "Preview",
    "Product",
    "ProductsPage",
    "QuoteResponse",
]


class Pagination(msgspec.Struct):
    has_next: bool
    next_cursor: str | None = None
    sort_direction: str | None = None


class CreateOrderResponse(msgspec.Struct):
    order_id: str


class CancelResponse(msgspec.Struct):
    id: str


class Order(msgspec.Struct):
    id: str
    product_id: str
    side: str
    type: str
    status: str
    client_order_id: str | None = None
    portfolio_id: str | None = None
    base_quantity: str | None = None
    quote_value: str | None = None
    limit_price: str | None = None
    stop_price: str | None = None
    start_time: str | None = None
    expiry_time: str | None = None
    time_in_force: str | None = None
    created_at: str | None = None
    filled_quantity: str | None = None
    filled_value: str | None = None
    average_filled_price: str | None = None
    commission: str | None = None
    exchange_fee: str | None = None
    historical_pov: str | None = None
    post_only: bool | None = None


class GetOrderResponse(msgspec.Struct):
    order: Order


class OrdersPage(msgspec.Struct):
    orders: list[Order]
    pagination: Pagination


class Fill(msgspec.Struct):
    id: str
    order_id: str
    product_id: str
    side: str
    filled_quantity: str
    price: str
    time: str
    filled_value: str | None = None
    commission: str | None = None
    venue: str | None = None
    venue_fees: str | None = None


class FillsPage(msgspec.Struct):
    fills: list[Fill]
    pagination: Pagination


class Balance(msgspec.Struct):
    symbol: str
    amount: str
    holds: str


class BalancesResponse(msgspec.Struct):
    balances: list[Balance]
    type: str | None = None


class Product(msgspec.Struct):
    id: str
    base_increment: str
    quote_increment: str
    price_increment: str  # the price tick (venues.md §11), required
    base_min_size: str | None = None
    base_max_size: str | None = None
    quote_min_size: str | None = None
    quote_max_size: str | None = None
    permissions: list[str] | None = None


class ProductsPage(msgspec.Struct):
    products: list[Product]
    pagination: Pagination


class Candle(msgspec.Struct):
    # Get Public Product Candles (Beta): every field a string; ``timestamp`` is RFC 3339.
    timestamp: str
    open: str
    high: str
    low: str
    close: str
    volume: str


class CandlesPage(msgspec.Struct):
    candles: list[Candle]
    pagination: Pagination


class Portfolio(msgspec.Struct):
    id: str
    name: str
    entity_id: str | None = None
    organization_id: str | None = None


class PortfoliosResponse(msgspec.Struct):
    portfolios: list[Portfolio]


class PortfolioResponse(msgspec.Struct):
    portfolio: Portfolio


class Preview(msgspec.Struct):
    commission: str
    slippage: str
    product_id: str | None = None
    side: str | None = None
    type: str | None = None
    base_quantity: str | None = None
    quote_value: str | None = None
    limit_price: str | None = None
    best_bid: str | None = None
    best_ask: str | None = None
    average_filled_price: str | None = None
    order_total: str | None = None


class QuoteResponse(msgspec.Struct):
    quote_id: str
    expiration_time: str
    best_price: str
    order_total: str | None = None
    price_inclusive_of_fees: str | None = None


class AcceptQuoteResponse(msgspec.Struct):
    order_id: str


class ErrorBody(msgspec.Struct):
    code: str | None = None
    message: str | None = None
    subcode: str | None = None
    trace_id: str | None = None
