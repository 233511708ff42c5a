"""The engine side of the circuit breakers, exposure limits and alerts (the rules are in ``risk/``).

What it wires (docs/risk.md):

* observations into the :class:`~opensqt.risk.breakers.BreakerBook`: round trips (new ledger fills with
  a realized PnL), equity (capital + realized + unrealized), price staleness (the price monitor's last
  tick), the order stream's up/down edges, the venue's positions (liquidation distance, margin ratio),
  and every placement's latency and outcome (:meth:`RiskGuard.observe_placements`);
* a trip: the breaker state is written to the state store FIRST (meta key ``risk_breakers|<symbol>``, so
  it is open again after a restart), then an alert is fired, then the opening orders are cancelled
  through the engine's ``cancel_opening`` (placement stays paused while any breaker is open,
  :attr:`RiskGuard.open`), then the position is kept or reduced as ``risk.on_trip`` says
  (:class:`~opensqt.engine.reducer.Reducer`; an unfinished reduction resumes on every breaker pass);
* the pre-trade check :meth:`RiskGuard.admit` (lock held, before intents are committed): an opening
  placement that would exceed a notional limit is :class:`~opensqt.risk.exposure.Denied` locally;
* alerts for a crashed loop, a feed down longer than ``alerts.disconnected_seconds`` and a slot
  UNRESOLVED longer than ``alerts.unresolved_seconds``;
* the volume-anomaly monitor and its feed (``risk.enabled``): :meth:`RiskGuard.risk_check` cancels the
  opening orders on its rising edge; :meth:`RiskGuard.spawn_loops` starts the breaker, trade and
  risk-check loops under the engine's supervisor.

The guard never talks to the venue under the engine lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import structlog

from cqc.portfolio.v1 import position_pb2
from cqvx.client import SupportsFundingRates, SupportsPositions, VenueClient
from cqvx.num import ZERO, dec_or_none, dec_str
from cqvx.symbols import parse_symbol
from opensqt.config import RiskConfig
from opensqt.engine.context import EngineStats, GridContext
from opensqt.engine.executor import OrderExecutor
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.price_monitor import PriceMonitor
from opensqt.engine.reducer import Reducer
from opensqt.engine.resyncer import Resyncer
from opensqt.engine.store import AsyncStore, StateStore
from opensqt.engine.supervisor import Supervisor
from opensqt.engine.volume_feed import VolumeFeed
from opensqt.model.slots import SlotState
from opensqt.observability.alerts import AlertRouter
from opensqt.observability.metrics import EngineMetrics
from opensqt.risk.breakers import BreakerBook, Kind, Trip
from opensqt.risk.exposure import AccountExposure, Denied, check_order
from opensqt.risk.funding import FundingSettlements, funding_paid
from opensqt.risk.volume import VolumeMonitor, VolumeSettings
from opensqt.strategy.grid import Place, is_opening

__all__ = ["RiskGuard", "meta_key", "reset_stored"]

log = structlog.get_logger("opensqt.risk")

_LIVE = (SlotState.PENDING, SlotState.LOCKED, SlotState.UNRESOLVED, SlotState.CANCEL_REQUESTED)


def meta_key(symbol: str) -> str:
    """Where a symbol's breaker state lives in the state store's meta table."""
    return f"risk_breakers|{symbol}"


def reset_stored(store: StateStore, config: RiskConfig, symbol: str, kind: Kind | None = None) -> list[Kind]:
    """The offline manual reset (``opensqt risk-reset``): close open breakers in the state store of a
    STOPPED engine (a running engine keeps its own state: use its API)."""
    raw = store.get_meta(meta_key(symbol))
    if not raw:
        return []
    book = BreakerBook(config.breakers)
    book.restore(json.loads(raw))
    closed = book.reset(kind)
    if closed:
        store.set_meta(meta_key(symbol), json.dumps(book.snapshot()))
    return closed


class RiskGuard:
    def __init__(
        self,
        ctx: GridContext,
        *,
        config: RiskConfig,
        client: VenueClient,
        ledger: SlotLedger,
        stats: EngineStats,
        metrics: EngineMetrics,
        store: AsyncStore,
        monitor: PriceMonitor,
        cancel_opening: Callable[[str], Awaitable[None]],
        alerts: AlertRouter,
        executor: OrderExecutor,
        resyncer: Resyncer,
        prices: Callable[[], Sequence[Decimal]],
        landing_window: float,
        account: AccountExposure | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.client = client
        self.ledger = ledger
        self.stats = stats
        self.metrics = metrics
        self._symbol_exposure = metrics.exposure.labels(symbol=ctx.symbol, scope="symbol")  # per tick
        self.store = store
        self.monitor = monitor
        self.alerts = alerts
        self.account = account
        self._cancel_opening = cancel_opening
        self._clock, self._wall = clock, wall
        self.book = BreakerBook(config.breakers)
        self.capital: Decimal | None = config.breakers.drawdown.capital if config.breakers.drawdown else None
        self.orders_down_since: float | None = None
        self.price_age: float | None = None
        self.liquidation_distance: Decimal | None = None
        self.leverage: Decimal | None = None
        self.funding_paid = ZERO  # since the engine started (quote units; negative: received)
        self._settlements = FundingSettlements()  # opensqt.risk.funding: the one estimate
        self.denied: dict[str, int] = {}
        self.last_denied: str = ""
        self._fills_seen = 0
        self.last_price_at = clock()  # a feed that never ticks ages from the start
        self._pending: list[Trip] = []
        self._lab = {"symbol": ctx.symbol}
        self.on_change: Callable[[], None] = lambda: None  # the engine emits its "risk" event here
        self.reducer = Reducer(
            ctx,
            config=config,
            client=client,
            executor=executor,
            store=store,
            resyncer=resyncer,
            prices=prices,
            alert=self._fire,
            wall=wall,
            landing_window=landing_window,
        )
        self.volume: VolumeMonitor | None = None
        self.volume_feed: VolumeFeed | None = None
        if config.enabled:
            self.volume = VolumeMonitor(
                config.monitor_symbols or [ctx.symbol],
                VolumeSettings(
                    window_seconds=float(config.window_seconds),
                    average_window=config.average_window,
                    volume_multiplier=config.volume_multiplier,
                    require_price_drop=config.require_price_drop,
                    recovery_threshold=config.recovery_threshold,
                    global_strategy=config.global_strategy,
                ),
            )
            self.volume_feed = VolumeFeed(self.volume, client, clock=clock, wall=wall)

    # ================================================================================ lifecycle

    async def load(self) -> None:
        """Restore the breakers from the store (an open breaker stays open across a restart)."""
        raw = await self.store.run(self.store.store.get_meta, meta_key(self.ctx.symbol))
        if raw:
            self.book.restore(json.loads(raw))
            for kind in self.book.open_kinds():
                log.warning(
                    "breaker open since before the restart",
                    breaker=kind,
                    detail=self.book.states[kind].detail,
                )
        await self.reducer.load()
        self._fills_seen = len(self.ledger.fills)
        if self.config.breakers.drawdown is not None and self.capital is None:
            quote = parse_symbol(self.ctx.symbol).quote
            total = ZERO
            for bal in await self.client.get_balances():
                if bal.asset == quote:
                    total += dec_or_none(bal.total, "total") or ZERO
            self.capital = total
        self._gauges()

    def spawn_loops(self, sup: Supervisor) -> None:
        """The breaker loop, and with the volume monitor its trade feeds and the risk check."""
        sup.every("breakers", float(self.config.breakers.interval_seconds), self.evaluate)
        feed = self.volume_feed
        if feed is not None:

            async def after_trade() -> None:
                await sup.guarded("risk check", self.risk_check)

            for sym in feed.monitor.symbols:
                sup.spawn(f"trades-{sym}", _bind_trades(feed, sym, after_trade))
            sup.every("risk check", feed.period, self.risk_check)

    async def risk_check(self) -> None:
        """Evaluate the volume monitor; on the rising edge cancel the opening orders (the original's
        CancelAllBuyOrders)."""
        if self.volume_feed is None:
            return
        edge = self.volume_feed.check()
        if edge is not None:
            self.on_change()
        if edge == "on" and self.ctx.rules is not None and self.ctx.anchor is not None:
            await self._cancel_opening("risk")

    async def _persist(self) -> None:
        await self.store.write(
            self.store.store.set_meta, meta_key(self.ctx.symbol), json.dumps(self.book.snapshot())
        )

    @property
    def open(self) -> bool:
        return self.book.open

    # ================================================================================ observations

    def price_seen(self, received: float) -> None:
        self.last_price_at = max(self.last_price_at, received)

    def order_stream_up(self) -> None:
        self.orders_down_since = None

    def order_stream_down(self) -> None:
        if self.orders_down_since is None:
            self.orders_down_since = self._clock()

    def crashed(self) -> None:
        """A background loop failed unexpectedly (the supervisor's ``on_unexpected``)."""
        self.stats.count_anomaly()
        self._fire(
            "strategy_crash", "critical", "strategy loop crashed", "a background loop failed; see the log"
        )

    async def observe_placements(self, elapsed_ms: float, rejected: Sequence[bool]) -> None:
        """One batch of placements: its latency and each outcome (True = rejected by the venue)."""
        now = self._clock()
        self._pending += self.book.latency(elapsed_ms, now)
        for r in rejected:
            self._pending += self.book.order_outcome(r, now)
        await self._settle()

    async def evaluate(self) -> None:
        """One pass of the breaker loop (every ``breakers.interval_seconds``)."""
        now = self._clock()
        book = self.book
        fills = self.ledger.fills
        for f in fills[self._fills_seen :]:
            if f.realized_pnl != 0:
                self._pending += book.round_trip(f.realized_pnl, now)
        self._fills_seen = len(fills)
        if self.capital is not None:
            equity = (
                self.capital
                + self.stats.realized_pnl
                + self.reducer.realized
                + self.ledger.unrealized_pnl(self.ctx.last_price)
            )
            self._pending += book.equity_at(equity, now)
        self.price_age = now - max(self.last_price_at, self.monitor.latest_at or 0.0)
        down = now - self.orders_down_since if self.orders_down_since is not None else None
        self._pending += book.feeds(self.price_age, down, now)
        await self._read_positions(now)
        self._watch(down)
        await self._settle(release=True)
        await self.reducer.resume()

    async def _read_positions(self, now: float) -> None:
        if (
            not isinstance(self.client, SupportsPositions)
            or not self.ctx.rules
            or not self.ctx.rules.derivatives
        ):
            return
        try:
            positions = await self.client.get_positions([self.ctx.symbol])
        except Exception as exc:  # a failed read is no evidence either way; the next pass retries
            log.warning("positions read failed", error=type(exc).__name__)
            return
        nearest: Decimal | None = None
        held, mark = ZERO, None
        for pos in positions:
            qty = dec_or_none(pos.quantity, "quantity")
            if not qty:
                continue
            held += -abs(qty) if pos.side == position_pb2.POSITION_SIDE_SHORT else qty
            mark = dec_or_none(pos.mark_price, "mark_price")
            liq = dec_or_none(pos.liquidation_price, "liquidation_price")
            if mark and liq:
                dist = abs(mark - liq) / mark * 100
                nearest = dist if nearest is None else min(nearest, dist)
            margin, maint = dec_or_none(pos.margin, "margin"), dec_or_none(pos.maintenance_margin, "mm")
            if margin and maint is not None:
                self.metrics.margin_ratio.labels(**self._lab).set(float(maint / margin))
        await self._read_funding(held, mark)
        self.liquidation_distance = nearest
        if nearest is not None:
            self.metrics.liquidation_distance.labels(**self._lab).set(float(nearest))
        self._pending += self.book.margin(nearest, now)

    async def _read_funding(self, held: Decimal, mark: Decimal | None) -> None:
        """Funding paid: at each settlement a reading shows (:mod:`opensqt.risk.funding`), the settled
        rate x the venue's signed position x the mark (a long pays a positive rate).  The position is
        the one read on the first pass after the settlement: one breaker interval late at most."""
        if not isinstance(self.client, SupportsFundingRates):
            return
        try:
            fr = await self.client.get_funding_rate(self.ctx.symbol)
        except Exception as exc:  # no evidence either way; the next pass reads again
            log.warning("funding rate read failed", error=type(exc).__name__)
            return
        settled = self._settlements.observe(fr)
        price = (settled.mark if settled is not None else None) or mark
        if settled is not None and held and price:
            self.funding_paid += funding_paid(held, price, settled.rate)
        self.metrics.funding_paid.labels(**self._lab).set(float(self.funding_paid))

    def _watch(self, orders_down: float | None) -> None:
        a = self.config.alerts
        limit = float(a.disconnected_seconds)
        if orders_down is not None and orders_down >= limit:
            self._fire(
                "disconnected:orders",
                "critical",
                "order stream disconnected",
                f"down for {orders_down:.0f} s",
            )
        if self.price_age is not None and self.price_age >= limit:
            self._fire(
                "disconnected:price", "critical", "price feed silent", f"no price for {self.price_age:.0f} s"
            )
        bound, now = float(a.unresolved_seconds), self._clock()
        stuck = [
            cid
            for cid, sent in self.ledger.sent_at.items()
            if now - sent >= bound
            and (slot := self.ledger.slot_for(cid)) is not None
            and slot.state is SlotState.UNRESOLVED
        ]
        if stuck:
            self._fire(
                "unresolved",
                "critical",
                "unresolved orders",
                f"{len(stuck)} placements unresolved for over {bound:.0f} s",
            )

    async def _settle(self, *, release: bool = False) -> None:
        trips, self._pending = self._pending, []
        released = self.book.release(self._clock()) if release else []
        if trips or released:
            await self._persist()  # durable before anything acts on it
        for t in trips:
            log.error("circuit breaker tripped", breaker=t.kind, detail=t.detail, symbol=self.ctx.symbol)
            self.metrics.breaker_trips.labels(symbol=self.ctx.symbol, breaker=t.kind).inc()
            self._fire(f"breaker:{t.kind}", "critical", f"circuit breaker tripped: {t.kind}", t.detail)
        for kind in released:
            log.warning("circuit breaker closed after its cool-down", breaker=kind, symbol=self.ctx.symbol)
            self._fire(
                f"breaker_closed:{kind}", "info", f"circuit breaker closed: {kind}", "cool-down passed"
            )
        self._gauges()
        if trips or released:
            self.on_change()
        if trips and self.ctx.anchor is not None and self.ctx.rules is not None:
            await self._cancel_opening("risk")
        if trips:
            await self.reducer.on_trip(trips[0].kind)

    async def reset(self, kind: Kind | None = None, *, operator: str = "") -> list[Kind]:
        """The manual reset (engine API, CLI, HTTP): close ``kind`` or every open breaker."""
        closed = self.book.reset(kind)
        if closed:
            await self._persist()
            log.warning("circuit breakers reset", breakers=closed, operator=operator, symbol=self.ctx.symbol)
            self._fire(
                "breaker_reset", "info", "circuit breakers reset", f"{', '.join(closed)} by {operator or '?'}"
            )
            self._gauges()
            self.on_change()
        return closed

    # ================================================================================ pre-trade

    def exposure(self, price: Decimal) -> Decimal:
        """|position| x price + the notional of the live opening orders (lock held)."""
        # One pass over the slots (the tick-to-order path); the sum is taken in the same order as
        # before (position first, then each opening order), so the Decimal result is the same.
        position = ZERO
        opening: list[Decimal] = []
        for s in self.ledger.slots.values():
            position += s.position
            if s.order is not None and s.state in _LIVE and is_opening(s):
                opening.append(s.order.remaining * s.order.price)
        total = abs(position) * price
        for notional in opening:
            total += notional
        return total

    def admit(self, places: Sequence[Place], price: Decimal) -> list[Place]:
        """The placements within the exposure limits (lock held); the others are denied and counted."""
        limits = self.config.exposure
        current = self.exposure(price)
        out: list[Place] = []
        for p in places:
            denied: Denied | None = check_order(
                limits,
                symbol=self.ctx.symbol,
                notional=p.quantity * p.price,
                opening=p.opening and not p.reduce_only,
                symbol_exposure=current,
                account=self.account,
            )
            if denied is None:
                out.append(p)
                if p.opening and not p.reduce_only:
                    current += p.quantity * p.price
                continue
            self.denied[denied.limit] = self.denied.get(denied.limit, 0) + 1
            self.last_denied = denied.detail
            self.metrics.denied.labels(symbol=self.ctx.symbol, limit=denied.limit).inc()
            self._fire(f"limit:{denied.limit}", "warning", f"order denied: {denied.limit}", denied.detail)
        self._publish_exposure(current)
        return out

    def _publish_exposure(self, notional: Decimal) -> None:
        if self.account is not None:
            self.account.publish(self.ctx.symbol, notional)
            self.metrics.exposure.labels(symbol=self.ctx.symbol, scope="account").set(
                float(self.account.total())
            )
        self._symbol_exposure.set(float(notional))

    # ================================================================================ views

    def _fire(self, key: str, severity: Any, title: str, text: str) -> None:
        kind = key.split(":", 1)[0]
        if self.alerts.fire(f"{key}:{self.ctx.symbol}", severity, title, text, symbol=self.ctx.symbol):
            self.metrics.alerts.labels(symbol=self.ctx.symbol, kind=kind).inc()

    def _gauges(self) -> None:
        for kind, st in self.book.states.items():
            self.metrics.breaker_open.labels(symbol=self.ctx.symbol, breaker=kind).set(1 if st.open else 0)
        if self.price_age is not None:
            self.metrics.feed_staleness.labels(symbol=self.ctx.symbol, feed="price").set(self.price_age)
        down = self._clock() - self.orders_down_since if self.orders_down_since is not None else 0.0
        self.metrics.feed_staleness.labels(symbol=self.ctx.symbol, feed="orders").set(down)

    def status(self) -> dict[str, Any]:
        return {
            "open": self.book.open_kinds(),
            "breakers": self.book.status(),
            "denied": dict(self.denied),
            "last_denied": self.last_denied,
            "price_age_seconds": round(self.price_age, 3) if self.price_age is not None else None,
            "liquidation_distance_percent": dec_str(self.liquidation_distance)
            if self.liquidation_distance is not None
            else None,
            "funding_paid": dec_str(self.funding_paid),
            "position_on_trip": self.reducer.record or None,
            "alerts": self.alerts.status(),
        }


def _bind_trades(
    feed: VolumeFeed, symbol: str, after: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    async def body() -> None:
        await feed.trades(symbol, after)

    return body
