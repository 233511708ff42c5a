"""One owner per account: ``opensqt arb`` takes the account's lease (engine/lease.py) before DBOS resumes
anything; a second process on the same account exits 2 naming the owner, and a process whose lease is
taken over stops deciding (``Fenced``, exit 2)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
import sqlalchemy
from typer.testing import CliRunner

from opensqt.arb.cli import run_arb
from opensqt.arb.config import ArbFile
from opensqt.cli import _register_plugins, app
from opensqt.config import parse_model
from opensqt.engine.lease import AccountLease, Fenced, LeaseHeld
from opensqt.engine.store import sqlite_url

ACCOUNT = "arb-lease-acct"
CONFIG = f"""
arb:
  pairs: [{{spot: BTC-USDT, perp: BTC-USDT-PERP}}]
  directions: [positive]
  entry_apr: 0.05
  exit_apr: 0.0
  notional: 300
  poll_interval: 0.1
venue: {{kind: sim, seed: 3}}
state: {{account: {ACCOUNT}, lease_seconds: 1}}
http: {{enabled: false}}
system: {{log_level: WARNING}}
"""


def _live_owner(state: Path) -> AccountLease:
    """A lease held by a live owner on this host (this test's own pid: never read as dead)."""
    lease = AccountLease(
        sqlalchemy.create_engine(sqlite_url(state)),
        ACCOUNT,
        owner=f"{socket.gethostname()}:{os.getpid()}:other",
    )
    assert lease.try_acquire() == 1
    return lease


async def test_a_second_process_on_the_account_is_refused_before_anything_runs(tmp_path: Path) -> None:
    state = tmp_path / "arb.db"
    owner = _live_owner(state)
    try:
        with pytest.raises(LeaseHeld, match=f"account '{ACCOUNT}' is owned by another engine"):
            await run_arb(parse_model(CONFIG, ArbFile), state=state, duration=5)
        assert not state.with_suffix(".dbos.db").exists(), "DBOS started (it would resume workflows)"
        cfg = tmp_path / "arb.yaml"
        cfg.write_text(CONFIG)
        _register_plugins()
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["arb", "--config", str(cfg), "--state", str(state), "--duration", "5"]
        )
        assert result.exit_code == 2, result.output
        assert "owned by another engine" in result.output and "other" in result.output
    finally:
        owner.engine.dispose()


async def test_a_process_whose_lease_is_taken_over_stops_fenced(tmp_path: Path) -> None:
    state = tmp_path / "arb.db"
    task = asyncio.create_task(run_arb(parse_model(CONFIG, ArbFile), state=state, duration=60))
    engine = sqlalchemy.create_engine(sqlite_url(state))
    try:
        thief = AccountLease(engine, ACCOUNT, owner=f"{socket.gethostname()}:{os.getpid()}:thief", ttl=60)
        for _ in range(600):  # until the arb holds the lease
            if (cur := await asyncio.to_thread(thief.current)) is not None and cur.expires > 0:
                break
            await asyncio.sleep(0.05)
        # Pause-past-expiry, compressed: the row is handed to another owner with a higher token.
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.update(thief.table)
                .where(thief.table.c.account == ACCOUNT)
                .values(owner=thief.owner, token=thief.table.c.token + 1, expires=1e12)
            )
        with pytest.raises(Fenced, match="taken over"):
            await asyncio.wait_for(task, timeout=60)
        cur = thief.current()
        assert cur is not None and cur.owner == thief.owner, (
            "the fenced process must not release or retake it"
        )
    finally:
        if not task.done():
            task.cancel()
        engine.dispose()
