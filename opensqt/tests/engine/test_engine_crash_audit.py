"""The crash-and-fault audit (issue 11): engine and connectors as processes, a slow venue, kills, cuts.

Layout (every arrow a gRPC hop, every box its own process except the test)::

    engine (opensqt run) --> front connector B (venue type "remote") --> venue connector A (sim)
                |
                +--> PostgreSQL 127.0.0.1:5432/test (own table prefix, own application_name)

* A serves the simulated venue with standing faults from its YAML: every 8th placement is acknowledged
  (and the order created) 12 real seconds later (``slow_ack``: 120 venue seconds at speed 10).  A
  lookup before that says NotFound, the engine's 10 s deadline has passed, and the order lands anyway.
* A seeded schedule of faults runs against the live grid: engine SIGKILL + restart, front-connector
  SIGKILL + restart (the venue survives), and ``pg_terminate_backend`` on the engine's store
  connections (matched by ``application_name``, so other users of the database are untouched).
* Then a last engine run shuts down cleanly (``cancel_on_exit``), the landing window passes, and the
  venue's FULL order history (read from A directly) is audited against the store by :func:`audit`:
  no client order id twice, no level doubled (two live orders at one price and side at once), no venue
  order without a recorded intent, every fill recorded, positions equal, nothing of ours left working,
  and no slot stuck in a transient state beyond :data:`STUCK_BOUND` seconds of one engine run's uptime
  (the engine's landing window + reconcile interval + :data:`STUCK_MARGIN`).
* Finally A is killed (the venue is lost: a fresh sim comes back on the same port) and the engine is
  started once more: if the store holds a position the fresh venue does not, the engine must stay
  paused (place nothing) and say why.

:func:`audit` is a pure function over the history and the store; ``test_audit_catches_*`` feed it
doctored histories so a green run means something.  Runtime: about 2.5 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import order_pb2
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES, OrderFilter
from opensqt.config import parse_config
from opensqt.connector.remote import DialPolicy, RemoteVenue
from opensqt.engine.store import FillRow, OrderRow, StateStore
from opensqt.model.client_ids import client_order_id, is_our_client_order_id
from opensqt.tests.postgres import PG_URL

SYM = "BTC-USDT-PERP"
ROOT = Path(__file__).resolve().parents[3]
SEED = 11
SPEED = 10
SLOW_ACK_EVERY = 8
SLOW_ACK_REAL_SECONDS = 12.0
FAULT_PHASE_SECONDS = 75.0
# Seconds (engine uptime) beyond the landing window + one reconcile interval that resolving a transient
# slot may take on a loaded machine: the lookups, a store write retried after a cut, the 0.5 s sampling.
STUCK_MARGIN = 10.0
TRANSIENT = frozenset({"PENDING", "CANCEL_REQUESTED", "UNRESOLVED"})
ALL_STATUSES = frozenset(TERMINAL_STATUSES | OPEN_STATUSES)

VENUE_YAML = """
connector:
  port: {port}
  validate_credentials: false
  grace: 0.5
venues:
  sim:
    type: sim
    seed: {seed}
    speed: {speed}
    faults:
      slow_ack: {{every: {every}, seconds: {ack_seconds}}}
"""

FRONT_YAML = """
connector:
  port: {port}
  validate_credentials: false
  grace: 0.5
venues:
  sim: {{type: remote, address: "127.0.0.1:{upstream}", venue: sim, timeout: 30}}
"""

ENGINE_YAML = """
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
state:
  url: "{url}"
  table_prefix: {prefix}
http:
  enabled: false
engine:
  price_send_interval: 0.02
  reconcile_interval: 1
  # The time budget (docs/engine.md "Landing window") of this setup: the engine's deadline 10 s; the
  # front connector finishes a placement within its upstream timeout (30 s from the send, so 20 s
  # after the deadline); venue A creates a slow-acked order 12 s after it arrives, well inside.
  call_deadline: 10
  request_lifetime: 20
  landing_window: 30
system:
  cancel_on_exit: true
  log_level: WARNING
