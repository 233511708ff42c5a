"""The integer-grid request path (``SimVenue.place_grid`` / ``cancel_grid``, :mod:`cqvx.venues.sim.grid`).

It shares the matching core with ``place_order``: a grid order and the protobuf order with the same
canonical price and quantity strings must give the same refusal (type and message) or the same
order, and a whole seeded run through either path must produce the same bytes on every stream.
Conversions are exact: a price off the tick grid or a quantity off the lot grid is refused, never
rounded, and the integer limits say exactly what the Decimal limits say.
"""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import InvalidRequest, Unavailable, VenueError
from cqvx.fanout import Subscription
from cqvx.num import dec_str, from_steps
from cqvx.timeutil import timestamp_from_ns
from cqvx.venues.sim import (
    GridOrder,
    InstrumentGrid,
    InstrumentSpec,
    MarketModel,
    SimClock,
    SimConfig,
    SimVenue,
)

D = Decimal
BUY, SELL = order_pb2.ORDER_SIDE_BUY, order_pb2.ORDER_SIDE_SELL
LIMIT, MARKET = order_pb2.ORDER_TYPE_LIMIT, order_pb2.ORDER_TYPE_MARKET
GTC, IOC, FOK = order_pb2.TIME_IN_FORCE_GTC, order_pb2.TIME_IN_FORCE_IOC, order_pb2.TIME_IN_FORCE_FOK
GTD, DAY = order_pb2.TIME_IN_FORCE_GTD, order_pb2.TIME_IN_FORCE_DAY
SPOT = InstrumentSpec(symbol="BTC-USDT", initial_price=D("60000"), maker_fee=D("0.001"), taker_fee=D("0.002"))
PERP = InstrumentSpec(
    symbol="BTC-USDT-PERP",
    initial_price=D("60000"),
    tick_size=D("0.1"),
    lot_size=D("0.001"),
    min_quantity=D("0.002"),
    max_quantity=D("50"),
    min_notional=D("10"),
    maker_fee=D("0.0002"),
    taker_fee=D("0.0005"),
    funding_interval_seconds=60,
    follows="BTC-USDT",
)


def _config(seed: int, market: MarketModel) -> SimConfig:
    return SimConfig(
        seed=seed,
        instruments=(SPOT, PERP),
        balances={"USDT": D("2000000"), "BTC": D("30")},
        leverage={"BTC-USDT-PERP": D("10")},
        market=market,
        tick_interval=0.5,
    )


def _proto(g: GridOrder, grid: InstrumentGrid | None) -> order_pb2.Order:
    """The protobuf twin of a grid order: the canonical strings of its price and quantity."""
    tick = grid.tick if grid is not None else D("0.01")
    lot = grid.lot if grid is not None else D("0.00001")
    req = order_pb2.Order(
        symbol=g.symbol,
        side=g.side,
        order_type=g.order_type,
        time_in_force=g.tif,
        client_order_id=g.client_order_id,
        quantity=dec_str(from_steps(g.lots, lot)),
        post_only=g.post_only,
        reduce_only=g.reduce_only,
        strategy_id=g.strategy_id,
        account_id=g.account_id,
    )
    if g.ticks:
        req.price = dec_str(from_steps(g.ticks, tick))
    if g.expires_ns is not None:
        req.expires_at.CopyFrom(timestamp_from_ns(g.expires_ns))
    return req


def _outcome(sim: SimVenue, act: Any) -> bytes:
    try:
        order = act()
    except VenueError as exc:
        return f"{type(exc).__name__}:{exc.message}".encode()
    return sim.engine.report(order, execution_pb2.EXECUTION_TYPE_STATUS).SerializeToString(deterministic=True)


# -- conversions ------------------------------------------------------------------------------------

_TICKS = st.sampled_from([D(s) for s in ("0.01", "0.1", "0.5", "1", "25", "0.00001", "1E-18", "2.5E+3")])


@given(_TICKS, st.integers(0, 10**30))
def test_grid_price_round_trips_exactly(tick: Decimal, n: int) -> None:
    grid = InstrumentGrid(InstrumentSpec(symbol="X-USDT", initial_price=D(1), tick_size=tick, lot_size=tick))
    price = grid.price(n)
    assert Fraction(price) == n * Fraction(tick)  # exact, at any size
    assert grid.ticks(price) == n and grid.lots(grid.quantity(n)) == n
    assert str(price) == dec_str(price) or "E" in str(price) or price == 0  # canonical: no trailing zeros
    assert D(dec_str(price)).as_tuple() == price.as_tuple()  # what a caller's canonical string parses to


@given(_TICKS, st.integers(0, 10**12), st.integers(1, 999))
def test_off_grid_prices_and_quantities_are_refused_never_rounded(tick: Decimal, n: int, frac: int) -> None:
    grid = InstrumentGrid(InstrumentSpec(symbol="X-USDT", initial_price=D(1), tick_size=tick, lot_size=tick))
    off = grid.price(n) + tick * D(frac) / D(1000)
    with pytest.raises(InvalidRequest, match="tick size"):
        grid.ticks(off)
    with pytest.raises(InvalidRequest, match="lot size"):
        grid.lots(off)


