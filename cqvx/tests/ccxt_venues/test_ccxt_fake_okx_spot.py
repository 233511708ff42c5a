"""The ccxt adapter trades OKX spot (``instType=SPOT``, ``tdMode=cash``) through the wire-level fake OKX.

OKX names the spot pair ``BTC-USDT`` and the perpetual ``BTC-USDT-SWAP``; our canonical ids are
``BTC-USDT`` and ``BTC-USDT-PERP``.  With both market types loaded the adapter maps each to its own
instrument: spot quantities are base units on the wire, swap quantities contracts of 0.01 BTC.  What
the fake receives is read from its request log (the wire), what the account holds from the simulated
venue behind it (never from the client under test).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cqc.markets.v1 import instrument_pb2
from cqc.venues.v1 import order_pb2
from cqvx.client import supports_spot_margin
from cqvx.errors import InsufficientFunds, UnsupportedOperation
from cqvx.secrets import Secret
from cqvx.testing.fake_ccxt.okx import FakeOkx
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.sim import SimClock, SimVenue

D = Decimal
KEY, SECRET, PASSPHRASE = "okx-spot-key", "okx-spot-secret", "okx-spot-pass"
SPOT, PERP = "BTC-USDT", "BTC-USDT-PERP"
ALL = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOkx]:
    fake = FakeOkx(KEY, SECRET, PASSPHRASE, sim=SimVenue(quiet_sim_config(), clock=SimClock()))
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def _client(fake: FakeOkx) -> CcxtClient:
    return CcxtClient(
        CcxtConfig(
            "okx", Secret(KEY), Secret(SECRET), Secret(PASSPHRASE), market_types=("spot", "swap"),
            rest_url=fake.url, ws_url=fake.ws_url, read_retries=0, timeout_s=5, rate_limit=False,
        )
    )  # fmt: skip


def _ioc(coid: str, symbol: str, side: int, quantity: str, price: str) -> order_pb2.Order:
    return order_pb2.Order(
        symbol=symbol, client_order_id=coid, side=order_pb2.OrderSide.ValueType(side),
        order_type=order_pb2.ORDER_TYPE_LIMIT, time_in_force=order_pb2.TIME_IN_FORCE_IOC,
        quantity=quantity, price=price,
    )  # fmt: skip


def _placed_bodies(fake: FakeOkx) -> list[dict[str, Any]]:
    """Every order the fake was asked to place (single and batch placement paths)."""
    bodies: list[dict[str, Any]] = []
    for path in ("/api/v5/trade/order", "/api/v5/trade/batch-orders"):
        for r in fake.requests_to(path, "POST"):
            loaded = json.loads(r.body)
            bodies.extend(loaded if isinstance(loaded, list) else [loaded])
    return bodies


async def _sim_btc(sim: SimVenue) -> Decimal:
    return next((D(b.total) for b in await sim.get_balances() if b.asset == "BTC"), D(0))


async def test_spot_and_swap_map_to_their_own_instruments(fake: FakeOkx) -> None:
    async with _client(fake) as client:
        by_symbol = {i.symbol: i for i in await client.get_instruments()}
        assert by_symbol[SPOT].instrument_type == instrument_pb2.INSTRUMENT_TYPE_SPOT
        assert by_symbol[SPOT].venue_symbol == "BTC-USDT"
        assert by_symbol[PERP].instrument_type == instrument_pb2.INSTRUMENT_TYPE_PERPETUAL
        assert by_symbol[PERP].venue_symbol == "BTC-USDT-SWAP"
        spec = {s.symbol: s for s in fake.sim.config.instruments}
        # Both in base units at our API: the spot lot as listed, the swap lot converted from contracts.
        assert D(by_symbol[SPOT].lot_size) == spec[SPOT].lot_size
        assert D(by_symbol[PERP].lot_size) == spec[PERP].lot_size
        for symbol in (SPOT, PERP):
            book, truth = await client.get_order_book(symbol, 5), await fake.sim.get_order_book(symbol, 5)
            assert [(D(lv.price), D(lv.quantity)) for lv in book.bids] == [
                (D(lv.price), D(lv.quantity)) for lv in truth.bids
            ], symbol


async def test_an_ioc_spot_buy_fills_in_cash_mode_and_the_account_holds_the_coin(fake: FakeOkx) -> None:
    btc0 = await _sim_btc(fake.sim)
    async with _client(fake) as client:
        ask = D((await fake.sim.get_order_book(SPOT, 1)).asks[0].price)
        await client.place_order(_ioc("spotbuy1", SPOT, order_pb2.ORDER_SIDE_BUY, "0.013", str(ask + 50)))
        (body,) = _placed_bodies(fake)
        # Place order (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order):
        # the spot instId, non-margin tdMode cash, the size in BTC (not contracts), ordType ioc.
        assert (body["instId"], body["tdMode"], body["ordType"], D(body["sz"])) == (
            "BTC-USDT", "cash", "ioc", D("0.013")
        )  # fmt: skip
        found = await client.get_order(symbol=SPOT, client_order_id="spotbuy1")
        assert found.status == order_pb2.ORDER_STATUS_FILLED and D(found.filled_quantity) == D("0.013")
        assert await _sim_btc(fake.sim) == btc0 + D("0.013")
        balances = {b.asset: D(b.total) for b in await client.get_balances()}
        assert balances["BTC"] == btc0 + D("0.013")
        assert not await fake.sim.get_positions([PERP]) or all(
            D(p.quantity or "0") == 0 for p in await fake.sim.get_positions([PERP])
        ), "a spot order moved the perpetual"


async def test_a_resting_spot_order_is_listed_and_cancelled_by_client_id(fake: FakeOkx) -> None:
    async with _client(fake) as client:
        bid = D((await fake.sim.get_order_book(SPOT, 1)).bids[0].price)
        resting = _ioc("spotrest1", SPOT, order_pb2.ORDER_SIDE_BUY, "0.002", str(bid - 500))
        resting.time_in_force = order_pb2.TIME_IN_FORCE_GTC
        await client.place_order(resting)
        open_orders = await client.get_orders(OrderFilter(symbol=SPOT))
        assert [o.client_order_id for o in open_orders] == ["spotrest1"]
        assert open_orders[0].symbol == SPOT and D(open_orders[0].quantity) == D("0.002")
        assert not await client.get_orders(OrderFilter(symbol=PERP))
        done = await client.cancel_order(symbol=SPOT, client_order_id="spotrest1")
        assert done.status == order_pb2.ORDER_STATUS_CANCELLED
        truth = await fake.sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL))
        assert [o.status for o in truth] == [order_pb2.ORDER_STATUS_CANCELLED]


async def test_a_spot_sell_beyond_the_balance_is_refused_for_funds(fake: FakeOkx) -> None:
    btc = await _sim_btc(fake.sim)
    async with _client(fake) as client:
        bid = D((await fake.sim.get_order_book(SPOT, 1)).bids[0].price)
        with pytest.raises(InsufficientFunds):  # the fake answers OKX's sCode 51008
            await client.place_order(
                _ioc("spotsell1", SPOT, order_pb2.ORDER_SIDE_SELL, str(btc + 1), str(bid))
            )
        assert not await fake.sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL))


async def test_a_margin_order_is_refused_before_sending(fake: FakeOkx) -> None:
    """The ccxt adapter has no spot margin: ``Order.margin`` is refused typed, nothing reaches the wire
    (single and batch placement alike), never sent as a cash order."""
    async with _client(fake) as client:
        assert not supports_spot_margin(client)
        bid = (await fake.sim.get_order_book(SPOT, 1)).bids[0].price
        order = _ioc("marginsell1", SPOT, order_pb2.ORDER_SIDE_SELL, "0.001", bid)
        order.margin = True
        with pytest.raises(UnsupportedOperation, match="no spot margin"):
            await client.place_order(order)
        (result,) = await client.place_orders([order])
        assert isinstance(result, UnsupportedOperation)
        assert _placed_bodies(fake) == []
        assert not await fake.sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL))


def _post_headers(path: str, body: str) -> dict[str, str]:
    """OKX's documented signature, written here: base64 HMAC-SHA256(ts + METHOD + path + body)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = hmac.new(SECRET.encode(), (stamp + "POST" + path + body).encode(), hashlib.sha256).digest()
    return {
        "OK-ACCESS-KEY": KEY,
        "OK-ACCESS-PASSPHRASE": PASSPHRASE,
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-SIGN": base64.b64encode(digest).decode(),
        "Content-Type": "application/json",
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"tdMode": "cross", "ordType": "limit", "px": "50000"},  # spot margin: not served
        {"tdMode": "isolated", "ordType": "limit", "px": "50000"},
        {"tdMode": "cash", "ordType": "market"},  # market buy: tgtCcy defaults to quote_ccy
        {"tdMode": "cash", "ordType": "market", "tgtCcy": "quote_ccy"},
    ],
)
async def test_spot_orders_outside_cash_mode_base_sizes_are_refused_on_the_wire(
    fake: FakeOkx, fields: dict[str, str]
) -> None:
    path = "/api/v5/trade/order"
    body = json.dumps({"instId": "BTC-USDT", "side": "buy", "sz": "0.01", "clOrdId": "w1"} | fields)
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + path, data=body, headers=_post_headers(path, body)) as r,
    ):
        answer = await r.json()
    assert answer["code"] == "1" and answer["data"][0]["sCode"] == "51000", answer
    assert not fake.sim.engine.orders


