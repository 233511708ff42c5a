"""``resync`` for the CLI (``opensqt resync``): adopt the venue's truth on a STOPPED engine's store.

The rule and the steps are in :mod:`opensqt.engine.resyncer`.  A running engine offers the same as
``GridEngine.resync(operator, reason)``; this entry point is for an engine that is not running (it
paused for good, was stopped, and the operator fixes its state before starting it again).

It owns the account while it works: it takes the account lease (``engine/lease.py``) before anything
else, exactly as an engine does, so it cannot race a running engine or fleet of the account (the lease is
held: :class:`~opensqt.engine.lease.LeaseHeld`, nothing changed; ``state.lease_wait`` waits instead).
The store's fence is installed, so the audited write (and any intent) is refused with
:class:`~opensqt.engine.lease.Fenced` if the lease was taken over meanwhile; the lease is renewed while
it works and released at the end.

Signature (for the CLI)::

    async def resync(config: Config, client: VenueClient, store: StateStore, *,
                     operator: str, reason: str) -> ResyncResult

``client`` and ``store`` are built by the caller exactly as ``opensqt run`` builds them (the caller
closes the client; the store is closed here).  Raises :class:`ResyncRefused` (a one-line reason,
nothing changed), ``LeaseHeld``, ``Fenced``, a venue error, or
:class:`~opensqt.engine.store.StoreWriteFailed`.  The audit record is in the store's ``audit`` table
(``StateStore.load_audit(symbol)``).
"""

from __future__ import annotations

import asyncio
import contextlib

from cqvx.client import VenueClient
from opensqt.config import Config
from opensqt.engine.lease import AccountLease
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.resyncer import ResyncRefused, ResyncResult
from opensqt.engine.store import StateStore

__all__ = ["ResyncRefused", "ResyncResult", "resync"]


async def resync(
    config: Config, client: VenueClient, store: StateStore, *, operator: str, reason: str
) -> ResyncResult:
    """Take the account lease, load the engine's state, settle what it can, adopt the venue's position,
    audit; leave it stopped and release the lease."""
    st = config.state
    try:
        account = st.account_key(config.venue)
        lease = AccountLease(store.engine, account, ttl=float(st.lease_seconds), table_prefix=st.table_prefix)
        await lease.acquire(wait=st.lease_wait)
    except BaseException:
        store.close()
        raise
    store.fence = lease.fence_check
    # Lost meanwhile: the fence refuses the audited write, nothing more is needed here.
    keeper = asyncio.create_task(lease.keep(lambda _message: None))
    try:
        engine = GridEngine(config, client, store)
        await engine.start(run_tasks=False, check=False)
        try:
            return await engine.resync(operator, reason)
        finally:
            await engine.stop(cancel_orders=False)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        with contextlib.suppress(Exception):
            await asyncio.to_thread(lease.release)
        store.close()
