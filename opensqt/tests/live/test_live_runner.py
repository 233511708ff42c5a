"""The page inside the engine process: `opensqt paper` serves /ws and / on its HTTP port (docs/live.md)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from opensqt.app.runner import run_engine
from opensqt.config import ConfigError, default_paper_config, parse_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_paper_run_serves_its_live_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    cfg = default_paper_config()
    run = asyncio.create_task(
        run_engine(cfg, state_path=tmp_path / "p.db", duration=8, plain=True, chart=False, http_port=port)
    )
    kinds: set[str] = set()
    history = 0
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + 6
        ws = None
        while ws is None:
            try:
                ws = await s.ws_connect(f"http://127.0.0.1:{port}/ws")
            except aiohttp.ClientConnectorError:
                assert time.monotonic() < deadline, "the live page never came up"
                await asyncio.sleep(0.1)
        first = json.loads((await ws.receive(timeout=5)).data)
        assert first["type"] == "history"
        history = len(first["data"])
        while not {"orders", "position", "slots", "kline"} <= kinds:
            kinds.add(json.loads((await ws.receive(timeout=5)).data)["type"])
        await ws.close()
    summary = await run
    assert history > 0 and summary.http_port == port
    assert f"live page http://127.0.0.1:{port}/" in capsys.readouterr().err


def test_binding_beyond_loopback_needs_a_live_token() -> None:
    base = "trading: {symbol: BTC-USD, price_interval: 1, order_quantity: 30}\n"
    with pytest.raises(ConfigError, match="live_token"):
        parse_config(base + "http: {host: 0.0.0.0}\n", {})
    parse_config(base + "http: {host: 0.0.0.0, live_token: t}\n", {})
    parse_config(base + "http: {host: 0.0.0.0, live: false}\n", {})