def _sample(name: str) -> dict[str, Any]:
    node = json.loads((FIXTURES / name).read_text(encoding="utf-8"))["data"][0]
    assert isinstance(node, dict)
    return node


async def test_spot_records_carry_every_field_of_the_documented_samples(fake: FakeOkx) -> None:
    async with _client(fake) as client:
        ask = D((await fake.sim.get_order_book(SPOT, 1)).asks[0].price)
        await client.place_order(_ioc("shapespot", SPOT, order_pb2.ORDER_SIDE_BUY, "0.01", str(ask + 50)))
    placed = await fake.sim.get_order(symbol=SPOT, client_order_id="shapespot")
    instrument = await fake._instruments(None, {"instType": "SPOT"})  # type: ignore[arg-type]
    records = {
        "instrument": (instrument[0], _sample("okx_instruments_spot.json")),
        "stream order": (fake.order_push(placed)["data"][0], _sample("okx_ws_orders_spot_ioc.json")),
    }
    for name, (sent, sample) in records.items():
        missing = sorted(set(sample) - set(sent))
        assert not missing, f"okx spot {name}: the fake leaves out {missing}"
        for key, value in sample.items():
            if value is not None and sent[key] is not None:
                assert type(sent[key]) is type(value), f"{name}.{key}: {sent[key]!r} vs {value!r}"
    order = records["stream order"][0]
    assert (order["instType"], order["instId"], order["tdMode"], D(order["sz"])) == (
        "SPOT", "BTC-USDT", "cash", D("0.01")
    )  # fmt: skip
    assert (instrument[0]["instType"], instrument[0]["baseCcy"], instrument[0]["ctVal"]) == (
        "SPOT",
        "BTC",
        "",
    )
