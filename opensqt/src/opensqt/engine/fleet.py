"""Many symbols in one engine process: one :class:`GridEngine` per symbol over ONE venue client and ONE
state store, each under its own supervisor.

Rules:

* Isolation: every symbol runs in its own task.  An exception while starting (rules, recovery, checks), a
  start that does not finish within ``start_timeout`` (a stuck venue call), or a price feed silent for
  ``stale_after`` seconds ends THAT symbol's engine (stopped without cancelling: the restart's recovery
  adopts its orders) and restarts it after the one jittered :class:`cqvx.backoff.Backoff`; the others
  never wait on it.  Restarts, the last error and the state show in :meth:`Fleet.status` and in the
  ``market_maker_symbol_*`` metrics.
* The registry (``engine/symbols.py``) is the desired state; :meth:`Fleet.sync` makes the running engines
  match it (start the active ones, stop the paused and removed ones).  It runs at start, after every
  change made through this object, and every ``poll`` seconds (changes written by ``opensqt symbols``
  from another process).
* Pause and remove stop the symbol's engine and cancel its live orders (both bounded by ``stop_timeout``:
  a stuck venue call cannot hold the fleet); the position is kept (its slots stay in the store, so resume
  or a re-add recovers it and the grid closes it).  Nothing here places orders directly.
* A removal written to the registry by another process (``opensqt symbols remove``) is not applied by
  the watcher itself: it hands it to :attr:`Fleet.remover` (the DBOS remove-symbol workflow, set by
  ``engine/workflows.py``), so the CLI and the HTTP endpoint run the same operation.  A removal already
  under way (:meth:`Fleet.claim_removal`) is never handed over twice.
* :meth:`Fleet.settle` closes a removed symbol's position when the operator asked for it (the remove
  workflow's settle step): a one-shot engine runs the engine's own close path (engine/reducer.py).
* :meth:`Fleet.drain` settles a symbol no engine of this fleet runs (a CLI removal with no fleet up, an
  engine whose stop did not finish): a one-shot engine recovers its state (every order looked up, fills
  recorded) and stops cancelling its orders.
* Symbol tasks start from an empty ``contextvars`` context: a sync run inside a DBOS workflow step (add,
  resume) must not leak the step's context into a long-lived engine, which starts workflows of its own.
* Every engine shares the fleet's :class:`EngineMetrics` (series are labelled by symbol) and the store's
  fence (``engine/lease.py``): one lease covers every symbol of the account.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from cqvx.backoff import Backoff
from cqvx.client import VenueClient
from opensqt.config import Config, TradingConfig
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore
from opensqt.engine.symbols import SymbolEntry, SymbolRegistry
from opensqt.observability.metrics import EngineMetrics

__all__ = ["Fleet", "SymbolRun", "symbol_config"]

log = structlog.get_logger("opensqt.fleet")

STATES = ("starting", "running", "restarting", "stopping", "paused", "removed")


def symbol_config(base: Config, entry: SymbolEntry) -> Config:
    """The process's config with ``trading:`` overridden for one symbol (validated like a YAML file)."""
    trading = TradingConfig.model_validate(
        {**base.trading.model_dump(), **entry.overrides, "symbol": entry.symbol}
    )
    return base.model_copy(update={"trading": trading})


@dataclass
class SymbolRun:
    """One symbol's supervisor state (what /status shows)."""

    symbol: str
    state: str = "starting"
    restarts: int = 0
    last_error: str = ""
    engine: GridEngine | None = None
    task: asyncio.Task[None] | None = None
    running_since: float | None = None
    history: list[str] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }
        eng = self.engine
        if eng is not None and eng.started and self.state == "running":
            with contextlib.suppress(Exception):  # a half-built engine must not break /status
                out["engine"] = eng.status()
        return out


