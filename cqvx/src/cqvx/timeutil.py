"""Time facts shared by every venue and service: protobuf ``Timestamp`` conversions and candle intervals.

The one home (``cqvx/tests/base/test_one_home.py`` fails when a copy appears elsewhere):

* ``datetime`` / epoch nanoseconds / milliseconds <-> ``google.protobuf.Timestamp``.  Timestamps are
  UTC; a naive ``datetime`` is UTC by the platform's convention, and :func:`to_datetime` always returns
  an aware UTC datetime.
* The candle-interval table: cqc ``CandleInterval`` -> width in seconds (:data:`CANDLE_SECONDS`) and
  back (:func:`candle_interval`).  Which intervals a venue offers, and under which wire names, stays in
  that venue's adapter (e.g. Coinbase's granularity names), keyed by this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import candle_pb2

__all__ = [
    "CANDLE_SECONDS",
    "NS_PER_SECOND",
    "candle_interval",
    "set_timestamp_ns",
    "timestamp_from_datetime",
    "timestamp_from_ms",
    "timestamp_from_ns",
    "timestamp_now",
    "timestamp_of",
    "to_datetime",
    "to_ns",
    "to_seconds",
]

NS_PER_SECOND: Final = 1_000_000_000


def timestamp_of(seconds: int, nanos: int = 0) -> Timestamp:
    """A Timestamp from whole seconds since the epoch and a nanosecond fraction (0 <= nanos < 1e9)."""
    return Timestamp(seconds=seconds, nanos=nanos)


def timestamp_from_ns(ns: int) -> Timestamp:
    """Epoch nanoseconds -> Timestamp (floor division: negative instants keep 0 <= nanos < 1e9)."""
    return Timestamp(seconds=ns // NS_PER_SECOND, nanos=ns % NS_PER_SECOND)


def set_timestamp_ns(ts: Timestamp, ns: int) -> None:
    """Write epoch nanoseconds into a Timestamp field in place (as :func:`timestamp_from_ns`).

    For a message's own Timestamp field: two field writes instead of a new message and a CopyFrom
    (a third of the cost, measured on the simulated venue's reports)."""
    ts.seconds, ts.nanos = divmod(ns, NS_PER_SECOND)


def timestamp_from_ms(ms: int) -> Timestamp:
    """Epoch milliseconds -> Timestamp."""
    return timestamp_from_ns(ms * 1_000_000)


def timestamp_from_datetime(moment: datetime) -> Timestamp:
    """A datetime -> Timestamp; a naive datetime is UTC."""
    ts = Timestamp()
    ts.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return ts


def timestamp_now() -> Timestamp:
    """The current wall-clock time."""
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def to_datetime(ts: Timestamp) -> datetime:
    """Timestamp -> aware UTC datetime (microsecond precision, as datetime has)."""
    return ts.ToDatetime(tzinfo=UTC)


def to_ns(ts: Timestamp) -> int:
    """Timestamp -> epoch nanoseconds (exact)."""
    return ts.seconds * NS_PER_SECOND + ts.nanos


def to_seconds(ts: Timestamp) -> float:
    """Timestamp -> epoch seconds as a float (for clocks and rates, never for money)."""
    return ts.seconds + ts.nanos / NS_PER_SECOND


# cqc CandleInterval -> width in seconds.  A month has no fixed width and is not here.
CANDLE_SECONDS: Final[Mapping[int, int]] = MappingProxyType(
    {
        candle_pb2.CANDLE_INTERVAL_1SEC: 1,
        candle_pb2.CANDLE_INTERVAL_1MIN: 60,
        candle_pb2.CANDLE_INTERVAL_5MIN: 300,
        candle_pb2.CANDLE_INTERVAL_15MIN: 900,
        candle_pb2.CANDLE_INTERVAL_30MIN: 1800,
        candle_pb2.CANDLE_INTERVAL_1HOUR: 3600,
        candle_pb2.CANDLE_INTERVAL_2HOUR: 7200,
        candle_pb2.CANDLE_INTERVAL_4HOUR: 14_400,
        candle_pb2.CANDLE_INTERVAL_6HOUR: 21_600,
        candle_pb2.CANDLE_INTERVAL_1DAY: 86_400,
        candle_pb2.CANDLE_INTERVAL_1WEEK: 604_800,
    }
)
_INTERVAL_BY_SECONDS: Final[Mapping[int, int]] = MappingProxyType({s: i for i, s in CANDLE_SECONDS.items()})


def candle_interval(seconds: int) -> int | None:
    """The cqc CandleInterval exactly ``seconds`` wide, or None."""
    return _INTERVAL_BY_SECONDS.get(seconds)
