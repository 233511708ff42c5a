"""The slot ledger: the slots of one symbol, the client-order-id index, the fills already applied, and
their persistence (the outbox rule of docs/engine.md "Durability").

Rules:

* :attr:`SlotLedger.lock` is THE engine lock: every read-modify-commit of slots runs under it, and it is
  never held across venue I/O.  Methods that say "lock held" expect the caller to hold it.
* A change is committed to the store before it is applied in memory: every transition runs on a trial
  copy of the slot, the copy is committed (:meth:`AsyncStore.write`: bounded retries), and only then does
  the slot :meth:`~opensqt.model.slots.Slot.assume` it.  A write that still fails raises
  :class:`~opensqt.engine.store.StoreWriteFailed` with memory unchanged (the reconciler settles the slot
  later).  Intents are committed before the venue hears of them.
* Every client order id ever issued is in :attr:`SlotLedger.issued` (the ``orders`` table: level, side,
  cycle), so an order of ours that no slot expects (a late landing) maps back to its slot, after a
  restart too.  :attr:`SlotLedger.sent_at` is when each in-flight id was last sent (monotonic; after a
  restart, the load time: nothing of the dead process was sent later).
* A fill is keyed ``<cid>@<cumulative after it>`` on EVERY path that knows the order's cumulative
  quantity: a stream report, a lookup (reconciler, recovery after a restart, a duplicate placement's
  answer), a late order.  Only a report of a single fill without a cumulative figure is keyed by its
  venue trade id (its only identity; what tells its replay after a restart).
* The quantity applied is ``cumulative - already filled``, where "already filled" is the larger of the
  bound order's figure and :attr:`SlotLedger.recorded` (the store's fills of that client order id): a
  fill recorded while no slot held the id (a late landing, applied to its level's position then) is
  never applied again when the id is bound later, and a fill key the store already holds makes the
  ledger re-read what is recorded instead of guessing.  A replay adds nothing.

The ledger does no venue I/O: what the venue said arrives as :class:`VenueOrderState` or a report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal

import structlog

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.num import ZERO, dec_or_none, dec_str
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES
from opensqt.engine.context import EngineStats, FillEvent, GridContext
from opensqt.engine.executor import VenueOrderState
from opensqt.engine.store import AsyncStore, FillRow, OrderRow, StoreWriteFailed
from opensqt.model.slots import FillResult, IllegalTransition, OrderIntent, Slot, SlotState
from opensqt.observability.metrics import EngineMetrics
from opensqt.strategy.grid import Cancel, Place

__all__ = ["FINAL_ORDER_STATUSES", "SlotLedger", "StoreWriteFailed", "side_name"]

log = structlog.get_logger("opensqt.engine")

_POST_ONLY_CLOSE = frozenset({order_pb2.ORDER_STATUS_REJECTED, order_pb2.ORDER_STATUS_EXPIRED})


# Order-row statuses after which the venue has nothing more to tell about the order.  ``absent`` is NOT
# final: a request proven absent may still have been created late by a slow venue.
FINAL_ORDER_STATUSES = frozenset({"filled", "closed", "rejected"})


def side_name(side: int) -> str:
    return "buy" if side == order_pb2.ORDER_SIDE_BUY else "sell"


class SlotLedger:
    def __init__(
        self,
        ctx: GridContext,
        store: AsyncStore,
        stats: EngineStats,
        metrics: EngineMetrics,
        *,
        wall: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.symbol = ctx.symbol
        self.store = store
        self.stats = stats
        self.metrics = metrics
        self._wall = wall
        self._clock = clock
        self.lock = asyncio.Lock()
        self.slots: dict[int, Slot] = {}
        self.by_cid: dict[str, int] = {}
        self.issued: dict[str, OrderRow] = {}  # every client order id this store ever issued
        self.sent_at: dict[str, float] = {}  # in-flight placements: when last sent (monotonic)
        self.cancel_sent_at: dict[str, float] = {}  # CANCEL_REQUESTED: when the cancel was last sent
        # Called (no I/O, no lock) when an order of ours arrives that no slot expects: the coordinator
        # asks for a reconciler pass, which binds or cancels it.
        self.on_unexpected: Callable[[str], None] = lambda _cid: None
        self.seen_fills: set[str] = set()
        self.recorded: dict[str, Decimal] = {}  # client order id -> quantity of its recorded fills
        self.fills: list[FillEvent] = []

    # ------------------------------------------------------------------------------ loading, anchor

    async def load(self) -> None:
        """Load the id namespace, the anchor, the slots and the recorded fills of the symbol."""
        st = self.store.store
        epoch = await self.store.run(st.epoch)
        self.ctx.namespace = f"{self.ctx.strategy_id}|{self.symbol}|{epoch}"
        anchor = await self.store.run(st.get_meta, f"anchor:{self.symbol}")
        self.ctx.anchor = Decimal(anchor) if anchor else None
        self.slots = await self.store.run(st.load_slots, self.symbol)
        self.by_cid = {s.order.client_order_id: lvl for lvl, s in self.slots.items() if s.order}
        self.issued = {r.client_order_id: r for r in await self.store.run(st.load_orders, self.symbol)}
        now = self._clock()
        for s in self.slots.values():
            if s.order is not None and s.state in (SlotState.PENDING, SlotState.UNRESOLVED):
                self.sent_at[s.order.client_order_id] = now
        for f in await self.store.run(st.load_fills, self.symbol):
            self.seen_fills.add(f.fill_key)
            self.recorded[f.client_order_id] = self.recorded.get(f.client_order_id, ZERO) + f.quantity
            self.stats.realized_pnl += f.realized_pnl
            self.stats.fills += 1
            self.fills.append(FillEvent(f.ts, f.level, f.side, f.price, f.quantity, f.realized_pnl))

    async def set_anchor(self, anchor: Decimal) -> None:
        """Commit the grid anchor (once per store), then use it."""
        await self.store.write(self.store.store.set_meta, f"anchor:{self.symbol}", dec_str(anchor))
        self.ctx.anchor = anchor

    # ------------------------------------------------------------------------------ index

    def slot_for(self, cid: str) -> Slot | None:
        """The slot whose CURRENT order has this client order id (None: not ours, or finished)."""
        level = self.by_cid.get(cid)
        if level is None:
            return None
        slot = self.slots.get(level)
        if slot is None or slot.order is None or slot.order.client_order_id != cid:
            return None
        return slot

    def bind(self, cid: str, level: int) -> None:
        self.by_cid[cid] = level

    def order_ids(self, states: Sequence[SlotState] | None = None) -> list[str]:
        """Client order ids of the slots' orders (optionally only in ``states``), by level."""
        return [
            s.order.client_order_id
            for _, s in sorted(self.slots.items())
            if s.order is not None and (states is None or s.state in states)
        ]

    def position(self) -> Decimal:
        return sum((s.position for s in self.slots.values()), ZERO)

    def unrealized_pnl(self, price: Decimal | None) -> Decimal:
        if price is None:
            return ZERO
        return sum((s.position * (price - s.entry_price) for s in self.slots.values()), ZERO)

    # ------------------------------------------------------------------------------ persistence

    def order_row(
        self, level: int, order: OrderIntent, status: str, filled: Decimal | None = None
    ) -> OrderRow:
        return OrderRow(
            order.client_order_id,
            self.symbol,
            level,
            order.side,
            order.price,
            order.quantity,
            order.cycle,
            status,
            order.filled if filled is None else filled,
            order.order_id,
        )

    async def write(
        self, slots: Sequence[Slot], rows: Sequence[OrderRow], fill: FillRow | None = None
    ) -> bool:
        """ONE transaction of slots, order rows and at most one fill, retried when the database fails
        (raises :class:`StoreWriteFailed`).  False: the fill was already recorded (nothing committed)."""
        ok = await self.store.write(self.store.store.save, self.symbol, list(slots), list(rows), fill)
        if ok:
            for r in rows:
                self.issued[r.client_order_id] = r
        return ok

    async def save(self, slot: Slot, order: OrderIntent | None, status: str) -> None:
        """Commit the slot and the status of ``order`` (captured before a transition may detach it)."""
        rows = [self.order_row(slot.level, order, status)] if order is not None else []
        await self.write([slot], rows)

    async def transition(self, slot: Slot, event: Callable[[Slot], object], status: str) -> None:
        """Run ``event`` on a trial copy, commit the copy with the order's ``status``, then take it over
        (memory changes only after the commit); lock held."""
        trial = slot.copy()
        order = trial.order
        event(trial)
        await self.save(trial, order, status)
        slot.assume(trial)

    async def save_new(self, slots: Sequence[Slot]) -> None:
        """Commit slots created outside the state machine (position recovery); lock held."""
        await self.write(list(slots), [])
        for s in slots:
            self.slots[s.level] = s

    async def commit_intents(self, places: Sequence[Place]) -> list[tuple[Slot, order_pb2.Order]]:
        """FREE -> PENDING for each placement and ONE commit of all intents; lock held.  Returns what
        to send.  A failed commit raises with no slot changed (nothing is sent)."""
        trials: list[tuple[Slot, Slot, OrderIntent]] = []
        rows: list[OrderRow] = []
        for p in places:
            slot = self.slots.get(p.level) or Slot(p.level)
            trial = slot.copy()
            intent = trial.submit(
                namespace=self.ctx.namespace,
                side=p.side,
                price=p.price,
                quantity=p.quantity,
                post_only=p.post_only,
                reduce_only=p.reduce_only,
            )
            rows.append(self.order_row(p.level, intent, "intent"))
            trials.append((slot, trial, intent))
        if not trials:
            return []
        await self.write([t for _, t, _ in trials], rows)
        now = self._clock()
        out: list[tuple[Slot, order_pb2.Order]] = []
        for slot, trial, intent in trials:
            bound = self.slots.setdefault(slot.level, slot)
            bound.assume(trial)
            self.by_cid[intent.client_order_id] = bound.level
            self.sent_at[intent.client_order_id] = now
            out.append((bound, self._order_message(intent)))
        return out

    def _order_message(self, o: OrderIntent) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=o.client_order_id,
            symbol=self.symbol,
            side=o.side,  # type: ignore[arg-type]
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_GTC,
            quantity=dec_str(o.quantity),
            price=dec_str(o.price),
            post_only=o.post_only,
            reduce_only=o.reduce_only,
            strategy_id=self.ctx.strategy_tag,
        )

    async def commit_cancels(self, cancels: Sequence[Cancel], *, resend: bool = False) -> list[Cancel]:
        """LOCKED -> CANCEL_REQUESTED for each cancel and ONE commit; lock held.  Returns what to send.

        ``resend``: also return slots already in CANCEL_REQUESTED (a cancel whose answer was lost, or
        shutdown), and UNRESOLVED ones (the order may be live; a cancel by client order id is harmless
        when it never landed, the venue answers NotFound)."""
        sent: list[Cancel] = []
        marked: list[tuple[Slot, Slot]] = []
        rows: list[OrderRow] = []
        for c in cancels:
            slot = self.slot_for(c.client_order_id)
            if slot is None or slot.order is None:
                continue
            if slot.state is SlotState.LOCKED:
                trial = slot.copy()
                trial.request_cancel()
                assert trial.order is not None
                marked.append((slot, trial))
                rows.append(self.order_row(slot.level, trial.order, "cancel_requested"))
            elif not (resend and slot.state in (SlotState.CANCEL_REQUESTED, SlotState.UNRESOLVED)):
                continue
            sent.append(c)
        if marked:
            await self.write([t for _, t in marked], rows)
            for slot, trial in marked:
                slot.assume(trial)
        now = self._clock()
        for c in sent:
            self.cancel_sent_at[c.client_order_id] = now
        return sent

    # ------------------------------------------------------------------------------ venue state

    async def apply_report(self, report: execution_pb2.ExecutionReport) -> None:
        """One item of the order stream (routed by client order id only); takes the lock."""
        cid = report.client_order_id
        async with self.lock:
            slot = self.slot_for(cid)
            issued = self.issued.get(cid)
            if slot is None and issued is None:
                return  # not ours (or an earlier store's: the reconciler adopts those by price)
            state = VenueOrderState.from_report(report)
            last_qty = dec_or_none(report.last_quantity, "last_quantity")
            last_px = dec_or_none(report.last_price, "last_price")
            key: str | None = None  # keyed by cumulative (module docstring) unless only a trade id tells
            known = slot.order.filled if slot is not None and slot.order is not None else None
            if known is None and issued is not None:
                known = issued.filled
            if not report.cumulative_quantity and last_qty and known is not None:
                # A venue that reports only per-fill quantities: rebuild the cumulative figure.  A replay
                # of a trade already applied (reconnect) must add nothing, and without a cumulative figure
                # only its trade id can tell.
                key = report.trade_id or None
                known = max(known, self.recorded.get(cid, ZERO))
                replay = key is not None and key in self.seen_fills
                state = VenueOrderState(
                    state.order_id, state.status, known + (ZERO if replay else last_qty), None
                )
            fee = dec_or_none(report.fee, "fee") or ZERO
            if slot is not None:
                await self.apply_state(slot, cid, state, trade_key=key, last_price=last_px, fee=fee)
                return
            # An order of ours that no slot holds (it landed after its slot gave it up): its fills count.
            await self.record_late(cid, state, trade_key=key, last_price=last_px, fee=fee)
        if state.status in OPEN_STATUSES and issued is not None and issued.status not in FINAL_ORDER_STATUSES:
            self.on_unexpected(cid)

    async def record_late(
        self,
        cid: str,
        state: VenueOrderState,
        *,
        trade_key: str | None = None,
        last_price: Decimal | None = None,
        fee: Decimal = ZERO,
        _retry: bool = False,
    ) -> None:
        """Record the fills of an issued order that no slot holds (a late landing, or one being cancelled
        because its slot moved on) in its level's position and PnL: no fill of ours is dropped.  Lock held.
        """
        row = self.issued.get(cid)
        if row is None or self.slot_for(cid) is not None:
            return
        done = max(row.filled, self.recorded.get(cid, ZERO))
        new_row = replace(
            row,
            status="late",
            filled=max(done, state.cumulative),
            order_id=state.order_id or row.order_id,
        )
        delta = state.cumulative - done
        key = _fill_key(cid, state.cumulative, trade_key, self.seen_fills)
        slot = self.slots.get(row.level) or Slot(row.level)
        if delta <= 0 or key in self.seen_fills:
            if row.status not in FINAL_ORDER_STATUSES and new_row != row:
                await self.write([], [new_row])  # news without a fill (its venue id): remembered
            return
        price = last_price if last_price is not None and last_price > 0 else state.average_price or row.price
        trial = slot.copy()
        realized = trial.external_fill(row.side, delta, price)
        # The venue holds this id now: the level's next placement takes a new one (a reuse would be a
        # second order at a venue that only refuses ids among OPEN orders).
        trial.cycle = max(trial.cycle, row.cycle)
        fill = FillRow(key, cid, self.symbol, row.level, row.side, price, delta, fee, realized, self._wall())
        if await self.write([trial], [new_row], fill):
            self.slots.setdefault(row.level, slot).assume(trial)
            self.count_fill(fill, realized, complete=new_row.filled >= row.quantity)
            log.warning("recorded a fill of an order no slot holds", cid=cid, level=row.level, qty=str(delta))
        elif not _retry:
            # Recorded by a path this ledger did not see (or a cancelled caller's commit): learn what is
            # recorded and what the level's slot holds, then settle the rest.
            await self._reread_fills()
            if row.level in self.slots:
                await self._reread_slot(self.slots[row.level])
            await self.record_late(
                cid, state, trade_key=trade_key, last_price=last_price, fee=fee, _retry=True
            )
        else:
            self.seen_fills.add(key)

    async def apply_state(
        self,
        slot: Slot,
        cid: str,
        state: VenueOrderState,
        *,
        trade_key: str | None = None,
        last_price: Decimal | None = None,
        fee: Decimal = ZERO,
        _retry: bool = False,
    ) -> None:
        """Adopt the venue's view of the slot's order: ack, fills up to ``cumulative``, terminal state.

        All of it is computed on a trial copy and committed in ONE transaction before the slot takes it
        over.  Lock held; raises :class:`StoreWriteFailed` with the slot unchanged."""
        if slot.order is None or slot.order.client_order_id != cid:
            return
        trial = slot.copy()
        order = trial.order
        assert order is not None
        fill: FillRow | None = None
        result: FillResult | None = None
        try:
            is_open = state.status in OPEN_STATUSES or state.status == order_pb2.ORDER_STATUS_UNSPECIFIED
            binding = trial.state in (SlotState.PENDING, SlotState.UNRESOLVED)
            if (
                binding
                and state.quantity
                and state.quantity != order.quantity
                and state.quantity >= order.filled
            ):
                # The order under this id is not the one we would place now (a late landing bound on
                # reuse of its id): the venue's quantity wins, or its fills would overrun ours.
                log.warning(
                    "bound order's quantity differs",
                    cid=cid,
                    ours=str(order.quantity),
                    venue=str(state.quantity),
                )
                order.quantity = state.quantity
            if is_open and binding:
                trial.ack(state.order_id)
            if state.order_id and not order.order_id:
                order.order_id = state.order_id
            credited = self._credit_recorded(trial, order)
            delta = state.cumulative - order.filled
            if delta > 0:
                price = _fill_price(
                    fill_cost=order.fill_cost,
                    limit=order.price,
                    state=state,
                    delta=delta,
                    last_price=last_price,
                )
                key = _fill_key(cid, state.cumulative, trade_key, self.seen_fills)
                if key not in self.seen_fills:
                    result = trial.fill(delta, price)
                    fill = FillRow(
                        key,
                        cid,
                        self.symbol,
                        slot.level,
                        order.side,
                        price,
                        delta,
                        fee,
                        result.realized_pnl,
                        self._wall(),
                    )
            status = "placed"
            if result is not None:
                status = "filled" if result.complete else "partial"
            elif credited and trial.order is order and order.filled >= order.quantity:
                trial.close()  # complete by fills recorded before it was bound: nothing more to come
                status = "filled"
            if trial.order is order and state.status in TERMINAL_STATUSES:
                po = order.post_only and order.filled == 0 and state.status in _POST_ONLY_CLOSE
                if state.status == order_pb2.ORDER_STATUS_FILLED:
                    # FILLED with less than our quantity: the venue's word wins, but it is an anomaly.
                    self.stats.anomalies += 1
                    log.error("venue says FILLED below quantity", cid=cid, cumulative=str(state.cumulative))
                trial.close(post_only_reject=po)
                status = "closed"
        except IllegalTransition as exc:
            self.stats.anomalies += 1
            log.error("illegal slot transition", cid=cid, error=str(exc))
            return
        if not await self.write([trial], [self.order_row(slot.level, order, status)], fill):
            # The fill key is recorded already (by a path this ledger did not see, or by a commit of this
            # ledger whose caller was cancelled before it took the slot over): apply none of this
            # computation; learn what the store holds for the order AND the slot, and settle again from
            # there.  Crediting the recorded fills to a slot memory still without them would drop their
            # position, and the next write would put that in the store (the fleet kill -9 test's slots
            # one order off the venue).
            assert fill is not None
            if _retry:
                self.seen_fills.update((fill.fill_key, f"{cid}@{dec_str(state.cumulative)}"))
            else:
                await self._reread_fills()
                await self._reread_slot(slot)
            await self.apply_state(
                slot, cid, state, trade_key=trade_key, last_price=last_price, fee=fee, _retry=True
            )
            return
        slot.assume(trial)
        if slot.state in (SlotState.LOCKED, SlotState.FREE):
            self.sent_at.pop(cid, None)
        if slot.state is not SlotState.CANCEL_REQUESTED:
            self.cancel_sent_at.pop(cid, None)
        if fill is not None and result is not None:
            self.count_fill(fill, result.realized_pnl, complete=result.complete)

    def _credit_recorded(self, trial: Slot, order: OrderIntent) -> bool:
        """Fills of this order's id the store holds beyond what the bound order counts (recorded while
        no slot held the id: in its level's position already) become the order's, position unchanged,
        so only what the venue filled beyond them is applied.  Returns whether any was credited."""
        recorded = min(self.recorded.get(order.client_order_id, ZERO), order.quantity)
        credit = recorded - order.filled
        if credit <= 0:
            return False
        log.warning(
            "bound order takes over fills recorded for its id", cid=order.client_order_id, qty=str(credit)
        )
        order.filled = recorded
        order.fill_cost += credit * order.price
        trial.post_only_rejects = 0
        return True

    async def _reread_slot(self, slot: Slot) -> None:
        """Take the slot's stored row over.  Memory only ever lags the store (every change commits
        first): a commit completes in the database thread even when its caller is cancelled (a stop
        cancelling a loop mid-write) before the slot took it over."""
        stored = (await self.store.run(self.store.store.load_slots, self.symbol)).get(slot.level)
        if stored is not None and stored != slot:
            log.warning("slot behind the store; taking the stored row over", level=slot.level)
            slot.assume(stored)

    async def _reread_fills(self) -> None:
        """The store's fills of the symbol (after a fill key collided): seen keys, recorded quantities."""
        recorded: dict[str, Decimal] = {}
        for f in await self.store.run(self.store.store.load_fills, self.symbol):
            self.seen_fills.add(f.fill_key)
            recorded[f.client_order_id] = recorded.get(f.client_order_id, ZERO) + f.quantity
        self.recorded.update(recorded)

    def count_fill(self, row: FillRow, realized: Decimal, *, complete: bool) -> None:
        """A committed fill, now applied in memory: seen, stats, the view's list, metrics."""
        self.seen_fills.add(row.fill_key)
        self.recorded[row.client_order_id] = self.recorded.get(row.client_order_id, ZERO) + row.quantity
        self.stats.fills += 1
        self.stats.realized_pnl += realized
        self.stats.fees += row.fee
        self.fills.append(FillEvent(row.ts, row.level, row.side, row.price, row.quantity, realized))
        s = side_name(row.side)
        self.metrics.volume.labels(symbol=self.symbol, side=s).inc(float(row.quantity))
        if complete:
            self.metrics.orders_filled.labels(symbol=self.symbol, side=s).inc()


def _fill_key(cid: str, cumulative: Decimal, trade_key: str | None, seen: set[str]) -> str:
    """``<cid>@<cumulative>``; a per-fill report's trade id (no cumulative figure) when not seen yet."""
    if trade_key and trade_key not in seen:
        return trade_key
    return f"{cid}@{dec_str(cumulative)}"


def _fill_price(
    *,
    fill_cost: Decimal,
    limit: Decimal,
    state: VenueOrderState,
    delta: Decimal,
    last_price: Decimal | None,
) -> Decimal:
    """The price of the ``delta`` just filled: the report's last price, else the incremental average."""
    if last_price is not None and last_price > 0:
        return last_price
    if state.average_price:
        incremental = (state.average_price * state.cumulative - fill_cost) / delta
        if incremental > 0:
            return incremental
    return limit
