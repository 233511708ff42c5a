"""The shared conformance suite through the connector: ``RemoteVenue`` -> gRPC -> connector -> venue.

The venue behind the connector is the simulator or Coinbase (its wire-level fake), each with the
harness cqvx's own conformance tests use; ``served.ServedHarness`` wires a real loopback
:class:`ConnectorServer` around the venue client and hands the suite a :class:`RemoteVenue`.  Every
hook still acts on the venue's side (the fake server or the sim), so a capability passes only if it
survives the whole path.  The matrix shows these runs as their own rows (``connector:<venue>``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cqvx.testing.conformance import ConformanceHarness, ConformanceSuite
from cqvx.testing.harnesses import CoinbaseHarness, SimHarness

from .served import ServedHarness

# The name other connector suites import (test_connector_ccxt_conformance).
RemoteHarness = ServedHarness


async def _served(inner: Any) -> AsyncIterator[ServedHarness]:
    h = ServedHarness(inner)
    await h.start()
    assert isinstance(h, ConformanceHarness)
    try:
        yield h
    finally:
        await h.close()


class TestConnectorSimConformance(ConformanceSuite):
    venue = "connector:sim"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[ServedHarness]:
        async for h in _served(SimHarness()):
            yield h


class TestConnectorCoinbaseConformance(ConformanceSuite):
    venue = "connector:coinbase"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[ServedHarness]:
        async for h in _served(CoinbaseHarness()):
            yield h
