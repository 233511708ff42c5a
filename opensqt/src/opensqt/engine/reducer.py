"""Reduce the position when a circuit breaker trips (``risk.on_trip``, docs/risk.md "Position on a trip").

``keep`` (default) leaves the position alone.  ``reduce`` brings it down to ``reduce_to_percent`` of its
size at the trip, ``close`` to zero.  Derivatives only (spot has no reduce-only orders): on spot the
position is kept and an alert says so.

Rules (the order of operations is what makes a restart safe):

1. the venue's ACTUAL position is read (``get_positions``, never the engine's own slots); a failed
   read, or a venue that cannot report positions, reduces nothing (no evidence is not "flat");
2. the target (signed) is fixed once, at the trip (:func:`reduction_target`): the reduction
   ``position x (1 - reduce_to_percent / 100)`` floored to the lot, never rounded up;
3. every order of ours is cancelled first (the grid's closing orders too: they would reduce the same
   position a second time), through the resyncer's cancel path;
4. each attempt: the venue's position is read again, ``|position| - |target|`` floored to the lot is
   what is left (nothing when the position shrank past the target or flipped); a reduce-only LIMIT IOC
   is sent at the slippage guard's bound (:func:`opensqt.risk.slippage.worst_price`; denied = nothing
   is sent, the next breaker pass tries again), under the deterministic client order id
   ``reduce_client_order_id(namespace, seq, attempt)``;
5. the attempt is written to the state store (meta ``risk_reduce|<symbol>``) BEFORE it is sent; an
   outcome not known (a lost reply, a restart mid-send) is looked up by that id on the next pass, never
   sent again; "not found" proves nothing until the landing window has passed since the send; an IOC
   found still working is cancelled by its id before anything else is sent;
6. at most ``max_attempts`` IOC orders (partial fills); then the venue's position is adopted into the
   slots (the resyncer, audited as operator ``risk``), so the grid and the venue agree again;
7. an alert reports the result (``reduce``: from, to, attempts), or why nothing could be done.

The same close path settles a removed symbol's position (``opensqt symbols remove --position close``, the
remove workflow's settle step, engine/fleet.py ``Fleet.settle``): :meth:`Reducer.close` keyed by the
removal's intent, so a step re-run after a kill -9 resumes that reduction instead of starting another.

A restart with a reduction not ``done`` resumes it on the first breaker pass (steps 4-7 after the
unresolved attempts are settled).  The realized PnL of the reductions (fill price vs the venue's entry
price at the trip, fees not included) is kept in the record and counted in the drawdown's equity.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import structlog

from cqc.venues.v1 import order_pb2
from cqvx.client import SupportsPositions, VenueClient
from cqvx.errors import VenueError
from cqvx.num import ZERO, dec_str, round_quantity
from cqvx.types import TERMINAL_STATUSES
from opensqt.config import RiskConfig
from opensqt.engine.context import GridContext
from opensqt.engine.executor import Confirmed, OrderExecutor, Rejected, VenueOrderState
from opensqt.engine.resyncer import Resyncer, ResyncRefused
from opensqt.engine.store import AsyncStore
from opensqt.engine.venue_queries import venue_inventory
from opensqt.model.client_ids import reduce_client_order_id
from opensqt.risk.exposure import Denied
from opensqt.risk.slippage import book_levels, volatility_percent, worst_price

__all__ = ["Reducer", "reduce_key", "reduction_target"]

log = structlog.get_logger("opensqt.risk")

Alert = Callable[[str, str, str, str], None]  # key, severity, title, text


def reduce_key(symbol: str) -> str:
    """Where a symbol's reduction record lives in the state store's meta table."""
    return f"risk_reduce|{symbol}"


def reduction_target(position: Decimal, keep: Decimal, lot_size: Decimal) -> Decimal:
    """The signed position to reduce to: the reduction ``|position| x (1 - keep)`` floored to the lot
    (never more than configured is sold or bought back), the rest kept."""
    cut = round_quantity(abs(position) * (1 - keep), lot_size)
    return (abs(position) - cut) * (1 if position >= 0 else -1)


class Reducer:
    def __init__(
        self,
        ctx: GridContext,
        *,
        config: RiskConfig,
        client: VenueClient,
        executor: OrderExecutor,
        store: AsyncStore,
        resyncer: Resyncer,
        prices: Callable[[], Sequence[Decimal]],
        alert: Alert,
        wall: Callable[[], float],
        landing_window: float,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.client = client
        self.executor = executor
        self.store = store
        self.resyncer = resyncer
        self._prices = prices
        self._alert = alert
        self._wall = wall
        self.landing_window = landing_window
        self.record: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return bool(self.record) and self.record.get("state") != "done"

    @property
    def realized(self) -> Decimal:
        """Realized PnL of every reduction so far (quote units, fees not included)."""
        return Decimal(str(self.record.get("realized_total") or "0"))

    async def load(self) -> None:
        raw = await self.store.run(self.store.store.get_meta, reduce_key(self.ctx.symbol))
        self.record = json.loads(raw) if raw else {}
        if self.active:
            log.warning("position reduction unfinished before the restart; resuming", record=self.record)

    async def _persist(self) -> None:
        await self.store.write(
            self.store.store.set_meta, reduce_key(self.ctx.symbol), json.dumps(self.record)
        )

    # ------------------------------------------------------------------------------ entry points

    async def on_trip(self, kind: str) -> None:
        """A breaker tripped: start a reduction (unless one is running, or the config keeps)."""
        mode = self.config.on_trip.position
        if mode == "keep" or self._lock.locked():
            return
        async with self._lock:
            if self.active:
                await self._run()
                return
            await self._begin(mode, kind, None)

    async def close(self, intent: str, reason: str) -> dict[str, Any]:
        """Close the position for an operator's ``intent`` (a symbol's removal: its workflow id), through
        the same path as a trip's ``close``.  Idempotent per intent: run again (a kill -9 mid-way, the
        workflow step re-run) it resumes that intent's reduction, never starts a second one.  An earlier
        reduction still unfinished is resumed first; while it is, nothing new starts.  Returns a summary:
        ``state`` ``done`` (the record's figures), ``running``/``adopting`` (not finished yet: call again),
        ``flat`` (nothing held at the venue), ``kept`` (``detail`` says why nothing can be done)."""
        async with self._lock:
            if self.active or self.record.get("trip") == intent:
                if self.active:
                    await self._run()
                if self.record.get("trip") == intent or self.active:
                    return self._summary()
            kept = await self._begin("close", intent, reason)
        if kept is not None:
            return {"state": kept[0], "detail": kept[1]}
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        rec = self.record
        filled = sum((Decimal(a.get("filled") or "0") for a in rec.get("attempts", [])), ZERO)
        return {
            "state": rec.get("state"),
            "intent": rec.get("trip"),
            "start": rec.get("start"),
            "target": rec.get("target"),
            "attempts": [a["cid"] for a in rec.get("attempts", [])],
            "filled": dec_str(filled),
            "detail": rec.get("detail") or "",
        }

    async def _begin(self, mode: str, trip: str, reason: str | None) -> tuple[str, str] | None:
        """Read the venue's position, fix the target once, persist the record, run the first pass.
        Returns (``flat`` | ``kept``, why) when there is nothing to reduce or it cannot be done."""
        rules = self.ctx.rules
        if rules is None:
            return ("kept", "the instrument's rules are not loaded")
        if not rules.derivatives or not isinstance(self.client, SupportsPositions):
            self._alert("reduce", "warning", "position kept", f"{mode} needs a derivatives venue")
            return ("kept", f"{mode} needs a derivatives venue (spot has no reduce-only orders)")
        try:
            qty, entry = await venue_inventory(
                self.client, self.ctx.symbol, rules, base_reserve=None, held=ZERO
            )
        except (VenueError, ValueError) as exc:
            self._alert("reduce", "critical", "position not reduced", f"positions unreadable: {exc}"[:300])
            return ("kept", f"positions unreadable: {exc}"[:300])
        if qty == 0:
            return ("flat", "the venue holds no position")  # nothing to reduce
        keep = ZERO if mode == "close" else self.config.on_trip.reduce_to_percent / 100
        target = reduction_target(qty, keep, rules.lot_size)
        self.record = {
            "seq": int(self.record.get("seq") or 0) + 1,
            "trip": trip,
            "reason": reason,
            "mode": mode,
            "start": dec_str(qty),
            "entry": dec_str(entry) if entry is not None else None,
            "target": dec_str(target),
            "state": "running",
            "attempts": [],
            "detail": "",
            "realized_total": self.record.get("realized_total") or "0",
        }
        await self._persist()
        log.warning("reducing the position", trip=trip, reason=reason, mode=mode, position=dec_str(qty))
        await self._run()
        return None

    async def resume(self) -> None:
        """Every breaker pass: continue an unfinished reduction (after a restart, a lost reply, a denial)."""
        if not self.active or self._lock.locked():
            return
        async with self._lock:
            await self._run()

    # ------------------------------------------------------------------------------ the work

    async def _run(self) -> None:
        rec, rules = self.record, self.ctx.rules
        if rules is None:
            return
        if rec["state"] == "running":
            # Every pass (a restart may have cut the first one short): no order of ours may reduce the
            # same position beside the IOC orders.  Idempotent: nothing left = nothing sent.
            await self.resyncer.canceller.cancel_everything("risk")
            if not await self._settle_attempts():
                return  # an outcome is still unknown: looked up again on the next pass
            while len(rec["attempts"]) < self.config.on_trip.max_attempts:
                sent = await self._attempt()
                if sent is None:
                    return  # could not send now (read failed, denied, outcome unknown): next pass
                if not sent:
                    break  # nothing left to reduce, or the venue refused
            rec["state"] = "adopting"
            await self._persist()
        try:
            reason = rec.get("reason") or f"position {rec['mode']} after the {rec['trip']} trip"
            await self.resyncer.run("risk", reason)
        except ResyncRefused as exc:
            rec["detail"] = str(exc)[:300]
            log.warning("reduction done; adopting the position waits", reason=rec["detail"])
            return
        except VenueError as exc:
            log.warning("reduction done; adopting the position failed, retried", error=str(exc)[:200])
            return
        rec["state"] = "done"
        await self._persist()
        filled = sum((Decimal(a.get("filled") or "0") for a in rec["attempts"]), ZERO)
        self._alert(
            f"reduce:{rec['seq']}",
            "critical",
            rec.get("reason")
            or f"position {'closed' if rec['mode'] == 'close' else 'reduced'} after the {rec['trip']} trip",
            f"from {rec['start']} towards {rec['target']}: {dec_str(filled)} in {len(rec['attempts'])}"
            f" IOC orders{'; ' + rec['detail'] if rec['detail'] else ''}",
        )

    async def _settle_attempts(self) -> bool:
        """Look up every attempt whose outcome is not known; True when all are known."""
        for a in self.record["attempts"]:
            if a["status"] not in ("sending", "open"):
                continue
            try:
                found = await self.executor.lookup(self.ctx.symbol, a["cid"], a.get("order_id") or "")
            except VenueError as exc:
                log.warning("reduction lookup failed; retried", cid=a["cid"], error=str(exc)[:200])
                return False
            if found is None:
                if self._wall() - float(a["sent_at"]) < self.landing_window:
                    return False
                a["status"] = "absent"  # never landed: the next attempt has its own id
            else:
                self._apply(a, found)
                if a["status"] == "open":
                    # An IOC still working (a venue that rests it): cancel it by its id; the next pass
                    # reads the outcome.  Never a second order while this one may fill.
                    await self._persist()
                    await self.executor.cancel_many(self.ctx.symbol, [a["cid"]])
                    return False
            await self._persist()
        return True

    async def _attempt(self) -> bool | None:
        """One IOC order.  True: sent and settled; False: nothing (more) to do; None: try again later."""
        rec, rules = self.record, self.ctx.rules
        assert rules is not None and isinstance(self.client, SupportsPositions)
        start, target = Decimal(rec["start"]), Decimal(rec["target"])
        try:
            qty, _ = await venue_inventory(self.client, self.ctx.symbol, rules, base_reserve=None, held=ZERO)
            book = await self.client.get_order_book(self.ctx.symbol)
            bids, asks = book_levels(book)
        except (VenueError, ValueError) as exc:
            log.warning("reduction: venue read failed; retried", error=str(exc)[:200])
            return None
        same_side = (qty > 0) == (start > 0) and qty != 0
        left = round_quantity(abs(qty) - abs(target), rules.lot_size) if same_side else ZERO
        if left <= 0 or left < rules.min_quantity:
            return False
        is_buy = start < 0
        prices = self._prices()[-self.config.slippage.volatility_window :]
        bound = worst_price(
            self.config.slippage,
            is_buy=is_buy,
            bids=bids,
            asks=asks,
            tick_size=rules.tick_size,
            volatility=volatility_percent(prices),
        )
        if isinstance(bound, Denied):
            rec["detail"] = bound.detail
            await self._persist()
            self._alert("reduce_denied", "critical", "position reduction held back", bound.detail)
            return None
        cid = reduce_client_order_id(self.ctx.namespace, int(rec["seq"]), len(rec["attempts"]))
        attempt: dict[str, Any] = {
            "cid": cid,
            "qty": dec_str(left),
            "price": dec_str(bound.price),
            "status": "sending",
            "filled": "0",
            "sent_at": self._wall(),
        }
        rec["attempts"].append(attempt)
        await self._persist()  # durable before the venue sees it
        msg = order_pb2.Order(
            client_order_id=cid,
            symbol=self.ctx.symbol,
            side=order_pb2.ORDER_SIDE_BUY if is_buy else order_pb2.ORDER_SIDE_SELL,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_IOC,
            quantity=dec_str(left),
            price=dec_str(bound.price),
            reduce_only=True,
            strategy_id=self.ctx.strategy_tag,
        )
        (outcome,) = await self.executor.place([msg])
        if isinstance(outcome, Confirmed):
            self._apply(attempt, outcome.state)
        elif isinstance(outcome, Rejected):
            attempt["status"] = "rejected"
            rec["detail"] = f"rejected: {outcome.error.message}"[:300]
        await self._persist()
        if isinstance(outcome, Rejected):
            self._alert("reduce_rejected", "critical", "position reduction rejected", rec["detail"])
            return False
        if attempt["status"] in ("sending", "open"):
            return None if not await self._settle_attempts() else True
        return True

    def _apply(self, attempt: dict[str, Any], state: VenueOrderState) -> None:
        attempt["order_id"] = state.order_id
        attempt["status"] = "final" if state.status in TERMINAL_STATUSES else "open"
        filled = state.cumulative - Decimal(attempt.get("filled") or "0")
        attempt["filled"] = dec_str(state.cumulative)
        entry = self.record.get("entry")
        if filled > 0 and entry is not None and state.average_price is not None:
            long = Decimal(self.record["start"]) > 0
            pnl = (state.average_price - Decimal(entry)) * filled * (1 if long else -1)
            self.record["realized_total"] = dec_str(Decimal(self.record.get("realized_total") or "0") + pnl)
