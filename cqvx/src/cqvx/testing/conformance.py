"""The conformance suite every :class:`~cqvx.client.VenueClient` implementation runs against its fake.

A venue's test module subclasses :class:`ConformanceSuite`, names the venue, and provides a
``harness`` fixture implementing :class:`ConformanceHarness` (a fake server plus the knobs the tests
need: make the next requests rate-limited, drop the streams, skip a book sequence number, ...)::

    from cqvx.testing.conformance import ConformanceSuite

    class TestSimConformance(ConformanceSuite):
        venue = "sim"

        @pytest.fixture
        async def harness(self) -> AsyncIterator[SimHarness]:
            h = SimHarness()
            await h.start()
            yield h
            await h.close()

Each test checks one capability (:data:`CAPABILITIES`).  A venue that lacks one says so with a
``supports_*`` flag on its harness; the test then skips with a reason naming the venue and the
capability, never silently.  With the plugin :mod:`cqvx.testing.conformance_plugin` registered, a
run writes ``docs/capabilities.md``: venues x capabilities, a cell marked only when its tests passed.

``cqvx.testing.mock.MockVenueHarness`` is the reference harness (over :class:`MockVenue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import pytest

from cqc.markets.v1 import orderbook_pb2, trade_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.errors import DuplicateOrder, InsufficientFunds, NotFound, RateLimited, VenueError
from cqvx.types import OPEN_STATUSES, OrderFilter, Stream

__all__ = [
    "CAPABILITIES",
    "CapabilityResults",
    "ConformanceHarness",
    "ConformanceSuite",
    "HarnessDefaults",
    "assert_valid_book",
    "capability",
    "read_capability_matrix",
    "write_capability_matrix",
]

F = TypeVar("F", bound=Callable[..., Any])

# (key, column title, what passing proves).  The order is the column order of the matrix.
CAPABILITIES: tuple[tuple[str, str, str], ...] = (
    ("place", "place", "place_order returns an ExecutionReport with our client order id, OPEN/PENDING_NEW"),
    ("get", "get", "get_order by venue order id and by client order id"),
    ("list", "list", "get_orders lists the open order"),
    ("cancel", "cancel", "cancel_order by either id ends CANCELLED"),
    ("cancel_not_found", "cancel unknown", "cancelling an unknown order raises NotFound"),
    ("duplicate", "duplicate id", "a reused client order id leaves one order at the venue"),
    ("insufficient_funds", "no funds", "an unfundable order raises InsufficientFunds"),
    (
        "rate_limited",
        "rate limited",
        "a 429 the venue really served is retried transparently or raised as RateLimited(retry_after)",
    ),
    ("book_snapshot", "book snapshot", "get_order_book is sorted, uncrossed and respects depth"),
    ("book_resync", "book resync", "subscribe_order_book recovers after a dropped stream and a sequence gap"),
    ("trade_stream", "trades", "subscribe_trades delivers a public trade"),
    ("health", "health", "health() reports reachable with a latency >= 0"),
    ("close", "close", "aclose ends active streams and is idempotent"),
)
_CAPABILITY_KEYS = frozenset(key for key, _, _ in CAPABILITIES)

_ATTR = "_cqvx_capability"


def capability(name: str) -> Callable[[F], F]:
    """Tag a conformance test with the capability (matrix column) it proves."""
    if name not in _CAPABILITY_KEYS:
        raise ValueError(f"unknown capability {name!r}")

    def mark(fn: F) -> F:
        setattr(fn, _ATTR, name)
        return fn

    return mark


def capability_of(fn: object) -> str | None:
    value = getattr(fn, _ATTR, None)
    return value if isinstance(value, str) else None


@runtime_checkable
class ConformanceHarness(Protocol):
    """What a venue provides to the suite: its fake server and the knobs to misbehave.

    Flags (``False`` skips the capability's test with a reason; :class:`HarnessDefaults` sets all
    to ``True``):

    - ``supports_trading``: place/get/list/cancel/duplicate (RFQ- or custody-only venues: False).
    - ``supports_insufficient_funds``: the fake can reject an order for funds.
    - ``supports_rate_limit``; ``rate_limit_retries``: True if the client retries a 429
      transparently (the call then succeeds), False if it raises :class:`RateLimited` with
      ``retry_after`` set.  Say which in the venue's docs.
    - ``supports_order_book``, ``supports_book_resync``, ``supports_trades``.

    The book hooks: :meth:`drop_streams` closes every stream connection server-side AND changes the
    book while the client is away (e.g. removes a level the client holds), so a client that resumed
    without a fresh snapshot would keep a stale level.  :meth:`make_book_gap` applies two updates to
    the server's book and publishes only the second one (its sequence skips the first); the first
    one removes a level the client holds.  :meth:`expected_book` is the server's own current book.
    The server's book changes only through these hooks (and :meth:`emit_trade`, which must not move
    the book), so the test can wait for the client to converge on it.

    The venue-side counters keep the suite from passing for the wrong reason: they read the fake's
    (or the venue model's) OWN state, never the client under test.  :meth:`rate_limits_served` proves
    a 429 really was answered (a client that "retried transparently" past a hook that served nothing
    would otherwise pass), and :meth:`venue_order_count` proves a reused client order id left exactly
    one order at the venue, whichever accepted answer the adapter gave.
    """

    venue: str
    symbol: str
    timeout: float  # seconds any single step may take (reconnects included)
    supports_trading: bool
    supports_insufficient_funds: bool
    supports_rate_limit: bool
    rate_limit_retries: bool
    supports_order_book: bool
    supports_book_resync: bool
    supports_trades: bool

    async def new_client(self) -> VenueClient:
        """A connected, ready client pointed at the fake (the suite closes it)."""
        ...

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        """A limit order that rests and never fills."""
        ...

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        """An order the venue refuses for insufficient funds."""
        ...

    async def rate_limit_next(self, n: int) -> None:
        """Answer the next ``n`` requests as rate-limited (429 with a short Retry-After)."""
        ...

    async def rate_limits_served(self) -> int:
        """How many rate-limited answers the venue has actually given so far (monotonic)."""
        ...

    async def venue_order_count(self, client_order_id: str) -> int:
        """How many orders, in any status, the venue holds under ``client_order_id``."""
        ...

    async def drop_streams(self) -> None: ...

    async def make_book_gap(self) -> None: ...

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook: ...

    async def emit_trade(self) -> None:
        """Cause one public trade on ``symbol``."""
        ...

    async def close(self) -> None: ...


class HarnessDefaults:
    """Convenience base for harnesses: every capability on, 5 s step timeout."""

    venue: str = ""
    symbol: str = "BTC-USD"
    timeout: float = 5.0
    supports_trading: bool = True
    supports_insufficient_funds: bool = True
    supports_rate_limit: bool = True
    rate_limit_retries: bool = True
    supports_order_book: bool = True
    supports_book_resync: bool = True
    supports_trades: bool = True


def _levels(side: Any) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(lv.price), Decimal(lv.quantity)) for lv in side]


def assert_valid_book(book: orderbook_pb2.OrderBook, symbol: str, depth: int | None = None) -> None:
    """Sorted best-first, no duplicate or zero levels, uncrossed, within ``depth``."""
    assert book.symbol == symbol, f"book for {book.symbol!r}, expected {symbol!r}"
    bids = _levels(book.bids)
    asks = _levels(book.asks)
    bid_prices = [p for p, _ in bids]
    ask_prices = [p for p, _ in asks]
    assert bid_prices == sorted(set(bid_prices), reverse=True), f"bids not strictly descending: {bid_prices}"
    assert ask_prices == sorted(set(ask_prices)), f"asks not strictly ascending: {ask_prices}"
    assert all(q > 0 for _, q in (*bids, *asks)), "book holds a zero or negative size"
    assert all(p > 0 for p in (*bid_prices, *ask_prices)), "book holds a non-positive price"
    if bids and asks:
        assert bid_prices[0] < ask_prices[0], f"crossed book: bid {bid_prices[0]} >= ask {ask_prices[0]}"
    if depth is not None:
        assert len(bids) <= depth and len(asks) <= depth, f"depth {depth} exceeded: {len(bids)}/{len(asks)}"


def _same_book(a: orderbook_pb2.OrderBook, b: orderbook_pb2.OrderBook) -> bool:
    return _levels(a.bids) == _levels(b.bids) and _levels(a.asks) == _levels(b.asks)


class ConformanceSuite:
    """Subclass as ``Test<Venue>Conformance``, set :attr:`venue`, provide a ``harness`` fixture."""

    venue: ClassVar[str] = ""  # the matrix row

    # ------------------------------------------------------------------ hooks to override

    def new_client_order_id(self) -> str:
        """A fresh id that fits every venue's limits (override for venues with a required format)."""
        return "cqx" + uuid.uuid4().hex[:20]

    def unknown_order_id(self) -> str:
        """A well-formed order id the venue has never issued."""
        return str(uuid.uuid4())

    # ---------------------------------------------------------------------------- fixtures

    @pytest.fixture
    async def client(self, harness: ConformanceHarness) -> AsyncIterator[VenueClient]:
        c = await harness.new_client()
        try:
            yield c
        finally:
            await c.aclose()

    # ----------------------------------------------------------------------------- helpers

    def _require(self, harness: ConformanceHarness, flag: str, cap: str) -> None:
        if not getattr(harness, flag):
            pytest.skip(
                f"{harness.venue or self.venue}: capability '{cap}' not supported (harness.{flag}=False)"
            )

    async def _place_resting(
        self, client: VenueClient, harness: ConformanceHarness
    ) -> tuple[order_pb2.Order, execution_pb2.ExecutionReport]:
        order = harness.resting_order(self.new_client_order_id())
        report = await asyncio.wait_for(client.place_order(order), harness.timeout)
        return order, report

    async def _cleanup(self, client: VenueClient, harness: ConformanceHarness, order_id: str) -> None:
        # Best effort: leave the fake clean; the test's verdict is already decided.
        with contextlib.suppress(VenueError, TimeoutError):
            await asyncio.wait_for(
                client.cancel_order(symbol=harness.symbol, order_id=order_id), harness.timeout
            )

    async def _wait_cancelled(
        self, client: VenueClient, harness: ConformanceHarness, order: order_pb2.Order
    ) -> None:
        """CANCELLED directly, or PENDING_CANCEL followed by CANCELLED within the timeout."""
        if order.status == order_pb2.ORDER_STATUS_CANCELLED:
            return
        assert order.status == order_pb2.ORDER_STATUS_PENDING_CANCEL, (
            f"cancel returned status {order_pb2.OrderStatus.Name(order.status)}"
        )
        async with asyncio.timeout(harness.timeout):
            while True:
                current = await client.get_order(symbol=harness.symbol, order_id=order.order_id)
                if current.status == order_pb2.ORDER_STATUS_CANCELLED:
                    return
                await asyncio.sleep(0.02)

    async def _until(
        self,
        stream: Stream[orderbook_pb2.OrderBook],
        harness: ConformanceHarness,
        want: orderbook_pb2.OrderBook,
        depth: int,
    ) -> orderbook_pb2.OrderBook:
        """Read books (each must be valid) until one equals ``want``."""
        last: orderbook_pb2.OrderBook | None = None
        try:
            async with asyncio.timeout(harness.timeout):
                async for book in stream:
                    assert_valid_book(book, harness.symbol, depth)
                    last = book
                    if _same_book(book, want):
                        return book
        except TimeoutError:
            pass
        raise AssertionError(
            f"book stream did not converge on the venue's book within {harness.timeout}s\n"
            f"want bids={_levels(want.bids)} asks={_levels(want.asks)}\n"
            f"last bids={_levels(last.bids) if last else None} asks={_levels(last.asks) if last else None}"
        )

    # ------------------------------------------------------------------------------- tests

    @capability("place")
    async def test_place(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "place")
        order, report = await self._place_resting(client, harness)
        try:
            assert isinstance(report, execution_pb2.ExecutionReport)
            assert report.client_order_id == order.client_order_id
            assert report.order_id, "the venue's order id is missing"
            assert report.symbol == harness.symbol
            assert report.venue == harness.venue
            assert report.order_status in (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PENDING_NEW), (
                f"status {order_pb2.OrderStatus.Name(report.order_status)}"
            )
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("get")
    async def test_get_by_either_id(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "get")
        order, report = await self._place_resting(client, harness)
        try:
            by_id = await client.get_order(symbol=harness.symbol, order_id=report.order_id)
            by_coid = await client.get_order(symbol=harness.symbol, client_order_id=order.client_order_id)
            for got in (by_id, by_coid):
                assert got.order_id == report.order_id
                assert got.client_order_id == order.client_order_id
                assert got.symbol == harness.symbol
                assert got.side == order.side
                assert Decimal(got.quantity) == Decimal(order.quantity)
                if order.price:
                    assert Decimal(got.price) == Decimal(order.price)
                assert got.status in OPEN_STATUSES
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("list")
    async def test_list_open_orders(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "list")
        _, report = await self._place_resting(client, harness)
        try:
            listed = await client.get_orders(OrderFilter(symbol=harness.symbol))
            assert report.order_id in {o.order_id for o in listed}
            assert all(o.symbol == harness.symbol and o.status in OPEN_STATUSES for o in listed)
            assert report.order_id in {o.order_id for o in await client.get_orders()}
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("cancel")
    async def test_cancel_by_either_id(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trading", "cancel")
        _, first = await self._place_resting(client, harness)
        second_order, second = await self._place_resting(client, harness)
        cancelled = await client.cancel_order(symbol=harness.symbol, order_id=first.order_id)
        assert cancelled.order_id == first.order_id
        await self._wait_cancelled(client, harness, cancelled)
        cancelled2 = await client.cancel_order(
            symbol=harness.symbol, client_order_id=second_order.client_order_id
        )
        assert cancelled2.order_id == second.order_id
        await self._wait_cancelled(client, harness, cancelled2)
        open_ids = {o.order_id for o in await client.get_orders(OrderFilter(symbol=harness.symbol))}
        assert first.order_id not in open_ids and second.order_id not in open_ids
        after = await client.get_order(symbol=harness.symbol, order_id=first.order_id)
        assert after.status == order_pb2.ORDER_STATUS_CANCELLED

    @capability("cancel_not_found")
    async def test_cancel_unknown_raises_not_found(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._require(harness, "supports_trading", "cancel_not_found")
        with pytest.raises(NotFound):
            await client.cancel_order(symbol=harness.symbol, order_id=self.unknown_order_id())
        with pytest.raises(NotFound):
            await client.cancel_order(symbol=harness.symbol, client_order_id=self.new_client_order_id())

    @capability("duplicate")
    async def test_duplicate_client_order_id_never_makes_two_orders(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        self._require(harness, "supports_trading", "duplicate")
        order, report = await self._place_resting(client, harness)
        try:
            try:
                again = await client.place_order(harness.resting_order(order.client_order_id))
            except DuplicateOrder:
                pass
            else:
                # The adapter resolved the duplicate to the existing order: fine, if it is that order.
                assert again.order_id == report.order_id, "a reused client order id created a second order"
            # Either answer is acceptable only if the venue itself still holds exactly one order.
            held = await harness.venue_order_count(order.client_order_id)
            assert held == 1, f"the venue holds {held} orders under one client order id"
            same = [
                o
                for o in await client.get_orders(OrderFilter(symbol=harness.symbol))
                if o.client_order_id == order.client_order_id
            ]
            assert len(same) == 1, f"{len(same)} open orders share one client order id"
        finally:
            await self._cleanup(client, harness, report.order_id)

    @capability("insufficient_funds")
    async def test_insufficient_funds(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_insufficient_funds", "insufficient_funds")
        coid = self.new_client_order_id()
        with pytest.raises(InsufficientFunds):
            await client.place_order(harness.unfundable_order(coid))
        if harness.supports_trading:
            listed = await client.get_orders(OrderFilter(symbol=harness.symbol))
            assert coid not in {o.client_order_id for o in listed}

    @capability("rate_limited")
    async def test_rate_limited(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_rate_limit", "rate_limited")
        before = await harness.rate_limits_served()
        await harness.rate_limit_next(1)
        if harness.rate_limit_retries:
            balances = await asyncio.wait_for(client.get_balances(), harness.timeout)
            assert isinstance(balances, list)
        else:
            with pytest.raises(RateLimited) as info:
                await client.get_balances()
            assert info.value.retry_after is not None and info.value.retry_after >= 0
            assert info.value.retry_safe
            assert isinstance(await client.get_balances(), list)  # and the next call goes through
        # A success proves nothing unless the venue really answered 429 once (and only once: the
        # call after the retry, or the next call, must not have been limited again).
        served = await harness.rate_limits_served() - before
        assert served == 1, f"the venue served {served} rate-limited answers, expected exactly 1"

    @capability("book_snapshot")
    async def test_book_snapshot(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_order_book", "book_snapshot")
        for depth in (1, 5):
            book = await asyncio.wait_for(client.get_order_book(harness.symbol, depth), harness.timeout)
            assert_valid_book(book, harness.symbol, depth)
            assert book.bids and book.asks, "the fake's book must have both sides"

    @capability("book_resync")
    async def test_book_stream_resyncs(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_order_book", "book_resync")
        self._require(harness, "supports_book_resync", "book_resync")
        depth = 10
        stream = client.subscribe_order_book(harness.symbol, depth)
        try:
            await self._until(stream, harness, await harness.expected_book(depth), depth)
            disturbances: tuple[tuple[str, Callable[[], Awaitable[None]]], ...] = (
                ("drop_streams", harness.drop_streams),
                ("make_book_gap", harness.make_book_gap),
            )
            for name, disturb in disturbances:
                before = await harness.expected_book(depth)
                await disturb()
                want = await harness.expected_book(depth)
                assert not _same_book(before, want), f"harness.{name} must change the venue's book"
                await self._until(stream, harness, want, depth)
        finally:
            await stream.aclose()

    @capability("trade_stream")
    async def test_trade_stream(self, harness: ConformanceHarness, client: VenueClient) -> None:
        self._require(harness, "supports_trades", "trade_stream")
        stream = client.subscribe_trades(harness.symbol)

        async def emit() -> None:
            # Keep trading until the client sees one: the subscription may take a moment to go live.
            while True:
                await harness.emit_trade()
                await asyncio.sleep(0.05)

        emitter = asyncio.create_task(emit())
        try:
            trade = await asyncio.wait_for(anext(aiter(stream)), harness.timeout)
        finally:
            emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await emitter
            await stream.aclose()
        assert isinstance(trade, trade_pb2.Trade)
        assert trade.symbol == harness.symbol and trade.venue == harness.venue
        assert Decimal(trade.price) > 0 and Decimal(trade.quantity) > 0
        assert trade.trade_id, "a public trade needs the venue's trade id (de-duplication)"

    @capability("health")
    async def test_health(self, harness: ConformanceHarness, client: VenueClient) -> None:
        report = await asyncio.wait_for(client.health(), harness.timeout)
        assert report.venue == harness.venue
        assert report.reachable, f"unreachable: {report.last_error}"
        assert report.latency_ms >= 0

    @capability("close")
    async def test_close_ends_streams_and_is_idempotent(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        stream: Stream[Any] | None = None
        if harness.supports_trades:
            stream = client.subscribe_trades(harness.symbol)
        elif harness.supports_order_book:
            stream = client.subscribe_order_book(harness.symbol, 5)
        reader: asyncio.Task[None] | None = None
        if stream is not None:
            live = stream

            async def read() -> None:
                async for _ in live:
                    pass

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.05)  # let the subscription start
        await asyncio.wait_for(client.aclose(), harness.timeout)
        if reader is not None:
            done, _ = await asyncio.wait({reader}, timeout=harness.timeout)
            if not done:
                reader.cancel()
                raise AssertionError("an active stream kept running after aclose()")
            exc = reader.exception()
            # Ending or raising are both fine; what matters is that the reader was released.
            assert exc is None or isinstance(exc, Exception)
        await asyncio.wait_for(client.aclose(), harness.timeout)  # second close: a no-op


# ------------------------------------------------------------------------------ capability matrix

# venue -> capability -> (status, reason); status is "passed", "failed" or "skipped".
CapabilityResults = Mapping[str, Mapping[str, tuple[str, str]]]

_MARK = {"passed": "✓", "failed": "✗", "skipped": "–"}
_DATA = re.compile(r"<!-- cqvx-capability-data (.*?) -->", re.DOTALL)


def read_capability_matrix(path: str | Path) -> dict[str, dict[str, tuple[str, str]]]:
    """The results embedded in a matrix file written by :func:`write_capability_matrix` ({} if none)."""
    p = Path(path)
    if not p.exists():
        return {}
    m = _DATA.search(p.read_text(encoding="utf-8"))
    if not m:
        return {}
    try:
        raw = json.loads(m.group(1))
    except ValueError:
        return {}
    out: dict[str, dict[str, tuple[str, str]]] = {}
    if isinstance(raw, dict):
        for venue, caps in raw.items():
            if isinstance(caps, dict):
                out[str(venue)] = {
                    str(k): (str(v[0]), str(v[1]))
                    for k, v in caps.items()
                    if isinstance(v, list) and len(v) == 2
                }
    return out


def write_capability_matrix(results: CapabilityResults, path: str | Path, *, merge: bool = True) -> Path:
    """Write the markdown matrix: venues x capabilities, ✓ only where the capability's tests passed.

    With ``merge`` (the default) cells this run did not exercise keep their previous result, so running
    one venue's suite (or a subset) does not erase the others.  The file is deterministic (no dates),
    so it only changes when a result does.
    """
    p = Path(path)
    data = read_capability_matrix(p) if merge else {}
    for venue, caps in results.items():
        row = data.setdefault(venue, {})
        row.update({cap: (status, reason) for cap, (status, reason) in caps.items()})
    keys = [key for key, _, _ in CAPABILITIES]
    lines = [
        "# Venue capability matrix",
        "",
        "Generated by the cqvx conformance suite (`cqvx.testing.conformance`) run against each venue's",
        "fake server; do not edit by hand. A cell is ✓ only when every conformance test for that",
        "capability passed in the last run that exercised it; ✗ = failed; – = not supported by the venue",
        "(skipped, reason below); blank = not run.",
        "",
        "| venue | " + " | ".join(title for _, title, _ in CAPABILITIES) + " |",
        "|---|" + "|".join(":-:" for _ in CAPABILITIES) + "|",
    ]
    for venue in sorted(data):
        row = data[venue]
        cells = [_MARK.get(row[k][0], "") if k in row else "" for k in keys]
        lines.append(f"| {venue} | " + " | ".join(cells) + " |")
    lines += ["", "## Capabilities", ""]
    lines += [f"- **{title}** (`{key}`): {what}" for key, title, what in CAPABILITIES]
    notes = [
        f"- {venue} / {cap}: {status}{': ' + reason if reason else ''}"
        for venue in sorted(data)
        for cap in keys
        if cap in data[venue] and data[venue][cap][0] != "passed"
        for status, reason in [data[venue][cap]]
    ]
    if notes:
        lines += ["", "## Not passed", "", *notes]
    remarks = [
        f"- {venue} / {cap}: {data[venue][cap][1]}"
        for venue in sorted(data)
        for cap in keys
        if cap in data[venue] and data[venue][cap][0] == "passed" and data[venue][cap][1]
    ]
    if remarks:
        lines += ["", "## Notes", "", *remarks]
    payload = {v: {c: list(r) for c, r in sorted(caps.items())} for v, caps in sorted(data.items())}
    # "-->" inside a skip reason would end the comment early; \u003e is the same JSON string.
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).replace("-->", "--\\u003e")
    lines += ["", f"<!-- cqvx-capability-data {blob} -->", ""]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines), encoding="utf-8")
    return p
