# mypy: disable-error-code="comparison-overlap"
"""The engine's collaborators on their own: loop supervisor, slot ledger, reconciler, status view, and the
price monitor's and the order stream's reconnect behaviour (gap notices, the one backoff)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import Unavailable
from cqvx.streams import Gap, GapListener, LiveStream
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from cqvx.testing.waits import until
from opensqt.config import parse_config
from opensqt.engine.context import EngineStats, GridContext
from opensqt.engine.executor import VenueOrderState
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.price_monitor import PriceMonitor
from opensqt.engine.store import AsyncStore, StateStore, sqlite_url
from opensqt.engine.supervisor import Supervisor
from opensqt.model.slots import SlotState
from opensqt.observability.metrics import EngineMetrics
from opensqt.strategy.grid import GridParams, Place

D = Decimal
SYM = "BTC-USD"
CFG = """
trading:
  symbol: BTC-USD
  price_interval: 1
  order_quantity: 30
  min_order_value: 20
  buy_window_size: 3
  sell_window_size: 3
  position_safety_check: 10
  recover_position: false
engine:
  price_send_interval: 0
  reconcile_interval: 3600
risk:
  enabled: false
system:
  cancel_on_exit: false
"""


class _Sleeps:
    """A fake sleep: records the delay and returns at once (yielding to the loop)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------------------ supervisor


async def test_supervisor_restarts_a_failing_loop_with_the_jittered_backoff() -> None:
    sleeps, unexpected, after = _Sleeps(), [], []
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("adapter bug")  # unexpected: counted
        if runs == 2:
            raise Unavailable("venue down")  # a venue error: logged, not an anomaly
        if runs == 3:
            return  # a stream that ended: restarted too
        await asyncio.Event().wait()  # healthy from now on

    async def after_restart() -> None:
        after.append(runs)

    sup = Supervisor(
        on_unexpected=lambda: unexpected.append(1), sleep=sleeps, rng=random.Random(7), clock=lambda: 0.0
    )
    sup.spawn("stream", body, after_restart=after_restart)
    await until(lambda: runs == 4)
    assert unexpected == [1]
    assert after == [1, 2, 3]
    assert sup.restarts == {"stream": 3}
    # Full jitter under a doubling cap: 0.5, 1.0, 2.0 (cqvx.backoff).
    assert len(sleeps.calls) == 3
    assert all(0 <= d <= cap for d, cap in zip(sleeps.calls, [0.5, 1.0, 2.0], strict=True))
    assert sup.running == ["opensqt-stream"]
    await sup.stop()
    assert sup.running == []


async def test_supervisor_periodic_pass_survives_failures_and_wakes_on_request() -> None:
    wake = asyncio.Event()
    passes: list[int] = []

    async def one_pass() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("bad pass")

    unexpected: list[int] = []
    sup = Supervisor(on_unexpected=lambda: unexpected.append(1))
    sup.every("reconcile", 3600, one_pass, wake=wake)
    wake.set()
    await until(lambda: len(passes) == 1)
    wake.set()
    await until(lambda: len(passes) == 2)
    assert unexpected == [1]
    assert sup.running == ["opensqt-reconcile"]
    await sup.stop()


# ------------------------------------------------------------------------------------------ ledger


def _ledger(path: Path) -> tuple[SlotLedger, EngineStats]:
    cfg = parse_config(CFG, {})
    ctx = GridContext(SYM, "grid", GridParams.from_config(cfg.trading))
    stats = EngineStats()
    store = AsyncStore(StateStore(sqlite_url(path / "state.db")))
    return SlotLedger(ctx, store, stats, EngineMetrics(), wall=lambda: 1.0), stats


async def test_ledger_commits_intents_and_applies_each_fill_once(tmp_path: Path) -> None:
    ledger, stats = _ledger(tmp_path)
    await ledger.load()
    assert ledger.ctx.namespace.startswith("grid|BTC-USD|")
    async with ledger.lock:
        ((slot, msg),) = await ledger.commit_intents(
            [Place(-1, order_pb2.ORDER_SIDE_BUY, D("99"), D("0.3"), True, False, True)]
        )
    assert slot.state is SlotState.PENDING and ledger.slot_for(msg.client_order_id) is slot
    assert msg.strategy_id == "grid:BTC-USD" and msg.quantity == "0.3"
    filled = VenueOrderState("v1", order_pb2.ORDER_STATUS_PARTIALLY_FILLED, D("0.1"), D("99"))
    async with ledger.lock:
        await ledger.apply_state(slot, msg.client_order_id, filled)
        await ledger.apply_state(slot, msg.client_order_id, filled)  # a replay adds nothing
    assert slot.position == D("0.1") and stats.fills == 1
    await ledger.store.aclose()

    # A fresh ledger over the same store sees the same slots and fills (the committed state).
    again, stats2 = _ledger(tmp_path)
    await again.load()
    assert again.slots[-1].position == D("0.1") and stats2.fills == 1
    assert again.slot_for(msg.client_order_id) is not None
    assert f"{msg.client_order_id}@0.1" in again.seen_fills
    await again.store.aclose()


