"""What a venue's test provides to the suite: the harness protocols and their defaults.

:class:`ConformanceHarness` is required.  The optional hook protocols below add capabilities; a harness
that does not implement one has that capability reported as *not covered* (skipped with a reason
naming the venue and the missing hook), never as passed.  Every hook acts on the venue's side (the
fake server or the venue model), never through the client under test, and the counters read the
venue's own state, so the suite cannot pass for the wrong reason.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

from cqc.markets.v1 import funding_pb2, orderbook_pb2
from cqc.portfolio.v1 import transaction_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient

__all__ = [
    "ConformanceHarness",
    "ExecutionHarness",
    "FundingHistoryHarness",
    "FundingPaymentsHarness",
    "HarnessDefaults",
    "OtherSymbolHarness",
    "PositionHarness",
    "StreamDropHarness",
]


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


@runtime_checkable
class ExecutionHarness(Protocol):
    """Fills on demand: the ``executions`` capability (and the base of ``exec_reconnect``/``exec_gap``)."""

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        """The venue fills ``quantity`` of the resting order ``report`` describes (a counterparty trades
        with it at its limit price); the fill's update goes out on the execution stream as usual."""
        ...


@runtime_checkable
class StreamDropHarness(Protocol):
    """Cuts the client's stream connections: ``exec_reconnect`` and ``exec_gap``.

    A harness that cannot cut a connection (a venue object that is its own client and has no
    connection) does not implement this; the two capabilities are then reported as not covered.
    """

    async def force_stream_drop(self) -> None:
        """Cut the connection behind every stream of the client now.  Messages in transit are lost;
        the adapter must heal by itself (reconnect, re-subscribe, deliver what it missed or announce a
        :class:`~cqvx.streams.Gap`): the stream must not end."""
        ...

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        """Like :meth:`ExecutionHarness.fill`, but the fill's update never reaches the client: it is
        lost in transit and the connection is then cut (a sequence gap on the account stream)."""
        ...


@runtime_checkable
class OtherSymbolHarness(Protocol):
    """A resting order on a second symbol: ``cancel_all`` then also proves it stays untouched."""

    def other_resting_order(self, client_order_id: str) -> order_pb2.Order: ...


@runtime_checkable
class PositionHarness(Protocol):
    """The ``positions`` capability: a perpetual the account can trade."""

    position_symbol: str

    def position_order(self, client_order_id: str, side: int, quantity: Decimal) -> order_pb2.Order:
        """An order on ``position_symbol`` that fills at once (e.g. a market order), ``reduce_only``
        when it closes the position."""
        ...


@runtime_checkable
class FundingHistoryHarness(Protocol):
    """The ``funding_history`` capability: a perpetual whose funding the venue can settle on demand."""

    funding_symbol: str

    async def settle_funding(self) -> None:
        """The venue settles one funding payment of ``funding_symbol`` now (e.g. its clock jumps one
        funding interval)."""
        ...

    async def last_settlement(self) -> funding_pb2.FundingRate:
        """The venue's OWN record of its latest settlement of ``funding_symbol``: ``rate`` and
        ``funding_time`` (read on the venue's side, never through the client under test)."""
        ...


@runtime_checkable
class FundingPaymentsHarness(FundingHistoryHarness, Protocol):
    """The ``funding_payments`` capability: settlements on demand (:class:`FundingHistoryHarness`) and
    the venue's own record of the account's latest payment (the position comes from
    :class:`PositionHarness`'s ``position_order`` on ``funding_symbol``)."""

    async def last_funding_payment(self) -> transaction_pb2.Transaction:
        """The venue's OWN record of the account's latest funding payment on ``funding_symbol``:
        ``amount`` signed + received, ``asset`` and ``timestamp`` (read on the venue's side)."""
        ...


class HarnessDefaults:
    """Convenience base for harnesses: every core capability on, 5 s step timeout.

    The optional capabilities follow from the hook protocols the harness implements.
    """

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
