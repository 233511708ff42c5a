"""kill -9 the arbitrage between its legs (and at random moments), >= 10 times, on SQLite and PostgreSQL.

The venue outlives the process: the simulated venue (wall clock, 10x, funding every 60 simulated
seconds) is served by the real connector in this test process, either directly (``sim``) or behind a
wire-level fake through ``CcxtClient`` and unmodified ccxt (``bybit``: Bybit v5 spot ``category=spot`` and
the linear perpetual of one account; ``okx``: OKX v5 ``instType=SPOT`` in ``tdMode=cash`` and the SWAP in
contracts of 0.01 BTC; docs/arbitrage.md "Venues"), or directly in the negative direction on spot margin
(``sim-margin``: a negative rate, the spot SELL borrows, the BUYs repay); ``opensqt arb`` (venue
``remote``) is a child forked by the test zygote (:mod:`cqvx.testing.zygote`: the imports are paid
once, each start costs milliseconds, and the child is otherwise a fresh ``python -m opensqt.cli``).
Positions cycle fast (``max_hold_seconds``), and ``leg_pause`` widens the gap between the spot and the
perp leg, so half of the kills land exactly there: the test waits for a NEW spot order at the venue and
kills at once.  The other half land at a random moment.  A final clean run resumes whatever was left
unfinished and ends.  Then the audit, at the venue and in DBOS:

* both legs or neither: the spot bought by our orders equals the perpetual short (same lot on both;
  on OKX the hedge is whole contracts and an entry sells the spot remainder back, so still equal); on
  margin, the spot sold equals the perpetual long and equals what the account owes (it holds no BTC);
* no client order id twice, every order ours, none left open;
* every workflow of the account finished (SUCCESS), none pending or failed, at least one compensation-free
  entry and exit happened.

PostgreSQL FAILS (never skips) when the server is missing.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy

from cqc.venues.v1 import order_pb2
from cqvx.client import VenueClient
from cqvx.secrets import Secret
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.bybit import FakeBybit
from cqvx.testing.fake_ccxt.okx import FakeOkx
from cqvx.testing.zygote import Child, Zygote
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec
from opensqt.connector.server import ConnectorConfig, ConnectorServer
from opensqt.engine.workflows import system_database_url
from opensqt.model.client_ids import is_our_client_order_id
from opensqt.tests.postgres import PG_URL, require_postgres

ROOT = Path(__file__).resolve().parents[3]
SPOT, PERP = "BTC-USDT", "BTC-USDT-PERP"
KILLS = 10
ALL = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)
# The ccxt venues behind the connector: the fake, and the markets the venue entry loads (spot + perp).
CCXT_VENUES = {"bybit": ("spot", "linear"), "okx": ("spot", "swap")}
# Quote per entry: on OKX the hedge is whole contracts of 0.01 BTC, so an entry must buy more than one
# (300 USDT at 60000 is 0.005 BTC: no contract, the spot sold back, nothing hedged to audit).
NOTIONAL = {"okx": 1500}
# The negative direction on spot margin (the sim lends up to 1 BTC; the account holds none, so every
# spot SELL borrows all it sells).
MARGIN = "\n  negative_mode: margin"
# What ``opensqt arb`` imports, paid once in the zygote instead of once per start.
PRELOAD = (
    "opensqt.cli", "opensqt.arb.cli", "opensqt.arb.runner", "opensqt.arb.status", "opensqt.arb.workflows",
    "opensqt.connector.remote", "opensqt.engine.workflows", "opensqt.engine.lease", "opensqt.live.server",
    "opensqt.live.http", "opensqt.observability.logging", "dbos", "grpc", "sqlalchemy", "psycopg", "aiohttp",
)  # fmt: skip

CONFIG = """
arb:
  pairs: [{{spot: BTC-USDT, perp: BTC-USDT-PERP}}]
  directions: [{direction}]{extra}
  entry_apr: 0.05
  exit_apr: 0.0
  notional: {notional}
  poll_interval: 0.1
  max_hold_seconds: 0.3
  leg_pause: 0.4
  landing_window: 15
