"""The FalconX failure table: every code maps to its class with its retry safety; unknown codes fall
back on the HTTP status; a success body never maps to an error; secrets never reach ``raw``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.transport.http import HttpResponse
from cqvx.venues.falconx.errors import CODES, http_error_mapper


def _resp(
    body: object, status: int = 200, path: str = "/v1/quotes", headers: dict[str, str] | None = None
) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, CIMultiDictProxy(CIMultiDict(headers or {})), raw, path)


def _failure(code: object, reason: str = "why") -> dict[str, object]:
    return {"status": "failure", "error": {"code": code, "reason": reason}}


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_maps_to_its_entry(code: str) -> None:
    entry = CODES[code]
    err = http_error_mapper(_resp(_failure(code.upper())))  # codes match case-insensitively
    assert isinstance(err, entry.cls)
    assert err.retry_safe is entry.retry_safe
    assert err.code == code and err.venue == "falconx"


@pytest.mark.parametrize(
    ("code", "cls", "retry_safe"),
    [
        ("quote_expired", OrderRejected, False),
        ("quote_already_executed", DuplicateOrder, False),
        ("insufficient_balance", InsufficientFunds, False),
        ("invalid_quote_id", NotFound, False),
        ("rate_limit_exceeded", RateLimited, True),
        ("unauthorized", AuthenticationError, False),
        ("quote_unavailable", Unavailable, True),
    ],
)
def test_key_codes(code: str, cls: type[VenueError], retry_safe: bool) -> None:
    err = http_error_mapper(_resp(_failure(code)))
    assert type(err) is cls and err.retry_safe is retry_safe


def test_internal_error_on_a_state_change_is_an_unknown_outcome() -> None:
    assert isinstance(
        http_error_mapper(_resp(_failure("internal_error"), 200, "/v1/quotes/execute")), Timeout
    )
    assert isinstance(http_error_mapper(_resp(_failure("internal_error"), 200, "/v1/order")), Timeout)
    read = http_error_mapper(_resp(_failure("internal_error"), 200, "/v1/balances"))
    assert isinstance(read, Unavailable)


@pytest.mark.parametrize(
    ("status", "path", "cls", "retry_safe"),
    [
        (200, "/v1/quotes", InvalidRequest, False),
        (400, "/v1/quotes", InvalidRequest, False),
        (401, "/v1/pairs", AuthenticationError, False),
        (404, "/v1/quotes/abc", NotFound, False),
        (429, "/v1/pairs", RateLimited, True),
        (503, "/v1/pairs", Unavailable, True),
        (503, "/v1/quotes/execute", Timeout, False),
        # An answer we cannot read to an execute or an order may have acted: unknown outcome.
        (200, "/v1/quotes/execute", Timeout, False),
        (400, "/v1/order", Timeout, False),
        (401, "/v1/order", AuthenticationError, False),  # refused before it was processed
    ],
)
def test_unknown_code_falls_back_on_http_status(
    status: int, path: str, cls: type[VenueError], retry_safe: bool
) -> None:
    err = http_error_mapper(_resp(_failure("brand_new_code"), status, path))
    assert type(err) is cls and err.retry_safe is retry_safe and err.code == "brand_new_code"


def test_every_row_says_it_is_not_from_public_docs() -> None:
    assert not any(row.documented for row in CODES.values())


def test_rate_limit_carries_retry_after() -> None:
    err = http_error_mapper(_resp(_failure("rate_limit_exceeded"), 429, headers={"Retry-After": "2"}))
    assert isinstance(err, RateLimited) and err.retry_after == 2


def test_string_error_and_numeric_code() -> None:
    assert isinstance(http_error_mapper(_resp({"status": "failure", "error": "nope"})), InvalidRequest)
    err = http_error_mapper(_resp(_failure(1234)))
    assert isinstance(err, InvalidRequest) and err.code == "1234"


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "fx_quote_id": "x", "error": None},
        [{"base_token": "BTC", "quote_token": "USD"}],
        {"status": "success", "warnings": ["reason: failure"]},
        b"not json",
    ],
)
def test_successes_and_foreign_bodies_are_not_mapped(body: object) -> None:
    assert http_error_mapper(_resp(body)) is None


def test_raw_is_redacted() -> None:
    body = _failure("unauthorized")
    body["passphrase"] = "hunter2"
    err = http_error_mapper(_resp(body, 401))
    assert err is not None and "hunter2" not in json.dumps(err.raw)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=120),
        _values.map(json.dumps).map(str.encode),
        st.builds(lambda e: json.dumps({"status": "failure", "error": e}).encode(), _values),
    ),
    st.sampled_from([200, 400, 401, 404, 429, 500, 503]),
)
def test_mapper_never_raises(body: bytes, status: int) -> None:
    err = http_error_mapper(_resp(body, status, "/v1/quotes/execute"))
    assert err is None or isinstance(err, VenueError)
