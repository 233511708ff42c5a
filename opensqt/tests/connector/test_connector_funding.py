"""GetFundingRateHistory and GetFundingPayments over real loopback gRPC: the round trip into
RemoteVenue's ``SupportsFundingHistory`` / ``SupportsFundingPayments``, request validation naming the
field, UNIMPLEMENTED for a venue without them, and the venue's own refusals arriving as the same
taxonomy error (what the funding arbitrage's ``funding_source`` probe relies on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from cqc.markets.v1 import funding_pb2
from cqc.portfolio.v1 import transaction_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqc.venues.v1 import venue_pb2
from cqvx.client import SupportsFundingHistory, SupportsFundingPayments, capabilities_of
from cqvx.errors import InvalidRequest, UnsupportedOperation
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue

from .test_connector_rpcs import CoreOnly

pytestmark = pytest.mark.timeout(30)

PERP = "BTC-USDT-PERP"


def _rate(seconds: int, rate: str) -> funding_pb2.FundingRate:
    f = builders.funding_rate(venue="mock", symbol=PERP, rate=rate)
    f.funding_time.CopyFrom(Timestamp(seconds=seconds))
    return f


def _payment(seconds: int, amount: str) -> transaction_pb2.Transaction:
    tx = transaction_pb2.Transaction(
        transaction_id=f"fund-{seconds}",
        transaction_type=transaction_pb2.TRANSACTION_TYPE_FUNDING,
        asset="USDT",
        amount=amount,
    )
    tx.timestamp.CopyFrom(Timestamp(seconds=seconds))
    return tx


class FundingLedger(CoreOnly):
    """The core venue plus a funding-rate history and a funding ledger (records what it was asked)."""

    def __init__(self, inner: MockVenue) -> None:
        super().__init__(inner)
        self.history = [_rate(1_700_000_000, "0.0001"), _rate(1_700_028_800, "-0.00025")]
        self.payments = [_payment(1_700_000_000, "-1.25"), _payment(1_700_028_800, "3.5")]
        self.asked: list[tuple[str, str, datetime | None, int | None]] = []
        self.refuse_payments = False

    def capabilities(self) -> frozenset[int]:
        return capabilities_of(self)

    async def get_funding_rate_history(
        self, symbol: str, start: datetime | None = None, limit: int | None = None
    ) -> list[funding_pb2.FundingRate]:
        self.asked.append(("history", symbol, start, limit))
        if symbol != PERP:
            raise InvalidRequest(f"{symbol} is not a perpetual listed on mock", venue="mock")
        return self.history[-limit:] if limit else list(self.history)

    async def get_funding_payments(
        self, symbol: str, start: datetime | None = None
    ) -> list[transaction_pb2.Transaction]:
        self.asked.append(("payments", symbol, start, None))
        if self.refuse_payments:
            raise UnsupportedOperation("mock: funding payments are not read here", venue="mock")
        return list(self.payments)


@pytest.fixture
async def ledger() -> AsyncIterator[FundingLedger]:
    venue = MockVenue("mock")
    yield FundingLedger(venue)
    await venue.aclose()


async def test_history_and_payments_round_trip(
    ledger: FundingLedger, start_server: Any, connect: Any
) -> None:
    server = await start_server(ledger)
    remote: Any = await connect(server)
    caps = remote.capabilities()
    assert {venue_pb2.CAPABILITY_FUNDING_HISTORY, venue_pb2.CAPABILITY_FUNDING_PAYMENTS} <= caps
    as_object: object = remote  # keep `remote` untyped for the calls below
    assert isinstance(as_object, SupportsFundingHistory) and isinstance(as_object, SupportsFundingPayments)

    start = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert await remote.get_funding_rate_history(PERP) == ledger.history
    assert await remote.get_funding_rate_history(PERP, start, 1) == ledger.history[-1:]
    assert await remote.get_funding_payments(PERP) == ledger.payments
    assert await remote.get_funding_payments(PERP, start=start) == ledger.payments
    # The window reaches the venue exactly (microseconds, the limit; unset stays unset).
    assert ledger.asked == [
        ("history", PERP, None, None),
        ("history", PERP, start, 1),
        ("payments", PERP, None, None),
        ("payments", PERP, start, None),
    ]


async def test_validation_names_the_bad_field(ledger: FundingLedger, start_server: Any) -> None:
    server = await start_server(ledger)
    async with aio.insecure_channel(server.address) as channel:
        stub = gw_grpc.VenueGatewayStub(channel)

        async def invalid(call: Any, request: Any) -> str:
            with pytest.raises(aio.AioRpcError) as info:
                await call(request, timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            return str(info.value.details())

        history, payments = stub.GetFundingRateHistory, stub.GetFundingPayments
        assert "symbol: required" in await invalid(history, gw.GetFundingRateHistoryRequest(venue="mock"))
        assert "symbol: required" in await invalid(payments, gw.GetFundingPaymentsRequest(venue="mock"))
        assert "limit" in await invalid(
            history, gw.GetFundingRateHistoryRequest(venue="mock", symbol=PERP, limit=-1)
        )
        for bad in (
            Timestamp(seconds=-1),
            Timestamp(seconds=1, nanos=1_000_000_000),
            Timestamp(seconds=10**12),
        ):
            assert "start_time" in await invalid(
                history, gw.GetFundingRateHistoryRequest(venue="mock", symbol=PERP, start_time=bad)
            )
            assert "start_time" in await invalid(
                payments, gw.GetFundingPaymentsRequest(venue="mock", symbol=PERP, start_time=bad)
            )
        assert "unknown venue" in await invalid(
            payments, gw.GetFundingPaymentsRequest(venue="x", symbol=PERP)
        )
        assert ledger.asked == []  # nothing invalid reached the venue

        # The edges of the span are valid.
        ok = gw.GetFundingPaymentsRequest(venue="mock", symbol=PERP, start_time=Timestamp(seconds=0))
        assert list((await payments(ok, timeout=5)).payments) == ledger.payments


async def test_venue_refusals_arrive_as_the_same_error(
    ledger: FundingLedger, start_server: Any, connect: Any
) -> None:
    server = await start_server(ledger)
    remote: Any = await connect(server)
    with pytest.raises(InvalidRequest, match="not a perpetual"):
        await remote.get_funding_rate_history("BTC-USDT")
    ledger.refuse_payments = True
    # The arbitrage's probe: UnsupportedOperation from the venue's client, not a transport failure.
    with pytest.raises(UnsupportedOperation, match="funding payments are not read here"):
        await remote.get_funding_payments(PERP, start=datetime.now(UTC))


async def test_a_venue_without_them_answers_unimplemented(start_server: Any, connect: Any) -> None:
    core = MockVenue("mock")
    server = await start_server(CoreOnly(core))
    async with aio.insecure_channel(server.address) as channel:
        stub = gw_grpc.VenueGatewayStub(channel)
        calls: list[tuple[Any, Any, str]] = [
            (stub.GetFundingRateHistory, gw.GetFundingRateHistoryRequest, "SupportsFundingHistory"),
            (stub.GetFundingPayments, gw.GetFundingPaymentsRequest, "SupportsFundingPayments"),
        ]
        for call, request, protocol in calls:
            with pytest.raises(aio.AioRpcError) as info:
                await call(request(venue="mock", symbol=PERP), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert protocol in str(info.value.details())
    remote = await connect(server)
    assert not isinstance(remote, SupportsFundingHistory) and not isinstance(remote, SupportsFundingPayments)
    await core.aclose()
