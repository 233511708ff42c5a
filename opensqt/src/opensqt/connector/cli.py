"""``opensqt connector``: serve registered venues over the VenueGateway gRPC API.

The engine's CLI (``opensqt/cli.py``) calls :func:`register` to add the command.  Settings come from
``--config FILE`` (see :mod:`opensqt.connector.settings`: a ``connector:`` section and a ``venues:``
map from served name to a venue type of :mod:`cqvx.venues.registry`); flags override the file.
Without a file it serves the simulated venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cqvx.errors import VenueError
from opensqt.config import ConfigError
from opensqt.connector.auth import DEFAULT_TOKEN_ENV, ConnectorConfigError
from opensqt.connector.server import ConnectorServer, ConnectorStartupError
from opensqt.connector.settings import ConnectorSettings, load_connector_settings

__all__ = ["DEFAULT_TOKEN_ENV", "register", "serve"]


async def serve(settings: ConnectorSettings) -> None:
    """Build every configured venue, start them, serve until SIGTERM/SIGINT, close them."""
    clients = settings.build_venues()
    async with contextlib.AsyncExitStack() as stack:
        for client in clients.values():
            # Entering starts clients that run by themselves (the sim's market driver).
            await stack.enter_async_context(client)
        await ConnectorServer(clients, settings.server, close_venues=False).serve()


def register(app: typer.Typer) -> None:
    """Add the ``connector`` command to the opensqt CLI."""

    @app.command("connector")
    def connector(
        *,
        config: Annotated[
            Path | None, typer.Option("--config", help="connector YAML (venues + server)")
        ] = None,
        host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
        port: Annotated[int | None, typer.Option(help="port (default 50051; 0 = any)")] = None,
        venue: Annotated[
            str | None, typer.Option(help="serve only this registered venue type, default settings")
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
        """Serve venues over the VenueGateway gRPC API (credentials stay in this process)."""
        overrides: dict[str, Any] = {
            "host": host,
            "port": port,
            "tls_cert": tls_cert,
            "tls_key": tls_key,
            "metrics_port": metrics_port,
            "health_interval": health_interval,
            "validate_credentials": False if no_validate else None,
        }
        try:
            settings = load_connector_settings(
                config, overrides=overrides, venue=venue, token_env=token_env, token_file=token_file
            )
            asyncio.run(serve(settings))
        except (ConfigError, ConnectorConfigError, ConnectorStartupError, VenueError, ValueError) as err:
            typer.echo(f"opensqt connector: {err}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:  # pragma: no cover - signal handlers normally take SIGINT
            sys.exit(130)
