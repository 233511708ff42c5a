"""The order executor: rate limit, batch placement, and retries only where they are safe.

Outcome of a placement (ARCHITECTURE.md): confirmed, rejected, or unresolved.

* ``RateLimited`` / ``Unavailable`` with ``retry_safe`` (the request did not take effect): retried with the
  SAME client order id after ``retry_after`` or a :class:`cqvx.backoff.Backoff` delay (full jitter,
  ``retry_delay`` doubling up to 30 s), up to ``max_retries``; still failing -> rejected (nothing was
  placed, the slot is freed).
* Unless a lower layer already retried it: an error with ``err.retried`` (``attempts > 1``: the HTTP
  transport, the retry owner for that failure class, spent its budget on this request) is final here;
  it is settled at once (rejected, or unresolved when ambiguous), never re-sent.  One owner per failure
  class, no stacked retries.
* ``Timeout`` (and any error that does not promise the request had no effect, or a response we could not
  parse): UNRESOLVED, never re-sent; the caller resolves it with :meth:`OrderExecutor.lookup`.
* ``DuplicateOrder``: the id was already used, i.e. an earlier attempt did land; resolved by fetching
  that order.
* Everything else (``OrderRejected``, ``InsufficientFunds``, ``InvalidRequest``, ...): rejected.

How many times one order intent can reach the venue under a sustained 429 (``RateLimited``):
``transport attempts x executor attempts``, where

* the transport retried (``err.attempts = T > 1``, T = 1 + ``RetryPolicy.retries``, 4 by default):
  executor attempts = 1, so at most **T** requests (4 with the defaults);
* the transport did not retry (``err.attempts == 1``: a client without a retrying transport, e.g. the
  simulator or the mock, or a transport that may not resend the request): executor attempts =
  1 + ``max_retries``, so at most **1 + max_retries** requests (4 with ``engine.max_retries: 3``).

So the bound is ``max(T, 1 + max_retries)``, never their product.  The same rule holds for a batch (per
item), for cancels and for lookups.  The id never changes between attempts, so a venue that did take
an earlier attempt answers ``DuplicateOrder`` and nothing is placed twice.

The token bucket is :class:`cqvx.transport.ratelimit.TokenBucket` (the original executor's 25 orders/s,
burst 30); a batch draws one token per order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from cqc.venues.v1 import execution_pb2, order_pb2, venue_pb2
from cqvx.backoff import Backoff
from cqvx.client import SupportsBatchOrders, VenueClient
from cqvx.errors import (
    DuplicateOrder,
    NotFound,
    ParseError,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.num import ZERO, dec_or_none
from cqvx.transport.ratelimit import TokenBucket

__all__ = [
    "CancelOutcome",
    "Confirmed",
    "OrderExecutor",
    "Outcome",
    "Rejected",
    "Unresolved",
    "VenueOrderState",
    "ambiguous",
]


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    """What the venue says about one order (from a placement answer, a report or a lookup)."""

    order_id: str
    status: int
    cumulative: Decimal  # filled so far
    average_price: Decimal | None
    quantity: Decimal | None = None  # the order's quantity at the venue (lookups; None: not told)

    @classmethod
    def from_report(cls, r: execution_pb2.ExecutionReport) -> VenueOrderState:
        return cls(
            r.order_id,
            r.order_status,
            dec_or_none(r.cumulative_quantity, "cumulative_quantity") or ZERO,
            dec_or_none(r.average_fill_price, "average_fill_price"),
        )

    @classmethod
    def from_order(cls, o: order_pb2.Order) -> VenueOrderState:
        return cls(
            o.order_id,
            o.status,
            dec_or_none(o.filled_quantity, "filled_quantity") or ZERO,
            dec_or_none(o.average_fill_price, "average_fill_price"),
            dec_or_none(o.quantity, "quantity"),
        )


@dataclass(frozen=True, slots=True)
class Confirmed:
    state: VenueOrderState


@dataclass(frozen=True, slots=True)
class Rejected:
    error: VenueError


@dataclass(frozen=True, slots=True)
class Unresolved:
    error: VenueError


Outcome = Confirmed | Rejected | Unresolved
_MAX_DELAY = 30.0  # the longest backoff between two executor attempts (seconds)
CancelOutcome = VenueOrderState | VenueError


def ambiguous(err: VenueError) -> bool:
    """May this failed request (placement or cancel) have taken effect at the venue?"""
    if isinstance(err, Timeout | ParseError):
        return True
    return isinstance(err, Unavailable | RateLimited) and not err.retry_safe


def _retryable(err: VenueError) -> bool:
    """May the executor send this request again?  Never when a lower layer already retried it."""
    return isinstance(err, RateLimited | Unavailable) and err.retry_safe and not err.retried


class OrderExecutor:
    def __init__(
        self,
        client: VenueClient,
        *,
        rate: float = 25.0,
        burst: int = 30,
        max_retries: int = 3,
        retry_delay: float = 0.5,
        batch_size: int = 10,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.bucket = TokenBucket(rate, burst, venue=client.venue, group="opensqt-orders")
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.backoff = Backoff(initial=retry_delay, maximum=max(retry_delay, _MAX_DELAY))
        self._rng = rng
        self.batch_size = max(1, min(batch_size, burst))
        self._sleep = sleep
        caps = client.capabilities()
        self.batch = isinstance(client, SupportsBatchOrders) and venue_pb2.CAPABILITY_BATCH_PLACE in caps
        self.batch_cancel = (
            isinstance(client, SupportsBatchOrders) and venue_pb2.CAPABILITY_BATCH_CANCEL in caps
        )
        self.retries = 0  # counters for /status and metrics
        self.placed = 0
        self.failures = 0

    async def _backoff(self, err: VenueError, attempt: int) -> None:
        """Wait before retry number ``attempt + 1``: the venue's Retry-After, else the jittered backoff."""
        self.retries += 1
        retry_after = err.retry_after if isinstance(err, RateLimited) else None
        await self.backoff.sleep(attempt + 1, self._rng, retry_after=retry_after, sleep=self._sleep)

    # ------------------------------------------------------------------------------ placement

    async def place(self, orders: Sequence[order_pb2.Order]) -> list[Outcome]:
        """Place orders; one outcome per order, in order.  Never raises a venue error."""
        if not orders:
            return []
        if not self.batch or len(orders) == 1:
            return [await self._place_one(o) for o in orders]
        out: list[Outcome] = []
        for i in range(0, len(orders), self.batch_size):
            out.extend(await self._place_batch(orders[i : i + self.batch_size]))
        return out

    async def _place_one(self, order: order_pb2.Order) -> Outcome:
        attempt = 0
        while True:
            await self.bucket.acquire()
            try:
                report = await self.client.place_order(order)
            except VenueError as err:
                if _retryable(err) and attempt < self.max_retries:
                    await self._backoff(err, attempt)
                    attempt += 1
                    continue
                return await self._settle(order, err)
            self.placed += 1
            return Confirmed(VenueOrderState.from_report(report))

    async def _place_batch(self, orders: Sequence[order_pb2.Order]) -> list[Outcome]:
        assert isinstance(self.client, SupportsBatchOrders)
        results: list[Outcome | None] = [None] * len(orders)
        todo = list(range(len(orders)))
        attempt = 0
        while todo:
            await self.bucket.acquire(len(todo))
            batch = [orders[i] for i in todo]
            try:
                answers: list[execution_pb2.ExecutionReport | VenueError] = list(
                    await self.client.place_orders(batch)
                )
                if len(answers) != len(batch):
                    raise ParseError(f"batch answer has {len(answers)} items for {len(batch)} orders")
            except VenueError as err:
                answers = [err] * len(batch)
            retry: list[int] = []
            for idx, answer in zip(todo, answers, strict=True):
                if isinstance(answer, VenueError):
                    if _retryable(answer) and attempt < self.max_retries:
                        retry.append(idx)
                    else:
                        results[idx] = await self._settle(orders[idx], answer)
                else:
                    self.placed += 1
                    results[idx] = Confirmed(VenueOrderState.from_report(answer))
            if retry:
                first = answers[todo.index(retry[0])]
                assert isinstance(first, VenueError)
                await self._backoff(first, attempt)
                attempt += 1
            todo = retry
        return [r for r in results if r is not None]

    async def _settle(self, order: order_pb2.Order, err: VenueError) -> Outcome:
        if isinstance(err, DuplicateOrder):
            # An earlier attempt landed: the venue's order under this id is the outcome.
            try:
                found = await self.lookup(order.symbol, order.client_order_id)
            except VenueError as lookup_err:
                return Unresolved(lookup_err)
            return Confirmed(found) if found is not None else Unresolved(err)
        if ambiguous(err):
            return Unresolved(err)
        self.failures += 1
        return Rejected(err)

    # ------------------------------------------------------------------------------ lookups, cancels

    async def lookup(self, symbol: str, client_order_id: str, order_id: str = "") -> VenueOrderState | None:
        """The venue's view of our order, or None when the venue does not know it (which proves nothing
        while the request may still land: the caller applies the landing window).

        Looks up by the best id known: the venue order id when we have it (some venues find client
        order ids only for recent orders: Coinbase scans ``lookup_window_s``, 24 h by default), else the
        client order id.  Raises the venue error when the lookup itself fails."""
        if order_id:
            found = await self._lookup(symbol, order_id=order_id)
            if found is not None:
                return found
        return await self._lookup(symbol, client_order_id=client_order_id)

    async def _lookup(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrderState | None:
        attempt = 0
        while True:
            try:
                if order_id:
                    order = await self.client.get_order(symbol=symbol, order_id=order_id)
                else:
                    order = await self.client.get_order(symbol=symbol, client_order_id=client_order_id)
            except NotFound:
                return None
            except VenueError as err:
                if err.retry_safe and not err.retried and attempt < self.max_retries:
                    await self._backoff(err, attempt)
                    attempt += 1
                    continue
                raise
            return VenueOrderState.from_order(order)

    async def cancel(self, symbol: str, client_order_id: str) -> CancelOutcome:
        """Cancel by client order id; returns the venue's order state or the error (NotFound = gone)."""
        attempt = 0
        while True:
            await self.bucket.acquire()
            try:
                order = await self.client.cancel_order(symbol=symbol, client_order_id=client_order_id)
            except VenueError as err:
                if _retryable(err) and attempt < self.max_retries:
                    await self._backoff(err, attempt)
                    attempt += 1
                    continue
                return err
            return VenueOrderState.from_order(order)

    async def cancel_many(self, symbol: str, client_order_ids: Sequence[str]) -> list[CancelOutcome]:
        """Cancel several orders; one outcome per id, in order.  Batches where the venue supports it
        (the original cleaner's batch cancel); one token per order either way."""
        if not self.batch_cancel or len(client_order_ids) <= 1:
            return [await self.cancel(symbol, cid) for cid in client_order_ids]
        out: list[CancelOutcome] = []
        for i in range(0, len(client_order_ids), self.batch_size):
            out.extend(await self._cancel_batch(symbol, client_order_ids[i : i + self.batch_size]))
        return out

    async def _cancel_batch(self, symbol: str, cids: Sequence[str]) -> list[CancelOutcome]:
        assert isinstance(self.client, SupportsBatchOrders)
        results: list[CancelOutcome | None] = [None] * len(cids)
        todo = list(range(len(cids)))
        attempt = 0
        while todo:
            await self.bucket.acquire(len(todo))
            refs = [order_pb2.OrderRef(client_order_id=cids[i], symbol=symbol) for i in todo]
            try:
                answers: list[order_pb2.Order | VenueError] = list(await self.client.cancel_orders(refs))
                if len(answers) != len(refs):
                    raise ParseError(f"batch cancel answer has {len(answers)} items for {len(refs)} ids")
            except VenueError as err:
                answers = [err] * len(refs)
            retry: list[int] = []
            first_err: VenueError | None = None
            for idx, answer in zip(todo, answers, strict=True):
                if isinstance(answer, VenueError):
                    if _retryable(answer) and attempt < self.max_retries:
                        retry.append(idx)
                        first_err = first_err or answer
                    else:
                        results[idx] = answer
                else:
                    results[idx] = VenueOrderState.from_order(answer)
            if retry and first_err is not None:
                await self._backoff(first_err, attempt)
                attempt += 1
            todo = retry
        return [r for r in results if r is not None]
