"""Risk metrics on the simulated venue: funding paid from the venue's settlements and position, and
every metric the risk issue lists exists with bounded labels (docs/risk.md "Metrics")."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cqc.venues.v1 import order_pb2
from cqvx.venues.sim import InstrumentSpec, SimClock, SimVenue
from opensqt.config import parse_config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.observability.alerts import AlertRouter

D = Decimal
SYM = "BTC-USDT-PERP"
CONFIG = """
trading:
  symbol: BTC-USDT-PERP
  price_interval: 30
  order_quantity: 100
  min_order_value: 20
  buy_window_size: 3
  sell_window_size: 3
  position_safety_check: 10
  recover_position: false
engine: {price_send_interval: 0, reconcile_interval: 3600}
system: {cancel_on_exit: false}
risk:
  enabled: false
  max_leverage: 25
  exposure: {max_symbol_notional: 100000}
  breakers:
    stale_feed: {price_seconds: 600}
    margin: {min_liquidation_distance_percent: 1}
"""

# Every metric the issue names, and the only label values each may carry beyond the symbol.
LISTED: dict[str, dict[str, set[str]]] = {
    "risk_feed_staleness_seconds": {"feed": {"price", "orders"}},
    "risk_margin_ratio": {},
    "risk_liquidation_distance_percent": {},
    "risk_funding_paid": {},
    "risk_exposure_notional": {"scope": {"symbol", "account"}},
    "risk_breaker_open": {
        "breaker": {"losing_streak", "drawdown", "latency", "stale_feed", "margin", "reject_rate"}
    },
}


def _sim() -> SimVenue:
    spot = InstrumentSpec(symbol="BTC-USDT", initial_price=D(60000))
    perp = InstrumentSpec(
        symbol=SYM,
        initial_price=D(60000),
        max_leverage=D(50),
        follows="BTC-USDT",
        funding_interval_seconds=60,
    )
    return SimVenue.default(seed=7, clock=SimClock(), instruments=(spot, perp), warmup_seconds=60)


async def _engine(tmp_path: Path, sim: SimVenue) -> GridEngine:
    now = lambda: sim.clock.now_ns() / 1e9  # noqa: E731
    engine = GridEngine(
        parse_config(CONFIG, {}),
        sim,
        StateStore(sqlite_url(tmp_path / "m.db")),
        clock=now,
        alerts=AlertRouter([], clock=now),
    )
    await engine.start(run_tasks=False, check=False)
    return engine


async def test_funding_paid_follows_the_venues_settlements_of_the_position(tmp_path: Path) -> None:
    sim = _sim()
    sim.set_leverage(SYM, D(10))
    await sim.place_order(
        order_pb2.Order(
            client_order_id="manual-long",
            symbol=SYM,
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity="0.05",
        )
    )
    engine = await _engine(tmp_path, sim)
    await engine.risk.evaluate()  # the first reading is the baseline: nothing counted yet
    assert engine.risk.funding_paid == 0
    paid = D(0)
    for _ in range(3):  # three settlements of the 60 s interval
        balance_before = next(b for b in await sim.get_balances() if b.asset == "USDT")
        await sim.run_for(60.0)
        balance_after = next(b for b in await sim.get_balances() if b.asset == "USDT")
        paid += D(balance_before.total) - D(balance_after.total)  # what the venue debited
        await engine.risk.evaluate()
    assert paid != 0
    # The estimate uses the mark at the reading, the venue the mark at the settlement: close, not equal.
    assert abs(engine.risk.funding_paid - paid) <= abs(paid) * D("0.01")
    assert D(engine.status()["risk"]["breakers"]["funding_paid"]) == engine.risk.funding_paid
    (sample,) = [
        s
        for fam in text_string_to_metric_families(engine.metrics.render().decode())
        for s in fam.samples
        if s.name == "risk_funding_paid"
    ]
    assert sample.labels == {"symbol": SYM} and D(str(sample.value)) != 0


async def test_every_listed_risk_metric_exists_with_bounded_labels(tmp_path: Path) -> None:
    sim = _sim()
    sim.set_leverage(SYM, D(10))
    await sim.place_order(
        order_pb2.Order(
            client_order_id="manual-long",
            symbol=SYM,
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity="0.01",
        )
    )
    engine = await _engine(tmp_path, sim)
    await engine.on_price(D((await sim.get_latest_price(SYM)).last))
    await engine.risk.evaluate()
    await sim.run_for(61.0)
    await engine.risk.evaluate()
    seen: dict[str, list[dict[str, str]]] = {}
    for fam in text_string_to_metric_families(engine.metrics.render().decode()):
        for s in fam.samples:
            seen.setdefault(s.name, []).append(dict(s.labels))
    for name, bounded in LISTED.items():
        assert name in seen, name
        for labels in seen[name]:
            assert labels.pop("symbol") == SYM
            assert set(labels) == set(bounded), (name, labels)
            for key, value in labels.items():
                assert value in bounded[key], (name, key, value)
