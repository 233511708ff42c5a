"""Pure parts of the arbitrage: leg sizing, price bounds, annualized rates, config validation, and the
monitor's staleness gates (against the simulated venue, with a controlled clock)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqvx.venues.sim import SimVenue
from opensqt.arb.config import ArbFile, PairConfig
from opensqt.arb.monitor import FundingMonitor, annualized
from opensqt.arb.sizing import LegRules, bounded_price, hedge_quantity, spot_quantity, unhedged_spot
from opensqt.config import ConfigError, parse_model
from opensqt.risk.exposure import Denied

D = Decimal
steps = st.sampled_from([D("0.00001"), D("0.001"), D("0.01"), D("0.1"), D(1), D(5)])
sizes = st.sampled_from([D(1), D("0.01"), D("0.1"), D("0.001"), D(10), D("0.0001")])
qty = st.decimals(min_value=D(0), max_value=D(1000), places=6, allow_nan=False, allow_infinity=False)


@given(qty, steps, sizes)
def test_hedge_is_never_above_what_the_spot_leg_executed(
    executed: Decimal, lot: Decimal, size: Decimal
) -> None:
    perp = LegRules(tick=D("0.01"), lot=lot, contract_size=size)
    hedge = hedge_quantity(executed, perp)
    assert D(0) <= hedge <= executed
    assert hedge % perp.step == 0, "not a whole number of steps"
    assert hedge % lot == 0, "not a whole number of lots"
    if size != 1:
        assert hedge % size == 0, "a fraction of a contract"
    assert executed - hedge < perp.step, "floored further than one step"


@given(qty, qty, steps)
def test_unwind_never_exceeds_the_unhedged_part(held: Decimal, hedged: Decimal, lot: Decimal) -> None:
    spot = LegRules(tick=D("0.01"), lot=lot)
    rest = unhedged_spot(held, hedged, spot)
    assert rest >= 0 and rest % lot == 0
    assert rest <= max(D(0), held - hedged)


@given(
    st.decimals(min_value=D("0.01"), max_value=D(100000), places=2),
    st.decimals(min_value=D("0.0001"), max_value=D("0.1"), places=4),
    st.booleans(),
)
def test_bounded_price_is_within_the_slippage_and_on_the_tick(
    touch: Decimal, slip: Decimal, buy: bool
) -> None:
    rules = LegRules(tick=D("0.01"), lot=D("0.001"))
    bid, ask = touch, touch + D("0.01")
    price = bounded_price([(bid, D(1))], [(ask, D(1))], is_buy=buy, slippage=slip, rules=rules)
    mid = (bid + ask) / 2
    if isinstance(price, Denied):  # the far touch is already beyond the bound around the mid
        assert (ask > mid * (1 + slip)) if buy else (bid < mid * (1 - slip))
        return
    assert price % rules.tick == 0
    if buy:
        assert ask <= price <= mid * (1 + slip)
    else:
        assert bid >= price >= mid * (1 - slip)


def test_bounded_price_denies_a_one_sided_or_crossed_book() -> None:
    rules = LegRules(tick=D("0.01"), lot=D("0.001"))
    one_sided = bounded_price([(D(100), D(1))], [], is_buy=True, slippage=D("0.01"), rules=rules)
    assert isinstance(one_sided, Denied) and one_sided.limit == "slippage"
    crossed = bounded_price([(D(101), D(1))], [(D(100), D(1))], is_buy=False, slippage=D("0.01"), rules=rules)
    assert isinstance(crossed, Denied) and "crossed" in crossed.detail


@given(
    st.decimals(min_value=D(10), max_value=D(100000), places=2),
    st.decimals(min_value=D(1), max_value=D(100000), places=2),
)
def test_spot_quantity_never_spends_more_than_the_notional(notional: Decimal, price: Decimal) -> None:
    q = spot_quantity(notional, price, LegRules(tick=D("0.01"), lot=D("0.00001")))
    assert q * price <= notional and q % D("0.00001") == 0


def test_bad_inputs_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="tick, lot"):
        LegRules(tick=D(0), lot=D(1))
    with pytest.raises(ValueError, match="slippage"):
        bounded_price([], [], is_buy=True, slippage=D(0), rules=LegRules(tick=D("0.01"), lot=D(1)))
    with pytest.raises(ValueError, match="notional"):
        spot_quantity(D(0), D(1), LegRules(tick=D("0.01"), lot=D(1)))


def test_annualized_rate() -> None:
    assert annualized(D("0.0001"), 8 * 3600) == D("0.1095")
    assert annualized(D("-0.0001"), 3600) == D("-0.876")
    assert annualized(D("0.0001"), 0) == D("0.1095")  # unknown interval: the common 8 h


BASE = """
arb:
  pairs: [{spot: BTC-USDT, perp: BTC-USDT-PERP}]
  notional: 100
  directions: [positive, negative]
