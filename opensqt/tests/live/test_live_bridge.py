"""The engine -> page bridge: order lifecycle, fills, PnL, slots and risk as protocol messages."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from opensqt.engine.events import EngineEvents

from .rig import Rig


async def _settle() -> None:
    """Let the bridge's coalesced diff (scheduled with call_soon) run."""
    for _ in range(3):
        await asyncio.sleep(0)


def _published(rig: Rig) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    original = rig.feed.publish

    def spy(kind: str, data: Any) -> None:
        out.append((kind, data))
        original(kind, data)

    rig.feed.publish = spy  # type: ignore[method-assign]
    return out


async def test_new_orders_then_cancelled_when_they_leave_the_window(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        sent = _published(rig)
        await rig.tick("100")
        await _settle()
        new = [d for k, d in sent if k == "orders"]
        assert {d["status"] for d in new} == {"NEW"} and len(new) == len(rig.open_orders())
        assert all(isinstance(d["id"], int) for d in new)
        sent.clear()
        await rig.tick("110")
        await _settle()
        gone = {d["price"]: d["status"] for k, d in sent if k == "orders" and d["side"] == "BUY"}
        assert {Decimal(p) for p, s in gone.items() if s == "CANCELED"} == {Decimal(98), Decimal(99)}
        assert not [d for k, d in sent if k == "trade_event"]


async def test_partial_then_full_fill(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.tick("100")
        await _settle()
        sent = _published(rig)
        buy = max(rig.open_orders(), key=lambda o: Decimal(o.price))
        half = Decimal(buy.quantity) / 2
        await rig.engine.on_report(await rig.mock.fill(client_order_id=buy.client_order_id, quantity=half))
        await _settle()
        statuses = [d["status"] for k, d in sent if k == "orders"]
        assert statuses == ["PARTIALLY_FILLED"]
        await rig.engine.on_report(await rig.mock.fill(client_order_id=buy.client_order_id, quantity=half))
        await _settle()
        statuses = [d["status"] for k, d in sent if k == "orders"]
        assert statuses == ["PARTIALLY_FILLED", "FILLED"]
        trades = [d for k, d in sent if k == "trade_event"]
        assert [Decimal(t["amount"]) for t in trades] == [half, half]
        pos = [d for k, d in sent if k == "position"][-1]
        assert Decimal(pos["amount"]) == Decimal(buy.quantity) and Decimal(pos["entryPrice"]) == Decimal(
            buy.price
        )
        slots = [d for k, d in sent if k == "slots"][-1]
        assert any(Decimal(s["position"]) > 0 for s in slots["slots"])


async def test_risk_banner_follows_the_guards(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        sent = _published(rig)
        rig.engine.breaker.open, rig.engine.breaker.reason = True, "position mismatch"
        rig.engine.events.emit("reconcile")
        await _settle()
        risk = [d for k, d in sent if k == "risk_status"]
        assert risk[-1]["type"] == "circuit_breaker" and "position mismatch" in risk[-1]["message"]
        rig.engine.breaker.open = False
        rig.engine.events.emit("reconcile")
        await _settle()
        assert [d for k, d in sent if k == "risk_status"][-1]["type"] == "ok"


async def test_risk_status_shows_the_circuit_breakers(tmp_path: Path) -> None:
    from opensqt.config import BreakersConfig
    from opensqt.risk.breakers import BreakerBook

    async with Rig(tmp_path) as rig:
        sent = _published(rig)
        book = BreakerBook(BreakersConfig.model_validate({"stale_feed": {"price_seconds": 1}}))
        book.feeds(5.0, None, 0.0)
        rig.engine.guards.breakers = book
        rig.engine.events.emit("risk")
        await _settle()
        risk = [d for k, d in sent if k == "risk_status"][-1]
        assert risk["type"] == "circuit_breaker" and risk["severity"] == "critical"
        assert "stale_feed" in risk["message"] and "no price for 5.0 s" in risk["message"]
        book.reset()
        rig.engine.events.emit("risk")
        await _settle()
        assert [d for k, d in sent if k == "risk_status"][-1]["type"] == "ok"


def test_a_failing_listener_never_reaches_the_engine(caplog: pytest.LogCaptureFixture) -> None:
    events = EngineEvents()
    seen: list[str] = []

    def bad(_reason: str) -> None:
        raise RuntimeError("boom")

    events.subscribe(bad)
    remove = events.subscribe(seen.append)
    events.emit("price")
    assert seen == ["price"]
    remove()
    events.emit("price")
    assert seen == ["price"]


async def test_candles_fall_back_to_price_ticks_when_the_candle_stream_ends(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        sent = _published(rig)
        await rig.mock.stream("candles").wait_subscribed()
        rig.mock.stream("candles").fail(RuntimeError("stream lost"))
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            await rig.tick("100.5")
            await _settle()
            if [d for k, d in sent if k == "kline"]:
                break
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        kline = [d for k, d in sent if k == "kline"][-1]
        assert kline["close"] == "100.5" and kline["time"] % 60 == 0


async def test_notices_within_one_step_coalesce_into_one_diff(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        runs: list[int] = []
        original = rig.bridge.flush

        def counting() -> None:
            runs.append(1)
            original()

        rig.bridge.flush = counting  # type: ignore[method-assign]
        for reason in ("price", "report", "placed"):
            rig.engine.events.emit(reason)
        assert runs == []  # nothing inside the engine's step
        await _settle()
        assert runs == [1]
