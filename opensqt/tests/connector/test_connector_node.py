"""Node clients of the Python connector: one hand-assembled on @grpc/grpc-js places an order and reads a
stream, and the cqc npm package's generated clients (@connectrpc/connect, bearer token) read the sim
behind the connector. The contract works across languages."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from cqvx.testing.mock import MockVenue

pytestmark = pytest.mark.timeout(40)

REPO = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).resolve().parent / "node" / "venue_gateway_client.mjs"
GENERATED = (
    REPO / "cqc" / "typescript" / "dist" / "src" / "gen" / "cqc" / "services" / "v1" / "venue_gateway_pb.js"
)


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not GENERATED.exists():
        return "the cqc TypeScript contracts are not built (cqc/typescript/dist)"
    if "GRPC_JS_PATH" not in os.environ and not (REPO / "node_modules" / "@grpc" / "grpc-js").exists():
        return "@grpc/grpc-js is not in the root node_modules (add it to package.json)"
    return None


async def test_node_client_places_an_order_and_reads_a_stream(start_server: Any) -> None:
    # `make test` installs node_modules and builds the contracts first, so in CI a missing piece is a
    # failure; a developer running pytest alone gets a skip that says what to run.
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(f"{missing}; run `make ts-build node`")
    mock = MockVenue("mock")
    server = await start_server(mock)
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        server.address,
        "mock",
        "BTC-USD",
        "3",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            while not any(line.get("subscribed") for line in lines):
                raw = await proc.stdout.readline()
                assert raw, (await proc.stderr.read()).decode() if proc.stderr else "node exited"
                lines.append(json.loads(raw))
            await mock.stream("trades").wait_subscribed()
            for i in range(3):
                await mock.push_trade("BTC-USD", trade_id=f"n{i}", price=f"5000{i}")
            rest, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await mock.aclose()
    lines += [json.loads(x) for x in rest.decode().splitlines() if x.strip()]
    assert lines[0] == {"venues": ["mock"]}
    placed = lines[1]
    assert placed["placed"] == "node-order-1" and placed["orderId"]
    assert mock.calls("place_order")[0]["order"].client_order_id == "node-order-1"
    assert mock.calls("place_order")[0]["order"].price == "50000"
    assert lines[2]["error"] == 3 and lines[2]["kind"] == "invalid_request"  # INVALID_ARGUMENT
    assert "client_order_id" in lines[2]["message"]
    trades = [x for x in lines if "trade" in x]
    assert [(t["sequence"], t["trade"], t["price"]) for t in trades] == [
        (1, "n0", "50000"),
        (2, "n1", "50001"),
        (3, "n2", "50002"),
    ]
    assert lines[-1] == {"done": True}


CQC_CLIENT = Path(__file__).resolve().parent / "node" / "cqc_client.mjs"
CLIENTS = REPO / "cqc" / "typescript" / "dist" / "src" / "clients.js"


def _missing_connect() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not CLIENTS.exists():
        return "the cqc TypeScript clients are not built (cqc/typescript/dist)"
    if not (REPO / "node_modules" / "@connectrpc" / "connect-node").exists():
        return "@connectrpc/connect-node is not in the root node_modules (npm ci)"
    return None


async def test_generated_ts_client_talks_to_the_connector_in_front_of_the_sim(start_server: Any) -> None:
    """The npm package's own client (generated descriptors + connect + its gRPC transport with the
    bearer token) against the real connector serving the sim venue."""
    from cqvx.secrets import Secret
    from cqvx.venues.sim import SimVenue

    missing = _missing_connect()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(f"{missing}; run `make ts-build node`")
    token = "node-client-token"
    async with SimVenue.default(seed=3, tick_interval=0.02) as sim:
        server = await start_server(sim, token=Secret(token))
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(CQC_CLIENT),
            f"http://{server.address}",
            "sim",
            "BTC-USDT",
            token,
            "2",
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(30):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
        expected_balances = {b.asset: b.total for b in await sim.get_balances()}
    lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
    assert lines[0] == {"venues": ["sim"]}
    assert lines[1] == {"health": "sim"}
    assert lines[2] == {"balances": expected_balances}
    assert set(expected_balances) >= {"USDT", "BTC"}
    assert lines[3] == {"refused": "unauthenticated"}
    prices = [x for x in lines if "sequence" in x]
    assert [p["sequence"] for p in prices] == [1, 2]
    assert all(p["symbol"] == "BTC-USDT" and p["last"] for p in prices)
    assert lines[-1] == {"done": True}
