"""One :class:`VenueClient` over a ccxt async exchange (Binance USD-M, Bybit, OKX, Bitget, Gate).

Everything venue-specific is in the quirk table (:mod:`.quirks`); everything ccxt raises goes through
the one error table (:mod:`.errors`); every number comes from ccxt's unified structures read as text
(:mod:`.parse`); symbols go through the one map built from the venue's markets (:mod:`.markets`).

Placement outcomes (the VenueClient contract): an ExecutionReport; a taxonomy error; or
:class:`~cqvx.errors.Timeout` when the request may have acted (the caller looks the order up by its
client order id; nothing here re-sends a placement).  A duplicate client order id is answered with
:class:`~cqvx.errors.DuplicateOrder` carrying the existing order's id, found by fetching that order.

Quantities and prices are never rounded here: ccxt's ``amount_to_precision``/``price_to_precision``
are used only to check that the caller's values are already on the venue's steps; a value ccxt would
change is refused (``InvalidRequest``), because ccxt rounds prices to nearest.

Decimal context: ccxt's ``decimal_to_precision`` sets ``ROUND_HALF_UP`` and the Underflow trap on
the decimal context it runs in.  Every ccxt call here runs in a context of its own
(``decimal.localcontext``; the stream tasks set their own), so arithmetic elsewhere in the process
(the simulated venue's, the engine's, the user's) never changes because a ccxt venue was called.
"""

from __future__ import annotations

import asyncio
import decimal
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2, transaction_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, venue_pb2
from cqvx.backoff import Backoff
from cqvx.client import check_order_ref, refuse_margin
from cqvx.errors import DuplicateOrder, InvalidRequest, ParseError, Timeout, VenueError
from cqvx.fanout import feed
from cqvx.num import dec, dec_str
from cqvx.timeutil import CANDLE_SECONDS, timestamp_now
from cqvx.types import TERMINAL_STATUSES, OrderFilter, Stream, report_from_order
from cqvx.venues.ccxt import batch, funding, parse, polled
from cqvx.venues.ccxt.account import AccountSummary, account_summary
from cqvx.venues.ccxt.config import CcxtConfig, build_exchange
from cqvx.venues.ccxt.errors import Op, map_error
from cqvx.venues.ccxt.instruments import instrument_of
from cqvx.venues.ccxt.markets import MarketIndex
from cqvx.venues.ccxt.position_mode import PositionModeGuard
from cqvx.venues.ccxt.quirks import VenueQuirks, check_client_order_id, lookup_args, quirks_for
from cqvx.venues.ccxt.streams import CcxtStreams

__all__ = ["CcxtClient"]

T = TypeVar("T")

_ANY_STATUS = frozenset(order_pb2.OrderStatus.values()) - {order_pb2.ORDER_STATUS_UNSPECIFIED}

_TIMEFRAMES: dict[int, str] = {
    candle_pb2.CANDLE_INTERVAL_1MIN: "1m",
    candle_pb2.CANDLE_INTERVAL_5MIN: "5m",
    candle_pb2.CANDLE_INTERVAL_15MIN: "15m",
    candle_pb2.CANDLE_INTERVAL_30MIN: "30m",
    candle_pb2.CANDLE_INTERVAL_1HOUR: "1h",
    candle_pb2.CANDLE_INTERVAL_2HOUR: "2h",
    candle_pb2.CANDLE_INTERVAL_4HOUR: "4h",
    candle_pb2.CANDLE_INTERVAL_6HOUR: "6h",
    candle_pb2.CANDLE_INTERVAL_1DAY: "1d",
    candle_pb2.CANDLE_INTERVAL_1WEEK: "1w",
}
_TIF = {
    order_pb2.TIME_IN_FORCE_GTC: "GTC",
    order_pb2.TIME_IN_FORCE_IOC: "IOC",
    order_pb2.TIME_IN_FORCE_FOK: "FOK",
}
_CAPS = frozenset(
    {
        venue_pb2.CAPABILITY_POSITIONS,
        venue_pb2.CAPABILITY_FUNDING_RATES,
        venue_pb2.CAPABILITY_CANDLES,
        venue_pb2.CAPABILITY_CANCEL_ALL,
        venue_pb2.CAPABILITY_TICKERS,
        venue_pb2.CAPABILITY_ORDER_STREAM,
        venue_pb2.CAPABILITY_INSTRUMENTS,
        venue_pb2.CAPABILITY_POSITION_STREAM,
        venue_pb2.CAPABILITY_FUNDING_STREAM,
        venue_pb2.CAPABILITY_CANDLE_STREAM,
        venue_pb2.CAPABILITY_PRICE_STREAM,
        venue_pb2.CAPABILITY_FUNDING_HISTORY,
    }
)


