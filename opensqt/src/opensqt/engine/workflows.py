"""DBOS workflows for the fleet's multi-step operations: add a symbol, remove a symbol, cancel-all on a
risk trip, position recovery.

Rules:

* One DBOS runtime per process (DBOS is a process singleton), system database = ``state.url``'s server
  for PostgreSQL, a SQLite file next to the state by default.  :class:`Durable` launches it AFTER the
  fleet exists (``DBOS.launch()`` resumes the workflows a killed process left unfinished, and their steps
  need the fleet) and BEFORE the fleet starts its symbols.
* One DBOS application per ACCOUNT (:func:`dbos_app_name`): DBOS recovers a killed process's workflows
  by putting them back on a queue that every process of the same application on the same system
  database dequeues from.  Under one shared name, another account's fleet (or any other opensqt process
  on that server) took a recovered workflow, found no fleet for its account and recorded it as failed
  for good: the re-sent request then answered HTTP 500 forever, a failed position recovery restarted its
  symbol forever.  DBOS scopes recovery and dequeueing by application name (and hashes the name into the
  application version), so only the account's own fleet or CLI runs its workflows.
* Workflow ids are derived from the intent, never random: ``add:<account>:<symbol>:<request>``,
  ``remove:<account>:<symbol>:<request>``, ``cancel-all:<account>:<trip>``,
  ``recover-position:<account>:<symbol>:<store epoch>`` (a store's position is taken over once); an
  individual cancel inside a workflow is keyed by its client order id.  A removal written to the
  registry (``opensqt symbols remove``, applied by the CLI itself or by the running fleet's watcher) has
  the request
  ``registry-<ms of the registry change>``: the CLI and the fleet derive the same id from the same
  change.  Starting the same id again returns the first run's result
  (or joins it): a replay never makes a second side effect.  The caller chooses ``request`` (the HTTP
  request id, the risk trip's id); the same operator request retried uses the same id.
* Every step is idempotent on its own too (DBOS runs a step again when the process died inside it):
  registry writes are upserts, stopping a stopped symbol is a no-op, cancelling an order that is already
  gone is answered by the venue and recorded, never retried blindly.
* A workflow whose id is fixed per store (the position recovery) never ends in a venue error: its
  failure would be the answer to every later start.  A failed venue read is tried again after a durable
  sleep inside the workflow (:func:`recover_position_workflow`).
* The grid's single-step order intents do NOT run here: they stay on the intent-first store (see
  docs/engine.md "DBOS workflows", the measured decision).
* Workflows reach the live fleet through :data:`_FLEETS` (by account): DBOS records arguments, and a
  fleet is not serialisable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from dbos import DBOS, SetWorkflowID

from cqvx.errors import VenueError
from cqvx.num import dec_str
from cqvx.types import OPEN_STATUSES, OrderFilter
from opensqt.engine.fleet import Fleet
from opensqt.engine.recovery import Recovery
from opensqt.engine.symbols import SymbolEntry
from opensqt.model.client_ids import is_our_client_order_id

__all__ = ["POSITION_MODES", "Durable", "dbos_app_name", "registry_request", "system_database_url"]

log = structlog.get_logger("opensqt.workflows")

_FLEETS: dict[str, Fleet] = {}

# What a removal does with the symbol's position: leave it (default) or close it (engine/reducer.py).
POSITION_MODES = ("keep", "close")


def system_database_url(state_url: str, state_path: Path) -> str:
    """DBOS's system database: a SQLite file beside the state by default; for a PostgreSQL state, a
    database of its own on the same server (``<db>_dbos``), created by DBOS when missing."""
    if state_url.startswith("postgresql"):
        base, _, db = state_url.replace("postgresql+psycopg:", "postgresql:", 1).rpartition("/")
        return f"{base}/{db.split('?')[0]}_dbos"
    return f"sqlite:///{state_path.resolve().with_suffix('.dbos.db')}"


def dbos_app_name(account: str) -> str:
    """The account's DBOS application name (DBOS allows ``[a-z0-9-_]``, 3-256 characters; an account key
    may hold anything, so it is hashed)."""
    return f"opensqt-{hashlib.sha256(account.encode()).hexdigest()[:20]}"


def registry_request(entry: SymbolEntry) -> str:
    """The request part of a workflow id asked for by a registry change (``set_status`` leaves
    ``updated_at`` alone when the status does not change, so the same change gives the same id)."""
    return f"registry-{round(entry.updated_at * 1000)}"


def _fleet(account: str) -> Fleet:
    fleet = _FLEETS.get(account)
    if fleet is None:
        raise RuntimeError(f"no fleet for account {account!r} in this process")
    return fleet


# ------------------------------------------------------------------------------------------ steps


@DBOS.step()
async def _register(account: str, symbol: str, status: str, overrides: dict[str, Any] | None) -> str:
    reg = _fleet(account).registry
    if status == "active" and overrides is not None:
        await asyncio.to_thread(reg.add, symbol, overrides)
    else:
        await asyncio.to_thread(reg.set_status, symbol, status)  # type: ignore[arg-type]
    return status


@DBOS.step()
async def _apply(account: str, symbol: str) -> str:
    """Make the running engines match the registry; returns the symbol's state afterwards."""
    fleet = _fleet(account)
    await fleet.sync()
    return await fleet.settled(symbol)


