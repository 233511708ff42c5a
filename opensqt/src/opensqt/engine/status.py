"""The status view of one engine: the ``/status`` dict, the open-order rows of the terminal view, and
the Prometheus gauges (the original ``market_maker_*`` set).

Read-only over the collaborators it is given: it never changes engine state.  Every label is a bounded
enum (symbol, side, kind).
"""

from __future__ import annotations

from typing import Any

from cqvx.num import dec_str
from opensqt.engine.context import EngineStats, GridContext, RiskGuards
from opensqt.engine.executor import OrderExecutor
from opensqt.engine.ledger import SlotLedger, side_name
from opensqt.engine.price_monitor import PriceMonitor
from opensqt.engine.reconciler import ReconcileStatus
from opensqt.observability.metrics import EngineMetrics

__all__ = ["StatusView"]


class StatusView:
    def __init__(
        self,
        ctx: GridContext,
        *,
        ledger: SlotLedger,
        stats: EngineStats,
        guards: RiskGuards,
        recon: ReconcileStatus,
        executor: OrderExecutor,
        monitor: PriceMonitor,
        metrics: EngineMetrics,
    ) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.stats = stats
        self.guards = guards
        self.recon = recon
        self.executor = executor
        self.monitor = monitor
        self.metrics = metrics
        self._labels = {"symbol": ctx.symbol}

    def update_gauges(self) -> None:
        m, lab, slots, g = self.metrics, self._labels, self.ledger.slots, self.guards
        active = sum(1 for s in slots.values() if s.order is not None)
        m.orders_active.labels(**lab).set(active)
        m.position_size.labels(**lab).set(float(self.ledger.position()))
        m.pnl_realized.labels(**lab).set(float(self.stats.realized_pnl))
        m.pnl_unrealized.labels(**lab).set(float(self.ledger.unrealized_pnl(self.ctx.last_price)))
        m.total_slots.labels(**lab).set(len(slots))
        m.active_slots.labels(**lab).set(sum(1 for s in slots.values() if s.order or s.position))
        m.margin_locked.labels(**lab).set(1 if g.margin_lock.locked else 0)
        m.risk_triggered.labels(**lab).set(1 if g.volume is not None and g.volume.triggered else 0)
        m.circuit_breaker_open.labels(**lab).set(1 if g.breaker.open else 0)
        if g.volume is not None:
            for sym, sv in g.volume.symbols.items():
                ratio = sv.ratio()
                m.volume_ratio.labels(symbol=sym).set(float(ratio) if ratio is not None else 0.0)
        for kind, n in self.recon.last.items():
            m.reconcile_last_mismatches.labels(symbol=self.ctx.symbol, kind=kind).set(n)
        limit = self.ctx.params.post_only_max_rejects
        m.post_only_fallbacks.labels(**lab).set(sum(1 for s in slots.values() if not s.use_post_only(limit)))

    def open_orders(self) -> list[dict[str, str]]:
        out = []
        for lvl, s in sorted(self.ledger.slots.items()):
            if s.order is not None:
                out.append(
                    {
                        "level": str(lvl),
                        "state": s.state.value,
                        "side": side_name(s.order.side),
                        "price": dec_str(s.order.price),
                        "quantity": dec_str(s.order.quantity),
                        "filled": dec_str(s.order.filled),
                        "client_order_id": s.order.client_order_id,
                    }
                )
        return out

    def status(self) -> dict[str, Any]:
        ctx, st, g, rec, slots = self.ctx, self.stats, self.guards, self.recon, self.ledger.slots
        states: dict[str, int] = {}
        for s in slots.values():
            states[s.state.value] = states.get(s.state.value, 0) + 1
        return {
            "symbol": ctx.symbol,
            "started": ctx.started,
            "anchor": dec_str(ctx.anchor) if ctx.anchor is not None else None,
            "price": dec_str(ctx.last_price) if ctx.last_price is not None else None,
            "slots": states,
            "open_orders": sum(1 for s in slots.values() if s.order is not None),
            "position": dec_str(self.ledger.position()),
            "realized_pnl": dec_str(st.realized_pnl),
            "unrealized_pnl": dec_str(self.ledger.unrealized_pnl(ctx.last_price)),
            "fills": st.fills,
            "placed": st.placed,
            "rejected": st.rejected,
            "unresolved": st.unresolved,
            "cancels": st.cancels,
            "anomalies": st.anomalies,
            "margin_locked": g.margin_lock.locked,
            "margin_lock_remaining": round(g.margin_lock.remaining, 3),
            "paused": g.paused,
            "cleaned": st.cleaned,
            "recovered_slots": st.recovered_slots,
            "risk": {
                "volume_monitor": g.volume.status() if g.volume is not None else {"enabled": False},
                "circuit_breaker": {
                    "open": g.breaker.open,
                    "reason": g.breaker.reason,
                    "detail": g.breaker.detail,
                    "trips": g.breaker.trips,
                },
            },
            "reconciler": {
                "status": rec.status,
                "runs": rec.runs,
                "last_duration_ms": rec.last_duration_ms,
                "last_error": rec.last_error,
                "last": rec.last,
                "totals": rec.totals,
                "local_position": rec.local_position,
                "venue_position": rec.venue_position,
                "awaiting_landing": rec.awaiting_landing,
                "late_adopted": rec.late_adopted,
                "late_cancelled": rec.late_cancelled,
            },
            "store": {"write_failures": self.ledger.store.write_failures},
            "executor": {
                "placed": self.executor.placed,
                "retries": self.executor.retries,
                "batch": self.executor.batch,
            },
            "price_monitor": self.monitor.status(),
            "startup_checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in ctx.checks],
        }
