"""The strategy runner: watch funding, start entry and exit workflows, keep each pair's state.

Rules:

* One workflow per pair at a time: a pair's loop awaits its workflow before deciding again, and the
  workflow ids are numbered per pair (:func:`entry_id`, :func:`exit_id`), so two processes on the same
  account join one run instead of racing.
* Restart: :meth:`ArbRunner.recover` rebuilds every pair from DBOS's record (the entry and exit
  workflows by id prefix), waiting for any the killed process left unfinished (``DBOS.launch()`` has
  resumed them).  A workflow that ended in ERROR is retried once per restart: DBOS does not resume a
  finished (ERROR) workflow, so it is FORKED from its failed step into ``<id>~<n>`` (n = 1, 2, ... one
  per restart; the steps before are copied, the inputs and therefore the legs' client order ids are the
  same, so a leg the failed run placed is found by lookup, never placed again).  Failing again, the pair
  stays halted (no new entry) until the next restart or an operator.
* Entry: the monitor's gate passes (rates and prices fresh), the direction is configured and
  ``|apr| >= entry_apr`` in that direction, the cooldown after the last exit is over.
* Exit: the rate in the position's direction fell below ``exit_apr``, or ``max_hold_seconds`` passed, or
  the entry left an unhedged remainder (close it at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from dbos import DBOS, SetWorkflowID, WorkflowHandleAsync

from cqvx.client import (
    SupportsFundingPayments,
    SupportsInstruments,
    SupportsPositions,
    VenueClient,
    supports_spot_margin,
)
from cqvx.errors import InvalidRequest, UnsupportedOperation, VenueError
from cqvx.num import ZERO, dec, dec_or_none, dec_str
from cqvx.timeutil import timestamp_from_datetime, to_datetime, to_ns
from opensqt.arb.config import ArbConfig, ConfigError
from opensqt.arb.monitor import FundingMonitor
from opensqt.arb.sizing import LegRules
from opensqt.arb.status import ArbMetrics, PairState
from opensqt.arb.workflows import (
    ArbContext,
    entry_id,
    entry_workflow,
    epoch_workflow,
    exit_id,
    exit_workflow,
    funding_id,
    funding_prefix,
    funding_workflow,
    register,
)
from opensqt.risk.funding import funding_paid

__all__ = ["ArbRunner", "funding_source", "load_rules"]

log = structlog.get_logger("opensqt.arb")

_UNFINISHED = ("PENDING", "ENQUEUED")


async def load_rules(client: VenueClient, symbols: list[str]) -> dict[str, LegRules]:
    """Tick, lot, minimums and contract size of each symbol from the venue's instrument list."""
    if not isinstance(client, SupportsInstruments):
        raise InvalidRequest(f"venue {client.venue} does not list instruments: lot sizes unknown")
    found = {i.symbol: i for i in await client.get_instruments(symbols)}
    out: dict[str, LegRules] = {}
    for s in symbols:
        i = found.get(s)
        if i is None:
            raise InvalidRequest(f"venue {client.venue} does not list {s}")
        out[s] = LegRules(
            tick=dec(i.tick_size, "tick_size"),
            lot=dec(i.lot_size, "lot_size"),
            min_quantity=dec_or_none(i.min_quantity, "min_quantity") or ZERO,
            min_notional=dec_or_none(i.min_notional, "min_notional") or ZERO,
            contract_size=dec_or_none(i.contract_size, "contract_size") or Decimal(1),
        )
    return out


# Venues whose perp position's realized PnL includes every funding payment (checked by the tests).
_BOOKS_FUNDING = frozenset({"sim"})


async def funding_source(config: ArbConfig, client: VenueClient, perp: str) -> str:
    """``payments`` (the venue lists the account's funding payments: asked once, a venue that cannot
    answers UnsupportedOperation), ``realized`` (the perp position's realized PnL) or ``estimate``."""
    if config.funding_pnl != "auto":
        return config.funding_pnl
    if isinstance(client, SupportsFundingPayments):
        try:
            await client.get_funding_payments(perp, start=datetime.now(UTC))
            return "payments"
        except UnsupportedOperation:
            pass
    return "realized" if client.venue in _BOOKS_FUNDING else "estimate"


