"""The grid engine: a small coordinator of price -> commit -> execute -> cancel over its collaborators.

Order of operations for every side effect (the rule that makes kill -9 safe):

1. under the engine lock (:attr:`SlotLedger.lock`): decide (pure strategy), move slots
   (FREE -> PENDING / LOCKED -> CANCEL_REQUESTED) and COMMIT the intents to the store;
2. without the lock: talk to the venue (rate limited, retried only where safe);
3. under the lock: apply the outcomes and commit.

A restart loads the slots and calls :meth:`GridEngine.recover`: every slot with an order is looked up at
the venue (best id known); "found" adopts the venue's state including fills (keyed ``<cid>@<cumulative>``
so a later stream report of the same quantity applies nothing); "not found" proves nothing until the
landing window has passed (the slot stays UNRESOLVED; then it is FREE and the level is placed again under
the SAME client order id, so a late landing answers as a duplicate).  Orders of ours no slot expects are
bound or cancelled with their fills recorded (late_orders.py).

The engine lock is never held across venue I/O (reference §12.7).

Collaborators (each gets what it needs in its constructor; none calls back into this class):

* :class:`~opensqt.engine.ledger.SlotLedger`: slots, client-id index, seen fills, persistence;
* :class:`~opensqt.engine.reconciler.Reconciler`: lookups, reconciler passes, adoption, breaker;
* :class:`~opensqt.engine.late_orders.LateOrders` (the reconciler's): orders no slot expects;
* :class:`~opensqt.engine.cancels.Canceller`: the cancel path (lost replies looked up and re-sent);
* :class:`~opensqt.engine.resyncer.Resyncer`: the operator's way back from a divergence;
* :class:`~opensqt.engine.recovery.Recovery`: restart and position recovery, startup checks;
* :class:`~opensqt.engine.volume_feed.VolumeFeed` (the risk guard's): the volume-anomaly monitor's feed;
* :class:`~opensqt.engine.status.StatusView`: ``/status``, open orders, gauges;
* :class:`~opensqt.engine.supervisor.Supervisor`: every background loop;
* :class:`~opensqt.engine.risk_guard.RiskGuard`: circuit breakers, exposure limits, alerts, the volume
  monitor and their loops (docs/risk.md).

Stream gaps: when an execution stream is a :class:`cqvx.streams.LiveStream`, its gap notices request an
immediate reconciler pass; the engine never needs to know which venue class it talks to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import structlog

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import SupportsOrderStream, VenueClient
from cqvx.errors import InsufficientFunds, OrderRejected
from cqvx.num import round_price
from cqvx.streams import LiveStream
from opensqt.config import Config
from opensqt.engine.cancels import Canceller
from opensqt.engine.context import Breaker, EngineStats, FillEvent, GridContext, RiskGuards
from opensqt.engine.events import EngineEvents
from opensqt.engine.executor import (
    Confirmed,
    OrderExecutor,
    Outcome,
    Rejected,
    Unresolved,
)
from opensqt.engine.ledger import SlotLedger, side_name
from opensqt.engine.price_monitor import PriceMonitor
from opensqt.engine.reconciler import MISMATCH_KINDS, Reconciler, ReconcileStatus
from opensqt.engine.recovery import Recovery
from opensqt.engine.resyncer import Resyncer, ResyncResult
from opensqt.engine.risk_guard import RiskGuard
from opensqt.engine.status import StatusView
from opensqt.engine.store import AsyncStore, StateStore, StoreWriteFailed
from opensqt.engine.supervisor import Supervisor
from opensqt.engine.venue_queries import load_rules
from opensqt.model.slots import MarginLock, Slot, SlotState
from opensqt.observability.alerts import AlertRouter, build_router
from opensqt.observability.metrics import EngineMetrics
from opensqt.risk.breakers import Kind
from opensqt.risk.cleaner import cleanup_cancels
from opensqt.risk.exposure import AccountExposure
from opensqt.risk.startup import Check
from opensqt.strategy.grid import Cancel, GridParams, InstrumentRules, Place, grid_actions

__all__ = ["MISMATCH_KINDS", "FillEvent", "GridEngine"]

log = structlog.get_logger("opensqt.engine")


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
        alerts: AlertRouter | None = None,
        account: AccountExposure | None = None,
    ) -> None:
        self.config = config
        self.symbol = config.trading.symbol
        self.client = client
        self.store = AsyncStore(store)
        self.metrics = metrics or EngineMetrics()
        self.params = GridParams.from_config(config.trading)
        self.ctx = GridContext(self.symbol, config.trading.strategy_id, self.params)
        self.stats = EngineStats()
        e, r = config.engine, config.risk
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
        self.ledger = SlotLedger(self.ctx, self.store, self.stats, self.metrics, wall=wall, clock=clock)
        # An order of ours that no slot expects (reported by the stream): a pass binds or cancels it.
        self.ledger.on_unexpected = lambda _cid: self.reconciler.request()
        self.reconciler = Reconciler(
            self.ctx,
            client=client,
            executor=self.executor,
            ledger=self.ledger,
            stats=self.stats,
            metrics=self.metrics,
            position_divergence=r.position_divergence,
            clock=clock,
            wall=wall,
            landing_window=float(e.effective_landing_window),
            stuck_after=float(e.effective_stuck_after),
        )
        self.recovery = Recovery(
            self.ctx,
            config=config,
            client=client,
            ledger=self.ledger,
            reconciler=self.reconciler,
            monitor=self.monitor,
            stats=self.stats,
        )
        self.canceller = Canceller(
            self.symbol,
            ledger=self.ledger,
            executor=self.executor,
            reconciler=self.reconciler,
            stats=self.stats,
            metrics=self.metrics,
        )
        self.resyncer = Resyncer(
            self.ctx,
            config=config,
            client=client,
            ledger=self.ledger,
            reconciler=self.reconciler,
            canceller=self.canceller,
            wall=wall,
        )
        self.alerts = alerts or build_router(r.alerts, clock=clock, wall=wall)
        self.risk = RiskGuard(
            self.ctx,
            config=r,
            client=client,
            ledger=self.ledger,
            stats=self.stats,
            metrics=self.metrics,
            store=self.store,
            monitor=self.monitor,
            cancel_opening=self._cancel_opening_orders,
            alerts=self.alerts,
            executor=self.executor,
            resyncer=self.resyncer,
            prices=lambda: [p for _, p in self.price_history[-r.slippage.volatility_window :]],
            landing_window=float(e.effective_landing_window),
            account=account,
            clock=clock,
            wall=wall,
        )
        self.risk.on_change = self._risk_changed
        self.volume, self.volume_feed = self.risk.volume, self.risk.volume_feed
        self.guards = RiskGuards(self.margin_lock, self.volume, self.reconciler.breaker, self.risk.book)
        self.view = StatusView(
            self.ctx,
            ledger=self.ledger,
            stats=self.stats,
            guards=self.guards,
            recon=self.reconciler.status,
            executor=self.executor,
            monitor=self.monitor,
            metrics=self.metrics,
        )
        self._unrender: Callable[[], None] = lambda: None  # set while started (start / stop)
        self.supervisor = Supervisor(on_unexpected=self.risk.crashed, clock=clock)
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._inflight: set[asyncio.Future[None]] = set()
        self.price_history: list[tuple[float, Decimal]] = []
        self._labels = {"symbol": self.symbol}
        # The metric children of the tick-to-order path, looked up once (a ``labels()`` lookup costs
        # ~10 us, several per tick; docs/performance.md, round 4).
        self._price_updates = self.metrics.price_updates.labels(**self._labels)
        self._tick_to_trade = self.metrics.latency_tick_to_trade.labels(**self._labels)
        self._placements = self.metrics.order_placements.labels(**self._labels)
        self.events = EngineEvents()  # observers (the live page) are told after each state change

    # ============================================================================ shared state, views

    @property
    def slots(self) -> dict[int, Slot]:
        return self.ledger.slots

    @property
    def fills(self) -> list[FillEvent]:
        return self.ledger.fills

    @property
    def rules(self) -> InstrumentRules | None:
        return self.ctx.rules

    @property
    def anchor(self) -> Decimal | None:
        return self.ctx.anchor

    @property
    def namespace(self) -> str:
        return self.ctx.namespace

    @property
    def last_price(self) -> Decimal | None:
        return self.ctx.last_price

    @property
    def started(self) -> bool:
        return self.ctx.started

    @property
    def checks(self) -> list[Check]:
        return self.ctx.checks

    @property
    def recon(self) -> ReconcileStatus:
        return self.reconciler.status

    @property
    def breaker(self) -> Breaker:
        return self.reconciler.breaker

    @property
    def paused(self) -> bool:
        """No placement: margin lock, volume anomaly, or the position breaker."""
        return self.guards.paused

    def position(self) -> Decimal:
        return self.ledger.position()

    def unrealized_pnl(self) -> Decimal:
        return self.ledger.unrealized_pnl(self.ctx.last_price)

    def open_orders(self) -> list[dict[str, str]]:
        return self.view.open_orders()

    def status(self) -> dict[str, Any]:
        out = self.view.status()
        out["risk"]["breakers"] = self.risk.status()
        return out

    # ============================================================================ lifecycle

    async def start(self, *, run_tasks: bool = True, check: bool = True) -> None:
        """Load state, resolve every in-flight intent at the venue, run the safety checks, start loops."""
        self.ctx.rules = await load_rules(self.client, self.symbol)
        await self.ledger.load()
        await self.risk.load()
        await self.recover()
        if not self.ledger.slots and self.config.trading.recover_position:
            await self.recover_position()
        if check:
            await self.run_startup_checks()
        if self.risk.volume_feed is not None:
            await self.risk.volume_feed.seed()
        self.ctx.started = True
        # The state gauges are computed when /metrics is read, from a started engine only (stop()
        # unregisters first: a stopped engine of the same symbol never writes its stale view over them).
        self._unrender()
        self._unrender = self.metrics.on_render(self.view.update_gauges)
        if run_tasks:
            self._start_loops()

    def _start_loops(self) -> None:
        sup, e = self.supervisor, self.config.engine
        sup.spawn("price-monitor", self.monitor.run)
        sup.spawn("ticks", self._tick_loop)
        if isinstance(self.client, SupportsOrderStream):
            # Whatever the stream missed while it was down is found by reconciling after the restart.
            sup.spawn("order-stream", self.read_executions, after_restart=self.reconcile)
        sup.every("reconcile", float(e.reconcile_interval), self.reconcile, wake=self.reconciler.requested)
        sup.every("order cleaner", float(e.order_cleanup_interval), self.clean_orders)
        self.risk.spawn_loops(sup)

    async def stop(self, *, cancel_orders: bool | None = None) -> None:
        """Stop the loops; cancel our live orders when ``cancel_on_exit`` (default from the config)."""
        self._unrender()
        await self.supervisor.stop()
        self.reconciler.stop_timer()
        if self._inflight:  # a tick that was placing when the loop stopped: let it finish
            await asyncio.gather(*self._inflight, return_exceptions=True)
        cancel = self.config.system.cancel_on_exit if cancel_orders is None else cancel_orders
        if cancel:  # every order of ours, late landings included (cancels.py)
            await self.canceller.cancel_everything("shutdown", sleep=self._sleep)
        self.view.update_gauges()  # the last values stay on /metrics
        await self.alerts.aclose()
        await self.store.aclose()

    async def recover(self) -> None:
        """After a restart: settle every slot that has an order, one lookup each."""
        await self.recovery.recover()

    async def recover_position(self) -> list[Slot]:
        """Fresh state store, existing venue position: create its FILLED slots (see recovery.py)."""
        return await self.recovery.recover_position()

    async def resync(self, operator: str, reason: str) -> ResyncResult:
        """Adopt the venue's position and resume after a divergence fills cannot explain (resyncer.py);
        audited in the store.  Raises ``ResyncRefused`` with nothing changed."""
        result = await self.resyncer.run(operator, reason)
        self.view.update_gauges()
        return result

    async def run_startup_checks(self) -> list[Check]:
        return await self.recovery.run_startup_checks()

    # ============================================================================ loops

    async def _tick_loop(self) -> None:
        while True:
            price, received = await self.monitor.next()
            # Shielded: stopping the loop must not cut a placement off mid-call (its outcome would be
            # unknown); stop() waits for it instead.
            tick = asyncio.ensure_future(self.on_price(price, received))
            self._inflight.add(tick)
            tick.add_done_callback(self._inflight.discard)
            try:
                await asyncio.shield(tick)
            except Exception:  # a bad tick must not kill the engine; it is logged and counted
                self.stats.anomalies += 1
                log.exception("tick failed", symbol=self.symbol)

    async def read_executions(self) -> None:
        """The order stream into the ledger, until it ends or fails (the supervisor restarts it)."""
        assert isinstance(self.client, SupportsOrderStream)
        stream = self.client.subscribe_executions([self.symbol])
        self.watch_gaps(stream)
        self.risk.order_stream_up()
        try:
            async for report in stream:
                if report.symbol and report.symbol != self.symbol:
                    continue
                await self.on_report(report)
        finally:
            self.risk.order_stream_down()
            await stream.aclose()

    def watch_gaps(self, stream: LiveStream[Any]) -> None:
        """Reconcile at once whenever ``stream`` reports a gap (``cqvx.streams.LiveStream.on_gap``).

        Every venue's streams carry gap notices (the stream contract), so this needs no knowledge of the
        venue class.  Account streams (executions, balances, positions) go through here: a gap means
        order updates may be lost, and only a reconciler pass finds them."""
        stream.on_gap(lambda _gap: self.request_reconcile())

    def request_reconcile(self) -> None:
        """Run a reconciler pass now instead of at the next interval (e.g. a stream reported a gap)."""
        self.reconciler.request()

    # ============================================================================ risk

    def on_trade(self, symbol: str, trade: Any) -> None:
        """Feed one public trade (a ``cqc.markets.v1.Trade``) to the volume monitor."""
        if self.risk.volume_feed is not None:
            self.risk.volume_feed.on_trade(symbol, trade)

    async def risk_check(self) -> None:
        """One volume-monitor check (risk_guard.py); the rising edge cancels the opening orders."""
        await self.risk.risk_check()

    async def reset_breakers(self, kind: Kind | None = None, *, operator: str = "") -> list[Kind]:
        """The manual reset of the circuit breakers (all open ones, or ``kind``); durable."""
        return await self.risk.reset(kind, operator=operator)

    def _risk_changed(self) -> None:
        self.view.update_gauges()
        self.events.emit("risk")

    async def clean_orders(self) -> list[Cancel]:
        """One pass of the order cleaner (reference §3.3; risk/cleaner.py has the rule)."""
        t = self.config.trading
        async with self.ledger.lock:
            cancels = cleanup_cancels(
                self.ledger.slots, threshold=t.order_cleanup_threshold, batch_size=t.cleanup_batch_size
            )
        if cancels:
            log.info("order cleaner", cancels=len(cancels), threshold=t.order_cleanup_threshold)
            self.stats.cleaned += len(cancels)
            await self._run_cancels(cancels)
        return cancels

    # ============================================================================ venue state

    async def on_report(self, report: execution_pb2.ExecutionReport) -> None:
        """One item of the order stream (routing by client order id only)."""
        self.metrics.order_updates.labels(**self._labels).inc()
        await self.ledger.apply_report(report)
        self.events.emit("report")

    async def resolve(self, cid: str) -> None:
        """Settle one order whose outcome we do not know, by looking it up by client order id."""
        await self.reconciler.resolve(cid)

    async def reconcile(self) -> dict[str, int]:
        """One reconciler pass (see reconciler.py); returns the mismatches found.  When the pass opens
        the position breaker, the opening orders are cancelled."""
        was_open = self.breaker.open
        found = await self.reconciler.reconcile()
        self.reconciler.wake_at_expiry()
        if self.reconciler.cancel_due:
            await self._run_cancels(self.reconciler.cancel_due, resend=True)
        if self.breaker.open and not was_open and self.ctx.anchor is not None:
            await self._cancel_opening_orders("risk")
        self.view.update_gauges()
        self.events.emit("reconcile")
        return found

    # ============================================================================ ticks

    async def on_price(self, price: Decimal, received: float | None = None) -> None:
        """One (conflated) price tick: decide, commit intents, execute, apply outcomes."""
        rules = self.ctx.rules
        assert rules is not None
        received = self._clock() if received is None else received
        self.ctx.last_price = price
        self.stats.ticks += 1
        self._price_updates.inc()
        self.risk.price_seen(received)
        self.price_history.append((self._wall(), price))
        if len(self.price_history) > 100_000:
            del self.price_history[: len(self.price_history) // 2]
        async with self.ledger.lock:
            if self.ctx.anchor is None:
                await self.ledger.set_anchor(round_price(price, rules.tick_size, is_buy=True))
            assert self.ctx.anchor is not None
            actions = grid_actions(
                price, self.ctx.anchor, self.ledger.slots, self.params, rules, margin_locked=self.paused
            )
            cancels = [a for a in actions if isinstance(a, Cancel)]
            admitted = self.risk.admit([a for a in actions if isinstance(a, Place)], price)
            placing = await self.ledger.commit_intents(admitted)
        if placing:
            self.stats.tick_to_order_ms.append((self._clock() - received) * 1000)
            self._tick_to_trade.observe(self.stats.tick_to_order_ms[-1])
            await self._execute(placing)
        if cancels:
            await self._run_cancels(cancels)
        self.events.emit("price")

    async def _execute(self, placing: Sequence[tuple[Slot, order_pb2.Order]]) -> None:
        started = self._clock()
        self._placements.inc(len(placing))
        retries_before = self.executor.retries
        outcomes = await self.executor.place([m for _, m in placing])
        elapsed_ms = (self._clock() - started) * 1000
        self.metrics.latency_exchange.labels(symbol=self.symbol, op="place").observe(elapsed_ms)
        self.metrics.order_retries.labels(**self._labels).inc(self.executor.retries - retries_before)
        unresolved: list[str] = []
        margin_error = False
        ledger = self.ledger
        async with ledger.lock:
            for (_, msg), outcome in zip(placing, outcomes, strict=True):
                cid = msg.client_order_id
                slot = ledger.slot_for(cid)
                if slot is None:
                    continue  # the stream already finished this order (instant fill / cancel)
                if isinstance(outcome, Unresolved):
                    ledger.sent_at[cid] = self._clock()  # the landing window runs from here
                    unresolved.append(cid)
                try:
                    margin_error |= await self._apply_outcome(slot, msg, outcome)
                except StoreWriteFailed as err:
                    # Memory is unchanged (PENDING): the reconciler resolves it once stuck; the other
                    # outcomes of the batch are still applied.
                    self.stats.anomalies += 1
                    log.error("could not record a placement outcome", cid=cid, error=str(err))
        if margin_error:
            self.margin_lock.trigger()
            log.warning("insufficient funds: margin lock", seconds=self.margin_lock.duration)
            await self._cancel_opening_orders("margin_lock")
        for cid in unresolved:
            await self.resolve(cid)
        await self.risk.observe_placements(elapsed_ms, [isinstance(o, Rejected) for o in outcomes])
        if unresolved:
            self.reconciler.wake_at_expiry()
        self.events.emit("placed")

    async def _apply_outcome(self, slot: Slot, msg: order_pb2.Order, outcome: Outcome) -> bool:
        """Apply one placement outcome (lock held); True when it was an insufficient-funds refusal."""
        ledger, cid = self.ledger, msg.client_order_id
        if isinstance(outcome, Confirmed):
            self.stats.placed += 1
            self.metrics.orders_placed.labels(symbol=self.symbol, side=side_name(msg.side)).inc()
            await ledger.apply_state(slot, cid, outcome.state)
        elif isinstance(outcome, Rejected):
            self.stats.rejected += 1
            err = outcome.error
            self.metrics.order_failures.labels(symbol=self.symbol, kind=err.kind.value).inc()
            post_only_reject = isinstance(err, OrderRejected) and msg.post_only
            if slot.state is SlotState.PENDING:
                await ledger.transition(
                    slot, lambda s: s.reject(post_only_reject=post_only_reject), "rejected"
                )
            log.info("order rejected", cid=cid, kind=err.kind.value, reason=err.message[:120])
            return isinstance(err, InsufficientFunds)
        elif isinstance(outcome, Unresolved):
            self.stats.unresolved += 1
            self.metrics.order_failures.labels(symbol=self.symbol, kind="unresolved").inc()
            if slot.state is SlotState.PENDING:
                await ledger.transition(slot, lambda s: s.timeout(), "unresolved")
        return False

    # ============================================================================ cancels

    async def _cancel_opening_orders(self, reason: str) -> None:
        rules, anchor = self.ctx.rules, self.ctx.anchor
        assert rules is not None and anchor is not None
        price = self.ctx.last_price or anchor
        async with self.ledger.lock:
            actions = grid_actions(price, anchor, self.ledger.slots, self.params, rules, margin_locked=True)
        await self._run_cancels(
            [Cancel(a.level, a.client_order_id, reason) for a in actions if isinstance(a, Cancel)]
        )

    async def _run_cancels(self, cancels: Sequence[Cancel], *, resend: bool = False) -> None:
        """Commit and send cancels (``cancels.py``: batching, lost replies looked up and re-sent)."""
        await self.canceller.run(cancels, resend=resend)
