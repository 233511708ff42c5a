"""Connector lifecycle: restart and client recovery, health, credential check, auth, TLS, bind policy,
dial retry, graceful shutdown, and the CLI in a real process (SIGKILL, restart, SIGTERM)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqc.services.v1 import venue_gateway_pb2_grpc as gw_grpc
from cqvx.errors import AuthenticationError, Timeout, Unavailable
from cqvx.secrets import Secret
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue
from cqvx.testing.waits import until
from opensqt.connector import (
    SERVICE_NAME,
    ConnectorConfig,
    ConnectorConfigError,
    ConnectorServer,
    ConnectorStartupError,
    DialPolicy,
    GapInfo,
    RemoteVenue,
    check_bind,
)

pytestmark = pytest.mark.timeout(40)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def mock() -> AsyncIterator[MockVenue]:
    venue = MockVenue("mock")
    yield venue
    await venue.aclose()


def _free_port_closed() -> int:
    """A port nothing listens on (bound to 0, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _health(address: str, service: str = "") -> int:
    async with aio.insecure_channel(address) as channel:
        resp = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return int(resp.status)


async def test_server_restart_on_same_port_client_recovers(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    first = await start_server(mock)
    port = first.port
    gaps: list[GapInfo] = []
    remote = await connect(first, on_gap=gaps.append)
    stream = remote.subscribe_trades("BTC-USD")
    reader = asyncio.ensure_future(stream.__anext__())
    await mock.stream("trades").wait_subscribed()
    await mock.push_trade("BTC-USD", trade_id="one")
    assert (await asyncio.wait_for(reader, 5)).trade_id == "one"

    reader = asyncio.ensure_future(stream.__anext__())
    await first.stop(0)
    assert mock.stream("trades").subscriber_count == 0

    async def retrying() -> bool:
        return stream._pending_gap is not None  # saw the loss, re-subscribing

    await until(retrying)  # the client is now retrying against a closed port
    second = await start_server(mock, port=port)
    assert second.port == port
    await mock.stream("trades").wait_subscribed()
    await mock.push_trade("BTC-USD", trade_id="two")
    assert (await asyncio.wait_for(reader, 5)).trade_id == "two"
    assert len(gaps) == 1 and gaps[0].source == "client" and gaps[0].since is not None
    assert stream.reconnects == 1
    assert {b.asset for b in await remote.get_balances()} == {"USD", "BTC"}
    report = await remote.place_order(builders.order(venue="mock"))
    assert report.order_id


async def test_placement_without_connector_answer_is_unresolved(
    mock: MockVenue, start_server: Any, connect: Any
) -> None:
    server = await start_server(mock)
    remote = await connect(server, timeout=0.3)
    await server.stop(0)
    with pytest.raises(Timeout):  # never Unavailable: the engine must look the order up, not resend
        await remote.place_order(builders.order(venue="mock"))
    with pytest.raises((Unavailable, Timeout)):
        await remote.get_balances()


async def test_health_not_serving_while_venue_unreachable(start_server: Any, connect: Any) -> None:
    from cqvx.venues.sim import SimVenue

    async with SimVenue.default(seed=1) as sim:
        server = await start_server(sim)
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        assert await _health(server.address) == serving
        assert await _health(server.address, SERVICE_NAME) == serving
        sim.faults.set_unavailable(True)

        async def down() -> bool:
            return bool(await _health(server.address) == not_serving)

        await until(down)
        assert await _health(server.address, SERVICE_NAME) == not_serving
        assert server.metrics.value("opensqt_connector_venue_up", {"venue": "sim"}) == 0
        remote = await connect(server)
        assert not (await remote.health()).reachable
        sim.faults.set_unavailable(False)

        async def up() -> bool:
            return bool(await _health(server.address) == serving)

        await until(up)


async def test_bad_credentials_fail_start_up(mock: MockVenue) -> None:
    mock.on("get_balances", AuthenticationError("API key rejected", venue="mock", code="401"))
    server = ConnectorServer([mock], None, close_venues=False)
    server.config.port = 0
    with pytest.raises(
        ConnectorStartupError, match=r"credential check for venue 'mock' failed.*API key rejected"
    ):
        await server.start()


async def test_bearer_token_required(mock: MockVenue, start_server: Any, connect: Any) -> None:
    server = await start_server(mock, token=Secret("s3cret-token"))
    with pytest.raises(AuthenticationError):
        await connect(server, token="wrong", dial=DialPolicy(initial=0.01, attempts=5))
    async with aio.insecure_channel(server.address) as channel:
        with pytest.raises(aio.AioRpcError) as info:
            await gw_grpc.VenueGatewayStub(channel).GetBalances(
                gw.GetBalancesRequest(venue="mock"), timeout=5
            )
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(aio.AioRpcError) as info:
            await (
                gw_grpc.VenueGatewayStub(channel)
                .StreamTrades(gw.StreamTradesRequest(venue="mock", symbol="BTC-USD"))
                .read()
            )
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Probes need no token.
    assert await _health(server.address) == health_pb2.HealthCheckResponse.SERVING
    remote = await connect(server, token="s3cret-token")
    assert await remote.get_balances()
    assert (
        server.metrics.value(
            "opensqt_connector_rpcs_total", {"method": "GetBalances", "code": "UNAUTHENTICATED"}
        )
        == 1
    )


def test_non_loopback_bind_needs_tls_and_token() -> None:
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.com"):
        with pytest.raises(ConnectorConfigError, match="TLS"):
            check_bind(host, tls=False, token=True)
        with pytest.raises(ConnectorConfigError, match="bearer token"):
            check_bind(host, tls=True, token=False)
        check_bind(host, tls=True, token=True)
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(host, tls=False, token=False)


async def test_binding_all_interfaces_without_tls_is_refused(mock: MockVenue) -> None:
    server = ConnectorServer([mock], None, close_venues=False)
    server.config.host = "0.0.0.0"
    server.config.port = 0
    with pytest.raises(ConnectorConfigError, match=r"refusing to bind '0\.0\.0\.0'"):
        await server.start()
    assert mock.call_count("get_balances") == 0  # refused before touching the venue


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


async def test_tls_with_token(mock: MockVenue, start_server: Any, connect: Any, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = await start_server(mock, tls_cert=cert, tls_key=key, token=Secret("tok"))
    remote = await connect(server, token="tok", tls_root_cert=cert.read_bytes(), tls_server_name="localhost")
    assert await remote.get_balances()


async def test_dial_gives_up_with_a_clear_error() -> None:
    port = _free_port_closed()
    policy = DialPolicy(initial=0.01, maximum=0.02, attempts=3, attempt_timeout=0.2)
    with pytest.raises(Unavailable, match=rf"127.0.0.1:{port} after 3 attempts"):
        await RemoteVenue.connect(f"127.0.0.1:{port}", dial=policy)


async def test_graceful_stop_finishes_in_flight_calls(mock: MockVenue, connect: Any) -> None:
    started = asyncio.Event()

    async def slow_place(order: Any) -> Any:
        started.set()
        await asyncio.sleep(0.3)  # a slow venue: the stop below must wait for it
        return builders.execution_report(order)

    mock.on("place_order", slow_place)
    server = ConnectorServer([mock], ConnectorConfig(port=0, grace=3.0), close_venues=True)
    await server.start()
    remote = await connect(server)
    in_flight = asyncio.ensure_future(remote.place_order(builders.order(venue="mock")))
    await asyncio.wait_for(started.wait(), 5)  # the call is in flight at the venue
    await server.stop()
    assert (await in_flight).client_order_id  # completed inside the grace period
    assert mock.closed  # venues closed after draining


def _spawn(port: int) -> subprocess.Popen[str]:
    code = (
        "import typer; from opensqt.connector.cli import register; "
        "app = typer.Typer(); register(app); app.command('noop')(lambda: None); app()"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, "connector", "--port", str(port), "--health-interval", "0.2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def _wait_started(proc: subprocess.Popen[str]) -> int:
    loop = asyncio.get_running_loop()
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), 20)
        if not line:
            raise AssertionError(f"connector exited with {proc.wait()}")
        found = re.search(r"connector_started\s+address=127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))


async def test_cli_process_killed_and_restarted_then_sigterm(connect: Any) -> None:
    proc = _spawn(0)
    try:
        port = await _wait_started(proc)
        gaps: list[GapInfo] = []
        remote: Any = await connect(f"127.0.0.1:{port}", on_gap=gaps.append)
        assert remote.venue == "sim"
        prices = remote.subscribe_prices(["BTC-USDT"])
        assert (await asyncio.wait_for(prices.__anext__(), 10)).symbol == "BTC-USDT"
        proc.kill()  # SIGKILL: no goodbye to the client
        proc.wait()
        pending = asyncio.ensure_future(prices.__anext__())
        proc = _spawn(port)
        assert await _wait_started(proc) == port
        assert (await asyncio.wait_for(pending, 15)).symbol == "BTC-USDT"
        assert gaps and gaps[-1].source == "client"
        assert await remote.get_balances()
        await prices.aclose()
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.get_running_loop().run_in_executor(None, proc.communicate)
        assert proc.returncode == 0
        assert "connector_stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
