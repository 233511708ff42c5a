"""The grid engine: price monitor -> grid strategy -> slots -> executor, with the outbox state store.

Order of operations for every side effect (the rule that makes kill -9 safe):

1. under the engine lock: decide (pure strategy), move slots (FREE -> PENDING / LOCKED -> CANCEL_REQUESTED)
   and COMMIT the intents to the store;
2. without the lock: talk to the venue (rate limited, retried only where safe);
3. under the lock: apply the outcomes and commit.

A restart loads the slots and calls :meth:`GridEngine.recover`: every slot with an order is looked up at
the venue by its client order id; "not found" means the placement never happened (slot FREE, the same
intent will be re-decided with a NEW cycle, hence a new id), "found" adopts the venue's state including
fills (keyed ``<cid>@<cumulative>`` so a later stream report of the same quantity applies nothing).

The engine lock is never held across venue I/O (reference §12.7).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import SupportsInstruments, SupportsOrderStream, SupportsPositions, VenueClient
from cqvx.errors import InsufficientFunds, NotFound, OrderRejected, Timeout, VenueError
from cqvx.num import ZERO, dec, dec_or_none, dec_str, round_price
from cqvx.symbols import parse_symbol
from cqvx.types import OPEN_STATUSES, OrderFilter
from opensqt.config import Config
from opensqt.engine.executor import Confirmed, OrderExecutor, Rejected, Unresolved, VenueOrderState
from opensqt.engine.price_monitor import PriceMonitor
from opensqt.engine.slots import IllegalTransition, MarginLock, OrderIntent, Slot, SlotState
from opensqt.engine.store import AsyncStore, FillRow, OrderRow, StateStore
from opensqt.observability.metrics import EngineMetrics
from opensqt.risk.startup import Check, StartupCheckFailed, startup_checks
from opensqt.strategy.grid import Cancel, GridParams, InstrumentRules, Place, grid_actions

__all__ = ["FillEvent", "GridEngine"]

log = structlog.get_logger("opensqt.engine")

_POST_ONLY_CLOSE = frozenset({order_pb2.ORDER_STATUS_REJECTED, order_pb2.ORDER_STATUS_EXPIRED})


@dataclass(frozen=True, slots=True)
class FillEvent:
    ts: float
    level: int
    side: int
    price: Decimal
    quantity: Decimal
    realized_pnl: Decimal


@dataclass
class _Stats:
    ticks: int = 0
    placed: int = 0
    rejected: int = 0
    unresolved: int = 0
    cancels: int = 0
    fills: int = 0
    anomalies: int = 0
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    tick_to_order_ms: list[float] = field(default_factory=list)


class GridEngine:
    def __init__(
        self,
        config: Config,
        client: VenueClient,
        store: StateStore,
        *,
        metrics: EngineMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.symbol = config.trading.symbol
        self.client = client
        self.store = AsyncStore(store)
        self.metrics = metrics or EngineMetrics()
        self.params = GridParams.from_config(config.trading)
        e = config.engine
        self.executor = OrderExecutor(
            client,
            rate=float(e.order_rate),
            burst=e.order_burst,
            max_retries=e.max_retries,
            retry_delay=float(e.retry_delay),
            sleep=sleep,
        )
        self.monitor = PriceMonitor(
            client, self.symbol, min_interval=float(e.price_send_interval), clock=clock
        )
        self.margin_lock = MarginLock(float(config.trading.margin_lock_duration_seconds), clock)
        self._clock = clock
        self._wall = wall
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.rules: InstrumentRules | None = None
        self.anchor: Decimal | None = None
        self.namespace = ""
        self.slots: dict[int, Slot] = {}
        self._by_cid: dict[str, int] = {}
        self._seen_fills: set[str] = set()
        self.fills: list[FillEvent] = []
        self.price_history: list[tuple[float, Decimal]] = []
        self.stats = _Stats()
        self.checks: list[Check] = []
        self.started = False
        self.last_price: Decimal | None = None
        self._labels = {"symbol": self.symbol}

    # ============================================================================ lifecycle

    async def start(self, *, run_tasks: bool = True, check: bool = True) -> None:
        """Load state, resolve every in-flight intent at the venue, run the safety checks, start loops."""
        self.rules = await self._load_rules()
        st = self.store.store
        epoch = await self.store.run(st.epoch)
        self.namespace = f"{self.config.trading.strategy_id}|{self.symbol}|{epoch}"
        anchor = await self.store.run(st.get_meta, f"anchor:{self.symbol}")
        self.anchor = Decimal(anchor) if anchor else None
        self.slots = await self.store.run(st.load_slots, self.symbol)
        self._by_cid = {s.order.client_order_id: lvl for lvl, s in self.slots.items() if s.order}
        for f in await self.store.run(st.load_fills, self.symbol):
            self._seen_fills.add(f.fill_key)
            self.stats.realized_pnl += f.realized_pnl
            self.stats.fills += 1
            self.fills.append(FillEvent(f.ts, f.level, f.side, f.price, f.quantity, f.realized_pnl))
        await self.recover()
        if check:
            await self.run_startup_checks()
        self.started = True
        if run_tasks:
            self._spawn(self.monitor.run(), "price-monitor")
            self._spawn(self._tick_loop(), "ticks")
            if isinstance(self.client, SupportsOrderStream):
                self._spawn(self._report_loop(), "order-stream")
            self._spawn(self._reconcile_loop(), "reconcile")

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"opensqt-{name}"))

    async def stop(self, *, cancel_orders: bool | None = None) -> None:
        """Stop the loops; cancel our live orders when ``cancel_on_exit`` (default from the config)."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        cancel = self.config.system.cancel_on_exit if cancel_orders is None else cancel_orders
        if cancel:
            async with self._lock:
                targets = [
                    Cancel(lvl, s.order.client_order_id, "shutdown")
                    for lvl, s in sorted(self.slots.items())
                    if s.state is SlotState.LOCKED and s.order is not None
                ]
            await self._run_cancels(targets)
        await self.store.aclose()

    async def _load_rules(self) -> InstrumentRules:
        if isinstance(self.client, SupportsInstruments):
            for inst in await self.client.get_instruments([self.symbol]):
                if inst.symbol == self.symbol:
                    return InstrumentRules.from_instrument(inst)
        raise StartupCheckFailed([Check("instrument", False, f"venue has no instrument {self.symbol}")])

    async def run_startup_checks(self) -> list[Check]:
        assert self.rules is not None
        price = self.monitor.latest
        if price is None:
            price = await self._first_price()
        quote = parse_symbol(self.symbol).quote
        available = ZERO
        for bal in await self.client.get_balances():
            if bal.asset == quote:
                available += dec_or_none(bal.available, "available") or ZERO
        has_position = any(s.position != 0 for s in self.slots.values())
        if not has_position and isinstance(self.client, SupportsPositions):
            for pos in await self.client.get_positions([self.symbol]):
                if dec_or_none(pos.quantity, "quantity"):
                    has_position = True
        fee = self.config.venue.fee_rate
        if fee is None:
            fee = self.rules.maker_fee
        self.checks = startup_checks(
            price=price,
            available_quote=available,
            has_position=has_position,
            params=self.params,
            rules=self.rules,
            fee_rate=fee,
            position_safety_check=self.config.trading.position_safety_check,
        )
        failed = [c for c in self.checks if not c.ok]
        if failed:
            raise StartupCheckFailed(failed)
        return self.checks

    async def _first_price(self) -> Decimal:
        from cqvx.client import SupportsPrices

        if isinstance(self.client, SupportsPrices):
            from opensqt.engine.price_monitor import price_of

            p = price_of(await self.client.get_latest_price(self.symbol))
            if p is not None:
                return p
        book = await self.client.get_order_book(self.symbol, 1)
        if book.bids and book.asks:
            return (dec(book.bids[0].price) + dec(book.asks[0].price)) / 2
        raise StartupCheckFailed([Check("price", False, "no price available from the venue")])

    # ============================================================================ loops

    async def _tick_loop(self) -> None:
        while True:
            price, received = await self.monitor.next()
            try:
                await self.on_price(price, received)
            except Exception:  # a bad tick must not kill the engine; it is logged and counted
                self.stats.anomalies += 1
                log.exception("tick failed", symbol=self.symbol)

    async def _report_loop(self) -> None:
        assert isinstance(self.client, SupportsOrderStream)
        delay = 0.5
        while True:
            stream = self.client.subscribe_executions([self.symbol])
            try:
                async for report in stream:
                    if report.symbol and report.symbol != self.symbol:
                        continue
                    await self.on_report(report)
                    delay = 0.5
            except VenueError as err:
                log.warning("order stream error", error=str(err))
            finally:
                await stream.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            await self.reconcile()  # whatever the stream missed while it was down

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(float(self.config.engine.reconcile_interval))
            try:
                await self.reconcile()
            except VenueError as err:
                log.warning("reconcile failed", error=str(err))

    # ============================================================================ ticks

    async def on_price(self, price: Decimal, received: float | None = None) -> None:
        """One (conflated) price tick: decide, commit intents, execute, apply outcomes."""
        assert self.rules is not None
        received = self._clock() if received is None else received
        self.last_price = price
        self.stats.ticks += 1
        self.metrics.price_updates.labels(**self._labels).inc()
        self.price_history.append((self._wall(), price))
        if len(self.price_history) > 100_000:
            del self.price_history[: len(self.price_history) // 2]
        async with self._lock:
            if self.anchor is None:
                self.anchor = round_price(price, self.rules.tick_size, is_buy=True)
                await self.store.run(self.store.store.set_meta, f"anchor:{self.symbol}", dec_str(self.anchor))
            actions = grid_actions(
                price, self.anchor, self.slots, self.params, self.rules, margin_locked=self.margin_lock.locked
            )
            cancels = [a for a in actions if isinstance(a, Cancel)]
            placing = await self._commit_intents([a for a in actions if isinstance(a, Place)])
        if placing:
            self.stats.tick_to_order_ms.append((self._clock() - received) * 1000)
            self.metrics.latency_tick_to_trade.labels(**self._labels).observe(self.stats.tick_to_order_ms[-1])
            await self._execute(placing)
        if cancels:
            await self._run_cancels(cancels)
        self._update_gauges()

    async def _commit_intents(self, places: Sequence[Place]) -> list[tuple[Slot, order_pb2.Order]]:
        """FREE -> PENDING for each placement and ONE commit of all intents; returns what to send."""
        out: list[tuple[Slot, order_pb2.Order]] = []
        rows: list[OrderRow] = []
        for p in places:
            slot = self.slots.setdefault(p.level, Slot(p.level))
            intent = slot.submit(
                namespace=self.namespace,
                side=p.side,
                price=p.price,
                quantity=p.quantity,
                post_only=p.post_only,
                reduce_only=p.reduce_only,
            )
            self._by_cid[intent.client_order_id] = p.level
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
            out.append((slot, self._order_message(slot)))
        if out:
            await self.store.run(self.store.store.save, self.symbol, [s for s, _ in out], rows)
        return out

    def _order_message(self, slot: Slot) -> order_pb2.Order:
        o = slot.order
        assert o is not None
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
            strategy_id=f"{self.config.trading.strategy_id}:{self.symbol}",
        )

    async def _execute(self, placing: list[tuple[Slot, order_pb2.Order]]) -> None:
        started = self._clock()
        self.metrics.order_placements.labels(**self._labels).inc(len(placing))
        retries_before = self.executor.retries
        outcomes = await self.executor.place([m for _, m in placing])
        self.metrics.latency_exchange.labels(symbol=self.symbol, op="place").observe(
            (self._clock() - started) * 1000
        )
        self.metrics.order_retries.labels(**self._labels).inc(self.executor.retries - retries_before)
        unresolved: list[str] = []
        margin_error = False
        async with self._lock:
            for (_, msg), outcome in zip(placing, outcomes, strict=True):
                cid = msg.client_order_id
                slot = self._slot_for(cid)
                if slot is None:
                    continue  # the stream already finished this order (instant fill / cancel)
                if isinstance(outcome, Confirmed):
                    self.stats.placed += 1
                    self.metrics.orders_placed.labels(symbol=self.symbol, side=_side(msg.side)).inc()
                    await self._apply_state(slot, cid, outcome.state)
                elif isinstance(outcome, Rejected):
                    self.stats.rejected += 1
                    err = outcome.error
                    self.metrics.order_failures.labels(symbol=self.symbol, kind=err.kind.value).inc()
                    if isinstance(err, InsufficientFunds):
                        margin_error = True
                    post_only_reject = isinstance(err, OrderRejected) and msg.post_only
                    if slot.state is SlotState.PENDING:
                        order = slot.order
                        slot.reject(post_only_reject=post_only_reject)
                        await self._save(slot, order, "rejected")
                    log.info("order rejected", cid=cid, kind=err.kind.value, reason=err.message[:120])
                elif isinstance(outcome, Unresolved):
                    self.stats.unresolved += 1
                    self.metrics.order_failures.labels(symbol=self.symbol, kind="unresolved").inc()
                    if slot.state is SlotState.PENDING:
                        slot.timeout()
                        await self._save(slot, slot.order, "unresolved")
                    unresolved.append(cid)
        if margin_error:
            self.margin_lock.trigger()
            log.warning("insufficient funds: margin lock", seconds=self.margin_lock.duration)
            await self._cancel_opening_orders()
        for cid in unresolved:
            await self.resolve(cid)

    async def _cancel_opening_orders(self) -> None:
        assert self.rules is not None and self.anchor is not None
        price = self.last_price or self.anchor
        async with self._lock:
            actions = grid_actions(
                price, self.anchor, self.slots, self.params, self.rules, margin_locked=True
            )
        await self._run_cancels([a for a in actions if isinstance(a, Cancel)])

    async def _run_cancels(self, cancels: Sequence[Cancel]) -> None:
        sent: list[Cancel] = []
        async with self._lock:
            for c in cancels:
                slot = self._slot_for(c.client_order_id)
                if slot is None or slot.state is not SlotState.LOCKED:
                    continue
                slot.request_cancel()
                await self._save(slot, slot.order, "cancel_requested")
                sent.append(c)
        for c in sent:
            self.stats.cancels += 1
            result = await self.executor.cancel(self.symbol, c.client_order_id)
            if isinstance(result, NotFound):
                await self.resolve(c.client_order_id)  # already closed at the venue: learn how (fills?)
                continue
            async with self._lock:
                slot = self._slot_for(c.client_order_id)
                if slot is None:
                    continue
                if isinstance(result, VenueOrderState):
                    await self._apply_state(slot, c.client_order_id, result)
                elif isinstance(result, Timeout):
                    pass  # stays CANCEL_REQUESTED; the stream or the reconciler settles it
                elif slot.state is SlotState.CANCEL_REQUESTED:
                    slot.cancel_failed()
                    await self._save(slot, slot.order, "placed")

    # ============================================================================ venue state

    def _slot_for(self, cid: str) -> Slot | None:
        level = self._by_cid.get(cid)
        if level is None:
            return None
        slot = self.slots.get(level)
        if slot is None or slot.order is None or slot.order.client_order_id != cid:
            return None
        return slot

    async def on_report(self, report: execution_pb2.ExecutionReport) -> None:
        """One item of the order stream (routing by client order id only)."""
        self.metrics.order_updates.labels(**self._labels).inc()
        cid = report.client_order_id
        async with self._lock:
            slot = self._slot_for(cid)
            if slot is None:
                return  # not ours, or an order this engine has already finished
            state = VenueOrderState.from_report(report)
            last_qty = dec_or_none(report.last_quantity, "last_quantity")
            last_px = dec_or_none(report.last_price, "last_price")
            if not report.cumulative_quantity and last_qty and slot.order is not None:
                # A venue that reports only per-fill quantities: rebuild the cumulative figure.
                state = VenueOrderState(state.order_id, state.status, slot.order.filled + last_qty, None)
            key = report.trade_id or None
            fee = dec_or_none(report.fee, "fee") or ZERO
            await self._apply_state(slot, cid, state, trade_key=key, last_price=last_px, fee=fee)

    async def _apply_state(
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

        Called with the engine lock held."""
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
                price = self._fill_price(
                    filled=order.filled,
                    fill_cost=order.fill_cost,
                    limit=order.price,
                    state=state,
                    delta=delta,
                    last_price=last_price,
                )
                key = (
                    trade_key
                    if trade_key and trade_key not in self._seen_fills
                    else f"{cid}@{dec_str(state.cumulative)}"
                )
                await self._fill(slot, cid, qty=delta, price=price, key=key, fee=fee)
            if (
                slot.order is not None
                and slot.order.client_order_id == cid
                and state.status
                in (
                    order_pb2.ORDER_STATUS_CANCELLED,
                    order_pb2.ORDER_STATUS_REJECTED,
                    order_pb2.ORDER_STATUS_EXPIRED,
                    order_pb2.ORDER_STATUS_FAILED,
                    order_pb2.ORDER_STATUS_FILLED,
                )
            ):
                po = slot.order.post_only and slot.order.filled == 0 and state.status in _POST_ONLY_CLOSE
                if state.status == order_pb2.ORDER_STATUS_FILLED:
                    # FILLED with less than our quantity: the venue's word wins, but it is an anomaly.
                    self.stats.anomalies += 1
                    log.error("venue says FILLED below quantity", cid=cid, cumulative=str(state.cumulative))
                closing = slot.order
                slot.close(post_only_reject=po)
                await self._save(slot, closing, "closed")
            elif slot.order is not None:
                await self._save(slot, slot.order, "placed")
        except IllegalTransition as exc:
            self.stats.anomalies += 1
            log.error("illegal slot transition", cid=cid, error=str(exc))

    @staticmethod
    def _fill_price(
        *,
        filled: Decimal,
        fill_cost: Decimal,
        limit: Decimal,
        state: VenueOrderState,
        delta: Decimal,
        last_price: Decimal | None,
    ) -> Decimal:
        if last_price is not None and last_price > 0:
            return last_price
        if state.average_price:
            incremental = (state.average_price * state.cumulative - fill_cost) / delta
            if incremental > 0:
                return incremental
        return limit

    async def _fill(
        self, slot: Slot, cid: str, *, qty: Decimal, price: Decimal, key: str, fee: Decimal
    ) -> None:
        if key in self._seen_fills:
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
            [self._order_row(slot.level, order, status, filled_total)],
            row,
        )
        self._seen_fills.add(key)
        if not ok:
            return
        result = slot.fill(qty, price)  # the committed change, now applied in memory
        self.stats.fills += 1
        self.stats.realized_pnl += result.realized_pnl
        self.stats.fees += fee
        self.fills.append(FillEvent(row.ts, slot.level, side, price, qty, result.realized_pnl))
        s = _side(side)
        self.metrics.volume.labels(symbol=self.symbol, side=s).inc(float(qty))
        if result.complete:
            self.metrics.orders_filled.labels(symbol=self.symbol, side=s).inc()

    def _order_row(
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

    async def _save(self, slot: Slot, order: OrderIntent | None, status: str) -> None:
        """Commit the slot and the status of ``order`` (captured before a transition may detach it)."""
        rows = [self._order_row(slot.level, order, status)] if order is not None else []
        await self.store.run(self.store.store.save, self.symbol, [slot], rows)

    # ============================================================================ reconciliation

    async def resolve(self, cid: str) -> None:
        """Settle one order whose outcome we do not know, by looking it up by client order id."""
        async with self._lock:
            slot = self._slot_for(cid)
            if slot is None:
                return
            if slot.state is SlotState.PENDING:
                slot.timeout()  # a restart found the intent: whether it was sent is unknown
        try:
            found = await self.executor.lookup(self.symbol, cid)
        except VenueError as err:
            log.warning("lookup failed; will retry", cid=cid, error=str(err))
            return
        async with self._lock:
            slot = self._slot_for(cid)
            if slot is None:
                return
            if found is None:
                order = slot.order
                if slot.state is SlotState.UNRESOLVED:
                    slot.absent()  # the placement never happened
                    await self._save(slot, order, "absent")
                else:
                    # The venue acknowledged it once and forgot it (purged history): nothing more to learn.
                    self.stats.anomalies += 1
                    log.error("acknowledged order not found at the venue", cid=cid, state=slot.state.value)
                    slot.close()
                    await self._save(slot, order, "closed")
                return
            await self._apply_state(slot, cid, found)

    async def recover(self) -> None:
        """After a restart: settle every slot that has an order, one lookup each."""
        for cid in [s.order.client_order_id for s in self.slots.values() if s.order is not None]:
            await self.resolve(cid)

    async def reconcile(self) -> None:
        """Periodic pass: open orders from the venue; anything of ours not open is looked up."""
        opened = await self.client.get_orders(OrderFilter(symbol=self.symbol))
        by_cid = {o.client_order_id: o for o in opened if o.client_order_id}
        async with self._lock:
            bound = [s.order.client_order_id for s in self.slots.values() if s.order is not None]
        for cid in bound:
            o = by_cid.get(cid)
            if o is not None:
                async with self._lock:
                    slot = self._slot_for(cid)
                    if slot is not None:
                        await self._apply_state(slot, cid, VenueOrderState.from_order(o))
            else:
                await self.resolve(cid)

    # ============================================================================ views

    def _update_gauges(self) -> None:
        m, lab = self.metrics, self._labels
        active = sum(1 for s in self.slots.values() if s.order is not None)
        position = sum((s.position for s in self.slots.values()), ZERO)
        m.orders_active.labels(**lab).set(active)
        m.position_size.labels(**lab).set(float(position))
        m.pnl_realized.labels(**lab).set(float(self.stats.realized_pnl))
        m.pnl_unrealized.labels(**lab).set(float(self.unrealized_pnl()))
        m.total_slots.labels(**lab).set(len(self.slots))
        m.active_slots.labels(**lab).set(sum(1 for s in self.slots.values() if s.order or s.position))
        m.margin_locked.labels(**lab).set(1 if self.margin_lock.locked else 0)
        m.risk_triggered.labels(**lab).set(0)
        m.circuit_breaker_open.labels(**lab).set(0)
        m.post_only_fallbacks.labels(**lab).set(
            sum(1 for s in self.slots.values() if not s.use_post_only(self.params.post_only_max_rejects))
        )

    def position(self) -> Decimal:
        return sum((s.position for s in self.slots.values()), ZERO)

    def unrealized_pnl(self) -> Decimal:
        if self.last_price is None:
            return ZERO
        return sum((s.position * (self.last_price - s.entry_price) for s in self.slots.values()), ZERO)

    def open_orders(self) -> list[dict[str, str]]:
        out = []
        for lvl, s in sorted(self.slots.items()):
            if s.order is not None:
                out.append(
                    {
                        "level": str(lvl),
                        "state": s.state.value,
                        "side": _side(s.order.side),
                        "price": dec_str(s.order.price),
                        "quantity": dec_str(s.order.quantity),
                        "filled": dec_str(s.order.filled),
                        "client_order_id": s.order.client_order_id,
                    }
                )
        return out

    def status(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for s in self.slots.values():
            states[s.state.value] = states.get(s.state.value, 0) + 1
        return {
            "symbol": self.symbol,
            "started": self.started,
            "anchor": dec_str(self.anchor) if self.anchor is not None else None,
            "price": dec_str(self.last_price) if self.last_price is not None else None,
            "slots": states,
            "open_orders": sum(1 for s in self.slots.values() if s.order is not None),
            "position": dec_str(self.position()),
            "realized_pnl": dec_str(self.stats.realized_pnl),
            "unrealized_pnl": dec_str(self.unrealized_pnl()),
            "fills": self.stats.fills,
            "placed": self.stats.placed,
            "rejected": self.stats.rejected,
            "unresolved": self.stats.unresolved,
            "cancels": self.stats.cancels,
            "anomalies": self.stats.anomalies,
            "margin_locked": self.margin_lock.locked,
            "margin_lock_remaining": round(self.margin_lock.remaining, 3),
            "executor": {
                "placed": self.executor.placed,
                "retries": self.executor.retries,
                "batch": self.executor.batch,
            },
            "price_monitor": self.monitor.status(),
            "startup_checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def _side(side: int) -> str:
    return "buy" if side == order_pb2.ORDER_SIDE_BUY else "sell"
