"""Property tests: random order flows never break the account's invariants."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import VenueError
from cqvx.venues.sim import MarketModel, SimClock, SimConfig, SimVenue

from .conftest import PERP, SPOT

D = Decimal
BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL

actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("limit"),
            st.sampled_from([BUY, SELL]),
            st.integers(-40, 40),  # ticks x 100 from the mid
            st.integers(1, 300),  # lots x 100
            st.booleans(),  # post-only
            st.sampled_from(
                [order_pb2.TIME_IN_FORCE_GTC, order_pb2.TIME_IN_FORCE_IOC, order_pb2.TIME_IN_FORCE_FOK]
            ),
        ),
        st.tuples(st.just("market"), st.sampled_from([BUY, SELL]), st.integers(1, 300)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("run"), st.integers(1, 20)),
    ),
    min_size=1,
    max_size=40,
)


def _config(seed: int) -> SimConfig:
    return SimConfig(
        seed=seed,
        instruments=(SPOT, PERP),
        balances={"USDT": D("50000"), "BTC": D("1")},
        market=MarketModel(volatility=3.0, jump_intensity=2000.0, level_size=D("0.2"), trade_size=D("0.02")),
        tick_interval=0.5,
    )


async def _run(seed: int, steps: list[tuple[Any, ...]]) -> None:
    sim = SimVenue(_config(seed), clock=SimClock())
    async with sim:
        executions = sim.subscribe_executions()
        placed: list[str] = []
        for n, step in enumerate(steps):
            kind = step[0]
            try:
                if kind == "limit":
                    _, side, offset, lots, post_only, tif = step
                    mid = sim.markets["BTC-USDT"].mid
                    price = mid + D(offset) * D("1.00")
                    req = order_pb2.Order(
                        client_order_id=f"o{n}",
                        symbol="BTC-USDT",
                        side=side,
                        order_type=order_pb2.ORDER_TYPE_LIMIT,
                        time_in_force=tif,
                        price=str(price),
                        quantity=str(D(lots) * D("0.001")),
                        post_only=bool(post_only) and tif == order_pb2.TIME_IN_FORCE_GTC,
                    )
                    await sim.place_order(req)
                    placed.append(f"o{n}")
                elif kind == "market":
                    _, side, lots = step
                    req = order_pb2.Order(
                        client_order_id=f"o{n}",
                        symbol="BTC-USDT",
                        side=side,
                        order_type=order_pb2.ORDER_TYPE_MARKET,
                        quantity=str(D(lots) * D("0.001")),
                    )
                    await sim.place_order(req)
                elif kind == "cancel" and placed:
                    await sim.cancel_order(client_order_id=placed[int(step[1]) % len(placed)])
                elif kind == "run":
                    await sim.run_for(int(step[1]) * 0.5)
            except VenueError:
                pass
            for b in await sim.get_balances():
                assert D(b.total) >= 0 and D(b.available) >= 0 and D(b.locked) >= 0, b
                assert D(b.total) == D(b.available) + D(b.locked)
        for o in await sim.get_orders():
            assert D(o.filled_quantity) <= D(o.quantity)
        await sim.cancel_all_orders()
        balances = {b.asset: b for b in await sim.get_balances()}
        assert all(D(b.locked) == 0 for b in balances.values())
        # Every unit moved is accounted for by the fills on the stream: value conserved minus fees.
        usdt, btc = D("50000"), D("1")
        filled: dict[str, D] = {}
        quantities: dict[str, D] = {}
        while executions.pending():
            r = await executions.__anext__()
            quantities[r.order_id] = D(r.order_quantity)
            if r.execution_type != execution_pb2.EXECUTION_TYPE_TRADE:
                continue
            qty, px, fee = D(r.last_quantity), D(r.last_price), D(r.fee)
            filled[r.order_id] = filled.get(r.order_id, D(0)) + qty
            if r.side == BUY:
                usdt -= qty * px + fee
                btc += qty
            else:
                usdt += qty * px - fee
                btc -= qty
        assert D(balances["USDT"].total) == usdt and D(balances["BTC"].total) == btc
        assert all(filled[oid] <= quantities[oid] for oid in filled)
        await executions.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), steps=actions)
def test_random_order_flow_keeps_balances_consistent(seed: int, steps: list[tuple[Any, ...]]) -> None:
    asyncio.run(_run(seed, steps))