"""

# A slot may sit in PENDING / CANCEL_REQUESTED / UNRESOLVED this long (seconds of engine uptime since the
# engine last started: a restart cannot know when an in-flight request was sent, so its landing window
# starts again) before the reconciler must have resolved it.  Derived from the engine's config.
_BUDGET = parse_config(ENGINE_YAML.format(port=1, url="sqlite://", prefix="x_"), {}).engine
STUCK_BOUND = float(_BUDGET.effective_landing_window + _BUDGET.reconcile_interval) + STUCK_MARGIN


# -- the audit (pure) ---------------------------------------------------------------------------------


@dataclass
class StuckSample:
    level: int
    state: str
    client_order_id: str
    engine_seconds: float  # engine uptime spent in this state with this order


@dataclass
class Evidence:
    history: Sequence[order_pb2.Order]
    store_orders: Sequence[OrderRow]
    store_fills: Sequence[FillRow]
    venue_position: Decimal  # signed
    stuck: Sequence[StuckSample] = ()
    expect_nothing_open: bool = True


@dataclass
class Findings:
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, what: str) -> None:
        self.problems[kind].append(what)

    def __bool__(self) -> bool:
        return any(self.problems.values())

    def summary(self) -> str:
        return "; ".join(f"{k}: {len(v)} ({', '.join(v[:3])})" for k, v in sorted(self.problems.items()) if v)


def _ns(ts: object) -> int:
    seconds = int(getattr(ts, "seconds", 0))
    nanos = int(getattr(ts, "nanos", 0))
    return seconds * 1_000_000_000 + nanos


def audit(ev: Evidence) -> Findings:
    """Everything the venue did with our orders, checked against what the store recorded."""
    found = Findings()
    ours = {r.client_order_id: r for r in ev.store_orders}
    seen: set[str] = set()
    for o in ev.history:
        cid = o.client_order_id
        if cid in seen:
            found.add("cid_twice", cid)
        seen.add(cid)
        if not is_our_client_order_id(cid) or cid not in ours:
            found.add("no_intent", cid or o.order_id)
    # no level doubled: two live orders at one (side, price) at the same moment
    by_level: dict[tuple[int, Decimal], list[tuple[int, int, str]]] = defaultdict(list)
    for o in ev.history:
        start = _ns(o.created_at)
        end = _ns(o.updated_at) if o.status in TERMINAL_STATUSES else 1 << 62
        by_level[(o.side, Decimal(o.price or "0"))].append((start, end, o.client_order_id))
    for (side, price), spans in by_level.items():
        spans.sort()
        live_until, live_cid = -1, ""
        for start, end, cid in spans:
            if start < live_until:
                found.add("level_doubled", f"{side}@{price}: {live_cid} and {cid}")
            if end > live_until:
                live_until, live_cid = end, cid
    # every fill recorded, once
    recorded: dict[str, Decimal] = defaultdict(Decimal)
    for f in ev.store_fills:
        recorded[f.client_order_id] += f.quantity
    if len({f.fill_key for f in ev.store_fills}) != len(ev.store_fills):
        found.add("fill_twice", "duplicate fill keys in the store")
    for o in ev.history:
        venue_filled = Decimal(o.filled_quantity or "0")
        if venue_filled != recorded.get(o.client_order_id, Decimal(0)):
            row = ours.get(o.client_order_id)
            found.add(
                "fill_missing",
                f"{o.client_order_id} (store: {row.status if row else 'no row'}, venue: "
                f"{order_pb2.OrderStatus.Name(o.status)}): venue filled {venue_filled}, "
                f"store {recorded.get(o.client_order_id, Decimal(0))}",
            )
    # positions equal
    sides = {o.client_order_id: o.side for o in ev.history}
    store_position = sum(
        (f.quantity if sides.get(f.client_order_id, f.side) == order_pb2.ORDER_SIDE_BUY else -f.quantity)
        for f in ev.store_fills
    ) or Decimal(0)
    if store_position != ev.venue_position:
        found.add("position", f"venue {ev.venue_position} store {store_position}")
    if ev.expect_nothing_open:
        for o in ev.history:
            if o.status in OPEN_STATUSES:
                found.add("left_open", o.client_order_id)
    for s in ev.stuck:
        if s.engine_seconds > STUCK_BOUND:
            found.add("slot_stuck", f"level {s.level} {s.state} {s.client_order_id} {s.engine_seconds:.0f}s")
    return found


def signed_position(positions: Iterable[position_pb2.Position]) -> Decimal:
    total = Decimal(0)
    for p in positions:
        if p.symbol != SYM:
            continue
        q = Decimal(p.quantity or "0")
        total += -q if p.side == position_pb2.POSITION_SIDE_SHORT else q
    return total


# -- the audit can fail -----------------------------------------------------------------------------------


def _order(
    cid: str,
    *,
    side: int = order_pb2.ORDER_SIDE_BUY,
    price: str = "100",
    filled: str = "0",
    status: int = order_pb2.ORDER_STATUS_CANCELLED,
    created: int = 0,
    updated: int = 10,
) -> order_pb2.Order:
    o = order_pb2.Order(
        client_order_id=cid, order_id=f"v-{cid}-{created}", symbol=SYM, side=side, price=price,  # type: ignore[arg-type]
        quantity="1", filled_quantity=filled, status=status,  # type: ignore[arg-type]
    )  # fmt: skip
    o.created_at.seconds = created
    o.updated_at.seconds = updated
    return o


def _row(cid: str, level: int = 1) -> OrderRow:
    return OrderRow(cid, SYM, level, order_pb2.ORDER_SIDE_BUY, Decimal(100), Decimal(1), 0, "closed")


def _fill(cid: str, qty: str, key: str | None = None) -> FillRow:
    return FillRow(key or f"{cid}@{qty}", cid, SYM, 1, order_pb2.ORDER_SIDE_BUY, Decimal(100), Decimal(qty),
                   Decimal(0), Decimal(0), 0.0)  # fmt: skip


def _cid(n: int) -> str:
    return client_order_id("audit|test|1", n, order_pb2.ORDER_SIDE_BUY, 0)


def test_audit_passes_a_clean_history() -> None:
    a, b = _cid(1), _cid(2)
    ev = Evidence(
        [_order(a, filled="1", status=order_pb2.ORDER_STATUS_FILLED), _order(b, created=10, updated=20)],
        [_row(a), _row(b)], [_fill(a, "1")], Decimal(1),
    )  # fmt: skip
    assert not audit(ev), audit(ev).summary()


@pytest.mark.parametrize(
    "doctor, kind",
    [
        ("cid_twice", "cid_twice"),
        ("no_intent", "no_intent"),
        ("doubled", "level_doubled"),
        ("fill_missing", "fill_missing"),
        ("position", "position"),
        ("left_open", "left_open"),
        ("stuck", "slot_stuck"),
    ],
)
def test_audit_catches_a_doctored_history(doctor: str, kind: str) -> None:
    a, b = _cid(1), _cid(2)
    history = [_order(a, filled="1", status=order_pb2.ORDER_STATUS_FILLED), _order(b, created=10, updated=20)]
    rows, fills, position, stuck = [_row(a), _row(b)], [_fill(a, "1")], Decimal(1), []
    if doctor == "cid_twice":
        history.append(_order(b, created=30, updated=40))
    elif doctor == "no_intent":
        history.append(_order("manual-1", created=30, updated=40))
    elif doctor == "doubled":  # b placed again at the same level while the first b' was still live
        history.append(_order(_cid(3), created=15, updated=25))
        rows.append(_row(_cid(3)))
    elif doctor == "fill_missing":
        history[1] = _order(b, created=10, updated=20, filled="0.5")
    elif doctor == "position":
        position = Decimal(2)
    elif doctor == "left_open":
        history[1] = _order(b, created=10, updated=20, status=order_pb2.ORDER_STATUS_OPEN)
    elif doctor == "stuck":
        stuck = [StuckSample(3, "PENDING", b, STUCK_BOUND + 1)]
    found = audit(Evidence(history, rows, fills, position, stuck))
    assert found.problems.get(kind), (doctor, found.summary())


# -- the harness ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Harness:
    """The processes, the fault schedule and the evidence collection."""

    def __init__(self, tmp: Path, url: str, prefix: str, app_name: str) -> None:
        self.tmp = tmp
        self.url = url
        self.prefix = prefix
        self.app_name = app_name
        self.venue_port = _free_port()
        self.front_port = _free_port()
        self.venue: asyncio.subprocess.Process | None = None
        self.front: asyncio.subprocess.Process | None = None
        self.engine: asyncio.subprocess.Process | None = None
        self.engine_runs = 0
        self.engine_outputs: list[bytes] = []
        self.events: list[str] = []
        self.db = create_engine(PG_URL, pool_pre_ping=True)
        self._stuck: dict[tuple[int, int, str, str], float] = {}  # (engine run, level, state, cid)
        self._sampling = True
        (tmp / "venue.yaml").write_text(
            VENUE_YAML.format(
                port=self.venue_port,
                seed=SEED,
                speed=SPEED,
                every=SLOW_ACK_EVERY,
                ack_seconds=SLOW_ACK_REAL_SECONDS * SPEED,
            )
        )
        (tmp / "front.yaml").write_text(FRONT_YAML.format(port=self.front_port, upstream=self.venue_port))
        (tmp / "engine.yaml").write_text(ENGINE_YAML.format(port=self.front_port, url=url, prefix=prefix))

    async def _spawn(self, *args: str) -> asyncio.subprocess.Process:
        env = {**os.environ, "CI": "1", "PYTHONUNBUFFERED": "1"}
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opensqt.cli", *args, cwd=str(ROOT), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def _ready(self, port: int) -> None:
        client = await RemoteVenue.connect(
            f"127.0.0.1:{port}",
            "sim",
            dial=DialPolicy(initial=0.1, maximum=0.5, attempts=60, attempt_timeout=2),
        )
        await client.aclose()

    async def start_venue(self) -> None:
        self.venue = await self._spawn("connector", "--config", str(self.tmp / "venue.yaml"))
        await self._ready(self.venue_port)

    async def start_front(self) -> None:
        self.front = await self._spawn("connector", "--config", str(self.tmp / "front.yaml"))
        await self._ready(self.front_port)

    async def start_engine(self, duration: float) -> None:
        self.engine_runs += 1
        self.engine = await self._spawn(
            "run", "--config", str(self.tmp / "engine.yaml"), "--duration", str(duration), "--plain",
            "--state", str(self.tmp / "unused.db"),
        )  # fmt: skip

    @staticmethod
    async def kill(proc: asyncio.subprocess.Process | None) -> bytes:
        if proc is None or proc.returncode is not None:
            return b""
        proc.send_signal(signal.SIGKILL)
        out, _ = await proc.communicate()
        return out

    async def kill_engine(self) -> None:
        self.engine_outputs.append(await self.kill(self.engine))
        self.engine = None

    def engine_alive(self) -> bool:
        return self.engine is not None and self.engine.returncode is None

    def cut_store(self) -> int:
        with self.db.connect() as conn:
            cut = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :app AND pid <> pg_backend_pid()"
                ),
                {"app": self.app_name},
            ).scalar_one()
        return int(cut or 0)

    async def sample_slots(self) -> None:
        """Engine uptime each (level, transient state, order) has lasted in one engine run (a restart
        starts the landing window again); polled every 0.5 s."""
        last = time.monotonic()
        while self._sampling:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            dt, last = now - last, now
            if not self.engine_alive():
                continue
            with contextlib.suppress(Exception):  # the table appears with the first engine run
                with self.db.connect() as conn:
                    rows = conn.execute(
                        text(f"SELECT level, state, cid FROM {self.prefix}slots WHERE symbol = :s"),
                        {"s": SYM},
                    ).all()
                for level, state, cid in rows:
                    if state in TRANSIENT:
                        key = (self.engine_runs, int(level), str(state), str(cid or ""))
                        self._stuck[key] = self._stuck.get(key, 0.0) + dt

    def stuck(self) -> list[StuckSample]:
        return [StuckSample(lv, st, cid, secs) for (_run, lv, st, cid), secs in self._stuck.items()]

    async def venue_client(self) -> RemoteVenue:
        return await RemoteVenue.connect(
            f"127.0.0.1:{self.venue_port}", "sim", dial=DialPolicy(initial=0.1, maximum=0.5, attempts=20)
        )

    async def close(self) -> None:
        self._sampling = False
        for proc in (self.engine, self.front, self.venue):
            await self.kill(proc)
        self.db.dispose()


def _drop_tables(url: str, prefix: str) -> None:
    db = create_engine(url)
    with db.begin() as conn:
        for name in ("fills", "orders", "slots", "meta"):
            conn.execute(text(f"DROP TABLE IF EXISTS {prefix}{name}"))
    db.dispose()


async def _wait_for_orders(venue: RemoteVenue, count: int, *, within: float) -> None:
    deadline = time.monotonic() + within
    for _ in range(int(within / 0.25)):
        if len(await venue.get_orders(OrderFilter(symbol=SYM, statuses=ALL_STATUSES))) >= count:
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)


@pytest.fixture
def pg() -> Iterator[tuple[str, str, str]]:
    prefix = f"ca{uuid.uuid4().hex[:10]}_"
    app_name = f"opensqt-crash-{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}application_name={app_name}"
    try:
        StateStore(url, table_prefix=prefix).close()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_URL} (CI is set, so this fails): {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    yield url, prefix, app_name
    _drop_tables(PG_URL, prefix)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_crash_and_fault_audit(tmp_path: Path, pg: tuple[str, str, str]) -> None:
    url, prefix, app_name = pg
    rng = random.Random(SEED)
    h = Harness(tmp_path, url, prefix, app_name)
    sampler: asyncio.Task[None] | None = None
    try:
        await h.start_venue()
        await h.start_front()
        venue = await h.venue_client()
        sampler = asyncio.create_task(h.sample_slots())
        await h.start_engine(duration=600)
        await _wait_for_orders(venue, 6, within=40)
        # The seeded fault schedule.
        faults = ["engine_kill", "front_kill", "store_cut"] * 4
        rng.shuffle(faults)
        end = time.monotonic() + FAULT_PHASE_SECONDS
        for fault in faults:
            if time.monotonic() >= end:
                break
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            if not h.engine_alive():  # it exited by itself (e.g. a store failure): note it, restart
                h.events.append(f"engine exited rc={h.engine.returncode if h.engine else None}")
                await h.kill_engine()
                await h.start_engine(duration=600)
            if fault == "engine_kill":
                await h.kill_engine()
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                await h.start_engine(duration=600)
            elif fault == "front_kill":
                await h.kill(h.front)
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                await h.start_front()
            else:
                h.events.append(f"store_cut terminated {h.cut_store()}")
            h.events.append(fault)
        # Last run: the engine resolves what is open, then shuts down cleanly (cancel_on_exit).
        await h.kill_engine()
        await h.start_engine(duration=SLOW_ACK_REAL_SECONDS * 2)
        assert h.engine is not None
        out, _ = await asyncio.wait_for(h.engine.communicate(), timeout=90)
        h.engine_outputs.append(out)
        final_rc = h.engine.returncode
        h.engine = None
        await asyncio.sleep(SLOW_ACK_REAL_SECONDS + 1)  # anything still in flight lands (or not) now
        history = await venue.get_orders(OrderFilter(symbol=SYM, statuses=ALL_STATUSES))
        position = signed_position(await venue.get_positions([SYM]))  # type: ignore[attr-defined]
        await venue.aclose()
        store = StateStore(url, table_prefix=prefix)
        evidence = Evidence(history, store.load_orders(SYM), store.load_fills(SYM), position, h.stuck())
        store.close()
        found = audit(evidence)
        placed_slow = len(history) // SLOW_ACK_EVERY
        context = (
            f"events={h.events} engine_runs={h.engine_runs} orders={len(history)} "
            f"(~{placed_slow} slow-acked) final_rc={final_rc}\nlast engine output:\n"
            f"{(h.engine_outputs[-1] if h.engine_outputs else b'').decode(errors='replace')[-2000:]}"
        )
        if len(history) < 2 * SLOW_ACK_EVERY:  # a harness problem, not a finding: not an AssertionError
            raise RuntimeError(f"too few placements ({len(history)}) for the slow-ack fault to matter")
        failures: list[str] = []
        if final_rc != 0:
            failures.append(f"the last engine run exited with {final_rc}")
        if found:
            failures.append(found.summary())

        # The venue is lost: a fresh sim on the same port.  With a position in the store that the
        # fresh venue does not have, the engine must stay paused (place nothing) and say why.
        store_position = sum(
            (f.quantity if f.side == order_pb2.ORDER_SIDE_BUY else -f.quantity) for f in evidence.store_fills
        ) or Decimal(0)
        await h.kill(h.venue)
        await h.start_venue()
        await h.start_engine(duration=8)
        assert h.engine is not None
        out, _ = await asyncio.wait_for(h.engine.communicate(), timeout=60)
        h.engine = None
        fresh = await h.venue_client()
        after = await fresh.get_orders(OrderFilter(symbol=SYM, statuses=ALL_STATUSES))
        await fresh.aclose()
        lost_tail = out.decode(errors="replace")[-1500:]
        if store_position != 0:
            if after:
                failures.append(f"venue lost: placed {len(after)} orders on a venue that lost our position")
            if b"paused" not in out.lower() and b"diverg" not in out.lower():
                failures.append("venue lost: no pause reason in the engine's output")
        assert not failures, "\n".join([*failures, context, "venue-lost run:", lost_tail])
    finally:
        if sampler is not None:
            h._sampling = False
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        await h.close()
