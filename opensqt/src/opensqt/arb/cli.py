"""``opensqt arb``: the funding arbitrage as a process (paper on the simulated venue by default).

Start-up order matters: the account's lease first (:mod:`opensqt.engine.lease`, in the state database:
one ``opensqt arb`` per account; a second one exits 2 naming the owner, unless ``state.lease_wait``), then
the venue, then the instrument rules and the workflows' context, then
``DBOS.launch()`` (which resumes what a killed process left unfinished, and those steps need the
context), then recovery of every pair from DBOS's record, then the HTTP endpoints (``/health``,
``/status``, ``/metrics``, the live page's ``/ws`` with ``arb`` messages), then the decision loop.
The process prints ``opensqt: http://HOST:PORT/`` once it serves.  The lease is renewed while it runs;
once taken over (this process was paused past its expiry), the process stops deciding and exits 2, and
any order step it still runs is fenced (places nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cqvx.errors import VenueError
from opensqt.arb.config import ArbFile, ConfigError, load_arb_config, paper_arb_config
from opensqt.connector.venue import open_venue

if TYPE_CHECKING:
    from opensqt.engine.lease import AccountLease

__all__ = ["register", "run_arb"]

_CALL_DEADLINE = 10.0  # seconds: a remote connector's unary deadline (part of arb.landing_window)


async def run_arb(
    file: ArbFile, *, state: Path, duration: float | None, speed: float = 1.0, http_port: int | None = None
) -> dict[str, Any]:
    """Run the arbitrage until ``duration`` passes or SIGINT/SIGTERM; returns the final status.  Raises
    ``LeaseHeld`` when another process owns the account, ``Fenced`` when it took the account over."""
    from sqlalchemy import create_engine

    from opensqt.engine.lease import AccountLease, Fenced
    from opensqt.engine.store import sqlite_url

    state.parent.mkdir(parents=True, exist_ok=True)
    account = file.state.account_key(file.venue)
    db = create_engine(file.state.url or sqlite_url(state))
    try:
        lease = AccountLease(
            db, account, ttl=float(file.state.lease_seconds), table_prefix=file.state.table_prefix
        )
        # Before DBOS.launch(): its recovery resumes workflows, and those place orders.
        await lease.acquire(wait=file.state.lease_wait)
        lost: list[str] = []
        try:
            status = await _run_owned(
                file, state, lease, lost, duration=duration, speed=speed, http_port=http_port
            )
        finally:
            if not lost:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(lease.release)
        if lost:
            raise Fenced(lost[0])
        return status
    finally:
        db.dispose()


async def _run_owned(
    file: ArbFile,
    state: Path,
    lease: AccountLease,
    lost: list[str],
    *,
    duration: float | None,
    speed: float,
    http_port: int | None,
) -> dict[str, Any]:
    """:func:`run_arb` once the lease is ours: ``lost`` receives the message if it is taken over."""
    from dbos import DBOS

    from opensqt.arb.runner import ArbRunner
    from opensqt.arb.status import ArbMetrics
    from opensqt.arb.workflows import unregister
    from opensqt.engine.workflows import dbos_app_name, system_database_url
    from opensqt.live.feed import encode
    from opensqt.live.http import StatusServer
    from opensqt.live.hub import Hub, HubLimits
    from opensqt.live.server import add_live_routes

    account = lease.account

    def fence() -> None:
        with lease.engine.begin() as conn:
            lease.fence_check(conn)

    client = await open_venue(file.venue, call_deadline=_CALL_DEADLINE, speed=speed)
    latest: dict[str, str] = {}
    hub = Hub(HubLimits(token=file.http.live_token), on_connect=lambda: list(latest.values()))

    def publish(kind: str, data: dict[str, Any]) -> None:
        text = encode(kind, data)
        if latest.get(data["symbol"]) != text:
            latest[data["symbol"]] = text
            hub.broadcast(text)

    runner = ArbRunner(file.arb, client, account, metrics=ArbMetrics(), publish=publish, fence=fence)
    server: StatusServer | None = None
    launched = False

    def on_lost(message: str) -> None:
        print(f"opensqt: {message}", file=sys.stderr, flush=True)
        lost.append(message)
        runner.stop()

    keeper = asyncio.create_task(lease.keep(on_lost))
    try:
        await runner.prepare()
        DBOS(
            config={
                # One DBOS application per account (engine/workflows.py): another process on the same
                # system database never takes this account's recovered legs.
                "name": dbos_app_name(f"arb:{account}"),
                "system_database_url": system_database_url(file.state.url, state),
                "log_level": "WARNING",
            }
        )
        DBOS.launch()
        launched = True
        await runner.recover()
        if file.http.enabled:
            server = StatusServer(runner.status, runner.metrics.text, lambda: (True, {"arb": "ok"}))
            if file.http.live:
                add_live_routes(server.app, hub)
            port = await server.start(file.http.host, file.http.port if http_port is None else http_port)
            print(f"opensqt: http://{file.http.host}:{port}/", flush=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, runner.stop)
        await runner.run(duration)
        return runner.status()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        if server is not None:
            await hub.close_all()
            await server.stop()
        if launched:
            DBOS.destroy(destroy_registry=False)
        unregister(account)
        await client.aclose()


def register(app: typer.Typer) -> None:
    @app.command()
    def arb(
        *,
        config: Annotated[
            Path | None, typer.Option("--config", "-c", help="YAML config (default: embedded paper config)")
        ] = None,
        duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
        state: Annotated[
            Path, typer.Option(help="state file; DBOS's SQLite system database sits next to it")
        ] = Path("opensqt-arb.db"),
        speed: Annotated[float, typer.Option(help="simulated seconds per real second (sim only)")] = 1.0,
        port: Annotated[int | None, typer.Option(help="HTTP port for /status /metrics /ws (0 = any)")] = None,
    ) -> None:
        """Funding-rate arbitrage: spot against perpetual, entry and exit as durable workflows."""
        from opensqt.engine.lease import Fenced, LeaseHeld
        from opensqt.observability.logging import configure_logging

        try:
            file = load_arb_config(config) if config else paper_arb_config()
        except ConfigError as exc:
            typer.echo(f"opensqt: {exc}", err=True)
            raise typer.Exit(2) from None
        configure_logging(file.system.log_level)
        started = time.monotonic()
        try:
            status = asyncio.run(run_arb(file, state=state, duration=duration, speed=speed, http_port=port))
        except ConfigError as exc:
            typer.echo(f"opensqt: {exc}", err=True)
            raise typer.Exit(2) from None
        except VenueError as exc:
            typer.echo(f"opensqt: venue: {exc}", err=True)
            raise typer.Exit(2) from None
        except (LeaseHeld, Fenced) as exc:  # one owner per account: the other process keeps it
            typer.echo(f"opensqt: {exc}", err=True)
            raise typer.Exit(2) from None
        for p in status["pairs"]:
            typer.echo(
                f"{p['spot']}/{p['perp']}: {p['state']} {p['direction'] or ''} entries {p['entries']}"
                f" exits {p['exits']} compensations {p['compensations']} funding {p['funding_pnl']}"
                f" trading {p['trading_pnl']}"
            )
        typer.echo(f"ran {time.monotonic() - started:.1f} s")
