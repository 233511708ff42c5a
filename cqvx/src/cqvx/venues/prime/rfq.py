"""The RFQ flow of :class:`~cqvx.venues.prime.client.PrimeClient` (mixin; state on the client), the
same :class:`~cqvx.client.SupportsRfq` capability FalconX implements.

Prime facts (RFQ concept page; venues.md §2.3 and §11, which wins):

* ``POST .../rfq`` creates a one-sided quote: side BUY or SELL, quantity in BASE units only ("quote
  units are not yet supported"), a limit price that must be marketable (required: the request's
  ``QuoteRequest.limit_price``, so it crosses the connector like every other field).  The reply is
  ``quote_id``, ``expiration_time``, ``best_price``, ... .  Quotes are held at most ~2.5 s.
* ``POST .../accept_quote`` ``{product_id, side, client_order_id, quote_id}`` -> ``{"order_id"}``.
  Prime has no quote lookup endpoint, so only quotes this client requested can be accepted.
* RFQ orders do not appear on the WebSocket ``orders`` channel: they are followed over REST.

Rules: a quote past its ``expiration_time`` is refused locally (:class:`~cqvx.errors.OrderRejected`,
``code="quote_expired"``; nothing sent).  An accept is sent once with a client order id; a lost,
unreadable or 5xx reply is resolved by finding that client order id among the portfolio's orders,
never by re-sending; not found -> :class:`~cqvx.errors.Timeout` (unresolved).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from cqc.venues.v1 import order_pb2, rfq_pb2
from cqvx.errors import (
    InvalidRequest,
    OrderRejected,
    ParseError,
    UnsupportedOperation,
    VenueError,
)
from cqvx.types import QuoteExecution
from cqvx.venues.prime import endpoints as ep
from cqvx.venues.prime import models as m
from cqvx.venues.prime import parse
from cqvx.venues.prime.config import PrimeConfig
from cqvx.venues.prime.errors import QUOTE_EXPIRED
from cqvx.venues.rest import AMBIGUOUS

if TYPE_CHECKING:
    from cqvx.transport.http import HttpResponse

VENUE = ep.VENUE
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Held:
    quote: rfq_pb2.Quote
    expires: datetime


class _Rfq:
    config: PrimeConfig
    _quotes: OrderedDict[str, Any]

    if TYPE_CHECKING:

        async def _post(
            self, path: str, route: str, body: dict[str, Any], *, idempotent: bool = False
        ) -> HttpResponse: ...

        def _path(self, tail: str = "") -> str: ...

        def _now(self) -> datetime: ...

        async def _find_client_order_id(self, coid: str, symbol: str = "") -> order_pb2.Order | None: ...

        async def _resolve(
            self, exc: VenueError, lookup: Callable[[], Awaitable[T | None]], what: str
        ) -> T: ...

        async def _get_by_id(self, order_id: str) -> order_pb2.Order: ...

    async def request_quote(self, request: rfq_pb2.QuoteRequest) -> rfq_pb2.Quote:
        """A one-sided quote for a base quantity; Prime requires ``request.limit_price`` (marketable)."""
        if not request.limit_price:
            raise InvalidRequest("limit_price: required by Prime RFQ (a marketable limit)", venue=VENUE)
        base = request.symbol.partition("-")[0]
        if request.quantity_asset and request.quantity_asset != base:
            raise UnsupportedOperation("Prime RFQ quantities are in base units only", venue=VENUE)
        coid = request.client_quote_id or str(uuid.uuid4())
        body = ep.build_quote(
            request.symbol,
            request.side,
            request.quantity,
            limit_price=request.limit_price,
            client_quote_id=coid,
            portfolio_id=self.config.portfolio_id,
        )
        resp = await self._post(self._path("/rfq"), ep.R_RFQ, body, idempotent=True)
        asked = rfq_pb2.QuoteRequest()
        asked.CopyFrom(request)
        asked.client_quote_id = coid
        quote, expires = parse.quote_of(parse.decode(resp.body, m.QuoteResponse), asked, self._now())
        self._quotes[quote.quote_id] = _Held(quote, expires)
        while len(self._quotes) > 10_000:
            self._quotes.popitem(last=False)
        return quote

    async def execute_quote(
        self, quote_id: str, side: int, *, client_order_id: str | None = None
    ) -> QuoteExecution:
        """Accept ``quote_id`` (on its own side) before it expires."""
        held = self._quotes.get(quote_id)
        if not isinstance(held, _Held):
            raise InvalidRequest(
                f"unknown quote {quote_id[:64]!r}: only quotes this client requested can be accepted",
                venue=VENUE,
            )
        q = held.quote
        if side != q.side:
            raise InvalidRequest("a Prime quote is accepted on the side it was requested for", venue=VENUE)
        if self._now() >= held.expires:
            raise OrderRejected(
                f"quote {quote_id} expired; request a new one",
                venue=VENUE,
                code=QUOTE_EXPIRED,
                retry_safe=False,
            )
        coid = client_order_id or str(uuid.uuid4())
        body = ep.build_accept(
            q.symbol, side, client_order_id=coid, quote_id=quote_id, portfolio_id=self.config.portfolio_id
        )
        order: order_pb2.Order | None
        try:
            resp = await self._post(self._path("/accept_quote"), ep.R_ACCEPT, body)
            order_id = parse.decode(resp.body, m.AcceptQuoteResponse).order_id
            if not order_id:
                raise ParseError("accept_quote answered without an order id", venue=VENUE)
        except AMBIGUOUS as exc:
            order = await self._resolve(
                exc, lambda: self._find_client_order_id(coid), f"accept of quote {quote_id} ({coid})"
            )
        else:
            try:
                order = await self._get_by_id(order_id)
            except VenueError:
                order = None  # accepted; its state is one lookup away
            if order is None:
                order = _pending(q, order_id, coid, self.config.portfolio_id)
        self._quotes.pop(quote_id, None)
        return QuoteExecution(_executed(q, order), parse.report_of(order))


def _pending(q: rfq_pb2.Quote, order_id: str, coid: str, portfolio_id: str) -> order_pb2.Order:
    return order_pb2.Order(
        order_id=order_id,
        client_order_id=coid,
        venue=VENUE,
        symbol=q.symbol,
        venue_symbol=q.symbol,
        side=q.side,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity=q.quantity,
        remaining_quantity=q.quantity,
        filled_quantity="0",
        price=q.buy_price or q.sell_price,
        status=order_pb2.ORDER_STATUS_PENDING_NEW,
        account_id=portfolio_id,
        venue_extras={"order_type": "RFQ", "quote_id": q.quote_id},
    )


def _executed(q: rfq_pb2.Quote, order: order_pb2.Order) -> rfq_pb2.Quote:
    out = rfq_pb2.Quote()
    out.CopyFrom(q)
    out.status = rfq_pb2.QUOTE_STATUS_EXECUTED
    out.executed_side = q.side
    out.executed_price = order.average_fill_price or q.buy_price or q.sell_price
    if order.status in (order_pb2.ORDER_STATUS_FAILED, order_pb2.ORDER_STATUS_CANCELLED):
        out.status = rfq_pb2.QUOTE_STATUS_REJECTED
        out.executed_price = ""
        out.executed_side = order_pb2.ORDER_SIDE_UNSPECIFIED
    return out
