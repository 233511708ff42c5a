"""Root pytest configuration shared by the three distributions' test suites.

pytest's importlib mode names a test module after its path (``cqvx/tests/...`` -> ``cqvx.tests...``)
and creates placeholder parents that are missing from ``sys.modules``; importing the real packages
first keeps those placeholders from shadowing them.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator

import pytest

import cqc
import cqvx
import opensqt

__all__ = ["cqc", "cqvx", "opensqt"]


@pytest.fixture(autouse=True)
def _fresh_decimal_context() -> Iterator[None]:
    """Each test starts with Python's default decimal context.  Tests that drive ccxt directly (not
    through the adapter, which isolates it) leave ccxt's ROUND_HALF_UP and Underflow trap on the
    context, which would change later tests' exact arithmetic (the sim's golden hash found it)."""
    decimal.setcontext(decimal.Context())
    yield


# The conformance suite records which capability tests passed and writes build/capabilities.md.
pytest_plugins = ["cqvx.testing.conformance_plugin"]
