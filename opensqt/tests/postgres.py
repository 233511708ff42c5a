"""The PostgreSQL server the opensqt tests use (one home for its URL and the reachability check).

The server is ``127.0.0.1:5432``, database ``test``, trust auth (README "Tests"); ``OPENSQT_TEST_PG_URL``
names another one.  Tests that need it carry ``@pytest.mark.postgres``.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy

PG_URL = os.environ.get("OPENSQT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require_postgres() -> None:
    """Fail the test (never skip it) when the server does not accept a connection."""
    try:
        sqlalchemy.create_engine(PG_URL).connect().close()
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at {PG_URL}: {exc}")
