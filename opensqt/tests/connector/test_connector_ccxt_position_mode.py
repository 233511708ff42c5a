"""A hedge-mode account behind the connector: ``RemoteVenue`` -> gRPC -> connector -> ``CcxtClient``
-> ccxt -> loopback -> a wire-level venue fake.  The adapter's refusal (position_mode.py) crosses gRPC
as the same typed InvalidRequest (not retry-safe), nothing reaches the venue, and the connector's
health reports the hedge mode."""

from __future__ import annotations

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest
from cqvx.secrets import Secret
from cqvx.testing.fake_binance.server import FakeBinance
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.harness import MARKET_TYPES, fake_class
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.testing.waits import until
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.sim import SimClock, SimVenue

from .served import DirectConnector

KEY, SECRET, PASSPHRASE = "k-hedge", "s-hedge", "p-hedge"
PLACE_PATH = {"binance": "/fapi/v1/order", "okx": "/api/v5/trade/order"}


@pytest.mark.parametrize("venue", sorted(PLACE_PATH))
async def test_hedge_mode_refusal_crosses_grpc_typed(venue: str) -> None:
    sim = SimVenue(quiet_sim_config(), clock=SimClock())
    fake: FakeBinance | SimFake = (
        FakeBinance(KEY, SECRET, sim=sim)
        if venue == "binance"
        else fake_class(venue)(KEY, SECRET, PASSPHRASE, sim=sim)
    )
    fake.hedge_mode = True
    await fake.start()
    client = CcxtClient(
        CcxtConfig(
            venue,
            Secret(KEY),
            Secret(SECRET),
            Secret(PASSPHRASE),
            market_types=MARKET_TYPES.get(venue, ()),
            rest_url=fake.url,
            ws_url=fake.ws_url,
            retry_initial_s=0.01,
            retry_max_s=0.05,
            rate_limit=False,
        )
    )
    await client.start()
    connector = DirectConnector(client)
    await connector.start()
    try:
        remote = await connector.connect(venue)
        try:
            order = order_pb2.Order(
                symbol="BTC-USDT-PERP",
                client_order_id="hedgeremote1",
                side=order_pb2.ORDER_SIDE_BUY,
                order_type=order_pb2.ORDER_TYPE_LIMIT,
                quantity="0.01",
                price="50000",
            )
            with pytest.raises(InvalidRequest) as caught:
                await remote.place_order(order)
            assert not caught.value.retry_safe
            assert caught.value.venue == venue and "hedge" in caught.value.message
            assert not fake.requests_to(PLACE_PATH[venue], "POST")
            assert not sim.engine.orders

            async def reports_hedge() -> bool:
                return "hedge" in (await remote.health()).last_error

            await until(reports_hedge, what="connector health naming the hedge mode")
        finally:
            await remote.aclose()
    finally:
        await connector.stop()
        await fake.stop()
