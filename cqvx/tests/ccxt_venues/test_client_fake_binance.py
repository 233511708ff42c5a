"""The ccxt adapter end to end: ccxt unmodified, over loopback, against the fake Binance USD-M server."""

from __future__ import annotations

import decimal
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import DuplicateOrder, InvalidRequest, NotFound, Timeout
from cqvx.secrets import Secret
from cqvx.testing.fake_binance import FakeBinance
from cqvx.venues.ccxt import CcxtClient, CcxtConfig

KEY, SECRET = "fake-key-0123456789abcdef", "fake-secret-FEDCBA9876543210-never-logged"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(KEY, SECRET) as server:
        yield server


def _client(fake: FakeBinance, secret: str = SECRET) -> CcxtClient:
    return CcxtClient(
        CcxtConfig("binance", Secret(KEY), Secret(secret), rest_url=fake.url, read_retries=0, timeout_s=5)
    )


async def _mid(client: CcxtClient) -> Decimal:
    book = await client.get_order_book("BTC-USDT-PERP", 5)
    return (Decimal(book.bids[0].price) + Decimal(book.asks[0].price)) / 2


def _limit(
    price: Decimal, coid: str, side: order_pb2.OrderSide.ValueType = order_pb2.ORDER_SIDE_BUY
) -> order_pb2.Order:
    return order_pb2.Order(
        symbol="BTC-USDT-PERP",
        client_order_id=coid,
        side=side,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.001",
        price=str(price.quantize(Decimal("0.01"))),
        post_only=True,
    )


