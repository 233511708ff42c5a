"""The one error wire form: status code + ``cqc.venues.v1.VenueError`` in the standard rich status
details (``grpc-status-details-bin``), read back into the exact taxonomy class with every field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import status_pb2  # type: ignore[import-untyped]
from grpc import aio
from grpc_status import rpc_status  # type: ignore[import-untyped]

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqc.venues.v1 import error_pb2
from cqvx.errors import DuplicateOrder, ErrorKind, RateLimited, Timeout, VenueError, error_class
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from opensqt.connector.errors import (
    DETAILS_KEY,
    GRPC_STATUS,
    error_from_proto,
    error_to_proto,
    from_grpc,
    status_details,
)
from opensqt.connector.unary import UNARY

ALL = [error_class(k) for k in ErrorKind]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_kind_round_trips_through_the_rich_status(cls: type[VenueError]) -> None:
    err = cls("boom", venue="sim", code="X1", http_status=400)
    err.attempts = 3
    back = from_grpc(GRPC_STATUS[err.kind], "boom", status_details(err))
    assert type(back) is cls
    assert (back.message, back.venue, back.code, back.http_status, back.retry_safe, back.attempts) == (
        "boom",
        "sim",
        "X1",
        400,
        err.retry_safe,
        3,
    )


def test_every_kind_has_a_status_code_and_a_proto_kind() -> None:
    assert set(GRPC_STATUS) == set(ErrorKind)
    for kind in ErrorKind:
        assert error_from_proto(error_to_proto(error_class(kind)("x"))).kind is kind


def test_duplicate_and_rate_limit_fields_survive() -> None:
    dup = DuplicateOrder("id reused", client_order_id="cq-1", order_id="v-7", venue="coinbase")
    back = from_grpc(grpc.StatusCode.ALREADY_EXISTS, "", status_details(dup))
    assert isinstance(back, DuplicateOrder) and (back.client_order_id, back.order_id) == ("cq-1", "v-7")
    rl = from_grpc(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "", status_details(RateLimited("slow", retry_after=1.5))
    )
    assert isinstance(rl, RateLimited) and rl.retry_after == 1.5 and rl.retry_safe and not rl.retried


def test_the_detail_is_the_standard_google_rpc_status() -> None:
    ((key, value),) = status_details(DuplicateOrder("dup", client_order_id="cq-1"))
    assert key == DETAILS_KEY == "grpc-status-details-bin"
    status = status_pb2.Status.FromString(value)
    assert status.code == grpc.StatusCode.ALREADY_EXISTS.value[0] and status.message == "dup"
    detail = error_pb2.VenueError()
    assert status.details[0].Unpack(detail)
    assert detail.kind == error_pb2.ERROR_KIND_DUPLICATE_ORDER and detail.client_order_id == "cq-1"


def test_without_a_detail_internal_errors_are_ambiguous_not_retry_safe() -> None:
    back = from_grpc(grpc.StatusCode.INTERNAL, "oops")
    assert isinstance(back, Timeout) and not back.retry_safe
    # A detail nobody can parse is no detail; the status code still decides.
    junk = from_grpc(grpc.StatusCode.ALREADY_EXISTS, "dup", ((DETAILS_KEY, b"\xff\xff"),))
    assert isinstance(junk, DuplicateOrder) and junk.client_order_id == ""


async def test_a_plain_grpc_client_reads_the_rich_status(start_server: Any) -> None:
    """No cqvx on the client side: the standard grpcio-status helper finds the VenueError detail."""
    mock = MockVenue("mock")
    server = await start_server(mock)
    mock.on("place_order", DuplicateOrder("already used", client_order_id="cq-9", venue="mock"))
    async with aio.insecure_channel(server.address) as channel:
        stub = gw_grpc.VenueGatewayStub(channel)
        with pytest.raises(aio.AioRpcError) as info:
            await stub.PlaceOrder(gw.PlaceOrderRequest(venue="mock", order=builders.order(venue="mock")))
    err = info.value
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert not any(k == "cqvx-error" for k, _ in err.trailing_metadata() or ())  # the JSON trailer is gone
    status = rpc_status.from_call(err)
    detail = error_pb2.VenueError()
    assert status is not None and status.details[0].Unpack(detail)
    assert (detail.kind, detail.client_order_id) == (error_pb2.ERROR_KIND_DUPLICATE_ORDER, "cq-9")
    await mock.aclose()


def test_every_unary_rpc_of_the_proto_has_one_table_entry() -> None:
    service = gw.DESCRIPTOR.services_by_name["VenueGateway"]
    unary = {m.name for m in service.methods if not m.server_streaming}
    assert set(UNARY) == unary
