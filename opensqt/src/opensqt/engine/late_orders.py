"""Late orders: orders of ours that no slot expects (docs/engine.md "Late orders").

An order whose request outlived its slot's patience (a placement proven absent after the landing window,
then created by a slow venue anyway; or one whose slot moved on) carries our client order id, and the
ledger's :attr:`~opensqt.engine.ledger.SlotLedger.issued` table (every id this store ever issued, with its
level, side and cycle, persisted before the first send) maps it back to its slot, after a restart too.

* :meth:`LateOrders.settle` (a reconciler pass, or the order stream reporting such an order): when its
  slot is FREE and the order fits it (an opening order on a flat slot, a closing one on a slot holding
  enough position) and no fill of it was recorded yet, it is bound to the slot (``ADOPT``); otherwise it
  is cancelled (:meth:`cancel_pending`).  Either way its fills are recorded in the level's position and
  PnL (``SlotLedger.record_late``): no fill of ours is ever dropped.
* :meth:`cancel_unbound` (shutdown with ``cancel_on_exit``): every open order of ours that no slot holds
  is cancelled too.
* :meth:`recover_fills` (a position divergence): every issued order no slot holds and not known final is
  looked up, and fills the engine missed are recorded; the reconciler then compares again.

Venue I/O runs without the ledger lock; ledger changes take it.
"""

from __future__ import annotations

from decimal import Decimal

import structlog

from cqc.venues.v1 import order_pb2
from cqvx.errors import NotFound, VenueError
from cqvx.types import OPEN_STATUSES, OrderFilter
from opensqt.engine.context import GridContext
from opensqt.engine.executor import OrderExecutor
from opensqt.engine.ledger import FINAL_ORDER_STATUSES, SlotLedger
from opensqt.model.slots import OrderIntent, Slot, SlotState

__all__ = ["LateOrders", "fits"]

log = structlog.get_logger("opensqt.engine")

RECOVER_LOOKUPS = 200  # the newest unsettled orders looked up when positions diverge


def fits(slot: Slot, side: int, quantity: Decimal, *, neutral: bool) -> bool:
    """May ``slot`` hold an order of ``side`` for ``quantity``?  (FREE, and opening on a flat slot or
    closing a position at least that large.)"""
    if slot.state is not SlotState.FREE or slot.order is not None:
        return False
    buy = side == order_pb2.ORDER_SIDE_BUY
    if slot.position == 0:
        return buy or neutral
    return slot.position >= quantity if not buy else -slot.position >= quantity


class LateOrders:
    def __init__(self, ctx: GridContext, *, executor: OrderExecutor, ledger: SlotLedger) -> None:
        self.ctx = ctx
        self.symbol = ctx.symbol
        self.executor = executor
        self.ledger = ledger
        self.to_cancel: set[str] = set()  # late orders to cancel (their slot moved on)
        self.adopted = 0
        self.cancelled = 0

    def unbound(self, cid: str) -> bool:
        """Issued by this store and held by no slot (whatever its row says)."""
        return cid in self.ledger.issued and self.ledger.slot_for(cid) is None

    def is_late(self, cid: str) -> bool:
        """Issued by this store, not known final, and no slot holds it."""
        row = self.ledger.issued.get(cid)
        return (
            row is not None and row.status not in FINAL_ORDER_STATUSES and self.ledger.slot_for(cid) is None
        )

    async def settle(self, cid: str, listed: order_pb2.Order | None = None) -> str | None:
        """Bind a late order to its slot or mark it for cancelling, and record its fills.  Returns
        ``"adopted"``, ``"late"`` (recorded / to cancel), or None (nothing to do)."""
        ledger = self.ledger
        row = ledger.issued.get(cid)
        if row is None:
            return None
        oid = listed.order_id if listed is not None else row.order_id
        try:
            fresh = await self.executor.lookup(self.symbol, cid, oid)
        except VenueError as err:
            log.warning("lookup of a late order failed; next pass", cid=cid, error=str(err))
            return None
        if fresh is None:
            return None
        async with ledger.lock:
            if ledger.slot_for(cid) is not None:
                return None  # bound meanwhile (a reused id, or a report)
            # Read again under the lock: a report may have recorded a fill of it during the lookup.
            row = ledger.issued.get(cid, row)
            slot = ledger.slots.get(row.level) or Slot(row.level)
            is_open = fresh.status in OPEN_STATUSES
            if (
                is_open
                and row.filled == 0
                and not ledger.recorded.get(cid)
                and fits(slot, row.side, row.quantity, neutral=self.ctx.params.neutral)
            ):
                intent = OrderIntent(
                    client_order_id=cid,
                    side=row.side,
                    price=row.price,
                    quantity=row.quantity,
                    cycle=max(row.cycle, slot.cycle),
                    post_only=listed.post_only if listed is not None else False,
                    reduce_only=listed.reduce_only if listed is not None else False,
                    order_id=fresh.order_id,
                )
                slot = ledger.slots.setdefault(row.level, slot)
                await ledger.transition(slot, lambda s: s.adopt(intent), "adopted")
                ledger.bind(cid, row.level)
                await ledger.apply_state(slot, cid, fresh)
                self.adopted += 1
                log.warning("late order bound to its slot", cid=cid, level=row.level)
                return "adopted"
            await ledger.record_late(cid, fresh)
            if is_open:
                self.to_cancel.add(cid)
        return "late"

    async def cancel_pending(self) -> int:
        """Cancel the late orders marked by :meth:`settle`; record what they filled.  Returns how many
        were settled (cancelled or found closed)."""
        done = 0
        for cid in sorted(self.to_cancel):
            if await self._cancel(cid):
                self.to_cancel.discard(cid)
                done += 1
        return done

    async def _cancel(self, cid: str) -> bool:
        row = self.ledger.issued.get(cid)
        if row is None:
            return True
        result = await self.executor.cancel(self.symbol, cid)
        if isinstance(result, NotFound):
            try:
                found = await self.executor.lookup(self.symbol, cid, row.order_id)
            except VenueError:
                return False
            if found is None:
                return True
            result = found
        if isinstance(result, VenueError):
            log.warning("cancel of a late order failed; next pass", cid=cid, error=str(result))
            return False
        async with self.ledger.lock:
            await self.ledger.record_late(cid, result)
        self.cancelled += 1
        return result.status not in OPEN_STATUSES

    async def cancel_unbound(self) -> None:
        """Shutdown: cancel every open order of ours (issued by this store) that no slot holds."""
        try:
            listed = await self.executor.client.get_orders(OrderFilter(symbol=self.symbol))
        except VenueError as err:
            log.warning("listing open orders at shutdown failed", error=str(err))
            listed = []
        for o in listed:
            if o.status in OPEN_STATUSES and self.unbound(o.client_order_id):
                self.to_cancel.add(o.client_order_id)
        await self.cancel_pending()

    async def recover_fills(self) -> int:
        """Look up every issued order no slot holds whose outcome is not final; record missed fills.
        Returns how many orders had news."""
        ledger = self.ledger
        todo = [cid for cid in ledger.issued if self.is_late(cid)][-RECOVER_LOOKUPS:]
        news = 0
        for cid in todo:
            if await self.settle(cid) is not None:
                news += 1
        await self.cancel_pending()
        return news
