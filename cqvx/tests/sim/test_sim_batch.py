"""The backtest path: batches of public trades on the integer grid (``SimVenue.match_trades``).

It must fill exactly as the one-trade path (``inject_trade``) does, refuse malformed events with a
typed error, and leave everything untouched for trades that reach none of our orders.  Also the
integer arithmetic of the market's trade sizes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import InvalidRequest
from cqvx.num import floor_to, steps
from cqvx.venues.sim import InstrumentSpec, MarketModel, SimVenue
from cqvx.venues.sim.market import InstrumentMarket

D = Decimal
BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL
Mk = Callable[..., order_pb2.Order]
TICK, LOT = D("0.01"), D("0.00001")


async def _ladder(sim: SimVenue, mk: Mk) -> None:
    mid = sim.markets["BTC-USDT"].mid
    for i in range(1, 6):
        await sim.place_order(mk(f"b{i}", "buy", "0.01", str(mid - i)))
        await sim.place_order(mk(f"b{i}x", "buy", "0.02", str(mid - i)))
        await sim.place_order(mk(f"s{i}", "sell", "0.01", str(mid + i)))


def _reports(sim: SimVenue) -> list[execution_pb2.ExecutionReport]:
    out = []
    for order in sorted(sim.engine.orders.values(), key=lambda o: o.arrival):
        rep = sim.engine.report(order, execution_pb2.EXECUTION_TYPE_STATUS)
        out.append(rep)
    return out


async def test_batch_fills_as_one_trade_at_a_time(make_sim: Callable[..., SimVenue], mk: Mk) -> None:
    rng = random.Random(5)
    async with make_sim() as one, make_sim() as batch:
        await _ladder(one, mk)
        await _ladder(batch, mk)
        mid_ticks, _ = steps(one.markets["BTC-USDT"].mid, TICK)
        events = [
            (mid_ticks + rng.randint(-700, 700), rng.randint(0, 3000), rng.choice((BUY, SELL)))
            for _ in range(3000)
        ]
        for ticks, lots, side in events:
            one.inject_trade("BTC-USDT", ticks * TICK, lots * LOT, side)
        batch.match_trades("BTC-USDT", events)
        assert any(o.filled for o in batch.engine.orders.values())
        assert _reports(batch) == _reports(one)
        assert await batch.get_balances() == await one.get_balances()


async def test_trades_that_reach_nothing_change_nothing(make_sim: Callable[..., SimVenue], mk: Mk) -> None:
    async with make_sim() as sim:
        await _ladder(sim, mk)
        before = _reports(sim)
        seq = sim.markets["BTC-USDT"]._trade_seq
        best_bid = sim.engine.resting("BTC-USDT")[0].best_ticks
        assert best_bid is not None
        sim.match_trades("BTC-USDT", [(best_bid + 1, 10**9, SELL)] * 1000)
        assert _reports(sim) == before
        assert sim.markets["BTC-USDT"]._trade_seq == seq


@pytest.mark.parametrize(
    "event",
    [(0, 1, SELL), (-5, 1, SELL), (1, -1, SELL), ("5", 1, SELL), (5, D(1), SELL), (5.0, 1, SELL)],
)
async def test_malformed_events_that_reach_orders_are_refused(
    make_sim: Callable[..., SimVenue], mk: Mk, event: tuple[int, int, int]
) -> None:
    async with make_sim() as sim:
        await sim.place_order(mk("b", "buy", "0.01", "59000"))
        with pytest.raises(InvalidRequest, match="match_trades"):
            sim.match_trades("BTC-USDT", [event])  # type: ignore[list-item]
        with pytest.raises(InvalidRequest, match="unknown symbol"):
            sim.match_trades("NOPE-USDT", [])


class _Draw:
    """Stands in for the market's random generator: every exponential draw is ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def expovariate(self, _lambd: float) -> float:
        return self.value


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=0.0, max_value=5e9, allow_nan=False),
    st.sampled_from([1.0, 0.37, 50.0]),
    st.sampled_from([D("0.05"), D("0.003"), D("1.5"), D("7")]),
    st.sampled_from([D("0.00001"), D("0.001"), D("0.5")]),
)
def test_trade_sizes_on_the_integer_path_equal_the_decimal_formula(
    draw: float, scale: float, trade_size: Decimal, lot: Decimal
) -> None:
    spec = InstrumentSpec(symbol="BTC-USDT", initial_price=D("60000"), lot_size=lot, min_quantity=lot)
    market = InstrumentMarket(spec, MarketModel(trade_size=trade_size), 1, 0)
    market._rng = _Draw(draw)  # type: ignore[assignment]
    expected = max(lot, floor_to(trade_size * D(repr(round(draw * scale, 6))), lot))
    assert market._random_size(scale) == expected
