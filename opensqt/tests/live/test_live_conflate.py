"""Conflation of high-rate state messages (``position``, ``account``, ``slots``, ``kline``): at most one
per 0.25 s per (type, symbol), the latest value wins, the last one is always delivered; events never wait."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opensqt.live.feed import LiveFeed
from opensqt.live.hub import Hub


class _Recorder(Hub):
    """A real hub (no clients) that also keeps every broadcast with its time."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self._now = clock

    def broadcast(self, text: str) -> None:
        super().broadcast(text)
        self.sent.append((self._now(), json.loads(text)))


def _position(symbol: str, price: int) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "amount": "1",
        "entryPrice": "100",
        "unrealizedPnL": str(price - 100),
        "realizedPnL": "0",
        "currentPrice": str(price),
    }


def _candle(t: int, close: int) -> dict[str, Any]:
    return {"time": t, "open": "1", "high": "9", "low": "1", "close": str(close), "volume": "1"}


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def test_a_burst_sends_the_first_at_once_and_the_last_when_the_interval_is_over() -> None:
    hub = _Recorder()
    feed = LiveFeed(hub)
    for price in range(100, 120):  # 20 ticks in one go
        feed.publish("position", _position("ETHUSDC", price))
    assert [m["data"]["currentPrice"] for _, m in hub.sent] == ["100"]
    assert feed.latest["position"]["currentPrice"] == "119"  # a client connecting now gets the latest
    await _until(lambda: len(hub.sent) == 2)
    assert hub.sent[1][1]["data"]["currentPrice"] == "119"
    assert hub.sent[1][0] - hub.sent[0][0] >= 0.24
    await asyncio.sleep(0.4)
    assert len(hub.sent) == 2  # nothing more to say


async def test_a_steady_20_per_second_stream_goes_out_at_most_4_per_second() -> None:
    hub = _Recorder()
    feed = LiveFeed(hub)
    started = time.monotonic()
    for price in range(100, 140):
        feed.publish("position", _position("ETHUSDC", price))
        await asyncio.sleep(0.05)
    await _until(lambda: hub.sent[-1][1]["data"]["currentPrice"] == "139")
    elapsed = time.monotonic() - started
    times = [t for t, _ in hub.sent]
    assert all(b - a >= 0.24 for a, b in itertools.pairwise(times))
    assert len(hub.sent) <= elapsed / 0.25 + 2
    assert len(hub.sent) >= 3  # it is throttled, not stopped


async def test_symbols_and_types_are_throttled_separately() -> None:
    hub = _Recorder()
    feed = LiveFeed(hub)
    feed.publish("position", _position("ETHUSDC", 100))
    feed.publish("position", _position("BTCUSDC", 200))
    feed.publish(
        "account", {"asset": "USDC", "free": "1", "balance": "2", "marginBalance": "2", "symbol": "ETHUSDC"}
    )
    feed.publish(
        "account", {"asset": "USDT", "free": "1", "balance": "2", "marginBalance": "2", "symbol": "ETHUSDC"}
    )
    assert [(m["type"], m["data"]["symbol"]) for _, m in hub.sent] == [
        ("position", "ETHUSDC"),
        ("position", "BTCUSDC"),
        ("account", "ETHUSDC"),
        ("account", "ETHUSDC"),  # another asset: its own balance line
    ]


async def test_events_are_never_held() -> None:
    hub = _Recorder()
    feed = LiveFeed(hub)
    for i in range(1, 6):
        feed.publish(
            "orders",
            {
                "id": i,
                "price": "1",
                "side": "BUY",
                "status": "NEW",
                "type": "LIMIT",
                "symbol": "X",
                "quantity": "1",
                "executedQty": "0",
            },
        )
        feed.publish("trade_event", {"side": "buy", "price": str(i), "amount": "1", "symbol": "X", "time": i})
        feed.publish(
            "risk_status",
            {"symbol": "X", "type": "ok", "severity": "info", "message": str(i), "timestamp": i},
        )
    assert [m["type"] for _, m in hub.sent] == ["orders", "trade_event", "risk_status"] * 5


async def test_a_new_minute_sends_the_last_value_of_the_previous_one_first() -> None:
    hub = _Recorder()
    feed = LiveFeed(hub)
    feed.publish("kline", _candle(60, 1))
    feed.publish("kline", _candle(60, 2))  # held
    feed.publish("kline", _candle(60, 3))  # replaces it
    feed.publish("kline", _candle(120, 4))  # the minute turns: 60/3 goes now, 120/4 waits
    assert [(m["data"]["time"], m["data"]["close"]) for _, m in hub.sent] == [(60, "1"), (60, "3")]
    await _until(lambda: len(hub.sent) == 3)
    assert hub.sent[2][1]["data"] == _candle(120, 4)


async def test_close_delivers_what_is_held() -> None:
    hub = _Recorder()
    feed = LiveFeed(hub)
    feed.publish("slots", {"symbol": "X", "counts": {}, "slots": []})
    feed.publish("slots", {"symbol": "X", "counts": {"FREE": 1}, "slots": []})
    feed.close()
    assert hub.sent[-1][1]["data"]["counts"] == {"FREE": 1}
    await asyncio.sleep(0.35)
    assert len(hub.sent) == 2  # the cancelled timer sends nothing more


_STEP = st.one_of(
    st.tuples(st.just("position"), st.sampled_from(["A", "B"]), st.integers(0, 9)),
    st.tuples(st.just("kline"), st.integers(0, 3), st.integers(0, 9)),
    st.tuples(st.just("wait"), st.floats(0, 0.5), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, max_size=40))
def test_latest_wins_rate_holds_and_candles_stay_in_order(steps: list[tuple[str, Any, Any]]) -> None:
    now = [0.0]
    hub = _Recorder(clock=lambda: now[0])
    feed = LiveFeed(hub, clock=lambda: now[0])
    last: dict[tuple[str, str], Any] = {}
    minute = 0

    async def run() -> None:
        nonlocal minute
        for kind, a, b in steps:
            if kind == "wait":
                now[0] += a  # the feed's clock only: its timers never fire here, close() flushes
            elif kind == "position":
                feed.publish("position", _position(a, b))
                last[("position", a)] = b
            else:
                minute = max(minute, a)  # the bridge never goes back in time
                feed.publish("kline", _candle(60 * minute, b))
                last[("kline", "")] = (60 * minute, b)
        feed.close()

    asyncio.run(run())
    final: dict[tuple[str, str], Any] = {}
    sent_at: dict[tuple[str, str], float] = {}
    times = []
    for at, m in hub.sent:
        d = m["data"]
        if m["type"] == "position":
            key = ("position", d["symbol"])
            final[key] = int(d["currentPrice"])
            if key in sent_at:  # before close(), never two in one interval
                assert at - sent_at[key] >= 0.25 or at == now[0]
            sent_at[key] = at
        else:
            final[("kline", "")] = (d["time"], int(d["close"]))
            times.append(d["time"])
    assert final == last
    assert times == sorted(times)
