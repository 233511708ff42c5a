"""Each ``configs/connector.<venue>.example.yaml`` (bybit, okx, bitget, gate) loads as
``opensqt connector --config`` reads it, and the connector built from it serves that venue: here with
``<VENUE>_REST_URL`` / ``<VENUE>_WS_URL`` pointing at the venue's wire-level fake, reached through gRPC
by a ``RemoteVenue``: REST, and the execution stream over the venue's order channel."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.client import SupportsOrderStream
from cqvx.testing.fake_ccxt.gate import USER_ID
from cqvx.testing.fake_ccxt.harness import FAKES, fake_class
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.venues.ccxt import CcxtClient
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.connector import ConnectorServer, RemoteVenue
from opensqt.connector.settings import load_connector_settings

from .conftest import FAST_DIAL, FAST_STREAM

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def _env(venue: str, rest_url: str | None, ws_url: str | None = None) -> dict[str, str]:
    up = venue.upper()
    env = {f"{up}_API_KEY": "cfg-key", f"{up}_API_SECRET": "cfg-secret", f"{up}_PASSPHRASE": "cfg-pass"}
    env["GATE_UID"] = USER_ID
    if rest_url is not None:
        env[f"{up}_REST_URL"] = rest_url
    if ws_url is not None:
        env[f"{up}_WS_URL"] = ws_url
    return env


@pytest.mark.parametrize("venue", FAKES)
def test_the_example_loads_with_the_venues_own_hosts_by_default(venue: str) -> None:
    settings = load_connector_settings(CONFIGS / f"connector.{venue}.example.yaml", env=_env(venue, None))
    assert {name: kind for name, (kind, _) in settings.venues.items()} == {f"{venue}-perp": venue}
    client = settings.build_venues()[f"{venue}-perp"]
    assert isinstance(client, CcxtClient) and client.venue == venue
    assert "127.0.0.1" not in str(client._ex.urls["api"])  # no override: ccxt's own venue hosts


@pytest.mark.parametrize("venue", FAKES)
async def test_the_example_serves_the_venue_through_the_connector(venue: str) -> None:
    sim = SimVenue(quiet_sim_config(), clock=SimClock())
    async with fake_class(venue)("cfg-key", "cfg-secret", "cfg-pass", sim=sim) as fake:
        path = CONFIGS / f"connector.{venue}.example.yaml"
        settings = load_connector_settings(
            path, overrides={"port": 0}, env=_env(venue, fake.url, fake.ws_url)
        )
        clients = settings.build_venues()
        async with contextlib.AsyncExitStack() as stack:
            for client in clients.values():
                await stack.enter_async_context(client)
            server = ConnectorServer(clients, settings.server, close_venues=False)
            await server.start()
            try:
                remote = await RemoteVenue.connect(
                    server.address, f"{venue}-perp", dial=FAST_DIAL, stream_policy=FAST_STREAM, timeout=5.0
                )
                try:
                    book = await remote.get_order_book("BTC-USDT-PERP", 5)
                    assert book.bids and book.asks
                    coid = "t-cfg1" if venue == "gate" else "cfg1"
                    order = order_pb2.Order(
                        symbol="BTC-USDT-PERP",
                        client_order_id=coid,
                        side=order_pb2.ORDER_SIDE_BUY,
                        order_type=order_pb2.ORDER_TYPE_LIMIT,
                        quantity="0.01",
                        price="50000",
                    )
                    assert isinstance(remote, SupportsOrderStream)  # the connector serves executions
                    stream = remote.subscribe_executions(["BTC-USDT-PERP"])
                    try:
                        await asyncio.wait_for(stream.wait_live(), 10)
                        report = await remote.place_order(order)
                        assert report.order_status == order_pb2.ORDER_STATUS_OPEN
                        async with asyncio.timeout(10):
                            seen = await anext(r async for r in stream if r.client_order_id == coid)
                        assert seen.order_status == order_pb2.ORDER_STATUS_OPEN
                    finally:
                        await stream.aclose()
                    assert fake.venue_order_count(coid) == 1 and fake.bad_signatures == 0
                finally:
                    await remote.aclose()
            finally:
                await server.stop(0)
