"""`opensqt paper` as a real process: a taken HTTP port falls back to an ephemeral one, and SIGINT / SIGTERM
shut it down gracefully (cancel-on-exit honoured, summary printed, chart written, exit status 0)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from opensqt.engine.store import StateStore, sqlite_url

ROOT = Path(__file__).resolve().parents[3]
SYM = "BTC-USDT-PERP"


async def _status(port: int) -> dict[str, object] | None:
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{port}/status", timeout=aiohttp.ClientTimeout(total=2)) as r,
        ):
            body: dict[str, object] = await r.json()
            return body
    except (aiohttp.ClientError, TimeoutError):
        return None


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_paper_survives_a_taken_port_and_shuts_down_on_a_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy_port = taken.getsockname()[1]
    state = tmp_path / "paper.db"
    env = {**os.environ, "CI": "1", "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opensqt.cli", "paper", "--duration", "120", "--state", str(state),
        "--port", str(busy_port), "--speed", "20",
        cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    out = b""
    try:
        port = None
        deadline = time.monotonic() + 40
        while port is None and time.monotonic() < deadline:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=40)
            assert line, out.decode()
            out += line
            m = re.search(rb"using (\d+) instead", line)
            if m:
                port = int(m.group(1))
        assert port is not None and port != busy_port, out.decode()
        # wait until the engine has ticks and live orders (so there is something to cancel on exit)
        while time.monotonic() < deadline:
            st = await _status(port)
            if st and st["price"] is not None and int(str(st["open_orders"])) > 0:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("no orders placed: " + out.decode())
        proc.send_signal(sig)
        rest = await asyncio.wait_for(proc.stdout.read(), timeout=40)
        out += rest
        await proc.wait()
    finally:
        taken.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert f"{sig.name}: shutting down" in text
    assert re.search(r"ran \d+\.\d s: \d+ price ticks", text), text[-2000:]
    assert "anomalies: 0" in text
    png = state.with_suffix(".png")
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart: {png}" in text
    # cancel-on-exit: nothing of ours is left working (every order row ended closed or filled)
    store = StateStore(sqlite_url(state))
    slots = store.load_slots(SYM)
    store.close()
    assert slots and all(s.order is None for s in slots.values()), {k: s.state for k, s in slots.items()}
