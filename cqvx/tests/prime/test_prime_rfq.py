"""Prime RFQ through the shared SupportsRfq capability: create a quote, accept it before it expires."""

from __future__ import annotations

import pytest

from cqc.venues.v1 import order_pb2, rfq_pb2
from cqvx.errors import InvalidRequest, OrderRejected, Timeout, UnsupportedOperation
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.venues.prime import PrimeClient

from .conftest import PORTFOLIO

ACCEPT = f"/v1/portfolios/{PORTFOLIO}/accept_quote"


def _req(side: int = order_pb2.ORDER_SIDE_BUY, **kw: str) -> rfq_pb2.QuoteRequest:
    return rfq_pb2.QuoteRequest(symbol="BTC-USD", side=side, quantity="0.5", **kw)  # type: ignore[arg-type]


async def test_quote_then_accept(client: PrimeClient, fake: FakePrime) -> None:
    quote = await client.request_quote(_req(limit_price="50100"))
    assert (
        quote.status == rfq_pb2.QUOTE_STATUS_OPEN
        and quote.buy_price == "50005"
        and quote.quantity_asset == "BTC"
    )
    done = await client.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED and done.quote.executed_price == "50005"
    assert (
        done.report.order_status == order_pb2.ORDER_STATUS_FILLED and done.report.cumulative_quantity == "0.5"
    )


async def test_expired_quote_is_refused_locally(
    client: PrimeClient, fake: FakePrime, clock: FakeClock
) -> None:
    quote = await client.request_quote(_req(order_pb2.ORDER_SIDE_SELL, limit_price="49000"))
    clock.advance(2.6)  # Prime holds quotes ~2.5 s (§11)
    with pytest.raises(OrderRejected) as info:
        await client.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_SELL)
    assert info.value.code == "quote_expired"
    assert fake.requests_to(ACCEPT) == []


async def test_lost_accept_reply_is_resolved_by_lookup(client: PrimeClient, fake: FakePrime) -> None:
    quote = await client.request_quote(_req(limit_price="50100"))
    fake.reset(ACCEPT, after=True)
    done = await client.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert done.report.order_status == order_pb2.ORDER_STATUS_FILLED
    assert len(fake.requests_to(ACCEPT)) == 1


async def test_accept_that_never_happened_is_unresolved(client: PrimeClient, fake: FakePrime) -> None:
    quote = await client.request_quote(_req(limit_price="50100"))
    fake.reset(ACCEPT)
    with pytest.raises(Timeout):
        await client.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert len(fake.requests_to(ACCEPT)) == 1


async def test_rfq_rules(client: PrimeClient) -> None:
    with pytest.raises(InvalidRequest, match="limit_price: required"):
        await client.request_quote(_req())  # no limit price
    for bad in ("abc", "0", "-1"):
        with pytest.raises(InvalidRequest, match="limit_price"):
            await client.request_quote(_req(limit_price=bad))
    with pytest.raises(UnsupportedOperation):
        await client.request_quote(_req(quantity_asset="USD", limit_price="50100"))
    with pytest.raises(InvalidRequest):
        await client.request_quote(_req(order_pb2.ORDER_SIDE_UNSPECIFIED, limit_price="50100"))
    quote = await client.request_quote(_req(limit_price="50100"))
    with pytest.raises(InvalidRequest):
        await client.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_SELL)
    with pytest.raises(InvalidRequest):
        await client.execute_quote("never-quoted", order_pb2.ORDER_SIDE_BUY)
