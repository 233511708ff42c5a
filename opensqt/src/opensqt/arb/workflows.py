"""Entry and exit of a funding-arbitrage position as DBOS workflows: both legs or neither.

Rules:

* Workflow ids come from the intent: ``arb-entry:<account>:<spot>:<seq>`` and
  ``arb-exit:<account>:<spot>:<seq>:<try>`` (``seq`` numbers the positions of a pair, ``try`` the exit
  attempts of one position).  Starting an id again joins the first run; a killed process's unfinished
  workflows are resumed by ``DBOS.launch()`` (same set-up as the fleet's, :mod:`opensqt.engine.workflows`).
* Every order is one step keyed by a deterministic client order id (:func:`opensqt.arb.legs.leg_id`:
  epoch + workflow id + leg name + attempt); the epoch is a random token recorded once per system
  database (:func:`epoch_workflow`), so a fresh database never reuses an id an earlier one sent to the
  same venue (the venue would answer "duplicate" with the OLD order); the step looks the id up before
  placing (:func:`execute_leg`), so a step DBOS re-runs after a crash never places twice.  Quantities
  are decided in their own recorded steps.
* Entry, ``positive`` (collect a positive rate): BUY spot, then SELL perp sized from the spot leg's
  EXECUTED quantity (net of a fee charged in base), floored (:func:`hedge_quantity`).  ``negative``
  (collect a negative rate): SELL spot, then BUY perp; the spot SELL comes from existing inventory (at
  most ``spot_inventory`` and the free balance) or, with ``negative_mode: margin``, is a spot margin
  order that borrows the base (``Order.margin``; the decision is part of the recorded intent, and the
  unwind and the exit's spot BUY are margin orders too, so they repay the borrow).  A perp leg that
  fills only partly is sent again for the rest (``leg_attempts``).
* Compensation: whatever part of the spot leg the perp leg did not hedge is unwound (opposite spot side,
  id ``unwind`` + attempt); an unhedged remainder below the spot lot/minimum is reported as dust.  A
  failed or unfilled perp leg therefore leaves the pair flat.
* Exit: close the perp (reduce-only), then the spot sized from what the perp close EXECUTED (all of it
  once the perp is flat); what did not close stays an open position for the next exit attempt.
* Funding PnL is the venue's own accounting where the venue books funding into the perp position's
  realized PnL (it moves only by funding while the arbitrage holds it: read before the perp leg opens
  and again before the close); elsewhere the runner's figure (the venue's funding payments, or the
  estimate), passed in as ``funding_runner`` (an input: recorded).
* The funding estimate (``funding_pnl: estimate``) is durable too: each settlement the runner estimates
  while a position is open is recorded once by :func:`funding_workflow` under
  ``arb-funding:<account>:<spot>:<seq>:<settlement ns>`` (its input is its output: starting the id again
  returns the first record), and a restarted runner sums the records of the open position.
* Steps reach the live venue through :data:`_CONTEXTS` (by account): DBOS records arguments, and a venue
  client is not serialisable.
* One owner per account: with a ``fence`` in the context (``opensqt arb`` installs the account lease's,
  :mod:`opensqt.engine.lease`), the workflow checks that this process still holds an unexpired lease
  before every order step; fenced, it raises ``Fenced`` and places nothing (the workflow ends in error, the
  next owner's runner retries it, a fork of it, and looks its ids up).  The check is in the workflow body,
  not in the step: a check recorded as a failed step would be replayed as failed by a fork from after it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from dbos import DBOS

from cqvx.client import SupportsPositions, VenueClient
from cqvx.num import ZERO, dec, dec_str, round_quantity
from cqvx.symbols import parse_symbol
from opensqt.arb.config import ArbConfig
from opensqt.arb.legs import BUY, SELL, LegOrder, LegResult, execute_leg, leg_id
from opensqt.arb.sizing import LegRules, hedge_quantity, spot_quantity, unhedged_spot
from opensqt.engine.executor import OrderExecutor

__all__ = [
    "ArbContext",
    "entry_id",
    "entry_workflow",
    "epoch_workflow",
    "exit_id",
    "exit_workflow",
    "funding_id",
    "funding_prefix",
    "funding_workflow",
    "register",
    "unregister",
]

log = structlog.get_logger("opensqt.arb.workflows")


@dataclass
class ArbContext:
    """What the steps of one account need: the venue, its executor, instrument rules, the config, and the
    lease's fence (raises ``Fenced`` unless this process still owns the account; None = no lease)."""

    account: str
    client: VenueClient
    config: ArbConfig
    rules: dict[str, LegRules]
    fence: Callable[[], None] | None = None
    executor: OrderExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = OrderExecutor(self.client, max_retries=3, retry_delay=0.2)


