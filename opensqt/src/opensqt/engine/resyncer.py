"""Resync: an operator adopts the venue's truth when the engine cannot explain a divergence
(docs/engine.md "Divergence and resync").

The reconciler first tries to explain a divergence from the fills of our own orders (late orders no slot
held); what it cannot explain (the venue lost its state, someone traded the account) keeps placement
paused with a clear reason.  :meth:`Resyncer.run` is the way back, and it is an operator's decision, so
it needs a name and a reason and leaves an audit record:

1. placement is paused (breaker ``reason="resync"``) for the duration;
2. every order of ours is cancelled: the slots' (unresolved ones looked up first) and late orders no
   slot holds; what they filled is recorded as usual;
3. the venue's position is read (derivatives: ``get_positions``; spot: the base balance above
   ``trading.base_reserve``, which must be set: without it the engine cannot tell the grid's inventory
   from the user's, and refuses);
4. in ONE transaction with the audit record (who, why, positions before and after): every slot's
   position is cleared and the venue's position is split into FILLED slots exactly as position
   recovery does (``strategy.grid.inventory_slots``);
5. the breaker closes; the next tick places the closing orders.

Refused (:class:`ResyncRefused`, nothing changed) while a slot still holds an order whose outcome is
unknown (inside its landing window): run it again after the window.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from cqvx.client import VenueClient
from cqvx.num import ZERO, dec_str, round_price, round_quantity
from opensqt.config import Config
from opensqt.engine.cancels import Canceller
from opensqt.engine.context import GridContext
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.reconciler import Reconciler
from opensqt.engine.store import AuditRecord
from opensqt.engine.venue_queries import first_price, venue_inventory
from opensqt.model.slots import Slot
from opensqt.strategy.grid import inventory_slots

__all__ = ["ResyncRefused", "ResyncResult", "Resyncer"]

log = structlog.get_logger("opensqt.engine")


class ResyncRefused(RuntimeError):
    """The resync cannot be done now; the message says why and what to do.  Nothing was changed."""


@dataclass(frozen=True, slots=True)
class ResyncResult:
    operator: str
    reason: str
    ts: float
    engine_position_before: str
    venue_position: str
    cancelled: int  # our orders cancelled first
    slots: int  # slots holding the venue's position afterwards


class Resyncer:
    def __init__(
        self,
        ctx: GridContext,
        *,
        config: Config,
        client: VenueClient,
        ledger: SlotLedger,
        reconciler: Reconciler,
        canceller: Canceller,
        wall: Callable[[], float],
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.client = client
        self.ledger = ledger
        self.reconciler = reconciler
        self.canceller = canceller
        self._wall = wall

    async def run(self, operator: str, reason: str) -> ResyncResult:
        operator, reason = operator.strip(), reason.strip()
        if not operator or not reason:
            raise ResyncRefused("resync needs an operator name and a reason (both are audited)")
        rules = self.ctx.rules
        if rules is None:
            raise ResyncRefused("the engine has not loaded the instrument yet (start it first)")
        if not rules.derivatives and self.config.trading.base_reserve is None:
            raise ResyncRefused(
                "spot: set trading.base_reserve first; without it the grid's inventory cannot be told"
                " from your own holdings"
            )
        br = self.reconciler.breaker
        was_open, was_reason, was_detail = br.open, br.reason, br.detail
        br.open, br.reason, br.detail = True, "resync", f"resync by {operator} in progress"
        try:
            result = await self._run(operator, reason)
        except BaseException:
            br.open, br.reason, br.detail = was_open, was_reason, was_detail
            raise
        br.open, br.reason, br.detail = False, "", ""
        self.reconciler.status.divergent_passes = 0
        return result

    async def _run(self, operator: str, reason: str) -> ResyncResult:
        ledger, rules = self.ledger, self.ctx.rules
        assert rules is not None
        before = ledger.position()
        cancelled = await self.canceller.cancel_everything("resync")
        qty, entry = await venue_inventory(
            self.client,
            self.ctx.symbol,
            rules,
            base_reserve=None if rules.derivatives else self.config.trading.base_reserve,
            held=ZERO,
        )
        qty = round_quantity(abs(qty), rules.lot_size) * (1 if qty >= 0 else -1)
        if qty < 0 and not self.ctx.params.neutral:
            raise ResyncRefused(
                f"the venue holds a short position ({dec_str(qty)}); a long grid cannot hold it"
            )
        price = self.ctx.last_price or await first_price(self.client, self.ctx.symbol)
        async with ledger.lock:
            busy = sorted(lvl for lvl, s in ledger.slots.items() if s.order is not None)
            if busy:
                raise ResyncRefused(
                    f"slots {busy[:10]} still hold orders whose outcome is unknown; run resync again after"
                    f" the landing window ({self.reconciler.landing_window:g} s)"
                )
            if self.ctx.anchor is None:
                await ledger.set_anchor(round_price(price, rules.tick_size, is_buy=True))
            anchor = self.ctx.anchor
            assert anchor is not None
            held = (
                inventory_slots(qty, anchor, self.ctx.params, rules, entry_price=entry or price)
                if qty != 0
                else []
            )
            target = {s.level: s for s in held}
            changed: list[Slot] = []
            for level in sorted(set(ledger.slots) | set(target)):
                old = ledger.slots.get(level)
                new = target.get(level)
                trial = old.copy() if old is not None else Slot(level)
                trial.position = new.position if new is not None else ZERO
                trial.entry_price = new.entry_price if new is not None else ZERO
                if old is None or (old.position, old.entry_price) != (trial.position, trial.entry_price):
                    changed.append(trial)
            ts = self._wall()
            detail = {
                "engine_position_before": dec_str(before),
                "venue_position": dec_str(qty),
                "cancelled": cancelled,
                "slots": {str(s.level): dec_str(s.position) for s in held},
            }
            record = AuditRecord(ts, "resync", operator[:128], reason[:512], json.dumps(detail)[:4000])
            await ledger.store.write(ledger.store.store.save_audited, self.ctx.symbol, changed, record)
            for trial in changed:
                slot = ledger.slots.setdefault(trial.level, Slot(trial.level))
                slot.assume(trial)
        log.warning(
            "resync: adopted the venue's position",
            operator=operator,
            reason=reason,
            before=dec_str(before),
            venue=dec_str(qty),
            slots=len(held),
        )
        return ResyncResult(operator, reason, ts, dec_str(before), dec_str(qty), cancelled, len(held))