_STEP = st.sampled_from([D(s) for s in ("0.01", "0.1", "0.3", "1", "0.00001", "7")])
_LIMIT = st.decimals(min_value=D("0.00001"), max_value=D("100000"), places=5)


@given(
    tick=_STEP,
    lot=_STEP,
    min_q=_LIMIT,
    max_q=_LIMIT,
    min_n=_LIMIT,
    ticks=st.integers(1, 10**9),
    lots=st.integers(1, 10**9),
)
def test_integer_limits_say_what_the_decimal_limits_say(
    *, tick: Decimal, lot: Decimal, min_q: Decimal, max_q: Decimal, min_n: Decimal, ticks: int, lots: int
) -> None:
    spec = InstrumentSpec(
        symbol="X-USDT",
        initial_price=D(1),
        tick_size=tick,
        lot_size=lot,
        min_quantity=min_q,
        max_quantity=max_q,
        min_notional=min_n,
    )
    grid = InstrumentGrid(spec)
    price, qty = Fraction(tick) * ticks, Fraction(lot) * lots
    assert (lots >= grid.min_lots) == (qty >= Fraction(min_q))
    assert (lots <= grid.max_lots) == (qty <= Fraction(max_q))
    assert (ticks * lots >= grid.min_units) == (price * qty >= Fraction(min_n))


# -- the same verdicts as the protobuf path ---------------------------------------------------------

