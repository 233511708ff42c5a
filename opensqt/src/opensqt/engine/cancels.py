"""The cancel path: commit the cancel intents, send them (batched where the venue supports it), settle
the answers.

* Every cancel intent (LOCKED -> CANCEL_REQUESTED) is committed in ONE transaction before anything is sent
  (``SlotLedger.commit_cancels``).
* ``NotFound``: the order already ended at the venue; it is looked up to learn how (fills).
* An ambiguous answer (timeout, unreadable reply: the cancel may or may not have acted) is resolved at
  once: the order is looked up and, while it still works, the cancel is sent again (``CANCEL_ROUNDS``
  sends in all; after that the reconciler re-sends it once it is stuck), so a risk-control cancel cannot
  silently not happen.
* A refusal: the order is still working (CANCEL_REQUESTED -> LOCKED).
* A state write that keeps failing is logged and counted; the other answers are still applied.
* :meth:`Canceller.cancel_everything` (shutdown with ``cancel_on_exit``, a resync, a position reduction
  on a breaker trip): every order of ours, the slots' and the late ones no slot holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from cqvx.errors import NotFound, VenueError
from cqvx.types import OPEN_STATUSES
from opensqt.engine.context import EngineStats
from opensqt.engine.executor import OrderExecutor, VenueOrderState, ambiguous
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.reconciler import Reconciler
from opensqt.engine.store import StoreWriteFailed
from opensqt.model.slots import SlotState
from opensqt.observability.metrics import EngineMetrics
from opensqt.strategy.grid import Cancel

__all__ = ["CANCEL_ROUNDS", "Canceller"]

log = structlog.get_logger("opensqt.engine")

CANCEL_ROUNDS = 3  # sends of one cancel whose answers are lost, before the reconciler takes over


class Canceller:
    def __init__(
        self,
        symbol: str,
        *,
        ledger: SlotLedger,
        executor: OrderExecutor,
        reconciler: Reconciler,
        stats: EngineStats,
        metrics: EngineMetrics,
    ) -> None:
        self.symbol = symbol
        self.ledger = ledger
        self.executor = executor
        self.reconciler = reconciler
        self.stats = stats
        self.metrics = metrics

    async def run(self, cancels: Sequence[Cancel], *, resend: bool = False, round_: int = 0) -> None:
        """Mark and commit every cancel intent (one commit), then cancel (batched where supported).

        ``resend``: see :meth:`SlotLedger.commit_cancels`.  A cancel whose answer was lost (timeout) is
        resolved at once: the order is looked up and, while it still works, the cancel is sent again
        (``CANCEL_ROUNDS`` in all; after that the reconciler re-sends it once it is stuck), so a risk
        cancel cannot silently not happen."""
        ledger = self.ledger
        async with ledger.lock:
            sent = await ledger.commit_cancels(cancels, resend=resend)
        if not sent:
            return
        for c in sent:
            self.stats.cancels += 1
            self.metrics.orders_cancelled.labels(symbol=self.symbol, reason=c.reason).inc()
        results = await self.executor.cancel_many(self.symbol, [c.client_order_id for c in sent])
        again: list[Cancel] = []
        for c, result in zip(sent, results, strict=True):
            cid = c.client_order_id
            try:
                if isinstance(result, NotFound):
                    await self.reconciler.resolve(cid)  # already closed at the venue: learn how (fills?)
                elif isinstance(result, VenueError) and ambiguous(result):
                    if await self.still_working(cid):
                        again.append(c)
                else:
                    async with ledger.lock:
                        slot = ledger.slot_for(cid)
                        if slot is None:
                            continue
                        if isinstance(result, VenueOrderState):
                            await ledger.apply_state(slot, cid, result)
                        elif slot.state is SlotState.CANCEL_REQUESTED:
                            await ledger.transition(slot, lambda s: s.cancel_failed(), "placed")
            except StoreWriteFailed as err:
                self.stats.anomalies += 1
                log.error("could not record a cancel outcome", cid=cid, error=str(err))
        if again and round_ + 1 < CANCEL_ROUNDS:
            await self.run(again, resend=True, round_=round_ + 1)

    async def still_working(self, cid: str) -> bool:
        """After a cancel timed out: look the order up; apply what the venue says; is it still open?"""
        async with self.ledger.lock:
            slot = self.ledger.slot_for(cid)
            order_id = slot.order.order_id if slot is not None and slot.order is not None else ""
        if slot is None:
            return False
        try:
            found = await self.executor.lookup(self.symbol, cid, order_id)
        except VenueError:
            return True  # unknown: sending the cancel again is harmless
        if found is None:
            await self.reconciler.resolve(cid)
            return False
        async with self.ledger.lock:
            slot = self.ledger.slot_for(cid)
            if slot is not None:
                await self.ledger.apply_state(slot, cid, found)
        return found.status in OPEN_STATUSES

    async def cancel_everything(
        self, reason: str, *, sleep: Callable[[float], Awaitable[object]] | None = None
    ) -> int:
        """Cancel every order of ours; returns how many slot cancels were sent first.

        A placement in flight (PENDING) or of unknown outcome (UNRESOLVED) is looked up first, so one
        that did land is cancelled too; then late orders no slot holds.  With ``sleep`` (shutdown), a
        placement that may still land is waited for (at most its landing window) and cancelled if it
        did: shutdown never leaves a late landing working."""
        ledger = self.ledger
        async with ledger.lock:
            unsettled = ledger.order_ids((SlotState.PENDING, SlotState.UNRESOLVED))
        for cid in unsettled:
            await self.reconciler.resolve(cid)
        async with ledger.lock:
            live = (SlotState.LOCKED, SlotState.CANCEL_REQUESTED, SlotState.UNRESOLVED)
            targets = [
                Cancel(lvl, s.order.client_order_id, reason)
                for lvl, s in sorted(ledger.slots.items())
                if s.order is not None and s.state in live
            ]
        await self.run(targets, resend=True)
        if sleep is not None:
            await self.reconciler.await_landings(sleep)
            async with ledger.lock:
                landed = [
                    Cancel(lvl, s.order.client_order_id, reason)
                    for lvl, s in sorted(ledger.slots.items())
                    if s.order is not None and s.state is SlotState.LOCKED
                ]
            if landed:
                await self.run(landed, resend=True)
        await self.reconciler.late.cancel_unbound()
        return len(targets)
