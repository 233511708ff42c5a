"""Every documented Prime error code maps through the explicit table, with retry_safe."""

from __future__ import annotations

import json

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.errors import (
    AuthenticationError,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.testing.fake_prime import FakePrime
from cqvx.transport.http import HttpResponse
from cqvx.venues.prime import PrimeClient
from cqvx.venues.prime.errors import CODES, SUBCODES, http_error_mapper

from .conftest import PORTFOLIO

GET = "/v1/portfolios/p/orders/x"
CREATE = "/v1/portfolios/p/order"
DOCUMENTED = {
    "AUTHENTICATION_FAILED": 401,
    "FAILED_PRECONDITION": 400,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "PERMISSION_DENIED": 403,
    "RATE_LIMIT_EXCEEDED": 429,
    "REQUIRED_FIELD_MISSING": 400,
    "RESOURCE_NOT_FOUND": 404,
    "SERVICE_UNAVAILABLE": 503,
    "VALIDATION_ERROR": 400,
}


def _map(status: int, body: dict[str, str], path: str = GET) -> VenueError | None:
    return http_error_mapper(HttpResponse(status, {}, json.dumps(body).encode(), path))


def test_every_documented_code_is_in_the_table_with_its_status() -> None:
    assert {k: v.http_status for k, v in CODES.items()} == DOCUMENTED


@pytest.mark.parametrize("code", sorted(DOCUMENTED))
def test_each_code_maps_to_its_class(code: str) -> None:
    err = _map(DOCUMENTED[code], {"code": code, "message": "m"})
    entry = CODES[code]
    assert err is not None
    assert isinstance(err, entry.cls)
    assert err.retry_safe == entry.retry_safe
    assert err.code == code.lower()


@pytest.mark.parametrize("sub", sorted(SUBCODES))
def test_subcodes_refine_their_code(sub: str) -> None:
    err = _map(400, {"code": "VALIDATION_ERROR", "subcode": sub, "message": "m"})
    assert isinstance(err, SUBCODES[sub].cls) and err.code == sub.lower()


def test_unknown_subcode_falls_back_on_its_code() -> None:
    assert isinstance(_map(404, {"code": "RESOURCE_NOT_FOUND", "subcode": "SOMETHING_NEW"}), NotFound)


def test_internal_error_on_create_is_unresolved_not_retryable() -> None:
    err = _map(500, {"code": "INTERNAL_ERROR", "message": "boom"}, CREATE)
    assert isinstance(err, Timeout) and not err.retry_safe
    assert isinstance(_map(500, {"code": "INTERNAL_ERROR"}), Unavailable)


def test_rate_limit_has_the_documented_cool_off() -> None:
    err = _map(429, {"code": "RATE_LIMIT_EXCEEDED"})
    assert isinstance(err, RateLimited) and err.retry_after == 30.0 and err.retry_safe


def test_misc() -> None:
    assert isinstance(
        _map(400, {"code": "FAILED_PRECONDITION", "subcode": "INSUFFICIENT_FUNDS"}), InsufficientFunds
    )
    assert isinstance(_map(401, {"code": "AUTHENTICATION_FAILED"}), AuthenticationError)
    assert isinstance(_map(400, {"code": "SOMETHING_ELSE"}), InvalidRequest)
    assert _map(200, {"order_id": "x"}) is None
    assert http_error_mapper(HttpResponse(502, {}, b"<html>", GET)) is None  # generic mapping applies
    err = _map(400, {"code": "VALIDATION_ERROR", "message": "x" * 5000})
    assert err is not None and len(str(err)) < 400


def test_only_the_documented_subcode_is_unmarked() -> None:
    """The Error Dictionary shows one subcode; every other row says it is not from the docs."""
    assert {k for k, row in SUBCODES.items() if row.documented} == {"ORDER_RESOURCE_NOT_FOUND"}
    assert all(row.documented for row in CODES.values())


@pytest.mark.parametrize(
    "path", [CREATE, "/v1/portfolios/p/orders/x/cancel", "/v1/portfolios/p/accept_quote"]
)
def test_an_unknown_code_on_a_state_change_is_an_unknown_outcome(path: str) -> None:
    """An answer we cannot read may have acted: Timeout (look it up), never a rejection."""
    for status in (400, 409, 500):
        err = _map(status, {"code": "SOMETHING_NEW", "message": "?"}, path)
        assert isinstance(err, Timeout) and not err.retry_safe and err.code == "something_new"
    # A status that says "not processed" keeps its meaning.
    assert isinstance(_map(401, {"code": "SOMETHING_NEW"}, path), AuthenticationError)
    limited = _map(429, {"code": "SOMETHING_NEW"}, path)
    assert isinstance(limited, RateLimited) and limited.retry_after == 30.0
    # A known code is not unknown: FAILED_PRECONDITION refused the create.
    assert not isinstance(_map(400, {"code": "FAILED_PRECONDITION"}, path), Timeout)


async def test_a_create_refused_with_an_unknown_code_is_looked_up(
    client: PrimeClient, fake: FakePrime
) -> None:
    order = order_pb2.Order(
        client_order_id="odd-refusal-1",
        symbol="BTC-USD",
        side=order_pb2.ORDER_SIDE_BUY,
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_GTC,
        quantity="0.01",
        price="10000",
    )
    fake.fail(f"/v1/portfolios/{PORTFOLIO}/order", status=400, body=b'{"code":"SOMETHING_NEW"}', after=True)
    report = await client.place_order(order)  # the venue did act: the lookup finds it
    assert report.client_order_id == "odd-refusal-1" and fake.orders_with_client_id("odd-refusal-1") == 1
