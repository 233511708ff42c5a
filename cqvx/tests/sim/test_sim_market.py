"""Market model, candles, streams, clocks and determinism of the simulated venue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from cqc.markets.v1 import candle_pb2
from cqc.venues.v1 import order_pb2, venue_pb2
from cqvx.client import (
    SupportsBalanceStream,
    SupportsBatchOrders,
    SupportsCancelAll,
    SupportsCandles,
    SupportsCustody,
    SupportsFundingRates,
    SupportsInstruments,
    SupportsOrderStream,
    SupportsPositions,
    SupportsPrices,
    SupportsRfq,
    VenueClient,
    capabilities_of,
)
from cqvx.errors import InvalidRequest
from cqvx.num import dec_str
from cqvx.venues.sim import MarketModel, SimClock, SimConfig, SimVenue, WallClock

from .conftest import PERP, SPOT

D = Decimal
Mk = Callable[..., order_pb2.Order]


def busy_config(seed: int) -> SimConfig:
    return SimConfig(
        seed=seed,
        instruments=(SPOT, PERP),
        balances={"USDT": D("1000000"), "BTC": D("20")},
        market=MarketModel(volatility=2.0, jump_intensity=5000.0),
        tick_interval=0.5,
    )


async def _scenario(seed: int, mk: Mk) -> list[bytes]:
    """Place a ladder of orders, run 2 simulated minutes; every event, serialized."""
    sim = SimVenue(busy_config(seed), clock=SimClock())
    out: list[bytes] = []
    async with sim:
        executions = sim.subscribe_executions()
        trades = sim.subscribe_trades("BTC-USDT")
        mid = sim.markets["BTC-USDT"].mid
        for i in range(1, 6):
            await sim.place_order(mk(f"b{i}", "buy", "0.01", str(mid - 5 * i)))
            await sim.place_order(mk(f"s{i}", "sell", "0.01", str(mid + 5 * i)))
        await sim.place_order(mk("p1", "buy", "0.5", symbol="BTC-USDT-PERP"))
        await sim.run_for(120)
        await sim.place_order(mk("m1", "sell", "0.02"))
        await sim.run_for(5)
        for stream in (executions, trades):
            while stream.pending():  # drain what was published, without waiting for more
                out.append((await stream.__anext__()).SerializeToString(deterministic=True))
        out.extend(b.SerializeToString(deterministic=True) for b in await sim.get_balances())
        out.extend(p.SerializeToString(deterministic=True) for p in await sim.get_positions())
    return out


async def test_same_seed_same_actions_same_bytes(mk: Mk) -> None:
    first = await _scenario(11, mk)
    second = await _scenario(11, mk)
    assert len(first) > 200
    assert first == second
    assert await _scenario(12, mk) != first


async def test_candles_close_at_their_boundary(make_sim: Callable[..., SimVenue]) -> None:
    async with make_sim(market=MarketModel(), tick_interval=1.0) as sim:
        stream = sim.subscribe_candles("BTC-USDT", candle_pb2.CANDLE_INTERVAL_1MIN)
        await sim.run_for(150)
        candles = await sim.get_candles("BTC-USDT", candle_pb2.CANDLE_INTERVAL_1MIN)
        assert [c.is_closed for c in candles] == [True, True, False]
        assert all(c.close_time.seconds - c.open_time.seconds == 60 for c in candles)
        for c in candles:
            assert D(c.low) <= min(D(c.open), D(c.close)) and D(c.high) >= max(D(c.open), D(c.close))
        assert candles[1].open_time == candles[0].close_time and D(candles[0].volume) > 0
        received = []
        while stream.pending():
            received.append(await stream.__anext__())
        closed = [c for c in received if c.is_closed]
        assert [c.open_time for c in closed] == [candles[0].open_time, candles[1].open_time]
        assert closed[0] == candles[0]
        # A width that is not tracked is built from a finer one.
        wide = await sim.get_candles("BTC-USDT", candle_pb2.CANDLE_INTERVAL_15MIN)
        assert len(wide) == 1 and not wide[0].is_closed
        assert wide[0].volume == dec_str(sum((D(c.volume) for c in candles), D(0)))
        assert wide[0].open == candles[0].open and wide[0].close == candles[-1].close
        with pytest.raises(InvalidRequest):
            await sim.get_candles("BTC-USDT", candle_pb2.CANDLE_INTERVAL_1MONTH)
        await stream.aclose()


async def test_warmup_history_exists_at_start() -> None:
    sim = SimVenue.default(seed=3, clock=SimClock())
    async with sim:
        candles = await sim.get_candles("BTC-USDT", candle_pb2.CANDLE_INTERVAL_1MIN, limit=100)
        assert len(candles) == 100 and all(c.is_closed for c in candles[:-1])
        tickers = await sim.get_tickers()
        assert {t.symbol for t in tickers} == {"BTC-USDT", "BTC-USDT-PERP"}
        assert all(D(t.volume_24h) > 0 for t in tickers)
        instruments = await sim.get_instruments()
        spot = next(i for i in instruments if i.symbol == "BTC-USDT")
        assert (spot.tick_size, spot.lot_size, spot.min_notional) == ("0.01", "0.00001", "5")
        balances = {b.asset: b.total for b in await sim.get_balances()}
        assert balances == {"BTC": "0.1", "USDT": "10000"}
        price = await sim.get_latest_price("BTC-USDT-PERP")
        assert price.mark and abs(D(price.last) / D(60000) - 1) < D("0.2")


async def test_replay_of_trades_and_candles_csv(tmp_path: Path) -> None:
    trades = tmp_path / "trades.csv"
    trades.write_text(
        "timestamp,price,quantity,side\n"
        "1700000000000,100.00,1,buy\n1700000001000,101.50,2,sell\n1700000002000,99.25,0.5,buy\n"
    )
    spec = SPOT.__class__(symbol="ETH-USDT", initial_price=D("1"), lot_size=D("0.01"), min_notional=D("1"))
    config = SimConfig(
        instruments=(spec,), market=MarketModel(kind="replay", replay_path=trades), tick_interval=0.5
    )
    async with SimVenue(config, clock=SimClock()) as sim:
        stream = sim.subscribe_trades("ETH-USDT")
        await sim.run_for(3)
        got = [await stream.__anext__() for _ in range(3)]
        assert [(t.price, t.quantity) for t in got] == [("100", "1"), ("101.5", "2"), ("99.25", "0.5")]
        assert (await sim.get_latest_price("ETH-USDT")).last == "99.25"
    candles = tmp_path / "candles.csv"
    candles.write_text(
        "open_time,open,high,low,close,volume\n2024-01-01T00:00:00Z,10,12,9,11,4\n"
        "2024-01-01T00:01:00Z,11,11.5,10.5,10.75,8\n"
    )
    config = SimConfig(
        instruments=(spec,),
        market=MarketModel(kind="replay", replay_path=candles, replay_format="candles"),
        tick_interval=1.0,
    )
    async with SimVenue(config, clock=SimClock()) as sim:
        await sim.run_for(125)
        bars = await sim.get_candles("ETH-USDT", candle_pb2.CANDLE_INTERVAL_1MIN)
        assert [(b.open, b.high, b.low, b.close, b.volume) for b in bars[:2]] == [
            ("10", "12", "9", "11", "4"),
            ("11", "11.5", "10.5", "10.75", "8"),
        ]


async def test_book_and_price_streams_fan_out(sim: SimVenue) -> None:
    b1 = sim.subscribe_order_book("BTC-USDT", 3)
    b2 = sim.subscribe_order_book("BTC-USDT", 1)
    prices = sim.subscribe_prices(["BTC-USDT", "BTC-USDT-PERP"])
    first = await b1.__anext__()
    assert len(first.bids) == 3 and first.bids[0].price == "59999.99" and first.asks[0].price == "60000.01"
    assert len((await b2.__anext__()).bids) == 1
    sim.set_price("BTC-USDT", D("60010"))
    moved = await b1.__anext__()
    assert moved.bids[0].price == "60009.99" and moved.sequence > first.sequence
    assert (await b2.__anext__()).asks[0].price == "60010.01"
    symbols = {(await prices.__anext__()).symbol for _ in range(3)}
    assert symbols == {"BTC-USDT", "BTC-USDT-PERP"}
    for s in (b1, b2, prices):
        await s.aclose()


async def test_capabilities_cover_every_protocol_but_rfq_and_custody(sim: SimVenue) -> None:
    assert isinstance(sim, VenueClient)
    for proto in (
        SupportsInstruments,
        SupportsOrderStream,
        SupportsPositions,
        SupportsFundingRates,
        SupportsCandles,
        SupportsBatchOrders,
        SupportsCancelAll,
        SupportsPrices,
        SupportsBalanceStream,
    ):
        assert isinstance(sim, proto), proto.__name__
    assert not isinstance(sim, SupportsRfq) and not isinstance(sim, SupportsCustody)
    # Spot margin is an order flag (Order.margin), not a protocol: listed besides the protocols'.
    assert sim.capabilities() == capabilities_of(sim) | {venue_pb2.CAPABILITY_SPOT_MARGIN}
    assert venue_pb2.CAPABILITY_RFQ not in sim.capabilities()


async def test_sim_clock_wakes_sleepers_in_order(sim: SimVenue) -> None:
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await sim.clock.sleep(seconds)
        woke.append((name, sim.clock.now_ns()))

    start = sim.clock.now_ns()
    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("late", 2.05), ("early", 0.25))]
    await asyncio.sleep(0)
    await sim.run_for(3)
    await asyncio.gather(*tasks)
    assert woke == [("early", start + 250_000_000), ("late", start + 2_050_000_000)]


async def test_wall_clock_driver_moves_the_market() -> None:
    config = busy_config(5)
    sim = SimVenue(config, clock=WallClock(speed=50))
    async with sim:
        prices = sim.subscribe_prices(["BTC-USDT"])
        seen = [await asyncio.wait_for(prices.__anext__(), 2) for _ in range(4)]
        assert len({p.timestamp.ToNanoseconds() for p in seen}) >= 3
        with pytest.raises(Exception, match="SimClock"):
            await sim.run_for(1)
    # aclose ended the stream
    with pytest.raises(StopAsyncIteration):
        await prices.__anext__()


@pytest.mark.parametrize(
    "row",
    [
        "2024-01-15T10:30:00,100,1,buy",  # no zone: which moment is it?
        "2024-02-30T10:30:00Z,100,1,buy",
        "1e999999,100,1,buy",  # a magnitude no clock reaches
        "-5,100,1,buy",
        "1700000000,-100,1,buy",  # a negative price
        "1700000000,100,-1,buy",  # a negative size
        "1700000000,1e999,1,buy",
    ],
)
def test_replay_rows_with_impossible_values_are_parse_errors(tmp_path: Path, row: str) -> None:
    """Issue 12 (the same class as the Coinbase edge): impossible values never enter the replay."""
    from cqvx.errors import ParseError
    from cqvx.venues.sim.market import load_replay

    path = tmp_path / "trades.csv"
    path.write_text("timestamp,price,quantity,side\n" + row + "\n", encoding="utf-8")
    with pytest.raises(ParseError):
        load_replay(path, "trades", Decimal("0.001"))
