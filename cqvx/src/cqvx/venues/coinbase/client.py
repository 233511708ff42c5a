"""The Coinbase Advanced Trade :class:`~cqvx.client.VenueClient`.

    async with CoinbaseClient(CoinbaseConfig.from_env()) as cb:
        balances = await cb.get_balances()
        report = await cb.place_order(order)          # client_order_id always sent

Placement is idempotent on the venue by ``client_order_id`` (create-order reference: a non-unique id
does not create a second order), so the transport may re-send a placement after a timeout or 5xx.  An
outcome that stays unknown is resolved by looking the order up by its client order id; if that fails
too, :class:`~cqvx.errors.Timeout` is raised (unresolved), never a blind re-send.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import structlog
from prometheus_client import CollectorRegistry

from cqc.markets.v1 import candle_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2, order_pb2, venue_pb2
from cqvx.auth.base import Clock, wall_clock
from cqvx.client import check_order_ref, refuse_margin
from cqvx.errors import (
    DuplicateOrder,
    InvalidRequest,
    NotFound,
    OrderRejected,
    ParseError,
    Timeout,
    Unavailable,
    VenueError,
    redact,
)
from cqvx.fanout import feed
from cqvx.symbols import parse_symbol
from cqvx.transport.http import HttpResponse
from cqvx.transport.ratelimit import RateLimiterRegistry, limiters
from cqvx.types import TERMINAL_STATUSES, OrderFilter, Stream, report_from_order
from cqvx.venues.coinbase import endpoints as ep
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase import parse
from cqvx.venues.coinbase.account import _Account
from cqvx.venues.coinbase.auth import CoinbaseAuth
from cqvx.venues.coinbase.config import CoinbaseConfig
from cqvx.venues.coinbase.errors import VENUE, http_error_mapper
from cqvx.venues.coinbase.market_data import _MarketData
from cqvx.venues.coinbase.stream import CoinbaseStreams
from cqvx.venues.rest import RestVenue

__all__ = ["CoinbaseClient"]

_log = structlog.get_logger("cqvx.venues.coinbase.client")
_JSON = {"Content-Type": "application/json"}
# batch_cancel failure reasons (cancel-orders reference) meaning the order is no longer open anyway.
_CANCEL_ALREADY_CLOSED = frozenset({"ORDER_IS_FULLY_FILLED"})
_CANCEL_IN_PROGRESS = frozenset({"DUPLICATE_CANCEL_REQUEST"})
_MAX_LOOKUP_PAGES = 20


def _rfc3339(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CoinbaseClient(_Account, _MarketData, RestVenue):
    """Coinbase Advanced Trade over REST + WebSocket; returns cqc messages, raises the cqvx taxonomy."""

    def __init__(
        self,
        config: CoinbaseConfig | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = wall_clock,
        rate_limiters: RateLimiterRegistry | None = None,
    ) -> None:
        self.config = cfg = config or CoinbaseConfig()
        self._auth = CoinbaseAuth(cfg, clock=clock) if cfg.has_credentials else None
        # Shared budgets (venues.md §1.5): private calls are limited per key, so every client on this
        # key draws from one bucket; public calls per IP, so every client in the process shares one.
        shared = limiters if rate_limiters is None else rate_limiters
        self._private = shared.get(
            VENUE,
            "private",
            rate=cfg.private_rps,
            capacity=cfg.private_rps,
            identity=cfg.key_name,
            registry=registry,
        )
        self._public = shared.get(
            VENUE, "public", rate=cfg.public_rps, capacity=cfg.public_rps, registry=registry
        )
        super().__init__(
            VENUE,
            cfg,
            signer=self._auth.signer if self._auth is not None else None,
            error_mapper=http_error_mapper,
            needs="key_name, key_secret",
            clock=clock,
            registry=registry,
            session=session,
        )
        # product id <-> canonical symbol; spot product ids already are canonical ids.
        self._to_canon: dict[str, str] = {}
        self._to_product: dict[str, str] = {}
        self._contract_size: dict[str, Decimal] = {}  # futures product id -> base units per contract
        self._quote: dict[str, str] = {}  # product id -> quote (fee and settlement) currency
        # client order id -> order id for orders this process placed (first place to look on lookups).
        self._coid_index: OrderedDict[str, str] = OrderedDict()
        self.streams = CoinbaseStreams(self, cfg, self._auth, registry=registry, rate_limiters=shared)

    def __repr__(self) -> str:
        return f"CoinbaseClient(rest={self.config.rest_url!r}, auth={self._auth!r})"

    async def _close_streams(self) -> None:
        await self.streams.aclose()

    # --- plumbing -------------------------------------------------------------------------------------

    def to_canonical(self, product_id: str) -> str:
        return self._to_canon.get(product_id, product_id)

    def product_id(self, symbol: str) -> str:
        """The product id of a canonical symbol: from the products table; a spot symbol is its own
        product id on Coinbase.  An unknown futures/perpetual symbol is refused (InvalidRequest),
        never sent as a guess: async paths look it up first (``_resolve_symbols``)."""
        pid = self._to_product.get(symbol)
        if pid is not None:
            return pid
        if parse_symbol(symbol).instrument_type != instrument_pb2.INSTRUMENT_TYPE_SPOT:
            raise InvalidRequest(f"unknown symbol {symbol}: no such Coinbase product", venue=VENUE)
        return symbol

    def _remember(self, client_order_id: str, order_id: str) -> None:
        if not client_order_id or not order_id:
            return
        self._coid_index[client_order_id] = order_id
        self._coid_index.move_to_end(client_order_id)
        while len(self._coid_index) > 100_000:
            self._coid_index.popitem(last=False)

    @property
    def _authed(self) -> bool:
        return self._auth is not None

    async def _get(self, path: str, route: str, params: Any = None, *, private: bool = True) -> HttpResponse:
        if private and self._auth is None:
            raise InvalidRequest("this call needs Coinbase credentials", venue=VENUE)
        bucket = self._private if private else self._public
        return await self._http.get(path, route=route, params=params, signed=private, limits=((bucket, 1.0),))

    async def _post(self, path: str, route: str, body: bytes, *, idempotent: bool) -> HttpResponse:
        if self._auth is None:
            raise InvalidRequest("this call needs Coinbase credentials", venue=VENUE)
        return await self._http.post(
            path, route=route, body=body, headers=_JSON, idempotent=idempotent, limits=((self._private, 1.0),)
        )

    def _market(self, path: str) -> tuple[str, bool]:
        """Market-data path: the authenticated route with keys, the public ``/market`` twin without."""
        if self._authed:
            return path, True
        return path.replace(ep.PREFIX, f"{ep.PREFIX}/market", 1), False

    # --- orders ---------------------------------------------------------------------------------------

    def build_order_request(self, order: order_pb2.Order) -> tuple[bytes, str, str]:
        """(body bytes, product id, client order id) for ``order``: the part of placement the benchmark
        times without a network."""
        product_id = self.product_id(order.symbol)
        client_order_id = order.client_order_id or uuid.uuid4().hex
        return ep.build_create_order(order, product_id, client_order_id), product_id, client_order_id

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        report = await self._place_order(order)
        if report.order_status not in TERMINAL_STATUSES:
            # Tracked by the user stream from now on: if the order fills while that stream is
            # disconnected, its reconnect reconciliation still reports the fill.
            self.streams.track_placed(report.order_id)
        return report

    async def _place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        refuse_margin(order, self.venue)
        await self._resolve_symbols([order.symbol])
        body, product_id, coid = self.build_order_request(order)
        try:
            resp = await self._post(ep.ORDERS, "/orders", body, idempotent=True)
            report = parse.create_order_from_json(resp.body, order, order.symbol, product_id, coid)
        except DuplicateOrder as dup:
            # The id was used before (a retry after a crash, or a re-send): fetch that order.
            found = await self._find_by_client_order_id(coid, product_id)
            if found is None:
                raise
            if found.venue_symbol != product_id or found.side != order.side:
                raise DuplicateOrder(
                    f"client order id {coid} belongs to a different order",
                    client_order_id=coid,
                    venue=VENUE,
                    code=dup.code,
                ) from None
            self._remember(coid, found.order_id)
            return _status_report(found)
        except (Timeout, Unavailable, ParseError) as exc:
            # The request may have reached the venue (a ParseError here is a 2xx answer we cannot
            # read: the order may well exist): resolve by client order id, never re-send.
            self._last_error = str(redact(str(exc)))[:200]
            found = await self._lookup_after_failure(coid, product_id)
            if found is None:
                raise Timeout(
                    f"placement of {coid} unresolved ({type(exc).__name__}); look it up by client order id",
                    venue=VENUE,
                    retry_safe=False,
                ) from None
            self._remember(coid, found.order_id)
            return _status_report(found)
        self._remember(coid, report.order_id)
        return report

    async def _lookup_after_failure(self, coid: str, product_id: str) -> order_pb2.Order | None:
        try:
            return await self._find_by_client_order_id(coid, product_id)
        except VenueError:
            return None

    async def _find_by_client_order_id(
        self, coid: str, product_id: str | None = None
    ) -> order_pb2.Order | None:
        """The order carrying ``coid``: from this process's index, else by scanning recent orders."""
        known = self._coid_index.get(coid)
        if known is not None:
            try:
                return await self._get_order_by_id(known)
            except NotFound:
                pass
        start = datetime.now(UTC) - timedelta(seconds=self.config.lookup_window_s)
        params: list[tuple[str, str | int]] = [
            ("limit", self.config.page_limit),
            ("start_date", _rfc3339(start)),
        ]
        if product_id:
            params.append(("product_ids", product_id))
        cursor: str | None = None
        for _ in range(_MAX_LOOKUP_PAGES):
            page_params = [*params, ("cursor", cursor)] if cursor else params
            resp = await self._get(ep.ORDERS_BATCH, "/orders/historical/batch", page_params)
            orders, cursor = await self._orders_page(resp.body)
            for o in orders:
                if o.client_order_id == coid:
                    self._remember(coid, o.order_id)
                    return o
            if cursor is None:
                break
        return None

    async def _get_order_by_id(self, order_id: str) -> order_pb2.Order:
        resp = await self._get(ep.order_path(order_id), ep.R_ORDER)
        raw = parse.decode(resp.body, m.GetOrderResponse).order
        await self._learn_products([raw.product_id])
        return parse.order_from_model(raw, self._known, self.quote_of)

    async def _orders_page(self, body: bytes) -> tuple[list[order_pb2.Order], str | None]:
        """A list-orders page, its products looked up first (symbols and fee currency come from the
        products table, never from the product id)."""
        page = parse.decode(body, m.OrdersResponse)
        await self._learn_products([o.product_id for o in page.orders])
        return parse.orders_page(page, self._known, self.quote_of)

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        if order_id:
            return await self._get_order_by_id(order_id)
        assert client_order_id
        if symbol:
            await self._resolve_symbols([symbol])
        found = await self._find_by_client_order_id(
            client_order_id, self.product_id(symbol) if symbol else None
        )
        if found is None:
            raise NotFound(f"no order with client order id {client_order_id}", venue=VENUE)
        return found

    async def _resolve_order_id(self, symbol: str, order_id: str | None, client_order_id: str | None) -> str:
        check_order_ref(order_id, client_order_id)
        if order_id:
            return order_id
        assert client_order_id
        known = self._coid_index.get(client_order_id)
        if known:
            return known
        return (await self.get_order(symbol=symbol, client_order_id=client_order_id)).order_id

    async def _batch_cancel(self, order_ids: Sequence[str]) -> list[tuple[str, VenueError | None]]:
        out: list[tuple[str, VenueError | None]] = []
        step = self.config.cancel_batch_max
        for i in range(0, len(order_ids), step):
            chunk = list(order_ids[i : i + step])
            # Cancelling twice is harmless, so a cancel may be re-sent after a timeout.
            resp = await self._post(
                ep.BATCH_CANCEL, "/orders/batch_cancel", ep.build_cancel_body(chunk), idempotent=True
            )
            results = dict(parse.cancel_results_from_json(resp.body))
            for oid in chunk:
                if oid in results:
                    out.append((oid, results[oid]))
                else:
                    out.append((oid, Timeout(f"no cancel result for {oid}", venue=VENUE)))
        return out

    async def _after_cancel(self, order_id: str, error: VenueError | None) -> order_pb2.Order:
        if error is not None and error.code not in ("DUPLICATE_CANCEL_REQUEST",):
            raise error
        order = await self._get_order_by_id(order_id)
        if order.status in (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PARTIALLY_FILLED):
            # The cancel was accepted; the venue processes it asynchronously.
            order.status = order_pb2.ORDER_STATUS_PENDING_CANCEL
        return order

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        oid = await self._resolve_order_id(symbol, order_id, client_order_id)
        ((_, error),) = await self._batch_cancel([oid])
        return await self._after_cancel(oid, error)

    async def cancel_orders(self, refs: Sequence[order_pb2.OrderRef]) -> list[order_pb2.Order | VenueError]:
        ids: list[str | VenueError] = []
        for ref in refs:
            try:
                ids.append(
                    await self._resolve_order_id(
                        ref.symbol,
                        ref.order_id if ref.WhichOneof("id") == "order_id" else None,
                        ref.client_order_id if ref.WhichOneof("id") == "client_order_id" else None,
                    )
                )
            except VenueError as exc:
                ids.append(exc)
        results = dict(await self._batch_cancel([i for i in ids if isinstance(i, str)]))
        out: list[order_pb2.Order | VenueError] = []
        for item in ids:
            if isinstance(item, VenueError):
                out.append(item)
                continue
            try:
                out.append(await self._after_cancel(item, results.get(item)))
            except VenueError as exc:
                out.append(exc)
        return out

    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        """Cancel every open order (of ``symbol``/``side``); returns the orders whose cancel was
        accepted (PENDING_CANCEL: Coinbase cancels asynchronously).

        Every order is attempted even after a failure.  Orders that closed on their own meanwhile
        (fully filled, already being cancelled) are not failures: they are logged and left out (a
        cancel already in progress is returned like an accepted one).  If any other cancel failed,
        the error of the first failure is raised after all the others were sent, as its taxonomy
        class, ``retry_safe`` (cancelling again is harmless), with ``completed`` = the cancelled
        orders and ``failures`` = ``(order_id, error)`` for each failed one; every failure is logged.
        """
        open_orders = await self.get_orders(OrderFilter(symbol=symbol, side=side))
        results = await self._batch_cancel([o.order_id for o in open_orders])
        out: list[order_pb2.Order] = []
        failures: list[tuple[str, VenueError]] = []
        for order, (_, error) in zip(open_orders, results, strict=True):
            if error is None or error.code in _CANCEL_IN_PROGRESS:
                order.status = order_pb2.ORDER_STATUS_PENDING_CANCEL
                out.append(order)
            elif error.code in _CANCEL_ALREADY_CLOSED:
                _log.info("coinbase.cancel_all_order_closed", order_id=order.order_id, code=error.code)
            else:
                _log.warning(
                    "coinbase.cancel_all_failed",
                    order_id=order.order_id,
                    symbol=order.symbol,
                    error=type(error).__name__,
                    code=error.code,
                    message=redact(error.message)[:200],
                )
                failures.append((order.order_id, error))
        if failures:
            first = failures[0][1]
            raise type(first)(
                f"cancel_all_orders: {len(failures)} of {len(open_orders)} cancels failed "
                f"(first: {first.message})",
                venue=VENUE,
                code=first.code,
                http_status=first.http_status,
                retry_safe=True,
            ).with_partial(completed=out, failures=failures)
        return out

    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        """One POST per order (Advanced Trade has no batch create); failures are returned, not raised."""
        out: list[execution_pb2.ExecutionReport | VenueError] = []
        for order in orders:
            try:
                out.append(await self.place_order(order))
            except VenueError as exc:
                out.append(exc)
        return out

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        """All matching orders, every page (``has_next``/``cursor``), filtered locally as well."""
        flt = filter or OrderFilter()
        params: list[tuple[str, str | int]] = [("limit", self.config.page_limit)]
        if flt.open_only:
            params.append(("order_status", "OPEN"))
        if flt.symbol:
            await self._resolve_symbols([flt.symbol])
            params.append(("product_ids", self.product_id(flt.symbol)))
        if flt.side:
            params.append(("order_side", "BUY" if flt.side == order_pb2.ORDER_SIDE_BUY else "SELL"))
        if flt.start:
            params.append(("start_date", _rfc3339(flt.start)))
        if flt.end:
            params.append(("end_date", _rfc3339(flt.end)))
        out: list[order_pb2.Order] = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        while True:
            page_params = [*params, ("cursor", cursor)] if cursor else params
            resp = await self._get(ep.ORDERS_BATCH, "/orders/historical/batch", page_params)
            orders, cursor = await self._orders_page(resp.body)
            for o in orders:
                if flt.matches(o):
                    out.append(o)
                    if flt.limit is not None and len(out) >= flt.limit:
                        return out
            if cursor is None or cursor in seen_cursors:
                return out
            seen_cursors.add(cursor)

    async def get_fills(
        self,
        symbol: str | None = None,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[execution_pb2.ExecutionReport]:
        """Fills (TRADE reports), every page of ``/orders/historical/fills``."""
        params: list[tuple[str, str | int]] = [("limit", self.config.page_limit)]
        if symbol:
            await self._resolve_symbols([symbol])
            params.append(("product_ids", self.product_id(symbol)))
        if order_id:
            params.append(("order_ids", order_id))
        if start:
            params.append(("start_sequence_timestamp", _rfc3339(start)))
        if end:
            params.append(("end_sequence_timestamp", _rfc3339(end)))
        out: list[execution_pb2.ExecutionReport] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page_params = [*params, ("cursor", cursor)] if cursor else params
            resp = await self._get(ep.FILLS, "/orders/historical/fills", page_params)
            page = parse.decode(resp.body, m.FillsResponse)
            await self._learn_products([f.product_id for f in page.fills])
            fills, cursor = parse.fills_page(page, self._known, self.quote_of)
            out.extend(fills)
            if cursor is None or cursor in seen:
                return out
            seen.add(cursor)

    # --- positions (reads: cqvx.venues.coinbase.account; market data: .market_data) ------------------

    def subscribe_positions(self, symbols: Sequence[str] | None = None) -> Stream[position_pb2.Position]:
        """Position changes, by polling ``GET /cfm/positions`` every ``config.positions_poll_s``.

        Polled, not streamed: the WebSocket ``user`` channel documents a ``positions`` object, but with
        fewer fields (no mark price, contract size or margin) and no documented update cadence
        (https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/websocket/user), while the REST
        position is complete.  Each position is yielded when first seen and whenever it changes; a
        position that disappears is yielded once as FLAT with quantity 0.  Transient failures
        (rate limit, 5xx, timeout) are logged and retried at the next poll; others end the stream.
        """
        return feed(self._poll_positions(symbols), venue=VENUE, channel="positions")

    async def _poll_positions(
        self, symbols: Sequence[str] | None
    ) -> AsyncGenerator[position_pb2.Position, None]:
        last: dict[str, bytes] = {}
        while not self._closed:
            try:
                positions = await self.get_positions(symbols)
            except VenueError as exc:
                if not exc.retry_safe and not isinstance(exc, Timeout):
                    raise
                _log.warning("coinbase.positions_poll_failed", error=type(exc).__name__, code=exc.code)
            else:
                now: dict[str, bytes] = {}
                for pos in positions:
                    blob = pos.SerializeToString(deterministic=True)
                    now[pos.symbol] = blob
                    if last.get(pos.symbol) != blob:
                        pos.updated_at.GetCurrentTime()
                        yield pos
                for gone in sorted(last.keys() - now.keys()):
                    flat = position_pb2.Position(
                        venue=VENUE, symbol=gone, side=position_pb2.POSITION_SIDE_FLAT, quantity="0"
                    )
                    flat.updated_at.GetCurrentTime()
                    yield flat
                last = now
            await asyncio.sleep(self.config.positions_poll_s)

    # --- streams (cqvx.venues.coinbase.stream) ---------------------------------------------------------

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        return self.streams.order_book(symbol, depth)

    def subscribe_trades(self, symbol: str) -> Stream[trade_pb2.Trade]:
        return self.streams.trades(symbol)

    def subscribe_prices(self, symbols: Sequence[str]) -> Stream[price_pb2.Price]:
        return self.streams.prices(symbols)

    def subscribe_candles(self, symbol: str, interval: int) -> Stream[candle_pb2.Candle]:
        return self.streams.candles(symbol, interval)

    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> Stream[execution_pb2.ExecutionReport]:
        return self.streams.executions(symbols)

    # --- health ----------------------------------------------------------------------------------------

    async def health(self) -> venue_pb2.VenueHealth:
        out = venue_pb2.VenueHealth(venue=VENUE)
        start = time.perf_counter()
        try:
            await self._http.get(ep.TIME, route="/time", signed=False, limits=((self._public, 1.0),))
            out.reachable = True
        except VenueError as exc:
            self._note(exc)
        out.latency_ms = (time.perf_counter() - start) * 1000.0
        out.last_error = self._last_error
        out.streams.extend(self.streams.health())
        out.checked_at.GetCurrentTime()
        return out


def _status_report(order: order_pb2.Order) -> execution_pb2.ExecutionReport:
    """A STATUS report for an order found by lookup (duplicate id or unresolved placement)."""
    if order.status == order_pb2.ORDER_STATUS_REJECTED:
        raise OrderRejected(
            f"order {order.client_order_id} was rejected: {order.rejection_reason}", venue=VENUE
        )
    report = report_from_order(
        order, execution_pb2.EXECUTION_TYPE_STATUS, execution_id=f"{order.order_id}:status"
    )
    report.venue = VENUE
    return report
