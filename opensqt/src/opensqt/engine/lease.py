"""One owner per account: a lease with a fencing token, in the state store's database.

Rules:

* One row per account (``<prefix>lease``: account, owner, token, expires).  A process owns the account
  while its row names it and ``expires`` (wall clock, seconds) lies ahead.  Only the owner places orders.
* :meth:`AccountLease.acquire` takes a free or EXPIRED lease in one conditional statement (insert-if-absent,
  else ``UPDATE ... WHERE expires < now``), and every takeover increments ``token``.  A live lease of
  another owner is never taken: the caller waits (``state.lease_wait``) or exits with one line
  (:class:`LeaseHeld`).
* Fencing: every order-placing write (a commit with an ``intent`` order row, see ``store.StateStore.save``)
  first runs :meth:`AccountLease.fence_check` INSIDE its transaction: an ``UPDATE`` of the lease row that
  matches only our owner, our token and an unexpired lease.  No match -> :class:`Fenced`, the transaction
  rolls back, nothing is sent (intent-first: no intent, no order).  The check is a write so it takes the
  row lock (PostgreSQL) / the write lock (SQLite): a takeover waits for our commit, and then the new
  owner's recovery reads our intent and resolves it at the venue by client order id (a late landing
  answers as a duplicate).  A process that was paused past its expiry therefore cannot place on a stale
  view, even before anyone took over.
* A lease whose owner id names THIS host and a pid that no longer exists is taken over at once (a
  kill -9 restart need not wait for the expiry); owner ids are ``host:pid:random``, so hosts that share
  a name and not a pid namespace must set distinct hostnames.
* The keeper renews at a third of the lease time; a renewal that finds the lease gone (taken over) means
  we are fenced: the engine stops (``on_lost``) without placing again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

__all__ = ["AccountLease", "Fenced", "LeaseHeld", "LeaseInfo", "new_owner_id"]

log = structlog.get_logger("opensqt.engine")


class Fenced(RuntimeError):
    """This process no longer holds the account's lease (taken over, or expired): it must not place."""


class LeaseHeld(RuntimeError):
    """Another live owner holds the account's lease (the message is the one line the CLI prints)."""


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    account: str
    owner: str
    token: int
    expires: float


