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

from cqc.markets.v1 import candle_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import (
    SupportsCandles,
    SupportsInstruments,
    SupportsOrderStream,
    SupportsPositions,
    VenueClient,
)
from cqvx.errors import InsufficientFunds, NotFound, OrderRejected, Timeout, VenueError
from cqvx.num import ZERO, dec, dec_or_none, dec_str, round_price, round_quantity
from cqvx.symbols import parse_symbol
from cqvx.types import OPEN_STATUSES, OrderFilter
from opensqt.config import Config
from opensqt.engine.executor import Confirmed, OrderExecutor, Rejected, Unresolved, VenueOrderState
from opensqt.engine.price_monitor import PriceMonitor
from opensqt.engine.slots import (
    IllegalTransition,
    MarginLock,
    OrderIntent,
    Slot,
    SlotState,
    is_our_client_order_id,
)
from opensqt.engine.store import AsyncStore, FillRow, OrderRow, StateStore
from opensqt.observability.metrics import EngineMetrics
from opensqt.risk.cleaner import cleanup_cancels
from opensqt.risk.startup import Check, StartupCheckFailed, startup_checks
from opensqt.risk.volume import VolumeMonitor, VolumeSettings
from opensqt.strategy.grid import (
    Cancel,
    GridParams,
    InstrumentRules,
    Place,
    grid_actions,
    inventory_slots,
    level_price,
    nearest_level,
)

__all__ = ["FillEvent", "GridEngine"]

log = structlog.get_logger("opensqt.engine")

_POST_ONLY_CLOSE = frozenset({order_pb2.ORDER_STATUS_REJECTED, order_pb2.ORDER_STATUS_EXPIRED})
# Window lengths the volume monitor can seed from the venue's historical candles.
_CANDLE_SECONDS = {
    60: candle_pb2.CANDLE_INTERVAL_1MIN,
    300: candle_pb2.CANDLE_INTERVAL_5MIN,
    900: candle_pb2.CANDLE_INTERVAL_15MIN,
    1800: candle_pb2.CANDLE_INTERVAL_30MIN,
    3600: candle_pb2.CANDLE_INTERVAL_1HOUR,
}
MISMATCH_KINDS = ("adopted", "orphan", "vanished", "state", "position")


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
    cleaned: int = 0
    recovered_slots: int = 0
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    tick_to_order_ms: list[float] = field(default_factory=list)


@dataclass
class _Reconciler:
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