%s
venue: {kind: sim}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  negative_mode: inventory", "arb.spot_inventory: required for direction 'negative'"),
        ("  spot_inventory: 1\n  entry_apr: 0.01\n  exit_apr: 0.02", "exit_apr: must be below entry_apr"),
        ("  spot_inventory: -1", "arb.spot_inventory"),
        ("  spot_inventory: 1\n  max_slippage: 0.5", "arb.max_slippage"),
    ],
)
def test_config_errors_name_the_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model(BASE % extra, ArbFile, {})


def test_margin_shorts_need_a_venue_with_spot_margin() -> None:
    margin = BASE % "  negative_mode: margin"
    file = parse_model(margin, ArbFile, {})  # the simulator borrows: no spot_inventory needed
    assert file.arb.margin_shorts and file.arb.spot_inventory is None
    remote = margin.replace("{kind: sim}", "{kind: remote, address: '127.0.0.1:1'}")
    assert parse_model(remote, ArbFile, {}).arb.margin_shorts  # asked at start-up (ArbRunner.prepare)
    with pytest.raises(ConfigError, match=r"arb\.negative_mode: venue 'bybit' has no spot margin"):
        parse_model(margin.replace("{kind: sim}", "{kind: bybit}"), ArbFile, {})


def test_config_accepts_the_paper_default() -> None:
    from opensqt.arb.config import paper_arb_config

    cfg = paper_arb_config()
    assert cfg.venue.kind == "sim" and cfg.arb.directions == ["positive", "negative"]


def test_pairs_must_hedge_each_other() -> None:
    with pytest.raises(ValueError, match="does not hedge"):
        PairConfig(spot="BTC-USDT", perp="ETH-USDT-PERP")
    with pytest.raises(ValueError, match="not a perpetual"):
        PairConfig(spot="BTC-USDT", perp="BTC-USDT")


async def test_monitor_gates_on_stale_rate_and_price() -> None:
    now = [1000.0]
    sim = SimVenue.default(seed=3, speed=5)
    async with sim:
        pair = PairConfig(spot="BTC-USDT", perp="BTC-USDT-PERP")
        mon = FundingMonitor(
            {"sim": sim}, {"sim": [pair]}, max_rate_age=D(30), max_price_age=D(5), clock=lambda: now[0]
        )
        assert mon.gate("sim", "BTC-USDT") == ("no_rate", "no funding rate yet")
        await mon.refresh()
        assert mon.gate("sim", "BTC-USDT") is None
        view = mon.view("sim", "BTC-USDT")
        assert view.apr is not None and view.apr == annualized(view.predicted or D(0), 8 * 3600)
        assert view.basis is not None and abs(view.basis) < D("0.01")
        assert view.next_funding_s is not None
        now[0] += 6
        gate = mon.gate("sim", "BTC-USDT")
        assert gate is not None and gate[0] == "stale_price"
        now[0] += 30
        gate = mon.gate("sim", "BTC-USDT")
        assert gate is not None and gate[0] == "stale_rate"
        # A failed read keeps the old value, which keeps ageing: still no entry.
        sim.faults.set_unavailable(True)
        await mon.refresh()
        assert view.errors > 0
        gate = mon.gate("sim", "BTC-USDT")
        assert gate is not None and gate[0] == "stale_rate"
        sim.faults.set_unavailable(False)
        await mon.refresh()
        assert mon.gate("sim", "BTC-USDT") is None


async def test_the_runner_places_nothing_on_a_stale_rate() -> None:
    from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
    from opensqt.arb.config import ArbConfig
    from opensqt.arb.runner import ArbRunner

    ticks = iter(range(0, 10_000, 5))  # every clock read is 5 s later: whatever was read is old
    cfg = ArbConfig(
        pairs=[PairConfig(spot="BTC-USDT", perp="BTC-USDT-PERP")],
        notional=D(100),
        entry_apr=D(0),
        exit_apr=D(-1),
        max_rate_age=D(1),
        max_price_age=D(1),
    )
    sim = SimVenue.default(seed=4, speed=5)
    async with sim:
        runner = ArbRunner(cfg, sim, "stale", clock=lambda: float(next(ticks)))
        await runner.prepare()
        await runner.step()
        st = runner.pairs["BTC-USDT"]
        assert st.state == "flat" and st.entries == 0 and "stale" in st.last_block
        assert (
            'arb_entry_blocked_total{pair="BTC-USDT",reason="stale_rate"} 1.0'
            in runner.metrics.text().decode()
        )
        assert not await sim.get_orders(OrderFilter(statuses=frozenset(OPEN_STATUSES | TERMINAL_STATUSES)))
