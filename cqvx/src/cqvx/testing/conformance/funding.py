"""Funding history, per :class:`cqvx.client.SupportsFundingHistory`.

* ``get_funding_rate_history(symbol)``: the perpetual's settled rates, oldest first, each with its
  ``rate`` and ``funding_time``; after the venue settles once more (the harness's hook, on the venue's
  side), the newest entry is that settlement, with the rate and time the venue itself recorded.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from cqvx.client import SupportsFundingHistory, VenueClient
from cqvx.testing.conformance.base import SuiteBase
from cqvx.testing.conformance.capabilities import capability
from cqvx.testing.conformance.harness import ConformanceHarness, FundingHistoryHarness
from cqvx.timeutil import to_ns

__all__ = ["FundingSuite"]


class FundingSuite(SuiteBase):
    """``funding_history``."""

    @capability("funding_history")
    async def test_funding_history_shows_a_new_settlement(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        if not isinstance(client, SupportsFundingHistory):
            pytest.skip(
                f"{harness.venue or self.venue}: capability 'funding_history' not supported "
                "(the client does not implement SupportsFundingHistory)"
            )
        if not isinstance(harness, FundingHistoryHarness):
            self._not_covered(harness, "funding_history", "the harness cannot settle funding (no hook)")
        assert isinstance(client, SupportsFundingHistory) and isinstance(harness, FundingHistoryHarness)
        symbol = harness.funding_symbol
        before = await client.get_funding_rate_history(symbol)
        await harness.settle_funding()
        truth = await harness.last_settlement()
        after = await client.get_funding_rate_history(symbol)
        assert after, f"no funding history for {symbol} after a settlement"
        times = [to_ns(f.funding_time) for f in after]
        assert all(f.HasField("funding_time") for f in after), "an entry without its funding_time"
        assert times == sorted(times), "not oldest first"
        assert all(f.symbol == symbol for f in after), "an entry for another symbol"
        newest = after[-1]
        assert to_ns(newest.funding_time) == to_ns(truth.funding_time), (
            f"newest entry at {newest.funding_time}, the venue settled at {truth.funding_time}"
        )
        assert Decimal(newest.rate) == Decimal(truth.rate), f"rate {newest.rate}, the venue's {truth.rate}"
        if before:
            assert to_ns(before[-1].funding_time) < to_ns(newest.funding_time), "the settlement did not show"