_CONTEXTS: dict[str, ArbContext] = {}


def register(ctx: ArbContext) -> None:
    _CONTEXTS[ctx.account] = ctx


def unregister(account: str) -> None:
    _CONTEXTS.pop(account, None)


def _ctx(account: str) -> ArbContext:
    ctx = _CONTEXTS.get(account)
    if ctx is None:
        raise RuntimeError(f"no arbitrage context for account {account!r} in this process")
    return ctx


def entry_id(account: str, spot: str, seq: int) -> str:
    return f"arb-entry:{account}:{spot}:{seq}"


def exit_id(account: str, spot: str, seq: int, attempt: int) -> str:
    return f"arb-exit:{account}:{spot}:{seq}:{attempt}"


def funding_prefix(account: str, spot: str, seq: int) -> str:
    return f"arb-funding:{account}:{spot}:{seq}:"


def funding_id(account: str, spot: str, seq: int, at_ns: int) -> str:
    return f"{funding_prefix(account, spot, seq)}{at_ns}"


# ------------------------------------------------------------------------------------------ steps


@DBOS.step()
async def _new_epoch() -> str:
    return secrets.token_hex(6)


@DBOS.step(retries_allowed=True, max_attempts=5, interval_seconds=0.5)
async def _plan_spot(account: str, spot: str, direction: str, notional: str, margin: bool = False) -> str:
    """The spot leg's base quantity (recorded once): notional at the touch, floored to the lot; for a
    ``negative`` entry from inventory (not ``margin``) also capped by the inventory the config lends and
    the free balance (a margin sell borrows what it lacks: the venue refuses it beyond its limit)."""
    ctx = _ctx(account)
    rules = ctx.rules[spot]
    book = await ctx.client.get_order_book(spot, depth=1)
    levels = book.asks if direction == "positive" else book.bids
    if not levels:
        return "0"
    qty = spot_quantity(dec(notional), dec(levels[0].price, "price"), rules)
    if direction == "negative" and not margin:
        base = parse_symbol(spot).base
        free = ZERO
        for b in await ctx.client.get_balances():
            if b.asset == base:
                free = dec(b.available or "0", "available")
        cap = min(free, ctx.config.spot_inventory or ZERO)
        qty = min(qty, round_quantity(cap, rules.lot))
    return dec_str(qty)


@DBOS.step()
async def _leg(
    account: str, symbol: str, side: int, *, quantity: str, cid: str, reduce_only: bool, margin: bool = False
) -> dict[str, Any]:
    ctx = _ctx(account)
    rules, slippage = ctx.rules[symbol], ctx.config.max_slippage
    leg = LegOrder(symbol, side, dec(quantity), cid, rules, slippage, reduce_only=reduce_only, margin=margin)
    result = await execute_leg(ctx.client, ctx.executor, leg, landing_window=float(ctx.config.landing_window))
    log.info("arb leg", symbol=symbol, cid=cid, outcome=result.outcome, executed=dec_str(result.executed))
    return result.to_json()


@DBOS.step(retries_allowed=True, max_attempts=5, interval_seconds=0.5)
async def _perp_realized(account: str, perp: str) -> str:
    """The perp position's realized PnL at the venue (funding accrues into it while we hold)."""
    client = _ctx(account).client
    if not isinstance(client, SupportsPositions):
        return "0"
    for p in await client.get_positions([perp]):
        if p.symbol == perp:
            return dec_str(dec(p.realized_pnl or "0", "realized_pnl"))
    return "0"


# ------------------------------------------------------------------------------------------ helpers


