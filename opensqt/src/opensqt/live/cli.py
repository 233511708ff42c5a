"""``opensqt live``: the live page as a process of its own, following an engine's feed (see :mod:`.relay`).

The engine serves the same page itself (``http.live``, on by default); run this one to put the page on
another host or port, or to keep many viewers off the trading process.  Tokens come from environment
variables, never from the command line (a flag would show in ``ps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Annotated

import typer

from cqvx.secrets import Secret
from opensqt.live.feed import LiveFeed
from opensqt.live.hub import HubLimits
from opensqt.live.relay import Relay
from opensqt.live.server import LiveServer

__all__ = ["register", "serve"]

TOKEN_ENV = "OPENSQT_LIVE_TOKEN"


async def serve(
    engine: str,
    host: str,
    port: int,
    *,
    token: Secret | None,
    engine_token: Secret | None,
    origins: list[str],
) -> None:
    feed = LiveFeed()
    server = LiveServer(feed, HubLimits(token=token, allowed_origins=tuple(origins)))
    relay = Relay(feed, engine, token=engine_token)
    server.upstream_ok = lambda: relay.connected
    bound = await server.start(host, port)
    print(f"opensqt live: page http://{host}:{bound}/  following {relay.url}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(relay.run())
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.stop()


def _secret(env: str) -> Secret | None:
    value = os.environ.get(env)
    return Secret(value) if value else None


def register(app: typer.Typer) -> None:
    """Add the ``live`` command to the opensqt CLI."""

    @app.command("live")
    def live(
        *,
        engine: Annotated[
            str, typer.Option(help="the engine's HTTP address (as `opensqt paper/run` prints it)")
        ] = "http://127.0.0.1:8080",
        host: Annotated[str, typer.Option(help="bind address (beyond loopback needs a token)")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port of the page (0 = any)")] = 9798,
        token_env: Annotated[str, typer.Option(help="env var holding this page's token")] = TOKEN_ENV,
        engine_token_env: Annotated[
            str, typer.Option(help="env var holding the engine's live token")
        ] = TOKEN_ENV,
        origin: Annotated[list[str] | None, typer.Option(help="extra allowed browser Origin")] = None,
    ) -> None:
        """Serve the live page, following an engine's live feed (no venue connection of its own)."""
        try:
            asyncio.run(
                serve(
                    engine,
                    host,
                    port,
                    token=_secret(token_env),
                    engine_token=_secret(engine_token_env),
                    origins=origin or [],
                )
            )
        except ValueError as exc:  # beyond loopback without a token
            typer.echo(f"opensqt live: {exc} (env {token_env})", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            typer.echo(f"opensqt live: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
