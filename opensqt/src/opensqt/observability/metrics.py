"""The original ``market_maker_*`` metric set (reference §8), on a per-engine Prometheus registry.

Labels are bounded: ``symbol`` (configured instruments), ``side`` (buy/sell), ``reason`` / ``kind``
(fixed enums).  Never ids, prices or error text.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cqvx.transport.metrics import export_to

__all__ = ["EngineMetrics"]

log = structlog.get_logger("opensqt.metrics")

_MS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._refreshers: list[Callable[[], None]] = []  # see on_render
        export_to(self.registry)  # the venue transport's series (HTTP, breaker, WebSocket) on /metrics
        r = self.registry
        self.pnl_realized = Gauge(
            "market_maker_pnl_realized_total", "Realized PnL (quote)", ["symbol"], registry=r
        )
        self.pnl_unrealized = Gauge(
            "market_maker_pnl_unrealized", "Unrealized PnL at the last price (quote)", ["symbol"], registry=r
        )
        self.orders_active = Gauge("market_maker_orders_active", "Live orders", ["symbol"], registry=r)
        self.orders_placed = Counter(
            "market_maker_orders_placed", "Orders confirmed by the venue", ["symbol", "side"], registry=r
        )
        self.orders_filled = Counter(
            "market_maker_orders_filled", "Orders completely filled", ["symbol", "side"], registry=r
        )
        self.volume = Counter("market_maker_volume", "Filled base quantity", ["symbol", "side"], registry=r)
        self.position_size = Gauge(
            "market_maker_position_size", "Net position (base)", ["symbol"], registry=r
        )
        self.latency_exchange = Histogram(
            "market_maker_latency_exchange_ms",
            "Venue call latency",
            ["symbol", "op"],
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.latency_tick_to_trade = Histogram(
            "market_maker_latency_tick_to_trade_ms",
            "Price event to the place_order call",
            ["symbol"],
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.risk_triggered = Gauge(
            "market_maker_risk_triggered", "Risk monitor triggered", ["symbol"], registry=r
        )
        self.circuit_breaker_open = Gauge(
            "market_maker_circuit_breaker_open", "Circuit breaker open", ["symbol"], registry=r
        )
        self.volume_ratio = Gauge(
            "market_maker_volume_ratio",
            "Volume monitor: current window volume / baseline (monitored symbols)",
            ["symbol"],
            registry=r,
        )
        self.orders_cancelled = Counter(
            "market_maker_orders_cancelled",
            "Cancels sent, by reason (out_of_window, margin_lock, risk, cleanup, shutdown)",
            ["symbol", "reason"],
            registry=r,
        )
        self.reconcile_runs = Counter(
            "market_maker_reconcile_runs", "Reconciler passes", ["symbol", "status"], registry=r
        )
        self.reconcile_mismatches = Counter(
            "market_maker_reconcile_mismatches",
            "Reconciler findings (adopted, orphan, vanished, state, position)",
            ["symbol", "kind"],
            registry=r,
        )
        self.reconcile_last_mismatches = Gauge(
            "market_maker_reconcile_last_mismatches",
            "Findings of the last reconciler pass",
            ["symbol", "kind"],
            registry=r,
        )
        self.order_placements = Counter("order_placements", "Placement attempts", ["symbol"], registry=r)
        self.order_retries = Counter("order_retries", "Placement retries", ["symbol"], registry=r)
        self.order_failures = Counter(
            "order_failures", "Placements rejected or unresolved", ["symbol", "kind"], registry=r
        )
        self.price_updates = Counter(
            "workflow_price_updates", "Price ticks processed", ["symbol"], registry=r
        )
        self.order_updates = Counter(
            "workflow_order_updates", "Order reports processed", ["symbol"], registry=r
        )
        self.total_slots = Gauge("position_total_slots", "Slots", ["symbol"], registry=r)
        self.active_slots = Gauge(
            "position_active_slots", "Slots with an order or a position", ["symbol"], registry=r
        )
        self.margin_locked = Gauge("position_margin_locked", "Margin lock on", ["symbol"], registry=r)
        self.post_only_fallbacks = Gauge(
            "position_post_only_fallback_slots",
            "Slots placing plain limits after post-only rejects",
            ["symbol"],
            registry=r,
        )

        # Risk (docs/risk.md): breaker and feed labels are fixed enums.
        self.breaker_open = Gauge(
            "risk_breaker_open", "Circuit breaker open (1) by breaker", ["symbol", "breaker"], registry=r
        )
        self.breaker_trips = Counter(
            "risk_breaker_trips", "Circuit breaker trips", ["symbol", "breaker"], registry=r
        )
        self.feed_staleness = Gauge(
            "risk_feed_staleness_seconds",
            "Seconds since the price feed ticked / the order stream has been down (feed: price, orders)",
            ["symbol", "feed"],
            registry=r,
        )
        self.margin_ratio = Gauge(
            "risk_margin_ratio",
            "Maintenance margin / position margin (venue positions)",
            ["symbol"],
            registry=r,
        )
        self.liquidation_distance = Gauge(
            "risk_liquidation_distance_percent",
            "|mark - liquidation| / mark, percent",
            ["symbol"],
            registry=r,
        )
        self.funding_paid = Gauge(
            "risk_funding_paid",
            "Funding paid since the engine started, quote units (negative: received)",
            ["symbol"],
            registry=r,
        )
        self.exposure = Gauge(
            "risk_exposure_notional",
            "Exposure, quote notional (scope: symbol, account)",
            ["symbol", "scope"],
            registry=r,
        )
        self.denied = Counter(
            "risk_orders_denied", "Placements denied locally by a limit", ["symbol", "limit"], registry=r
        )
        self.alerts = Counter(
            "risk_alerts", "Alerts accepted by the router, by kind", ["symbol", "kind"], registry=r
        )

    def on_render(self, refresh: Callable[[], None]) -> Callable[[], None]:
        """Call ``refresh`` before every :meth:`render`: gauges derived from the engine's state (orders
        active, position, slots) are computed when they are read, not on every price tick (a pass over
        every slot per tick, off the tick-to-order path but on the orders/s one).  Returns the function
        that unregisters it (an engine that stopped keeps its last values, as before)."""
        refreshers = self._refreshers
        refreshers.append(refresh)

        def remove() -> None:
            if refresh in refreshers:
                refreshers.remove(refresh)

        return remove

    def render(self) -> bytes:
        for refresh in list(self._refreshers):
            try:
                refresh()
            except Exception:  # a failing view must not take /metrics down with it
                log.exception("metrics: refreshing gauges failed")
        return generate_latest(self.registry)
