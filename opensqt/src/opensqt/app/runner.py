"""Run the grid engine as a process: venue, store, engine, HTTP endpoints, terminal view, exit report.

Used by ``opensqt paper`` (the embedded config on the simulated venue) and ``opensqt run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from cqvx.client import VenueClient
from cqvx.num import dec_str
from cqvx.secrets import Secret
from opensqt.app.live_bridge import LiveBridge
from opensqt.app.risk_http import add_risk_routes
from opensqt.config import Config, ConfigError
from opensqt.connector.venue import open_venue
from opensqt.engine.lease import AccountLease, Fenced
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.live.feed import LiveFeed
from opensqt.live.http import StatusServer
from opensqt.live.hub import Hub, HubLimits, require_token_for
from opensqt.live.server import add_live_routes
from opensqt.ui.chart import render_chart
from opensqt.ui.view import run_view

__all__ = ["RunSummary", "build_client", "run_engine"]

log = structlog.get_logger("opensqt.run")


@dataclass
class RunSummary:
    seconds: float
    ticks: int
    placed: int
    fills: int
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    position: Decimal
    anomalies: int
    chart: Path | None
    state: str
    http_port: int
    equity: list[tuple[float, Decimal]] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"ran {self.seconds:.1f} s: {self.ticks} price ticks, "
            f"{self.placed} orders placed, {self.fills} fills",
            f"realized PnL {dec_str(self.realized_pnl.quantize(Decimal('0.0001')))}, "
            f"unrealized {dec_str(self.unrealized_pnl.quantize(Decimal('0.0001')))}, "
            f"position {dec_str(self.position)}",
            f"anomalies: {self.anomalies}",
            f"state: {self.state}",
            f"chart: {self.chart}" if self.chart else "chart: (not written)",
        ]


async def build_client(config: Config, *, speed: float = 1.0) -> VenueClient:
    """The started venue of ``config.venue`` (:func:`opensqt.connector.venue.open_venue`), the engine's
    ``call_deadline`` as the per-call deadline of a remote connector."""
    return await open_venue(config.venue, call_deadline=float(config.engine.call_deadline), speed=speed)


def _plain_output() -> bool:
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()


async def run_engine(
    config: Config,
    *,
    state_path: Path,
    duration: float | None = None,
    speed: float = 1.0,
    plain: bool | None = None,
    chart: bool = True,
    client: VenueClient | None = None,
    http_port: int | None = None,
) -> RunSummary:
    state_path = await asyncio.to_thread(_prepare_state_dir, state_path)
    url = config.state.url or sqlite_url(state_path)
    store = StateStore(url, table_prefix=config.state.table_prefix, durability=config.state.durability)
    try:
        lease = await acquire_lease(config, store)  # before anything is loaded: one owner per account
    except BaseException:
        store.close()
        raise
    own_client = client is None
    venue = client or await build_client(config, speed=speed)
    engine = GridEngine(config, venue, store)

    server: StatusServer | None = None
    bridge: LiveBridge | None = None
    hub: Hub | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            # Second Ctrl-C while shutting down: leave now (every intent is already durable).
            print(f"opensqt: {signal.Signals(signum).name} again, exiting without cleanup", file=sys.stderr)
            os._exit(130)
        print(
            f"opensqt: {signal.Signals(signum).name}: shutting down (again to force)",
            file=sys.stderr,
            flush=True,
        )
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)
    started = time.monotonic()
    equity: list[tuple[float, Decimal]] = []
    lost: list[str] = []

    def on_lease_lost(message: str) -> None:
        print(f"opensqt: {message}", file=sys.stderr, flush=True)
        lost.append(message)
        stop.set()

    keeper = asyncio.create_task(lease.keep(on_lease_lost))
    try:
        await engine.start()
        if config.http.enabled:
            h = config.http
            if h.live:
                hub, bridge = await _start_live(engine, h.host, h.live_token, h.live_origins)
            server = StatusServer(engine.status, _metrics(engine, hub), lambda: _health(engine))
            if hub is not None:
                add_live_routes(server.app, hub)
            if h.control_token is not None:  # POST /risk/reset (app/risk_http.py)
                add_risk_routes(server.app, engine, h.control_token)
            port = h.port if http_port is None else http_port
            bound = await _serve(server, h.host, port)
            base = f"http://{h.host}:{bound}"
            log.info("http", url=f"{base}/status")
            print(f"opensqt: {base}/status  {base}/metrics  {base}/health", file=sys.stderr, flush=True)
            if hub is not None:
                print(f"opensqt: live page {base}/", file=sys.stderr, flush=True)
        view = asyncio.create_task(
            run_view(engine, stop, equity, plain=_plain_output() if plain is None else plain)
        )
        try:
            if duration is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=duration)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await view
    finally:
        try:
            if bridge is not None:
                await bridge.stop()
            if server is not None:
                if hub is not None:
                    await hub.close_all()
                await server.stop()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            if engine.started:
                # Fenced out: the new owner runs the account; leave its orders alone.
                await engine.stop(cancel_orders=False if lost else None)
            else:
                await engine.store.aclose()
            if not lost:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(lease.release)
            if own_client:
                await venue.aclose()
        finally:
            chart_path: Path | None = None
            try:
                if chart and engine.price_history:
                    chart_path = state_path.with_suffix(".png")
                    render_chart(
                        chart_path, engine.price_history, engine.fills, equity, config.trading.symbol
                    )
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)
    if lost:
        raise Fenced(lost[0])
    return RunSummary(
        seconds=time.monotonic() - started,
        ticks=engine.stats.ticks,
        placed=engine.stats.placed,
        fills=engine.stats.fills,
        realized_pnl=engine.stats.realized_pnl,
        unrealized_pnl=engine.unrealized_pnl(),
        position=engine.position(),
        anomalies=engine.stats.anomalies,
        chart=chart_path,
        state=url,
        http_port=server.port if server else 0,
        equity=equity,
    )


async def _start_live(
    engine: GridEngine, host: str, token: Secret | None, origins: list[str]
) -> tuple[Hub, LiveBridge]:
    """The live page inside the engine process: a hub fed by the engine's events (docs/live.md)."""
    try:
        require_token_for(host, token)  # also checked when the config is read
    except ValueError as exc:
        raise ConfigError(f"http.live_token: {exc}") from None
    feed = LiveFeed()
    hub = feed.hub = Hub(HubLimits(token=token, allowed_origins=tuple(origins)), on_connect=feed.snapshot)
    bridge = LiveBridge(engine, feed)
    await bridge.start()
    return hub, bridge