async def _numbers(prefix: str) -> list[int]:
    """The distinct numbers ``n`` of the workflows ``<prefix><n>`` and their retries ``<prefix><n>~<r>``,
    ascending (for ``<id>~``: the retry numbers)."""
    found = await DBOS.list_workflows_async(workflow_id_prefix=prefix, load_input=False, load_output=False)
    out = set[int]()
    for w in found:
        head = w.workflow_id[len(prefix) :].split("~", 1)[0].split(":", 1)[0]
        if head.isdigit():
            out.add(int(head))
    return sorted(out)


class ArbRunner:
    def __init__(
        self,
        config: ArbConfig,
        client: VenueClient,
        account: str,
        *,
        metrics: ArbMetrics | None = None,
        publish: Callable[[str, dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fence: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.account = account
        self.metrics = metrics or ArbMetrics()
        self.publish = publish
        self.clock = clock
        self.monitor = FundingMonitor(
            {client.venue: client},
            {client.venue: list(config.pairs)},
            max_rate_age=config.max_rate_age,
            max_price_age=config.max_price_age,
            clock=clock,
        )
        self.funding_source = "realized"  # decided by prepare()
        self.pairs = {p.key: PairState(p.spot, p.perp) for p in config.pairs}
        self.context: ArbContext | None = None
        self.fence = fence
        self.epoch = ""
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------------------ start-up

    async def prepare(self) -> None:
        """Read instrument rules and register the workflows' context (before ``DBOS.launch()``, whose
        recovery runs steps that need it)."""
        if self.config.margin_shorts and not supports_spot_margin(self.client):
            # A connector's venue is known only now (its capabilities come from the server).
            raise ConfigError(
                f"arb.negative_mode: venue {self.client.venue!r} has no spot margin (CAPABILITY_SPOT_MARGIN"
                " missing); use negative_mode: inventory with arb.spot_inventory, or drop 'negative' from"
                " arb.directions"
            )
        symbols = [s for p in self.config.pairs for s in (p.spot, p.perp)]
        rules = await load_rules(self.client, symbols)
        self.funding_source = await funding_source(self.config, self.client, self.config.pairs[0].perp)
        for st in self.pairs.values():
            st.funding_source = self.funding_source
        self.context = ArbContext(self.account, self.client, self.config, rules, fence=self.fence)
        register(self.context)

    async def recover(self) -> None:
        """Rebuild every pair from the workflows DBOS recorded (waiting for unfinished ones)."""
        epoch = await self._run(f"arb-epoch:{self.account}", epoch_workflow, None)
        if not isinstance(epoch, str):
            raise RuntimeError("arb: the id epoch workflow failed")
        self.epoch = epoch
        for st in self.pairs.values():
            await self._recover_pair(st)
            self._show(st)

    async def _recover_pair(self, st: PairState) -> None:
        prefix = f"arb-entry:{self.account}:{st.spot}:"
        for seq in await _numbers(prefix):
            wid = entry_id(self.account, st.spot, seq)
            result = await self._result(wid)
            if result is None:
                st.state, st.halted_reason = "halted", f"{wid} ended in error"
                return
            self._entered(st, seq, result)
            for attempt in await _numbers(f"arb-exit:{self.account}:{st.spot}:{seq}:"):
                xid = exit_id(self.account, st.spot, seq, attempt)
                xres = await self._result(xid)
                if xres is None:
                    st.state, st.halted_reason = "halted", f"{xid} ended in error"
                    return
                self._exited(st, attempt, xres)
        if st.position is not None and self.funding_source == "estimate":
            await self._recover_estimate(st)

    async def _recover_estimate(self, st: PairState) -> None:
        """The open position's estimated settlements as the workflows recorded them (a killed process's
        estimate is not lost), less what its exit attempts already booked."""
        found = await DBOS.list_workflows_async(
            workflow_id_prefix=funding_prefix(self.account, st.spot, st.seq), load_input=False
        )
        for w in found:
            out = w.output
            if w.status in _UNFINISHED:  # resumed by DBOS.launch(): its record is its input
                out = await (await DBOS.retrieve_workflow_async(w.workflow_id)).get_result()
            elif w.status != "SUCCESS":
                continue
            if isinstance(out, dict):
                st.funding_estimated[int(out["at_ns"])] = dec(out["amount"], "amount")
        st.open_funding = sum(st.funding_estimated.values(), ZERO) - st.funding_counted

    async def _result(self, wid: str) -> dict[str, Any] | None:
        """The result of ``wid`` (or of its latest retry), waiting for an unfinished one and retrying one
        that ended in error once (see the module docstring); None when it fails."""
        retries = await _numbers(f"{wid}~")
        current = f"{wid}~{retries[-1]}" if retries else wid
        handle: WorkflowHandleAsync[dict[str, Any]] = await DBOS.retrieve_workflow_async(current)
        status = await handle.get_status()
        if status.status in _UNFINISHED:
            log.info("arb: waiting for a resumed workflow", workflow=current)
        elif status.status == "ERROR":
            steps = await DBOS.list_workflow_steps_async(current, load_output=False)
            failed = [s["function_id"] for s in steps if s["error"] is not None]
            # From the failed step; a failure in the workflow body (no step failed) re-runs it after the
            # last recorded step.
            start = min(failed) if failed else max((s["function_id"] for s in steps), default=0) + 1
            retry = f"{wid}~{(retries[-1] if retries else 0) + 1}"
            log.warning("arb: retrying a workflow that ended in error", workflow=current, retry=retry)
            with SetWorkflowID(retry):
                handle = await DBOS.fork_workflow_async(current, start)
        try:
            out: dict[str, Any] = await handle.get_result()
        except Exception as exc:  # the workflow raised: recorded as ERROR, the pair halts
            log.error("arb workflow failed", workflow=handle.get_workflow_id(), error=str(exc))
            return None
        return out

    # ------------------------------------------------------------------------------ bookkeeping

    def _entered(self, st: PairState, seq: int, result: dict[str, Any]) -> None:
        st.entries += 1
        st.history.append({"entry": seq, "status": result["status"], "reason": result.get("reason", "")})
        if dec(result.get("compensated", "0")) > 0:
            st.compensations += 1
        st.funding_counted, st.funding_since = ZERO, None
        st.funding_estimated = {}
        if result["status"] in ("open", "unhedged"):
            st.position, st.state, st.exit_try = dict(result), "open", 0
            st.open_cash, st.open_funding = dec(result["cash"]), ZERO
            st.opened_at = self.clock()
            st.seq = seq
        else:
            st.trading_pnl += dec(result.get("cash", "0"))
            st.position, st.state, st.seq = None, "flat", seq + 1
            st.closed_at = self.clock()

    def _exited(self, st: PairState, attempt: int, result: dict[str, Any]) -> None:
        st.exits += 1
        st.exit_try = attempt + 1
        st.funding_pnl += dec(result["funding"])
        st.funding_counted += dec(result["funding"])
        st.open_cash += dec(result["cash"])
        st.open_funding = ZERO
        st.history.append({"exit": st.seq, "try": attempt, "status": result["status"]})
        if result["status"] == "closed":
            st.trading_pnl += st.open_cash
            st.open_cash = ZERO
            st.position, st.state = None, "flat"
            st.funding_counted, st.funding_since = ZERO, None
            st.funding_estimated = {}
            st.seq += 1
            st.closed_at = self.clock()
        else:
            assert st.position is not None
            st.position = {
                **st.position,
                "spot_qty": result["spot_qty"],
                "perp_qty": result["perp_qty"],
                "baseline_realized": result["baseline_realized"],
            }

    def _show(self, st: PairState) -> None:
        view = self.monitor.view(self.client.venue, st.spot)
        self.metrics.observe(st, view, self.clock())
        if self.publish is not None:
            self.publish("arb", st.live(view))

    # ------------------------------------------------------------------------------ decisions

    def _wanted_direction(self, apr: Decimal) -> str | None:
        want = "positive" if apr > 0 else "negative"
        if want in self.config.directions and abs(apr) >= self.config.entry_apr:
            return want
        return None

    def _should_exit(self, st: PairState, apr: Decimal | None) -> str | None:
        if st.position is None:
            return None
        if st.position["status"] == "unhedged":
            return "unhedged remainder"
        hold = self.config.max_hold_seconds
        if hold is not None and st.opened_at is not None and self.clock() - st.opened_at >= float(hold):
            return "max hold time"
        if apr is None:
            return None
        collected = apr if st.direction == "positive" else -apr
        if collected < self.config.exit_apr:
            return f"rate {collected:.4f}/yr below exit_apr"
        return None

    async def step(self) -> None:
        """One decision round over every pair."""
        await self.monitor.refresh()
        for st in self.pairs.values():
            view = self.monitor.view(self.client.venue, st.spot)
            await self._estimate_funding(st)
            if st.state == "halted":
                self._show(st)
                continue
            if st.position is not None:
                await self._track_funding(st)
                why = self._should_exit(st, view.apr)
                if why is not None:
                    await self._exit(st, why)
            else:
                await self._maybe_enter(st, view.apr)
            self._show(st)

    async def _maybe_enter(self, st: PairState, apr: Decimal | None) -> None:
        if st.closed_at is not None and self.clock() - st.closed_at < float(self.config.cooldown_seconds):
            return
        block = self.monitor.gate(self.client.venue, st.spot)
        if block is not None:
            kind, st.last_block = block
            self.metrics.blocked.labels(st.spot, kind).inc()
            return
        direction = self._wanted_direction(apr) if apr is not None else None
        if direction is None:
            st.last_block = "rate below entry_apr (or its direction is not configured)"
            return
        st.last_block = ""
        wid = entry_id(self.account, st.spot, st.seq)
        intent: dict[str, Any] = {
            "id": wid,
            "spot": st.spot,
            "perp": st.perp,
            "direction": direction,
            "notional": str(self.config.notional),
            "epoch": self.epoch,
        }
        if direction == "negative" and self.config.margin_shorts:
            intent["margin"] = True  # the spot SELL borrows the base (spot margin), its BUYs repay
        st.state = "entering"
        self._show(st)
        log.info("arb entry", workflow=wid, direction=direction, apr=str(apr))
        result = await self._run(wid, entry_workflow, intent)
        if result is None:
            st.state, st.halted_reason = "halted", f"{wid} ended in error"
            return
        self._entered(st, st.seq, result)
        self.metrics.entries.labels(st.spot, direction, result["status"]).inc()
        if dec(result.get("compensated", "0")) > 0:
            self.metrics.compensations.labels(st.spot).inc()

    async def _exit(self, st: PairState, why: str) -> None:
        assert st.position is not None
        xid = exit_id(self.account, st.spot, st.seq, st.exit_try)
        st.state = "exiting"
        self._show(st)
        log.info("arb exit", workflow=xid, reason=why)
        position = {
            k: st.position[k]
            for k in ("epoch", "spot", "perp", "direction", "spot_qty", "perp_qty", "baseline_realized")
        }
        if st.position.get("margin"):
            position["margin"] = True  # the spot close is a margin BUY: it repays the borrowed base
        if self.funding_source in ("estimate", "payments"):
            position["funding_runner"] = dec_str(st.open_funding)
        result = await self._run(xid, exit_workflow, {**position, "id": xid})
        if result is None:
            st.state, st.halted_reason = "halted", f"{xid} ended in error"
            return
        self._exited(st, st.exit_try, result)
        self.metrics.exits.labels(st.spot, result["status"]).inc()

    async def _estimate_funding(self, st: PairState) -> None:
        """Every reading goes to the pair's settlement detector (a flat pair's sets the baseline); a
        settlement while a hedged position is held adds what the perp leg received (the estimate),
        recorded durably first (:func:`~opensqt.arb.workflows.funding_workflow`, once per settlement)."""
        view = self.monitor.view(self.client.venue, st.spot)
        if view.reading is None:
            return
        settled = st.settlements.observe(view.reading)
        if settled is None or self.funding_source != "estimate" or st.position is None:
            return
        price = settled.mark or (view.perp.mid if view.perp is not None else None)
        if not price:
            return
        _, perp_qty = st.quantities()
        held = -perp_qty if st.direction == "positive" else perp_qty  # positive: the perp is short
        record = {"at_ns": settled.at_ns, "amount": dec_str(-funding_paid(held, price, settled.rate))}
        fid = funding_id(self.account, st.spot, st.seq, settled.at_ns)
        recorded = await self._run(fid, funding_workflow, record)
        if recorded is None:
            return  # not recorded: not counted (logged by _run)
        st.funding_estimated[int(recorded["at_ns"])] = dec(recorded["amount"], "amount")
        st.open_funding = sum(st.funding_estimated.values(), ZERO) - st.funding_counted

    async def _track_funding(self, st: PairState) -> None:
        if self.funding_source == "estimate":
            return  # _estimate_funding
        if self.funding_source == "payments":
            await self._read_payments(st)
            return
        if not isinstance(self.client, SupportsPositions) or st.position is None:
            return
        try:
            for p in await self.client.get_positions([st.perp]):
                if p.symbol == st.perp:
                    realized = dec(p.realized_pnl or "0", "realized_pnl")
                    st.open_funding = realized - dec(st.position["baseline_realized"])
        except VenueError as exc:
            log.warning("arb: position read failed", pair=st.spot, error=str(exc))

    async def _read_payments(self, st: PairState) -> None:
        """The open position's funding: the venue's payments on the perp since its first perp fill (that
        order's venue time), less what earlier exit attempts of the position already booked."""
        if not isinstance(self.client, SupportsFundingPayments) or st.position is None:
            return
        try:
            if st.funding_since is None:
                st.funding_since = await self._first_perp_fill(st)
            if st.funding_since is None:
                return
            since = st.funding_since
            paid = await self.client.get_funding_payments(st.perp, start=since)
        except VenueError as exc:
            log.warning("arb: funding payments read failed", pair=st.spot, error=str(exc))
            return
        floor = to_ns(timestamp_from_datetime(since))
        total = sum((dec(t.amount, "amount") for t in paid if to_ns(t.timestamp) >= floor), ZERO)
        st.open_funding = total - st.funding_counted

    async def _first_perp_fill(self, st: PairState) -> datetime | None:
        assert st.position is not None
        for leg in st.position["legs"]:
            if leg["symbol"] == st.perp and dec(leg["executed"]) > 0:
                order = await self.client.get_order(symbol=st.perp, client_order_id=leg["cid"])
                return to_datetime(order.created_at)
        return None

    async def _run(self, wid: str, func: Any, arg: dict[str, Any] | None) -> Any:
        with SetWorkflowID(wid):
            if arg is None:
                handle = await DBOS.start_workflow_async(func, self.account)
            else:
                handle = await DBOS.start_workflow_async(func, self.account, arg)
        try:
            out = await handle.get_result()
        except Exception as exc:
            log.error("arb workflow failed", workflow=wid, error=str(exc))
            return None
        return out

    # ------------------------------------------------------------------------------ loop

    def stop(self) -> None:
        self._stop.set()

    async def run(self, duration: float | None = None) -> None:
        deadline = None if duration is None else self.clock() + duration
        while not self._stop.is_set():
            if deadline is not None and self.clock() >= deadline:
                return
            try:
                await self.step()
            except VenueError as exc:  # a read failed: the monitor ages, the next round retries
                log.warning("arb round failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=float(self.config.poll_interval))

    def status(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "account": self.account,
            "venue": self.client.venue,
            "pairs": [
                st.to_json(self.monitor.view(self.client.venue, st.spot), now) for st in self.pairs.values()
            ],
        }
