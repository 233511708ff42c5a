"""Venues served through a real loopback connector, for the connector tests (one home for the wiring).

* :class:`DirectConnector`: a connector built in code around one venue client (``fast_config``).
* :class:`YamlConnector`: a connector built only from YAML text plus an environment, as in production
  (``load_connector_settings`` -> ``build_venues`` through the registry); the ``connector:`` block with
  the fast intervals and the token (from ``CONNECTOR_TOKEN``) is written here, the test gives the
  ``venues:`` entries.
* :class:`ServedHarness`: any conformance harness of :mod:`cqvx.testing.harnesses` (or a test's own)
  whose client becomes a ``RemoteVenue`` through one of those connectors; every hook still acts on the
  venue's side (the fake server or the sim), so a capability passes only if it survives the whole path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from cqvx.client import VenueClient
from opensqt.connector import ConnectorServer, RemoteVenue
from opensqt.connector.settings import load_connector_settings

from .conftest import FAST_DIAL, FAST_STREAM, fast_config

__all__ = ["Connector", "DirectConnector", "ServedHarness", "YamlConnector"]

TOKEN_ENV = "CONNECTOR_TOKEN"
_CONNECTOR_BLOCK = f"""\
connector:
  host: 127.0.0.1
  port: 0
  token: {{env: {TOKEN_ENV}}}
  health_interval: 0.05
  upstream_retry_initial: 0.01
  upstream_retry_max: 0.05
  grace: 0.5
  validation_timeout: 5
venues:
"""


class Connector(Protocol):
    async def start(self) -> None: ...

    async def connect(self, venue: str, *, timeout: float = 5.0) -> RemoteVenue: ...

    async def stop(self) -> None: ...


class YamlConnector:
    """``venues`` is the YAML under ``venues:`` (indented two spaces); ``env`` fills its variables."""

    def __init__(
        self, tmp: Path, venues: str, env: Mapping[str, str], *, token: str = "t0ken-from-env"
    ) -> None:
        self._tmp = tmp
        self.text = _CONNECTOR_BLOCK + venues
        self.env = {TOKEN_ENV: token, **env}
        self.venues: dict[str, VenueClient] = {}
        self.server: ConnectorServer | None = None

    @property
    def token(self) -> str:
        return self.env[TOKEN_ENV]

    async def start(self) -> None:
        path = self._tmp / "connector.yaml"
        path.write_text(self.text, encoding="utf-8")
        settings = load_connector_settings(path, env=self.env)
        self.venues = settings.build_venues()
        for client in self.venues.values():
            await client.__aenter__()
        self.server = ConnectorServer(self.venues, settings.server, close_venues=True)
        await self.server.start()

    async def connect(self, venue: str, *, timeout: float = 5.0) -> RemoteVenue:
        assert self.server is not None, "start() first"
        return await RemoteVenue.connect(
            self.server.address,
            venue,
            token=self.token,
            dial=FAST_DIAL,
            stream_policy=FAST_STREAM,
            timeout=timeout,
        )

    async def stop(self) -> None:
        if self.server is not None:
            await asyncio.wait_for(self.server.stop(0), 10)


class DirectConnector:
    """A connector around one venue client built in code (the client is closed by :meth:`stop`)."""

    def __init__(self, upstream: VenueClient) -> None:
        self._upstream = upstream
        self.server: ConnectorServer | None = None

    async def start(self) -> None:
        self.server = ConnectorServer([self._upstream], fast_config(), close_venues=False)
        await self.server.start()

    async def connect(self, venue: str, *, timeout: float = 5.0) -> RemoteVenue:
        assert self.server is not None, "start() first"
        return await RemoteVenue.connect(
            self.server.address, venue, dial=FAST_DIAL, stream_policy=FAST_STREAM, timeout=timeout
        )

    async def stop(self) -> None:
        if self.server is not None:
            # Bounded: after a venue-side stream drop the connector's hub can take long to close
            # (reported to the fan-out's owner); not these tests' subject.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.stop(0), 3.0)
        await self._upstream.aclose()


class ServedHarness:
    """``inner``'s hooks and flags; the suite's client is a ``RemoteVenue`` for ``served_as``.

    ``connector(inner)`` is called once ``inner`` has started (the fake's URL is known then); by
    default a :class:`DirectConnector` around ``inner.new_client()``.
    """

    def __init__(
        self,
        inner: Any,
        connector: Callable[[Any], Connector] | None = None,
        *,
        served_as: str | None = None,
    ) -> None:
        self.inner = inner
        self._make = connector
        self.served_as = served_as or inner.venue
        self.connector: Connector | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def start(self) -> None:
        start = getattr(self.inner, "start", None)
        if start is not None:
            await start()
        if self._make is None:
            self.connector = DirectConnector(await self.inner.new_client())
        else:
            self.connector = self._make(self.inner)
        await self.connector.start()

    async def new_client(self, venue: str | None = None) -> VenueClient:
        assert self.connector is not None, "start() first"
        return await self.connector.connect(venue or self.served_as, timeout=max(5.0, self.inner.timeout))

    async def close(self) -> None:
        if self.connector is not None:
            await self.connector.stop()
        await self.inner.close()
