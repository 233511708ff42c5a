"""ccxt.pro streams of the ccxt adapter against the fake Binance USD-M WebSocket: listen-key
keepalive and expiry, the depth sequence gap, ping/pong, and the account summary."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.markets.v1 import candle_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import ParseError, UnsupportedOperation
from cqvx.streams import Gap
from cqvx.symbols import SymbolMap
from cqvx.testing.fake_binance.harness import BinanceCcxtHarness
from cqvx.venues.ccxt import CcxtClient, CcxtConfig, parse

Env = tuple[BinanceCcxtHarness, CcxtClient]


async def _env(**config: object) -> tuple[BinanceCcxtHarness, CcxtClient]:
    h = BinanceCcxtHarness()
    h.fake.ws.ping_interval_s = 0.2
    await h.start()
    base = await h.new_client()
    assert isinstance(base, CcxtClient)
    client = CcxtClient(dataclasses.replace(base._config, **config))  # type: ignore[arg-type]
    await base.aclose()
    await client.start()
    return h, client


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    h, client = await _env()
    try:
        yield h, client
    finally:
        await client.aclose()
        await h.close()


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)


async def test_listen_key_is_kept_alive_at_the_configured_rate() -> None:
    h, client = await _env(listen_key_keepalive_s=0.3)
    try:
        stream = client.subscribe_executions()
        await asyncio.wait_for(stream.wait_live(), 10)
        await _until(lambda: h.fake.keepalives >= 2)
        assert h.fake.requests_to("/fapi/v1/listenKey", "PUT")
        await stream.aclose()
    finally:
        await client.aclose()
        await h.close()


async def test_expired_listen_key_is_replaced_with_a_gap_and_orders_still_arrive(env: Env) -> None:
    h, client = env
    stream = client.subscribe_executions()
    gaps: list[Gap] = []
    stream.on_gap(gaps.append)
    await asyncio.wait_for(stream.wait_live(), 10)
    await h.fake.ws.expire_listen_key()
    await _until(lambda: bool(gaps))
    assert len(h.fake.requests_to("/fapi/v1/listenKey", "POST")) >= 2  # a new key, not the dead one
    report = await client.place_order(h.resting_order("afterexpiry"))
    async with asyncio.timeout(10):
        async for rep in stream:
            if rep.client_order_id == "afterexpiry":
                break
    await client.cancel_order(symbol=h.symbol, order_id=report.order_id)
    await stream.aclose()


async def test_skipped_depth_update_is_a_gap_then_the_book_converges(env: Env) -> None:
    h, client = env
    stream = client.subscribe_order_book(h.symbol, 10)
    gaps: list[Gap] = []
    stream.on_gap(gaps.append)
    await asyncio.wait_for(stream.wait_live(), 10)
    h.sim.set_price(h.symbol, h._mid() + Decimal("0.01"))
    await asyncio.wait_for(anext(aiter(stream)), 10)  # ccxt holds its REST snapshot: the chain runs
    await h.make_book_gap()
    want = await h.expected_book(10)
    async with asyncio.timeout(15):
        async for book in stream:
            if [lv.price for lv in book.bids] == [lv.price for lv in want.bids] and gaps:
                break
    assert any("sequence break" in g.reason for g in gaps)
    await stream.aclose()


async def test_server_pings_are_answered(env: Env) -> None:
    h, client = env
    stream = client.subscribe_trades(h.symbol)
    await asyncio.wait_for(stream.wait_live(), 10)
    await _until(lambda: h.fake.ws.pongs_received >= 1)
    await stream.aclose()


async def test_fill_reported_once_with_trade_details(env: Env) -> None:
    h, client = env
    stream = client.subscribe_executions([h.symbol])
    await asyncio.wait_for(stream.wait_live(), 10)
    report = await client.place_order(h.resting_order("fillonce"))
    await h.fill(report, Decimal("0.004"))
    trades: list[execution_pb2.ExecutionReport] = []
    async with asyncio.timeout(10):
        async for rep in stream:
            if rep.execution_type == execution_pb2.EXECUTION_TYPE_TRADE:
                trades.append(rep)
                break
    assert trades[0].last_quantity == "0.004" and trades[0].last_price == "50000"
    await h.fill(report, Decimal("0.003"))
    async with asyncio.timeout(10):
        async for rep in stream:
            if rep.execution_type == execution_pb2.EXECUTION_TYPE_TRADE:
                trades.append(rep)
                break
    # Binance streams each fill's own commission ("n"): every report's fee is that fill's, summed
    # per order by the adapter (maker 0.0002 of 50000 x qty).
    assert [Decimal(t.fee) for t in trades] == [Decimal("0.04"), Decimal("0.03")]
    await client.cancel_order(symbol=h.symbol, order_id=report.order_id)
    await stream.aclose()


async def test_account_summary_has_margin_balance_and_mode(env: Env) -> None:
    h, client = env
    await client.place_order(h.position_order("sumpos", order_pb2.ORDER_SIDE_BUY, Decimal("0.01")))
    summary = await client.get_account_summary()
    assert Decimal(summary.margin_balance) == Decimal(summary.wallet_balance) + Decimal(
        summary.unrealized_pnl
    )
    assert Decimal(summary.available_balance) > 0
    assert summary.margin_modes.get(h.symbol) in (
        position_pb2.MARGIN_MODE_CROSS,
        position_pb2.MARGIN_MODE_ISOLATED,
    )
    assert summary.margin_mode == summary.margin_modes[h.symbol]


def test_binance_summary_line_covers_every_field() -> None:
    from cqvx.venues.ccxt.account import SUMMARY_FIELDS
    from cqvx.venues.ccxt.quirks import quirks_for

    assert sorted(dict(quirks_for("binance").summary_keys)) == sorted(SUMMARY_FIELDS)
    assert quirks_for("binance").ws_fill_fee_key == "n"


async def test_account_summary_needs_a_quirk_line() -> None:
    client = CcxtClient(CcxtConfig("okx"))
    # Every venue has a line now; a venue without one answers unsupported, never a guess.
    client._quirks = dataclasses.replace(client.quirks, summary_keys=())
    try:
        with pytest.raises(UnsupportedOperation, match="summary_keys"):
            await client.get_account_summary()
    finally:
        await client.aclose()


_JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=8),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["symbol", "side", "price", "amount", "id", "timestamp"]), _JUNK))
def test_trade_parser_raises_only_parse_error(raw: dict[str, object]) -> None:
    symbols = SymbolMap("binance", [("BTC-USDT-PERP", "BTC/USDT:USDT")])
    with contextlib.suppress(ParseError):
        parse.parse_trade(raw, symbols, "binance")


async def test_polled_funding_and_candle_streams(env: Env) -> None:
    h, client = env
    funding = client.subscribe_funding_rates([h.symbol])
    rate = await asyncio.wait_for(anext(aiter(funding)), 10)
    assert rate.symbol == h.symbol and rate.rate
    await funding.aclose()
    await h.emit_trade()  # the quiet sim builds candles from trades
    candles = client.subscribe_candles(h.symbol, candle_pb2.CANDLE_INTERVAL_1MIN)
    try:
        candle = await asyncio.wait_for(anext(aiter(candles)), 10)
        assert candle.symbol == h.symbol
    except TimeoutError:
        pytest.fail("no candle from the polled candle stream")
    finally:
        await candles.aclose()


async def test_per_order_memory_is_bounded_and_keeps_open_orders(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cqvx.venues.ccxt import streams as streams_mod

    _, client = env
    monkeypatch.setattr(streams_mod, "_MAX_ORDERS", 10)
    s = client.streams
    s.track(order_pb2.Order(order_id="open1", symbol="BTC-USDT-PERP"))
    for i in range(30):
        done = order_pb2.Order(
            order_id=f"done{i}",
            symbol="BTC-USDT-PERP",
            status=order_pb2.ORDER_STATUS_CANCELLED,
            filled_quantity="0",
        )
        s._reports(done, from_rest=True)
    s._reports(
        order_pb2.Order(order_id="open1", symbol="BTC-USDT-PERP", status=order_pb2.ORDER_STATUS_OPEN),
        from_rest=True,
    )
    assert len(s._fees) <= 11
    assert "open1" in s._fees and "done29" in s._fees