async def _owned_leg(
    account: str, symbol: str, side: int, *, quantity: str, cid: str, reduce_only: bool, margin: bool = False
) -> dict[str, Any]:
    """The ownership check, then the leg step.  The check runs in the workflow body, NOT in a step, so it is
    evaluated again, live, whenever the workflow runs again (a recovery, a retry by fork)."""
    ctx = _ctx(account)
    if ctx.fence is not None:
        await asyncio.to_thread(ctx.fence)  # raises Fenced: another process owns the account now
    return await _leg(
        account, symbol, side, quantity=quantity, cid=cid, reduce_only=reduce_only, margin=margin
    )


def _held(result: LegResult, base: str) -> Decimal:
    """Base units a filled spot BUY leaves in the account (a fee charged in base is not held)."""
    if result.side == BUY and result.fee_asset == base:
        return max(ZERO, result.executed - result.fees)
    return result.executed


async def _fill(
    account: str,
    wid: str,
    leg: str,
    *,
    symbol: str,
    side: int,
    quantity: Decimal,
    reduce_only: bool = False,
    margin: bool = False,
) -> tuple[Decimal, list[dict[str, Any]]]:
    """Send ``quantity`` as IOC attempts until it executed or ``leg_attempts`` are spent (a partly filled
    IOC is sent again for the rest; a refused one is not); returns the total executed and every result."""
    ctx = _ctx(account)
    rules = ctx.rules[symbol]
    done, results = ZERO, list[dict[str, Any]]()
    for attempt in range(ctx.config.leg_attempts):
        rest = quantity - done
        if rest <= 0 or rest < rules.min_quantity or rest < rules.lot:
            break
        cid = leg_id(wid, leg, attempt, side)
        r = await _owned_leg(
            account, symbol, side, quantity=dec_str(rest), cid=cid, reduce_only=reduce_only, margin=margin
        )
        results.append(r)
        done += dec(r["executed"])
        if r["outcome"] in ("rejected", "lost"):  # refused or never landed: sending again cannot help
            break
    return done, results


def _flow(results: list[dict[str, Any]], quote: str) -> Decimal:
    """Quote cash flow of legs: sells bring quote in, buys pay it; fees in quote are paid."""
    total = ZERO
    for r in results:
        executed = dec(r["executed"])
        if executed and r["average_price"]:
            value = executed * dec(r["average_price"])
            total += value if r["side"] == SELL else -value
        if r["fee_asset"] == quote:
            total -= dec(r["fees"])
    return total


# ------------------------------------------------------------------------------------------ workflows


@DBOS.workflow()
async def epoch_workflow(account: str) -> str:
    """The account's id epoch: started under the fixed id ``arb-epoch:<account>``, so it runs once per
    system database and every later start returns the recorded token."""
    return await _new_epoch()


@DBOS.workflow()
async def funding_workflow(account: str, record: dict[str, Any]) -> dict[str, Any]:
    """One estimated settlement of an open position, ``{"at_ns", "amount"}`` (+ received): recorded by
    DBOS as this workflow's input and output under :func:`funding_id`, once."""
    return {"at_ns": int(record["at_ns"]), "amount": dec_str(dec(record["amount"], "amount"))}


