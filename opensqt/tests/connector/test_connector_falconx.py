"""FalconX served by a YAML-configured connector: the RFQ RPCs (RequestQuote, ExecuteQuote) over gRPC.

RemoteVenue -> connector (built from YAML, credentials from the environment) -> FalconXClient ->
the wire-level fake FalconX (which checks every HMAC signature itself).  Taxonomy errors cross the
wire with their class and code (an expired quote stays ``OrderRejected(code="quote_expired")``), and
an execute whose reply was lost between the connector and FalconX is resolved there by lookup.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cqc.venues.v1 import order_pb2, rfq_pb2, venue_pb2
from cqvx.client import SupportsRfq
from cqvx.errors import InsufficientFunds, InvalidRequest, OrderRejected, UnsupportedOperation
from cqvx.testing.fake_falconx import FakeClock, FakeFalconX
from cqvx.transport.ratelimit import limiters
from cqvx.venues.falconx import FalconXClient
from opensqt.connector import RemoteVenue

from .served import YamlConnector

pytestmark = pytest.mark.timeout(120)

KEY = "fx-yaml-key"
SECRET = base64.b64encode(b"fx-yaml-secret-0123456789abcdef!").decode()
PASSPHRASE = "fx-yaml-pass"
EXECUTE = "/v1/quotes/execute"

VENUES_YAML = """\
  fx-main:
    type: falconx
    rest_url: ${FX_URL}
    retry_base_delay_s: 0.01
    resolve_poll_s: 0.01
    credentials:
      api_key: {env: FX_API_KEY}
      secret: {env: FX_API_SECRET}
      passphrase: {env: FX_PASSPHRASE}
    rate_limits: {requests_per_second: 200, quotes_per_second: 100}
"""


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    limiters.clear()
    yield
    limiters.clear()


class Served:
    """The fake FalconX behind a YAML-configured connector (built from YAML, so on the wall clock; the
    fake's clock starts at wall time and only moves when a test advances it)."""

    def __init__(self, tmp: Path, clock: FakeClock) -> None:
        self.clock = clock
        self.fake = FakeFalconX(api_key=KEY, secret=SECRET, passphrase=PASSPHRASE, clock=clock)
        self._tmp = tmp
        self.connector: YamlConnector | None = None

    async def start(self) -> None:
        await self.fake.start()
        env = {
            "FX_URL": self.fake.url,
            "FX_API_KEY": KEY,
            "FX_API_SECRET": SECRET,
            "FX_PASSPHRASE": PASSPHRASE,
        }
        self.connector = YamlConnector(self._tmp, VENUES_YAML, env)
        await self.connector.start()
        assert isinstance(self.connector.venues["fx-main"], FalconXClient)

    async def remote(self) -> RemoteVenue:
        assert self.connector is not None
        return await self.connector.connect("fx-main", timeout=10.0)

    async def close(self) -> None:
        if self.connector is not None:
            await self.connector.stop()
        await self.fake.stop()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    s = Served(tmp_path, FakeClock())
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def remote(served: Served) -> AsyncIterator[Any]:
    # Its capability methods (request_quote, execute_quote) come from the connector's answer.
    r = await served.remote()
    try:
        yield r
    finally:
        await r.aclose()


def _request(side: int = order_pb2.ORDER_SIDE_UNSPECIFIED, quantity: str = "0.5") -> rfq_pb2.QuoteRequest:
    return rfq_pb2.QuoteRequest(symbol="BTC-USD", side=side, quantity=quantity)  # type: ignore[arg-type]


async def test_capabilities_cross_the_wire(remote: Any) -> None:
    assert isinstance(remote, RemoteVenue) and isinstance(remote, SupportsRfq)
    caps = remote.capabilities()
    assert venue_pb2.CAPABILITY_RFQ in caps and venue_pb2.CAPABILITY_INSTRUMENTS in caps
    assert venue_pb2.CAPABILITY_ORDER_STREAM not in caps
    with pytest.raises(UnsupportedOperation):
        await remote.get_order_book("BTC-USD")


async def test_request_and_execute_over_grpc(remote: Any, served: Served) -> None:
    quote = await remote.request_quote(_request())
    assert quote.status == rfq_pb2.QUOTE_STATUS_OPEN
    assert (quote.buy_price, quote.sell_price) == ("50010.25", "50000.5")  # exact, from JSON numbers
    done = await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED and done.quote.executed_price == "50010.25"
    assert done.report.last_quantity == "0.5" and done.report.order_status == order_pb2.ORDER_STATUS_FILLED
    assert served.fake.executions == {quote.quote_id: 1}
    balances = {b.asset: b.total for b in await remote.get_balances()}
    assert balances["BTC"] == "10.5"


async def test_expired_quote_keeps_its_type_over_grpc(remote: Any, served: Served) -> None:
    quote = await remote.request_quote(_request(order_pb2.ORDER_SIDE_SELL))
    served.clock.advance(served.fake.quote_ttl + 1)
    with pytest.raises(OrderRejected) as info:
        await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_SELL)
    assert info.value.code == "quote_expired"
    assert served.fake.executions == {}


async def test_lost_reply_resolved_at_the_connector(remote: Any, served: Served) -> None:
    quote = await remote.request_quote(_request())
    served.fake.reset(EXECUTE, after=True)
    done = await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_SELL)
    assert done.quote.executed_side == order_pb2.ORDER_SIDE_SELL
    assert len(served.fake.requests_to(EXECUTE)) == 1 and served.fake.executions == {quote.quote_id: 1}


async def test_duplicate_execute_over_grpc(remote: Any, served: Served) -> None:
    quote = await remote.request_quote(_request())
    first = await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    again = await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert again.report.execution_id == first.report.execution_id
    assert served.fake.executions == {quote.quote_id: 1}


async def test_refusal_over_grpc(remote: Any, served: Served) -> None:
    quote = await remote.request_quote(_request(order_pb2.ORDER_SIDE_BUY, "1000"))
    with pytest.raises(InsufficientFunds):
        await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert served.fake.executions == {}


async def test_limit_price_is_refused_not_ignored(remote: Any, served: Served) -> None:
    """FalconX quotes take no limit: QuoteRequest.limit_price is refused by name, nothing is sent."""
    asked = _request(order_pb2.ORDER_SIDE_BUY)
    asked.limit_price = "50100"
    with pytest.raises(InvalidRequest, match="limit_price"):
        await remote.request_quote(asked)
    assert served.fake.requests_to("/v1/quotes") == []
