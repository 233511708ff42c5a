"""Issue 12 against the wire-level fake: an accepted order is never reported as rejected, and a reply
that lost its meaning-carrying fields is never read as "nothing there"."""

from __future__ import annotations

import json

import pytest

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import OrderRejected, ParseError, Timeout
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.venues.coinbase import CoinbaseClient
from cqvx.venues.coinbase.endpoints import ACCOUNTS, BATCH_CANCEL, ORDERS, ORDERS_BATCH


def limit(coid: str, price: str = "40000") -> order_pb2.Order:
    return order_pb2.Order(
        client_order_id=coid,
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        quantity="0.01",
        price=price,
    )


@pytest.mark.parametrize(
    "reply",
    [
        {"order_id": "will-be-looked-up"},  # only an order id
        {"data": {"success": True}},  # an unexpected wrapper
        {"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON"},  # no documented reason
    ],
)
async def test_accepted_order_with_an_odd_reply_is_found_not_rejected(
    fake: FakeCoinbase, client: CoinbaseClient, reply: dict[str, object]
) -> None:
    # The venue creates the order, then answers 200 with a body that is not the documented shape.
    fake.fail(ORDERS, status=200, body=json.dumps(reply).encode(), method="POST", after=True)
    rep = await client.place_order(limit("odd-1"))
    assert rep.execution_type == execution_pb2.EXECUTION_TYPE_STATUS
    assert rep.client_order_id == "odd-1" and rep.order_id in fake.orders
    assert fake.orders_with_client_id("odd-1") == 1  # resolved by lookup, never re-sent


async def test_odd_reply_for_an_order_that_does_not_exist_is_unresolved(
    fake: FakeCoinbase, client: CoinbaseClient
) -> None:
    # Nothing was created and the reply says nothing documented: unresolved, not "rejected".
    fake.fail(ORDERS, status=200, body=b'{"success": false}', method="POST")
    with pytest.raises(Timeout) as info:
        await client.place_order(limit("odd-2"))
    assert not isinstance(info.value, OrderRejected) and not info.value.retry_safe
    assert fake.orders_with_client_id("odd-2") == 0


async def test_documented_rejection_is_still_a_rejection(fake: FakeCoinbase, client: CoinbaseClient) -> None:
    crossing = limit("cross-1", price="60000")
    crossing.post_only = True  # the fake answers INVALID_LIMIT_PRICE_POST_ONLY, as documented
    with pytest.raises(OrderRejected):
        await client.place_order(crossing)
    assert fake.orders_with_client_id("cross-1") == 0


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (ORDERS_BATCH, b'{"has_next": false, "cursor": ""}'),
        (ORDERS_BATCH, b'{"error": "PERMISSION_DENIED", "message": "scope"}'),
        (ACCOUNTS, b'{"data": [], "pagination": {}}'),
    ],
)
async def test_lists_without_their_list_are_parse_errors_not_empty(
    fake: FakeCoinbase, client: CoinbaseClient, route: str, body: bytes
) -> None:
    await client.place_order(limit("open-1"))
    fake.fail(route, status=200, body=body, method="GET")
    with pytest.raises(ParseError):
        if route == ACCOUNTS:
            await client.get_balances()
        else:
            await client.get_orders()


async def test_cancel_result_without_success_flag_is_not_a_failure(
    fake: FakeCoinbase, client: CoinbaseClient
) -> None:
    rep = await client.place_order(limit("cancel-1"))
    fake.fail(BATCH_CANCEL, status=200, body=json.dumps({"results": [{"order_id": rep.order_id}]}).encode())
    with pytest.raises(ParseError):
        await client.cancel_order(order_id=rep.order_id)
