"""The RFQ flow of :class:`~cqvx.venues.falconx.client.FalconXClient` (mixin; state on the client).

Rules (venues.md §3.2 and §9: "execute must race the TTL and handle is_filled:false/status:failure
without retrying blindly"):

* ``request_quote`` has no side effect, so the transport may re-send it after a timeout or 5xx.
* ``execute_quote`` is sent once.  A client-side price guard runs first: with ``limit_price`` given,
  a buy whose quoted price is above it, or a sell whose quoted price is below it, is refused locally
  (:class:`~cqvx.errors.OrderRejected`, ``code="price_guard"``) and nothing is sent.
* Any outcome of an execute other than a clean fill (reply lost, 5xx, unreadable reply, a failure
  body, "already executed") is resolved by looking the quote up, never by re-sending: filled means
  executed (by this request or an earlier one: the venue executes a quote at most once), and a quote
  still unfilled ``expiry_grace_s`` after its ``t_expiry`` can no longer execute.  While it could
  still execute and the venue's answer was not definitive, the lookup is repeated (every
  ``resolve_poll_s``) until one of the two holds; past ``resolve_timeout_s`` the outcome is
  :class:`~cqvx.errors.Timeout` (unresolved).
* An expired quote is :class:`~cqvx.errors.OrderRejected` with ``code="quote_expired"``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from cqc.venues.v1 import order_pb2, rfq_pb2
from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InvalidRequest,
    NotFound,
    OrderRejected,
    ParseError,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.num import dec, dec_str
from cqvx.types import QuoteExecution
from cqvx.venues.falconx import endpoints as ep
from cqvx.venues.falconx import parse
from cqvx.venues.falconx.config import FalconXConfig
from cqvx.venues.falconx.errors import PRICE_GUARD, QUOTE_EXPIRED

if TYPE_CHECKING:
    from cqvx.transport.http import HttpResponse

VENUE = ep.VENUE
# Refusals that happen before the venue looks at the quote: nothing to resolve.
_NOT_PROCESSED = (RateLimited, AuthenticationError, PermissionDenied)
# Answers that leave the outcome open (the venue may have executed).
_AMBIGUOUS = (Timeout, Unavailable, ParseError)


class _Rfq:
    config: FalconXConfig
    _quotes: OrderedDict[str, parse.QuoteView]

    if TYPE_CHECKING:

        async def _post(self, path: str, route: str, body: bytes, *, quote: bool = False) -> HttpResponse: ...

        async def _fetch_quote(self, quote_id: str) -> parse.QuoteView: ...

        async def _history(self, start: datetime, end: datetime) -> list[parse.QuoteView]: ...

        def _remember(self, v: parse.QuoteView) -> None: ...

        def _now(self) -> datetime: ...

        def _note(self, exc: BaseException) -> None: ...

    # --- quotes -----------------------------------------------------------------------------------

    async def request_quote(self, request: rfq_pb2.QuoteRequest) -> rfq_pb2.Quote:
        """A buy, sell or two-way (side UNSPECIFIED) quote for a base or quote-token quantity.

        FalconX quotes take no limit: a ``limit_price`` on the request is refused (never dropped
        silently); guard the price at execution instead (``execute_quote(limit_price=)``)."""
        if request.limit_price:
            raise InvalidRequest(
                "limit_price: FalconX quote requests take no limit price (guard it at execute_quote)",
                venue=VENUE,
            )
        body = ep.build_quote_request(
            request.symbol, request.quantity, request.quantity_asset, request.side, request.client_quote_id
        )
        resp = await self._post(ep.QUOTES, ep.QUOTES, body, quote=True)
        v = parse.decode_quote(resp.body)
        asked_token = request.quantity_asset or v.base
        if (
            v.symbol != request.symbol
            or v.quantity != dec(request.quantity, "quantity", VENUE)
            or v.quantity_token != asked_token
            or v.side_requested != request.side
        ):
            raise ParseError("the quote does not match the request (pair, quantity or side)", venue=VENUE)
        if v.filled:
            raise ParseError("a new quote reported as already filled", venue=VENUE)
        self._remember(v)
        return parse.quote_of(v, self._now())

    async def get_quote(self, quote_id: str) -> rfq_pb2.Quote:
        """Quote status (``GET /v1/quotes/{id}``): OPEN, EXECUTED or EXPIRED."""
        return parse.quote_of(await self._fetch_quote(quote_id), self._now())

    async def get_executed_quotes(self, start: datetime, end: datetime | None = None) -> list[rfq_pb2.Quote]:
        """Executed quotes between ``start`` and ``end`` (now) of the configured platform."""
        now = self._now()
        return [parse.quote_of(v, now) for v in await self._history(start, end or now)]

    # --- execution --------------------------------------------------------------------------------

    async def execute_quote(
        self, quote_id: str, side: int, *, limit_price: Decimal | str | None = None
    ) -> QuoteExecution:
        """Execute ``quote_id`` on ``side`` (BUY or SELL; required for two-way quotes)."""
        body = ep.build_execute(quote_id, side)
        if limit_price is not None:
            limit = _limit(limit_price)
            known = self._quotes.get(quote_id)
            if known is None:
                known = await self._fetch_quote(quote_id)
            _guard(known, side, limit)
        try:
            resp = await self._post(ep.QUOTES_EXECUTE, ep.QUOTES_EXECUTE, body)
            v = parse.decode_quote(resp.body)
        except _NOT_PROCESSED:
            raise
        except VenueError as exc:
            self._note(exc)
            return await self._settle(quote_id, side, exc)
        if not v.filled or v.quote_id != quote_id:
            return await self._settle(
                quote_id, side, ParseError("execute answered without a fill of this quote", venue=VENUE)
            )
        return self._executed(v, side)

    def _executed(self, v: parse.QuoteView, side: int) -> QuoteExecution:
        self._remember(v)
        if v.side_executed != side:
            raise DuplicateOrder(
                f"quote {v.quote_id} was already executed on the other side",
                order_id=v.quote_id,
                venue=VENUE,
            )
        now = self._now()
        return QuoteExecution(parse.quote_of(v, now), parse.report_of(v, now))

    async def _settle(self, quote_id: str, side: int, cause: VenueError) -> QuoteExecution:
        """Settle an execute whose answer was not a clean fill by looking the quote up."""
        cfg = self.config
        deadline = time.monotonic() + cfg.resolve_timeout_s
        definitive = not isinstance(cause, _AMBIGUOUS)
        grace = timedelta(seconds=cfg.expiry_grace_s)
        while True:
            try:
                v: parse.QuoteView | None = await self._fetch_quote(quote_id)
            except NotFound:
                raise cause from None
            except VenueError:
                v = None  # the lookup itself failed: try again until the deadline
            if v is not None:
                if v.filled:
                    return self._executed(v, side)
                assert v.expires_at is not None
                if self._now() >= v.expires_at + grace:
                    if isinstance(cause, OrderRejected) and cause.code == QUOTE_EXPIRED:
                        raise cause
                    raise OrderRejected(
                        f"quote {quote_id} expired without executing",
                        venue=VENUE,
                        code=QUOTE_EXPIRED,
                        retry_safe=False,
                    ) from None
                if definitive:
                    raise cause  # the venue refused and the quote is unfilled: the refusal stands
            if time.monotonic() + cfg.resolve_poll_s > deadline:
                raise Timeout(
                    f"execute of quote {quote_id} unresolved ({type(cause).__name__}); look the quote up",
                    venue=VENUE,
                    retry_safe=False,
                ) from None
            await asyncio.sleep(cfg.resolve_poll_s)


def _limit(value: Decimal | str) -> Decimal:
    try:
        limit = dec(value, "limit_price", VENUE)
    except ParseError:
        raise InvalidRequest("limit_price is not a decimal number", venue=VENUE) from None
    if limit <= 0:
        raise InvalidRequest("limit_price must be positive", venue=VENUE)
    return limit


def _guard(v: parse.QuoteView, side: int, limit: Decimal) -> None:
    """Refuse locally to execute at a price worse than ``limit`` (nothing is sent)."""
    price = v.price_for(side)
    name = "buy" if side == order_pb2.ORDER_SIDE_BUY else "sell"
    if price is None:
        raise InvalidRequest(f"quote {v.quote_id} has no {name} price", venue=VENUE)
    worse = price > limit if side == order_pb2.ORDER_SIDE_BUY else price < limit
    if worse:
        raise OrderRejected(
            f"quoted {name} price {dec_str(price)} is worse than the limit {dec_str(limit)}; not executed",
            venue=VENUE,
            code=PRICE_GUARD,
            retry_safe=False,
        )
