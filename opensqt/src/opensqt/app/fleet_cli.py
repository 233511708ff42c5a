"""``opensqt fleet`` (run many symbols in one process) and ``opensqt symbols add|remove|pause|resume|list``.

``symbols`` writes the durable registry (engine/symbols.py) in the state database the config names; a
running fleet applies the change within a second (its registry sync), a stopped one at its next start.
It needs no HTTP endpoint and no token: whoever can write the state database already owns the account.

``symbols remove`` does the venue cleanup too: it runs the same remove-symbol workflow as the HTTP
endpoint (stop, cancel its orders, sweep the venue, then keep the position or, with ``--position
close``, settle it), in this process when no fleet owns the account (it takes the account lease), else
through the running fleet (app/multi.py ``remove_symbol``; keeping the position: a close is refused
there, ask the fleet's control endpoint).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opensqt.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from opensqt.engine.symbols import SymbolRegistry

__all__ = ["register"]

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config (state.url, venue, trading)")]
StateOpt = Annotated[Path, typer.Option(help="SQLite state file when state.url is empty")]
DEFAULT_STATE = Path("opensqt-state.db")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"opensqt: {message}", err=True)
    return typer.Exit(2)


def _config(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _registry(cfg: Config, state: Path) -> SymbolRegistry:
    from opensqt.engine.store import StateStore, sqlite_url
    from opensqt.engine.symbols import SymbolRegistry

    url = cfg.state.url or sqlite_url(state.resolve())
    store = StateStore(url, table_prefix=cfg.state.table_prefix)
    return SymbolRegistry(store.engine, cfg.state.account_key(cfg.venue), table_prefix=cfg.state.table_prefix)


def _parse_set(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _fail(f"--set {pair!r}: expected key=value (a trading: field)")
        out[key.strip()] = value.strip()
    return out


def register(app: typer.Typer) -> None:
    symbols = typer.Typer(help="The symbols an account's fleet runs (durable registry)", no_args_is_help=True)
    app.add_typer(symbols, name="symbols")

    @app.command()
    def fleet(
        *,
        config: ConfigOpt,
        state: StateOpt = DEFAULT_STATE,
        duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
        port: Annotated[int | None, typer.Option(help="HTTP port (overrides http.port)")] = None,
        plain: Annotated[bool, typer.Option("--plain")] = False,
    ) -> None:
        """Run every registered symbol of the account in one process (the config's symbol on first start)."""
        import sys

        from opensqt.app.multi import run_fleet
        from opensqt.engine.lease import Fenced, LeaseHeld
        from opensqt.observability.logging import configure_logging

        cfg = _config(config)
        configure_logging(cfg.system.log_level)
        try:
            final = asyncio.run(
                run_fleet(
                    cfg,
                    state_path=state,
                    duration=duration,
                    plain=plain or not sys.stdout.isatty(),
                    http_port=port,
                )
            )
        except (LeaseHeld, Fenced) as exc:
            raise _fail(str(exc)) from None
        for sym, st in final["symbols"].items():
            typer.echo(f"{sym}: {st['state']} (restarts {st['restarts']})")

    @symbols.command("add")
    def add(
        symbol: Annotated[str, typer.Argument()],
        *,
        config: ConfigOpt,
        state: StateOpt = DEFAULT_STATE,
        set_: Annotated[list[str] | None, typer.Option("--set", help="trading override key=value")] = None,
    ) -> None:
        """Register SYMBOL as active (with trading overrides); a running fleet starts it."""
        from opensqt.engine.fleet import symbol_config
        from opensqt.engine.symbols import SymbolEntry

        cfg = _config(config)
        overrides = _parse_set(set_ or [])
        try:
            symbol_config(cfg, SymbolEntry("", symbol, dict(overrides), "active", 0.0))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise _fail(f"{symbol}: {exc}") from None
        reg = _registry(cfg, state)
        entry = reg.add(symbol, overrides)
        typer.echo(f"{entry.symbol}: {entry.status} {json.dumps(entry.overrides, sort_keys=True)}")

    def _status_command(name: str, status: str, doc: str) -> None:
        def command(
            symbol: Annotated[str, typer.Argument()], *, config: ConfigOpt, state: StateOpt = DEFAULT_STATE
        ) -> None:
            from opensqt.engine.symbols import UnknownSymbol

            reg = _registry(_config(config), state)
            try:
                entry = reg.set_status(symbol, status)  # type: ignore[arg-type]
            except UnknownSymbol:
                raise _fail(f"{symbol}: not registered on account {reg.account!r}") from None
            typer.echo(f"{entry.symbol}: {entry.status}")

        command.__doc__ = doc
        symbols.command(name)(command)

    _status_command("pause", "paused", "Stop SYMBOL's engine and cancel its orders; the position is kept.")
    _status_command("resume", "active", "Start a paused SYMBOL again (its state is recovered).")

    @symbols.command("remove")
    def remove(
        symbol: Annotated[str, typer.Argument()],
        *,
        config: ConfigOpt,
        state: StateOpt = DEFAULT_STATE,
        position: Annotated[
            str,
            typer.Option(
                "--position",
                help="keep: leave the symbol's position at the venue (default); close: settle it"
                " (derivatives: reduce-only IOC orders bounded by the slippage guard, lot-floored,"
                " each attempt recorded before it is sent; spot keeps it). close needs no fleet"
                " running (else use the fleet's control endpoint)",
            ),
        ] = "keep",
    ) -> None:
        """Stop SYMBOL for good: cancel its orders at the venue (the remove workflow), then keep or close
        its position (--position)."""
        from opensqt.app.multi import remove_symbol
        from opensqt.engine.lease import Fenced, LeaseHeld
        from opensqt.engine.symbols import UnknownSymbol
        from opensqt.engine.workflows import POSITION_MODES

        if position not in POSITION_MODES:
            raise _fail(f"--position: {position!r} is not one of {', '.join(POSITION_MODES)}")
        cfg = _config(config)
        try:
            result = asyncio.run(remove_symbol(cfg, state_path=state, symbol=symbol, position=position))
        except UnknownSymbol:
            raise _fail(f"{symbol}: not registered on account {cfg.state.account_key(cfg.venue)!r}") from None
        except (Fenced, LeaseHeld) as exc:
            raise _fail(str(exc)) from None
        if result is None:
            typer.echo(
                f"{symbol}: removed; the running fleet stops it and cancels its orders (remove workflow)"
            )
            return
        swept = result.get("swept") or {}
        settled = result.get("position") or {}
        if settled.get("mode") == "close":
            kept = f"position {settled.get('state')}"
            if settled.get("state") == "done":
                kept = (
                    f"position closed: {settled.get('filled')} of {settled.get('start')} in"
                    f" {len(settled.get('attempts') or [])} IOC order(s)"
                )
            if settled.get("detail"):
                kept += f" ({settled['detail']})"
        else:
            kept = "the position is kept"
        typer.echo(
            f"{symbol}: removed; {result.get('drained', 0)} slot order(s) settled and cancelled,"
            f" {len(swept)} more order(s) swept at the venue; {kept}"
        )

    @symbols.command("list")
    def list_(*, config: ConfigOpt, state: StateOpt = DEFAULT_STATE) -> None:
        """Every registered symbol of the account with its desired status and overrides."""
        reg = _registry(_config(config), state)
        for e in reg.entries():
            typer.echo(f"{e.symbol}\t{e.status}\t{json.dumps(e.overrides, sort_keys=True)}")
