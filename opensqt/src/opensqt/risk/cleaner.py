"""The order cleaner (reference §3.3, the original L ``safety/order_cleaner.go``), as a pure function.

Rule of the original: count our live orders that have not filled at all (PLACED / CONFIRMED; a partly
filled order is never counted nor cancelled, "to avoid stranding funds"); when that count reaches
``order_cleanup_threshold``, cancel ``cleanup_batch_size`` of them from the side that has more orders
(equal sides: half and half), farthest from the price first: buys lowest price first, sells highest
price first.

Cancelling an unfilled closing sell loses no inventory: the slot keeps its position and the grid places
the sell again when it is back inside the sell window.  A partly filled order (which carries inventory,
or has already released some) is never touched, exactly as in the original.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from cqc.venues.v1 import order_pb2
from opensqt.model.slots import Slot, SlotState
from opensqt.strategy.grid import Cancel

__all__ = ["cleanup_cancels", "cleanup_candidates"]

BUY = order_pb2.ORDER_SIDE_BUY


def cleanup_candidates(slots: Mapping[int, Slot]) -> list[Slot]:
    """Live orders the cleaner may cancel: bound, acknowledged (LOCKED) and not filled at all."""
    return [
        s
        for s in slots.values()
        if s.state is SlotState.LOCKED and s.order is not None and s.order.filled == 0
    ]


def cleanup_cancels(slots: Mapping[int, Slot], *, threshold: int, batch_size: int) -> list[Cancel]:
    """The cancels of one cleaner pass (empty while fewer than ``threshold`` orders are live)."""
    live = cleanup_candidates(slots)
    if len(live) < threshold or batch_size <= 0:
        return []
    buys = sorted((s for s in live if s.order is not None and s.order.side == BUY), key=_price)
    sells = sorted((s for s in live if s.order is not None and s.order.side != BUY), key=_price, reverse=True)
    if len(buys) > len(sells):
        chosen = buys[:batch_size]
    elif len(sells) > len(buys):
        chosen = sells[:batch_size]
    else:
        half = batch_size // 2
        chosen = buys[: batch_size - half] + sells[:half]
    return [Cancel(s.level, s.order.client_order_id, "cleanup") for s in chosen if s.order is not None]


def _price(slot: Slot) -> Decimal:
    assert slot.order is not None
    return slot.order.price
