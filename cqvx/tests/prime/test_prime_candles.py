"""Prime candles (``GET /v1/portfolios/{id}/candles``, beta) against the fake; the parser fed garbage."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.markets.v1 import candle_pb2
from cqc.venues.v1 import venue_pb2
from cqvx.errors import InvalidRequest, ParseError, UnsupportedOperation
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.venues.prime import PrimeClient, parse
from cqvx.venues.prime import models as m

from .conftest import PORTFOLIO

CANDLES = f"/v1/portfolios/{PORTFOLIO}/candles"
MINUTE = candle_pb2.CANDLE_INTERVAL_1MIN


def _query(path_qs: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(path_qs).query).items()}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed(fake: FakePrime, clock: FakeClock, n: int = 5) -> datetime:
    """``n`` one-minute candles, the newest one still open; returns the first bucket's start."""
    now = datetime.fromtimestamp(clock.now, tz=UTC).replace(second=0, microsecond=0)
    first = now - timedelta(minutes=n - 1)
    fake.candles[("BTC-USD", "ONE_MINUTE")] = [
        {
            "timestamp": _iso(first + timedelta(minutes=i)),
            "open": f"{50000 + i}.00",
            "high": f"{50010 + i}.5",
            "low": f"{49990 + i}",
            "close": f"{50001 + i}",
            "volume": f"1.2{i}",
        }
        for i in range(n)
    ]
    return first


async def test_candles_oldest_first_over_every_page(
    client: PrimeClient, fake: FakePrime, clock: FakeClock
) -> None:
    first = _seed(fake, clock)
    fake.page_limit = 2  # five candles: three pages
    got = await client.get_candles("BTC-USD", MINUTE)
    assert [c.open_time.seconds for c in got] == [
        int((first + timedelta(minutes=i)).timestamp()) for i in range(5)
    ]
    c0 = got[0]
    assert (c0.venue, c0.symbol, c0.interval) == ("prime", "BTC-USD", MINUTE)
    assert (c0.open, c0.high, c0.low, c0.close, c0.volume) == (
        "50000",
        "50010.5",
        "49990",
        "50001",
        "1.2",
    )  # canonical decimals
    assert c0.close_time.seconds == c0.open_time.seconds + 60
    assert [c.is_closed for c in got] == [True, True, True, True, False]
    sent = fake.requests_to(CANDLES)
    assert len(sent) == 3
    query = _query(sent[0].path_qs)
    assert (query["product_id"], query["granularity"]) == ("BTC-USD", "ONE_MINUTE")
    assert "limit" not in query  # the endpoint documents no page size
    assert [_query(r.path_qs).get("cursor", "") for r in sent] == ["", "2", "4"]


async def test_window_and_limit(client: PrimeClient, fake: FakePrime, clock: FakeClock) -> None:
    first = _seed(fake, clock)
    start, end = first + timedelta(minutes=1), first + timedelta(minutes=4)
    got = await client.get_candles("BTC-USD", MINUTE, start=start, end=end)
    assert [c.open for c in got] == ["50001", "50002", "50003"]
    query = _query(fake.requests_to(CANDLES)[-1].path_qs)
    assert (query["start_time"], query["end_time"]) == (_iso(start), _iso(end))
    newest = await client.get_candles("BTC-USD", MINUTE, limit=2)
    assert [c.open for c in newest] == ["50003", "50004"]


async def test_refusals_and_capabilities(client: PrimeClient, fake: FakePrime) -> None:
    with pytest.raises(InvalidRequest, match="interval"):
        await client.get_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1SEC)  # Prime has no 1 s candles
    with pytest.raises(InvalidRequest, match="limit"):
        await client.get_candles("BTC-USD", MINUTE, limit=0)
    with pytest.raises(InvalidRequest):
        await client.get_candles("BTC/USD?x=1", MINUTE)
    assert fake.requests_to(CANDLES) == []
    caps = client.capabilities()
    assert venue_pb2.CAPABILITY_CANDLES in caps and venue_pb2.CAPABILITY_CANDLE_STREAM not in caps
    with pytest.raises(UnsupportedOperation):
        client.subscribe_candles("BTC-USD", MINUTE)


async def test_a_bucket_twice_is_a_parse_error(
    client: PrimeClient, fake: FakePrime, clock: FakeClock
) -> None:
    _seed(fake, clock, n=2)
    rows = fake.candles[("BTC-USD", "ONE_MINUTE")]
    rows.append(dict(rows[0]))
    with pytest.raises(ParseError):
        await client.get_candles("BTC-USD", MINUTE)


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=20,
)
_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _parse(body: bytes | str) -> None:
    parse.candles(parse.decode(body, m.CandlesPage).candles, "BTC-USD", MINUTE, _NOW)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_bytes_raise_parse_error_only(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        _parse(data)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            k: _json | st.text(max_size=30) for k in ("timestamp", "open", "high", "low", "close", "volume")
        },
    )
)
def test_garbage_candles_raise_parse_error_only(candle: dict[str, object]) -> None:
    try:
        body = json.dumps({"candles": [candle], "pagination": {"has_next": False}})
    except ValueError:
        return
    with contextlib.suppress(ParseError):
        _parse(body)