async def test_markets_map_and_place_get_cancel(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        assert client.venue == "binance"
        assert (await client.get_instruments())[0].venue_symbol == "BTCUSDT"
        far = (await _mid(client)) * Decimal("0.8")
        report = await client.place_order(_limit(far, "grid-1"))
        assert report.execution_type == execution_pb2.EXECUTION_TYPE_NEW
        assert report.client_order_id == "grid-1" and report.order_quantity == "0.001"
        by_coid = await client.get_order(symbol="BTC-USDT-PERP", client_order_id="grid-1")
        assert by_coid.order_id == report.order_id and by_coid.post_only
        assert [o.client_order_id for o in await client.get_orders()] == ["grid-1"]
        cancelled = await client.cancel_order(symbol="BTC-USDT-PERP", order_id=report.order_id)
        assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
        assert await client.get_orders() == []
    assert fake.bad_signatures == 0


async def test_duplicate_client_order_id_is_answered_with_the_existing_order(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        far = (await _mid(client)) * Decimal("0.8")
        first = await client.place_order(_limit(far, "dup-1"))
        with pytest.raises(DuplicateOrder) as caught:
            await client.place_order(_limit(far, "dup-1"))
        assert caught.value.code == "-4116" and caught.value.order_id == first.order_id
        assert len(await client.get_orders()) == 1  # never placed twice


async def test_lost_placement_reply_is_unresolved_and_never_resent(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        far = (await _mid(client)) * Decimal("0.8")
        fake.reset("/fapi/v1/order", method="POST", after=True)  # the venue acts, the reply is lost
        with pytest.raises(Timeout) as caught:
            await client.place_order(_limit(far, "lost-1"))
        assert not caught.value.retry_safe
        assert len(fake.requests_to("/fapi/v1/order", "POST")) == 1  # no re-send by ccxt or by us
        found = await client.get_order(symbol="BTC-USDT-PERP", client_order_id="lost-1")
        assert found.status == order_pb2.ORDER_STATUS_OPEN


async def test_quantities_are_never_rounded(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        order = _limit((await _mid(client)) * Decimal("0.8"), "odd-1")
        order.quantity = "0.0000123"  # below the 0.00001 step
        with pytest.raises(InvalidRequest, match="not on the venue's step"):
            await client.place_order(order)
        order.quantity, order.price = "0.001", "50000.005"
        with pytest.raises(InvalidRequest, match="not on the venue's step"):
            await client.place_order(order)
    assert fake.requests_to("/fapi/v1/order", "POST") == []


async def test_unknown_order_is_not_found(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        with pytest.raises(NotFound):
            await client.get_order(symbol="BTC-USDT-PERP", client_order_id="nope")


async def test_positions_funding_candles_balances_price(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        mid = await _mid(client)
        buy = order_pb2.Order(
            symbol="BTC-USDT-PERP",
            client_order_id="take-1",
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity="0.01",
        )
        await client.place_order(buy)
        [position] = await client.get_positions()
        assert position.symbol == "BTC-USDT-PERP" and position.side == position_pb2.POSITION_SIDE_LONG
        assert position.quantity == "0.01" and Decimal(position.entry_price) > mid * Decimal("0.9")
        assert position.leverage and position.liquidation_price
        rate = await client.get_funding_rate("BTC-USDT-PERP")
        assert rate.rate and rate.mark_price and rate.HasField("next_funding_time")
        assert (await client.get_funding_rate_history("BTC-USDT-PERP"))[0].rate == rate.rate
        candles = await client.get_candles("BTC-USDT-PERP", 1, limit=5)  # 1 = CANDLE_INTERVAL_1MIN
        assert candles and all(c.open and c.close for c in candles)
        assert {b.asset for b in await client.get_balances()} >= {"USDT"}
        assert (await client.get_latest_price("BTC-USDT-PERP")).last
        assert (await client.health()).reachable


async def test_wrong_secret_is_an_authentication_error_without_the_secret_in_it(fake: FakeBinance) -> None:
    from cqvx.errors import AuthenticationError

    async with _client(fake, secret="wrong-secret-value-xyz") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_balances()
    assert "wrong-secret-value-xyz" not in str(caught.value)
    assert fake.bad_signatures == 1


async def test_nothing_ccxt_logs_contains_a_credential(
    fake: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _client(fake) as client:
        client._ex.verbose = True  # even a caller turning ccxt's verbose on leaks nothing
        far = (await _mid(client)) * Decimal("0.8")
        await client.place_order(_limit(far, "log-1"))
        await client.get_balances()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/fapi/v1/order" in logged  # ccxt did log the signed requests...
    assert SECRET not in logged and KEY not in logged  # ...without the credentials


async def test_ccxt_leaves_the_callers_decimal_context_alone(fake: FakeBinance) -> None:
    # ccxt's decimal_to_precision sets ROUND_HALF_UP and the Underflow trap on the context it runs in;
    # the adapter runs ccxt in a context of its own, so arithmetic elsewhere in the process (the sim's,
    # the user's) never changes because a ccxt venue placed an order.
    before = decimal.getcontext().copy()
    async with _client(fake) as client:
        far = (await _mid(client)) * Decimal("0.8")
        await client.place_order(_limit(far, "ctx-1"))
        await client.cancel_order(symbol="BTC-USDT-PERP", client_order_id="ctx-1")
    after = decimal.getcontext()
    assert (after.rounding, after.prec, dict(after.traps)) == (
        before.rounding,
        before.prec,
        dict(before.traps),
    )


async def test_cancel_all_uses_the_venues_cancel_all_and_reads_the_outcome_back(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        far = (await _mid(client)) * Decimal("0.8")
        placed = [(await client.place_order(_limit(far, f"ca-{i}"))).order_id for i in range(3)]
        done = await client.cancel_all_orders("BTC-USDT-PERP")
        assert fake.cancel_alls == 1  # one DELETE /fapi/v1/allOpenOrders, not three cancels
        assert sorted(o.order_id for o in done) == sorted(placed)
        assert {o.status for o in done} == {order_pb2.ORDER_STATUS_CANCELLED}
        assert await client.get_orders() == []


async def test_cancel_all_by_side_cancels_order_by_order(fake: FakeBinance) -> None:
    async with _client(fake) as client:
        mid = await _mid(client)
        await client.place_order(_limit(mid * Decimal("0.8"), "buy-1"))
        sell = await client.place_order(_limit(mid * Decimal("1.2"), "sell-1", order_pb2.ORDER_SIDE_SELL))
        done = await client.cancel_all_orders("BTC-USDT-PERP", order_pb2.ORDER_SIDE_BUY)
        assert fake.cancel_alls == 0  # the venue's cancel-all cannot keep the sells
        assert [o.client_order_id for o in done] == ["buy-1"]
        assert [o.order_id for o in await client.get_orders()] == [sell.order_id]


async def test_cancel_all_answered_done_but_not_done_is_a_failure_not_success(fake: FakeBinance) -> None:
    fake.cancel_all_acts = False
    async with _client(fake) as client:
        far = (await _mid(client)) * Decimal("0.8")
        report = await client.place_order(_limit(far, "stuck-1"))
        with pytest.raises(Timeout) as caught:
            await client.cancel_all_orders("BTC-USDT-PERP")
        assert fake.cancel_alls == 1
        assert caught.value.completed == () and [oid for oid, _ in caught.value.failures] == [report.order_id]
        assert [o.order_id for o in await client.get_orders()] == [report.order_id]
