"""The venue interface: :class:`VenueClient` (the nine core methods) and the capability protocols.

Every venue adapter, the simulated venue, :class:`cqvx.testing.MockVenue` and the connector's
``RemoteVenue`` implement :class:`VenueClient`; optional features are separate protocols, found with
``isinstance(client, SupportsPositions)`` or listed by ``client.capabilities()``.

Identifying an order: pass exactly one of ``order_id`` (the venue's id) or ``client_order_id`` (ours).
``symbol`` is required by venues whose ids are scoped per symbol and ignored by the others.

Spot margin (``Order.margin``: a SELL that borrows the base asset, a BUY that repays it) is offered by
the venues whose ``capabilities()`` list ``CAPABILITY_SPOT_MARGIN`` (:func:`supports_spot_margin`); every
other venue refuses such an order with :class:`~cqvx.errors.UnsupportedOperation` before sending anything
(:func:`refuse_margin`), never placing it as a cash order.

Outcomes of ``place_order``: an :class:`ExecutionReport` (confirmed), a taxonomy error such as
:class:`~cqvx.errors.OrderRejected` or :class:`~cqvx.errors.InsufficientFunds` (rejected), or
:class:`~cqvx.errors.Timeout` (unresolved: look the order up by its client order id; never re-send).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2, transaction_pb2
from cqc.venues.v1 import (
    balance_pb2,
    custody_pb2,
    execution_pb2,
    order_pb2,
    rfq_pb2,
    venue_pb2,
)
from cqvx.errors import InvalidRequest, UnsupportedOperation, VenueError
from cqvx.types import AlgoParams, OrderFilter, QuoteExecution, Stream

__all__ = [
    "SupportsAlgoOrders",
    "SupportsBalanceStream",
    "SupportsBatchOrders",
    "SupportsCancelAll",
    "SupportsCandles",
    "SupportsCustody",
    "SupportsFundingHistory",
    "SupportsFundingPayments",
    "SupportsFundingRates",
    "SupportsInstruments",
    "SupportsOrderStream",
    "SupportsPositions",
    "SupportsPrices",
    "SupportsRfq",
    "VenueClient",
    "capabilities_of",
    "check_order_ref",
    "refuse_margin",
    "supports_spot_margin",
]


@runtime_checkable
class VenueClient(Protocol):
    """The core interface every venue client implements."""

    @property
    def venue(self) -> str:
        """Venue id, e.g. ``"coinbase"``."""
        ...

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport: ...

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order: ...

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order: ...

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]: ...

    async def get_balances(self) -> list[balance_pb2.Balance]: ...

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook: ...

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        """Top-``depth`` snapshots of the locally maintained book, one per update (resynced on gaps)."""
        ...

    def subscribe_trades(self, symbol: str) -> Stream[trade_pb2.Trade]: ...

    async def health(self) -> venue_pb2.VenueHealth: ...

    def capabilities(self) -> frozenset[int]:
        """The ``cqc.venues.v1.Capability`` values this client supports."""
        ...

    async def aclose(self) -> None:
        """Close every connection and task; idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class SupportsInstruments(Protocol):
    async def get_instruments(
        self, symbols: Sequence[str] | None = None
    ) -> list[instrument_pb2.Instrument]: ...


@runtime_checkable
class SupportsOrderStream(Protocol):
    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> Stream[execution_pb2.ExecutionReport]:
        """Order updates and fills of the account (fills de-duplicated by trade id)."""
        ...


@runtime_checkable
class SupportsPositions(Protocol):
    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]: ...

    def subscribe_positions(self, symbols: Sequence[str] | None = None) -> Stream[position_pb2.Position]: ...


@runtime_checkable
class SupportsFundingRates(Protocol):
    async def get_funding_rate(self, symbol: str) -> funding_pb2.FundingRate: ...

    async def get_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> list[funding_pb2.FundingRate]: ...

    def subscribe_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> Stream[funding_pb2.FundingRate]: ...


@runtime_checkable
class SupportsFundingHistory(Protocol):
    """Settled funding rates of a perpetual (``CAPABILITY_FUNDING_HISTORY``); the conformance column is
    ``funding history``."""

    async def get_funding_rate_history(
        self, symbol: str, start: datetime | None = None, limit: int | None = None
    ) -> list[funding_pb2.FundingRate]:
        """Oldest first, each with ``rate`` (the settled rate) and ``funding_time`` (when it was charged);
        from ``start`` when given, at most ``limit`` (the most recent ones) when given."""
        ...


@runtime_checkable
class SupportsFundingPayments(Protocol):
    """The account's own funding payments (its ledger), as the venue booked them
    (``CAPABILITY_FUNDING_PAYMENTS``)."""

    async def get_funding_payments(
        self, symbol: str, start: datetime | None = None
    ) -> list[transaction_pb2.Transaction]:
        """Oldest first: ``TRANSACTION_TYPE_FUNDING``, ``amount`` signed in ``asset`` (+ received,
        - paid), ``timestamp`` = the settlement; from ``start`` (else the venue's default window)."""
        ...


@runtime_checkable
class SupportsCandles(Protocol):
    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        """Historical candles, oldest first; ``interval`` is a ``CandleInterval`` value."""
        ...

    def subscribe_candles(self, symbol: str, interval: int) -> Stream[candle_pb2.Candle]: ...


@runtime_checkable
class SupportsBatchOrders(Protocol):
    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        """One result per order, in order; a failed item is its taxonomy error, not an exception."""
        ...

    async def cancel_orders(
        self, refs: Sequence[order_pb2.OrderRef]
    ) -> list[order_pb2.Order | VenueError]: ...