@DBOS.workflow()
async def entry_workflow(account: str, intent: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(account)
    wid, spot, perp, direction = intent["id"], intent["spot"], intent["perp"], intent["direction"]
    key = f"{intent['epoch']}|{wid}"
    base, quote = parse_symbol(spot).base, parse_symbol(spot).quote
    spot_side, perp_side = (BUY, SELL) if direction == "positive" else (SELL, BUY)
    margin = bool(intent.get("margin", False))  # negative_mode: margin (decided by the runner: recorded)
    out: dict[str, Any] = {
        "id": wid, "epoch": intent["epoch"], "spot": spot, "perp": perp, "direction": direction, "legs": [],
        "margin": margin,
    }  # fmt: skip
    qty = dec(await _plan_spot(account, spot, direction, intent["notional"], margin))
    if qty <= 0:
        return {**out, "status": "flat", "reason": "nothing to trade (size or inventory is zero)"}
    cid = leg_id(key, "spot", 0, spot_side)
    first = LegResult.from_json(
        await _owned_leg(
            account, spot, spot_side, quantity=dec_str(qty), cid=cid, reduce_only=False, margin=margin
        )
    )
    out["legs"].append(first.to_json())
    held = _held(first, base)
    if held <= 0:
        return {**out, "status": "flat", "reason": f"spot leg {first.outcome}: {first.reason}"}
    if ctx.config.leg_pause > 0:
        await DBOS.sleep_async(float(ctx.config.leg_pause))
    target = hedge_quantity(held, ctx.rules[perp])
    hedged, perp_results = ZERO, list[dict[str, Any]]()
    baseline = "0"
    if ctx.rules[perp].tradable(target, first.average_price or Decimal(1)):
        # Read before the perp leg: opening a position realizes nothing, and a settlement that lands
        # between the leg's fill and a later read would otherwise be left out of the position's funding.
        baseline = await _perp_realized(account, perp)
        hedged, perp_results = await _fill(account, key, "perp", symbol=perp, side=perp_side, quantity=target)
    out["legs"].extend(perp_results)
    rest = unhedged_spot(held, hedged, ctx.rules[spot])
    unwound, unwinds = ZERO, list[dict[str, Any]]()
    if rest > 0:
        back = SELL if spot_side == BUY else BUY
        unwound, unwinds = await _fill(
            account, key, "unwind", symbol=spot, side=back, quantity=rest, margin=margin
        )
        out["legs"].extend(unwinds)
    spot_qty = held - unwound
    baseline = baseline if hedged > 0 else "0"
    status = "open" if hedged > 0 else "flat"
    if hedged == 0 and spot_qty > 0:
        status = "unhedged"  # the unwind could not sell everything: an operator must look (alerted)
    return {
        **out,
        "status": status,
        "spot_qty": dec_str(spot_qty),
        "perp_qty": dec_str(hedged),
        "dust": dec_str(spot_qty - hedged) if hedged > 0 else dec_str(spot_qty),
        "compensated": dec_str(unwound),
        "baseline_realized": baseline,
        "cash": dec_str(_flow(out["legs"], quote)),
        "reason": "" if hedged > 0 else "perp leg did not fill: spot leg unwound",
    }


@DBOS.workflow()
async def exit_workflow(account: str, position: dict[str, Any]) -> dict[str, Any]:
    """Close ``position`` (``{id, epoch, spot, perp, direction, spot_qty, perp_qty, baseline_realized}``,
    ``margin`` when the spot leg borrowed: its close is a margin BUY, which repays)."""
    wid, spot, perp = position["id"], position["spot"], position["perp"]
    key = f"{position['epoch']}|{wid}"
    quote = parse_symbol(spot).quote
    positive = position["direction"] == "positive"
    perp_qty, spot_qty = dec(position["perp_qty"]), dec(position["spot_qty"])
    realized = dec(await _perp_realized(account, perp))
    funding = realized - dec(position["baseline_realized"])
    if "funding_runner" in position:  # not booked into realized PnL there: the runner's figure
        funding = dec(position["funding_runner"])
    closed, perp_results = ZERO, list[dict[str, Any]]()
    if perp_qty > 0:
        closed, perp_results = await _fill(
            account,
            key,
            "close-perp",
            symbol=perp,
            side=BUY if positive else SELL,
            quantity=perp_qty,
            reduce_only=True,
        )
    perp_left = perp_qty - closed
    spot_target = spot_qty if perp_left <= 0 else min(spot_qty, closed)
    spot_done, spot_results = ZERO, list[dict[str, Any]]()
    if spot_target > 0:
        spot_done, spot_results = await _fill(
            account,
            key,
            "close-spot",
            symbol=spot,
            side=SELL if positive else BUY,
            quantity=spot_target,
            margin=bool(position.get("margin", False)),
        )
    legs = perp_results + spot_results
    spot_left = spot_qty - spot_done
    flat = perp_left <= 0 and spot_left < _ctx(account).rules[spot].lot
    if not flat and closed > 0:  # the close realized trade PnL: the next attempt's funding starts here
        realized = dec(await _perp_realized(account, perp))
    return {
        "id": wid,
        "spot": spot,
        "perp": perp,
        "direction": position["direction"],
        "status": "closed" if flat else "partial",
        "legs": legs,
        "spot_qty": dec_str(spot_left),
        "perp_qty": dec_str(perp_left),
        "funding": dec_str(funding),
        "baseline_realized": dec_str(realized),
        "cash": dec_str(_flow(legs, quote)),
    }
