"""The explicit Coinbase code tables: every documented failure reason maps to a taxonomy class."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    UnsupportedOperation,
    VenueError,
)
from cqvx.transport.http import HttpResponse
from cqvx.venues.coinbase.errors import (
    CANCEL_FAILURE,
    HTTP_ERROR_CODES,
    ORDER_FAILURE,
    cancel_error,
    create_order_error,
    http_error_mapper,
)

Load = Callable[[str], bytes]


def _documented(load: Load) -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(load("failure_reasons.json"))
    return data


def test_every_documented_create_reason_is_in_the_table(load: Load) -> None:
    doc = _documented(load)
    missing = [
        c for c in doc["new_order_failure_reason"] + doc["preview_failure_reason"] if c not in ORDER_FAILURE
    ]
    assert missing == []


def test_every_documented_cancel_reason_is_in_the_table(load: Load) -> None:
    assert [c for c in _documented(load)["cancel_failure_reason"] if c not in CANCEL_FAILURE] == []


def test_table_values_are_taxonomy_classes() -> None:
    for table in (ORDER_FAILURE, CANCEL_FAILURE, HTTP_ERROR_CODES):
        assert all(issubclass(cls, VenueError) for cls in table.values())


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("INVALID_LIMIT_PRICE_POST_ONLY", OrderRejected),
        ("PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY", OrderRejected),
        ("INSUFFICIENT_FUND", InsufficientFunds),
        ("INSUFFICIENT_FUNDS", InsufficientFunds),
        ("PREVIEW_INSUFFICIENT_FUND", InsufficientFunds),
        ("PREVIEW_INSUFFICIENT_FUNDS_FOR_FUTURES", InsufficientFunds),
        ("DUPLICATE_CLIENT_ORDER_ID", DuplicateOrder),
        ("INVALID_SIZE_PRECISION", InvalidRequest),
        ("INVALID_PRICE_PRECISION", InvalidRequest),
        ("PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", InvalidRequest),
        ("INVALID_PRODUCT_ID", InvalidRequest),
        ("INVALID_NO_LIQUIDITY", OrderRejected),
        ("UNSUPPORTED_ORDER_CONFIGURATION", UnsupportedOperation),
        ("INELIGIBLE_PAIR", PermissionDenied),
        ("GEOFENCING_RESTRICTION", PermissionDenied),
        ("RFQ_RATE_LIMITED", RateLimited),
        ("TRADING_DISABLED", OrderRejected),
    ],
)
def test_create_order_codes(code: str, cls: type[VenueError]) -> None:
    err = create_order_error({"new_order_failure_reason": code}, client_order_id="c1")
    assert type(err) is cls and err.code == code and err.venue == "coinbase"
    if cls is not RateLimited:
        assert not err.retry_safe


def test_most_specific_field_wins() -> None:
    err = create_order_error(
        {
            "new_order_failure_reason": "UNKNOWN_FAILURE_REASON",
            "error": "UNKNOWN_FAILURE_REASON",
            "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND",
        },
        "UNKNOWN_FAILURE_REASON",
    )
    assert isinstance(err, InsufficientFunds) and err.code == "PREVIEW_INSUFFICIENT_FUND"
    err2 = create_order_error(
        {"error": "INSUFFICIENT_FUND", "preview_failure_reason": "PREVIEW_INVALID_SIDE"}
    )
    assert isinstance(err2, InsufficientFunds)


def test_unknown_or_missing_reason_is_a_rejection() -> None:
    assert type(create_order_error({"new_order_failure_reason": "SOMETHING_NEW"})) is OrderRejected
    assert type(create_order_error(None, "")) is OrderRejected


def test_duplicate_carries_client_order_id() -> None:
    err = create_order_error({"new_order_failure_reason": "DUPLICATE_CLIENT_ORDER_ID"}, client_order_id="abc")
    assert isinstance(err, DuplicateOrder) and err.client_order_id == "abc"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("UNKNOWN_CANCEL_ORDER", NotFound),
        ("ORDER_IS_FULLY_FILLED", NotFound),
        ("INVALID_CANCEL_REQUEST", InvalidRequest),
        ("NOT_ALLOWED_TO_CANCEL", PermissionDenied),
        ("COMMANDER_REJECTED_CANCEL_ORDER", OrderRejected),
        ("", OrderRejected),
        ("NEVER_SEEN", OrderRejected),
    ],
)
def test_cancel_codes(code: str, cls: type[VenueError]) -> None:
    assert type(cancel_error(code, "o1")) is cls


def _resp(status: int, body: bytes, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, CIMultiDictProxy(CIMultiDict(headers or {})), body, "/x")


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            404,
            b'{"error":"NOT_FOUND","error_details":"order with this orderID was not found","message":"x"}',
            NotFound,
        ),
        (
            403,
            b'{"error":"PERMISSION_DENIED","error_details":"Missing required scopes","message":"x"}',
            PermissionDenied,
        ),
        (400, b'{"error":"INVALID_ARGUMENT","message":"bad"}', InvalidRequest),
        (401, b"Unauthorized", AuthenticationError),
        (401, b'{"error":"UNAUTHENTICATED"}', AuthenticationError),
        (400, b'{"errors":[{"id":"validation_error","message":"x"}]}', InvalidRequest),
        (429, b'{"errors":[{"id":"rate_limit_exceeded","message":"Too many requests"}]}', RateLimited),
    ],
)
def test_http_errors(status: int, body: bytes, cls: type[VenueError]) -> None:
    err = http_error_mapper(_resp(status, body, {"Retry-After": "2"}))
    assert type(err) is cls and err is not None and err.http_status == status
    if isinstance(err, RateLimited):
        assert err.retry_after == 2.0 and err.retry_safe


def test_http_mapper_defers_ambiguous_and_success() -> None:
    assert http_error_mapper(_resp(200, b'{"success":false}')) is None
    # 5xx and server-side codes: the transport decides (it knows whether re-sending is safe).
    assert http_error_mapper(_resp(500, b'{"error":"INTERNAL","message":"x"}')) is None
    assert http_error_mapper(_resp(502, b"<html>bad gateway</html>")) is None
    assert http_error_mapper(_resp(400, b'{"error":"unknown","message":"x"}')) is None
