"""The one ccxt -> taxonomy table: retry-safe only where the request cannot have acted."""

from __future__ import annotations

import ccxt
import pytest

from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    ParseError,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unavailable,
    UnsupportedOperation,
    VenueError,
)
from cqvx.venues.ccxt.errors import ERROR_TABLE, map_error, venue_code
from cqvx.venues.ccxt.quirks import quirks_for

Q = quirks_for("binance")


@pytest.mark.parametrize(
    ("exc", "read", "write"),
    [
        (ccxt.RequestTimeout("t"), (Unavailable, True), (Timeout, False)),
        (ccxt.ExchangeNotAvailable("reset"), (Unavailable, True), (Timeout, False)),
        (ccxt.NetworkError("n"), (Unavailable, True), (Timeout, False)),
        (ccxt.BadResponse("garbled 200"), (ParseError, False), (Timeout, False)),
        (ccxt.NullResponse("empty"), (ParseError, False), (Timeout, False)),
        (ccxt.RateLimitExceeded("429"), (RateLimited, True), (RateLimited, True)),
        (ccxt.DDoSProtection("418"), (RateLimited, True), (RateLimited, True)),
        (ccxt.OnMaintenance("m"), (Unavailable, True), (Unavailable, True)),
        (ccxt.InvalidNonce("recvWindow"), (InvalidRequest, True), (InvalidRequest, True)),
        (ccxt.AuthenticationError("a"), (AuthenticationError, False), (AuthenticationError, False)),
        (ccxt.PermissionDenied("p"), (PermissionDenied, False), (PermissionDenied, False)),
        (ccxt.AccountSuspended("s"), (PermissionDenied, False), (PermissionDenied, False)),
        (ccxt.InsufficientFunds("f"), (InsufficientFunds, False), (InsufficientFunds, False)),
        (ccxt.OrderNotFound("o"), (NotFound, False), (NotFound, False)),
        (ccxt.DuplicateOrderId("d"), (DuplicateOrder, False), (DuplicateOrder, False)),
        (ccxt.OrderImmediatelyFillable("po"), (OrderRejected, False), (OrderRejected, False)),
        (ccxt.OrderNotFillable("fok"), (OrderRejected, False), (OrderRejected, False)),
        (ccxt.InvalidOrder("tick"), (InvalidRequest, False), (InvalidRequest, False)),
        (ccxt.BadSymbol("s"), (InvalidRequest, False), (InvalidRequest, False)),
        (ccxt.NotSupported("n"), (UnsupportedOperation, False), (UnsupportedOperation, False)),
        (ccxt.MarketClosed("c"), (OrderRejected, False), (OrderRejected, False)),
        (ccxt.ExchangeError("unknown code"), (OrderRejected, False), (OrderRejected, False)),
        # Not ccxt's: a bug while parsing a reply that arrived; a placement may have acted.
        (KeyError("inverse"), (ParseError, False), (Timeout, False)),
    ],
)
def test_table(
    exc: BaseException, read: tuple[type[VenueError], bool], write: tuple[type[VenueError], bool]
) -> None:
    for op, (cls, safe) in (("read", read), ("write", write), ("cancel", write)):
        err = map_error(exc, op=op, quirks=Q)  # type: ignore[arg-type]
        assert type(err) is cls, (op, exc, err)
        assert err.retry_safe is safe, (op, exc)
        assert err.venue == "binance"


def test_a_write_is_never_retry_safe_unless_the_venue_refused_before_acting() -> None:
    refused_first = (ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.OnMaintenance, ccxt.InvalidNonce)
    for cls, _ in ERROR_TABLE:
        err = map_error(cls("x"), op="write", quirks=Q)
        assert err.retry_safe == issubclass(cls, refused_first), cls


def test_nearest_listed_ancestor_wins() -> None:
    class NewCcxtError(ccxt.RequestTimeout):  # type: ignore[misc]
        pass

    assert isinstance(map_error(NewCcxtError("x"), op="write", quirks=Q), Timeout)


def test_venue_code_is_read_from_the_body_ccxt_quotes() -> None:
    assert venue_code(Q, 'binanceusdm {"code":-2019,"msg":"Margin is insufficient."}') == "-2019"
    assert venue_code(Q, "binanceusdm GET https://x") is None
    assert venue_code(quirks_for("bybit"), 'bybit {"retCode":10006,"retMsg":"Too many visits!"}') == "10006"
    okx = 'okx {"code":"1","data":[{"sCode":"51008","sMsg":"insufficient"}]}'
    assert venue_code(quirks_for("okx"), okx) == "51008"
    assert venue_code(quirks_for("gate"), 'gate {"label":"BALANCE_NOT_ENOUGH"}') == "BALANCE_NOT_ENOUGH"


def test_a_taxonomy_error_passes_through() -> None:
    err = Timeout("already mapped")
    assert map_error(err, op="write", quirks=Q) is err


def test_pinned_codes_are_kinds_and_win_over_the_ccxt_class() -> None:
    from cqvx.errors import ErrorKind
    from cqvx.venues.ccxt.quirks import QUIRKS

    for q in QUIRKS.values():
        for _, kind in q.pinned_codes:
            assert kind in {k.value for k in ErrorKind}, (q.venue, kind)
    # ccxt's generic Binance table (any host but fapi.binance.com) files -2019 as OperationFailed.
    exc = ccxt.OperationFailed('binanceusdm {"code":-2019,"msg":"Margin is insufficient."}')
    assert isinstance(map_error(exc, op="write", quirks=Q), InsufficientFunds)
