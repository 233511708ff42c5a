"""Per-venue quirk tables for the ccxt adapter: everything that differs between the five venues.

One :class:`VenueQuirks` per venue type, in :data:`QUIRKS`; the client reads nothing venue-specific
from anywhere else.  Each line cites the venue documentation it comes from (checked against ccxt
4.5.90's own ``exceptions``/``options`` tables where ccxt encodes the same fact):

* client order id: the request field, maximum length and alphabet.  An id outside them is refused
  *before* sending (``InvalidRequest``), so the venue never silently drops or rewrites our id (a
  placement we could not look up again).
* post-only and reduce-only: the venue parameter ccxt sends for ``params={"postOnly": True}`` /
  ``{"reduceOnly": True}``; recorded so the mapping is visible and tested, never guessed.
* position mode (one-way/hedge): how the account's mode is read (:class:`ModeRead`: the venue's
  documented request and the values it documents).  The grid needs one-way mode;
  :mod:`.position_mode` reads it before the first placement on a derivative and refuses a hedge-mode
  (or unreadable) account before anything is sent.  Margin mode: the venue's parameter names.
* duplicate client order id: the venue's error code(s); :mod:`.errors` turns them into
  :class:`~cqvx.errors.DuplicateOrder`, which the client resolves by fetching that order.
* contract size: on derivatives ccxt's ``amount`` is in *contracts* (OKX BTC-USDT-SWAP: 0.01 BTC;
  Gate BTC_USDT: 0.0001 BTC; Binance, Bybit, Bitget linear: 1), read from the market, never tabled.
* keepalive: Binance's listen key (REST ``PUT /fapi/v1/listenKey``; the key expires 60 minutes after
  the last keepalive, the docs recommend one every 30 minutes) and each venue's WebSocket ping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cqvx.errors import InvalidRequest
from cqvx.venues.ccxt.reads import LedgerRead, ModeRead

__all__ = [
    "QUIRKS",
    "SETTLE",
    "LedgerRead",
    "ModeRead",
    "VenueQuirks",
    "check_client_order_id",
    "lookup_args",
    "quirks_for",
]

# In a ``summary_path`` row selector: the account's settle currency, resolved by ``account.py`` (the
# config's ``settle``, else the one ``settle`` of the loaded derivative markets), never a fixed coin.
SETTLE = "<settle>"


@dataclass(frozen=True, slots=True)
class VenueQuirks:
    venue: str  # our venue type name (registry key)
    ccxt_id: str  # the ccxt.pro exchange class
    market_types: tuple[str, ...]  # ccxt ``fetchMarkets.types`` loaded by default
    client_order_id_field: str
    client_order_id_max_len: int
    client_order_id_alphabet: re.Pattern[str]
    client_order_id_prefix: str  # a prefix the venue requires on its raw field ("" when none)
    post_only_param: str  # what ccxt sends for postOnly=True
    reduce_only_param: str
    position_mode: ModeRead  # how the account's position mode is read (one-way is required)
    margin_mode_param: str
    duplicate_codes: frozenset[str]  # venue error codes meaning "client order id already used"
    error_code_key: str  # where the venue puts its error code in an error body
    listen_key_keepalive_s: float | None  # Binance only
    ping_interval_s: float  # client-side WebSocket keepalive
    batch_place: bool
    batch_cancel: bool
    # Orders per batch request (place, cancel) the adapter sends; 0 = one request per order (the
    # venue's batch limit not confirmed here yet).  Results are per item either way (.batch).
    batch_max: tuple[int, int] = (0, 0)
    # The venue's own cancel-all (ccxt ``cancelAllOrders``) is used only where ccxt has it and it is
    # proven over the wire against a fake; elsewhere cancel-all is one cancel per open order.
    native_cancel_all: bool = False
    # Where a batch reply puts a failed item's venue code (ccxt keeps the item as ``info``); "" = the
    # line ``error_code_key``.  The code picks ccxt's own exception class (its ``exceptions.exact``).
    batch_error_key: str = ""
    # Where the venue's batch-place body lists the failed items when ccxt's unified answer leaves
    # them out (ccxt's bitget drops failureList items: they carry no symbol); () = ccxt keeps them.
    batch_failures_path: tuple[str, ...] = ()
    # ccxt's ``cancel_orders`` takes the settle currency from params, else the market's upper-case
    # code (gate 4.5.90: /futures/USDT/batch_cancel_orders), where every other futures path of ccxt
    # carries the settle id ("usdt"): True = pass the market's settle id.
    cancel_orders_settle: bool = False
    # The ccxt ``cancel_orders`` param that carries client order ids; "" = ccxt cannot batch-cancel
    # by client id on this venue, so those refs are cancelled one request each.
    cancel_client_ids_param: str = ""
    # The ccxt methods listing finished orders (order history) where ccxt has no ``fetchOrders``;
    # their answers are merged with the open orders.  () = ``fetch_orders``.
    history_methods: tuple[str, ...] = ()
    # Path into the venue's balance body (ccxt ``info``) to the object ``summary_keys`` name keys of:
    # a key, an index into a list, or (key, value) = the one list row whose key is value (.account);
    # a value ``SETTLE`` is the account's settle currency.
    summary_path: tuple[str | int | tuple[str, str], ...] = ()
    # Where the balance read itself is per settle currency: settle currency -> the ccxt
    # ``fetch_balance`` params that select it (Bitget's productType); a settle currency not listed
    # answers UnsupportedOperation.  () = one read for every settle currency.
    summary_settle_params: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # Where a streamed order update carries the commission of its LAST fill only (the raw ``info`` key),
    # the adapter sums it per fill; "" = ccxt's order fee is taken as the order's cumulative fee.
    ws_fill_fee_key: str = ""
    # Account summary field -> the venue's key in its balance reply (ccxt ``info``), or a tuple of
    # keys summed ("-key" subtracts); a field left out is unset (not documented); () = not offered.
    summary_keys: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    # How ccxt looks an order up by our id: "param" = params["clientOrderId"]; "raw_field" = the
    # venue's own field in params; "as_id" = the venue takes the client id where the order id goes.
    # "raw_field_blank_id": the raw field, with an empty id (ccxt would put the text "None" where
    # the order id goes, which the venue reads as an order id that does not exist).
    client_id_lookup: str = "param"
    # The venue answers a placement with its ids only (no status, amounts): the client reads the
    # order back by id instead of parsing the ack as an order.
    create_acks: bool = False
    lookup_params: tuple[tuple[str, object], ...] = ()  # extra params every lookup needs
    # How the account's funding payments are read ("" = not offered): "bybit_transaction_log" = UTA
    # GET /v5/account/transaction-log type=SETTLEMENT, its documented signed ``funding`` column;
    # "ccxt_funding_history" = ccxt ``fetchFundingHistory``, where its ``amount`` is the venue's signed
    # income (+ received) as documented; "ledger" = the venue's funding-fee ledger, read as ``ledger`` says.
    funding_payments: str = ""
    ledger: LedgerRead | None = None
    ccxt_options: tuple[tuple[str, object], ...] = ()  # ccxt options this venue needs set
    # Venue error codes whose meaning is pinned here, whatever ccxt class carried them (ccxt picks
    # Binance's exception table by hostname, so on a testnet, proxy or fake host the class differs).
    # Values are cqvx ErrorKind names: "insufficient_funds", "not_found", "order_rejected", ...
    pinned_codes: tuple[tuple[str, str], ...] = ()
    docs: tuple[str, ...] = field(default=())


_ALNUM_DASH_UNDERSCORE = re.compile(r"^[A-Za-z0-9_-]+$")

QUIRKS: dict[str, VenueQuirks] = {
    "binance": VenueQuirks(
        venue="binance",
        ccxt_id="binanceusdm",
        market_types=("linear",),
        # USD-M New Order: newClientOrderId "A unique id among open orders ... ^[\.A-Z\:/a-z0-9_-]{1,36}$".
        client_order_id_field="newClientOrderId",
        client_order_id_max_len=36,
        client_order_id_alphabet=re.compile(r"^[.A-Z:/a-z0-9_-]+$"),
        client_order_id_prefix="",
        post_only_param="timeInForce=GTX",  # GTX = Good Till Crossing (post only)
        reduce_only_param="reduceOnly=true",  # not accepted in hedge mode
        # Get Current Position Mode (GET /fapi/v1/positionSide/dual): dualSidePosition "true": hedge
        # mode, "false": one-way mode (a JSON boolean), for every symbol of the account.
        position_mode=ModeRead(
            how="ccxt",
            method="fetch_position_mode",
            path=("info", "dualSidePosition"),
            one_way=(False,),
            hedge=(True,),
            doc="https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Current-Position-Mode",
        ),
        margin_mode_param="marginType ISOLATED|CROSSED (per symbol)",
        duplicate_codes=frozenset({"-4116"}),  # DUPLICATED_CLIENT_ORDER_ID (USD-M error codes)
        error_code_key="code",
        listen_key_keepalive_s=30 * 60.0,  # key valid 60 min after the last PUT /fapi/v1/listenKey
        ping_interval_s=180.0,  # the server pings every 3 minutes; ccxt answers (pro/binance keepAlive)
        batch_place=True,  # POST /fapi/v1/batchOrders (max 5)
        batch_cancel=True,  # DELETE /fapi/v1/batchOrders (max 10)
        batch_max=(5, 10),  # Place Multiple Orders: "Max 5 orders"; Cancel Multiple Orders: max 10 ids
        cancel_client_ids_param="clientOrderIds",  # -> origClientOrderIdList
        native_cancel_all=True,  # DELETE /fapi/v1/allOpenOrders
        # ORDER_TRADE_UPDATE "n": commission of this trade (ccxt.pro also keeps the first fill's fee on
        # its cached order, so its order fee is not cumulative either).
        ws_fill_fee_key="n",
        # Account Information V3 (GET /fapi/v3/account), single-asset mode totals (USDT).
        summary_keys=(
            ("margin_balance", "totalMarginBalance"),
            ("wallet_balance", "totalWalletBalance"),
            ("available_balance", "availableBalance"),
            ("unrealized_pnl", "totalUnrealizedProfit"),
            ("initial_margin", "totalInitialMargin"),
            ("maintenance_margin", "totalMaintMargin"),
        ),
        # Position Information V2 carries leverage and marginType (V3, ccxt's default, does not).
        ccxt_options=(("fetchPositionsRisk", {"useV2": True}),),
        # Get Income History (GET /fapi/v1/income, incomeType=FUNDING_FEE): "income" positive = inflow
        # (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Income-History).
        funding_payments="ccxt_funding_history",
        pinned_codes=(
            ("-2019", "insufficient_funds"),  # Margin is insufficient.
            ("-2018", "insufficient_funds"),  # Balance is insufficient.
            ("-2013", "not_found"),  # Order does not exist.
            ("-2011", "not_found"),  # Unknown order sent. (cancel)
            ("-5022", "order_rejected"),  # post-only order would be executed as taker
            ("-4164", "invalid_request"),  # notional below the minimum
            ("-1111", "invalid_request"),  # precision over the maximum
        ),
        docs=(
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api",
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code",
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams",
        ),
    ),
    "bybit": VenueQuirks(
        venue="bybit",
        ccxt_id="bybit",
        market_types=("spot", "linear"),
        # v5 Place Order: orderLinkId "max 36 characters; numbers, letters, dashes, underscores".
        client_order_id_field="orderLinkId",
        client_order_id_max_len=36,
        client_order_id_alphabet=_ALNUM_DASH_UNDERSCORE,
        client_order_id_prefix="",
        post_only_param="timeInForce=PostOnly",
        reduce_only_param="reduceOnly=true",
        # v5 has no account-wide mode read (ccxt 4.5.90 no fetchPositionMode for bybit); the mode is per
        # symbol.  Get Position Info (GET /v5/position/list?category=linear&symbol=): "If symbol passed,
        # it returns data regardless of having position or not"; positionIdx 0 = one-way, 1/2 = the
        # buy/sell side of hedge mode (an integer).
        position_mode=ModeRead(
            how="endpoint",
            method="privateGetV5PositionList",
            path=("result", "list", "*", "positionIdx"),
            one_way=(0,),
            hedge=(1, 2),
            doc="https://bybit-exchange.github.io/docs/v5/position",
            params=(("category", "linear"),),
            market_params=(("symbol", "id"),),
        ),
        margin_mode_param="setMarginMode ISOLATED_MARGIN|REGULAR_MARGIN|PORTFOLIO_MARGIN (account)",
        duplicate_codes=frozenset({"110072"}),  # "OrderLinkedID is duplicate"
        error_code_key="retCode",
        listen_key_keepalive_s=None,
        ping_interval_s=20.0,  # docs: send {"op":"ping"} every 20 seconds
        batch_place=True,  # /v5/order/create-batch
        batch_cancel=True,  # /v5/order/cancel-batch
        # GET /v5/order/realtime?orderLinkId=...: ccxt's fetch_order always sends orderId (the text
        # "None" when not given), so the id is blank and the venue matches on orderLinkId alone.
        client_id_lookup="raw_field_blank_id",
        create_acks=True,  # /v5/order/create answers {orderId, orderLinkId}
        # v5 Batch Place Order (.../v5/order/batch-place): "20 orders (linear), 10 orders (spot)" per
        # request; Batch Cancel Order (.../v5/order/batch-cancel): 20 linear, 10 spot.  The row loads
        # spot and linear, so the spot limit; the fake Bybit serves both (per-item retExtInfo codes).
        batch_max=(10, 10),
        # A failed batch item: ccxt merges retExtInfo.list[i] {code, msg} into result.list[i].
        batch_error_key="code",
        cancel_client_ids_param="clientOrderIds",  # request[i].orderLinkId
        # POST /v5/order/cancel-all (https://bybit-exchange.github.io/docs/v5/order/cancel-all):
        # linear answers the cancelled {orderId, orderLinkId}; never read as done (client.py).
        native_cancel_all=True,
        # GET /v5/order/history (https://bybit-exchange.github.io/docs/v5/order/order-list)
        history_methods=("fetch_canceled_and_closed_orders",),
        # Get Wallet Balance (https://bybit-exchange.github.io/docs/v5/account/wallet-balance):
        # result.list[0] carries the unified account's USD totals.
        summary_path=("result", "list", 0),
        summary_keys=(
            ("margin_balance", "totalMarginBalance"),
            ("wallet_balance", "totalWalletBalance"),
            ("available_balance", "totalAvailableBalance"),
            ("unrealized_pnl", "totalPerpUPL"),
            ("initial_margin", "totalInitialMargin"),
            ("maintenance_margin", "totalMaintenanceMargin"),
        ),
        # ccxt refuses fetch_order on bybit unless told we know it only sees the last 500 orders.
        lookup_params=(("acknowledged", True),),
        # https://bybit-exchange.github.io/docs/v5/account/transaction-log: "funding: Positive value
        # means receiving funding fee; Negative value means deducting funding fee" (UTA).  ccxt's
        # fetchFundingHistory reads the execution list instead, whose execFee sign the docs do not state.
        funding_payments="bybit_transaction_log",
        # Bybit v5 accounts are Unified Trading Accounts; saying so spares ccxt a query-api call
        # (which needs extra key permissions) before every order.
        ccxt_options=(("enableUnifiedAccount", True), ("enableUnifiedMargin", False)),
        docs=(
            "https://bybit-exchange.github.io/docs/v5/order/create-order",
            "https://bybit-exchange.github.io/docs/v5/order/batch-place",
            "https://bybit-exchange.github.io/docs/v5/order/batch-cancel",
            "https://bybit-exchange.github.io/docs/v5/error",
            "https://bybit-exchange.github.io/docs/v5/account/transaction-log",
            "https://bybit-exchange.github.io/docs/v5/ws/connect",
        ),
    ),
    "okx": VenueQuirks(
        venue="okx",
        ccxt_id="okx",
        market_types=("spot", "swap"),
        # v5 Place order: clOrdId "case-sensitive alphanumerics ... up to 32 characters".
        client_order_id_field="clOrdId",
        client_order_id_max_len=32,
        client_order_id_alphabet=re.compile(r"^[A-Za-z0-9]+$"),
        client_order_id_prefix="",
        post_only_param="ordType=post_only",
        reduce_only_param="reduceOnly=true",
        # Get account configuration (GET /api/v5/account/config, ccxt fetch_position_mode reads it through
        # fetch_accounts): posMode "long_short_mode" (hedge) | "net_mode" (one-way), account-wide.
        # ccxt's own ``hedged`` reads a missing posMode as one-way, so the raw value is checked.
        position_mode=ModeRead(
            how="ccxt",
            method="fetch_position_mode",
            path=("info", "posMode"),
            one_way=("net_mode",),
            hedge=("long_short_mode",),
            doc="https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration",
        ),
        margin_mode_param="tdMode cross|isolated|cash (per order)",
        duplicate_codes=frozenset({"51016"}),  # "Duplicated clOrdId"
        error_code_key="sCode",  # per-order code inside data[]; the envelope's "code" is 1
        listen_key_keepalive_s=None,
        ping_interval_s=25.0,  # docs: send "ping" when nothing arrived for < 30 s (else disconnect)
        batch_place=True,  # /api/v5/trade/batch-orders (max 20)
        batch_cancel=True,  # /api/v5/trade/cancel-batch-orders
        create_acks=True,  # place (and batch-place) answer {ordId, clOrdId, sCode, sMsg} per order
        # Place multiple orders: "Maximum 20 orders can be placed per request"; Cancel multiple
        # orders: "Maximum 20 orders can be canceled per request" (both docs-v5, cited below; the
        # same for spot and swap).  Per-order sCode/sMsg; envelope code 2 = partly placed.
        batch_max=(20, 20),
        batch_error_key="sCode",
        cancel_client_ids_param="clientOrderId",  # ccxt reads clOrdId/clientOrderId (a list)
        # OKX documents no cancel-all for regular orders (ccxt has no cancelAllOrders for okx):
        # cancel-all stays one cancel per open order.
        native_cancel_all=False,
        # orders-history (last 7 days): ccxt's fetch_closed_orders asks state=filled, and
        # fetch_canceled_orders state=canceled, so both are read.
        history_methods=("fetch_closed_orders", "fetch_canceled_orders"),
        # Get Balance (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-balance): the
        # account-level adjEq/imr/mmr are empty in the single-currency ("Futures mode") margin a grid
        # account uses, so the settle currency's details row: eq (equity, = cashBal + upl), cashBal,
        # upl, availEq.  details.imr/mmr are documented "applicable to Futures mode and when there is
        # cross position" (empty otherwise, isolated margin is not in them): left unset, not guessed.
        # The row is the account's settle currency (USDT or USDC swaps: the instrument's settleCcy,
        # ccxt market ``settle``); Get Balance lists one details row per currency.
        summary_path=("data", 0, "details", ("ccy", SETTLE)),
        summary_keys=(
            ("margin_balance", "eq"),
            ("wallet_balance", "cashBal"),
            ("available_balance", "availEq"),
            ("unrealized_pnl", "upl"),
        ),
        # Get bills details (last 3 months), GET /api/v5/account/bills-archive
        # (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details-last-3-months):
        # type 8 = funding fee (subType 173 expense, 174 income); balChg = the balance change, + received;
        # ts ms; billId; begin/end ms; after = "records earlier than the requested billId"; newest
        # first; limit max 100.  ccxt 4.5.90's fetchFundingHistory asks the same path but sends neither
        # instId, begin nor after: the newest 100 funding bills of every instrument, one page.
        funding_payments="ledger",
        ledger=LedgerRead(
            method="privateGetAccountBillsArchive",
            doc="https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details-last-3-months",
            params=(("instType", "SWAP"), ("type", "8")),
            market_params=(("instId", "{id}"),),
            since_param="begin",
            until_param="end",
            rows_path=("data",),
            paging="after_last_id",
            cursor_param="after",
            id_key="billId",
            amount_key="balChg",
            time_key="ts",
            asset_key="ccy",
            type_key="type",
            type_value="8",
            symbol_key="instId",
            limit=100,
        ),
        docs=(
            "https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order",
            "https://www.okx.com/docs-v5/en/#order-book-trading-trade-get-order-history-last-7-days",
            "https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-multiple-orders",
            "https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-cancel-multiple-orders",
            "https://www.okx.com/docs-v5/en/#error-code",
            "https://www.okx.com/docs-v5/en/#overview-websocket-connect",
        ),
    ),
    "bitget": VenueQuirks(
        venue="bitget",
        ccxt_id="bitget",
        market_types=("spot", "swap"),
        # v2 mix Place Order: clientOid; letters, digits and underscore, 1-32 characters (the
        # documented 43011 "clientOid does not meet the specification" refuses anything else).
        client_order_id_field="clientOid",
        client_order_id_max_len=32,
        client_order_id_alphabet=re.compile(r"^[A-Za-z0-9_]+$"),
        client_order_id_prefix="",
        post_only_param="force=post_only",
        reduce_only_param="reduceOnly=YES",  # one-way mode only; hedge mode uses tradeSide=close
        # Get Single Account (GET /api/v2/mix/account/account?symbol&productType&marginCoin): data.posMode
        # "one_way_mode" | "hedge_mode" (ccxt 4.5.90 has no fetchPositionMode for bitget).
        position_mode=ModeRead(
            how="endpoint",
            method="privateMixGetV2MixAccountAccount",
            path=("data", "posMode"),
            one_way=("one_way_mode",),
            hedge=("hedge_mode",),
            doc="https://www.bitget.com/api-doc/contract/account/Get-Single-Account",
            params=(("productType", "USDT-FUTURES"),),
            market_params=(("symbol", "id"), ("marginCoin", "settleId")),
        ),
        margin_mode_param="marginMode crossed|isolated (per order)",
        # 40786 "Duplicate clientOid" (error-code table, https://bitgetlimited.github.io/apidoc/en/mix/).
        duplicate_codes=frozenset({"40786"}),
        error_code_key="code",
        listen_key_keepalive_s=None,
        ping_interval_s=30.0,  # docs: send "ping" every 30 s; no ping for 2 minutes disconnects
        batch_place=True,  # /api/v2/mix/order/batch-place-order
        batch_cancel=True,  # /api/v2/mix/order/batch-cancel-orders
        create_acks=True,  # place-order answers {orderId, clientOid}
        # v2 mix Batch Order "orderList ... maximum length: 50", Batch Cancel "orderIdList ... maximum
        # length: 50" (spot batch-orders / batch-cancel-order: 50 each as well); the fake serves both.
        batch_max=(50, 50),
        # A failed item is in data.failureList {orderId, clientOid, errorMsg, errorCode}.
        batch_error_key="errorCode",
        batch_failures_path=("data", "failureList"),
        # ccxt's bitget cancel_orders sends order ids only: client-id cancels go one request each.
        cancel_client_ids_param="",
        # ccxt's cancel_all_orders on swap: batch-cancel-orders with symbol + productType and no
        # orderIdList, which the doc describes as cancelling by product type and trading pair.
        native_cancel_all=True,
        # GET /api/v2/mix/order/orders-history (https://www.bitget.com/api-doc/contract/trade/Get-Orders-History)
        history_methods=("fetch_canceled_and_closed_orders",),
        # Get Account List (https://www.bitget.com/api-doc/contract/account/Get-Account-List), the
        # settle (margin) coin's row: accountEquity includes the unrealized PnL (unrealizedPL), so the
        # wallet balance is their difference; available.  Initial/maintenance margin left unset:
        # crossedMargin/isolatedMargin are null in the documented sample (Get-Single-Account) and the
        # maintenance margin (unionMm) exists only in union (multi-asset) mode.
        summary_path=(("marginCoin", SETTLE),),
        # The list is per productType: USDT-FUTURES (USDT-margined), USDC-FUTURES (USDC-margined), as
        # the v2 mix docs enumerate it (https://www.bitget.com/api-doc/contract/account/Get-Account-Bill).
        # Coin-margined (COIN-FUTURES) accounts are not read.
        summary_settle_params=(
            ("USDT", (("productType", "USDT-FUTURES"),)),
            ("USDC", (("productType", "USDC-FUTURES"),)),
        ),
        summary_keys=(
            ("margin_balance", "accountEquity"),
            ("wallet_balance", ("accountEquity", "-unrealizedPL")),
            ("available_balance", "available"),
            ("unrealized_pnl", "unrealizedPL"),
        ),
        # Get Account Bills, GET /api/v2/mix/account/bill
        # (https://www.bitget.com/api-doc/contract/account/Get-Account-Bill): productType (USDT-FUTURES /
        # USDC-FUTURES for the linear settle coins), symbol, businessType contract_settle_fee = funding
        # fee; startTime/endTime ms at most 30 days apart; idLessThan = the reply's endId; limit max 100;
        # rows data.bills[]: billId, symbol, amount (signed, + received), coin, businessType, cTime ms.
        # ccxt 4.5.90's fetchFundingHistory sends the same request, one page only.
        funding_payments="ledger",
        ledger=LedgerRead(
            method="privateMixGetV2MixAccountBill",
            doc="https://www.bitget.com/api-doc/contract/account/Get-Account-Bill",
            params=(("businessType", "contract_settle_fee"),),
            market_params=(("symbol", "{id}"), ("productType", "{settle}-FUTURES")),
            since_param="startTime",
            until_param="endTime",
            rows_path=("data", "bills"),
            paging="body_cursor",
            cursor_param="idLessThan",
            cursor_path=("data", "endId"),
            id_key="billId",
            amount_key="amount",
            time_key="cTime",
            asset_key="coin",
            type_key="businessType",
            type_value="contract_settle_fee",
            symbol_key="symbol",
            limit=100,
            max_window_ms=30 * 24 * 3600 * 1000,
        ),
        docs=(
            "https://www.bitget.com/api-doc/contract/trade/Place-Order",
            "https://www.bitget.com/api-doc/contract/trade/Batch-Order",
            "https://www.bitget.com/api-doc/contract/trade/Batch-Cancel-Orders",
            "https://www.bitget.com/api-doc/common/websocket-intro",
        ),
    ),
    "gate": VenueQuirks(
        venue="gate",
        ccxt_id="gate",
        market_types=("spot", "swap"),
        # v4 futures/spot order "text": must start with "t-", at most 28 bytes after the prefix,
        # only 0-9 A-Z a-z _ - . ; ccxt sends our id as text and prefixes nothing, so we require it.
        client_order_id_field="text",
        client_order_id_max_len=30,
        client_order_id_alphabet=re.compile(r"^t-[A-Za-z0-9_.-]+$"),
        client_order_id_prefix="t-",
        post_only_param="tif=poc (futures) / time_in_force=poc (spot)",
        reduce_only_param="reduce_only=true",
        # Query futures account (GET /futures/{settle}/accounts): in_dual_mode, a boolean, per settle
        # currency (ccxt 4.5.90 has no fetchPositionMode for gate).
        position_mode=ModeRead(
            how="endpoint",
            method="privateFuturesGetSettleAccounts",
            path=("in_dual_mode",),
            one_way=(False,),
            hedge=(True,),
            doc="https://www.gate.com/docs/developers/apiv4/en/#query-futures-account",
            market_params=(("settle", "settleId"),),
        ),
        margin_mode_param="leverage=0 means cross, > 0 isolated (futures position)",
        # Gate documents no uniqueness of "text": a re-used text is accepted as a second order.
        # So nothing maps to DuplicateOrder, and the engine's client-side id uniqueness is the guard.
        duplicate_codes=frozenset(),
        error_code_key="label",
        listen_key_keepalive_s=None,
        ping_interval_s=10.0,  # ccxt pro gate: "futures.ping"/"spot.ping" application pings
        batch_place=True,  # POST /futures/{settle}/batch_orders (spot: /spot/batch_orders)
        batch_cancel=True,  # POST /futures/{settle}/batch_cancel_orders
        client_id_lookup="as_id",  # GET/DELETE .../orders/{order_id}: "order ID or custom text"
        # Place batch futures orders: "Up to 10 orders per request"; Cancel batch orders by specified
        # ID list: "maximum 20 records per request" (APIv4 futures, cited below).
        batch_max=(10, 20),
        cancel_client_ids_param="",  # batch_cancel_orders takes order ids only
        cancel_orders_settle=True,
        batch_error_key="label",  # a failed item: {"succeeded": false, "label", "message"}
        # DELETE /futures/{settle}/orders?contract= ("cancel all orders with open status"),
        # https://www.gate.com/docs/developers/apiv4/en/#cancel-all-orders-with-open-status
        native_cancel_all=True,
        # GET /futures/{settle}/orders?status=finished (ccxt fetch_closed_orders without since)
        history_methods=("fetch_closed_orders",),
        # Get futures account (GET /futures/{settle}/accounts,
        # https://www.gate.com/docs/developers/apiv4/en/#get-futures-account): ``total`` excludes
        # ``unrealised_pnl`` (so the margin balance is their sum) and the margin in use is
        # position_margin + order_margin.  maintenance_margin is documented only for the new
        # classic and unified account modes (absent in the old classic mode): left unset.
        # The path's {settle} of GET /futures/{settle}/accounts (documented values btc, usdt): ccxt's
        # fetch_balance params ``settle`` (default usdt).
        summary_settle_params=(("USDT", (("settle", "usdt"),)), ("BTC", (("settle", "btc"),))),
        summary_path=(0,),  # ccxt wraps the futures account object in a list
        summary_keys=(
            ("margin_balance", ("total", "unrealised_pnl")),
            ("wallet_balance", "total"),
            ("available_balance", "available"),
            ("unrealized_pnl", "unrealised_pnl"),
            ("initial_margin", ("position_margin", "order_margin")),
        ),
        # Query futures account change history, GET /futures/{settle}/account_book
        # (https://www.gate.com/docs/developers/apiv4/en/#query-futures-account-change-history):
        # contract, type fund = funding, from/to Unix seconds, limit, offset; rows: time (seconds, with a
        # fraction), change (signed balance change, + received), type, contract, id ("Account change
        # record ID"); the settle currency is the path's.  ccxt 4.5.90's fetchFundingHistory drops the
        # row id (id None) and reads one page: not usable as a ledger.
        funding_payments="ledger",
        ledger=LedgerRead(
            method="privateFuturesGetSettleAccountBook",
            doc="https://www.gate.com/docs/developers/apiv4/en/#query-futures-account-change-history",
            params=(("type", "fund"),),
            market_params=(("settle", "{settleId}"), ("contract", "{id}")),
            since_param="from",
            until_param="to",
            rows_path=(),
            time_unit_ms=1000,
            paging="offset",
            cursor_param="offset",
            id_key="id",
            amount_key="change",
            time_key="time",
            asset_key="",
            type_key="type",
            type_value="fund",
            symbol_key="contract",
            limit=100,
        ),
        docs=(
            "https://www.gate.com/docs/developers/apiv4/en/#create-a-futures-order",
            "https://www.gate.com/docs/developers/apiv4/en/#place-batch-futures-orders",
            "https://www.gate.com/docs/developers/apiv4/en/#cancel-batch-orders-by-specified-id-list-2",
            "https://www.gate.com/docs/developers/apiv4/ws/en/#application-ping-pong",
        ),
    ),
}


def lookup_args(quirks: VenueQuirks, client_order_id: str) -> tuple[str | None, dict[str, object]]:
    """The ``(id, params)`` ccxt's fetch_order/cancel_order take to find an order by our id."""
    params: dict[str, object] = dict(quirks.lookup_params)
    if quirks.client_id_lookup == "as_id":
        return client_order_id, params
    if quirks.client_id_lookup == "raw_field_blank_id":
        params[quirks.client_order_id_field] = client_order_id
        return "", params
    if quirks.client_id_lookup == "raw_field":
        params[quirks.client_order_id_field] = client_order_id
        return None, params
    params["clientOrderId"] = client_order_id
    return None, params


def quirks_for(venue: str) -> VenueQuirks:
    try:
        return QUIRKS[venue]
    except KeyError:
        raise InvalidRequest(f"no ccxt quirk table for venue {venue!r} (known: {sorted(QUIRKS)})") from None


def check_client_order_id(quirks: VenueQuirks, client_order_id: str) -> None:
    """Refuse an id the venue would reject or rewrite, before anything is sent."""
    if not client_order_id:
        return
    if len(client_order_id) > quirks.client_order_id_max_len:
        raise InvalidRequest(
            f"client_order_id longer than {quirks.client_order_id_max_len} characters "
            f"({quirks.client_order_id_field} limit)",
            venue=quirks.venue,
        )
    if not quirks.client_order_id_alphabet.fullmatch(client_order_id):
        raise InvalidRequest(
            f"client_order_id has characters {quirks.venue} does not accept in "
            f"{quirks.client_order_id_field} (pattern {quirks.client_order_id_alphabet.pattern})",
            venue=quirks.venue,
        )