class Fleet:
    def __init__(
        self,
        config: Config,
        client: VenueClient,
        store: StateStore,
        registry: SymbolRegistry,
        *,
        metrics: EngineMetrics | None = None,
        engine_factory: Callable[[Config], GridEngine] | None = None,
        backoff: Backoff | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        stale_after: float = 120.0,
        poll: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        launches: bool = True,
    ) -> None:
        self.config = config
        # False: a fleet that never starts a symbol's engine (``opensqt symbols remove``'s, which only runs
        # the remove workflow; its drain's one-shot engine places nothing).
        self.launches = launches
        self.client = client
        self.store = store
        self.registry = registry
        self.metrics = metrics or EngineMetrics()
        self._factory = engine_factory or (lambda cfg: GridEngine(cfg, client, store, metrics=self.metrics))
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.stale_after = stale_after
        self.poll = poll
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self.runs: dict[str, SymbolRun] = {}
        # Set by the durable runtime: runs the remove-symbol workflow for a registry removal.
        self.remover: Callable[[SymbolEntry], Awaitable[object]] | None = None
        # Set by the durable runtime: runs a symbol's position recovery as a workflow (symbol, store epoch).
        self.position_runner: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None
        self._removing: set[str] = set()
        self._removals: set[asyncio.Task[None]] = set()
        self._sync_lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        r = self.metrics.registry
        self._m_state = Gauge(
            "market_maker_symbol_running", "1 while the symbol's engine runs", ["symbol"], registry=r
        )
        self._m_restarts = Counter(
            "market_maker_symbol_restarts", "Symbol engine restarts after a failure", ["symbol"], registry=r
        )

    # ------------------------------------------------------------------------------ lifecycle

    async def start(self, *, watch: bool = True) -> None:
        """Seed the registry with the config's symbol on a first start, then run what it says."""
        await asyncio.to_thread(self.registry.seed, self.config.trading.symbol)
        await self.sync()
        if watch:
            self._watcher = asyncio.create_task(self._watch(), name="fleet-registry")

    async def stop(self, *, cancel_orders: bool | None = None) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for task in list(self._removals):  # a delegated removal in flight: the workflow resumes later
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        async with self._sync_lock:
            await asyncio.gather(
                *(self._stop_run(r, "stopping", cancel_orders) for r in list(self.runs.values()))
            )

    async def _watch(self) -> None:
        while True:
            await self._sleep(self.poll)
            try:
                await self.sync(delegate=True)
            except Exception:  # the registry's database may be briefly away; the engines keep running
                log.exception("fleet: registry sync failed")

    # ------------------------------------------------------------------------------ operator actions

    async def add(self, symbol: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = SymbolEntry(self.registry.account, symbol, dict(overrides or {}), "active", 0.0)
        symbol_config(self.config, entry)  # refuse a bad config before it is registered
        await asyncio.to_thread(self.registry.add, symbol, overrides)
        await self.sync()
        return self.symbol_status(symbol)

    async def pause(self, symbol: str) -> dict[str, Any]:
        return await self._set(symbol, "paused")

    async def resume(self, symbol: str) -> dict[str, Any]:
        return await self._set(symbol, "active")

    async def remove(self, symbol: str) -> dict[str, Any]:
        return await self._set(symbol, "removed")

    async def _set(self, symbol: str, status: Any) -> dict[str, Any]:
        await asyncio.to_thread(self.registry.set_status, symbol, status)
        await self.sync()
        return self.symbol_status(symbol)

    async def sync(self, *, delegate: bool = False) -> None:
        """Make the running engines match the registry (idempotent).  ``delegate`` (the watcher): a
        removal of a running symbol goes to :attr:`remover` instead of being applied here."""
        async with self._sync_lock:
            entries = await asyncio.to_thread(self.registry.entries)
            for entry in entries:
                run = self.runs.get(entry.symbol)
                running = run is not None and run.task is not None and not run.task.done()
                if entry.status == "active" and not running:
                    if self.launches:
                        self._launch(entry)
                elif entry.status != "active" and run is None:
                    self.runs[entry.symbol] = SymbolRun(entry.symbol, state=entry.status)
                elif entry.status != "active" and run is not None and run.state != entry.status:
                    if delegate and entry.status == "removed" and self.remover is not None:
                        if self.claim_removal(entry.symbol):
                            task = asyncio.create_task(
                                self._delegated_removal(entry), context=contextvars.Context()
                            )
                            self._removals.add(task)
                            task.add_done_callback(self._removals.discard)
                        continue
                    await self._stop_run(run, entry.status, True)

    def claim_removal(self, symbol: str) -> bool:
        """Mark ``symbol``'s removal as under way; False when it already is."""
        if symbol in self._removing:
            return False
        self._removing.add(symbol)
        return True

    def release_removal(self, symbol: str) -> None:
        self._removing.discard(symbol)

    async def _delegated_removal(self, entry: SymbolEntry) -> None:
        assert self.remover is not None
        try:
            await self.remover(entry)
        except Exception:  # the workflow failed: at least stop the engine and cancel its orders here
            log.exception("fleet: remove workflow failed; stopping the symbol directly", symbol=entry.symbol)
            self.release_removal(entry.symbol)
            await self.sync()
        finally:
            self.release_removal(entry.symbol)

    async def drain(self, symbol: str) -> int:
        """Settle a symbol no engine of this fleet runs: when its slots still hold orders, a one-shot
        engine recovers them (lookups, fills recorded) and stops cancelling them.  Returns how many slot
        orders there were (0: nothing to do).  Bounded by ``start_timeout`` + ``stop_timeout``."""
        run = self.runs.get(symbol)
        if run is not None and (run.engine is not None or run.state in ("starting", "running", "restarting")):
            return 0  # a live engine: sync stops it (with its cancels)
        slots = await asyncio.to_thread(self.store.load_slots, symbol)
        held = sum(1 for s in slots.values() if s.order is not None)
        if not held:
            return 0
        entry = await asyncio.to_thread(self.registry.get, symbol)
        engine = self._factory(symbol_config(self.config, entry))
        try:
            await asyncio.wait_for(engine.start(run_tasks=False, check=False), self.start_timeout)
        finally:
            await self._bounded_stop(engine, cancel_orders=True)
        log.info("symbol drained", symbol=symbol, orders=held)
        return held

    async def settle(self, symbol: str, intent: str) -> dict[str, Any]:
        """Close ``symbol``'s position at the venue for a removal (``intent``: its workflow id) through a
        one-shot engine and the engine's own close path (engine/reducer.py :meth:`Reducer.close`: the
        venue's actual position, the target fixed once and lot-floored, reduce-only IOC orders at the
        slippage guard's bound, each attempt durable before it is sent, a lost reply looked up).  Passes
        repeat (one a second) while an outcome is unknown, up to the landing window plus
        ``stop_timeout``; what is still unfinished then is reported (``state`` ``running``), and it is
        resumed by the next call with the same intent or by the symbol's engine if it is added again.
        The one-shot engine never recovers a position into slots (it places no grid order)."""
        entry = await asyncio.to_thread(self.registry.get, symbol)
        cfg = symbol_config(self.config, entry)
        cfg = cfg.model_copy(update={"trading": cfg.trading.model_copy(update={"recover_position": False})})
        engine = self._factory(cfg)
        reason = f"position closed: {symbol} removed ({intent})"
        try:
            await asyncio.wait_for(engine.start(run_tasks=False, check=False), self.start_timeout)
            deadline = self._clock() + float(cfg.engine.effective_landing_window) + self.stop_timeout
            while True:
                out = await engine.risk.reducer.close(intent, reason)
                if out["state"] not in ("running", "adopting") or self._clock() >= deadline:
                    break
                await self._sleep(1.0)
        finally:
            await self._bounded_stop(engine, cancel_orders=True)
        log.warning("symbol position settled", symbol=symbol, **{k: str(v) for k, v in out.items()})
        return out

    async def settled(self, symbol: str, timeout: float | None = None) -> str:
        """The symbol's state once it has left ``starting`` / ``stopping`` (or when ``timeout`` passes)."""
        deadline = self._clock() + (self.start_timeout if timeout is None else timeout)
        while True:
            run = self.runs.get(symbol)
            state = run.state if run is not None else "unknown"
            if state not in ("starting", "stopping") or self._clock() >= deadline:
                return state
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------------------ views

    def symbol_status(self, symbol: str) -> dict[str, Any]:
        run = self.runs.get(symbol)
        return {"symbol": symbol, **(run.status() if run else {"state": "unknown"})}

    def status(self) -> dict[str, Any]:
        return {
            "account": self.registry.account,
            "symbols": {sym: run.status() for sym, run in sorted(self.runs.items())},
        }

    def engines(self) -> list[GridEngine]:
        return [r.engine for r in self.runs.values() if r.engine is not None and r.state == "running"]

    # ------------------------------------------------------------------------------ supervision

    def _launch(self, entry: SymbolEntry) -> None:
        run = self.runs.setdefault(entry.symbol, SymbolRun(entry.symbol))
        run.state = "starting"
        # A fresh context: a sync run by a workflow step must not hand the step's DBOS context to a
        # long-lived symbol task (its engine starts workflows of its own, e.g. position recovery).
        run.task = asyncio.create_task(
            self._supervise(run, entry), name=f"symbol-{entry.symbol}", context=contextvars.Context()
        )

    async def _supervise(self, run: SymbolRun, entry: SymbolEntry) -> None:
        attempt = 0
        while True:
            engine: GridEngine | None = None
            try:
                engine = self._factory(symbol_config(self.config, entry))
                if self.position_runner is not None:
                    engine.recovery.runner = functools.partial(self.position_runner, run.symbol)
                run.engine = engine
                await asyncio.wait_for(engine.start(), self.start_timeout)
                run.state, run.running_since = "running", self._clock()
                self._m_state.labels(symbol=run.symbol).set(1)
                log.info("symbol running", symbol=run.symbol, restarts=run.restarts)
                await self._until_stale(engine)
                raise TimeoutError(f"no price for {self.stale_after:.0f} s")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt = 1 if self._ran_long(run) else attempt + 1
                run.restarts += 1
                run.state, run.running_since = "restarting", None
                run.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self._m_state.labels(symbol=run.symbol).set(0)
                self._m_restarts.labels(symbol=run.symbol).inc()
                log.warning("symbol failed; restarting", symbol=run.symbol, error=run.last_error)
                if engine is not None:
                    await self._bounded_stop(engine, cancel_orders=False)
                await self.backoff.sleep(attempt, self._rng, sleep=self._sleep)

    def _ran_long(self, run: SymbolRun) -> bool:
        since = run.running_since
        return since is not None and self._clock() - since > self.backoff.maximum

    async def _until_stale(self, engine: GridEngine) -> None:
        """Return when the engine's price feed has been silent for ``stale_after`` seconds."""
        while True:
            await self._sleep(min(self.stale_after / 4, 5.0))
            age = engine.monitor.status().get("age_seconds")
            if isinstance(age, int | float) and age > self.stale_after:
                return

    async def _stop_run(self, run: SymbolRun, state: str, cancel_orders: bool | None) -> None:
        run.state = "stopping"
        if run.task is not None:
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run.task
        if run.engine is not None:
            await self._bounded_stop(run.engine, cancel_orders=cancel_orders)
        run.engine, run.task, run.state = None, None, state
        self._m_state.labels(symbol=run.symbol).set(0)
        log.info("symbol stopped", symbol=run.symbol, state=state)

    async def _bounded_stop(self, engine: GridEngine, *, cancel_orders: bool | None) -> None:
        try:
            if engine.started:
                await asyncio.wait_for(engine.stop(cancel_orders=cancel_orders), self.stop_timeout)
            else:
                await asyncio.wait_for(engine.supervisor.stop(), self.stop_timeout)
        except Exception as exc:  # a stuck venue call: the restart's recovery settles what is left
            log.error("symbol stop incomplete", symbol=engine.symbol, error=f"{type(exc).__name__}: {exc}")
