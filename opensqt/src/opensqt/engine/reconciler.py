"""The reconciler: brings the ledger into agreement with the venue (reference §3.4, with the §12.4 fixes).

* :meth:`Reconciler.resolve` settles ONE order whose outcome is unknown by looking it up by the best id
  known (venue order id when stored, else client order id): found -> its state and fills are adopted;
  not found -> NOT proof while the request may still land: the slot stays UNRESOLVED until
  ``landing_window`` seconds have passed since its last send (later passes look again), and only then is
  it ``absent`` (slot FREE, the next placement there reuses the same client order id).  Nothing is ever
  re-sent or freed blindly.
* Slots stuck beyond ``stuck_after``: a PENDING one (its placement call never returned) is resolved like
  an UNRESOLVED one; a CANCEL_REQUESTED one whose order is still open gets its cancel re-sent
  (:attr:`Reconciler.cancel_due`, sent by the coordinator), so a risk cancel cannot silently not happen.
* A slot UNRESOLVED inside its window sets :attr:`Reconciler.next_expiry`; :meth:`Reconciler.wake_at_expiry`
  arms a timer that requests a pass (:attr:`Reconciler.requested`, the supervisor's wake-up) when the
  earliest window expires, not a full ``reconcile_interval`` later.  At shutdown
  :meth:`Reconciler.await_landings` waits (at most the window) for each to land or expire.
* Orders of ours that no slot expects: issued by this store -> :class:`~opensqt.engine.late_orders.LateOrders`
  (bound to their slot, or cancelled, fills recorded); an earlier store's -> adopted by price (below).
* :meth:`Reconciler.reconcile` is one full pass: our live slots vs the venue's open orders (``vanished``
  orders are looked up, ``state`` differences adopted), unknown live orders with our id prefix ADOPTED
  into the slot they belong to (``adopted``) or reported (``orphan``), and on derivatives the slots'
  position vs the venue's (``position``): two divergent passes in a row open the :class:`Breaker`
  (at start-up one check does: :meth:`Reconciler.check_position_at_start`, called by the recovery).
  PENDING slots (a placement in flight in this process) are skipped until stuck.  Orders without our
  prefix, or whose echoed strategy tag is another engine's, are never touched.

A divergence first looks up the orders no slot holds (``LateOrders.recover_fills``: fills the engine
missed) and compares again; what fills cannot explain keeps the breaker open with a reason naming
``opensqt resync`` (engine/resync.py).  The reconciler never cancels a slot's order: the coordinator
cancels the opening orders when the breaker opens (it reads :attr:`Reconciler.breaker`) and re-sends
:attr:`Reconciler.cancel_due`.  It takes the ledger lock only around ledger changes, never across
venue I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from cqc.venues.v1 import order_pb2
from cqvx.client import SupportsPositions, VenueClient
from cqvx.errors import VenueError
from cqvx.num import dec, dec_or_none, dec_str, round_price
from cqvx.types import OPEN_STATUSES, OrderFilter
from opensqt.engine.context import Breaker, EngineStats, GridContext
from opensqt.engine.executor import OrderExecutor, VenueOrderState
from opensqt.engine.late_orders import LateOrders
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.venue_queries import venue_inventory
from opensqt.model.client_ids import is_our_client_order_id
from opensqt.model.slots import OrderIntent, Slot, SlotState
from opensqt.observability.metrics import EngineMetrics
from opensqt.strategy.grid import Cancel, level_price, nearest_level

__all__ = ["MISMATCH_KINDS", "ReconcileStatus", "Reconciler"]

log = structlog.get_logger("opensqt.engine")

MISMATCH_KINDS = ("adopted", "orphan", "vanished", "state", "position", "late", "stuck")


@dataclass
class ReconcileStatus:
    """The reconciler's last pass, for /status (reference §3.4, T's statuses)."""

    status: str = "never_run"  # never_run | running | completed | failed
    runs: int = 0
    last_started: float | None = None
    last_duration_ms: float | None = None
    last_error: str = ""
    last: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MISMATCH_KINDS, 0))
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MISMATCH_KINDS, 0))
    local_position: str | None = None
    venue_position: str | None = None
    divergent_passes: int = 0
    awaiting_landing: int = 0  # UNRESOLVED slots not found yet, inside their landing window (last pass)
    late_adopted: int = 0  # late orders bound to their slot (total)
    late_cancelled: int = 0  # late orders cancelled because their slot moved on (total)


class Reconciler:
    def __init__(
        self,
        ctx: GridContext,
        *,
        client: VenueClient,
        executor: OrderExecutor,
        ledger: SlotLedger,
        stats: EngineStats,
        metrics: EngineMetrics,
        position_divergence: Decimal,
        clock: Callable[[], float],
        wall: Callable[[], float],
        landing_window: float = 60.0,
        stuck_after: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.symbol = ctx.symbol
        self.client = client
        self.executor = executor
        self.ledger = ledger
        self.stats = stats
        self.metrics = metrics
        self.position_divergence = position_divergence
        self._clock = clock
        self._wall = wall
        self.status = ReconcileStatus()
        self.breaker = Breaker()
        self.landing_window = landing_window
        self.stuck_after = landing_window if stuck_after is None else stuck_after
        self.late = LateOrders(ctx, executor=executor, ledger=ledger)
        self.cancel_due: list[Cancel] = []  # cancels to re-send (stuck CANCEL_REQUESTED), for the coordinator
        self.awaiting_landing = 0  # UNRESOLVED slots not found yet, inside their landing window
        # The earliest landing-window expiry (clock) of those: the coordinator runs a pass then.
        self.next_expiry: float | None = None
        self.requested = asyncio.Event()  # the reconcile loop's wake-up: a pass now, not at the interval
        self._expiry_timer: asyncio.TimerHandle | None = None

    def request(self) -> None:
        """Run a pass now instead of at the next interval (a stream gap, an unexpected order)."""
        self.requested.set()

    def wake_at_expiry(self) -> None:
        """Request a pass when the earliest landing window of an UNRESOLVED slot expires, so it is
        proven absent and its level re-placed promptly."""
        expiry = self.next_expiry
        if expiry is None:
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        delay = max(expiry - self._clock(), 0.0) + 0.05  # just past the expiry
        self._expiry_timer = asyncio.get_running_loop().call_later(delay, self.request)

    def stop_timer(self) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None

    async def resolve(self, cid: str) -> None:
        """Settle one order whose outcome we do not know, by looking it up (best id known)."""
        ledger = self.ledger
        async with ledger.lock:
            slot = ledger.slot_for(cid)
            if slot is None or slot.order is None:
                return
            if slot.state is SlotState.PENDING:
                # A restart found the intent, or the placement call is stuck: whether it was sent is
                # unknown.  Committed before anything else changes.
                await ledger.transition(slot, lambda s: s.not_seen(), "unresolved")
            order_id = slot.order.order_id if slot.order is not None else ""
        try:
            found = await self.executor.lookup(self.symbol, cid, order_id)
        except VenueError as err:
            log.warning("lookup failed; will retry", cid=cid, error=str(err))
            return
        async with ledger.lock:
            slot = ledger.slot_for(cid)
            if slot is None:
                return
            if found is not None:
                await ledger.apply_state(slot, cid, found)
                return
            if slot.state is SlotState.UNRESOLVED:
                since = ledger.sent_at.setdefault(cid, self._clock())
                if self._clock() - since < self.landing_window:
                    # Not found is no proof yet: the request may still land.  Look again next pass.
                    self.awaiting_landing += 1
                    expiry = since + self.landing_window
                    self.next_expiry = expiry if self.next_expiry is None else min(self.next_expiry, expiry)
                    log.info("unresolved order not found yet; waiting for the landing window", cid=cid)
                    return
                await ledger.transition(slot, lambda s: s.absent(), "absent")  # it never happened
                ledger.sent_at.pop(cid, None)
                return
            # The venue acknowledged it once and forgot it (purged history): nothing more to learn.
            self.stats.anomalies += 1
            log.error("acknowledged order not found at the venue", cid=cid, state=slot.state.value)
            await ledger.transition(slot, lambda s: s.close(), "closed")

    async def await_landings(self, sleep: Callable[[float], Awaitable[object]], *, poll: float = 1.0) -> None:
        """Shutdown: look the UNRESOLVED placements up until each shows at the venue or its landing
        window has passed (bounded by the window), so a late landing can still be cancelled."""
        for _ in range(int(self.landing_window / poll) + 3):  # a bound even if the clock stood still
            async with self.ledger.lock:
                waiting = self.ledger.order_ids((SlotState.UNRESOLVED,))
            if not waiting:
                return
            self.next_expiry = None
            for cid in waiting:
                await self.resolve(cid)
            async with self.ledger.lock:
                if not self.ledger.order_ids((SlotState.UNRESOLVED,)):
                    return
            expiry = self.next_expiry
            await sleep(poll if expiry is None else min(poll, max(expiry - self._clock(), 0.0)))

    def _stuck(self, cid: str, state: SlotState) -> bool:
        """A PENDING placement or CANCEL_REQUESTED cancel older than ``stuck_after`` (monotonic)."""
        sent = self.ledger.sent_at if state is SlotState.PENDING else self.ledger.cancel_sent_at
        since = sent.setdefault(cid, self._clock())
        return self._clock() - since >= self.stuck_after

    async def reconcile(self) -> dict[str, int]:
        """One reconciler pass; returns the mismatches found per kind (see the module docstring)."""
        rec, ledger = self.status, self.ledger
        rec.status = "running"
        rec.runs += 1
        rec.last_started = self._wall()
        t0 = self._clock()
        found = dict.fromkeys(MISMATCH_KINDS, 0)
        try:
            opened = await self.client.get_orders(OrderFilter(symbol=self.symbol))
            by_cid = {o.client_order_id: o for o in opened if o.client_order_id}
            self.cancel_due = []
            self.awaiting_landing = 0
            self.next_expiry = None
            async with ledger.lock:
                # A PENDING placement is in flight in this process: a lookup racing it could free a slot
                # whose order then lands untracked.  Only a PENDING one stuck beyond the bound is resolved.
                bound = {
                    s.order.client_order_id: s.state
                    for s in ledger.slots.values()
                    if s.order is not None
                    and (s.state is not SlotState.PENDING or self._stuck(s.order.client_order_id, s.state))
                }
            for cid, order in by_cid.items():
                if cid in bound or not is_our_client_order_id(cid):
                    continue
                if order.strategy_id and order.strategy_id != self.ctx.strategy_tag:
                    continue  # another engine's order (the venue echoes the strategy tag)
                if cid in ledger.issued:
                    # Ours and open, whatever its row says (even one closed as forgotten by the venue).
                    if self.late.unbound(cid) and await self.late.settle(cid, order) is not None:
                        found["late"] += 1
                    continue
                outcome = await self._adopt(order)
                if outcome is not None:
                    found[outcome] += 1
            await self.late.cancel_pending()
            for cid, state in bound.items():
                o = by_cid.get(cid)
                if state is SlotState.PENDING:
                    found["stuck"] += 1
                    await self.resolve(cid)
                elif o is not None:
                    if (
                        state is SlotState.CANCEL_REQUESTED
                        and o.status in OPEN_STATUSES
                        and self._stuck(cid, state)
                    ):
                        # The cancel was sent long ago and the order still works: send it again.
                        level = ledger.by_cid.get(cid)
                        if level is not None:
                            found["stuck"] += 1
                            self.cancel_due.append(Cancel(level, cid, "resend"))
                    async with ledger.lock:
                        slot = ledger.slot_for(cid)
                        if slot is None or slot.order is None:
                            continue
                        before = (slot.state, slot.order.filled)
                        await ledger.apply_state(slot, cid, VenueOrderState.from_order(o))
                        after = (slot.state, slot.order.filled if slot.order is not None else None)
                        if after != before and before[0] is not SlotState.UNRESOLVED:
                            found["state"] += 1
                else:
                    if state in (SlotState.LOCKED, SlotState.CANCEL_REQUESTED):
                        found["vanished"] += 1
                    await self.resolve(cid)
            if await self._check_position():
                found["position"] += 1
            rec.awaiting_landing = self.awaiting_landing
            rec.late_adopted, rec.late_cancelled = self.late.adopted, self.late.cancelled
        except VenueError as err:
            rec.status = "failed"
            rec.last_error = f"{type(err).__name__}: {err.message}"[:200]
            self.metrics.reconcile_runs.labels(symbol=self.symbol, status="failed").inc()
            raise
        rec.status = "completed"
        rec.last_error = ""
        rec.last = found
        rec.last_duration_ms = round((self._clock() - t0) * 1000, 3)
        self.metrics.reconcile_runs.labels(symbol=self.symbol, status="completed").inc()
        for kind, n in found.items():
            rec.totals[kind] += n
            if n:
                self.metrics.reconcile_mismatches.labels(symbol=self.symbol, kind=kind).inc(n)
        if any(found.values()):
            log.warning("reconciler mismatches", symbol=self.symbol, **found)
        return found

    def adoptable_level(self, order: order_pb2.Order) -> int | None:
        """The slot a live order of ours belongs to, judged by its price and side (None: no free fit)."""
        anchor, rules, params = self.ctx.anchor, self.ctx.rules, self.ctx.params
        if anchor is None or rules is None:
            return None
        price = dec_or_none(order.price, "price")
        qty = dec_or_none(order.quantity, "quantity")
        if not price or not qty:
            return None
        step, buy = params.interval, order.side == order_pb2.ORDER_SIDE_BUY
        k = nearest_level(price, anchor, step)
        if round_price(level_price(anchor, k, step), rules.tick_size, is_buy=buy) != price:
            return None  # not on our grid
        # (level, required sign of the slot's position): opening orders sit on their own level, closing
        # orders one interval beyond the slot whose position they close.
        options = [(k, 0), (k + 1, -1)] if buy else [(k - 1, 1), (k, 0)]
        for level, sign in options:
            slot = self.ledger.slots.get(level, Slot(level))
            if slot.state is not SlotState.FREE or slot.order is not None:
                continue
            if sign == 0 and slot.position == 0 and (buy or params.neutral):
                return level
            if sign != 0 and slot.position * sign >= qty:
                return level
        return None

    async def _adopt(self, order: order_pb2.Order) -> str | None:
        """Adopt one unknown live order of ours; returns the mismatch kind, or None (nothing to do)."""
        cid = order.client_order_id
        try:
            fresh = await self.executor.lookup(self.symbol, cid)
        except VenueError as err:
            log.warning("lookup of an unknown order failed", cid=cid, error=str(err))
            return None
        if fresh is None or fresh.status not in OPEN_STATUSES:
            return None  # the listing was stale: it closed meanwhile
        ledger = self.ledger
        async with ledger.lock:
            if ledger.slot_for(cid) is not None:
                return None  # bound meanwhile (a report arrived)
            level = self.adoptable_level(order)
            if level is None:
                log.error("live order of ours fits no free slot; left alone", cid=cid, price=order.price)
                return "orphan"
            slot = ledger.slots.setdefault(level, Slot(level))
            intent = OrderIntent(
                client_order_id=cid,
                side=order.side,
                price=dec(order.price),
                quantity=dec(order.quantity),
                cycle=slot.cycle + 1,
                post_only=order.post_only,
                reduce_only=order.reduce_only,
                order_id=fresh.order_id,
            )
            slot.adopt(intent)
            ledger.bind(cid, level)
            await ledger.save(slot, intent, "adopted")
            # Fills it collected while nobody tracked it are recorded now (keyed <cid>@<cumulative>).
            await ledger.apply_state(slot, cid, fresh)
        log.warning("adopted a live order of ours", cid=cid, level=level)
        return "adopted"

    async def check_position_at_start(self) -> bool:
        """Start-up, after every order was settled by lookup: one divergent check opens the breaker at
        once, before the first placement (a venue that lost its state is never traded against)."""
        return await self._check_position(trip_after=1)

    async def _check_position(self, *, trip_after: int = 2) -> bool:
        """Derivatives: does the slots' position disagree with the venue's?  Drives the breaker (open
        after ``trip_after`` divergent checks in a row)."""
        rec, br, rules = self.status, self.breaker, self.ctx.rules
        if rules is None or not rules.derivatives or not isinstance(self.client, SupportsPositions):
            return False
        local = self.ledger.position()
        venue, _ = await venue_inventory(self.client, self.symbol, rules, base_reserve=None, held=local)
        rec.local_position, rec.venue_position = dec_str(local), dec_str(venue)
        tolerance = max(rules.lot_size, self.position_divergence * abs(venue))
        diverged = abs(local - venue) > tolerance
        if diverged and await self.late.recover_fills():
            # Fills the engine missed (orders no slot held) explain some of it: compare again.
            local = self.ledger.position()
            rec.local_position = dec_str(local)
            diverged = abs(local - venue) > tolerance
        rec.divergent_passes = rec.divergent_passes + 1 if diverged else 0
        if rec.divergent_passes >= trip_after and not br.open:
            br.open, br.reason, br.opened_at = True, "position_divergence", self._wall()
            br.detail = (
                f"venue position {dec_str(venue)}, engine {dec_str(local)}: not explained by the fills of"
                " our orders; paused until they agree, or `opensqt resync` adopts the venue's position"
            )
            br.trips += 1
            log.error(
                "circuit breaker open: position divergence",
                local=str(local),
                venue=str(venue),
                detail=br.detail,
            )
        elif not diverged and br.open and br.reason == "position_divergence":
            br.open, br.reason, br.detail = False, "", ""
            log.info("circuit breaker closed: positions agree again")
        return diverged
