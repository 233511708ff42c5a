"""The FalconX :class:`~cqvx.client.VenueClient` (RFQ venue) with :class:`~cqvx.client.SupportsRfq`.

    async with FalconXClient(config) as fx:
        quote = await fx.request_quote(rfq_pb2.QuoteRequest(symbol="BTC-USD", quantity="1"))
        done = await fx.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY, limit_price="50100")

Mapping of the VenueClient methods (issue 14):

* ``place_order``: ``POST /v1/order`` for a market order or a limit fill-or-kill order (the only kinds
  FalconX takes; anything else is :class:`~cqvx.errors.UnsupportedOperation`).  FalconX documents no
  de-duplication by ``client_order_id``, so a placement is never re-sent: a lost reply is resolved by
  finding the client order id in the executed-quote history, else it stays :class:`Timeout`.
* ``get_order``: by order id (= ``fx_quote_id``) ``GET /v1/quotes/{id}``; by client order id, the
  executed-quote history of ``lookup_window_s``.  ``get_orders``: FalconX has no open orders, so the
  default (open) filter is always empty; with statuses, the executed-quote history.
* ``get_balances``: ``GET /v1/balances?platform=``; instruments: ``GET /v1/pairs``.
* ``cancel_order``, ``get_order_book``, ``subscribe_order_book``, ``subscribe_trades``: FalconX has no
  equivalent (nothing rests; no book; no public trades): :class:`UnsupportedOperation`, and
  ``capabilities()`` lists only instruments and RFQ.

Rate limits: one per-key bucket for every call plus a quote bucket for quote requests, shared through
:data:`cqvx.transport.ratelimit.limiters` by every client on the same key.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from cqc.markets.v1 import instrument_pb2, orderbook_pb2, trade_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2
from cqvx.auth.base import Clock, wall_clock
from cqvx.auth.hmac import FALCONX, HmacSigner
from cqvx.client import check_order_ref, refuse_margin
from cqvx.errors import (
    NotFound,
    ParseError,
    UnsupportedOperation,
)
from cqvx.transport.http import HttpResponse
from cqvx.transport.ratelimit import RateLimiterRegistry, TokenBucket, limiters
from cqvx.types import OrderFilter, Stream
from cqvx.venues.falconx import endpoints as ep
from cqvx.venues.falconx import parse
from cqvx.venues.falconx.config import FalconXConfig
from cqvx.venues.falconx.errors import http_error_mapper
from cqvx.venues.falconx.rfq import _Rfq
from cqvx.venues.rest import AMBIGUOUS, RestVenue

__all__ = ["FalconXClient"]

VENUE = ep.VENUE
_JSON = {"Content-Type": "application/json"}


class FalconXClient(_Rfq, RestVenue):
    """FalconX over REST; returns cqc messages, raises the cqvx taxonomy."""

    def __init__(
        self,
        config: FalconXConfig | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = wall_clock,
        rate_limiters: RateLimiterRegistry | None = None,
    ) -> None:
        self.config = cfg = config or FalconXConfig()
        signer: HmacSigner | None = None
        if cfg.has_credentials:
            assert cfg.secret is not None and cfg.passphrase is not None
            signer = HmacSigner(FALCONX, cfg.api_key, cfg.secret, passphrase=cfg.passphrase, clock=clock)
        super().__init__(
            VENUE,
            cfg,
            signer=signer,
            error_mapper=http_error_mapper,
            needs="api_key, secret, passphrase",
            clock=clock,
            registry=registry,
            session=session,
        )
        shared = limiters if rate_limiters is None else rate_limiters
        self._private: TokenBucket = shared.get(
            VENUE,
            "private",
            rate=cfg.requests_per_second,
            capacity=cfg.requests_per_second,
            identity=cfg.api_key,
            registry=registry,
        )
        self._quotes_bucket: TokenBucket = shared.get(
            VENUE,
            "quotes",
            rate=cfg.quotes_per_second,
            capacity=cfg.quotes_per_second,
            identity=cfg.api_key,
            registry=registry,
        )
        self._quotes: OrderedDict[str, parse.QuoteView] = OrderedDict()

    # --- plumbing ---------------------------------------------------------------------------------

    async def _get(self, path: str, route: str, params: Any = None) -> HttpResponse:
        return await self._send_get(path, route, params, ((self._private, 1.0),))

    async def _post(self, path: str, route: str, body: bytes, *, quote: bool = False) -> HttpResponse:
        limits = ((self._private, 1.0), (self._quotes_bucket, 1.0)) if quote else ((self._private, 1.0),)
        # A quote request has no side effect, so it may be re-sent; an execute or an order never is
        # (FalconX documents no idempotency key for them).
        return await self._send_post(path, route, body, limits, idempotent=quote, headers=_JSON)

    def _remember(self, v: parse.QuoteView) -> None:
        self._quotes[v.quote_id] = v
        self._quotes.move_to_end(v.quote_id)
        while len(self._quotes) > 10_000:
            self._quotes.popitem(last=False)

    async def _fetch_quote(self, quote_id: str) -> parse.QuoteView:
        resp = await self._get(ep.quote_path(quote_id), ep.R_QUOTE)
        v = parse.decode_quote(resp.body)
        if v.quote_id != quote_id:
            raise ParseError("quote lookup answered with another quote", venue=VENUE)
        self._remember(v)
        return v

    async def _history(self, start: datetime, end: datetime) -> list[parse.QuoteView]:
        resp = await self._get(ep.QUOTES, ep.QUOTES, ep.history_params(start, end, self.config.platform))
        return parse.decode_quotes(resp.body)

    async def _find_client_order_id(self, client_order_id: str) -> parse.QuoteView | None:
        for v in reversed(self._quotes.values()):
            if v.client_order_id == client_order_id and v.filled:
                return v
        now = self._now()
        start = now - timedelta(seconds=self.config.lookup_window_s)
        for v in await self._history(start, now + timedelta(seconds=60)):
            if v.client_order_id == client_order_id:
                self._remember(v)
                return v
        return None

    # --- orders -----------------------------------------------------------------------------------

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        refuse_margin(order, self.venue)
        coid = order.client_order_id or uuid.uuid4().hex
        body = ep.build_order(order, coid)
        try:
            resp = await self._post(ep.ORDER, ep.ORDER, body)
            v = parse.decode_quote(resp.body)
        except AMBIGUOUS as exc:
            # The order may have executed (a ParseError here is a 2xx we cannot read): resolve by
            # client order id in the executed history, never re-send.
            found = await self._resolve(exc, lambda: self._find_client_order_id(coid), f"placement of {coid}")
            return parse.report_of(found, self._now(), order_reply=True)
        self._remember(v)
        report = parse.report_of(v, self._now(), order_reply=True)
        if not report.client_order_id:
            report.client_order_id = coid
        return report

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        if order_id:
            return parse.order_of(await self._fetch_quote(order_id), self._now())
        assert client_order_id
        found = await self._find_client_order_id(client_order_id)
        if found is None:
            raise NotFound(f"no executed order with client order id {client_order_id}", venue=VENUE)
        return parse.order_of(found, self._now())

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        f = filter or OrderFilter()
        if f.open_only:
            return []  # nothing rests at FalconX: market and fill-or-kill orders only
        now = self._now()
        start = f.start or now - timedelta(seconds=self.config.lookup_window_s)
        end = f.end or now + timedelta(seconds=60)
        orders = [parse.order_of(v, now) for v in await self._history(start, end)]
        out = [o for o in orders if f.matches(o)]
        return out[: f.limit] if f.limit is not None else out

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        raise UnsupportedOperation("FalconX orders never rest, so there is nothing to cancel", venue=VENUE)

    # --- account and reference data ---------------------------------------------------------------

    async def get_balances(self) -> list[balance_pb2.Balance]:
        params = [("platform", self.config.platform)] if self.config.platform else None
        resp = await self._get(ep.BALANCES, ep.BALANCES, params)
        return parse.balances(resp.body, self.config.platform)

    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        resp = await self._get(ep.PAIRS, ep.PAIRS)
        found = parse.instruments(resp.body)
        if symbols is None:
            return found
        wanted = set(symbols)
        return [i for i in found if i.symbol in wanted]

    # --- no equivalent at FalconX -----------------------------------------------------------------

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        raise UnsupportedOperation("FalconX is request-for-quote: it has no order book", venue=VENUE)

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        raise UnsupportedOperation("FalconX is request-for-quote: it has no order book", venue=VENUE)

    def subscribe_trades(self, symbol: str) -> Stream[trade_pb2.Trade]:
        raise UnsupportedOperation("FalconX publishes no public trades", venue=VENUE)

    # --- health -----------------------------------------------------------------------------------

    async def _probe(self) -> None:
        await self._get(ep.PAIRS, ep.PAIRS)
