"""Coinbase Prime served by a YAML-configured connector, and the conformance suite through it.

RemoteVenue -> connector (built from YAML, credentials from the environment) -> PrimeClient -> the
wire-level fake Prime (which checks every HMAC signature itself).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cqc.markets.v1 import candle_pb2, orderbook_pb2
from cqc.venues.v1 import execution_pb2, order_pb2, rfq_pb2
from cqvx.client import SupportsCandles, SupportsRfq, VenueClient
from cqvx.errors import InsufficientFunds, InvalidRequest, OrderRejected
from cqvx.testing.conformance import ConformanceSuite, HarnessDefaults
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.transport.ratelimit import limiters
from cqvx.venues.prime import PrimeClient
from opensqt.connector import ConnectorServer, DialPolicy, RemoteVenue, StreamPolicy
from opensqt.connector.settings import load_connector_settings

pytestmark = pytest.mark.timeout(120)

FAST_DIAL = DialPolicy(initial=0.02, maximum=0.2, attempts=6, attempt_timeout=1.0)
FAST_STREAM = StreamPolicy(initial=0.02, maximum=0.2)
ACCESS_KEY = "prime-yaml-access"
PASSPHRASE = "prime-yaml-pass"
SIGNING_KEY = "prime-yaml-signing-key"
PORTFOLIO = "8f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

CONNECTOR_YAML = """\
connector:
  host: 127.0.0.1
  port: 0
  token: {env: PRIME_CONNECTOR_TOKEN}
  health_interval: 0.05
  upstream_retry_initial: 0.01
  upstream_retry_max: 0.05
  grace: 0.5
  validation_timeout: 5
venues:
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


class PrimeConnectorHarness(HarnessDefaults):
    """RemoteVenue -> YAML-configured connector -> Prime fake."""

    venue = "prime"
    symbol = "BTC-USD"
    timeout = 5.0
    supports_trades = False
    rate_limit_retries = True

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self.fake = FakePrime(
            access_key=ACCESS_KEY,
            passphrase=PASSPHRASE,
            signing_key=SIGNING_KEY,
            portfolio_id=PORTFOLIO,
            clock=FakeClock(),  # wall time: the connector's client signs on the wall clock
        )
        self.server: ConnectorServer | None = None
        self.env: dict[str, str] = {}

    async def start(self) -> None:
        await self.fake.start()
        config = self._tmp / "connector.yaml"
        config.write_text(CONNECTOR_YAML, encoding="utf-8")
        self.env = {
            "PRIME_CONNECTOR_TOKEN": "prime-t0ken",
            "PRIME_URL": self.fake.url,
            "PRIME_WS_URL": self.fake.ws_url + "/ws",
            "PRIME_ACCESS_KEY": ACCESS_KEY,
            "PRIME_PASSPHRASE": PASSPHRASE,
            "PRIME_SIGNING_KEY": SIGNING_KEY,
            "PRIME_PORTFOLIO_ID": PORTFOLIO,
        }
        settings = load_connector_settings(config, env=self.env)
        venues = settings.build_venues()
        assert isinstance(venues["prime-main"], PrimeClient)
        for c in venues.values():
            await c.__aenter__()
        self.server = ConnectorServer(venues, settings.server, close_venues=True)
        await self.server.start()

    async def new_client(self) -> VenueClient:
        assert self.server is not None
        return await RemoteVenue.connect(
            self.server.address,
            "prime-main",
            token=self.env["PRIME_CONNECTOR_TOKEN"],
            dial=FAST_DIAL,
            stream_policy=FAST_STREAM,
            timeout=self.timeout,
        )

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol="BTC-USD",
            side=order_pb2.ORDER_SIDE_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_GTC,
            quantity="0.01",
            price="10000",
        )

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        order = self.resting_order(client_order_id)
        order.quantity = "1000"
        return order

    async def rate_limit_next(self, n: int) -> None:
        self.fake.rate_limit(times=n, retry_after=0.05)

    async def rate_limits_served(self) -> int:
        return self.fake.rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return self.fake.orders_with_client_id(client_order_id)

    async def drop_streams(self) -> None:
        await self.fake.drop_ws()
        best = max(self.fake.feed.books["BTC-USD"]["bid"])
        await self.fake.feed.update("BTC-USD", "bid", best, Decimal(0))  # while nobody listens

    async def make_book_gap(self) -> None:
        feed = self.fake.feed
        best = max(feed.books["BTC-USD"]["bid"])
        await feed.update("BTC-USD", "bid", best, Decimal(0), publish=False)  # lost
        await feed.update("BTC-USD", "offer", max(feed.books["BTC-USD"]["offer"]), Decimal("9.5"))

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return self.fake.feed.expected_book("BTC-USD", depth)

    async def emit_trade(self) -> None:
        raise NotImplementedError

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill_order(report.order_id, quantity)

    async def force_stream_drop(self) -> None:
        await self.fake.drop_ws()

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill_order(report.order_id, quantity, publish=False)
        await self.fake.drop_ws()

    async def close(self) -> None:
        if self.server is not None:
            await asyncio.wait_for(self.server.stop(0), 10)
        await self.fake.stop()


@pytest.fixture
async def prime_harness(tmp_path: Path) -> AsyncIterator[PrimeConnectorHarness]:
    h = PrimeConnectorHarness(tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.close()


class TestPrimeThroughConnectorConformance(ConformanceSuite):
    venue = "remote->connector->prime"

    @pytest.fixture
    async def harness(self, prime_harness: PrimeConnectorHarness) -> AsyncIterator[PrimeConnectorHarness]:
        yield prime_harness


async def test_taxonomy_crosses_the_wire(prime_harness: PrimeConnectorHarness) -> None:
    remote = await prime_harness.new_client()
    try:
        with pytest.raises(InsufficientFunds):
            await remote.place_order(prime_harness.unfundable_order("nofunds-1"))
        assert prime_harness.fake.auth_failures == 0
    finally:
        await remote.aclose()


async def test_rfq_quote_and_accept_end_to_end(prime_harness: PrimeConnectorHarness) -> None:
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


async def test_candles_over_grpc(prime_harness: PrimeConnectorHarness) -> None:
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
