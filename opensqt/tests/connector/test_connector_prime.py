"""Coinbase Prime served by a YAML-configured connector, and the conformance suite through it.

RemoteVenue -> connector (built from YAML, credentials from the environment) -> PrimeClient -> the
wire-level fake Prime (which checks every HMAC signature itself).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from cqc.markets.v1 import candle_pb2
from cqc.venues.v1 import order_pb2, rfq_pb2
from cqvx.client import SupportsCandles, SupportsRfq
from cqvx.errors import InsufficientFunds, InvalidRequest, OrderRejected
from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.harnesses import (
    PRIME_ACCESS_KEY,
    PRIME_PASSPHRASE,
    PRIME_PORTFOLIO,
    PRIME_SIGNING_KEY,
    PrimeHarness,
)
from cqvx.transport.ratelimit import limiters
from cqvx.venues.prime import PrimeClient

from .served import ServedHarness, YamlConnector

pytestmark = pytest.mark.timeout(120)

PORTFOLIO = PRIME_PORTFOLIO
# Everything the connector knows about Prime comes from here and from the environment below.
VENUES_YAML = """\
  prime-main:
    type: prime
    rest_url: ${PRIME_URL}
    ws_url: ${PRIME_WS_URL}
    retry_base_delay_s: 0.01
    ws_reconnect_initial_s: 0.01
    ws_reconnect_max_s: 0.1
    credentials:
      access_key: {env: PRIME_ACCESS_KEY}
      passphrase: {env: PRIME_PASSPHRASE}
      signing_key: {env: PRIME_SIGNING_KEY}
      portfolio_id: {env: PRIME_PORTFOLIO_ID}
    rate_limits: {ip_requests_per_second: 500, portfolio_requests_per_second: 200, portfolio_burst: 400}
"""


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    limiters.clear()
    yield
    limiters.clear()


def _yaml_connector(tmp: Path) -> Callable[[PrimeHarness], YamlConnector]:
    def build(inner: PrimeHarness) -> YamlConnector:
        env = {
            "PRIME_URL": inner.fake.url,
            "PRIME_WS_URL": inner.fake.ws_url + "/ws",
            "PRIME_ACCESS_KEY": PRIME_ACCESS_KEY,
            "PRIME_PASSPHRASE": PRIME_PASSPHRASE,
            "PRIME_SIGNING_KEY": PRIME_SIGNING_KEY,
            "PRIME_PORTFOLIO_ID": PRIME_PORTFOLIO,
        }
        return YamlConnector(tmp, VENUES_YAML, env)

    return build


@pytest.fixture
async def prime_harness(tmp_path: Path) -> AsyncIterator[ServedHarness]:
    """RemoteVenue -> YAML-configured connector -> PrimeClient -> the fake (wall clock: the
    connector's client signs on it)."""
    h = ServedHarness(PrimeHarness(), _yaml_connector(tmp_path), served_as="prime-main")
    await h.start()
    try:
        yield h
    finally:
        await h.close()


def test_the_connector_serves_a_prime_client(prime_harness: ServedHarness) -> None:
    assert isinstance(prime_harness.connector, YamlConnector)
    assert isinstance(prime_harness.connector.venues["prime-main"], PrimeClient)


class TestPrimeThroughConnectorConformance(ConformanceSuite):
    venue = "remote->connector->prime"

    @pytest.fixture
    async def harness(self, prime_harness: ServedHarness) -> AsyncIterator[ServedHarness]:
        yield prime_harness


async def test_taxonomy_crosses_the_wire(prime_harness: ServedHarness) -> None:
    remote = await prime_harness.new_client()
    try:
        with pytest.raises(InsufficientFunds):
            await remote.place_order(prime_harness.unfundable_order("nofunds-1"))
        assert prime_harness.fake.auth_failures == 0
    finally:
        await remote.aclose()


async def test_rfq_quote_and_accept_end_to_end(prime_harness: ServedHarness) -> None:
    """The limit price rides in QuoteRequest.limit_price: RemoteVenue -> gRPC -> connector -> Prime."""
    remote = await prime_harness.new_client()
    rfq = f"/v1/portfolios/{PORTFOLIO}/rfq"
    try:
        assert isinstance(remote, SupportsRfq)
        asked = rfq_pb2.QuoteRequest(
            symbol="BTC-USD", side=order_pb2.ORDER_SIDE_BUY, quantity="0.5", limit_price="50100"
        )
        quote = await remote.request_quote(asked)
        assert quote.status == rfq_pb2.QUOTE_STATUS_OPEN and quote.buy_price == "50005"
        (sent,) = prime_harness.fake.requests_to(rfq)
        assert json.loads(sent.body)["limit_price"] == "50100"
        done = await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
        assert done.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED and done.quote.executed_price == "50005"
        assert done.report.order_status == order_pb2.ORDER_STATUS_FILLED
        assert done.report.cumulative_quantity == "0.5"
        # Refusals cross the wire typed and name the field: a missing, malformed or unmarketable limit.
        asked.ClearField("limit_price")
        with pytest.raises(InvalidRequest, match="limit_price"):
            await remote.request_quote(asked)
        asked.limit_price = "1e"
        with pytest.raises(InvalidRequest, match=r"quote_request\.limit_price"):
            await remote.request_quote(asked)
        asked.limit_price = "40000"  # below the 50005 offer: not marketable
        with pytest.raises(OrderRejected):
            await remote.request_quote(asked)
        assert len(prime_harness.fake.requests_to(rfq)) == 2  # the malformed ones never left
    finally:
        await remote.aclose()


async def test_candles_over_grpc(prime_harness: ServedHarness) -> None:
    fake = prime_harness.fake
    fake.candles[("BTC-USD", "ONE_HOUR")] = [
        {
            "timestamp": f"2026-01-01T0{h}:00:00Z",
            "open": "1",
            "high": "2",
            "low": "0.5",
            "close": "1.5",
            "volume": "3",
        }
        for h in (2, 0, 1)
    ]
    remote = await prime_harness.new_client()
    try:
        assert isinstance(remote, SupportsCandles)
        got = await remote.get_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1HOUR)
    finally:
        await remote.aclose()
    assert [c.open_time.ToJsonString() for c in got] == [f"2026-01-01T0{h}:00:00Z" for h in (0, 1, 2)]
    assert all(c.is_closed and c.close == "1.5" for c in got)
