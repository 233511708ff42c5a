"""Every VenueGateway RPC over real loopback gRPC, request validation, UNIMPLEMENTED for missing
capabilities, and the error taxonomy round trip (server table -> status + VenueError rich-status
detail -> from_grpc)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import grpc
import pytest
from grpc import aio

from cqc.markets.v1 import candle_pb2, orderbook_pb2, trade_pb2
from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2, rfq_pb2, venue_pb2
from cqvx.client import (
    SupportsBatchOrders,
    SupportsCustody,
    SupportsPositions,
    SupportsPrices,
    SupportsRfq,
    VenueClient,
)
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
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from cqvx.types import OrderFilter, Stream

pytestmark = pytest.mark.timeout(30)


class CoreOnly:
    """A venue client with only the nine core methods (no capability protocol)."""

    def __init__(self, inner: MockVenue) -> None:
        self._inner = inner

    @property
    def venue(self) -> str:
        return self._inner.venue

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        return await self._inner.place_order(order)

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        return await self._inner.cancel_order(
            symbol=symbol, order_id=order_id, client_order_id=client_order_id
        )

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        return await self._inner.get_order(symbol=symbol, order_id=order_id, client_order_id=client_order_id)

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        return await self._inner.get_orders(filter)

    async def get_balances(self) -> list[balance_pb2.Balance]:
        return await self._inner.get_balances()

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        return await self._inner.get_order_book(symbol, depth)

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> Stream[orderbook_pb2.OrderBook]:
        return self._inner.subscribe_order_book(symbol, depth)

    def subscribe_trades(self, symbol: str) -> Stream[trade_pb2.Trade]:
        return self._inner.subscribe_trades(symbol)

    async def health(self) -> venue_pb2.VenueHealth:
        return await self._inner.health()

    def capabilities(self) -> frozenset[int]:
        return frozenset()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@pytest.fixture
async def mock() -> AsyncIterator[MockVenue]:
    venue = MockVenue("mock")
    yield venue
    await venue.aclose()


@pytest.fixture
async def stub_for() -> AsyncIterator[Any]:
    channels: list[aio.Channel] = []

    def make(address: str) -> gw_grpc.VenueGatewayAsyncStub:
        channel = aio.insecure_channel(address)
        channels.append(channel)
        return gw_grpc.VenueGatewayStub(channel)

    yield make
    for channel in channels:
        await channel.close()


async def _first(stream: Stream[Any], timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(stream.__anext__(), timeout)


async def test_every_rpc_round_trips_through_the_connector(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock)
    remote: Any = await connect(server)  # its capability methods come from the connector's answer
    assert remote.venue == "mock"
    assert remote.capabilities() == mock.capabilities()
    for proto in (SupportsPositions, SupportsPrices, SupportsBatchOrders, SupportsRfq, SupportsCustody):
        assert isinstance(remote, proto)
    as_object: object = remote  # keep `remote` untyped for the capability calls below
    assert isinstance(as_object, VenueClient)

    # Orders: place, get by either id, list, cancel.
    order = builders.order(venue="mock")
    report = await remote.place_order(order)
    assert report.client_order_id == order.client_order_id
    assert mock.calls("place_order")[0]["order"].client_order_id == order.client_order_id
    got = await remote.get_order(client_order_id=order.client_order_id)
    assert got.order_id == report.order_id
    assert (await remote.get_order(order_id=got.order_id)).client_order_id == order.client_order_id
    assert [o.order_id for o in await remote.get_orders()] == [got.order_id]
    assert await remote.get_orders(OrderFilter(symbol="ETH-USD")) == []
    cancelled = await remote.cancel_order(symbol="BTC-USD", order_id=got.order_id)
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED

    # Batches: an invalid item gets its own error, the others go through.
    good = builders.order(venue="mock")
    bad = builders.order(venue="mock", client_order_id="")
    results = await remote.place_orders([good, bad])
    assert isinstance(results[0], execution_pb2.ExecutionReport)
    assert isinstance(results[1], InvalidRequest) and "orders[1].client_order_id" in results[1].message
    assert len(mock.calls("place_orders")[0]["orders"]) == 1
    cancels = await remote.cancel_orders(
        [order_pb2.OrderRef(client_order_id=good.client_order_id), order_pb2.OrderRef(order_id="nope")]
    )
    assert isinstance(cancels[0], order_pb2.Order) and cancels[0].status == order_pb2.ORDER_STATUS_CANCELLED
    assert isinstance(cancels[1], NotFound)
    third = builders.order(venue="mock")
    await remote.place_order(third)
    all_cancelled = await remote.cancel_all_orders("BTC-USD")
    assert [o.client_order_id for o in all_cancelled] == [third.client_order_id]

    # Account.
    balances = await remote.get_balances()
    assert {b.asset for b in balances} == {"USD", "BTC"}
    mock.positions.append(builders.position(venue="mock", symbol="BTC-USDT-PERP"))
    assert [p.symbol for p in await remote.get_positions()] == ["BTC-USDT-PERP"]

    # Market data.
    assert [i.symbol for i in await remote.get_instruments()] == [mock.instruments[0].symbol]
    await mock.push_book("BTC-USD", builders.order_book(venue="mock", symbol="BTC-USD"))
    book = await remote.get_order_book("BTC-USD", 5)
    assert book.symbol == "BTC-USD" and len(book.bids) > 0
    assert mock.calls("get_order_book")[-1]["depth"] == 5
    price = await remote.get_latest_price("BTC-USD")
    assert Decimal(price.last) > 0
    mock.tickers["BTC-USD"] = builders.ticker(venue="mock", symbol="BTC-USD")
    assert [t.symbol for t in await remote.get_tickers()] == ["BTC-USD"]
    mock.candles.append(builders.candle(venue="mock", symbol="BTC-USD"))
    candles = await remote.get_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1MIN, limit=10)
    assert len(candles) == 1
    assert mock.calls("get_candles")[0]["limit"] == 10
    mock.funding_rates["BTC-USDT-PERP"] = builders.funding_rate(venue="mock", symbol="BTC-USDT-PERP")
    assert (await remote.get_funding_rate("BTC-USDT-PERP")).symbol == "BTC-USDT-PERP"
    assert [r.symbol for r in await remote.get_funding_rates()] == ["BTC-USDT-PERP"]

    # RFQ and custody.
    quote = await remote.request_quote(
        rfq_pb2.QuoteRequest(symbol="BTC-USD", side=order_pb2.ORDER_SIDE_BUY, quantity="0.1")
    )
    assert quote.quote_id and mock.calls("request_quote")[0]["request"].venue == "mock"
    executed = await remote.execute_quote(quote.quote_id, order_pb2.ORDER_SIDE_BUY)
    assert executed.quote.status == rfq_pb2.QUOTE_STATUS_EXECUTED
    assert executed.report.symbol == "BTC-USD"
    tx = await remote.create_transaction(
        custody_pb2.CustodyTransferRequest(
            vault_id="v1", asset="ETH", amount="1.5", destination="0xabc", idempotence_id="idem-1"
        )
    )
    assert (await remote.get_transaction(tx.transaction_id)).amount == "1.5"
    mock.set_transaction_state(tx.transaction_id, custody_pb2.CUSTODY_TRANSACTION_STATE_COMPLETED)
    done = await remote.await_transaction(tx.transaction_id, frozenset(), timeout=1.0)
    assert done.state == custody_pb2.CUSTODY_TRANSACTION_STATE_COMPLETED

    health = await remote.health()
    assert health.venue == "mock" and health.reachable


async def test_every_stream_rpc_delivers(mock: MockVenue, start_server: Any, connect: Any) -> None:
    server = await start_server(mock)
    remote: Any = await connect(server)
    streams = {
        "trades": remote.subscribe_trades("BTC-USD"),
        "book": remote.subscribe_order_book("BTC-USD", 10),
        "prices": remote.subscribe_prices(["BTC-USD"]),
        "executions": remote.subscribe_executions(["BTC-USD"]),
        "balances": remote.subscribe_balances(),
        "positions": remote.subscribe_positions(),
        "funding": remote.subscribe_funding_rates(["BTC-USDT-PERP"]),
        "candles": remote.subscribe_candles("BTC-USD", candle_pb2.CANDLE_INTERVAL_1MIN),
    }
    # Start every reader so the connector subscribes upstream, then wait for the upstreams.
    readers = {name: asyncio.ensure_future(_first(s)) for name, s in streams.items()}
    for name in streams:
        await mock.stream(name).wait_subscribed()
    await mock.push_trade("BTC-USD", price="50100")
    await mock.push_book("BTC-USD", builders.order_book(venue="mock", symbol="BTC-USD"))
    await mock.push_price(builders.price(venue="mock", symbol="BTC-USD", last="50000"))
    await mock.push_execution(builders.execution_report(builders.order(venue="mock", symbol="ETH-USD")))
    await mock.push_execution(builders.execution_report(builders.order(venue="mock", symbol="BTC-USD")))
    await mock.push_balance(builders.balance(venue="mock", asset="USD", total="5"))
    await mock.push_position(builders.position(venue="mock", symbol="BTC-USDT-PERP"))
    await mock.push_funding_rate(builders.funding_rate(venue="mock", symbol="BTC-USDT-PERP"))
    await mock.push_candle(builders.candle(venue="mock", symbol="BTC-USD"))
    got = {name: await r for name, r in readers.items()}
    assert Decimal(got["trades"].price) == Decimal("50100")
    assert got["book"].symbol == "BTC-USD"
    assert got["prices"].last == "50000"
    assert got["executions"].symbol == "BTC-USD"  # the ETH-USD report was filtered out per subscriber
    assert got["balances"].total == "5"
    assert got["positions"].symbol == "BTC-USDT-PERP"
    assert got["funding"].symbol == "BTC-USDT-PERP"
    assert got["candles"].symbol == "BTC-USD"
    assert mock.stream("trades").subscriber_count == 1
    for s in streams.values():
        await s.aclose()
    # Closing the last subscriber releases the upstream subscription (the connector notices the
    # cancelled RPC in its own task, so poll with a deadline).
    async with asyncio.timeout(5):
        while mock.stream("trades").subscriber_count != 0:  # noqa: ASYNC110 - polling the mock's state
            await asyncio.sleep(0.005)


async def test_sim_venue_behind_the_connector(start_server: Any, connect: Any) -> None:
    from cqvx.venues.sim import SimVenue

    async with SimVenue.default(seed=7, tick_interval=0.02) as sim:
        server = await start_server(sim)
        remote: Any = await connect(server)
        assert remote.venue == "sim"
        price = await remote.get_latest_price("BTC-USDT")
        mid = Decimal(price.last)
        order = builders.order(
            venue="sim",
            symbol="BTC-USDT",
            quantity="0.001",
            price=str((mid * Decimal("0.5")).quantize(Decimal("0.01"))),
        )
        executions = remote.subscribe_executions()
        first_exec = asyncio.ensure_future(_first(executions))
        await asyncio.wait_for(executions.wait_live(), 5)  # subscribed before the order goes in
        report = await remote.place_order(order)
        assert report.client_order_id == order.client_order_id
        assert (await first_exec).client_order_id == order.client_order_id
        assert [o.client_order_id for o in await remote.get_orders(OrderFilter(symbol="BTC-USDT"))] == [
            order.client_order_id
        ]
        with pytest.raises(DuplicateOrder):
            await remote.place_order(order)
        cancelled = await remote.cancel_order(symbol="BTC-USDT", client_order_id=order.client_order_id)
        assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
        book = await remote.get_order_book("BTC-USDT", 5)
        assert 0 < len(book.bids) <= 5
        assert {b.asset for b in await remote.get_balances()} >= {"USDT", "BTC"}
        assert {i.symbol for i in await remote.get_instruments()} == {"BTC-USDT", "BTC-USDT-PERP"}
        assert (await remote.get_funding_rate("BTC-USDT-PERP")).symbol == "BTC-USDT-PERP"
        prices = remote.subscribe_prices(["BTC-USDT"])
        assert (await _first(prices)).symbol == "BTC-USDT"
        assert not isinstance(remote, SupportsRfq)  # the sim has no RFQ desk, and the remote says so


async def test_validation_names_the_bad_field(mock: MockVenue, start_server: Any, stub_for: Any) -> None:
    server = await start_server(mock)
    stub = stub_for(server.address)

    async def invalid(call: Any, request: Any) -> str:
        with pytest.raises(aio.AioRpcError) as info:
            await call(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return str(info.value.details())

    order = builders.order(venue="mock")
    no_id = builders.order(venue="mock", client_order_id="")
    assert "order.client_order_id" in await invalid(
        stub.PlaceOrder, gw.PlaceOrderRequest(venue="mock", order=no_id)
    )
    bad_price = builders.order(venue="mock")
    bad_price.price = "12,5"
    assert "order.price" in await invalid(
        stub.PlaceOrder, gw.PlaceOrderRequest(venue="mock", order=bad_price)
    )
    zero_qty = builders.order(venue="mock", quantity="0")
    assert "order.quantity" in await invalid(
        stub.PlaceOrder, gw.PlaceOrderRequest(venue="mock", order=zero_qty)
    )
    details = await invalid(stub.PlaceOrder, gw.PlaceOrderRequest(venue="binance", order=order))
    assert "unknown venue 'binance'" in details and "mock" in details
    assert "venue: required" in await invalid(stub.PlaceOrder, gw.PlaceOrderRequest(order=order))
    assert "order: required" in await invalid(stub.PlaceOrder, gw.PlaceOrderRequest(venue="mock"))
    assert "ref" in await invalid(stub.GetOrder, gw.GetOrderRequest(venue="mock", ref=order_pb2.OrderRef()))
    assert "page_token" in await invalid(stub.ListOrders, gw.ListOrdersRequest(venue="mock", page_token="x"))
    with pytest.raises(aio.AioRpcError) as info:
        await stub.StreamTrades(gw.StreamTradesRequest(venue="mock")).read()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "symbol" in str(info.value.details())
    assert mock.call_count("place_order") == 0  # nothing invalid reached the venue


@pytest.mark.parametrize("text", ["\u0661", " 1", "1 ", "1_000", "1e400", "1e-400", "NaN", "9" * 10_000])
async def test_order_numbers_must_be_canonical_ascii_decimals(
    text: str, mock: MockVenue, start_server: Any, stub_for: Any
) -> None:
    """Python's Decimal() reads each of these (the first as 1): the connector refuses them, naming the
    field and quoting a bounded excerpt, and the venue never sees the order."""
    server = await start_server(mock)
    stub = stub_for(server.address)
    order = builders.order(venue="mock")
    order.quantity = text
    with pytest.raises(aio.AioRpcError) as info:
        await stub.PlaceOrder(gw.PlaceOrderRequest(venue="mock", order=order), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = str(info.value.details())
    assert "order.quantity" in details and len(details) < 200
    assert mock.call_count("place_order") == 0


async def test_unsupported_rpcs_answer_unimplemented(
    mock: MockVenue, start_server: Any, connect: Any, stub_for: Any
) -> None:
    server = await start_server(CoreOnly(mock))
    stub = stub_for(server.address)
    with pytest.raises(aio.AioRpcError) as info:
        await stub.GetPositions(gw.GetPositionsRequest(venue="mock"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "GetPositions" in str(info.value.details()) and "SupportsPositions" in str(info.value.details())
    with pytest.raises(aio.AioRpcError) as info:
        await stub.StreamPrices(gw.StreamPricesRequest(venue="mock", symbols=["BTC-USD"])).read()
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    remote = await connect(server)
    assert not isinstance(remote, SupportsPositions) and not isinstance(remote, SupportsPrices)
    assert await remote.get_balances()  # the core still works


_ERRORS: list[VenueError] = [
    AuthenticationError("bad key", venue="mock", code="401"),
    PermissionDenied("no trade scope", venue="mock"),
    InvalidRequest("lot size", venue="mock", code="-1013"),
    InsufficientFunds("no money", venue="mock", code="-2019", http_status=400),
    NotFound("no such order", venue="mock"),
    OrderRejected("post-only would cross", venue="mock"),
    RateLimited("slow down", venue="mock", retry_after=1.5),
    Unavailable("maintenance", venue="mock", http_status=503),
    Timeout("no answer", venue="mock"),
    UnsupportedOperation("nope", venue="mock"),
    ParseError("garbage", venue="mock"),
    DuplicateOrder("dup", venue="mock", client_order_id="cq-1"),
]


@pytest.mark.parametrize("error", _ERRORS, ids=lambda e: type(e).__name__)
async def test_errors_round_trip_to_the_same_class(
    error: VenueError, mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock)
    remote = await connect(server)
    mock.on("get_balances", error)
    with pytest.raises(VenueError) as info:
        await remote.get_balances()
    got = info.value
    assert type(got) is type(error)
    assert (got.message, got.venue, got.code, got.http_status, got.retry_safe) == (
        error.message,
        error.venue,
        error.code,
        error.http_status,
        error.retry_safe,
    )
    if isinstance(error, RateLimited):
        assert isinstance(got, RateLimited) and got.retry_after == 1.5
    if isinstance(error, DuplicateOrder):
        assert isinstance(got, DuplicateOrder) and got.client_order_id == "cq-1"


async def test_unexpected_venue_failure_is_an_unresolved_outcome(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock)
    remote = await connect(server)
    mock.on("place_order", RuntimeError("bug in adapter"))
    with pytest.raises(Timeout):  # INTERNAL without a trailer: the order may exist, look it up
        await remote.place_order(builders.order(venue="mock"))
    assert (
        server.metrics.value("opensqt_connector_rpcs_total", {"method": "PlaceOrder", "code": "INTERNAL"})
        == 1
    )


async def test_a_placement_outlives_the_client_deadline(
    mock: MockVenue, start_server: Any, stub_for: Any
) -> None:
    # The venue call is slow; the client gives up first.  The placement must still finish at the venue
    # (a half-sent order cancelled mid-flight would be unknowable there too), so a later lookup by
    # client order id finds it.
    finished = asyncio.Event()
    release = asyncio.Event()

    async def slow_place(order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        await release.wait()  # the venue answers only after the client has given up
        finished.set()
        return builders.execution_report(client_order_id=order.client_order_id, venue="mock")

    mock.on("place_order", slow_place)
    server = await start_server(mock)
    stub = stub_for(server.address)
    order = builders.order(venue="mock", client_order_id="late-1")
    with pytest.raises(aio.AioRpcError) as info:
        await stub.PlaceOrder(gw.PlaceOrderRequest(venue="mock", order=order), timeout=0.05)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    release.set()
    await asyncio.wait_for(finished.wait(), 5)
    assert mock.call_count("place_order") == 1
