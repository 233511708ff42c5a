"""Funding history, per :class:`cqvx.client.SupportsFundingHistory`.

* ``get_funding_rate_history(symbol)``: the perpetual's settled rates, oldest first, each with its
  ``rate`` and ``funding_time``; after the venue settles once more (the harness's hook, on the venue's
  side), the newest entry is that settlement, with the rate and time the venue itself recorded.

Funding payments, per :class:`cqvx.client.SupportsFundingPayments`.

* ``get_funding_payments(symbol, start)``: with a long open on the perpetual, after the venue settles
  once more, the newest payment is that settlement: the amount the venue itself recorded (signed,
  + received), its asset and time (to the millisecond, what every venue carries); funding transactions
  only, oldest first, one per id.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from decimal import Decimal

import pytest

from cqc.portfolio.v1 import transaction_pb2
from cqc.venues.v1 import order_pb2
from cqvx.client import SupportsFundingHistory, SupportsFundingPayments, VenueClient
from cqvx.errors import VenueError
from cqvx.testing.conformance.base import SuiteBase
from cqvx.testing.conformance.capabilities import capability
from cqvx.testing.conformance.harness import (
    ConformanceHarness,
    FundingHistoryHarness,
    FundingPaymentsHarness,
    PositionHarness,
)
from cqvx.timeutil import to_datetime, to_ns

__all__ = ["FundingSuite"]


class FundingSuite(SuiteBase):
    """``funding_history``, ``funding_payments``."""

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

    @capability("funding_payments")
    async def test_funding_payments_show_a_new_settlement(
        self, harness: ConformanceHarness, client: VenueClient
    ) -> None:
        if not isinstance(client, SupportsFundingPayments):
            pytest.skip(
                f"{harness.venue or self.venue}: capability 'funding_payments' not supported "
                "(the client does not implement SupportsFundingPayments)"
            )
        if not isinstance(harness, FundingPaymentsHarness) or not isinstance(harness, PositionHarness):
            self._not_covered(
                harness, "funding_payments", "the harness cannot hold a perpetual and settle its funding"
            )
        assert isinstance(client, SupportsFundingPayments) and isinstance(harness, FundingPaymentsHarness)
        assert isinstance(harness, PositionHarness)
        symbol = harness.funding_symbol
        size = Decimal("0.01")
        sell, buy = order_pb2.ORDER_SIDE_SELL, order_pb2.ORDER_SIDE_BUY
        opened = await client.place_order(harness.position_order(self.new_client_order_id(), buy, size))
        try:
            await self._poll(
                harness,
                lambda: client.get_order(symbol=symbol, order_id=opened.order_id),
                lambda o: o.status == order_pb2.ORDER_STATUS_FILLED,
                "the long on the perpetual did not fill",
            )
            await harness.settle_funding()
            truth = await harness.last_funding_payment()
            at_ms = to_ns(truth.timestamp) // 1_000_000
            paid = await client.get_funding_payments(
                symbol, start=to_datetime(truth.timestamp) - timedelta(hours=1)
            )
            assert paid, f"no funding payment on {symbol} after a settlement on an open position"
            assert all(t.transaction_type == transaction_pb2.TRANSACTION_TYPE_FUNDING for t in paid)
            times = [to_ns(t.timestamp) for t in paid]
            assert times == sorted(times), "not oldest first"
            assert len({t.transaction_id for t in paid}) == len(paid), "a payment listed twice"
            newest = paid[-1]
            assert to_ns(newest.timestamp) // 1_000_000 == at_ms, (
                f"newest payment at {newest.timestamp}, the venue settled at {truth.timestamp}"
            )
            assert newest.asset == truth.asset, f"asset {newest.asset}, the venue's {truth.asset}"
            # Within 1e-8: a venue may write the amount to 8 decimals (Binance's income history).
            assert abs(Decimal(newest.amount) - Decimal(truth.amount)) < Decimal("1e-8"), (
                f"amount {newest.amount}, the venue's {truth.amount} (+ received)"
            )
        finally:
            with contextlib.suppress(VenueError):
                close = harness.position_order(self.new_client_order_id(), sell, size)
                await client.place_order(close)
