"""The conformance suite fails broken venues, and the plugin writes the matrix from real outcomes.

Runs pytest in a subprocess on a generated test module holding two suites: the reference
MockVenue harness, and a deliberately broken one (duplicates allowed, book stream never resyncs,
unhealthy, rate limiting declared unsupported).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from cqvx.testing.conformance import CAPABILITIES, read_capability_matrix, write_capability_matrix

SUITES = textwrap.dedent(
    """
    from collections.abc import AsyncIterator
    from decimal import Decimal

    import pytest

    from cqc.venues.v1 import venue_pb2
    from cqvx.testing import MockVenue, MockVenueHarness
    from cqvx.testing.conformance import ConformanceSuite


    class LeakyMock(MockVenue):
        def _place(self, order):
            self._by_client_id.pop(order.client_order_id, None)  # forgets ids: duplicates slip through
            return super()._place(order)


    class BrokenHarness(MockVenueHarness):
        venue = "broken"
        timeout = 0.3
        supports_rate_limit = False

        def __init__(self):
            super().__init__()
            self.mock = LeakyMock(self.venue)
            self.mock.on("health", venue_pb2.VenueHealth(venue="broken", reachable=False, last_error="down"))

        async def drop_streams(self):
            # The venue's book changes but the client is never told: its book stays stale.
            book = self._book()
            book.apply_snapshot_levels(book.bids()[1:], book.asks(), sequence=999)


    class TestGood(ConformanceSuite):
        venue = "good"

        @pytest.fixture
        async def harness(self) -> AsyncIterator[MockVenueHarness]:
            h = MockVenueHarness()
            h.venue = "good"
            h.mock = MockVenue("good")
            await h.start()
            yield h
            await h.close()


    class TestBroken(ConformanceSuite):
        venue = "broken"

        @pytest.fixture
        async def harness(self) -> AsyncIterator[BrokenHarness]:
            h = BrokenHarness()
            await h.start()
            yield h
            await h.close()
    """
)


def test_suite_catches_broken_venue_and_plugin_writes_matrix(tmp_path: Path) -> None:
    (tmp_path / "test_generated_suites.py").write_text(SUITES)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    matrix = tmp_path / "docs" / "capabilities.md"
    # An older result for another venue must survive this run (merge by cell).
    write_capability_matrix({"other": {"place": ("passed", "")}}, matrix)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "cqvx.testing.conformance_plugin",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "--capability-matrix",
            str(matrix),
            str(tmp_path / "test_generated_suites.py"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the broken suite fails
    data = read_capability_matrix(matrix)
    keys = [key for key, _, _ in CAPABILITIES]
    # The mock cannot cut a connection nor hold a perpetual: reported as not covered, never passed.
    not_covered = {"exec_reconnect", "exec_gap", "positions"}
    # ... and it keeps no funding history nor payments: not supported (skipped), never passed.
    unsupported = {"funding_history", "funding_payments"}
    want = {k: "skipped" if k in not_covered | unsupported else "passed" for k in keys}
    assert {cap: status for cap, (status, _) in data["good"].items()} == want
    assert all("not covered" in data["good"][k][1] for k in not_covered)
    broken = {cap: status for cap, (status, _) in data["broken"].items()}
    assert broken.pop("duplicate") == "failed"
    assert broken.pop("book_resync") == "failed"
    assert broken.pop("health") == "failed"
    assert broken.pop("rate_limited") == "skipped"
    assert {broken.pop(k) for k in not_covered | unsupported} == {"skipped"}
    assert set(broken.values()) == {"passed"}
    skip_reason = data["broken"]["rate_limited"][1]
    assert "broken" in skip_reason and "rate_limited" in skip_reason  # never a silent skip
    assert data["other"] == {"place": ("passed", "")}
    text = matrix.read_text()
    good_row = next(line for line in text.splitlines() if line.startswith("| good |"))
    assert good_row.count("✓") == len(CAPABILITIES) - len(not_covered) - len(unsupported)
    broken_row = next(line for line in text.splitlines() if line.startswith("| broken |"))
    assert broken_row.count("✗") == 3 and broken_row.count("–") == 1 + len(unsupported) + len(not_covered)


def test_write_capability_matrix_merges_and_is_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "m.md"
    write_capability_matrix({"a": {"place": ("passed", ""), "get": ("failed", "call failed")}}, path)
    first = path.read_text()
    write_capability_matrix({"a": {"place": ("passed", ""), "get": ("failed", "call failed")}}, path)
    assert path.read_text() == first
    write_capability_matrix({"a": {"get": ("passed", "")}, "b": {"health": ("skipped", "x --> y")}}, path)
    data = read_capability_matrix(path)
    assert data == {
        "a": {"place": ("passed", ""), "get": ("passed", "")},
        "b": {"health": ("skipped", "x --> y")},
    }
    write_capability_matrix({"b": {"close": ("passed", "")}}, path, merge=False)
    assert read_capability_matrix(path) == {"b": {"close": ("passed", "")}}
