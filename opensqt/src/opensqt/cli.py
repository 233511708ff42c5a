"""The ``opensqt`` command line.

Commands live here (``paper``, ``run``, ``check-config``, ``resync``) or in a module that offers
``register(app: typer.Typer) -> None`` and is listed in :data:`PLUGINS`; :func:`main` imports each listed
module that exists and lets it add its commands (e.g. ``opensqt.connector.cli`` adds ``connector``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from cqvx.errors import VenueError
from opensqt.config import Config, ConfigError, default_paper_config, load_config

__all__ = ["PLUGINS", "app", "main"]

app = typer.Typer(name="opensqt", no_args_is_help=True, add_completion=False, help="OpenSQT trading platform")

# Modules that add commands through register(app); a missing module is skipped.
PLUGINS: tuple[str, ...] = (
    "opensqt.connector.cli",
    "opensqt.live.cli",
    "opensqt.app.fleet_cli",
    "opensqt.arb.cli",
)
_registered = False


def _register_plugins() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # the plugin is not installed / not written yet
            raise
        module.register(app)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"opensqt: {message}", err=True)
    return typer.Exit(2)


def _run(
    *,
    config: Config,
    state: Path,
    duration: float | None,
    speed: float,
    plain: bool | None,
    chart: bool,
    port: int | None,
) -> None:
    from opensqt.app.runner import run_engine
    from opensqt.engine.lease import Fenced, LeaseHeld
    from opensqt.observability.logging import configure_logging
    from opensqt.risk.startup import StartupCheckFailed

    configure_logging(config.system.log_level)
    try:
        summary = asyncio.run(
            run_engine(
                config,
                state_path=state,
                duration=duration,
                speed=speed,
                plain=plain,
                chart=chart,
                http_port=port,
            )
        )
    except StartupCheckFailed as exc:
        raise _fail(f"startup safety check failed: {exc}") from None
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except (LeaseHeld, Fenced) as exc:
        raise _fail(str(exc)) from None
    except VenueError as exc:  # e.g. the connector is unreachable or refuses the token
        raise _fail(f"venue: {exc}") from None
    for line in summary.lines():
        typer.echo(line)


@app.command()
def paper(
    *,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (default: embedded paper config)")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many seconds (default: until Ctrl-C)")
    ] = None,
    state: Annotated[Path, typer.Option(help="SQLite state file; the chart is written next to it")] = Path(
        "opensqt-paper.db"
    ),
    seed: Annotated[int | None, typer.Option(help="simulated market seed")] = None,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1.0,
    port: Annotated[int | None, typer.Option(help="HTTP port for /health /status /metrics (0 = any)")] = None,
    plain: Annotated[bool, typer.Option("--plain", help="plain log lines instead of the live view")] = False,
    chart: Annotated[bool, typer.Option(help="write a PNG chart on exit")] = True,
) -> None:
    """Paper trading: the grid on the simulated venue (no credentials needed)."""
    try:
        cfg = load_config(config) if config else default_paper_config()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if cfg.venue.kind != "sim":
        raise _fail("paper runs on the simulated venue: venue.kind must be 'sim'")
    if seed is not None:
        cfg = cfg.model_copy(update={"venue": cfg.venue.model_copy(update={"seed": seed})})
    _run(
        config=cfg,
        state=state,
        duration=duration,
        speed=speed,
        plain=True if plain else None,
        chart=chart,
        port=port,
    )


@app.command()
def run(
    *,
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config")],
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    state: Annotated[Path, typer.Option(help="SQLite state file when state.url is empty")] = Path(
        "opensqt-state.db"
    ),
    port: Annotated[int | None, typer.Option(help="HTTP port (overrides http.port)")] = None,
    plain: Annotated[bool, typer.Option("--plain")] = False,
) -> None:
    """Run the grid with the venue the config names (sim, or a remote connector)."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    _run(
        config=cfg,
        state=state,
        duration=duration,
        speed=1.0,
        plain=True if plain else None,
        chart=True,
        port=port,
    )


@app.command("risk-reset")
def risk_reset(
    *,
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config")],
    state: Annotated[Path, typer.Option(help="SQLite state file when state.url is empty")] = Path(
        "opensqt-state.db"
    ),
    breaker: Annotated[str | None, typer.Option(help="one breaker (default: every open one)")] = None,
) -> None:
    """Close open circuit breakers in the state store of a STOPPED engine (docs/risk.md)."""
    from opensqt.engine.risk_guard import reset_stored
    from opensqt.engine.store import StateStore, sqlite_url
    from opensqt.risk.breakers import UnknownBreaker, parse_kind

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        kind = parse_kind(breaker) if breaker is not None else None
    except UnknownBreaker as exc:
        raise _fail(f"--breaker: {exc}") from None
    store = StateStore(
        cfg.state.url or sqlite_url(state),
        table_prefix=cfg.state.table_prefix,
        durability=cfg.state.durability,
    )
    try:
        closed = reset_stored(store, cfg.risk, cfg.trading.symbol, kind)
    except UnknownBreaker as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    typer.echo(f"reset: {', '.join(closed)}" if closed else "no open breaker")


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="YAML config")]) -> None:
    """Validate a config file and print the resolved values."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(cfg.model_dump(mode="json"), indent=2))


@app.command()
def resync(
    *,
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config of the engine to resync")],
    operator: Annotated[str, typer.Option(help="who adopts the venue's state (recorded in the audit log)")],
    reason: Annotated[str, typer.Option(help="why (recorded in the audit log)")],
    state: Annotated[Path, typer.Option(help="SQLite state file when state.url is empty")] = Path(
        "opensqt-state.db"
    ),
) -> None:
    """Adopt the venue's truth (orders, fills, position) after a divergence the engine cannot repair.

    Run it with the engine stopped (it takes the account lease first, so it refuses while an engine or
    fleet owns the account); it records who and why, then the engine resumes on its next start
    (docs/operations.md).
    """
    operator, reason = operator.strip(), reason.strip()
    if not operator:
        raise _fail("--operator: must name who is resyncing")
    if not reason:
        raise _fail("--reason: must say why")
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    from opensqt.app.runner import build_client
    from opensqt.engine.lease import Fenced, LeaseHeld
    from opensqt.engine.resync import ResyncRefused, ResyncResult
    from opensqt.engine.resync import resync as engine_resync
    from opensqt.engine.store import StateStore, sqlite_url

    async def _resync() -> ResyncResult:
        url = cfg.state.url or sqlite_url(state)
        store = StateStore(url, table_prefix=cfg.state.table_prefix, durability=cfg.state.durability)
        client = await build_client(cfg)  # already started
        try:
            # engine_resync closes the store.
            return await engine_resync(cfg, client, store, operator=operator, reason=reason)
        finally:
            await client.aclose()

    try:
        result = asyncio.run(_resync())
    except ResyncRefused as exc:
        raise _fail(f"resync refused: {exc}") from None
    except (LeaseHeld, Fenced) as exc:  # a running engine owns the account: stop it first
        raise _fail(f"resync refused: {exc}") from None
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except VenueError as exc:
        raise _fail(f"venue: {exc}") from None
    typer.echo(
        f"resynced by {result.operator} ({result.reason}): engine position {result.engine_position_before}"
        f" -> venue position {result.venue_position}; cancelled {result.cancelled} order(s) of ours;"
        f" {result.slots} slot(s) hold the position. Start the engine to resume."
    )


def main() -> None:
    _register_plugins()
    app()


if __name__ == "__main__":
    main()
