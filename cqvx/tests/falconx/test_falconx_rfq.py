"""The RFQ capability against the wire-level fake: quotes, price guard, expiry races, duplicate and
lost executes (resolved by looking the quote up, never by re-sending)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2, rfq_pb2
from cqvx.client import SupportsRfq
from cqvx.errors import InsufficientFunds, InvalidRequest, NotFound, OrderRejected, ParseError, Timeout
from cqvx.testing.fake_falconx import FakeClock, FakeFalconX
from cqvx.testing.waits import until
from cqvx.venues.falconx import FalconXClient

from .conftest import make_config

BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL
EXECUTE = "/v1/quotes/execute"


def _request(
    side: int = order_pb2.ORDER_SIDE_UNSPECIFIED, quantity: str = "0.5", asset: str = ""
) -> rfq_pb2.QuoteRequest:
    return rfq_pb2.QuoteRequest(symbol="BTC-USD", side=side, quantity=quantity, quantity_asset=asset)  # type: ignore[arg-type]


async def test_client_is_an_rfq_venue(client: FalconXClient) -> None:
    assert isinstance(client, SupportsRfq)


async def test_two_way_quote_and_execute(client: FalconXClient, fake: FakeFalconX) -> None:
    quote = await client.request_quote(_request())
    assert quote.status == rfq_pb2.QUOTE_STATUS_OPEN
    assert quote.side == order_pb2.ORDER_SIDE_UNSPECIFIED
    assert (quote.buy_price, quote.sell_price) == ("50010.25", "50000.5")
    body = json.loads(fake.requests_to("/v1/quotes", "POST")[-1].body)
    assert body["side"] == "two_way" and body["quantity"] == {"token": "BTC", "value": "0.5"}

    done = await client.execute_quote(quote.quote_id, SELL)
    assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED
    assert done.quote.executed_side == SELL and done.quote.executed_price == "50000.5"
    assert done.report.execution_type == execution_pb2.EXECUTION_TYPE_TRADE
    assert done.report.last_quantity == "0.5" and done.report.order_status == order_pb2.ORDER_STATUS_FILLED
    assert fake.executions[quote.quote_id] == 1
    assert json.loads(fake.requests_to(EXECUTE)[-1].body) == {"fx_quote_id": quote.quote_id, "side": "sell"}


async def test_quote_in_quote_token_units(client: FalconXClient, fake: FakeFalconX) -> None:
    quote = await client.request_quote(_request(BUY, "1000", "USD"))
    assert quote.quantity_asset == "USD" and quote.side == BUY and quote.sell_price == ""
    body = json.loads(fake.requests_to("/v1/quotes", "POST")[-1].body)
    assert body["quantity"] == {"token": "USD", "value": "1000"} and body["side"] == "buy"
    with pytest.raises(InvalidRequest):
        await client.request_quote(_request(BUY, "1", "ETH"))


async def test_a_limit_price_on_the_request_is_refused(client: FalconXClient, fake: FakeFalconX) -> None:
    asked = _request(BUY)
    asked.limit_price = "50100"
    with pytest.raises(InvalidRequest, match="limit_price"):
        await client.request_quote(asked)
    assert fake.requests_to("/v1/quotes", "POST") == []


async def test_quote_status_and_history(client: FalconXClient, clock: FakeClock) -> None:
    first = await client.request_quote(_request())
    second = await client.request_quote(_request())
    await client.execute_quote(first.quote_id, BUY)
    assert (await client.get_quote(first.quote_id)).status == rfq_pb2.QUOTE_STATUS_EXECUTED
    assert (await client.get_quote(second.quote_id)).status == rfq_pb2.QUOTE_STATUS_OPEN
    clock.advance(60)
    assert (await client.get_quote(second.quote_id)).status == rfq_pb2.QUOTE_STATUS_EXPIRED
    history = await client.get_executed_quotes(clock.datetime().replace(year=2000))
    assert [q.quote_id for q in history] == [first.quote_id]
    with pytest.raises(NotFound):
        await client.get_quote("0" * 32)


@pytest.mark.parametrize(
    ("side", "limit", "executes"),
    [(BUY, "50010.24", False), (BUY, "50010.25", True), (SELL, "50000.51", False), (SELL, "50000.5", True)],
)
async def test_price_guard(
    client: FalconXClient, fake: FakeFalconX, side: int, limit: str, executes: bool
) -> None:
    quote = await client.request_quote(_request())
    if executes:
        done = await client.execute_quote(quote.quote_id, side, limit_price=limit)
        assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED
    else:
        with pytest.raises(OrderRejected) as info:
            await client.execute_quote(quote.quote_id, side, limit_price=Decimal(limit))
        assert info.value.code == "price_guard" and not info.value.retry_safe
        assert fake.requests_to(EXECUTE) == [], "a guarded execute must not be sent"


async def test_price_guard_fetches_a_quote_it_did_not_request(fake: FakeFalconX, clock: FakeClock) -> None:
    async with (
        FalconXClient(make_config(fake.url), clock=clock) as a,
        FalconXClient(make_config(fake.url), clock=clock) as b,
    ):
        quote = await a.request_quote(_request(BUY))
        with pytest.raises(OrderRejected):
            await b.execute_quote(quote.quote_id, BUY, limit_price="50000")
        assert len(fake.requests_to(f"/v1/quotes/{quote.quote_id}")) == 1
        with pytest.raises(InvalidRequest):  # a buy-only quote has no sell price to guard
            await b.execute_quote(quote.quote_id, SELL, limit_price="1")
        assert fake.requests_to(EXECUTE) == []


async def test_expired_quote_is_a_typed_error(
    client: FalconXClient, fake: FakeFalconX, clock: FakeClock
) -> None:
    quote = await client.request_quote(_request())
    clock.advance(fake.quote_ttl + 0.001)
    with pytest.raises(OrderRejected) as info:
        await client.execute_quote(quote.quote_id, BUY)
    assert info.value.code == "quote_expired"
    assert fake.executions == {}


async def test_expiry_race_lost_at_the_venue(
    client: FalconXClient, fake: FakeFalconX, clock: FakeClock
) -> None:
    """The execute leaves before expiry but the venue processes it after: expired, never executed."""
    quote = await client.request_quote(_request())
    fake.hold_execute = asyncio.Event()
    task = asyncio.create_task(client.execute_quote(quote.quote_id, BUY))
    await until(lambda: len(fake.requests_to(EXECUTE)) == 1)
    clock.advance(fake.quote_ttl + 0.5)
    fake.hold_execute.set()
    with pytest.raises(OrderRejected) as info:
        await task
    assert info.value.code == "quote_expired"
    assert fake.executions == {} and len(fake.requests_to(EXECUTE)) == 1


async def test_expiry_race_won_but_reply_lost(
    client: FalconXClient, fake: FakeFalconX, clock: FakeClock
) -> None:
    """Executed just in time, reply lost, quote past expiry by the lookup: it is an execution."""
    quote = await client.request_quote(_request())
    fake.reset(EXECUTE, after=True)
    clock.advance(fake.quote_ttl - 0.01)
    fake.hold_execute = asyncio.Event()
    task = asyncio.create_task(client.execute_quote(quote.quote_id, BUY))
    await until(lambda: len(fake.requests_to(EXECUTE)) == 1)
    fake.hold_execute.set()
    await until(lambda: quote.quote_id in fake.executions)
    clock.advance(5)
    done = await task
    assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED and done.quote.executed_side == BUY
    assert fake.executions[quote.quote_id] == 1 and len(fake.requests_to(EXECUTE)) == 1


async def test_lost_reply_resolved_by_lookup(client: FalconXClient, fake: FakeFalconX) -> None:
    quote = await client.request_quote(_request())
    fake.reset(EXECUTE, after=True)  # executed, then the connection drops before the answer
    done = await client.execute_quote(quote.quote_id, BUY)
    assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED
    assert len(fake.requests_to(EXECUTE)) == 1, "never re-sent"
    assert len(fake.requests_to(f"/v1/quotes/{quote.quote_id}")) >= 1
    assert fake.executions[quote.quote_id] == 1


@pytest.mark.parametrize("fault", ["reset", "503"])
async def test_unprocessed_lost_execute_is_settled_by_expiry(
    client: FalconXClient, fake: FakeFalconX, clock: FakeClock, fault: str
) -> None:
    """Reply lost and NOT executed: the client watches the quote until it can no longer execute."""
    quote = await client.request_quote(_request())
    if fault == "reset":
        fake.reset(EXECUTE)
    else:
        fake.fail(EXECUTE, status=503)
    task = asyncio.create_task(client.execute_quote(quote.quote_id, BUY))
    lookup = f"/v1/quotes/{quote.quote_id}"
    await until(lambda: len(fake.requests_to(lookup)) >= 1)
    assert not task.done()  # still executable: unresolved, so it keeps looking
    clock.advance(fake.quote_ttl + client.config.expiry_grace_s)
    with pytest.raises(OrderRejected) as info:
        await task
    assert info.value.code == "quote_expired"
    assert len(fake.requests_to(EXECUTE)) == 1 and fake.executions == {}


async def test_unresolvable_execute_stays_unresolved(fake: FakeFalconX, clock: FakeClock) -> None:
    async with FalconXClient(make_config(fake.url, resolve_timeout_s=0.2, retries=0), clock=clock) as c:
        quote = await c.request_quote(_request())
        fake.reset(EXECUTE)
        fake.fail(f"/v1/quotes/{quote.quote_id}", times=None, status=503)
        with pytest.raises(Timeout) as info:
            await c.execute_quote(quote.quote_id, BUY)
        assert not info.value.retry_safe
        assert len(fake.requests_to(EXECUTE)) == 1


async def test_duplicate_execute_returns_the_one_execution(client: FalconXClient, fake: FakeFalconX) -> None:
    quote = await client.request_quote(_request())
    first = await client.execute_quote(quote.quote_id, BUY)
    again = await client.execute_quote(quote.quote_id, BUY)
    assert again.report.execution_id == first.report.execution_id
    assert again.quote.executed_price == first.quote.executed_price
    assert fake.executions[quote.quote_id] == 1
    assert len(fake.requests_to(EXECUTE)) == 2  # the second was answered "already executed"


async def test_concurrent_executes_execute_once(client: FalconXClient, fake: FakeFalconX) -> None:
    quote = await client.request_quote(_request())
    results = await asyncio.gather(*(client.execute_quote(quote.quote_id, BUY) for _ in range(3)))
    assert {r.report.execution_id for r in results} == {quote.quote_id}
    assert fake.executions[quote.quote_id] == 1


async def test_refusals_stand(client: FalconXClient, fake: FakeFalconX) -> None:
    quote = await client.request_quote(_request(BUY, "1000"))  # 50M USD: more than the balance
    with pytest.raises(InsufficientFunds):
        await client.execute_quote(quote.quote_id, BUY)
    with pytest.raises(NotFound):
        await client.execute_quote("f" * 32, BUY)
    with pytest.raises(InvalidRequest):
        await client.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_UNSPECIFIED)
    fake.execute_failures.append("no_liquidity")
    small = await client.request_quote(_request(BUY))
    with pytest.raises(OrderRejected) as info:
        await client.execute_quote(small.quote_id, BUY)
    assert info.value.code == "no_liquidity"
    assert fake.executions == {}


async def test_a_quote_for_something_else_is_refused(client: FalconXClient, fake: FakeFalconX) -> None:
    """A reply that does not answer the request is never handed out as a quote."""
    fake.tamper = lambda reply: reply.update(side_requested="sell")
    with pytest.raises(ParseError):
        await client.request_quote(_request(BUY))
    fake.tamper = lambda reply: reply.update(quantity_requested={"token": "USD", "value": "0.5"})
    with pytest.raises(ParseError):
        await client.request_quote(_request(BUY))
    fake.tamper = None
    assert (await client.request_quote(_request(BUY))).side == BUY
