"""What ``opensqt fleet`` imports (also lazily), for the fleet crash tests' zygote (one home for the list).

A test module that forks ``opensqt fleet`` from the module's zygote (``opensqt/tests/conftest.py``) binds
it as its ``PRELOAD`` (``PRELOAD = FLEET_PRELOAD``): the imports are paid once per module, not per start.
"""

from __future__ import annotations

FLEET_PRELOAD = (
    "opensqt.cli", "opensqt.connector.cli", "opensqt.live.cli", "opensqt.app.fleet_cli", "opensqt.arb.cli",
    "opensqt.app.multi", "opensqt.app.runner", "opensqt.engine.fleet", "opensqt.engine.workflows",
    "opensqt.engine.lease", "opensqt.connector.remote", "opensqt.connector.venue", "opensqt.live.server",
    "opensqt.live.http", "opensqt.observability.logging", "opensqt.ui.fleet_view", "cqvx.venues.registry",
    "dbos", "grpc", "sqlalchemy", "psycopg", "aiohttp",
)  # fmt: skip
