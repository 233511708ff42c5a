"""``opensqt fleet`` as a process's composition root: the authenticated control endpoint, the
``opensqt symbols`` CLI writing the registry of a running fleet, and the lease covering the fleet."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from cqvx.secrets import Secret
from cqvx.testing.waits import until
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.app.multi import run_fleet
from opensqt.cli import _register_plugins, app
from opensqt.config import Config, default_paper_config
from opensqt.engine.fleet import Fleet
from opensqt.engine.lease import LeaseHeld
from opensqt.ui.fleet_view import fleet_rows

BTC, ETH, SOL = "BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"
TOKEN = "s3cret-control-token"


def _sim() -> SimVenue:
    spot = InstrumentSpec(symbol="BTC-USDT", initial_price=Decimal(60000))
    perps = tuple(
        InstrumentSpec(symbol=s, initial_price=p, maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"))
        for s, p in ((BTC, Decimal(60000)), (ETH, Decimal(3000)), (SOL, Decimal(150)))
    )
    sim = SimVenue.default(seed=6, speed=10, instruments=(spot, *perps))
    sim.start()
    return sim


def _config() -> Config:
    cfg = default_paper_config({"OPENSQT_HTTP_PORT": "0"})
    http = cfg.http.model_copy(update={"control_token": Secret(TOKEN), "live": False})
    return cfg.model_copy(update={"http": http})


async def test_control_endpoint_cli_and_lease(tmp_path: Path) -> None:
    sim = _sim()
    cfg = _config()
    state = tmp_path / "fleet.db"
    cfg_file = tmp_path / "fleet.yaml"
    cfg_file.write_text("trading:\n  symbol: BTC-USDT-PERP\n  price_interval: 30\n  order_quantity: 100\n")
    stop = asyncio.Event()
    started: list[tuple[Fleet, int]] = []
    run = asyncio.create_task(
        run_fleet(
            cfg,
            state_path=state,
            client=sim,
            http_port=0,
            ready=lambda f, p: started.append((f, p)),
            stop=stop,
        )
    )
    try:
        await until(lambda: bool(started) or run.done(), timeout=30.0)
        fleet, port = started[0]
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            for method, path in (
                ("GET", "/symbols"),
                ("POST", "/symbols"),
                ("POST", f"/symbols/{BTC}/pause"),
            ):
                async with http.request(method, base + path, headers={"Authorization": "Bearer wrong"}) as r:
                    assert r.status == 401
            body: dict[str, Any] = {"symbol": ETH, "overrides": {"price_interval": "3"}}
            async with http.post(base + "/symbols", json=body, headers=auth) as r:
                assert r.status == 200, await r.text()
            async with http.post(
                base + "/symbols", json={"symbol": SOL, "overrides": {"price_interval": "-1"}}, headers=auth
            ) as r:
                assert r.status == 400  # an invalid config is refused before it is registered
            await until(
                lambda: fleet.runs.get(ETH) is not None and fleet.runs[ETH].state == "running", timeout=30.0
            )
            async with http.post(base + f"/symbols/{ETH}/pause", headers=auth) as r:
                assert r.status == 200 and (await r.json())["state"] == "paused"
            async with http.post(base + "/symbols/NOPE-USDT/pause", headers=auth) as r:
                assert r.status == 404
            async with http.get(base + "/symbols", headers=auth) as r:
                states = {s: v["state"] for s, v in (await r.json())["symbols"].items()}
                assert states == {BTC: "running", ETH: "paused"}
            async with http.get(base + "/status") as r:
                assert set((await r.json())["symbols"]) == {BTC, ETH}
            async with http.get(base + "/metrics") as r:
                assert 'market_maker_symbol_running{symbol="ETH-USDT-PERP"} 0.0' in await r.text()

        # The CLI writes the registry of the running fleet (another connection), which applies it.
        _register_plugins()
        runner = CliRunner()
        common = ["--config", str(cfg_file), "--state", str(state)]
        res = runner.invoke(app, ["symbols", "resume", ETH, *common])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["symbols", "add", SOL, "--set", "price_interval=0.2", *common])
        assert res.exit_code == 0, res.output
        await until(lambda: fleet.runs[ETH].state == "running", timeout=30.0)
        await until(lambda: SOL in fleet.runs and fleet.runs[SOL].state == "running", timeout=30.0)
        res = runner.invoke(app, ["symbols", "list", *common])
        assert res.exit_code == 0 and f"{SOL}\tactive" in res.output
        res = runner.invoke(app, ["symbols", "pause", "NOPE-USDT", *common])
        assert res.exit_code == 2 and "not registered" in res.output
        assert [row[0] for row in fleet_rows(fleet)] == [BTC, ETH, SOL]

        # Remove and cancel-all are DBOS workflows keyed by the request's Idempotency-Key.
        async with aiohttp.ClientSession() as http:
            once = {**auth, "Idempotency-Key": "rm-sol-1"}
            async with http.post(base + f"/symbols/{SOL}/remove", headers=once) as r:
                first = await r.json()
                assert r.status == 200 and first["state"] == "removed", first
            async with http.post(base + f"/symbols/{SOL}/remove", headers=once) as r:
                assert await r.json() == first  # the recorded result: nothing ran twice
            trip = {**auth, "Idempotency-Key": "trip-1"}
            async with http.post(base + "/cancel-all", json={"reason": "test"}, headers=trip) as r:
                out = await r.json()
                assert r.status == 200 and out["paused"] == [BTC, ETH], out
            async with http.post(base + "/cancel-all", headers={**auth, "Idempotency-Key": "bad key!"}) as r:
                assert r.status == 400
        assert {s: r.state for s, r in fleet.runs.items()} == {BTC: "paused", ETH: "paused", SOL: "removed"}

        # The CLI's remove while the fleet owns the account: the registry, then the fleet runs the same
        # remove workflow (in a thread: the command runs its own event loop).
        res = await asyncio.to_thread(runner.invoke, app, ["symbols", "remove", "NOPE-USDT", *common])
        assert res.exit_code == 2 and "not registered" in res.output
        res = await asyncio.to_thread(
            runner.invoke, app, ["symbols", "remove", ETH, "--position", "sell", *common]
        )
        assert res.exit_code == 2 and "--position: 'sell' is not one of keep, close" in res.output, res.output
        # A close cannot travel through the registry to the running fleet: refused, nothing changed.
        res = await asyncio.to_thread(
            runner.invoke, app, ["symbols", "remove", ETH, "--position", "close", *common]
        )
        assert res.exit_code == 2 and "control endpoint" in res.output, res.output
        assert fleet.registry.get(ETH).status == "paused"
        res = await asyncio.to_thread(runner.invoke, app, ["symbols", "remove", ETH, *common])
        assert res.exit_code == 0 and "the running fleet" in res.output, res.output
        await until(lambda: fleet.runs[ETH].state == "removed", timeout=30.0)

        # One owner per account: a second process on the same state is refused.
        with pytest.raises(LeaseHeld, match="owned by another engine"):
            await run_fleet(cfg, state_path=state, client=sim, http_port=0, duration=1)
    finally:
        stop.set()
        final = await run
        await sim.aclose()
    assert set(final["symbols"]) == {BTC, ETH, SOL}


@pytest.mark.parametrize(("durability", "synchronous"), [("fsync", 2), ("process", 1)])
async def test_the_fleet_store_applies_state_durability(
    tmp_path: Path, durability: str, synchronous: int
) -> None:
    # `opensqt fleet` opens its store from the same `state` section as `opensqt run` (docs/engine.md
    # "Durability modes"): SQLite's synchronous level is FULL (2) for fsync and NORMAL (1) for process.
    sim = _sim()
    cfg = _config()
    cfg = cfg.model_copy(update={"state": cfg.state.model_copy(update={"durability": durability})})
    stop = asyncio.Event()
    started: list[Fleet] = []
    run = asyncio.create_task(
        run_fleet(
            cfg, state_path=tmp_path / "fleet.db", client=sim, ready=lambda f, p: started.append(f), stop=stop
        )
    )
    try:
        await until(lambda: bool(started) or run.done(), timeout=30.0)
        store = started[0].store
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == synchronous
    finally:
        stop.set()
        await run
        await sim.aclose()
