"""The shared conformance suite on the ccxt adapter (binance) through the connector:
``RemoteVenue`` -> gRPC -> connector -> ``CcxtClient`` -> ccxt -> loopback -> fake Binance USD-M."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import MappingProxyType

import pytest

from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.fake_binance.harness import BinanceCcxtHarness

from .test_connector_conformance import RemoteHarness, _served


class TestConnectorBinanceCcxtConformance(ConformanceSuite):
    venue = "connector:binance"
    # CcxtClient has get_positions but no subscribe_positions yet (streams not done), so it is not a
    # SupportsPositions and the connector refuses GetPositions; directly the suite skips the check.
    known_failures = MappingProxyType(
        {"test_position_after_a_perpetual_fill": "ccxt adapter: no position stream, so no SupportsPositions"}
    )

    @pytest.fixture
    async def harness(self) -> AsyncIterator[RemoteHarness]:
        async for h in _served(BinanceCcxtHarness()):
            yield h
