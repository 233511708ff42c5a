"""The grid engine: ``GridEngine`` (:mod:`.orchestrator`), a small coordinator (start/stop, price ->
commit -> execute -> cancel) over its collaborators: the slot ledger (:mod:`.ledger`), the reconciler
(:mod:`.reconciler`), restart and position recovery (:mod:`.recovery`), the volume-monitor feed
(:mod:`.volume_feed`), the status view (:mod:`.status`) and the one loop supervisor (:mod:`.supervisor`);
plus the order executor, the price monitor and the state store.  See docs/engine.md.

Layer rule: may import ``model``, ``strategy``, ``risk``, ``config``, ``observability`` (metrics) and
cqvx; never ``app``, ``ui``, ``connector`` or the CLI (enforced by ``opensqt/tests/test_layers.py``).
The engine talks to any venue through the cqvx ``VenueClient`` interface only.
"""