@DBOS.step()
async def _our_open_orders(account: str, symbol: str) -> list[str]:
    """Client order ids of OUR orders still open at the venue for ``symbol`` (recorded once: a replay
    sees the same list)."""
    orders = await _fleet(account).client.get_orders(OrderFilter(symbol=symbol))
    return sorted(
        o.client_order_id
        for o in orders
        if o.status in OPEN_STATUSES and is_our_client_order_id(o.client_order_id)
    )


@DBOS.step()
async def _cancel(account: str, symbol: str, cid: str) -> str:
    """Cancel one order by client order id; the venue's answer (or refusal) is the recorded result."""
    try:
        order = await _fleet(account).client.cancel_order(symbol=symbol, client_order_id=cid)
    except VenueError as exc:  # already gone / not found: recorded, not retried (lookups settle it)
        return f"refused:{exc.kind.value}"
    return f"status:{int(order.status)}"


@DBOS.step()
async def _drain(account: str, symbol: str) -> int:
    """Orders the symbol's slots still hold with no engine here to cancel them (see Fleet.drain)."""
    return await _fleet(account).drain(symbol)


@DBOS.step()
async def _settle(account: str, symbol: str, intent: str) -> dict[str, Any]:
    """Close the removed symbol's position (Fleet.settle, engine/reducer.py's close path).  Re-run after
    a kill -9 inside, it resumes the same intent's reduction: every attempt was written to the state
    store before it was sent, and an unknown outcome is looked up, never sent again."""
    return await _fleet(account).settle(symbol, intent)


class _NotReady(RuntimeError):
    pass


async def _recovery(account: str, symbol: str) -> Recovery | None:
    """The symbol's engine's recovery once it has loaded its rules and state (a workflow resumed at
    launch runs before the fleet starts its engines: wait for it); None when the symbol is not active
    (nothing will start it)."""
    fleet = _fleet(account)
    deadline = time.monotonic() + fleet.start_timeout
    while True:
        run = fleet.runs.get(symbol)
        engine = run.engine if run is not None else None
        if engine is not None and engine.ctx.rules is not None and engine.ctx.namespace:
            return engine.recovery
        entry = await asyncio.to_thread(fleet.registry.get, symbol)
        if entry.status != "active":
            return None
        if time.monotonic() > deadline:
            raise _NotReady(f"{symbol}: no engine to recover the position into")
        await asyncio.sleep(0.05)


@DBOS.step()
async def _read_position(account: str, symbol: str) -> list[str] | None:
    """[quantity, entry, price] the venue holds beyond the slots (recorded: a replay reads no more)."""
    rec = await _recovery(account, symbol)
    if rec is None:
        return None
    return [dec_str(x) for x in await rec.read_position()]


@DBOS.step()
async def _commit_position(account: str, symbol: str, found: list[str]) -> int | None:
    """The slots holding it (a no-op when the symbol has slots: a re-run after a crash)."""
    rec = await _recovery(account, symbol)
    if rec is None:
        return None
    qty, entry, price = (Decimal(x) for x in found)
    return len(await rec.commit_position(qty, entry, price))