@runtime_checkable
class SupportsCancelAll(Protocol):
    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        """Cancel every open order (of ``symbol``/``side`` when given) and return the cancelled orders.

        Every order is attempted.  If some cancels fail, the rest are still sent and then the first
        failure's taxonomy error is raised with ``.completed`` (the orders that were cancelled) and
        ``.failures`` (``(order_id, error)`` pairs) attached; orders that completed on their own in the
        meantime are not failures.
        """
        ...


@runtime_checkable
class SupportsPrices(Protocol):
    async def get_latest_price(self, symbol: str) -> price_pb2.Price: ...

    async def get_tickers(self, symbols: Sequence[str] | None = None) -> list[price_pb2.Ticker]: ...

    def subscribe_prices(self, symbols: Sequence[str]) -> Stream[price_pb2.Price]: ...


@runtime_checkable
class SupportsBalanceStream(Protocol):
    def subscribe_balances(self) -> Stream[balance_pb2.Balance]: ...


@runtime_checkable
class SupportsRfq(Protocol):
    async def request_quote(self, request: rfq_pb2.QuoteRequest) -> rfq_pb2.Quote: ...

    async def execute_quote(self, quote_id: str, side: int) -> QuoteExecution: ...


@runtime_checkable
class SupportsAlgoOrders(Protocol):
    """Algorithmic parent orders (TWAP/VWAP): the venue slices them; child fills come back as
    execution reports of the parent (``get_order`` / the order stream), never as orders of their own.

    There is no ``Capability`` value for it in the proto (yet): find it with ``isinstance``.
    """

    def algo_strategies(self) -> frozenset[str]:
        """The ``AlgoParams.strategy`` names this venue takes, e.g. ``{"TWAP", "VWAP"}``."""
        ...

    async def place_algo_order(
        self, order: order_pb2.Order, algo: AlgoParams
    ) -> execution_pb2.ExecutionReport:
        """Same outcomes as ``place_order`` (confirmed, rejected, or Timeout = look it up)."""
        ...


@runtime_checkable
class SupportsCustody(Protocol):
    async def create_transaction(
        self, request: custody_pb2.CustodyTransferRequest
    ) -> custody_pb2.CustodyTransaction: ...

    async def get_transaction(self, transaction_id: str) -> custody_pb2.CustodyTransaction: ...

    async def await_transaction(
        self, transaction_id: str, states: frozenset[int], timeout: float
    ) -> custody_pb2.CustodyTransaction:
        """Poll until the transaction reaches one of ``states`` (or any terminal state), or time out."""
        ...


_CAPABILITY_PROTOCOLS: tuple[tuple[type, tuple[int, ...]], ...] = (
    (SupportsInstruments, (venue_pb2.CAPABILITY_INSTRUMENTS,)),
    (SupportsOrderStream, (venue_pb2.CAPABILITY_ORDER_STREAM,)),
    (SupportsPositions, (venue_pb2.CAPABILITY_POSITIONS, venue_pb2.CAPABILITY_POSITION_STREAM)),
    (SupportsFundingRates, (venue_pb2.CAPABILITY_FUNDING_RATES, venue_pb2.CAPABILITY_FUNDING_STREAM)),
    (SupportsFundingHistory, (venue_pb2.CAPABILITY_FUNDING_HISTORY,)),
    (SupportsFundingPayments, (venue_pb2.CAPABILITY_FUNDING_PAYMENTS,)),
    (SupportsCandles, (venue_pb2.CAPABILITY_CANDLES, venue_pb2.CAPABILITY_CANDLE_STREAM)),
    (SupportsBatchOrders, (venue_pb2.CAPABILITY_BATCH_PLACE, venue_pb2.CAPABILITY_BATCH_CANCEL)),
    (SupportsCancelAll, (venue_pb2.CAPABILITY_CANCEL_ALL,)),
    (SupportsPrices, (venue_pb2.CAPABILITY_TICKERS, venue_pb2.CAPABILITY_PRICE_STREAM)),
    (SupportsBalanceStream, (venue_pb2.CAPABILITY_BALANCE_STREAM,)),
    (SupportsRfq, (venue_pb2.CAPABILITY_RFQ,)),
    (SupportsCustody, (venue_pb2.CAPABILITY_CUSTODY,)),
)


def capabilities_of(client: object) -> frozenset[int]:
    """Capabilities implied by the protocols an object implements (the default ``capabilities()``)."""
    caps: set[int] = set()
    for proto, values in _CAPABILITY_PROTOCOLS:
        if isinstance(client, proto):
            caps.update(values)
    return frozenset(caps)


def check_order_ref(order_id: str | None, client_order_id: str | None) -> None:
    """Exactly one id must be given; raises :class:`InvalidRequest` otherwise."""
    if bool(order_id) == bool(client_order_id):
        raise InvalidRequest("give exactly one of order_id or client_order_id")


def supports_spot_margin(client: VenueClient) -> bool:
    """Whether ``client`` places spot margin orders (``Order.margin``: borrow on a sell, repay on a buy)."""
    return venue_pb2.CAPABILITY_SPOT_MARGIN in client.capabilities()


def refuse_margin(order: order_pb2.Order, venue: str) -> None:
    """The refusal of a venue without spot margin: ``order.margin`` raises :class:`UnsupportedOperation`
    (called before anything is sent, so a margin order is never placed as a cash order)."""
    if order.margin:
        raise UnsupportedOperation(
            f"{venue} has no spot margin: Order.margin (borrow on a sell, repay on a buy) is refused",
            venue=venue,
        )
