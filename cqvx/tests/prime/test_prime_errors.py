"""Every documented Prime error code maps through the explicit table, with retry_safe."""

from __future__ import annotations

import json

import pytest

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
from cqvx.transport.http import HttpResponse
from cqvx.venues.prime.errors import CODES, SUBCODES, http_error_mapper

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
