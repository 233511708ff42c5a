"""kill -9 in the middle of a run, restart, and check against the venue's order history.

Design: the venue must outlive the killed engine, so it runs OUT of the engine process: the simulated
venue (wall clock, 10x speed) is served by the real opensqt connector (gRPC) inside this test process,
and the engine is a real process (``python -m opensqt.cli run`` with ``venue.kind: remote``), forked by
the test zygote (:mod:`cqvx.testing.zygote`: the imports are paid once for both starts).  The
sim keeps trading (and filling our resting orders) while the engine is dead; the restarted engine must
adopt those orders and fills by client order id.  At the end the venue's complete order history is
compared with the engine's state store: every venue order carries a client order id the engine
recorded as an intent BEFORE placing it, no client order id occurs twice, and each order's filled
quantity equals the sum of the fills the engine recorded for it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from cqc.venues.v1 import order_pb2
from cqvx.testing.zygote import Child, Zygote
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from cqvx.venues.sim import SimVenue
from opensqt.connector.server import ConnectorConfig, ConnectorServer
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.model.slots import is_our_client_order_id

SYM = "BTC-USDT-PERP"
ROOT = Path(__file__).resolve().parents[3]
# What ``opensqt run`` imports (also lazily), paid once in the zygote instead of once per start.
PRELOAD = (
    "opensqt.cli", "opensqt.connector.cli", "opensqt.live.cli", "opensqt.app.fleet_cli", "opensqt.arb.cli",
    "opensqt.app.runner", "opensqt.engine.lease", "opensqt.engine.workflows", "opensqt.risk.startup",
    "opensqt.connector.remote", "opensqt.connector.venue", "opensqt.observability.logging",
    "cqvx.venues.registry", "dbos", "grpc", "sqlalchemy", "aiohttp",
)  # fmt: skip

CONFIG = """
trading:
  symbol: BTC-USDT-PERP
  price_interval: 10
  order_quantity: 100
  min_order_value: 5
  buy_window_size: 6
  sell_window_size: 6
  position_safety_check: 1
venue:
  kind: remote
  address: 127.0.0.1:{port}
  fee_rate: 0
http:
  enabled: false
engine:
  price_send_interval: 0.02
  reconcile_interval: 1
  # The time budget of this setup (docs/engine.md "Landing window"): the sim answers in process behind
  # the connector, with no transport retries, so a request can act at most call_deadline +
  # request_lifetime after it was sent.  Shutdown waits up to one landing window for an unresolved
  # placement to land, so the default 60 s would outlast the restarted run.
  call_deadline: 2
  request_lifetime: 3
  landing_window: 8
system:
  cancel_on_exit: true
  log_level: WARNING
state:
  durability: {durability}
"""


async def _spawn(zygote: Zygote, cfg: Path, state: Path, duration: float, out: Path) -> Child:
    env = {**os.environ, "CI": "1", "PYTHONUNBUFFERED": "1"}
    args = ["run", "--config", str(cfg), "--state", str(state), "--duration", str(duration), "--plain"]
    return await zygote.spawn("opensqt.cli", args, out=out, env=env, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.timeout(120)
# "process" (SQLite synchronous=NORMAL) skips the fsync per commit: a kill -9 of the engine must still
# lose no intent, since the committed WAL frames are in the OS page cache (docs/engine.md "Durability
# modes"); the venue-history checks below fail on any venue order whose intent the store lost.
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("durability", ["fsync", "process"])
async def test_kill9_restart_places_nothing_twice_and_loses_no_fill(
    tmp_path: Path, zygote: Zygote, durability: str
) -> None:
    sim = SimVenue.default(seed=5, speed=10)
    sim.start()
    server = ConnectorServer([sim], ConnectorConfig(port=0, validate_credentials=False, grace=0.5))
    port = await server.start()
    cfg = tmp_path / "grid.yaml"
    cfg.write_text(CONFIG.format(port=port, durability=durability))
    state = tmp_path / "state.db"
    all_statuses = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)
    children: list[Child] = []
    try:
        first = await _spawn(zygote, cfg, state, 60, tmp_path / "first.out")
        children.append(first)
        # Let it place orders and collect at least one fill, then kill -9 at an arbitrary moment.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            orders = await sim.get_orders(OrderFilter(symbol=SYM, statuses=all_statuses))
            if any(Decimal(o.filled_quantity or "0") > 0 for o in orders) and len(orders) >= 6:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.37)
        await first.kill()
        assert first.returncode == -signal.SIGKILL
        placed_before = len(await sim.get_orders(OrderFilter(symbol=SYM, statuses=all_statuses)))
        assert placed_before >= 6

        await asyncio.sleep(2.0)  # the market keeps moving (and filling) while the engine is dead

        second = await _spawn(zygote, cfg, state, 6, tmp_path / "second.out")
        children.append(second)
        await second.wait(timeout=60)
        out = second.text()
        assert second.returncode == 0, out[-3000:]
        assert "anomalies: 0" in out, out[-3000:]

        history = await sim.get_orders(OrderFilter(symbol=SYM, statuses=all_statuses))
    finally:
        for child in children:  # nothing the test started outlives it
            if child.returncode is None:
                await child.kill()
        await server.stop()
        await sim.aclose()

    store = StateStore(sqlite_url(state))
    ours = {r.client_order_id: r for r in store.load_orders(SYM)}
    fills = store.load_fills(SYM)
    store.close()
    cids = [o.client_order_id for o in history]
    assert len(cids) == len(set(cids)), "a client order id was placed twice"
    assert all(is_our_client_order_id(c) and c in ours for c in cids), (
        "a venue order without a recorded intent"
    )
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills:
        filled[f.client_order_id] += f.quantity
    assert len({f.fill_key for f in fills}) == len(fills)
    missing = {
        o.client_order_id: (o.filled_quantity, filled.get(o.client_order_id))
        for o in history
        if Decimal(o.filled_quantity or "0") != filled.get(o.client_order_id, Decimal(0))
    }
    assert not missing, f"fills not accounted for: {missing}"
    assert sum(1 for o in history if Decimal(o.filled_quantity or "0") > 0) >= 1
    # cancel_on_exit: nothing of ours is left working at the venue
    assert not [o for o in history if o.status == order_pb2.ORDER_STATUS_OPEN]