@DBOS.step()
async def _running_symbols(account: str) -> list[str]:
    return sorted(s for s, r in _fleet(account).runs.items() if r.state not in ("paused", "removed"))


# ------------------------------------------------------------------------------------------ workflows


@DBOS.workflow()
async def add_symbol_workflow(account: str, symbol: str, overrides: dict[str, Any]) -> dict[str, Any]:
    await _register(account, symbol, "active", overrides)
    state = await _apply(account, symbol)
    return {"symbol": symbol, "state": state}


@DBOS.workflow()
async def remove_symbol_workflow(account: str, symbol: str, position: str = "keep") -> dict[str, Any]:
    """Registry -> removed, stop the engine cancelling its orders (no engine running here: a one-shot
    engine settles and cancels what its slots hold, fills recorded), then sweep what is still open at the
    venue (an order the engine could not see).  Then the position: ``keep`` leaves it, ``close`` settles
    it (after the sweep, so no order of ours can trade it meanwhile)."""
    await _register(account, symbol, "removed", None)
    state = await _apply(account, symbol)
    drained = await _drain(account, symbol)
    leftovers = await _our_open_orders(account, symbol)
    cancels = {cid: await _cancel(account, symbol, cid) for cid in leftovers}
    out: dict[str, Any] = {"symbol": symbol, "state": state, "drained": drained, "swept": cancels}
    if position == "close":
        out["position"] = {"mode": "close", **await _settle(account, symbol, DBOS.workflow_id or symbol)}
    else:
        out["position"] = {"mode": "keep"}
    return out


@DBOS.workflow()
async def cancel_all_workflow(account: str, reason: str) -> dict[str, Any]:
    """Risk trip: pause every running symbol (its engine cancels its orders), then sweep the venue."""
    symbols = await _running_symbols(account)
    swept: dict[str, dict[str, str]] = {}
    for symbol in symbols:
        await _register(account, symbol, "paused", None)
        await _apply(account, symbol)
        leftovers = await _our_open_orders(account, symbol)
        swept[symbol] = {cid: await _cancel(account, symbol, cid) for cid in leftovers}
    log.warning("cancel-all done", account=account, reason=reason, symbols=symbols)
    return {"reason": reason, "paused": symbols, "swept": swept}


# Seconds between attempts of a position recovery whose venue read failed (then the last, for good).
RECOVERY_RETRY = (1.0, 2.0, 5.0, 10.0, 30.0)