venue:
  kind: remote
  address: 127.0.0.1:{port}
state:
  url: "{url}"
  account: {account}
http:
  enabled: true
  port: 0
  live: true
system:
  log_level: WARNING
"""


def _sim(rate: Decimal = Decimal("0.0005")) -> SimVenue:
    spot = InstrumentSpec(symbol=SPOT, initial_price=Decimal(60000))
    perp = InstrumentSpec(
        symbol=PERP, initial_price=Decimal(60000), maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"),
        max_leverage=Decimal(50), follows=SPOT, funding_interval_seconds=60,
        base_funding_rate=rate,
    )  # fmt: skip
    sim = SimVenue.default(
        seed=21, speed=10, instruments=(spot, perp), warmup_seconds=0,
        balances={"USDT": Decimal(1_000_000), "BTC": Decimal(0)},
    )  # fmt: skip
    sim.start()
    return sim


def _args(cfg: Path, state: Path, duration: float) -> list[str]:
    return ["arb", "--config", str(cfg), "--state", str(state), "--duration", str(duration)]


async def _port(child: Child, timeout: float) -> int:
    line = await child.line_containing("opensqt: http://", timeout=timeout)
    return int(line.rsplit(":", 1)[1].split("/")[0])


async def _spot_orders(sim: SimVenue) -> int:
    return len(await sim.get_orders(OrderFilter(symbol=SPOT, statuses=ALL)))


async def _new_spot_order(sim: SimVenue, timeout: float) -> bool:
    """Poll the venue (10 ms) until a spot order more than now exists; False on timeout."""
    seen = await _spot_orders(sim)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _spot_orders(sim) > seen:
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("db", "venue"),
    [
        ("sqlite", "sim"),
        pytest.param("postgres", "sim", marks=pytest.mark.postgres),
        ("sqlite", "bybit"),
        ("sqlite", "okx"),
        ("sqlite", "sim-margin"),
    ],
)
async def test_arb_survives_kill9_between_legs(db: str, venue: str, tmp_path: Path, zygote: Zygote) -> None:
    rng = random.Random(int(os.environ.get("OSQ_KILL9_SEED", "20")))
    account = f"arbk9-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "arb.db"
    url = "" if db == "sqlite" else PG_URL
    if db == "postgres":
        require_postgres()
    negative = venue == "sim-margin"
    sim = _sim(Decimal("-0.0005") if negative else Decimal("0.0005"))
    upstream: VenueClient = sim
    fake: SimFake | None = None
    if venue in CCXT_VENUES:
        fake = (FakeBybit if venue == "bybit" else FakeOkx)("k9-key", "k9-secret", "k9-pass", sim=sim)
        await fake.start()
        upstream = CcxtClient(
            CcxtConfig(
                venue, Secret("k9-key"), Secret("k9-secret"), Secret("k9-pass") if venue == "okx" else None,
                market_types=CCXT_VENUES[venue], rest_url=fake.url, ws_url=fake.ws_url,
                retry_initial_s=0.01, retry_max_s=0.05, rate_limit=False,
            )
        )  # fmt: skip
    server = ConnectorServer([upstream], ConnectorConfig(port=0, validate_credentials=False, grace=0.5))
    port = await server.start()
    cfg = tmp_path / "arb.yaml"
    cfg.write_text(
        CONFIG.format(
            port=port, url=url, account=account, notional=NOTIONAL.get(venue, 300),
            direction="negative" if negative else "positive", extra=MARGIN if negative else "",
        )
    )  # fmt: skip
    between = 0
    env = {**os.environ, "CI": "1", "PYTHONUNBUFFERED": "1"}
    try:
        for cycle in range(KILLS):
            out = tmp_path / f"arb{cycle}.out"
            arb = await zygote.spawn("opensqt.cli", _args(cfg, state, 120), out=out, env=env, cwd=ROOT)
            await _port(arb, timeout=60)
            if cycle % 2 == 0:  # between the legs: a new spot order landed, its perp leg has not
                between += await _new_spot_order(sim, timeout=30)
            else:
                await asyncio.sleep(rng.uniform(0.0, 1.5))  # a position cycles in about a second
            assert await arb.kill() == -signal.SIGKILL, arb.tail()
        final = await zygote.spawn(
            "opensqt.cli", _args(cfg, state, 6), out=tmp_path / "final.out", env=env, cwd=ROOT
        )
        await _observe(await _port(final, timeout=120))
        assert await final.wait(timeout=180) == 0, final.tail(60)
        history = await sim.get_orders(OrderFilter(statuses=ALL))
        positions = await sim.get_positions([PERP])
        btc = next((b for b in await sim.get_balances() if b.asset == "BTC"), None)
    finally:
        await server.stop()
        if fake is not None:
            await upstream.aclose()
            await fake.stop()
        await sim.aclose()

    assert between >= KILLS // 2 - 1, f"only {between} kills landed between the legs"
    cids = [o.client_order_id for o in history]
    assert len(cids) == len(set(cids)), "a client order id was placed twice"
    assert all(is_our_client_order_id(c) for c in cids)
    assert not [o for o in history if o.status in OPEN_STATUSES], "an order of ours left open"
    spot_net = sum(
        (Decimal(o.filled_quantity or "0") * (1 if o.side == order_pb2.ORDER_SIDE_BUY else -1))
        for o in history
        if o.symbol == SPOT
    )
    short = sum(
        (Decimal(p.quantity or "0") for p in positions if p.symbol == PERP and p.side == 2), Decimal(0)
    )
    long = sum(
        (Decimal(p.quantity or "0") for p in positions if p.symbol == PERP and p.side == 1), Decimal(0)
    )
    if negative:
        assert short == 0, "a short perpetual in the negative direction"
        assert -spot_net == long, f"half-open: spot sold {-spot_net} vs perp long {long}"
        owed = Decimal(btc.borrowed or "0") if btc is not None else Decimal(0)
        assert owed == -spot_net, f"owed {owed} BTC, but {-spot_net} sold on margin"
        assert all(o.margin for o in history if o.symbol == SPOT), "a spot leg that was not a margin order"
    else:
        assert long == 0, "a long perpetual in the positive direction"
        assert spot_net == short, f"half-open: spot {spot_net} vs perp short {short}"
    assert sum(1 for o in history if o.symbol == PERP) >= KILLS // 2, "too little trading to prove anything"
    _audit_workflows(system_database_url(url, state), account)


async def _observe(port: int) -> None:
    """The running process shows its pairs: /status JSON, arb_* metrics, an ``arb`` message on /ws."""
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/status") as r:
            status = await r.json()
        assert [p["spot"] for p in status["pairs"]] == [SPOT]
        assert status["pairs"][0]["state"] in ("flat", "entering", "open", "exiting")
        async with http.get(f"{base}/metrics") as r:
            text = await r.text()
        assert 'arb_position_open{pair="BTC-USDT"}' in text and "arb_entries_total" in text
        async with http.ws_connect(f"{base}/ws") as ws:
            msg = await ws.receive_json(timeout=30)
        assert msg["type"] == "arb" and msg["data"]["symbol"] == SPOT
        assert set(msg["data"]) >= {"state", "spotQty", "perpQty", "fundingPnL", "apr", "nextFundingTime"}


def _audit_workflows(system_url: str, account: str) -> None:
    sa_url = system_url.replace("postgresql:", "postgresql+psycopg:", 1)
    engine = sqlalchemy.create_engine(sa_url)
    schema = "dbos." if engine.dialect.name == "postgresql" else ""
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT workflow_uuid, status FROM {schema}workflow_status WHERE workflow_uuid LIKE {mark}",
                (f"arb-%:{account}%",),
            ).all()
    finally:
        engine.dispose()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    assert {r[1] for r in rows} == {"SUCCESS"}, [r for r in rows if r[1] != "SUCCESS"]
    assert sum(1 for i in ids if i.startswith("arb-entry:")) >= KILLS // 2
    assert any(i.startswith("arb-exit:") for i in ids)
