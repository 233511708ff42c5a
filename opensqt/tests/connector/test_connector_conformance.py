"""The shared conformance suite through the connector: ``RemoteVenue`` -> gRPC -> connector -> venue.

The venue behind the connector is the simulator or Coinbase (its wire-level fake), each with the
harness cqvx's own conformance tests use; :class:`RemoteHarness` wires a real loopback
:class:`ConnectorServer` around the venue client and hands the suite a :class:`RemoteVenue`.  Every
hook still acts on the venue's side (the fake server or the sim), so a capability passes only if it
survives the whole path.  The matrix shows these runs as their own rows (``connector:<venue>``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cqvx.client import VenueClient
from cqvx.testing.conformance import ConformanceHarness, ConformanceSuite
from cqvx.testing.harnesses import CoinbaseHarness, SimHarness
from opensqt.connector import ConnectorServer, RemoteVenue

from .conftest import FAST_DIAL, FAST_STREAM, fast_config


class RemoteHarness:
    """Any venue harness, served through a connector: the suite's client is a ``RemoteVenue``.

    Everything but the client comes from the venue's own harness (hooks, flags, counters), so the
    optional capabilities are exactly those the venue's harness can drive.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._upstream: VenueClient | None = None
        self._server: ConnectorServer | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def start(self) -> None:
        start = getattr(self._inner, "start", None)
        if start is not None:
            await start()
        self._upstream = await self._inner.new_client()
        self._server = ConnectorServer([self._upstream], fast_config(), close_venues=False)
        await self._server.start()

    async def new_client(self) -> VenueClient:
        assert self._server is not None, "start() first"
        return await RemoteVenue.connect(
            self._server.address, self._inner.venue, dial=FAST_DIAL, stream_policy=FAST_STREAM, timeout=5.0
        )

    async def close(self) -> None:
        if self._server is not None:
            # Bounded like the other connector tests: after a venue-side stream drop the connector's
            # hub can take long to close (reported to the fan-out's owner); not this suite's subject.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.stop(0), 3.0)
        if self._upstream is not None:
            await self._upstream.aclose()
        await self._inner.close()


async def _served(inner: Any) -> AsyncIterator[RemoteHarness]:
    h = RemoteHarness(inner)
    await h.start()
    assert isinstance(h, ConformanceHarness)
    try:
        yield h
    finally:
        await h.close()


# The sim loses the in-transit report without a notice, so the connector cannot announce a gap either
# (and RemoteVenue's streams have no on_gap yet); remove once the stream contract lands.
SIM_KNOWN_FAILURES = {
    "test_execution_stream_fill_lost_in_transit": (
        "the sim announces no Gap when a dropped stream lost an execution report (nor can the connector)"
    ),
}


class TestConnectorSimConformance(ConformanceSuite):
    venue = "connector:sim"
    known_failures = SIM_KNOWN_FAILURES

    @pytest.fixture
    async def harness(self) -> AsyncIterator[RemoteHarness]:
        async for h in _served(SimHarness()):
            yield h


class TestConnectorCoinbaseConformance(ConformanceSuite):
    venue = "connector:coinbase"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[RemoteHarness]:
        async for h in _served(CoinbaseHarness()):
            yield h
