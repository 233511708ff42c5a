"""Wire schemas of the Advanced Trade REST and WebSocket payloads (msgspec Structs, one per shape).

Field names and types follow the Advanced Trade REST reference
(https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api) and the WebSocket channels page
(https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels), checked
against the real samples in ``tests/coinbase/fixtures``.  Unknown fields are ignored (the venue adds
fields without notice).  Absence is not emptiness: the field that carries a reply's meaning (the orders
list, the accounts list, a create-order ``success`` flag, a position's size) has no default, or defaults
to None and the parser refuses None, so an error object or another API version's envelope is a
ParseError, never "no orders" or "flat".  Other fields are optional.  Numbers stay strings here:
:mod:`cqvx.venues.coinbase.parse` turns them into Decimals, never floats.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Account",
    "AccountsResponse",
    "BestBidAskResponse",
    "CancelResponse",
    "CancelResult",
    "Candle",
    "CandlesResponse",
    "CreateOrderResponse",
    "Envelope",
    "FcmBalanceSummary",
    "FcmBalanceSummaryResponse",
    "FcmPosition",
    "FcmPositionResponse",
    "FcmPositionsResponse",
    "Fill",
    "FillsResponse",
    "GetOrderResponse",
    "IntxAsset",
    "IntxBalance",
    "IntxBalancesResponse",
    "IntxPortfolio",
    "IntxPortfolioBalances",
    "IntxPortfolioSummaryResponse",
    "IntxPosition",
    "IntxPositionResponse",
    "IntxPositionsResponse",
    "IntxSummary",
    "L2Event",
    "L2Update",
    "MarketTrade",
    "MarketTradesEvent",
    "Money",
    "MoneyOrText",
    "Order",
    "OrderConfig",
    "OrderLeg",
    "OrdersResponse",
    "PriceBook",
    "PriceLevel",
    "Product",
    "ProductBookResponse",
    "ProductsResponse",
    "TickerEvent",
    "TickerResponse",
    "UserEvent",
    "WsCandlesEvent",
    "WsHeartbeatEvent",
    "WsOrder",
    "WsTicker",
]


class _S(msgspec.Struct, kw_only=True):
    """Base: tolerate unknown fields, keyword construction (tests and the fake server build these)."""


# --- shared -------------------------------------------------------------------------------------


class Money(_S):
    value: str = ""
    currency: str = ""


class PriceLevel(_S):
    price: str = ""
    size: str = ""


# --- orders -------------------------------------------------------------------------------------


class OrderLeg(_S):
    """One ``order_configuration`` variant; fields not used by a variant stay empty."""

    base_size: str = ""
    quote_size: str = ""
    limit_price: str = ""
    stop_price: str = ""
    stop_trigger_price: str = ""
    stop_direction: str = ""
    end_time: str = ""
    post_only: bool = False


class OrderConfig(_S):
    """``order_configuration``: exactly one key is set (create-order guide,
    https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/guides/orders)."""

    market_market_ioc: OrderLeg | None = None
    market_market_fok: OrderLeg | None = None
    sor_limit_ioc: OrderLeg | None = None
    limit_limit_gtc: OrderLeg | None = None
    limit_limit_gtd: OrderLeg | None = None
    limit_limit_fok: OrderLeg | None = None
    stop_limit_stop_limit_gtc: OrderLeg | None = None
    stop_limit_stop_limit_gtd: OrderLeg | None = None
    trigger_bracket_gtc: OrderLeg | None = None
    trigger_bracket_gtd: OrderLeg | None = None


class Order(_S):
    order_id: str = ""
    product_id: str = ""
    user_id: str = ""
    order_configuration: OrderConfig | None = None
    side: str = ""
    client_order_id: str = ""
    status: str = ""
    time_in_force: str = ""
    created_time: str | None = None
    completion_percentage: str = ""
    filled_size: str | None = None
    average_filled_price: str | None = None
    number_of_fills: str = ""
    filled_value: str | None = None
    pending_cancel: bool = False
    size_in_quote: bool = False
    total_fees: str | None = None
    trigger_status: str = ""
    order_type: str = ""
    reject_reason: str | None = None
    settled: bool = False
    product_type: str = ""
    reject_message: str | None = None
    cancel_message: str | None = None
    outstanding_hold_amount: str | None = None
    last_fill_time: str | None = None
    leverage: str | None = None
    margin_type: str | None = None
    retail_portfolio_id: str | None = None


class GetOrderResponse(_S):
    order: Order


class OrdersResponse(_S):
    orders: list[Order]
    has_next: bool  # absent: whether more pages exist is unknown, so no page is read as the last
    cursor: str = ""


class SuccessResponse(_S):
    order_id: str = ""
    product_id: str = ""
    side: str = ""
    client_order_id: str = ""


class ErrorResponse(_S):
    error: str = ""
    message: str = ""
    error_details: str = ""
    preview_failure_reason: str = ""
    new_order_failure_reason: str = ""


class CreateOrderResponse(_S):
    # None = absent: not the documented shape, so the outcome is unknown (never "rejected").
    success: bool | None = None
    failure_reason: str = ""
    order_id: str = ""
    success_response: SuccessResponse | None = None
    error_response: ErrorResponse | None = None


class CancelResult(_S):
    success: bool | None = None
    failure_reason: str = ""
    order_id: str = ""


class CancelResponse(_S):
    results: list[CancelResult]


class Fill(_S):
    entry_id: str = ""
    trade_id: str = ""
    order_id: str = ""
    trade_time: str = ""
    trade_type: str = ""
    price: str = ""
    size: str = ""
    commission: str = ""
    product_id: str = ""
    sequence_timestamp: str = ""
    liquidity_indicator: str = ""
    size_in_quote: bool = False
    side: str = ""
    retail_portfolio_id: str | None = None


class FillsResponse(_S):
    fills: list[Fill]
    cursor: str = ""


# --- accounts -----------------------------------------------------------------------------------


class Account(_S):
    uuid: str = ""
    name: str = ""
    currency: str = ""
    available_balance: Money | None = None
    hold: Money | None = None
    type: str = ""
    active: bool = True
    ready: bool = True
    updated_at: str | None = None
    retail_portfolio_id: str | None = None


class AccountsResponse(_S):
    accounts: list[Account]
    has_next: bool
    cursor: str = ""


# --- US derivatives (CFM futures) account ---------------------------------------------------------

# The futures reference documents money fields both as plain decimal strings and as
# ``{"value", "currency"}`` objects (list/get futures positions vs the balance summary pages; the
# published samples use objects throughout): both are accepted.
MoneyOrText = str | Money | None


class FcmPosition(_S):
    product_id: str = ""
    expiration_time: str | None = None
    side: str = ""
    number_of_contracts: str | None = None  # the size: required by the parser
    current_price: MoneyOrText = None
    avg_entry_price: MoneyOrText = None
    unrealized_pnl: MoneyOrText = None
    daily_realized_pnl: MoneyOrText = None
    contract_size: str = ""
    liquidation_price: MoneyOrText = None
    leverage: str = ""
    im_contribution: MoneyOrText = None
    mm_contribution: MoneyOrText = None


class FcmPositionsResponse(_S):
    positions: list[FcmPosition]


class FcmPositionResponse(_S):
    position: FcmPosition


class FcmBalanceSummary(_S):
    futures_buying_power: MoneyOrText = None
    total_usd_balance: MoneyOrText = None
    cbi_usd_balance: MoneyOrText = None
    cfm_usd_balance: MoneyOrText = None
    total_open_orders_hold_amount: MoneyOrText = None
    unrealized_pnl: MoneyOrText = None
    daily_realized_pnl: MoneyOrText = None
    initial_margin: MoneyOrText = None
    available_margin: MoneyOrText = None
    liquidation_threshold: MoneyOrText = None
    liquidation_buffer_amount: MoneyOrText = None
    liquidation_buffer_percentage: str = ""


class FcmBalanceSummaryResponse(_S):
    balance_summary: FcmBalanceSummary | None = None


# --- perpetuals on Coinbase International (INTX), per perpetuals portfolio ------------------------------
# Shapes: List/Get Perpetuals Position(s), Get Perpetuals Portfolio Summary, Get Portfolio Balances
# (https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/perpetuals/...); money
# fields are ``{"value", "currency"}`` objects there, but plain strings are accepted as for CFM.


class IntxPosition(_S):
    product_id: str = ""
    product_uuid: str = ""
    portfolio_uuid: str = ""
    symbol: str = ""
    vwap: MoneyOrText = None
    entry_vwap: MoneyOrText = None
    position_side: str = ""  # POSITION_SIDE_LONG / POSITION_SIDE_SHORT / POSITION_SIDE_UNKNOWN
    margin_type: str = ""  # MARGIN_TYPE_CROSS / MARGIN_TYPE_ISOLATED / MARGIN_TYPE_UNSPECIFIED
    net_size: str | None = None  # the size, in contracts: required by the parser
    buy_order_size: str = ""
    sell_order_size: str = ""
    im_contribution: str = ""
    unrealized_pnl: MoneyOrText = None
    mark_price: MoneyOrText = None
    liquidation_price: MoneyOrText = None
    leverage: str = ""
    im_notional: MoneyOrText = None
    mm_notional: MoneyOrText = None
    position_notional: MoneyOrText = None
    aggregated_pnl: MoneyOrText = None


class IntxPositionsResponse(_S):
    positions: list[IntxPosition]


class IntxPositionResponse(_S):
    position: IntxPosition


class IntxPortfolio(_S):
    portfolio_uuid: str = ""
    collateral: str | None = None
    position_notional: str = ""
    open_position_notional: str = ""
    pending_fees: str = ""
    borrow: str = ""
    accrued_interest: str = ""
    rolling_debt: str = ""
    portfolio_initial_margin: str = ""
    portfolio_im_notional: MoneyOrText = None
    portfolio_maintenance_margin: str = ""
    portfolio_mm_notional: MoneyOrText = None
    liquidation_percentage: str = ""
    liquidation_buffer: str = ""
    margin_type: str = ""
    liquidation_status: str = ""
    unrealized_pnl: MoneyOrText = None
    total_balance: MoneyOrText = None


class IntxSummary(_S):
    unrealized_pnl: MoneyOrText = None
    buying_power: MoneyOrText = None
    total_balance: MoneyOrText = None
    max_withdrawal_amount: MoneyOrText = None


class IntxPortfolioSummaryResponse(_S):
    portfolios: list[IntxPortfolio]
    summary: IntxSummary | None = None


class IntxAsset(_S):
    asset_id: str = ""
    asset_uuid: str = ""
    asset_name: str = ""
    status: str = ""


class IntxBalance(_S):
    asset: IntxAsset | None = None
    quantity: str | None = None
    hold: str | None = None
    transfer_hold: str = ""
    collateral_value: str = ""
    collateral_weight: str = ""
    max_withdraw_amount: str = ""
    loan: str = ""
    loan_collateral_requirement_usd: str = ""
    pledged_quantity: str = ""


class IntxPortfolioBalances(_S):
    balances: list[IntxBalance]
    portfolio_uuid: str = ""
    is_margin_limit_reached: bool = False


class IntxBalancesResponse(_S):
    portfolio_balances: list[IntxPortfolioBalances]


# --- products and market data ---------------------------------------------------------------------


class FutureProductDetails(_S):
    contract_expiry: str | None = None
    contract_size: str = ""
    contract_root_unit: str = ""
    contract_expiry_type: str = ""
    funding_interval: str | None = None


class Product(_S):
    product_id: str = ""
    price: str = ""
    volume_24h: str = ""
    base_increment: str = ""
    quote_increment: str = ""
    price_increment: str = ""
    quote_min_size: str = ""
    quote_max_size: str = ""
    base_min_size: str = ""
    base_max_size: str = ""
    status: str = ""
    cancel_only: bool = False
    limit_only: bool = False
    post_only: bool = False
    trading_disabled: bool = False
    is_disabled: bool = False
    product_type: str = ""
    quote_currency_id: str = ""
    base_currency_id: str = ""
    base_display_symbol: str = ""
    quote_display_symbol: str = ""
    future_product_details: FutureProductDetails | None = None


class ProductsResponse(_S):
    products: list[Product]
    num_products: int = 0


class PriceBook(_S):
    product_id: str = ""
    bids: list[PriceLevel] = []
    asks: list[PriceLevel] = []
    time: str | None = None


class ProductBookResponse(_S):
    pricebook: PriceBook


class BestBidAskResponse(_S):
    pricebooks: list[PriceBook]


class Candle(_S):
    start: str = ""
    low: str = ""
    high: str = ""
    open: str = ""
    close: str = ""
    volume: str = ""
    product_id: str = ""


class CandlesResponse(_S):
    candles: list[Candle]


class MarketTrade(_S):
    trade_id: str = ""
    product_id: str = ""
    price: str = ""
    size: str = ""
    time: str = ""
    side: str = ""


class TickerResponse(_S):
    """``GET /products/{id}/ticker`` ("market trades")."""

    trades: list[MarketTrade]
    best_bid: str = ""
    best_ask: str = ""


# --- WebSocket ----------------------------------------------------------------------------------


class Envelope(_S):
    """Every message: ``events`` is kept raw and decoded by channel (one JSON pass per message)."""

    channel: str = ""
    client_id: str = ""
    timestamp: str = ""
    sequence_num: int = 0
    events: msgspec.Raw = msgspec.Raw(b"[]")
    # The server's error frame: {"type":"error","message":"..."}.
    type: str = ""
    message: str = ""


class L2Update(_S):
    side: str = ""
    event_time: str = ""
    price_level: str = ""
    new_quantity: str = ""


class L2Event(_S):
    updates: list[L2Update]
    type: str = ""
    product_id: str = ""


class MarketTradesEvent(_S):
    trades: list[MarketTrade]
    type: str = ""


class WsTicker(_S):
    type: str = ""
    product_id: str = ""
    price: str = ""
    volume_24_h: str = ""
    low_24_h: str = ""
    high_24_h: str = ""
    best_bid: str = ""
    best_bid_quantity: str = ""
    best_ask: str = ""
    best_ask_quantity: str = ""


class TickerEvent(_S):
    tickers: list[WsTicker]
    type: str = ""


class WsCandlesEvent(_S):
    candles: list[Candle]
    type: str = ""


class WsHeartbeatEvent(_S):
    current_time: str = ""
    # Docs examples show a string, the AsyncAPI spec and production an integer (venues.md §1.6).
    heartbeat_counter: int | str = 0


class WsOrder(_S):
    """A ``user`` channel order: CUMULATIVE state, no per-fill events."""

    order_id: str = ""
    client_order_id: str = ""
    cumulative_quantity: str = ""
    leaves_quantity: str = ""
    avg_price: str = ""
    total_fees: str = ""
    status: str = ""
    product_id: str = ""
    creation_time: str = ""
    order_side: str = ""
    order_type: str = ""
    cancel_reason: str = ""
    reject_reason: str = ""
    time_in_force: str = ""
    limit_price: str = ""
    stop_price: str = ""
    # A string "true"/"false" on the wire (channels page); accept a boolean too.
    post_only: str | bool = ""
    number_of_fills: str = ""
    filled_value: str = ""
    end_time: str = ""


class UserEvent(_S):
    # A snapshot without ``orders`` is unreadable, never "no open orders".
    orders: list[WsOrder]
    type: str = ""
