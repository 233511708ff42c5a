"""``opensqt connector``: serve a venue over the VenueGateway gRPC API.

The engine's CLI (``opensqt/cli.py``) calls :func:`register` to add the command.  Settings come from
``--config FILE`` (YAML; the keys of :class:`~opensqt.connector.server.ConnectorConfig` plus
``venue``, ``venue_factory``, ``token_env`` and ``token_file``, under a ``connector:`` section or at
the top level), and flags override the file.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cqvx.client import VenueClient
from cqvx.errors import VenueError
from opensqt.connector.auth import ConnectorConfigError, load_token
from opensqt.connector.server import ConnectorConfig, ConnectorServer, ConnectorStartupError

__all__ = ["DEFAULT_TOKEN_ENV", "build_venue", "load_settings", "register"]

DEFAULT_TOKEN_ENV = "OPENSQT_CONNECTOR_TOKEN"


def build_venue(name: str, factory: str | None = None, options: dict[str, Any] | None = None) -> VenueClient:
    """The venue client to serve: ``factory`` ("module:callable") when given, else a built-in name."""
    options = options or {}
    if factory:
        module_name, _, attr = factory.partition(":")
        if not attr:
            raise ConnectorConfigError(f"venue_factory {factory!r}: expected 'module:callable'")
        made = getattr(importlib.import_module(module_name), attr)(**options)
        if not isinstance(made, VenueClient):
            raise ConnectorConfigError(f"venue_factory {factory!r} did not return a VenueClient")
        return made
    if name == "sim":
        from cqvx.venues.sim import SimVenue

        return SimVenue.default(**options)
    raise ConnectorConfigError(
        f"unknown venue {name!r}: built in is 'sim'; other venues need venue_factory='module:callable'"
    )


def load_settings(path: Path | None, overrides: dict[str, Any]) -> tuple[ConnectorConfig, dict[str, Any]]:
    """(server config, venue settings) from the YAML file and the non-None flag overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConnectorConfigError(f"{path}: expected a mapping")
        section = loaded.get("connector", loaded)
        if not isinstance(section, dict):
            raise ConnectorConfigError(f"{path}: 'connector' must be a mapping")
        raw = dict(section)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    venue = {
        "venue": raw.pop("venue", "sim"),
        "venue_factory": raw.pop("venue_factory", None),
        "venue_options": raw.pop("venue_options", None) or {},
    }
    token_env = raw.pop("token_env", None)
    token_file = raw.pop("token_file", None)
    if token_file is not None or token_env is not None:
        raw["token"] = load_token(env=token_env, file=token_file)
    elif os.environ.get(DEFAULT_TOKEN_ENV):
        raw["token"] = load_token(env=DEFAULT_TOKEN_ENV)
    return ConnectorConfig(**raw), venue


async def _serve(config: ConnectorConfig, venue: dict[str, Any]) -> None:
    client = build_venue(venue["venue"], venue["venue_factory"], venue["venue_options"])
    async with client:  # entering starts clients that run by themselves (the sim's market driver)
        await ConnectorServer([client], config, close_venues=False).serve()


def register(app: typer.Typer) -> None:
    """Add the ``connector`` command to the opensqt CLI."""

    @app.command("connector")
    def connector(
        *,
        config: Annotated[Path | None, typer.Option("--config", help="YAML settings file")] = None,
        host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
        port: Annotated[int | None, typer.Option(help="port (default 50051; 0 = any)")] = None,
        venue: Annotated[str | None, typer.Option(help="venue to serve (default: sim)")] = None,
        venue_factory: Annotated[
            str | None, typer.Option(help="'module:callable' returning the VenueClient to serve")
        ] = None,
        token_env: Annotated[
            str | None, typer.Option(help=f"env var holding the bearer token (default {DEFAULT_TOKEN_ENV})")
        ] = None,
        token_file: Annotated[Path | None, typer.Option(help="file holding the bearer token")] = None,
        tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate chain (PEM)")] = None,
        tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
        metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus /metrics here")] = None,
        health_interval: Annotated[float | None, typer.Option(help="venue health poll, seconds")] = None,
        no_validate: Annotated[
            bool, typer.Option("--no-validate", help="skip the start-up credential check")
        ] = False,
    ) -> None:
        """Serve a venue over the VenueGateway gRPC API (credentials stay in this process)."""
        overrides: dict[str, Any] = {
            "host": host,
            "port": port,
            "venue": venue,
            "venue_factory": venue_factory,
            "token_env": token_env,
            "token_file": token_file,
            "tls_cert": tls_cert,
            "tls_key": tls_key,
            "metrics_port": metrics_port,
            "health_interval": health_interval,
            "validate_credentials": False if no_validate else None,
        }
        try:
            settings, venue_settings = load_settings(config, overrides)
            asyncio.run(_serve(settings, venue_settings))
        except (ConnectorConfigError, ConnectorStartupError, VenueError, ValueError) as err:
            typer.echo(f"opensqt connector: {err}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:  # pragma: no cover - signal handlers normally take SIGINT
            sys.exit(130)
