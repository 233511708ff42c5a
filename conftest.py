"""Root pytest configuration shared by the three distributions' test suites.

pytest's importlib mode names a test module after its path (``cqvx/tests/...`` -> ``cqvx.tests...``)
and creates placeholder parents that are missing from ``sys.modules``; importing the real packages
first keeps those placeholders from shadowing them.
"""

from __future__ import annotations

import cqc
import cqvx
import opensqt

__all__ = ["cqc", "cqvx", "opensqt"]

# The conformance suite records which capability tests passed and writes build/capabilities.md.
pytest_plugins = ["cqvx.testing.conformance_plugin"]
