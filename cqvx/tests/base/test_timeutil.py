"""cqvx.timeutil: the one home for Timestamp conversions and the candle-interval table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from cqc.markets.v1 import candle_pb2
from cqvx import timeutil
from cqvx.venues.coinbase import endpoints as ep


@given(st.integers(-(10**18), 253_402_300_799 * 10**9))
def test_nanoseconds_round_trip_exactly(ns: int) -> None:
    ts = timeutil.timestamp_from_ns(ns)
    assert 0 <= ts.nanos < 10**9
    assert timeutil.to_ns(ts) == ns


def test_naive_datetimes_are_utc_and_results_are_aware() -> None:
    naive = datetime(2024, 5, 1, 12, 30, 0, 250_000)
    aware = naive.replace(tzinfo=UTC)
    assert timeutil.timestamp_from_datetime(naive) == timeutil.timestamp_from_datetime(aware)
    plus2 = aware.astimezone(timezone(timedelta(hours=2)))
    assert timeutil.timestamp_from_datetime(plus2) == timeutil.timestamp_from_datetime(aware)
    back = timeutil.to_datetime(timeutil.timestamp_from_datetime(naive))
    assert back == aware and back.tzinfo is UTC
    assert timeutil.timestamp_from_ms(1_500) == timeutil.timestamp_of(1, 500_000_000)
    assert timeutil.to_seconds(timeutil.timestamp_of(1, 500_000_000)) == 1.5
    assert abs(timeutil.to_datetime(timeutil.timestamp_now()) - datetime.now(UTC)) < timedelta(seconds=5)


def test_candle_table_and_its_inverse() -> None:
    assert timeutil.CANDLE_SECONDS[candle_pb2.CANDLE_INTERVAL_5MIN] == 300
    for interval, seconds in timeutil.CANDLE_SECONDS.items():
        assert timeutil.candle_interval(seconds) == interval
    assert timeutil.candle_interval(61) is None
    assert candle_pb2.CANDLE_INTERVAL_1MONTH not in timeutil.CANDLE_SECONDS  # no fixed width


def test_coinbase_granularity_is_unchanged_by_taking_widths_from_the_table() -> None:
    assert ep.GRANULARITY == {
        1: ("ONE_MINUTE", 60),
        2: ("FIVE_MINUTE", 300),
        3: ("FIFTEEN_MINUTE", 900),
        4: ("THIRTY_MINUTE", 1800),
        5: ("ONE_HOUR", 3600),
        11: ("TWO_HOUR", 7200),
        12: ("SIX_HOUR", 21600),
        7: ("ONE_DAY", 86400),
    }


@given(st.integers(-(10**19), 10**19))
def test_set_timestamp_ns_writes_what_timestamp_from_ns_makes(ns: int) -> None:
    msg = candle_pb2.Candle()
    timeutil.set_timestamp_ns(msg.open_time, ns)
    assert msg.HasField("open_time")
    assert msg.open_time == timeutil.timestamp_from_ns(ns)
