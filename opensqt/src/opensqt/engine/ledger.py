"""The slot ledger: the slots of one symbol, the client-order-id index, the fills already applied, and
their persistence (the outbox rule of docs/engine.md "Durability").

Rules:

* :attr:`SlotLedger.lock` is THE engine lock: every read-modify-commit of slots runs under it, and it is
  never held across venue I/O.  Methods that say "lock held" expect the caller to hold it.
* A change is committed to the store before it is applied in memory (fills: a trial copy of the slot is
  saved first); intents are committed before the venue hears of them.
* A fill is keyed by the venue trade id, else ``<cid>@<cumulative>``; the quantity applied is always
  ``cumulative - already filled``, so a replay (reconnect, lookup after a report) adds nothing.

The ledger does no venue I/O: what the venue said arrives as :class:`VenueOrderState` or a report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from decimal import Decimal

import structlog

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.num import ZERO, dec_or_none, dec_str
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES
from opensqt.engine.context import EngineStats, FillEvent, GridContext
from opensqt.engine.executor import VenueOrderState
from opensqt.engine.store import AsyncStore, FillRow, OrderRow
from opensqt.model.slots import IllegalTransition, OrderIntent, Slot, SlotState
from opensqt.observability.metrics import EngineMetrics
from opensqt.strategy.grid import Cancel, Place

__all__ = ["SlotLedger", "side_name"]

log = structlog.get_logger("opensqt.engine")

_POST_ONLY_CLOSE = frozenset({order_pb2.ORDER_STATUS_REJECTED, order_pb2.ORDER_STATUS_EXPIRED})


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
    ) -> None:
        self.ctx = ctx
        self.symbol = ctx.symbol
        self.store = store
        self.stats = stats
        self.metrics = metrics
        self._wall = wall
        self.lock = asyncio.Lock()
        self.slots: dict[int, Slot] = {}
        self.by_cid: dict[str, int] = {}
        self.seen_fills: set[str] = set()
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
        for f in await self.store.run(st.load_fills, self.symbol):
            self.seen_fills.add(f.fill_key)
            self.stats.realized_pnl += f.realized_pnl
            self.stats.fills += 1
            self.fills.append(FillEvent(f.ts, f.level, f.side, f.price, f.quantity, f.realized_pnl))

    async def set_anchor(self, anchor: Decimal) -> None:
        """Commit the grid anchor (once per store), then use it."""
        await self.store.run(self.store.store.set_meta, f"anchor:{self.symbol}", dec_str(anchor))
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

    async def save(self, slot: Slot, order: OrderIntent | None, status: str) -> None:
        """Commit the slot and the status of ``order`` (captured before a transition may detach it)."""
        rows = [self.order_row(slot.level, order, status)] if order is not None else []
        await self.store.run(self.store.store.save, self.symbol, [slot], rows)

    async def save_new(self, slots: Sequence[Slot]) -> None:
        """Commit slots created outside the state machine (position recovery); lock held."""
        for s in slots:
            self.slots[s.level] = s
        await self.store.run(self.store.store.save, self.symbol, list(slots), [])

    async def commit_intents(self, places: Sequence[Place]) -> list[tuple[Slot, order_pb2.Order]]:
        """FREE -> PENDING for each placement and ONE commit of all intents; lock held.  Returns what
        to send."""
        out: list[tuple[Slot, order_pb2.Order]] = []
        rows: list[OrderRow] = []
        for p in places:
            slot = self.slots.setdefault(p.level, Slot(p.level))
            intent = slot.submit(
                namespace=self.ctx.namespace,
                side=p.side,
                price=p.price,
                quantity=p.quantity,
                post_only=p.post_only,
                reduce_only=p.reduce_only,
            )
            self.by_cid[intent.client_order_id] = p.level
            rows.append(
                OrderRow(
                    intent.client_order_id,
                    self.symbol,
                    p.level,
                    p.side,
                    p.price,
                    p.quantity,
                    intent.cycle,
                    "intent",
                )
            )
            out.append((slot, self._order_message(intent)))
        if out:
            await self.store.run(self.store.store.save, self.symbol, [s for s, _ in out], rows)
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

        ``resend`` (shutdown): also return slots already in CANCEL_REQUESTED, and UNRESOLVED ones (their
        lookup failed: the order may be live; a cancel by client order id is harmless when it never
        landed, the venue answers NotFound)."""
        sent: list[Cancel] = []
        marked: list[Slot] = []
        rows: list[OrderRow] = []
        for c in cancels:
            slot = self.slot_for(c.client_order_id)
            if slot is None or slot.order is None:
                continue
            if slot.state is SlotState.LOCKED:
                slot.request_cancel()
                marked.append(slot)
                rows.append(self.order_row(slot.level, slot.order, "cancel_requested"))
            elif not (resend and slot.state in (SlotState.CANCEL_REQUESTED, SlotState.UNRESOLVED)):
                continue
            sent.append(c)
        if marked:
            await self.store.run(self.store.store.save, self.symbol, marked, rows)
        return sent

    # ------------------------------------------------------------------------------ venue state

    async def apply_report(self, report: execution_pb2.ExecutionReport) -> None:
        """One item of the order stream (routed by client order id only); takes the lock."""
        cid = report.client_order_id
        async with self.lock:
            slot = self.slot_for(cid)
            if slot is None:
                return  # not ours, or an order this engine has already finished
            state = VenueOrderState.from_report(report)
            last_qty = dec_or_none(report.last_quantity, "last_quantity")
            last_px = dec_or_none(report.last_price, "last_price")
            key = report.trade_id or None
            if not report.cumulative_quantity and last_qty and slot.order is not None:
                # A venue that reports only per-fill quantities: rebuild the cumulative figure.  A replay
                # of a trade already applied (reconnect) must add nothing, and without a cumulative figure
                # only its trade id can tell.
                replay = key is not None and key in self.seen_fills
                filled = slot.order.filled + (ZERO if replay else last_qty)
                state = VenueOrderState(state.order_id, state.status, filled, None)
            fee = dec_or_none(report.fee, "fee") or ZERO
            await self.apply_state(slot, cid, state, trade_key=key, last_price=last_px, fee=fee)

    async def apply_state(
        self,
        slot: Slot,
        cid: str,
        state: VenueOrderState,
        *,
        trade_key: str | None = None,
        last_price: Decimal | None = None,
        fee: Decimal = ZERO,
    ) -> None:
        """Adopt the venue's view of the slot's order: ack, fills up to ``cumulative``, terminal state.

        Lock held."""
        order = slot.order
        if order is None or order.client_order_id != cid:
            return
        try:
            if state.status in OPEN_STATUSES or state.status == order_pb2.ORDER_STATUS_UNSPECIFIED:
                if slot.state in (SlotState.PENDING, SlotState.UNRESOLVED):
                    slot.ack(state.order_id)
                elif state.order_id and not order.order_id:
                    order.order_id = state.order_id
            delta = state.cumulative - order.filled
            if delta > 0:
                price = _fill_price(
                    fill_cost=order.fill_cost,
                    limit=order.price,
                    state=state,
                    delta=delta,
                    last_price=last_price,
                )
                key = (
                    trade_key
                    if trade_key and trade_key not in self.seen_fills
                    else f"{cid}@{dec_str(state.cumulative)}"
                )
                await self._fill(slot, cid, qty=delta, price=price, key=key, fee=fee)
            if (
                slot.order is not None
                and slot.order.client_order_id == cid
                and state.status in TERMINAL_STATUSES
            ):
                po = slot.order.post_only and slot.order.filled == 0 and state.status in _POST_ONLY_CLOSE
                if state.status == order_pb2.ORDER_STATUS_FILLED:
                    # FILLED with less than our quantity: the venue's word wins, but it is an anomaly.
                    self.stats.anomalies += 1
                    log.error("venue says FILLED below quantity", cid=cid, cumulative=str(state.cumulative))
                closing = slot.order
                slot.close(post_only_reject=po)
                await self.save(slot, closing, "closed")
            elif slot.order is not None:
                await self.save(slot, slot.order, "placed")
        except IllegalTransition as exc:
            self.stats.anomalies += 1
            log.error("illegal slot transition", cid=cid, error=str(exc))

    async def _fill(
        self, slot: Slot, cid: str, *, qty: Decimal, price: Decimal, key: str, fee: Decimal
    ) -> None:
        if key in self.seen_fills:
            return
        order = slot.order
        assert order is not None
        side = order.side
        trial = slot.copy()
        result = trial.fill(qty, price)
        row = FillRow(
            key, cid, self.symbol, slot.level, side, price, qty, fee, result.realized_pnl, self._wall()
        )
        status = "filled" if result.complete else "partial"
        filled_total = order.filled + qty
        ok = await self.store.run(
            self.store.store.save,
            self.symbol,
            [trial],
            [self.order_row(slot.level, order, status, filled_total)],
            row,
        )
        self.seen_fills.add(key)
        if not ok:
            return
        result = slot.fill(qty, price)  # the committed change, now applied in memory
        self.stats.fills += 1
        self.stats.realized_pnl += result.realized_pnl
        self.stats.fees += fee
        self.fills.append(FillEvent(row.ts, slot.level, side, price, qty, result.realized_pnl))
        s = side_name(side)
        self.metrics.volume.labels(symbol=self.symbol, side=s).inc(float(qty))
        if result.complete:
            self.metrics.orders_filled.labels(symbol=self.symbol, side=s).inc()


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