@DBOS.workflow()
async def recover_position_workflow(account: str, symbol: str) -> dict[str, Any]:
    """Fresh store, venue position: read it, then commit the FILLED slots holding it (recovery.py).

    A venue error (or no engine up yet) is never the workflow's result: the id is fixed per store, so a
    recorded failure would be returned to every later start of the symbol (a venue hiccup at start-up
    would stop it for good).
    The read is tried again after a durable sleep (:data:`RECOVERY_RETRY`); each failure is recorded as
    that step's outcome, so a replay takes the same path.  The symbol stays ``starting`` / ``restarting``
    meanwhile, with the error in the log."""
    attempt = 0
    while True:
        try:
            found = await _read_position(account, symbol)
            break
        except (VenueError, _NotReady) as exc:  # the venue, or no engine up yet: transient (no fleet
            # in this process, a bug: those still end the workflow)
            delay = RECOVERY_RETRY[min(attempt, len(RECOVERY_RETRY) - 1)]
            attempt += 1
            log.warning(
                "position recovery: reading the venue failed; trying again",
                symbol=symbol,
                attempt=attempt,
                retry_in=delay,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            await DBOS.sleep_async(delay)
    if found is None:
        return {"symbol": symbol, "skipped": True}
    slots = await _commit_position(account, symbol, found) if Decimal(found[0]) else 0
    if slots is None:
        return {"symbol": symbol, "skipped": True}
    return {"symbol": symbol, "quantity": found[0], "slots": slots}


class Durable:
    """The process's DBOS runtime bound to one fleet."""

    def __init__(
        self, fleet: Fleet, system_url: str, *, app_name: str | None = None, executor: str | None = None
    ) -> None:
        self.fleet = fleet
        self.account = fleet.registry.account
        self.system_url = system_url
        self.app_name = app_name or dbos_app_name(self.account)
        # DBOS resumes, at launch, the unfinished workflows of ITS executor id: the fleet's ("local", the
        # default) or a one-shot CLI's own (``opensqt symbols remove`` run again finishes its removal and
        # never resumes a fleet's workflows, which would start engines in the CLI).
        self.executor = executor
        self._loop: asyncio.AbstractEventLoop | None = None

    def launch(self) -> None:
        """Register the fleet and launch DBOS (resuming unfinished workflows of a killed process); from
        now on a registry removal seen by the fleet's watcher runs the remove-symbol workflow."""
        _FLEETS[self.account] = self.fleet
        config: dict[str, Any] = {
            "name": self.app_name,
            "system_database_url": self.system_url,
            "log_level": "WARNING",
        }
        if self.executor is not None:
            config["executor_id"] = self.executor
        DBOS(config=config)  # type: ignore[arg-type]
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        DBOS.launch()
        self.fleet.remover = self.remove_registered
        self.fleet.position_runner = self.recover_position

    def destroy(self) -> None:
        """Shut DBOS down (from the loop's thread or another one)."""
        DBOS.destroy(destroy_registry=False)
        _FLEETS.pop(self.account, None)
        self.fleet.remover = None
        self.fleet.position_runner = None
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # DBOS made its thread pool the loop's default executor and has just shut it down: without a new
        # one every later asyncio.to_thread (the lease release, the store) would fail.
        fresh = ThreadPoolExecutor(thread_name_prefix="opensqt")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.set_default_executor(fresh)
        else:  # runs before the caller's await of this call resumes (FIFO callbacks)
            loop.call_soon_threadsafe(loop.set_default_executor, fresh)

    async def add(self, symbol: str, overrides: dict[str, Any], request: str) -> dict[str, Any]:
        return await self._run(
            f"add:{self.account}:{symbol}:{request}", add_symbol_workflow, symbol, overrides
        )

    async def remove(self, symbol: str, request: str, position: str = "keep") -> dict[str, Any]:
        """Remove ``symbol``; ``position``: ``keep`` (default) or ``close`` (:data:`POSITION_MODES`)."""
        if position not in POSITION_MODES:
            raise ValueError(f"position: {position!r} is not one of {', '.join(POSITION_MODES)}")
        claimed = self.fleet.claim_removal(symbol)  # the watcher must not hand this removal over again
        try:
            return await self._run(
                f"remove:{self.account}:{symbol}:{request}", remove_symbol_workflow, symbol, position
            )
        finally:
            if claimed:
                self.fleet.release_removal(symbol)

    async def remove_registered(self, entry: SymbolEntry, position: str = "keep") -> dict[str, Any]:
        """The removal a registry change asked for (its status is ``removed``), under the id derived from
        that change; the fleet's watcher has claimed it (keeping the position: a close is asked for
        only by whoever holds the account, the CLI with no fleet up or the control endpoint)."""
        return await self._run(
            f"remove:{self.account}:{entry.symbol}:{registry_request(entry)}",
            remove_symbol_workflow,
            entry.symbol,
            position,
        )

    async def recover_position(self, symbol: str, epoch: str) -> dict[str, Any]:
        return await self._run(
            f"recover-position:{self.account}:{symbol}:{epoch}", recover_position_workflow, symbol
        )

    async def cancel_all(self, reason: str, trip: str | None = None) -> dict[str, Any]:
        trip = trip or f"{int(time.time() * 1000)}"
        return await self._run(f"cancel-all:{self.account}:{trip}", cancel_all_workflow, reason)

    async def _run(self, workflow_id: str, func: Any, *args: Any) -> dict[str, Any]:
        with SetWorkflowID(workflow_id):
            handle = await DBOS.start_workflow_async(func, self.account, *args)
        result: dict[str, Any] = await handle.get_result()
        return result