def new_owner_id() -> str:
    """Unique per process start: host, pid and a random suffix (a restarted pid is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _dead_local_owner(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by another user
    return False


class AccountLease:
    """The lease on ``account`` for ``owner`` (synchronous SQL; the engine runs it off the event loop)."""

    def __init__(
        self,
        engine: Engine,
        account: str,
        *,
        owner: str | None = None,
        ttl: float = 15.0,
        table_prefix: str = "osq_",
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not account:
            raise ValueError("account: empty")
        self.engine = engine
        self.account = account
        self.owner = owner or new_owner_id()
        self.ttl = ttl
        self.token: int | None = None
        self._wall = wall
        md = MetaData()
        self.table = Table(
            f"{table_prefix}lease",
            md,
            Column("account", String(128), primary_key=True),
            Column("owner", String(160), nullable=False),
            Column("token", Integer, nullable=False),
            Column("expires", Float, nullable=False),
        )
        md.create_all(engine)

    def _insert(self) -> object:
        return (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(self.table)

    def current(self) -> LeaseInfo | None:
        with self.engine.connect() as conn:
            r = (
                conn.execute(select(self.table).where(self.table.c.account == self.account))
                .mappings()
                .first()
            )
        return (
            None if r is None else LeaseInfo(r["account"], r["owner"], int(r["token"]), float(r["expires"]))
        )

    def try_acquire(self) -> int | None:
        """Take the lease if it is free or expired (token + 1); None while another owner holds it."""
        t, now = self.table, self._wall()
        with self.engine.begin() as conn:
            ins = self._insert().values(  # type: ignore[attr-defined]
                account=self.account, owner=self.owner, token=1, expires=now + self.ttl
            )
            got = conn.execute(ins.on_conflict_do_nothing().returning(t.c.token)).scalar_one_or_none()
            if got is None:
                # One statement: PostgreSQL re-checks the WHERE on the locked row, SQLite has one writer,
                # so two processes racing for an expired lease cannot both win.
                got = conn.execute(
                    update(t)
                    .where(t.c.account == self.account, (t.c.expires < now) | (t.c.owner == self.owner))
                    .values(owner=self.owner, token=t.c.token + 1, expires=now + self.ttl)
                    .returning(t.c.token)
                ).scalar_one_or_none()
            if got is None:
                got = self._take_from_dead_local_owner(conn)
        if got is not None:
            self.token = int(got)
            log.info("account lease acquired", account=self.account, owner=self.owner, token=self.token)
        return self.token if got is not None else None

    def _take_from_dead_local_owner(self, conn: Connection) -> int | None:
        """A live lease whose owner ran on THIS host under a pid that no longer exists (kill -9, crash):
        take it over now instead of after expiry.  Conditional on the same owner and token, so a
        concurrent takeover wins only once; a reused pid reads as alive (we wait: the safe side)."""
        t = self.table
        row = conn.execute(select(t.c.owner, t.c.token).where(t.c.account == self.account)).first()
        if row is None or not _dead_local_owner(str(row[0])):
            return None
        got = conn.execute(
            update(t)
            .where(t.c.account == self.account, t.c.owner == row[0], t.c.token == row[1])
            .values(owner=self.owner, token=t.c.token + 1, expires=self._wall() + self.ttl)
            .returning(t.c.token)
        ).scalar_one_or_none()
        if got is not None:
            log.warning("took the lease of a dead process on this host", account=self.account, dead=row[0])
        return None if got is None else int(got)

    def renew(self) -> bool:
        """Extend our lease; False when it is no longer ours (taken over: we are fenced)."""
        if self.token is None:
            return False
        t = self.table
        with self.engine.begin() as conn:
            got = conn.execute(
                update(t)
                .where(t.c.account == self.account, t.c.owner == self.owner, t.c.token == self.token)
                .values(expires=self._wall() + self.ttl)
                .returning(t.c.token)
            ).first()
        return got is not None

    def release(self) -> None:
        """Give the lease up at a clean exit (expire it now), so the next owner need not wait."""
        if self.token is None:
            return
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.account == self.account, t.c.owner == self.owner, t.c.token == self.token)
                .values(expires=0.0)
            )
        self.token = None

    def fence_check(self, conn: Connection) -> None:
        """Inside an order-placing transaction: raise :class:`Fenced` unless we still own the lease.

        A write (the row lock orders this transaction against a takeover, see the module docstring)."""
        t, token = self.table, self.token
        if token is None:
            raise Fenced(f"account {self.account!r}: no lease held")
        got = conn.execute(
            update(t)
            .where(
                t.c.account == self.account,
                t.c.owner == self.owner,
                t.c.token == token,
                t.c.expires > self._wall(),
            )
            .values(token=t.c.token)
            .returning(t.c.token)
        ).first()
        if got is None:
            raise Fenced(f"account {self.account!r}: lease token {token} of {self.owner} is no longer valid")

    def held_message(self) -> str:
        cur = self.current()
        if cur is None:
            return f"account {self.account!r}: lease not available"
        left = max(0.0, cur.expires - self._wall())
        return (
            f"account {self.account!r} is owned by another engine ({cur.owner}, token {cur.token}, "
            f"lease expires in {left:.0f} s); stop it first, or set state.lease_wait to wait"
        )

    # ------------------------------------------------------------------------------ async side

    async def acquire(self, *, wait: bool, poll: float | None = None) -> int:
        """Acquire, waiting while another live owner holds it (``wait``) or raising :class:`LeaseHeld`."""
        poll = self.ttl / 3 if poll is None else poll
        announced = False
        while True:
            token = await asyncio.to_thread(self.try_acquire)
            if token is not None:
                return token
            message = await asyncio.to_thread(self.held_message)
            if not wait:
                raise LeaseHeld(message)
            if not announced:
                log.warning("waiting for the account lease", detail=message)
                announced = True
            await asyncio.sleep(poll)

    async def keep(self, on_lost: Callable[[str], None], *, period: float | None = None) -> None:
        """Renew until cancelled; call ``on_lost`` once (and return) when the lease is no longer ours.

        A renewal that fails on a database error is retried at the next period: the fence still holds
        (placing needs an unexpired lease), so a database outage cannot let two owners place."""
        period = self.ttl / 3 if period is None else period
        while True:
            await asyncio.sleep(period)
            try:
                ok = await asyncio.to_thread(self.renew)
            except Exception as exc:  # a database outage: the fence stops placement once the lease expires
                log.warning("lease renewal failed", account=self.account, error=str(exc)[:200])
                continue
            if not ok:
                message = f"account {self.account!r}: lease taken over by another engine; stopping"
                log.error("fenced out", account=self.account, owner=self.owner, token=self.token)
                on_lost(message)
                return
