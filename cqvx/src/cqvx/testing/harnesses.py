"""Conformance harnesses of the venues cqvx ships: the simulator, Coinbase and Coinbase Prime (their
wire-level fakes).

Shared by cqvx's own conformance tests and by the connector's (which serve the same venues through
``RemoteVenue`` -> connector).  Each implements :class:`~cqvx.testing.conformance.ConformanceHarness`
and the optional hooks it can honestly serve; every hook acts on the venue's side.

* :class:`SimHarness`: a quiet market on a :class:`SimClock` nobody drives, so the book changes only
  through the hooks.  The sim is venue and client at once: "dropping the streams" cuts every
  subscription's connection with ``resume=True`` (messages in transit are lost, the subscriptions stay,
  a fresh book snapshot follows); a fill is a public trade at the order's price.
* :class:`CoinbaseHarness`: :class:`FakeCoinbase` (REST + WebSocket, JWT-checked) and a real
  :class:`CoinbaseClient`; dropping closes the fake's WebSocket connections (the client reconnects).
  More keys than the harness's own can be registered with the fake (``extra_keys``: several accounts).
* :class:`PrimeHarness`: :class:`FakePrime` (REST + WebSocket, HMAC-checked) and a real
  :class:`PrimeClient` on the fake's clock; Prime has no public trade feed (``supports_trades`` off).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Generic, Literal, Protocol, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.client import VenueClient
from cqvx.secrets import Secret
from cqvx.testing.conformance.harness import HarnessDefaults
from cqvx.testing.fake_coinbase import FakeCoinbase
from cqvx.testing.fake_prime import FakeClock, FakePrime
from cqvx.testing.sim_funding import SimFundingHooks
from cqvx.venues.coinbase import CoinbaseClient, CoinbaseConfig
from cqvx.venues.prime import PrimeClient, PrimeConfig
from cqvx.venues.sim import InstrumentSpec, MarketModel, SimClock, SimConfig, SimVenue

__all__ = [
    "COINBASE_KEY",
    "CoinbaseHarness",
    "FakeServerHooks",
    "PrimeHarness",
    "SimHarness",
    "pem_of",
    "prime_config",
    "prime_fake",
    "quiet_sim_config",
]

_BUY = order_pb2.ORDER_SIDE_BUY
_SELL = order_pb2.ORDER_SIDE_SELL


def quiet_sim_config() -> SimConfig:
    """A spot and a perpetual market that move only when told to (no random walk, no trades)."""
    quiet = MarketModel(
        volatility=0.0,
        jump_intensity=0.0,
        regime_enter_prob=0.0,
        trades_per_step=0,
        level_size=Decimal("5"),
        size_jitter=0.0,
    )
    spot = InstrumentSpec(
        symbol="BTC-USDT",
        initial_price=Decimal("60000"),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.002"),
    )
    perp = InstrumentSpec(
        symbol="BTC-USDT-PERP",
        initial_price=Decimal("60000"),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        funding_interval_seconds=3600,
        base_funding_rate=Decimal("0.0001"),
    )
    return SimConfig(
        seed=7,
        instruments=(spot, perp),
        balances={"USDT": Decimal("1000000"), "BTC": Decimal("20")},
        market=quiet,
        leverage={"BTC-USDT-PERP": Decimal("10")},
    )


class SimHarness(SimFundingHooks, HarnessDefaults):
    # Stream-contract knobs (cqvx.testing.conformance_streams): the sim refuses an unknown symbol and
    # announces a gap when its streams drop.
    supports_stream_refusal = True
    unknown_symbol = "NOPE-USDT"
    supports_stream_gaps = True
    venue = "sim"
    symbol = "BTC-USDT"
    position_symbol = "BTC-USDT-PERP"
    timeout = 2.0
    rate_limit_retries = False  # the sim raises RateLimited(retry_after), like a venue

    def __init__(self, sim: SimVenue | None = None) -> None:
        self.sim = sim or SimVenue(quiet_sim_config(), clock=SimClock())

    async def new_client(self) -> VenueClient:
        return self.sim

    def _limit(self, client_order_id: str, symbol: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol=symbol,
            side=_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            quantity="0.01",
            price="50000",
        )

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return self._limit(client_order_id, self.symbol)

    def other_resting_order(self, client_order_id: str) -> order_pb2.Order:
        return self._limit(client_order_id, self.position_symbol)

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        order = self.resting_order(client_order_id)
        order.quantity = "900"
        return order

    def position_order(self, client_order_id: str, side: int, quantity: Decimal) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol=self.position_symbol,
            side=_BUY if side == _BUY else _SELL,
            order_type=order_pb2.ORDER_TYPE_MARKET,
            quantity=str(quantity),
            reduce_only=side != _BUY,
        )

    async def rate_limit_next(self, n: int) -> None:
        self.sim.faults.rate_limit_next(n)

    async def rate_limits_served(self) -> int:
        return self.sim.faults.rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return sum(1 for o in self.sim.engine.orders.values() if o.client_order_id == client_order_id)

    def _mid(self) -> Decimal:
        return self.sim.markets[self.symbol].mid

    async def drop_streams(self) -> None:
        self.sim.set_price(self.symbol, self._mid() - Decimal("0.05"), publish=False)
        self.sim.faults.drop_streams(resume=True)

    async def make_book_gap(self) -> None:
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.02"), publish=False)
        self.sim.set_price(self.symbol, self._mid() + Decimal("0.03"), publish=False)
        self.sim.faults.book_gap(self.symbol, missing=1)

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        return await self.sim.get_order_book(self.symbol, depth)

    async def emit_trade(self) -> None:
        self.sim.inject_trade(self.symbol, self._mid(), Decimal("0.01"), _BUY)

    def _fill_now(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        # A public trade at the order's own price, aggressor on the other side, fills it (no queue
        # ahead: nothing else rests at that price in a quiet market).
        aggressor = _SELL if report.side == _BUY else _BUY
        self.sim.inject_trade(report.symbol, Decimal(report.order_price), quantity, aggressor)

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        self._fill_now(report, quantity)

    async def force_stream_drop(self) -> None:
        self.sim.faults.drop_streams(resume=True)

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        # No await in between: the fill's report is still queued when the connection drops.
        self._fill_now(report, quantity)
        self.sim.faults.drop_streams(resume=True)

    async def close(self) -> None:
        await self.sim.aclose()


class _CountingFake(Protocol):
    rate_limits_served: int

    def rate_limit(
        self, route: str | None = None, *, times: int = 1, retry_after: str | float | None = 1
    ) -> None: ...

    def orders_with_client_id(self, client_order_id: str) -> int: ...


_F = TypeVar("_F", bound=_CountingFake)


class FakeServerHooks(HarnessDefaults, Generic[_F]):
    """The rate-limit and duplicate-count hooks of a harness whose ``fake`` is one of the wire-level
    fakes in :mod:`cqvx.testing` (they count the 429s they served and orders per client order id)."""

    fake: _F

    async def rate_limit_next(self, n: int) -> None:
        self.fake.rate_limit(times=n, retry_after=0.05)

    async def rate_limits_served(self) -> int:
        return self.fake.rate_limits_served

    async def venue_order_count(self, client_order_id: str) -> int:
        return self.fake.orders_with_client_id(client_order_id)


COINBASE_KEY = "organizations/org-conf/apiKeys/key-conf"


def pem_of(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


DuplicateMode = Literal["return_existing", "reject"]


class CoinbaseHarness(FakeServerHooks[FakeCoinbase]):
    supports_stream_gaps = True  # a WebSocket drop gaps every stream on that connection
    # A product the products table does not list is refused from wait_live (InvalidRequest).
    supports_stream_refusal = True
    unknown_symbol = "NOPE-USD"
    venue = "coinbase"
    symbol = "BTC-USD"
    timeout = 5.0
    # The transport retries a 429 after its Retry-After, so the call succeeds.
    rate_limit_retries = True

    def __init__(
        self,
        duplicate_mode: DuplicateMode = "return_existing",
        *,
        extra_keys: Mapping[str, ec.EllipticCurvePrivateKey] | None = None,
    ) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        keys = {name: key.public_key() for name, key in (extra_keys or {}).items()}
        self.fake = FakeCoinbase(
            keys={COINBASE_KEY: self._key.public_key(), **keys},
            heartbeat_interval=0.2,
            duplicate_mode=duplicate_mode,
        )
        self._step = 0

    async def start(self) -> None:
        await self.fake.start()

    def pem(self) -> str:
        """The harness key (name :data:`COINBASE_KEY`) as the PEM a config or environment carries."""
        return pem_of(self._key)

    def config(self) -> CoinbaseConfig:
        """The client configuration pointing at the fake (fast retries and reconnects)."""
        pem = self.pem()
        return CoinbaseConfig(
            rest_url=self.fake.url,
            ws_market_url=self.fake.ws_market_url,
            ws_user_url=self.fake.ws_user_url,
            retry_base_delay_s=0.01,
            reconnect_initial_s=0.02,
            reconnect_max_s=0.1,
            heartbeat_timeout_s=2.0,
        ).with_credentials(COINBASE_KEY, Secret(pem))

    async def new_client(self) -> VenueClient:
        return CoinbaseClient(self.config())

    def _limit(self, client_order_id: str, symbol: str, quantity: str, price: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol=symbol,
            side=_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_GTC,
            quantity=quantity,
            price=price,
            post_only=True,
        )

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return self._limit(client_order_id, "BTC-USD", "0.01", "40000")

    def other_resting_order(self, client_order_id: str) -> order_pb2.Order:
        return self._limit(client_order_id, "ETH-USD", "0.1", "2000")

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol="BTC-USD",
            side=_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            quantity="1000",
            price="40000",
        )

    async def drop_streams(self) -> None:
        # Change the book while the client is away: the best bid disappears.
        best_bid = max(self.fake.products["BTC-USD"].bids)
        await self.fake.drop_ws()
        await self.fake.push_l2("BTC-USD", bids=[(str(best_bid), "0")], publish=False)

    async def make_book_gap(self) -> None:
        self._step += 1
        best_ask = min(self.fake.products["BTC-USD"].asks)
        # The first update (removing a level the client holds) is lost; the second is published
        # with a sequence number that skips it.
        await self.fake.push_l2("BTC-USD", asks=[(str(best_ask), "0")], publish=False)
        self.fake.inject_gap(1)
        await self.fake.push_l2("BTC-USD", bids=[(str(49000 - self._step), "0.5")])

    async def expected_book(self, depth: int) -> orderbook_pb2.OrderBook:
        p = self.fake.products["BTC-USD"]
        lvl = orderbook_pb2.OrderBookLevel
        return orderbook_pb2.OrderBook(
            venue="coinbase",
            symbol="BTC-USD",
            bids=[
                lvl(price=str(k), quantity=str(v)) for k, v in sorted(p.bids.items(), reverse=True)[:depth]
            ],
            asks=[lvl(price=str(k), quantity=str(v)) for k, v in sorted(p.asks.items())[:depth]],
        )

    async def emit_trade(self) -> None:
        await self.fake.push_trade("BTC-USD", "50010", "0.01", "SELL")

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill(report.order_id, str(quantity))

    async def force_stream_drop(self) -> None:
        await self.fake.drop_ws()

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill(report.order_id, str(quantity), notify=False)
        await self.fake.drop_kind("user")

    async def close(self) -> None:
        await self.fake.stop()


PRIME_ACCESS_KEY = "prime-test-access-key"
PRIME_PASSPHRASE = "prime-test-passphrase"
PRIME_SIGNING_KEY = "cHJpbWUtdGVzdC1zaWduaW5nLWtleQ=="  # looks base64 but is used RAW (venues.md §2.2)
PRIME_PORTFOLIO = "3e1fe27e-7c1b-4a2f-9d6c-0f5e2a7b9c10"
PRIME_SVC_ACCOUNT = "svc-test-account"


def prime_fake(clock: FakeClock | None = None) -> FakePrime:
    """The fake Prime that knows the harness credentials (on ``clock``, else wall time)."""
    return FakePrime(
        access_key=PRIME_ACCESS_KEY,
        passphrase=PRIME_PASSPHRASE,
        signing_key=PRIME_SIGNING_KEY,
        portfolio_id=PRIME_PORTFOLIO,
        clock=clock or FakeClock(),
    )


def prime_config(url: str, **overrides: object) -> PrimeConfig:
    """A client configuration for the fake at ``url`` with the harness credentials, fast retries,
    reconnects and generous budgets."""
    settings: dict[str, object] = {
        "rest_url": url,
        "ws_url": url.replace("http://", "ws://") + "/ws",
        "ws_reconnect_initial_s": 0.01,
        "ws_reconnect_max_s": 0.1,
        "retry_base_delay_s": 0.01,
        "ip_requests_per_second": 1000.0,
        "portfolio_requests_per_second": 1000.0,
        "portfolio_burst": 1000.0,
        **overrides,
    }
    base = PrimeConfig(**settings)  # type: ignore[arg-type]
    return base.with_credentials(
        PRIME_ACCESS_KEY, PRIME_PASSPHRASE, PRIME_SIGNING_KEY, PRIME_PORTFOLIO, PRIME_SVC_ACCOUNT
    )


class PrimeHarness(FakeServerHooks[FakePrime]):
    venue = "prime"
    symbol = "BTC-USD"
    timeout = 5.0
    supports_trades = False  # Prime publishes no public trade feed
    rate_limit_retries = True  # the transport retries a 429 after its Retry-After

    def __init__(self, clock: FakeClock | None = None) -> None:
        # Wall time by default: a client built elsewhere (the connector's) signs on the wall clock.
        self.clock = clock or FakeClock()
        self.fake: FakePrime = prime_fake(self.clock)

    async def start(self) -> None:
        await self.fake.start()

    async def new_client(self) -> VenueClient:
        return PrimeClient(prime_config(self.fake.url), clock=self.clock)

    def resting_order(self, client_order_id: str) -> order_pb2.Order:
        return order_pb2.Order(
            client_order_id=client_order_id,
            symbol="BTC-USD",
            side=_BUY,
            order_type=order_pb2.ORDER_TYPE_LIMIT,
            time_in_force=order_pb2.TIME_IN_FORCE_GTC,
            quantity="0.01",
            price="10000",  # far below the 50000 mid: rests
        )

    def unfundable_order(self, client_order_id: str) -> order_pb2.Order:
        order = self.resting_order(client_order_id)
        order.quantity = "1000"  # 10M USD against a 1M balance
        order.ClearField("time_in_force")
        return order

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
        raise NotImplementedError("Prime has no public trade feed")

    async def fill(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill_order(report.order_id, quantity)

    async def force_stream_drop(self) -> None:
        await self.fake.drop_ws()

    async def fill_lost_in_transit(self, report: execution_pb2.ExecutionReport, quantity: Decimal) -> None:
        await self.fake.fill_order(report.order_id, quantity, publish=False)
        await self.fake.drop_ws()

    async def close(self) -> None:
        await self.fake.stop()