def _metrics(engine: GridEngine, hub: Hub | None) -> Callable[[], bytes]:
    if hub is None:
        return engine.metrics.render
    return lambda: engine.metrics.render() + hub.metrics_text()


async def _serve(server: StatusServer, host: str, port: int) -> int:
    """Bind the HTTP endpoints; a taken port falls back to an ephemeral one instead of failing the run."""
    try:
        return await server.start(host, port)
    except OSError as exc:
        if port == 0:
            raise
        await server.stop()
        bound = await server.start(host, 0)
        print(
            f"opensqt: port {port} is not available ({exc.strerror or exc}); using {bound} instead",
            file=sys.stderr,
            flush=True,
        )
        return bound


async def acquire_lease(config: Config, store: StateStore) -> AccountLease:
    """The account's lease (engine/lease.py), installed as the store's fence; raises ``LeaseHeld``."""
    st = config.state
    lease = AccountLease(
        store.engine,
        st.account_key(config.venue),
        ttl=float(st.lease_seconds),
        table_prefix=st.table_prefix,
    )
    await lease.acquire(wait=st.lease_wait)
    store.fence = lease.fence_check
    return lease


def _prepare_state_dir(path: Path) -> Path:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _health(engine: GridEngine) -> tuple[bool, dict[str, str]]:
    components: dict[str, str] = {"engine": "Healthy" if engine.started else "Unhealthy: not started"}
    mon = engine.monitor.status()
    age = mon["age_seconds"]
    components["price_monitor"] = (
        "Healthy" if isinstance(age, float | int) and age < 60 else f"Unhealthy: price age {age}"
    )
    ok = all(v == "Healthy" for v in components.values())
    return ok, components


def summary_dict(summary: RunSummary) -> dict[str, Any]:
    return {
        "seconds": round(summary.seconds, 3),
        "ticks": summary.ticks,
        "placed": summary.placed,
        "fills": summary.fills,
        "realized_pnl": dec_str(summary.realized_pnl),
        "position": dec_str(summary.position),
        "chart": str(summary.chart) if summary.chart else None,
    }