class CcxtClient:
    """A ccxt-backed venue client; ``exchange`` may be injected (tests), else built from config."""

    def __init__(self, config: CcxtConfig, *, exchange: Any = None) -> None:
        self._config = config
        self._quirks: VenueQuirks = quirks_for(config.venue)
        self._ex: Any = exchange if exchange is not None else build_exchange(config, self._quirks)
        self._index: MarketIndex | None = None
        self._backoff = Backoff(config.retry_initial_s, config.retry_max_s)
        self._last_error = ""
        self._closed = False
        self.streams = CcxtStreams(self, Backoff(config.retry_initial_s, config.stream_retry_max_s))
        self.position_mode = PositionModeGuard(self)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def venue(self) -> str:
        return self._quirks.venue

    @property
    def quirks(self) -> VenueQuirks:
        return self._quirks

    async def start(self) -> None:
        if self._index is None:
            markets = await self._call("read", self._ex.load_markets)
            self._index = MarketIndex.build(self.venue, markets.values())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.streams.aclose()
        await self._ex.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def capabilities(self) -> frozenset[int]:
        by_quirk = {
            venue_pb2.CAPABILITY_BATCH_PLACE: self._quirks.batch_place,
            venue_pb2.CAPABILITY_BATCH_CANCEL: self._quirks.batch_cancel,
            # get_funding_payments answers UnsupportedOperation where the quirk table has no reader.
            venue_pb2.CAPABILITY_FUNDING_PAYMENTS: bool(self._quirks.funding_payments),
        }
        return _CAPS | {cap for cap, on in by_quirk.items() if on}

    # -- plumbing --------------------------------------------------------------------------------

    async def _call(
        self, op: Op, fn: Callable[..., Awaitable[T]], *args: Any, client_order_id: str = "", **kw: Any
    ) -> T:
        """Run one ccxt call; map its failure; repeat only retry-safe reads (the one retry owner)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with decimal.localcontext():  # module docstring: decimal context
                    return await fn(*args, **kw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                err = map_error(exc, op=op, quirks=self._quirks, client_order_id=client_order_id)
                self._last_error = type(err).__name__
                if op == "read" and err.retry_safe and attempt <= self._config.read_retries:
                    await self._backoff.sleep(attempt, retry_after=getattr(err, "retry_after", None))
                    continue
                err.attempts = attempt
                raise err from None

    async def _markets(self) -> MarketIndex:
        """The market index, loading the venue's markets on first use (as ``start`` does)."""
        if self._index is None:
            await self.start()
        assert self._index is not None
        return self._index

    def _loaded(self) -> MarketIndex:
        if self._index is None:  # every parse follows a call that loaded the markets
            raise InvalidRequest("markets not loaded", venue=self.venue)
        return self._index

    def _contract(self, canonical: str) -> Decimal | None:
        """Base units per ccxt amount unit of ``canonical``; None when it is one (no arithmetic)."""
        size = self._loaded().contract_sizes.get(canonical)
        return None if size is None or size == 1 else size

    async def _unified(self, canonical: str) -> str:
        return (await self._markets()).symbols.to_venue(canonical)

    def _order(self, raw: object, canonical: str = "") -> order_pb2.Order:
        index = self._loaded()
        order = parse.parse_order(raw, index.symbols, self.venue, index.contract_sizes)
        order.venue_symbol = index.venue_ids.get(order.symbol, "")
        if canonical and order.symbol != canonical:
            raise ParseError(f"order for {order.symbol!r}, asked {canonical!r}", venue=self.venue)
        return order

    def _contracts(self, canonical: str, quantity: str) -> str:
        """Base units -> ccxt's amount unit (contracts on derivatives); must divide exactly."""
        size = self._loaded().contract_size(canonical)
        base = dec(quantity, "quantity", self.venue)
        contracts = base / size
        if contracts * size != base:
            raise InvalidRequest(
                f"quantity {quantity} is not a whole multiple of the contract size {size}", venue=self.venue
            )
        return dec_str(contracts)

    def _on_step(self, unified: str, value: str, what: str) -> str:
        fn = self._ex.amount_to_precision if what == "quantity" else self._ex.price_to_precision
        try:
            with decimal.localcontext():  # module docstring: decimal context
                stepped = fn(unified, value)
        except Exception as exc:
            raise map_error(exc, op="read", quirks=self._quirks) from None
        if dec(str(stepped)) != dec(value, what):
            raise InvalidRequest(
                f"{what} {value} is not on the venue's step for {unified} (would be {stepped}); "
                "round it before placing (never rounded here)",
                venue=self.venue,
            )
        return dec_str(dec(value))

    # -- orders ----------------------------------------------------------------------------------

    async def _request(self, order: order_pb2.Order) -> dict[str, Any]:
        """ccxt's ``create_order`` arguments for ``order``; refuses (InvalidRequest) before any send,
        as it does a derivative order while the account is not known to be in one-way position mode
        (:mod:`.position_mode`: hedge -> InvalidRequest, unknown -> Unavailable)."""
        coid = order.client_order_id
        refuse_margin(order, self.venue)
        check_client_order_id(self._quirks, coid)
        unified = await self._unified(order.symbol)
        side = {order_pb2.ORDER_SIDE_BUY: "buy", order_pb2.ORDER_SIDE_SELL: "sell"}.get(order.side)
        kind = {order_pb2.ORDER_TYPE_LIMIT: "limit", order_pb2.ORDER_TYPE_MARKET: "market"}.get(
            order.order_type
        )
        if side is None or kind is None:
            raise InvalidRequest("only limit and market buy/sell orders are supported", venue=self.venue)
        amount = self._on_step(unified, self._contracts(order.symbol, order.quantity), "quantity")
        price = self._on_step(unified, order.price, "price") if kind == "limit" else None
        params: dict[str, Any] = {}
        if coid:
            params["clientOrderId"] = coid
        if order.post_only:
            params["postOnly"] = True
        if order.reduce_only:
            params["reduceOnly"] = True
        if order.time_in_force in _TIF and not order.post_only:
            params["timeInForce"] = _TIF[order.time_in_force]
        await self.position_mode.ensure_one_way(order.symbol, unified)
        return {
            "symbol": unified,
            "type": kind,
            "side": side,
            "amount": amount,
            "price": price,
            "params": params,
        }

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        coid = order.client_order_id
        req = await self._request(order)
        unified, kind, side, amount, price, params = (
            req["symbol"], req["type"], req["side"], req["amount"], req["price"], req["params"]
        )  # fmt: skip
        try:
            raw = await self._call(
                "write",
                self._ex.create_order,
                unified,
                kind,
                side,
                amount,
                price,
                params,
                client_order_id=coid,
            )
        except DuplicateOrder as dup:
            await self._resolve_duplicate(dup, order.symbol, coid)
            raise
        if self._quirks.create_acks:
            placed = await self._read_back(raw, order)
        else:
            placed = self._order(raw, order.symbol)
        self.streams.track(placed)
        return report_from_order(placed, execution_pb2.EXECUTION_TYPE_NEW)

    async def _read_back(self, ack: object, order: order_pb2.Order) -> order_pb2.Order:
        """The placed order behind a venue's id-only ack; if it cannot be read, the request as
        PENDING_NEW under the acked id (accepted: never reported as failed or unknown)."""
        order_id = ack.get("id") if isinstance(ack, dict) else None
        if not isinstance(order_id, str) or not order_id:
            raise ParseError("placement ack without an order id", venue=self.venue)
        try:
            return await self.get_order(symbol=order.symbol, order_id=order_id)
        except VenueError:
            accepted = order_pb2.Order()
            accepted.CopyFrom(order)
            accepted.order_id, accepted.venue = order_id, self.venue
            accepted.status = order_pb2.ORDER_STATUS_PENDING_NEW
            accepted.remaining_quantity = order.quantity
            return accepted

    async def _resolve_duplicate(self, dup: DuplicateOrder, symbol: str, coid: str) -> None:
        """Attach the existing order's id (fetched by our id); a failed lookup leaves it empty."""
        if not coid:
            return
        try:
            existing = await self.get_order(symbol=symbol, client_order_id=coid)
        except VenueError:
            return
        dup.order_id = existing.order_id

    async def _by_ref(
        self, op: Op, method: str, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> object:
        check_order_ref(order_id, client_order_id)
        if not symbol:
            raise InvalidRequest(f"{self.venue} scopes orders per symbol: give symbol", venue=self.venue)
        unified = await self._unified(symbol)
        if client_order_id:
            ident, params = lookup_args(self._quirks, client_order_id)
        else:
            ident, params = order_id, dict(self._quirks.lookup_params)
        return await self._call(op, getattr(self._ex, method), ident, unified, params)

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        raw = await self._by_ref("read", "fetch_order", symbol, order_id, client_order_id)
        return self._order(raw, symbol)

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        await self._by_ref("cancel", "cancel_order", symbol, order_id, client_order_id)
        # Venues answer a cancel with anything from the full order to an ack (never parsed as an
        # order); read the final state.
        return await self.get_order(symbol=symbol, order_id=order_id, client_order_id=client_order_id)

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        f = filter or OrderFilter()
        unified = await self._unified(f.symbol) if f.symbol else None
        since = int(f.start.timestamp() * 1000) if f.start else None
        if f.open_only:
            raws = await self._call("read", self._ex.fetch_open_orders, unified, since, None)
        else:
            if unified is None:
                raise InvalidRequest("order history needs a symbol on this venue", venue=self.venue)
            raws = await self._history(unified, since)
        if not isinstance(raws, list):
            raise ParseError("orders: expected a list", venue=self.venue)
        orders = [o for o in (self._order(r) for r in raws) if f.matches(o)]
        orders.sort(key=lambda o: (o.created_at.seconds, o.created_at.nanos), reverse=True)
        return orders[: f.limit] if f.limit else orders

    async def _history(self, unified: str, since: int | None) -> list[object]:
        """Open and finished orders of one symbol: ccxt ``fetch_orders`` where it has one, else the
        open orders plus the quirk line's ``history_methods`` (each answer must be a list; an order
        seen in two answers is kept once, the finished copy)."""
        if not self._quirks.history_methods:
            raws = await self._call("read", self._ex.fetch_orders, unified, since, None)
            if not isinstance(raws, list):
                raise ParseError("orders: expected a list", venue=self.venue)
            return raws
        # ``since`` is applied by OrderFilter.matches: Gate's ccxt switches to another endpoint
        # (orders_timerange) when given one.
        merged: dict[object, object] = {}
        for method in ("fetch_open_orders", *self._quirks.history_methods):
            raws = await self._call("read", getattr(self._ex, method), unified, None, None)
            if not isinstance(raws, list):
                raise ParseError(f"orders ({method}): expected a list", venue=self.venue)
            for raw in raws:
                key = raw.get("id") if isinstance(raw, dict) else None
                merged[key if key else id(raw)] = raw
        return list(merged.values())

    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        """The venue's own cancel-all (ccxt ``cancelAllOrders``, one request per symbol) where ccxt
        has it and no side is asked for; otherwise one cancel per open order.

        A cancel-all reply does not name the orders it cancelled (Binance answers only
        ``{"code": 200, "msg": ...}``), so it is never read as "done": each symbol's orders are read
        back (one order-history request; an order not on that page is fetched by itself) and every
        order of the snapshot is reported by its state there; one still open, or whose state cannot
        be read, is a failure (unknown), never assumed cancelled.
        """
        opened = await self.get_orders(OrderFilter(symbol=symbol, side=side))
        done: list[order_pb2.Order] = []
        failures: list[tuple[str, VenueError]] = []
        if side or not (self._quirks.native_cancel_all and self._ex.has.get("cancelAllOrders")):
            for o in opened:
                try:
                    done.append(await self.cancel_order(symbol=o.symbol, order_id=o.order_id))
                except VenueError as err:
                    failures.append((o.order_id, err))
        else:
            for sym in sorted({o.symbol for o in opened}):
                await self._cancel_all_native(sym, [o for o in opened if o.symbol == sym], done, failures)
        if failures:
            raise failures[0][1].with_partial(completed=done, failures=failures)
        return done

    async def _cancel_all_native(
        self,
        symbol: str,
        opened: list[order_pb2.Order],
        done: list[order_pb2.Order],
        failures: list[tuple[str, VenueError]],
    ) -> None:
        try:
            await self._call("cancel", self._ex.cancel_all_orders, await self._unified(symbol))
        except Timeout:
            pass  # it may have acted: the read-back below says what happened
        except VenueError as err:
            failures.extend((o.order_id, err) for o in opened)
            return
        after: list[order_pb2.Order] = []
        if self._ex.has.get("fetchOrders") or self._quirks.history_methods:  # else one by one, below
            try:
                after = await self.get_orders(OrderFilter(symbol=symbol, statuses=_ANY_STATUS))
            except VenueError as err:
                failures.extend((o.order_id, err) for o in opened)
                return
        by_id = {o.order_id: o for o in after}
        for o in opened:
            now = by_id.get(o.order_id)
            if now is None:  # older than the history page: look it up by itself
                try:
                    now = await self.get_order(symbol=symbol, order_id=o.order_id)
                except VenueError as err:
                    failures.append((o.order_id, err))
                    continue
            if now.status in TERMINAL_STATUSES:
                done.append(now)
            else:
                failures.append(
                    (o.order_id, Timeout(f"cancel-all: order {o.order_id} still open", venue=self.venue))
                )

    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        """Per-item results, in order (:mod:`.batch`)."""
        return await batch.place_orders(self, orders)

    async def cancel_orders(self, refs: Sequence[order_pb2.OrderRef]) -> list[order_pb2.Order | VenueError]:
        return await batch.cancel_orders(self, refs)

    # -- account ---------------------------------------------------------------------------------

    async def get_balances(self) -> list[balance_pb2.Balance]:
        raw = await self._call("read", self._ex.fetch_balance)
        derivatives = "spot" not in (self._config.market_types or self._quirks.market_types)
        kind = balance_pb2.BALANCE_TYPE_FUTURES if derivatives else balance_pb2.BALANCE_TYPE_SPOT
        return parse.parse_balances(raw, self.venue, kind)

    async def get_account_summary(self) -> AccountSummary:
        """Margin balance and margin mode (:mod:`.account`)."""
        return await account_summary(self)

    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        unified = [await self._unified(s) for s in symbols] if symbols else None
        raws = await self._call("read", self._ex.fetch_positions, unified)
        if not isinstance(raws, list):
            raise ParseError("positions: expected a list", venue=self.venue)
        index = await self._markets()
        out = []
        for raw in raws:
            position = parse.parse_position(raw, index.symbols, self.venue, index.contract_sizes)
            if position.side != position_pb2.POSITION_SIDE_FLAT:
                out.append(position)
        return out

    # -- market data -----------------------------------------------------------------------------

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        raw = await self._call("read", self._ex.fetch_order_book, await self._unified(symbol), depth)
        return parse.parse_order_book(raw, symbol, self.venue, depth, self._contract(symbol))

    async def get_funding_rate(self, symbol: str) -> funding_pb2.FundingRate:
        raw = await self._call("read", self._ex.fetch_funding_rate, await self._unified(symbol))
        return parse.parse_funding_rate(raw, symbol, self.venue)

    async def get_funding_rates(self, symbols: Sequence[str] | None = None) -> list[funding_pb2.FundingRate]:
        index = await self._markets()
        every = index.symbols.canonical_symbols()
        wanted = list(symbols) if symbols else [s for s in every if index.is_derivative(s)]
        return [await self.get_funding_rate(s) for s in wanted]

    async def get_funding_rate_history(
        self, symbol: str, start: datetime | None = None, limit: int | None = None
    ) -> list[funding_pb2.FundingRate]:
        """Settled rates, oldest first (``SupportsFundingHistory``; :mod:`.funding`)."""
        return await funding.funding_rate_history(self, symbol, start, limit)

    async def get_funding_payments(
        self, symbol: str, start: datetime | None = None
    ) -> list[transaction_pb2.Transaction]:
        """The account's funding payments on the perpetual ``symbol``, oldest first
        (``SupportsFundingPayments``), where the quirk table says how to read them; elsewhere
        :class:`~cqvx.errors.UnsupportedOperation` (:mod:`.funding`)."""
        return await funding.funding_payments(self, symbol, start)

    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        timeframe = _TIMEFRAMES.get(interval)
        if timeframe is None:
            raise InvalidRequest(f"candle interval {interval} not offered", venue=self.venue)
        since = int(start.timestamp() * 1000) if start else None
        raws = await self._call(
            "read", self._ex.fetch_ohlcv, await self._unified(symbol), timeframe, since, limit
        )
        if not isinstance(raws, list):
            raise ParseError("candles: expected a list", venue=self.venue)
        width = CANDLE_SECONDS[interval]
        candles = [parse.parse_candle(r, symbol, interval, width, self.venue) for r in raws]
        if end is not None:
            cut = end.timestamp()
            candles = [c for c in candles if c.open_time.seconds < cut]
        return candles

    async def get_latest_price(self, symbol: str) -> price_pb2.Price:
        raw = await self._call("read", self._ex.fetch_ticker, await self._unified(symbol))
        price = parse.parse_price(raw, symbol, self.venue, self._contract(symbol))
        if not price.HasField("timestamp"):
            price.timestamp.CopyFrom(timestamp_now())
        return price

    async def get_tickers(self, symbols: Sequence[str] | None = None) -> list[price_pb2.Ticker]:
        index = await self._markets()
        wanted = list(symbols) if symbols else index.symbols.canonical_symbols()
        return [
            parse.parse_ticker(
                await self._call("read", self._ex.fetch_ticker, index.symbols.to_venue(s)), s, self.venue
            )
            for s in wanted
        ]

    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        """Instruments with their trading rules, from the loaded ccxt markets (:mod:`.instruments`)."""
        index = await self._markets()
        wanted = list(symbols) if symbols else index.symbols.canonical_symbols()
        out = []
        for s in wanted:
            unified = index.symbols.to_venue(s)
            out.append(
                instrument_of(
                    self._ex.markets.get(unified) or {},
                    canonical=s,
                    venue=self.venue,
                    venue_symbol=index.venue_ids.get(s) or unified,
                    instrument_type=index.instrument_types.get(s, 0),
                    contract_size=index.contract_size(s),
                    precision_mode=int(self._ex.precisionMode),
                )
            )
        return out

    # -- streams (cqvx.venues.ccxt.streams) --------------------------------------------------------

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        return self.streams.order_book(symbol, depth)

    def subscribe_trades(self, symbol: str) -> Stream[trade_pb2.Trade]:
        return self.streams.trades(symbol)

    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> Stream[execution_pb2.ExecutionReport]:
        return self.streams.executions(symbols)

    def subscribe_prices(self, symbols: Sequence[str]) -> Stream[price_pb2.Price]:
        return self.streams.prices(symbols)

    def subscribe_positions(self, symbols: Sequence[str] | None = None) -> Stream[position_pb2.Position]:
        """Polled over REST (:mod:`.polled`): position changes, FLAT once when one disappears."""
        return feed(polled.positions(self, symbols), venue=self.venue, channel="positions")

    def subscribe_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> Stream[funding_pb2.FundingRate]:
        """Polled over REST (:mod:`.polled`): each rate when it changes."""
        return feed(polled.funding(self, symbols), venue=self.venue, channel="funding")

    def subscribe_candles(self, symbol: str, interval: int) -> Stream[candle_pb2.Candle]:
        """Polled over REST (:mod:`.polled`): the current candle when it changes, then each new one."""
        return feed(polled.candles(self, symbol, interval), venue=self.venue, channel="candles")

    async def health(self) -> venue_pb2.VenueHealth:
        """Reachability (the venue's time), and a hedge or unknown position mode in ``last_error``."""
        start = time.perf_counter()
        try:
            await self._call("read", self._ex.fetch_time)
        except VenueError as err:
            return venue_pb2.VenueHealth(
                venue=self.venue, reachable=False, last_error=type(err).__name__, checked_at=timestamp_now()
            )
        latency_ms = (time.perf_counter() - start) * 1000.0
        mode_note = await self.position_mode.health_note()
        return venue_pb2.VenueHealth(
            venue=self.venue,
            reachable=True,
            latency_ms=latency_ms,
            last_error=mode_note or self._last_error,
            checked_at=timestamp_now(),
        )