_QUIET = MarketModel(volatility=0.0, jump_intensity=0.0, trades_per_step=0, size_jitter=0.0)
_grid_orders = st.builds(
    GridOrder,
    symbol=st.sampled_from(["BTC-USDT", "BTC-USDT-PERP", "ETH-USDT"]),
    side=st.sampled_from([BUY, SELL, order_pb2.ORDER_SIDE_UNSPECIFIED]),
    # Around the touch of either instrument (60000 in ticks of 0.01 and 0.1), and odd values.
    ticks=st.one_of(
        st.integers(5_999_900, 6_000_100), st.integers(599_990, 600_010), st.integers(-3, 3), st.just(10**9)
    ),
    lots=st.one_of(st.integers(-2, 3000), st.just(10**9)),
    client_order_id=st.sampled_from(["", "a", "b", "c", "x" * 65, "bad\x00id"]),
    order_type=st.sampled_from([LIMIT, MARKET, order_pb2.ORDER_TYPE_STOP_LIMIT, 0]),
    tif=st.sampled_from([0, GTC, IOC, FOK, GTD, DAY, 42]),
    post_only=st.booleans(),
    reduce_only=st.booleans(),
    expires_ns=st.sampled_from([None, 1, 2**62]),
    strategy_id=st.sampled_from(["", "s1"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_grid_orders, min_size=1, max_size=10))
def test_grid_orders_get_the_protobuf_path_verdicts(orders: list[GridOrder]) -> None:
    by_grid = SimVenue(_config(3, _QUIET), clock=SimClock())
    by_proto = SimVenue(_config(3, _QUIET), clock=SimClock())
    for g in orders:
        twin = _proto(g, by_proto.engine.grids.get(g.symbol))
        got = _outcome(by_grid, lambda g=g: by_grid.place_grid(g))
        want = _outcome(by_proto, lambda twin=twin: by_proto.engine.place(twin))
        assert got == want, g
    for a, b in zip(
        sorted(by_grid.ledger.balances.items()), sorted(by_proto.ledger.balances.items()), strict=True
    ):
        assert a == b


def test_garbage_grid_fields_raise_invalid_request() -> None:
    sim = SimVenue(_config(3, _QUIET), clock=SimClock())
    for bad in (
        GridOrder("BTC-USDT", BUY, 5_999_000.0, 100),  # type: ignore[arg-type]
        GridOrder("BTC-USDT", BUY, 5_999_000, D(100)),  # type: ignore[arg-type]
        GridOrder("BTC-USDT", BUY, True, 100),
        GridOrder("BTC-USDT", BUY, 5_999_000, 100, post_only=1),  # type: ignore[arg-type]
        GridOrder("BTC-USDT", BUY, 5_999_000, 100, tif=GTD, expires_ns=2.5e18),  # type: ignore[arg-type]
        GridOrder("BTC-USDT", BUY, 5_999_000, 100, None),  # type: ignore[arg-type]
        GridOrder("BTC-USDT", BUY, 5_999_000, 100, strategy_id=7),  # type: ignore[arg-type]
        GridOrder("BTC-USDT", BUY, 5_999_000, 100, account_id=b"a"),  # type: ignore[arg-type]
        GridOrder(["BTC-USDT"], BUY, 5_999_000, 100),  # type: ignore[arg-type]
        ("BTC-USDT", BUY, 5_999_000),
        None,
    ):
        with pytest.raises(InvalidRequest):
            sim.place_grid(bad)  # type: ignore[arg-type]
    assert not sim.engine.orders and sim.ledger.balances["USDT"].locked == 0


# -- a whole seeded run: the same bytes through either path, and deterministic --------------------


def _scenario(rng: random.Random, i: int, sim: SimVenue, now_ns: int) -> GridOrder:
    symbol = rng.choice(("BTC-USDT", "BTC-USDT-PERP"))
    grid = sim.grid(symbol)
    mid = grid.ticks(sim.markets[symbol].mid)
    side = rng.choice((BUY, SELL))
    # Spot lots are 0.00001, perpetual lots 0.001: both with some below the minimums and too large.
    lots = rng.choice((1, 40, 100, 400, 2000, 30000) if symbol == "BTC-USDT" else (1, 2, 5, 20, 300, 60000))
    kind = rng.random()
    if kind < 0.1:
        tif: order_pb2.TimeInForce.ValueType = rng.choice((order_pb2.TIME_IN_FORCE_UNSPECIFIED, IOC, FOK))
        return GridOrder(symbol, side, 0, lots, f"g{i}", MARKET, tif)
    offset = rng.randint(-30, 200) * rng.choice((1, 1, 5, 50))
    ticks = mid - offset if side == BUY else mid + offset
    tif = rng.choice((order_pb2.TIME_IN_FORCE_UNSPECIFIED, GTC, IOC, FOK, GTD, DAY))
    expires = now_ns + rng.randint(1, 40) * 500_000_000 if tif == GTD else None
    post_only = tif in (order_pb2.TIME_IN_FORCE_UNSPECIFIED, GTC) and rng.random() < 0.3
    reduce_only = symbol == "BTC-USDT-PERP" and rng.random() < 0.2
    return GridOrder(symbol, side, ticks, lots, f"g{i}", LIMIT, tif, post_only, reduce_only, expires)


async def _run(seed: int, *, grid_path: bool) -> tuple[str, int]:
    market = MarketModel(volatility=1.5, jump_intensity=2000.0, trades_per_step=3)
    sim = SimVenue(_config(seed, market), clock=SimClock())
    rng = random.Random(seed)
    out = hashlib.sha256()
    count = 0
    async with sim:
        streams: list[Subscription[Any]] = [
            sim.subscribe_executions(),
            sim.subscribe_balances(),
            sim.subscribe_positions(),
            *(sim.subscribe_trades(s) for s in ("BTC-USDT", "BTC-USDT-PERP")),
        ]
        placed: list[str] = []
        for _ in range(300):
            for _ in range(rng.randint(0, 3)):
                g = _scenario(rng, len(placed), sim, sim.clock.now_ns())
                placed.append(g.client_order_id)
                try:
                    if grid_path:
                        sim.place_grid(g)
                    else:
                        await sim.place_order(_proto(g, sim.grid(g.symbol)))
                except VenueError as exc:
                    out.update(f"{type(exc).__name__}:{exc.message}".encode())
            if placed and rng.random() < 0.4:
                cid = rng.choice(placed)
                try:
                    if grid_path:
                        sim.cancel_grid(client_order_id=cid)
                    else:
                        await sim.cancel_order(client_order_id=cid)
                except VenueError as exc:
                    out.update(f"{type(exc).__name__}:{exc.message}".encode())
            await sim.step()
            for stream in streams:
                while stream.pending():
                    out.update((await stream.__anext__()).SerializeToString(deterministic=True))
                    count += 1
        for o in await sim.get_orders():
            out.update(o.SerializeToString(deterministic=True))
        for b in await sim.get_balances():
            out.update(b.SerializeToString(deterministic=True))
    return out.hexdigest(), count


async def test_a_seeded_run_gives_the_same_bytes_through_the_grid_and_the_api() -> None:
    grid_hash, count = await _run(2121, grid_path=True)
    assert count > 1500  # fills, expiries, refusals and cancels all happened
    assert (await _run(2121, grid_path=False))[0] == grid_hash
    assert (await _run(2121, grid_path=True))[0] == grid_hash  # deterministic per seed
    assert (await _run(2122, grid_path=True))[0] != grid_hash  # and the seed matters


async def test_cancel_grid_takes_exactly_one_id_and_a_closed_venue_refuses() -> None:
    sim = SimVenue(_config(3, _QUIET), clock=SimClock())
    order = sim.place_grid(GridOrder("BTC-USDT", BUY, 5_999_000, 100, "one", post_only=True))
    assert sim.ledger.balances["USDT"].locked > 0
    for ids in ({}, {"order_id": order.order_id, "client_order_id": "one"}):
        with pytest.raises(InvalidRequest):
            sim.cancel_grid(**ids)
    assert sim.cancel_grid(client_order_id="one") is order and not order.is_open
    assert sim.ledger.balances["USDT"].locked == 0
    await sim.aclose()
    with pytest.raises(Unavailable):
        sim.place_grid(GridOrder("BTC-USDT", BUY, 5_999_000, 100, "two"))
    with pytest.raises(Unavailable):
        sim.cancel_grid(order.order_id)
