"""The one bounded fan-out: each overflow policy, gaps in order, ends after what was queued."""

from __future__ import annotations

from typing import Any

import pytest

from cqc.markets.v1 import price_pb2, trade_pb2
from cqvx.fanout import Hub, SubscriberOverflow
from cqvx.streams import Gap


async def _drain(sub: Any) -> list[Any]:
    out = []
    while sub.pending():
        out.append(await sub.get())
    return out


async def test_drop_oldest_keeps_the_newest_and_announces_one_gap_in_place() -> None:
    hub = Hub("v", maxsize=3)
    sub = hub.subscribe([("trades", "X")], channel="trades", symbol="X")
    gaps: list[Gap] = []
    sub.on_gap(gaps.append)
    for i in range(6):
        hub.publish(("trades", "X"), trade_pb2.Trade(trade_id=str(i)))
    got = await _drain(sub)
    assert isinstance(got[0], Gap) and got[0].source == "fanout"
    assert [t.trade_id for t in got[1:]] == ["3", "4", "5"]
    assert len(gaps) == 1 and sub.dropped == 1  # one overflow episode, one notice


async def test_conflate_keeps_every_message_until_full_then_the_newest_per_symbol() -> None:
    hub = Hub("v", maxsize=3)
    sub = hub.subscribe(["p"], channel="prices")
    gaps: list[Gap] = []
    sub.on_gap(gaps.append)
    for last in ("1", "2"):
        hub.publish("p", price_pb2.Price(symbol="A", last=last))
    hub.publish("p", price_pb2.Price(symbol="B", last="9"))
    hub.publish("p", price_pb2.Price(symbol="A", last="3"))
    got = await _drain(sub)
    assert [(p.symbol, p.last) for p in got] == [("B", "9"), ("A", "3")]
    assert gaps == [] and sub.dropped == 0


async def test_fail_ends_after_the_queued_messages_with_a_gap_first() -> None:
    hub = Hub("v", maxsize=2)
    sub = hub.subscribe(["e"], channel="executions")
    gaps: list[Gap] = []
    sub.on_gap(gaps.append)
    for i in range(3):
        hub.publish("e", trade_pb2.Trade(trade_id=str(i)))
    assert len(gaps) == 1 and not hub.has("e")  # detached at once
    assert [(await sub.__anext__()).trade_id for _ in range(2)] == ["0", "1"]
    with pytest.raises(SubscriberOverflow):
        await sub.__anext__()


async def test_refused_subscription_raises_from_wait_live_and_first_read() -> None:
    hub = Hub("v")
    sub = hub.subscribe(["t"], channel="trades", live=False)
    sub.refuse(ValueError("unknown symbol"))
    with pytest.raises(ValueError):
        await sub.wait_live()
    with pytest.raises(ValueError):
        await sub.__anext__()


async def test_aclose_drops_the_queue_and_ends_iteration() -> None:
    hub = Hub("v")
    sub = hub.subscribe(["t"], channel="trades")
    hub.publish("t", trade_pb2.Trade(trade_id="1"))
    await sub.aclose()
    assert [m async for m in sub] == [] and not hub.has("t")
