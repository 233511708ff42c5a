"""The shared conformance suite on the ccxt adapter (binance) against the wire-level fake Binance USD-M."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.fake_binance.harness import BinanceCcxtHarness


class TestBinanceCcxtConformance(ConformanceSuite):
    venue = "binance"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[BinanceCcxtHarness]:
        h = BinanceCcxtHarness()
        await h.start()
        try:
            yield h
        finally:
            await h.close()
