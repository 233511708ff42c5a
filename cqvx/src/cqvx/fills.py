"""Fills from cumulative order states, for venues whose order channel reports order state, never single
fills (Coinbase's ``user`` channel, Prime's ``orders`` channel): fills are derived from increases of the
cumulative quantity (price from the change of filled value), with a deterministic id
``<order_id>:<cumulative>``, and de-duplicated, so replays after a reconnect emit nothing twice.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.num import dec_str
from cqvx.types import TERMINAL_STATUSES, report_from_order

__all__ = ["FillTracker"]

_UNSEEN = order_pb2.ORDER_STATUS_UNSPECIFIED  # tracked (placed by us) but no state seen yet
_EXEC_FOR_STATUS: dict[int, execution_pb2.ExecutionType.ValueType] = {
    order_pb2.ORDER_STATUS_CANCELLED: execution_pb2.EXECUTION_TYPE_CANCELLED,
    order_pb2.ORDER_STATUS_EXPIRED: execution_pb2.EXECUTION_TYPE_EXPIRED,
    order_pb2.ORDER_STATUS_FAILED: execution_pb2.EXECUTION_TYPE_FAILED,
    order_pb2.ORDER_STATUS_REJECTED: execution_pb2.EXECUTION_TYPE_REJECTED,
    order_pb2.ORDER_STATUS_PENDING_CANCEL: execution_pb2.EXECUTION_TYPE_PENDING_CANCEL,
}


@dataclass(slots=True)
class _OrderState:
    cumulative: Decimal
    value: Decimal  # filled quantity x average price
    fees: Decimal
    status: int
    # (filled_quantity, average_fill_price, total_fees) as the order carried them: an update with the
    # same text and status reports nothing and changes nothing, so it is answered without arithmetic.
    text: tuple[str, str, str] = ("", "", "")


_NOTHING = _OrderState(Decimal(0), Decimal(0), Decimal(0), order_pb2.ORDER_STATUS_UNSPECIFIED)


class FillTracker:
    """Turns successive cumulative order states into execution reports, each fill exactly once."""

    def __init__(self, max_seen: int = 100_000, *, venue: str) -> None:
        self._venue = venue  # stamped on every report (a stream's order states may not carry it)
        self._orders: dict[str, _OrderState] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._max_seen = max_seen

    def _report(
        self,
        order: order_pb2.Order,
        etype: execution_pb2.ExecutionType.ValueType,
        execution_id: str | None = None,
    ) -> execution_pb2.ExecutionReport:
        rep = report_from_order(order, etype, execution_id=execution_id)
        rep.venue = self._venue
        return rep

    def open_order_ids(self) -> list[str]:
        """Orders not known to be finished (including placed ones never seen on the stream)."""
        return [oid for oid, st in self._orders.items() if st.status not in TERMINAL_STATUSES]

    def register(self, order_id: str) -> None:
        """Track an order this client placed before the stream has said anything about it: if it
        finishes while the stream is away, the next snapshot's reconciliation fetches it."""
        if order_id and order_id not in self._orders:
            self._orders[order_id] = _OrderState(Decimal(0), Decimal(0), Decimal(0), _UNSEEN)
            self._prune()

    def _prune(self) -> None:
        # Finished orders are only kept so replays stay quiet; beyond the bound, the oldest go first
        # (their fill ids stay in ``_seen``).  Open orders are never dropped.
        excess = len(self._orders) - self._max_seen
        if excess <= 0:
            return
        for oid in [o for o, st in self._orders.items() if st.status in TERMINAL_STATUSES][:excess]:
            del self._orders[oid]

    def update(
        self, order: order_pb2.Order, *, baseline: bool = False
    ) -> list[execution_pb2.ExecutionReport]:
        """Reports for a new state of ``order``.  ``baseline`` (the first snapshot of a stream) records
        the state and reports it as STATUS without inventing fills from before the stream started."""
        text = (order.filled_quantity, order.average_fill_price, order.total_fees)
        prev = self._orders.get(order.order_id)
        if prev is not None and prev.status == order.status != _UNSEEN and prev.text == text:
            return []  # a repeat of the known state (e.g. a re-sent update): nothing happened
        cum = Decimal(text[0] or "0")
        avg = Decimal(text[1] or "0")
        fees = Decimal(text[2] or "0")
        value = cum * avg
        out: list[execution_pb2.ExecutionReport] = []
        if prev is None or prev.status == _UNSEEN:
            if prev is None:
                self._prune()
            self._orders[order.order_id] = _OrderState(cum, value, fees, order.status, text)
            if baseline:
                out.append(self._report(order, execution_pb2.EXECUTION_TYPE_STATUS))
                return out
            prev = _NOTHING
            if cum == 0 and order.status not in _EXEC_FOR_STATUS:
                out.append(self._report(order, execution_pb2.EXECUTION_TYPE_NEW))
                return out
        if cum > prev.cumulative:
            cum_text = dec_str(cum)
            trade_id = f"{order.order_id}:{cum_text}"
            if trade_id not in self._seen:
                rep = self._report(order, execution_pb2.EXECUTION_TYPE_TRADE, trade_id)
                rep.trade_id = trade_id
                if prev.cumulative:
                    delta = cum - prev.cumulative
                    rep.last_quantity = dec_str(delta)
                    price = (value - prev.value) / delta if value > prev.value else avg
                else:  # the first fill: all of it, at the average (value / cum without the division)
                    rep.last_quantity = cum_text
                    price = avg
                rep.last_price = _fill_price(price)
                rep.fee = dec_str(fees - prev.fees) if fees > prev.fees else "0"
                out.append(rep)
                # Marked only once the report exists: a fill marked seen but never reported would be
                # suppressed as a "replay" forever after.
                self._mark_seen(trade_id)
        elif order.status != prev.status and order.status in _EXEC_FOR_STATUS:
            out.append(self._report(order, _EXEC_FOR_STATUS[order.status]))
        if cum >= prev.cumulative:
            self._orders[order.order_id] = _OrderState(cum, value, fees, order.status, text)
        if order.status in TERMINAL_STATUSES and cum > prev.cumulative and order.status in _EXEC_FOR_STATUS:
            # Filled part and then cancelled/expired in one update: report both events.
            out.append(self._report(order, _EXEC_FOR_STATUS[order.status]))
        return out

    def _mark_seen(self, trade_id: str) -> None:
        self._seen[trade_id] = None
        if len(self._seen) > self._max_seen:
            self._seen.popitem(last=False)


_PRICE_STEP = Decimal("1e-12")


def _fill_price(price: Decimal) -> str:
    """A derived fill price, trimmed of division noise; never raises on extreme values."""
    if not price:
        return ""
    try:
        return dec_str(price.quantize(_PRICE_STEP))
    except InvalidOperation:  # more digits than the context holds: keep the quotient as it is
        return dec_str(price)
