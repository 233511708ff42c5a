"""Overload, chained connectors and TLS + token for the engine (issue 11).

* more concurrent calls than ``connector.max_concurrent_calls`` -> RESOURCE_EXHAUSTED at once;
* the ``remote`` venue type: a connector fronting another connector (the upstream keeps the venue);
* ``opensqt run``'s way to a connector (:func:`opensqt.app.runner.build_client`) over TLS with a token,
  against a real TLS connector with a self-signed certificate made here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc import aio

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqc.venues.v1 import order_pb2
from cqvx.secrets import Secret
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.registry import registry
from cqvx.venues.sim import SimClock, SimVenue
from opensqt.config import parse_config
from opensqt.connector import ConnectorServer, LazyRemoteVenue
from opensqt.connector.errors import from_grpc, venue_error_detail

from .conftest import fast_config

ROOT = Path(__file__).resolve().parents[3]


def _sim_clock(sim: SimVenue) -> SimClock:
    assert isinstance(sim.clock, SimClock)
    return sim.clock


async def test_more_concurrent_calls_than_the_limit_get_resource_exhausted(start_server: Any) -> None:
    sim = SimVenue.default(seed=1, clock=SimClock(), warmup_seconds=0)
    server = await start_server(sim, max_concurrent_calls=2)
    sim.faults.latency = 5.0  # every call waits 5 s on the sim's clock, which only the test moves
    async with aio.insecure_channel(server.address) as channel:
        stub = gw_grpc.VenueGatewayStub(channel)
        slow = [
            asyncio.ensure_future(stub.GetBalances(gw.GetBalancesRequest(venue="sim"), timeout=20))
            for _ in range(2)
        ]
        deadline = time.monotonic() + 10
        while _sim_clock(sim).next_wakeup_ns() is None or len(_sim_clock(sim)._sleepers) < 2:
            assert time.monotonic() < deadline, "the two slow calls never reached the venue"
            await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(aio.AioRpcError) as info:
            await stub.GetBalances(gw.GetBalancesRequest(venue="sim"), timeout=20)
        assert time.monotonic() - started < 5  # refused at once, not queued behind the slow ones
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_concurrent_calls 2" in (info.value.details() or "")
        trailers = list(info.value.trailing_metadata() or ())
        err = from_grpc(info.value.code(), info.value.details(), trailers)
        assert err.retry_safe and type(err).__name__ == "RateLimited"
        assert venue_error_detail(trailers) is not None
        await sim.run_for(5)
        assert all(r.balances for r in await asyncio.gather(*slow))
        # capacity is back
        sim.faults.latency = 0
        assert (await stub.GetBalances(gw.GetBalancesRequest(venue="sim"), timeout=20)).balances
    await sim.aclose()


def test_max_concurrent_calls_is_validated() -> None:
    with pytest.raises(ValueError, match="max_concurrent_calls"):
        fast_config(max_concurrent_calls=0)


async def test_a_connector_can_front_another_connector(start_server: Any, connect: Any) -> None:
    sim = SimVenue.default(seed=2, speed=1, warmup_seconds=0)
    upstream = await start_server(sim, token=Secret("up-token"))
    section = registry.parse(
        "remote", {"address": upstream.address, "venue": "sim", "token": "up-token", "timeout": 5}
    )
    front = registry.build("remote", section)
    assert isinstance(front, LazyRemoteVenue)
    async with front:
        server = ConnectorServer({"sim": front}, fast_config(), close_venues=False)
        await server.start()
        try:
            remote = await connect(server, "sim")
            placed = await remote.place_order(
                order_pb2.Order(
                    client_order_id="via-front",
                    symbol="BTC-USDT",
                    side=order_pb2.ORDER_SIDE_BUY,
                    order_type=order_pb2.ORDER_TYPE_LIMIT,
                    quantity="0.001",
                    price="50000",
                )
            )
            assert placed.client_order_id == "via-front"
            # The order lives at the venue behind the upstream, not in the front connector.
            assert (await sim.get_order(client_order_id="via-front")).order_id == placed.order_id
        finally:
            await server.stop(0)
    await sim.aclose()


def test_remote_section_is_validated_and_keeps_the_token_secret() -> None:
    from cqvx.venues.registry import VenueConfigError

    with pytest.raises(VenueConfigError, match="address"):
        registry.parse("remote", {"venue": "sim"})
    section = registry.parse("remote", {"address": "127.0.0.1:1", "token": "s3cret"})
    assert "s3cret" not in repr(section) and "s3cret" not in str(section.model_dump())


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_run_reaches_a_tls_connector_with_a_token(start_server: Any, tmp_path: Path) -> None:
    from opensqt.app.runner import build_client

    sim = SimVenue.default(seed=3, speed=1, warmup_seconds=0)
    cert, key = _self_signed(tmp_path)
    server = await start_server(sim, tls_cert=cert, tls_key=key, token=Secret("engine-token"))
    token_file = tmp_path / "token"
    token_file.write_text("engine-token\n")
    text = (
        "trading:\n  symbol: BTC-USDT-PERP\n  price_interval: 10\n  order_quantity: 10\n"
        f"venue:\n  kind: remote\n  address: {server.address}\n  tls_root_cert: {cert}\n"
        f"  tls_server_name: localhost\n  token_file: {token_file}\n"
    )
    client = await build_client(parse_config(text))
    try:
        assert any(Decimal(b.total) > 0 for b in await client.get_balances())
    finally:
        await client.aclose()
    # A wrong token is refused (and the CLI turns that into one line, see test_cli_errors.py).
    token_file.write_text("wrong")
    from cqvx.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        await build_client(parse_config(text))
    await sim.aclose()


async def _opensqt(*args: str) -> tuple[int, str, str]:
    import os
    import sys

    env = {**os.environ, "CI": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("OPENSQT_CONNECTOR_TOKEN", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opensqt.cli", *args, cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.slow
async def test_opensqt_run_over_tls_with_a_token_and_a_clean_refusal(
    start_server: Any, tmp_path: Path
) -> None:
    sim = SimVenue.default(seed=4, speed=10)
    sim.start()
    cert, key = _self_signed(tmp_path)
    server = await start_server(sim, tls_cert=cert, tls_key=key, token=Secret("engine-token"))
    token_file = tmp_path / "token"
    token_file.write_text("engine-token\n")
    cfg = tmp_path / "grid.yaml"
    cfg.write_text(
        "trading:\n  symbol: BTC-USDT-PERP\n  price_interval: 10\n  order_quantity: 100\n"
        "  min_order_value: 5\n  buy_window_size: 3\n  sell_window_size: 3\n  position_safety_check: 1\n"
        f"venue:\n  kind: remote\n  address: {server.address}\n  fee_rate: 0\n  tls_root_cert: {cert}\n"
        f"  tls_server_name: localhost\n  token_file: {token_file}\n"
        "http:\n  enabled: false\nsystem:\n  log_level: WARNING\n"
    )
    rc, out, err = await _opensqt("run", "--config", str(cfg), "--duration", "3", "--plain",
                                  "--state", str(tmp_path / "s.db"))  # fmt: skip
    assert rc == 0, out[-2000:] + err[-2000:]
    assert "anomalies: 0" in out
    everything = OrderFilter(statuses=TERMINAL_STATUSES | OPEN_STATUSES)
    assert await sim.get_orders(everything)  # it traded through the TLS connector
    token_file.write_text("wrong-token\n")
    rc, out, err = await _opensqt("run", "--config", str(cfg), "--duration", "3", "--plain",
                                  "--state", str(tmp_path / "s2.db"))  # fmt: skip
    assert rc == 2, out[-2000:] + err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("opensqt: venue:") and "Traceback" not in err, err
    assert "wrong-token" not in err + out
    await sim.aclose()
