"""Plain value types of the library interface: filters, stream handles and small result records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

from cqc.venues.v1 import execution_pb2, order_pb2, rfq_pb2
from cqvx.streams import Gap, LiveStream
from cqvx.timeutil import to_datetime

__all__ = [
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "AlgoParams",
    "Gap",
    "LiveStream",
    "OrderFilter",
    "QuoteExecution",
    "Stream",
    "report_from_order",
]

T_co = TypeVar("T_co", covariant=True)

OPEN_STATUSES: frozenset[int] = frozenset(
    {
        order_pb2.ORDER_STATUS_PENDING_NEW,
        order_pb2.ORDER_STATUS_OPEN,
        order_pb2.ORDER_STATUS_PARTIALLY_FILLED,
        order_pb2.ORDER_STATUS_PENDING_CANCEL,
    }
)
TERMINAL_STATUSES: frozenset[int] = frozenset(
    {
        order_pb2.ORDER_STATUS_FILLED,
        order_pb2.ORDER_STATUS_CANCELLED,
        order_pb2.ORDER_STATUS_REJECTED,
        order_pb2.ORDER_STATUS_EXPIRED,
        order_pb2.ORDER_STATUS_FAILED,
    }
)


# Every ``subscribe_*`` returns this: the live-stream contract (eager start, ``wait_live``, ``on_gap``,
# ``aclose``).  Its one home is :mod:`cqvx.streams`.
Stream = LiveStream


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Which orders ``get_orders`` returns.

    With no ``statuses`` it returns open orders; adapters page through the venue's cursor until
    ``limit`` orders (or all of them, when ``limit`` is None) are collected.
    """

    symbol: str | None = None
    statuses: frozenset[int] = field(default_factory=frozenset)
    side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    start: datetime | None = None
    end: datetime | None = None
    limit: int | None = None

    @property
    def open_only(self) -> bool:
        return not self.statuses

    def wanted_statuses(self) -> frozenset[int]:
        return self.statuses or OPEN_STATUSES

    def matches(self, order: order_pb2.Order) -> bool:
        """Apply the filter locally (for venues that cannot filter server-side)."""
        if self.symbol and order.symbol != self.symbol:
            return False
        if order.status not in self.wanted_statuses():
            return False
        if self.side and order.side != self.side:
            return False
        if order.HasField("created_at"):
            created = to_datetime(order.created_at)
            if self.start and created < _aware(self.start):
                return False
            if self.end and created >= _aware(self.end):
                return False
        return True


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are UTC by the platform's convention."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AlgoParams:
    """How an algorithmic order works itself out (:class:`cqvx.client.SupportsAlgoOrders`).

    ``strategy`` is ``"TWAP"`` (evenly over time) or ``"VWAP"`` (following volume).  ``start`` and
    ``expiry`` bound the schedule (naive datetimes are UTC); ``participation`` is the fraction of
    market volume to aim for, as a decimal string (``"0.1"`` = 10 %), when the venue takes one.  The
    order's own ``price`` is the limit no child fill may cross.
    """

    strategy: str
    start: datetime | None = None
    expiry: datetime | None = None
    participation: str | None = None


class QuoteExecution(NamedTuple):
    """The answer to executing an RFQ quote: the quote after execution and the resulting fill."""

    quote: rfq_pb2.Quote
    report: execution_pb2.ExecutionReport


def report_from_order(
    order: order_pb2.Order,
    execution_type: execution_pb2.ExecutionType.ValueType,
    *,
    execution_id: str | None = None,
) -> execution_pb2.ExecutionReport:
    """An execution report describing an order's current state (lookups, cumulative order updates).

    The default ``execution_id`` is derived from the order's state, so the same state always yields the
    same id and a replay can be de-duplicated.
    """
    report = execution_pb2.ExecutionReport(
        execution_id=execution_id
        or f"{order.order_id}:{execution_type}:{order.status}:{order.filled_quantity}",
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        venue=order.venue,
        symbol=order.symbol,
        execution_type=execution_type,
        order_status=order.status,
        side=order.side,
        order_type=order.order_type,
        time_in_force=order.time_in_force,
        order_price=order.price,
        order_quantity=order.quantity,
        cumulative_quantity=order.filled_quantity,
        remaining_quantity=order.remaining_quantity,
        average_fill_price=order.average_fill_price,
        fee_asset=order.fee_asset,
        rejection_reason=order.rejection_reason,
        account_id=order.account_id,
        post_only=order.post_only,
        reduce_only=order.reduce_only,
    )
    if order.HasField("created_at"):
        report.transact_time.CopyFrom(order.created_at)
    return report