@dataclass
class _Breaker:
    """Opens when the local position and the venue's keep disagreeing; pauses placement until they agree."""

    open: bool = False
    reason: str = ""
    opened_at: float | None = None
    trips: int = 0


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
        r = config.risk
        self.volume: VolumeMonitor | None = None
        if r.enabled:
            self.volume = VolumeMonitor(
                r.monitor_symbols or [self.symbol],
                VolumeSettings(
                    window_seconds=float(r.window_seconds),
                    average_window=r.average_window,
                    volume_multiplier=r.volume_multiplier,
                    require_price_drop=r.require_price_drop,
                    recovery_threshold=r.recovery_threshold,
                    global_strategy=r.global_strategy,
                ),
            )
        self._last_trade_clock: float | None = None
        self.recon = _Reconciler()
        self.breaker = _Breaker()
        self._clock = clock
        self._wall = wall
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._reconcile_requested = asyncio.Event()
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
        if not self.slots and self.config.trading.recover_position:
            await self.recover_position()
        if check:
            await self.run_startup_checks()
        if self.volume is not None:
            await self._seed_volume()
        self.started = True
        if run_tasks:
            self._spawn(self.monitor.run(), "price-monitor")
            self._spawn(self._tick_loop(), "ticks")
            if isinstance(self.client, SupportsOrderStream):
                self._spawn(self._report_loop(), "order-stream")
            self._spawn(self._reconcile_loop(), "reconcile")
            self._spawn(self._cleanup_loop(), "cleaner")
            if self.volume is not None:
                for sym in self.volume.symbols:
                    self._spawn(self._trade_loop(sym), f"trades-{sym}")
                self._spawn(self._risk_timer_loop(), "risk-timer")

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
            # A placement may have been in flight when the loops stopped (PENDING), or its outcome is
            # unknown (UNRESOLVED): look those up first, so an order that did land is cancelled too.
            async with self._lock:
                unsettled = [
                    s.order.client_order_id
                    for s in self.slots.values()
                    if s.order is not None and s.state in (SlotState.PENDING, SlotState.UNRESOLVED)
                ]
            for cid in unsettled:
                await self.resolve(cid)
            async with self._lock:
                targets = [
                    Cancel(lvl, s.order.client_order_id, "shutdown")
                    for lvl, s in sorted(self.slots.items())
                    if s.order is not None
                    and s.state in (SlotState.LOCKED, SlotState.CANCEL_REQUESTED, SlotState.UNRESOLVED)
                ]
            await self._run_cancels(targets, resend=True)
        await self.store.aclose()

    async def _venue_inventory(self) -> tuple[Decimal, Decimal | None]:
        """The position the venue holds for the symbol (signed base units) and its entry price.

        Perpetuals: ``get_positions``.  Spot: the base balance above ``base_reserve`` and above what the
        slots already hold."""
        assert self.rules is not None
        if self.rules.derivatives:
            if not isinstance(self.client, SupportsPositions):
                return ZERO, None
            qty, entry = ZERO, None
            for pos in await self.client.get_positions([self.symbol]):
                if pos.symbol and pos.symbol != self.symbol:
                    continue
                q = dec_or_none(pos.quantity, "quantity") or ZERO
                if pos.side == position_pb2.POSITION_SIDE_SHORT:
                    q = -abs(q)
                qty += q
                entry = dec_or_none(pos.entry_price, "entry_price") or entry
            return qty, entry
        reserve = self.config.trading.base_reserve
        if reserve is None:
            log.info("spot holdings not taken over: set trading.base_reserve to let the grid sell them")
            return ZERO, None
        base = parse_symbol(self.symbol).base
        total = ZERO
        for bal in await self.client.get_balances():
            if bal.asset == base:
                total += dec_or_none(bal.total, "total") or ZERO
        held = sum((s.position for s in self.slots.values()), ZERO)
        excess = total - reserve - held
        return (excess if excess > 0 else ZERO), None

    async def recover_position(self) -> list[Slot]:
        """Fresh state store, existing venue position: create its FILLED slots (original
        initializeSellSlotsFromPosition) so the grid closes that inventory instead of ignoring it."""
        assert self.rules is not None
        qty, entry = await self._venue_inventory()
        qty = round_quantity(abs(qty), self.rules.lot_size) * (1 if qty >= 0 else -1)
        if qty == 0:
            return []
        if qty < 0 and not self.params.neutral:
            log.warning("venue holds a short position; long grid mode leaves it alone", quantity=str(qty))
            return []
        price = self.monitor.latest or await self._first_price()
        st = self.store.store
        if self.anchor is None:
            # The anchor is committed first: a crash before the slots are saved re-runs this recovery
            # with the same anchor (the store still has no slots).
            self.anchor = round_price(price, self.rules.tick_size, is_buy=True)
            await self.store.run(st.set_meta, f"anchor:{self.symbol}", dec_str(self.anchor))
        # Spot reports no entry: the inventory is valued at the takeover price (the anchor).
        slots = inventory_slots(
            qty, self.anchor, self.params, self.rules, entry_price=entry if entry else self.anchor
        )
        async with self._lock:
            for s in slots:
                self.slots[s.level] = s
            await self.store.run(st.save, self.symbol, slots, [])
        self.stats.recovered_slots = len(slots)
        log.info(
            "recovered venue position into sell slots",
            symbol=self.symbol,
            quantity=dec_str(qty),
            slots=len(slots),
            anchor=str(self.anchor),
        )
        return slots

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
            except Exception:
                # Anything else (a misbehaving adapter, a store error while applying a report) must not
                # end the order stream for the rest of the run: fills would only arrive by reconciling.
                self.stats.anomalies += 1
                log.exception("order stream failed; resubscribing", symbol=self.symbol)
            finally:
                await stream.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            await self._guarded(self.reconcile, "reconcile")  # whatever the stream missed while down

    async def _guarded(self, fn: Callable[[], Any], what: str) -> None:
        """Run one periodic pass; a failure is logged and counted, never the end of the loop."""
        try:
            await fn()
        except VenueError as err:
            log.warning(f"{what} failed", error=str(err))
        except Exception:
            self.stats.anomalies += 1
            log.exception(f"{what} failed")

    def request_reconcile(self) -> None:
        """Run a reconciler pass now instead of at the next interval (e.g. a stream reported a gap)."""
        self._reconcile_requested.set()

    async def _reconcile_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._reconcile_requested.wait(), float(self.config.engine.reconcile_interval)
                )
            self._reconcile_requested.clear()
            await self._guarded(self.reconcile, "reconcile")

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(float(self.config.engine.order_cleanup_interval))
            await self._guarded(self.clean_orders, "order cleaner")

    # ============================================================================ risk: volume monitor

    async def _seed_volume(self) -> None:
        """Seed the volume baselines from historical candles where the venue serves them."""
        assert self.volume is not None
        interval = _CANDLE_SECONDS.get(int(self.volume.settings.window_seconds))
        if interval is None or not isinstance(self.client, SupportsCandles):
            return
        for sym, sv in self.volume.symbols.items():
            try:
                candles = await self.client.get_candles(
                    sym, interval, limit=self.volume.settings.average_window + 2
                )
            except VenueError as err:
                log.info("volume baseline: no candles, warming up from trades", symbol=sym, error=str(err))
                continue
            closed = [c for c in candles if c.is_closed]
            sv.seed(
                (
                    float(c.open_time.seconds) + c.open_time.nanos / 1e9,
                    dec_or_none(c.volume, "volume") or ZERO,
                    dec(c.close),
                )
                for c in closed
            )

    async def _trade_loop(self, symbol: str) -> None:
        """Public trades of one monitored symbol into the volume monitor."""
        delay = 0.5
        while True:
            stream = self.client.subscribe_trades(symbol)
            try:
                async for t in stream:
                    if t.symbol and t.symbol != symbol:
                        continue
                    self.on_trade(symbol, t)
                    await self._guarded(self._risk_check, "risk check")
                    delay = 0.5
            except VenueError as err:
                log.warning("trade stream error", symbol=symbol, error=str(err))
            except Exception:  # never the end of the volume monitor's feed (see _report_loop)
                self.stats.anomalies += 1
                log.exception("trade stream failed; resubscribing", symbol=symbol)
            finally:
                await stream.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _risk_timer_loop(self) -> None:
        """Windows also close without trades (a quiet market must be able to recover)."""
        assert self.volume is not None
        period = min(1.0, self.volume.settings.window_seconds / 4)
        while True:
            await asyncio.sleep(period)
            await self._guarded(self._risk_check, "risk check")

    def on_trade(self, symbol: str, trade: Any) -> None:
        """Feed one public trade (a ``cqc.markets.v1.Trade``) to the volume monitor."""
        if self.volume is None:
            return
        price = dec_or_none(trade.price, "price")
        qty = dec_or_none(trade.quantity, "quantity")
        if price is None or qty is None:
            return
        ts = (
            trade.timestamp.seconds + trade.timestamp.nanos / 1e9
            if trade.HasField("timestamp")
            else self._wall()
        )
        self.volume.add_trade(symbol, ts, price, qty)
        self._last_trade_clock = self._clock()

    async def _risk_check(self) -> None:
        """Evaluate the volume monitor; on the rising edge cancel the buys (original CancelAllBuyOrders)."""
        if self.volume is None:
            return
        was = self.volume.triggered
        now = self.volume.now
        if self._last_trade_clock is not None:
            now += max(0.0, self._clock() - self._last_trade_clock)  # venue time since the last trade
        on = self.volume.evaluate(now)
        if on and not was:
            log.warning("volume anomaly: placement paused, buys cancelled", status=self.volume.status())
            self._update_gauges()
            if self.rules is not None and self.anchor is not None:
                await self._cancel_opening_orders("risk")
        elif was and not on:
            log.info("volume back to normal: placement resumed")
            self._update_gauges()

    @property
    def paused(self) -> bool:
        """No placement: margin lock, volume anomaly, or the position breaker."""
        return (
            self.margin_lock.locked
            or (self.volume is not None and self.volume.triggered)
            or self.breaker.open
        )

    # ============================================================================ risk: cleaner

    async def clean_orders(self) -> list[Cancel]:
        """One pass of the order cleaner (reference §3.3; risk/cleaner.py has the rule)."""
        t = self.config.trading
        async with self._lock:
            cancels = cleanup_cancels(
                self.slots, threshold=t.order_cleanup_threshold, batch_size=t.cleanup_batch_size
            )
        if cancels:
            log.info("order cleaner", cancels=len(cancels), threshold=t.order_cleanup_threshold)
            self.stats.cleaned += len(cancels)
            await self._run_cancels(cancels)
        return cancels

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
                price, self.anchor, self.slots, self.params, self.rules, margin_locked=self.paused
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
            await self._cancel_opening_orders("margin_lock")
        for cid in unresolved:
            await self.resolve(cid)

    async def _cancel_opening_orders(self, reason: str) -> None:
        assert self.rules is not None and self.anchor is not None
        price = self.last_price or self.anchor
        async with self._lock:
            actions = grid_actions(
                price, self.anchor, self.slots, self.params, self.rules, margin_locked=True
            )
        await self._run_cancels(
            [Cancel(a.level, a.client_order_id, reason) for a in actions if isinstance(a, Cancel)]
        )

    async def _run_cancels(self, cancels: Sequence[Cancel], *, resend: bool = False) -> None:
        """Mark and commit every cancel intent (one commit), then cancel (batched where supported).

        ``resend`` (shutdown): also re-send a cancel for slots already in CANCEL_REQUESTED, and send one
        for UNRESOLVED slots (their lookup failed: the order may be live; cancelling by client order id
        is harmless when it never landed, the venue answers NotFound)."""
        sent: list[Cancel] = []
        async with self._lock:
            marked: list[Slot] = []
            rows: list[OrderRow] = []
            for c in cancels:
                slot = self._slot_for(c.client_order_id)
                if slot is None or slot.order is None:
                    continue
                if slot.state is SlotState.LOCKED:
                    slot.request_cancel()
                    marked.append(slot)
                    rows.append(self._order_row(slot.level, slot.order, "cancel_requested"))
                elif not (resend and slot.state in (SlotState.CANCEL_REQUESTED, SlotState.UNRESOLVED)):
                    continue
                sent.append(c)
            if marked:
                await self.store.run(self.store.store.save, self.symbol, marked, rows)
        if not sent:
            return
        for c in sent:
            self.stats.cancels += 1
            self.metrics.orders_cancelled.labels(symbol=self.symbol, reason=c.reason).inc()
        results = await self.executor.cancel_many(self.symbol, [c.client_order_id for c in sent])
        for c, result in zip(sent, results, strict=True):
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
            key = report.trade_id or None
            if not report.cumulative_quantity and last_qty and slot.order is not None:
                # A venue that reports only per-fill quantities: rebuild the cumulative figure.  A replay
                # of a trade already applied (reconnect) must add nothing, and without a cumulative figure
                # only its trade id can tell.
                replay = key is not None and key in self._seen_fills
                filled = slot.order.filled + (ZERO if replay else last_qty)
                state = VenueOrderState(state.order_id, state.status, filled, None)
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

    async def reconcile(self) -> dict[str, int]:
        """One reconciler pass (reference §3.4 with the §12.4 fixes); returns the mismatches found.

        * our slots vs the venue's open orders, by client order id: an order we think is live but the
          venue does not list is LOOKED UP (it may have filled) and settled from the answer, never freed
          blindly (``vanished``); a listed order whose fills/state differ is adopted from the venue
          (``state``).  PENDING slots (a placement in flight in this process) are left alone.
        * venue open orders carrying our id prefix that no slot knows are looked up and, if still open,
          ADOPTED into the slot they belong to (``adopted``); one that fits no free slot is reported
          (``orphan``) and left alone.  Orders without our prefix are never touched.
        * derivatives: the slots' position vs the venue's; a divergence beyond
          ``risk.position_divergence`` (and one lot) on two passes in a row opens the breaker.
        """
        rec = self.recon
        rec.status = "running"
        rec.runs += 1
        rec.last_started = self._wall()
        t0 = self._clock()
        found = dict.fromkeys(MISMATCH_KINDS, 0)
        try:
            opened = await self.client.get_orders(OrderFilter(symbol=self.symbol))
            by_cid = {o.client_order_id: o for o in opened if o.client_order_id}
            async with self._lock:
                bound = {
                    s.order.client_order_id: s.state
                    for s in self.slots.values()
                    if s.order is not None and s.state is not SlotState.PENDING
                }
            for cid, order in by_cid.items():
                if cid in bound or not is_our_client_order_id(cid):
                    continue
                if order.strategy_id and order.strategy_id != self._strategy_tag:
                    continue  # another engine's order (the venue echoes the strategy tag)
                outcome = await self._adopt(order)
                if outcome is not None:
                    found[outcome] += 1
            for cid, state in bound.items():
                o = by_cid.get(cid)
                if o is not None:
                    async with self._lock:
                        slot = self._slot_for(cid)
                        if slot is None or slot.order is None:
                            continue
                        before = (slot.state, slot.order.filled)
                        await self._apply_state(slot, cid, VenueOrderState.from_order(o))
                        after = (slot.state, slot.order.filled if slot.order is not None else None)
                        if after != before and before[0] is not SlotState.UNRESOLVED:
                            found["state"] += 1
                else:
                    if state in (SlotState.LOCKED, SlotState.CANCEL_REQUESTED):
                        found["vanished"] += 1
                    await self.resolve(cid)
            if await self._check_position():
                found["position"] += 1
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
        self._update_gauges()
        return found

    @property
    def _strategy_tag(self) -> str:
        return f"{self.config.trading.strategy_id}:{self.symbol}"

    def _adoptable_level(self, order: order_pb2.Order) -> int | None:
        """The slot a live order of ours belongs to, judged by its price and side (None: no free fit)."""
        if self.anchor is None or self.rules is None:
            return None
        price = dec_or_none(order.price, "price")
        qty = dec_or_none(order.quantity, "quantity")
        if not price or not qty:
            return None
        step, buy = self.params.interval, order.side == order_pb2.ORDER_SIDE_BUY
        k = nearest_level(price, self.anchor, step)
        if round_price(level_price(self.anchor, k, step), self.rules.tick_size, is_buy=buy) != price:
            return None  # not on our grid
        # (level, required sign of the slot's position): opening orders sit on their own level, closing
        # orders one interval beyond the slot whose position they close.
        options = [(k, 0), (k + 1, -1)] if buy else [(k - 1, 1), (k, 0)]
        for level, sign in options:
            slot = self.slots.get(level, Slot(level))
            if slot.state is not SlotState.FREE or slot.order is not None:
                continue
            if sign == 0 and slot.position == 0 and (buy or self.params.neutral):
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
        async with self._lock:
            if self._slot_for(cid) is not None:
                return None  # bound meanwhile (a report arrived)
            level = self._adoptable_level(order)
            if level is None:
                log.error("live order of ours fits no free slot; left alone", cid=cid, price=order.price)
                return "orphan"
            slot = self.slots.setdefault(level, Slot(level))
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
            self._by_cid[cid] = level
            await self._save(slot, intent, "adopted")
            # Fills it collected while nobody tracked it are recorded now (keyed <cid>@<cumulative>).
            await self._apply_state(slot, cid, fresh)
        log.warning("adopted a live order of ours", cid=cid, level=level)
        return "adopted"

    async def _check_position(self) -> bool:
        """Derivatives: does the slots' position disagree with the venue's?  Drives the breaker."""
        rec, br = self.recon, self.breaker
        if self.rules is None or not self.rules.derivatives or not isinstance(self.client, SupportsPositions):
            return False
        venue, _ = await self._venue_inventory()
        local = self.position()
        rec.local_position, rec.venue_position = dec_str(local), dec_str(venue)
        tolerance = max(self.rules.lot_size, self.config.risk.position_divergence * abs(venue))
        diverged = abs(local - venue) > tolerance
        rec.divergent_passes = rec.divergent_passes + 1 if diverged else 0
        if rec.divergent_passes >= 2 and not br.open:
            br.open, br.reason, br.opened_at = True, "position_divergence", self._wall()
            br.trips += 1
            log.error("circuit breaker open: position divergence", local=str(local), venue=str(venue))
            if self.anchor is not None:
                await self._cancel_opening_orders("risk")
        elif not diverged and br.open:
            br.open, br.reason = False, ""
            log.info("circuit breaker closed: positions agree again")
        return diverged

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
        m.risk_triggered.labels(**lab).set(1 if self.volume is not None and self.volume.triggered else 0)
        m.circuit_breaker_open.labels(**lab).set(1 if self.breaker.open else 0)
        if self.volume is not None:
            for sym, sv in self.volume.symbols.items():
                ratio = sv.ratio()
                m.volume_ratio.labels(symbol=sym).set(float(ratio) if ratio is not None else 0.0)
        for kind, n in self.recon.last.items():
            m.reconcile_last_mismatches.labels(symbol=self.symbol, kind=kind).set(n)
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
            "paused": self.paused,
            "cleaned": self.stats.cleaned,
            "recovered_slots": self.stats.recovered_slots,
            "risk": {
                "volume_monitor": self.volume.status() if self.volume is not None else {"enabled": False},
                "circuit_breaker": {
                    "open": self.breaker.open,
                    "reason": self.breaker.reason,
                    "trips": self.breaker.trips,
                },
            },
            "reconciler": {
                "status": self.recon.status,
                "runs": self.recon.runs,
                "last_duration_ms": self.recon.last_duration_ms,
                "last_error": self.recon.last_error,
                "last": self.recon.last,
                "totals": self.recon.totals,
                "local_position": self.recon.local_position,
                "venue_position": self.recon.venue_position,
            },
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