async def test_ledger_routes_reports_by_client_order_id_only(tmp_path: Path) -> None:
    ledger, stats = _ledger(tmp_path)
    await ledger.load()
    foreign = execution_pb2.ExecutionReport(
        client_order_id="someone-else", symbol=SYM, order_status=order_pb2.ORDER_STATUS_FILLED
    )
    await ledger.apply_report(foreign)
    assert ledger.slots == {} and stats.fills == 0
    await ledger.store.aclose()


# ------------------------------------------------------------------------------------------ engine parts


def _mock() -> MockVenue:
    mock = MockVenue(
        balances=[
            builders.balance(asset="USD", total="1000000", available="1000000", locked="0"),
            builders.balance(asset="BTC", total="0", available="0", locked="0"),
        ]
    )
    mock.prices[SYM] = builders.price(symbol=SYM, last="100.05", bid="100", ask="100.1")
    return mock


async def test_reconciler_frees_an_intent_the_venue_never_saw(tmp_path: Path) -> None:
    now = [1000.0]
    engine = GridEngine(
        parse_config(CFG, {}), _mock(), StateStore(sqlite_url(tmp_path / "s.db")), clock=lambda: now[0]
    )
    await engine.start(run_tasks=False)
    async with engine.ledger.lock:
        ((slot, msg),) = await engine.ledger.commit_intents(
            [Place(-1, order_pb2.ORDER_SIDE_BUY, D("99"), D("0.3"), True, False, True)]
        )
    # Not found is no proof while the request may still land (issue 11): UNRESOLVED until the window.
    await engine.reconciler.resolve(msg.client_order_id)
    assert slot.state is SlotState.UNRESOLVED
    now[0] += float(engine.config.engine.effective_landing_window)
    await engine.reconciler.resolve(msg.client_order_id)  # lookup: NotFound after the window -> never placed
    assert slot.state is SlotState.FREE and slot.order is None
    await engine.stop()


async def test_status_view_before_start(tmp_path: Path) -> None:
    engine = GridEngine(parse_config(CFG, {}), _mock(), StateStore(sqlite_url(tmp_path / "s.db")))
    st = engine.status()
    assert st["started"] is False and st["anchor"] is None and st["slots"] == {}
    assert st["reconciler"]["status"] == "never_run" and st["paused"] is False
    assert engine.open_orders() == []
    await engine.store.aclose()


# ------------------------------------------------------------------------------------------ reconnects


async def test_price_monitor_resubscribes_with_the_one_backoff() -> None:
    mock = _mock()
    sleeps = _Sleeps()
    monitor = PriceMonitor(mock, SYM, min_interval=0, reconnect_delay=0.2, sleep=sleeps, rng=random.Random(3))
    task = asyncio.create_task(monitor.run())
    try:
        hub = mock.stream("prices")
        for _ in range(3):
            await hub.wait_subscribed()
            hub.fail(Unavailable("gone"))
            await until(lambda: monitor.reconnects == len(sleeps.calls) and sleeps.calls != [])
        await until(lambda: len(sleeps.calls) >= 3)
        # Full jitter under 0.2, 0.4, 0.8: never the fixed doubling (lockstep) of before.
        assert all(0 <= d <= cap for d, cap in zip(sleeps.calls, [0.2, 0.4, 0.8], strict=False))
        assert "Unavailable" in monitor.last_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _GapStream:
    """A minimal ``cqvx.streams.LiveStream``: nothing to read until closed; gaps on demand."""

    def __init__(self) -> None:
        self.listeners: list[GapListener] = []
        self.closed = asyncio.Event()

    def __aiter__(self) -> AsyncIterator[execution_pb2.ExecutionReport]:
        return self

    async def __anext__(self) -> execution_pb2.ExecutionReport:
        await self.closed.wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed.set()

    async def wait_live(self) -> None:
        return None

    def on_gap(self, listener: GapListener) -> None:
        self.listeners.append(listener)

    def gap(self) -> None:
        for listener in self.listeners:
            listener(Gap(venue="fake", channel="executions", reason="reconnect"))


class _GapVenue(MockVenue):
    def __init__(self, stream: _GapStream, **kw: Any) -> None:
        super().__init__(**kw)
        self.gap_stream = stream

    def subscribe_executions(self, symbols: Any = None) -> Any:
        return self.gap_stream


async def test_engine_reconciles_on_a_gap_of_any_live_stream(tmp_path: Path) -> None:
    """No venue class is named: any execution stream with ``on_gap`` triggers a reconciler pass."""
    stream = _GapStream()
    assert isinstance(stream, LiveStream)
    venue = _GapVenue(
        stream, balances=[builders.balance(asset="USD", total="1000", available="1000", locked="0")]
    )
    venue.prices[SYM] = builders.price(symbol=SYM, last="100.05", bid="100", ask="100.1")
    engine = GridEngine(parse_config(CFG, {}), venue, StateStore(sqlite_url(tmp_path / "s.db")))
    await engine.start()
    try:
        await until(lambda: len(stream.listeners) == 1)
        assert engine.recon.runs == 0  # reconcile_interval is an hour
        stream.gap()
        await until(lambda: engine.recon.runs == 1)
        assert engine.recon.status == "completed"
    finally:
        await engine.stop()
