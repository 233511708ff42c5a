"""Fixtures for the connector tests: real grpc.aio servers on 127.0.0.1:0 and RemoteVenue clients,
with every interval shortened to milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from cqvx.client import VenueClient
from opensqt.connector import ConnectorConfig, ConnectorServer, DialPolicy, RemoteVenue, StreamPolicy

FAST_DIAL = DialPolicy(initial=0.02, maximum=0.2, attempts=6, attempt_timeout=1.0)
FAST_STREAM = StreamPolicy(initial=0.02, maximum=0.2)

StartServer = Callable[..., Awaitable[ConnectorServer]]
Connect = Callable[..., Awaitable[RemoteVenue]]


def fast_config(**overrides: Any) -> ConnectorConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "health_interval": 0.05,
        "health_timeout": 1.0,
        "upstream_retry_initial": 0.01,
        "upstream_retry_max": 0.05,
        "grace": 0.5,
        "validation_timeout": 2.0,
    }
    settings.update(overrides)
    return ConnectorConfig(**settings)


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    servers: list[ConnectorServer] = []

    async def start(venues: Sequence[VenueClient] | VenueClient, **overrides: Any) -> ConnectorServer:
        vs = [venues] if isinstance(venues, VenueClient) else list(venues)
        server = ConnectorServer(vs, fast_config(**overrides), close_venues=False)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await asyncio.wait_for(server.stop(0), 10)


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    clients: list[RemoteVenue] = []

    async def dial(target: ConnectorServer | str, venue: str | None = None, **kw: Any) -> RemoteVenue:
        address = target.address if isinstance(target, ConnectorServer) else target
        kw.setdefault("dial", FAST_DIAL)
        kw.setdefault("stream_policy", FAST_STREAM)
        kw.setdefault("timeout", 5.0)
        client = await RemoteVenue.connect(address, venue, **kw)
        clients.append(client)
        return client

    yield dial
    for client in clients:
        await asyncio.wait_for(client.aclose(), 10)
