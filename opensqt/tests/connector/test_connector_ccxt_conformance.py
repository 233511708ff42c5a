"""The shared conformance suite on the ccxt adapter (binance) through the connector:
``RemoteVenue`` -> gRPC -> connector -> ``CcxtClient`` -> ccxt -> loopback -> fake Binance USD-M."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.fake_binance.harness import BinanceCcxtHarness

from .test_connector_conformance import RemoteHarness, _served


class TestConnectorBinanceCcxtConformance(ConformanceSuite):
    venue = "connector:binance"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[RemoteHarness]:
        async for h in _served(BinanceCcxtHarness()):
            yield h
