"""The Coinbase Prime :class:`~cqvx.client.VenueClient`, with instruments, RFQ and algorithmic orders.

    async with PrimeClient(config) as prime:
        report = await prime.place_order(order)            # MARKET / LIMIT / STOP_LIMIT / BLOCK
        twap = await prime.place_algo_order(order, AlgoParams("TWAP", start=t0, expiry=t1))
        quote = await prime.request_quote(request)  # request.limit_price: required
        done = await prime.execute_quote(quote.quote_id, quote.side)

Every trading path is scoped to the key's portfolio (``config.portfolio_id``).

Idempotency: a client order id is always sent (ours, or a fresh uuid4).  A create is never re-sent:
when its reply is lost, unreadable or a 5xx, it is resolved by listing the portfolio's orders (open,
then the history of ``lookup_window_s``) for that client order id; found -> the order's report, not
found -> :class:`~cqvx.errors.Timeout` (unresolved).  A duplicate client order id is
:class:`~cqvx.errors.DuplicateOrder` carrying the existing order's id when it can be found.

``preview_order`` (``POST .../order_preview``) is the pre-trade check: commission and slippage of an
order before it is sent; with ``preview_before_place`` every create is previewed first and a failed
preview stops it.  Fees of an order = commission + exchange fee (venues.md §11).

Candles: ``get_candles`` reads ``GET .../candles`` (beta); there is no candles WebSocket channel, so
``subscribe_candles`` raises :class:`~cqvx.errors.UnsupportedOperation` and ``capabilities()`` lists
CANDLES without CANDLE_STREAM.

Prime has no REST order book: ``get_order_book`` and ``subscribe_order_book`` use the WebSocket
``l2_data`` channel (:mod:`cqvx.venues.prime.stream`).  Prime has no public trade feed, so
``subscribe_trades`` raises :class:`~cqvx.errors.UnsupportedOperation`.  ``subscribe_executions``
follows the ``orders`` channel (:mod:`cqvx.venues.prime.executions`).

Rate limits: a per-IP bucket (shared by every Prime client of the process) and a per-portfolio bucket
with its burst (shared by every client on the same portfolio), from :data:`cqvx.transport.ratelimit.limiters`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from prometheus_client import CollectorRegistry

from cqc.markets.v1 import candle_pb2, instrument_pb2, orderbook_pb2, trade_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, venue_pb2
from cqvx.auth.base import Clock, wall_clock
from cqvx.auth.hmac import COINBASE_PRIME, HmacSigner
from cqvx.client import capabilities_of, check_order_ref, refuse_margin
from cqvx.errors import (
    DuplicateOrder,
    InvalidRequest,
    NotFound,
    ParseError,
    Timeout,
    UnsupportedOperation,
    VenueError,
)
from cqvx.timeutil import timestamp_from_datetime
from cqvx.transport.http import HttpResponse
from cqvx.transport.ratelimit import RateLimiterRegistry, TokenBucket, limiters
from cqvx.transport.ws import Backoff
from cqvx.types import AlgoParams, OrderFilter, Stream
from cqvx.venues.prime import endpoints as ep
from cqvx.venues.prime import models as m
from cqvx.venues.prime import parse
from cqvx.venues.prime.config import PrimeConfig
from cqvx.venues.prime.errors import http_error_mapper
from cqvx.venues.prime.executions import PrimeExecutionStream
from cqvx.venues.prime.feed import PrimeFeed
from cqvx.venues.prime.rfq import _Rfq
from cqvx.venues.prime.stream import PrimeBookStream
from cqvx.venues.rest import AMBIGUOUS, RestVenue

__all__ = ["PrimeClient"]

VENUE = ep.VENUE
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_PAGED = TypeVar("_PAGED", m.OrdersPage, m.FillsPage, m.ProductsPage, m.CandlesPage)
_STATUS_NAMES: dict[int, tuple[str, ...]] = {
    order_pb2.ORDER_STATUS_OPEN: ("OPEN",),
    order_pb2.ORDER_STATUS_PARTIALLY_FILLED: ("OPEN",),
    order_pb2.ORDER_STATUS_PENDING_NEW: ("PENDING",),
    order_pb2.ORDER_STATUS_FILLED: ("FILLED",),
    order_pb2.ORDER_STATUS_CANCELLED: ("CANCELLED",),
    order_pb2.ORDER_STATUS_EXPIRED: ("EXPIRED",),
    order_pb2.ORDER_STATUS_FAILED: ("FAILED",),
}


class PrimeClient(_Rfq, RestVenue):
    """Coinbase Prime over REST; returns cqc messages, raises the cqvx taxonomy."""

    def __init__(
        self,
        config: PrimeConfig | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = wall_clock,
        rate_limiters: RateLimiterRegistry | None = None,
    ) -> None:
        self.config = cfg = config or PrimeConfig()
        signer: HmacSigner | None = None
        if cfg.has_credentials:
            assert cfg.signing_key is not None and cfg.passphrase is not None
            signer = HmacSigner(
                COINBASE_PRIME, cfg.access_key, cfg.signing_key, passphrase=cfg.passphrase, clock=clock
            )
        super().__init__(
            VENUE,
            cfg,
            signer=signer,
            error_mapper=http_error_mapper,
            needs="access_key, passphrase, signing_key, portfolio_id",
            clock=clock,
            registry=registry,
            session=session,
        )
        self._hmac = signer
        shared = limiters if rate_limiters is None else rate_limiters
        self._ip_bucket: TokenBucket = shared.get(
            VENUE,
            "ip",
            rate=cfg.ip_requests_per_second,
            capacity=cfg.ip_requests_per_second,
            registry=registry,
        )
        self._portfolio_bucket: TokenBucket = shared.get(
            VENUE,
            "portfolio",
            rate=cfg.portfolio_requests_per_second,
            capacity=cfg.portfolio_burst,
            identity=cfg.portfolio_id,
            registry=registry,
        )
        self._quotes: OrderedDict[str, Any] = OrderedDict()
        self._streams: set[PrimeFeed] = set()

    @property
    def portfolio_id(self) -> str:
        return self.config.portfolio_id

    # --- lifecycle --------------------------------------------------------------------------------

    async def _close_streams(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        self._streams.clear()

    def capabilities(self) -> frozenset[int]:
        # Candles come over REST only: Prime's WebSocket has no candles channel.
        return capabilities_of(self) - {venue_pb2.CAPABILITY_CANDLE_STREAM}

    def algo_strategies(self) -> frozenset[str]:
        return ep.ALGO_STRATEGIES

    # --- plumbing ---------------------------------------------------------------------------------

    def _limits(self) -> tuple[tuple[TokenBucket, float], ...]:
        return ((self._ip_bucket, 1.0), (self._portfolio_bucket, 1.0))

    async def _get(self, path: str, route: str, params: Any = None) -> HttpResponse:
        return await self._send_get(path, route, params, self._limits(), _JSON)

    async def _post(
        self, path: str, route: str, body: dict[str, Any], *, idempotent: bool = False
    ) -> HttpResponse:
        # Encoded once: these exact bytes are signed and sent (venues.md §7).
        return await self._send_post(
            path, route, ep.encode(body), self._limits(), idempotent=idempotent, headers=_JSON
        )

    async def _pages(
        self,
        path: str,
        route: str,
        type_: type[_PAGED],
        params: Sequence[tuple[str, str]] = (),
        *,
        sized: bool = True,
    ) -> AsyncIterator[_PAGED]:
        """Every page of a cursor-paginated list (``pagination.has_next`` / ``next_cursor``);
        ``sized=False`` where the endpoint documents no ``limit``."""
        cursor = ""
        seen: set[str] = set()
        size = self.config.page_size if sized else 0
        while True:
            resp = await self._get(path, route, ep.page_params(cursor, size, params))
            page = parse.decode(resp.body, type_)
            yield page
            if not page.pagination.has_next:
                return
            cursor = page.pagination.next_cursor or ""
            if not cursor or cursor in seen:
                raise ParseError("pagination says has_next without a new cursor", venue=VENUE)
            seen.add(cursor)

    def _path(self, tail: str = "") -> str:
        return ep.p(self.config.portfolio_id, tail)

    # --- portfolios -------------------------------------------------------------------------------

    async def get_portfolios(self) -> list[m.Portfolio]:
        resp = await self._get(ep.PORTFOLIOS, ep.PORTFOLIOS)
        return parse.decode(resp.body, m.PortfoliosResponse).portfolios

    async def get_portfolio(self) -> m.Portfolio:
        resp = await self._get(self._path(), ep.R_PORTFOLIO)
        return parse.decode(resp.body, m.PortfolioResponse).portfolio

    # --- orders -----------------------------------------------------------------------------------

    async def preview_order(self, order: order_pb2.Order) -> parse.OrderPreview:
        """Commission, slippage and best prices of ``order`` as Prime would fill it now; nothing is placed."""
        body = ep.build_order(order, order.client_order_id or uuid.uuid4().hex, self.config.portfolio_id)
        body.pop("client_order_id", None)
        resp = await self._post(self._path("/order_preview"), ep.R_PREVIEW, body, idempotent=True)
        return parse.preview(resp.body)

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        refuse_margin(order, self.venue)
        coid = order.client_order_id or str(uuid.uuid4())
        body = ep.build_order(order, coid, self.config.portfolio_id)
        if self.config.preview_before_place:
            await self.preview_order(order)
        return await self._create(body, coid)

    async def place_algo_order(
        self, order: order_pb2.Order, algo: AlgoParams
    ) -> execution_pb2.ExecutionReport:
        """A TWAP or VWAP parent order; its child fills show on the parent (``get_order``, fills)."""
        coid = order.client_order_id or str(uuid.uuid4())
        return await self._create(ep.build_algo(order, algo, coid, self.config.portfolio_id), coid)

    async def _create(self, body: dict[str, Any], coid: str) -> execution_pb2.ExecutionReport:
        try:
            resp = await self._post(self._path("/order"), ep.R_ORDER_CREATE, body)
            order_id = parse.decode(resp.body, m.CreateOrderResponse).order_id
        except DuplicateOrder as dup:
            found = await self._lookup_quietly(coid)
            if found is not None and not dup.order_id:
                dup.order_id = found.order_id
            raise
        except AMBIGUOUS as exc:
            found = await self._resolve(exc, lambda: self._find_client_order_id(coid), f"create of {coid}")
            return parse.report_of(found)
        if not order_id:
            raise ParseError("create order answered without an order id", venue=VENUE)
        return parse.report_of(_accepted(body, order_id, self._now()))

    async def _lookup_quietly(self, coid: str) -> order_pb2.Order | None:
        try:
            return await self._find_client_order_id(coid)
        except VenueError:
            return None

    async def _find_client_order_id(self, coid: str, symbol: str = "") -> order_pb2.Order | None:
        """Open orders first, then the history of ``lookup_window_s`` (Prime cannot filter by it)."""
        params = [("product_ids", symbol)] if symbol else []
        async for page in self._pages(self._path("/open_orders"), ep.R_OPEN_ORDERS, m.OrdersPage, params):
            for o in page.orders:
                if o.client_order_id == coid:
                    return parse.order_of(o)
        now = self._now()
        start = now - timedelta(seconds=self.config.lookup_window_s)
        history = ep.history_params(start, now + timedelta(seconds=60), product_id=symbol)
        async for page in self._pages(self._path("/orders"), ep.R_ORDERS, m.OrdersPage, history):
            for o in page.orders:
                if o.client_order_id == coid:
                    return parse.order_of(o)
        return None

    async def _get_by_id(self, order_id: str) -> order_pb2.Order:
        path = self._path(f"/orders/{ep.check_id(order_id, 'order id')}")
        resp = await self._get(path, ep.R_ORDER)
        return parse.order_of(parse.decode(resp.body, m.GetOrderResponse).order)

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        if order_id:
            return await self._get_by_id(order_id)
        assert client_order_id
        found = await self._find_client_order_id(client_order_id, symbol)
        if found is None:
            raise NotFound(f"no order with client order id {client_order_id}", venue=VENUE)
        return found

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        f = filter or OrderFilter()
        out: list[order_pb2.Order] = []
        if f.open_only:
            params = [("product_ids", f.symbol)] if f.symbol else []
            pages = self._pages(self._path("/open_orders"), ep.R_OPEN_ORDERS, m.OrdersPage, params)
        else:
            now = self._now()
            start = f.start or now - timedelta(seconds=self.config.lookup_window_s)
            names = sorted({n for s in f.statuses for n in _STATUS_NAMES.get(s, ())})
            params = ep.history_params(start, f.end, names, f.symbol or "")
            pages = self._pages(self._path("/orders"), ep.R_ORDERS, m.OrdersPage, params)
        async for page in pages:
            for o in page.orders:
                order = parse.order_of(o)
                if f.matches(order):
                    out.append(order)
                    if f.limit is not None and len(out) >= f.limit:
                        return out
        return out

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        if not order_id:
            assert client_order_id
            found = await self._find_client_order_id(client_order_id, symbol)
            if found is None:
                raise NotFound(f"no order with client order id {client_order_id}", venue=VENUE)
            order_id = found.order_id
        path = self._path(f"/orders/{ep.check_id(order_id, 'order id')}/cancel")
        # Cancelling twice is harmless: the transport may re-send it.
        resp = await self._post(path, ep.R_CANCEL, {}, idempotent=True)
        if parse.decode(resp.body, m.CancelResponse).id != order_id:
            raise ParseError("cancel answered for another order", venue=VENUE)
        order = await self._get_by_id(order_id)
        if order.status in (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PARTIALLY_FILLED):
            order.status = order_pb2.ORDER_STATUS_PENDING_CANCEL  # accepted, not yet applied
        return order

    # --- fills ------------------------------------------------------------------------------------

    async def get_order_fills(self, order_id: str) -> list[execution_pb2.ExecutionReport]:
        """Every fill of one order (child fills of an algorithmic order included), oldest first."""
        path = self._path(f"/orders/{ep.check_id(order_id, 'order id')}/fills")
        out: list[execution_pb2.ExecutionReport] = []
        async for page in self._pages(path, ep.R_ORDER_FILLS, m.FillsPage):
            out.extend(parse.fill_report(f) for f in page.fills)
        return out

    async def get_fills(
        self, start: datetime, end: datetime | None = None
    ) -> list[execution_pb2.ExecutionReport]:
        """Every fill of the portfolio between ``start`` and ``end`` (now)."""
        params = [("start_date", ep.rfc3339(start)), ("end_date", ep.rfc3339(end or self._now()))]
        out: list[execution_pb2.ExecutionReport] = []
        async for page in self._pages(self._path("/fills"), ep.R_FILLS, m.FillsPage, params):
            out.extend(parse.fill_report(f) for f in page.fills)
        return out

    # --- account and reference data ---------------------------------------------------------------

    async def get_balances(self) -> list[balance_pb2.Balance]:
        return await self.get_balances_of_type(self.config.balance_type)

    async def get_balances_of_type(self, balance_type: str) -> list[balance_pb2.Balance]:
        """Balances of one Prime balance type (TRADING_BALANCES, VAULT_BALANCES, TOTAL_BALANCES, ...)."""
        resp = await self._get(self._path("/balances"), ep.R_BALANCES, [("balance_type", balance_type)])
        return parse.balances(resp.body, balance_type)

    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        products: list[m.Product] = []
        async for page in self._pages(self._path("/products"), ep.R_PRODUCTS, m.ProductsPage):
            products.extend(page.products)
        found = parse.instruments(products)
        if symbols is None:
            return found
        wanted = set(symbols)
        return [i for i in found if i.symbol in wanted]

    # --- market data (REST candles, WebSocket l2_data) --------------------------------------------

    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        """Candles of ``symbol`` (``GET .../candles``, beta), oldest first; every page; the newest
        ``limit`` when given."""
        if limit is not None and limit <= 0:
            raise InvalidRequest("limit: must be positive", venue=VENUE)
        params = ep.candle_params(symbol, interval, start, end)
        items: list[m.Candle] = []
        async for page in self._pages(
            self._path("/candles"), ep.R_CANDLES, m.CandlesPage, params, sized=False
        ):
            items.extend(page.candles)
        out = parse.candles(items, symbol, interval, self._now())
        return out[-limit:] if limit else out

    def subscribe_candles(self, symbol: str, interval: int) -> Stream[candle_pb2.Candle]:
        raise UnsupportedOperation("Prime's WebSocket has no candles channel", venue=VENUE)

    # --- order books (WebSocket l2_data) ----------------------------------------------------------

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        """Top-``depth`` snapshots of the local l2_data book (resynced on gaps and reconnects)."""
        return self._book_stream(symbol, depth).sub

    def _book_stream(self, symbol: str, depth: int) -> PrimeBookStream:
        self._need_auth()
        assert self._hmac is not None
        cfg = self.config
        stream = PrimeBookStream(
            cfg,
            ep.check_id(symbol, "product id"),
            depth,
            timestamp=self._hmac.timestamp,
            heartbeat_timeout=cfg.ws_heartbeat_timeout_s,
            backoff=Backoff(cfg.ws_reconnect_initial_s, cfg.ws_reconnect_max_s),
        )
        self._streams.add(stream)
        stream.on_closed = self._streams.discard
        return stream

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        """Prime has no REST book: one l2_data snapshot over the WebSocket."""
        stream = self._book_stream(symbol, depth)
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await stream.sub.wait_live()
                book: orderbook_pb2.OrderBook = await anext(aiter(stream.sub))
                return book
        except TimeoutError:
            raise Timeout(
                f"no {symbol} book from the Prime feed in {self.config.timeout_s}s", venue=VENUE
            ) from None
        finally:
            await stream.aclose()

    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> Stream[execution_pb2.ExecutionReport]:
        """Order updates and fills of the portfolio from the ``orders`` channel (fills once each;
        RFQ orders never appear there)."""
        self._need_auth()
        assert self._hmac is not None
        cfg = self.config
        stream = PrimeExecutionStream(
            cfg,
            timestamp=self._hmac.timestamp,
            fetch=self._get_by_id,
            symbols=symbols,
            heartbeat_timeout=cfg.ws_heartbeat_timeout_s,
            backoff=Backoff(cfg.ws_reconnect_initial_s, cfg.ws_reconnect_max_s),
        )
        self._streams.add(stream)
        stream.on_closed = self._streams.discard
        return stream.sub

    def subscribe_trades(self, symbol: str) -> Stream[trade_pb2.Trade]:
        raise UnsupportedOperation("Prime publishes no public trade feed", venue=VENUE)

    # --- health -----------------------------------------------------------------------------------

    async def _probe(self) -> None:
        await self.get_portfolio()


def _accepted(body: dict[str, Any], order_id: str, now: datetime) -> order_pb2.Order:
    """The order just accepted, from what was sent (PENDING_NEW until Prime reports it open)."""
    kind = body["type"]
    order = order_pb2.Order(
        order_id=order_id,
        client_order_id=body["client_order_id"],
        venue=VENUE,
        symbol=body["product_id"],
        venue_symbol=body["product_id"],
        side=order_pb2.ORDER_SIDE_BUY if body["side"] == "BUY" else order_pb2.ORDER_SIDE_SELL,
        order_type=_ACCEPTED_TYPES.get(
            kind, order_pb2.ORDER_TYPE_LIMIT if "limit_price" in body else order_pb2.ORDER_TYPE_MARKET
        ),
        time_in_force=_ACCEPTED_TIF.get(body.get("time_in_force", ""), order_pb2.TIME_IN_FORCE_UNSPECIFIED),
        quantity=body.get("base_quantity", ""),
        quote_quantity=body.get("quote_value", ""),
        price=body.get("limit_price", ""),
        stop_price=body.get("stop_price", ""),
        post_only=bool(body.get("post_only")),
        status=order_pb2.ORDER_STATUS_PENDING_NEW,
        filled_quantity="0",
        account_id=body["portfolio_id"],
    )
    if order.quantity:
        order.remaining_quantity = order.quantity
    if kind in ("TWAP", "VWAP", "BLOCK"):
        order.venue_extras["order_type"] = kind
    order.created_at.CopyFrom(timestamp_from_datetime(now))
    return order


_ACCEPTED_TYPES = {
    "MARKET": order_pb2.ORDER_TYPE_MARKET,
    "LIMIT": order_pb2.ORDER_TYPE_LIMIT,
    "STOP_LIMIT": order_pb2.ORDER_TYPE_STOP_LIMIT,
    "TWAP": order_pb2.ORDER_TYPE_LIMIT,
    "VWAP": order_pb2.ORDER_TYPE_LIMIT,
}
_ACCEPTED_TIF = {
    "GOOD_UNTIL_CANCELLED": order_pb2.TIME_IN_FORCE_GTC,
    "GOOD_UNTIL_DATE_TIME": order_pb2.TIME_IN_FORCE_GTD,
    "IMMEDIATE_OR_CANCEL": order_pb2.TIME_IN_FORCE_IOC,
    "FILL_OR_KILL": order_pb2.TIME_IN_FORCE_FOK,
}
