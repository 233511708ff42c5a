"""``resync`` for the CLI (``opensqt resync``): adopt the venue's truth on a STOPPED engine's store.

The rule and the steps are in :mod:`opensqt.engine.resyncer`.  A running engine offers the same as
``GridEngine.resync(operator, reason)``; this entry point is for an engine that is not running (it
paused for good, was stopped, and the operator fixes its state before starting it again).  Never run it
while an engine runs on the same store: two writers would each believe their own slots.

Signature (for the CLI)::

    async def resync(config: Config, client: VenueClient, store: StateStore, *,
                     operator: str, reason: str) -> ResyncResult

``client`` and ``store`` are built by the caller exactly as ``opensqt run`` builds them (the caller
closes the client; the store is closed here).  Raises :class:`ResyncRefused` (a one-line reason,
nothing changed), a venue error, or :class:`~opensqt.engine.store.StoreWriteFailed`.  The audit record
is in the store's ``audit`` table (``StateStore.load_audit(symbol)``).
"""

from __future__ import annotations

from cqvx.client import VenueClient
from opensqt.config import Config
from opensqt.engine.orchestrator import GridEngine
from opensqt.engine.resyncer import ResyncRefused, ResyncResult
from opensqt.engine.store import StateStore

__all__ = ["ResyncRefused", "ResyncResult", "resync"]


async def resync(
    config: Config, client: VenueClient, store: StateStore, *, operator: str, reason: str
) -> ResyncResult:
    """Load the engine's state, settle what it can, adopt the venue's position, audit; leave it stopped."""
    engine = GridEngine(config, client, store)
    await engine.start(run_tasks=False, check=False)
    try:
        return await engine.resync(operator, reason)
    finally:
        await engine.stop(cancel_orders=False)
