"""The one funding estimate (:mod:`opensqt.risk.funding`): settlements seen from successive readings,
whether the venue names the last settlement (``funding_time``) or only the next one (ccxt)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from cqc.markets.v1 import funding_pb2
from cqvx.timeutil import timestamp_from_ms
from opensqt.risk.funding import FundingSettlements, funding_paid

D = Decimal
H = 3_600_000  # ms


def _last(at_ms: int, rate: str, mark: str = "100") -> funding_pb2.FundingRate:
    fr = funding_pb2.FundingRate(rate=rate, mark_price=mark)
    fr.funding_time.CopyFrom(timestamp_from_ms(at_ms))
    return fr


def _next(at_ms: int, rate: str, mark: str = "100") -> funding_pb2.FundingRate:
    fr = funding_pb2.FundingRate(rate=rate, mark_price=mark)
    fr.next_funding_time.CopyFrom(timestamp_from_ms(at_ms))
    return fr


def test_a_moved_funding_time_is_one_settlement_at_the_settled_rate_after_the_baseline() -> None:
    s = FundingSettlements()
    assert s.observe(_last(8 * H, "0.0001")) is None  # baseline
    assert s.observe(_last(8 * H, "0.0001")) is None  # the same reading again
    got = s.observe(_last(16 * H, "0.0003", "101"))
    assert got is not None and got.rate == D("0.0003") and got.mark == D(101)
    assert s.observe(_last(16 * H, "0.0003")) is None


def test_a_moved_next_time_settles_the_previous_one_at_the_rate_announced_for_it() -> None:
    s = FundingSettlements()
    assert s.observe(_next(8 * H, "0.0001")) is None
    assert s.observe(_next(8 * H, "0.0002")) is None  # the announced rate changes before the settlement
    got = s.observe(_next(16 * H, "0.0005", "99"))
    assert got is not None and got.rate == D("0.0002") and got.mark == D(99)
    assert got.at_ns == 8 * H * 1_000_000
    assert s.observe(_next(16 * H, "0.0005")) is None
    assert s.observe(_next(8 * H, "0.0001")) is None  # an older (out of order) reading: nothing


def test_a_reading_without_times_is_no_evidence() -> None:
    s = FundingSettlements()
    assert s.observe(funding_pb2.FundingRate(rate="0.01")) is None
    assert s.observe(funding_pb2.FundingRate(rate="0.01")) is None


@given(
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=3),
)
def test_each_settlement_is_counted_once_however_often_it_is_read(steps: list[int], repeats: int) -> None:
    s = FundingSettlements()
    at, counted = 0, 0
    for step in steps:
        at += step * H
        for _ in range(1 + repeats):
            counted += s.observe(_next(at, "0.0001")) is not None
    assert counted == len(steps) - 1  # every next time but the last has settled


def test_a_long_pays_a_positive_rate_and_a_short_receives_it() -> None:
    assert funding_paid(D(2), D(100), D("0.001")) == D("0.2")
    assert funding_paid(D(-2), D(100), D("0.001")) == D("-0.2")
    assert funding_paid(D(-2), D(100), D("-0.001")) == D("0.2")
