"""The conformance suite every :class:`~cqvx.client.VenueClient` implementation runs against its fake.

A venue's test module subclasses :class:`ConformanceSuite`, names the venue, and provides a
``harness`` fixture implementing :class:`ConformanceHarness` (a fake server plus the knobs the tests
need: make the next requests rate-limited, drop the streams, skip a book sequence number, ...)::

    from cqvx.testing.conformance import ConformanceSuite

    class TestSimConformance(ConformanceSuite):
        venue = "sim"

        @pytest.fixture
        async def harness(self) -> AsyncIterator[SimHarness]:
            h = SimHarness()
            await h.start()
            yield h
            await h.close()

Each test checks one capability (:data:`CAPABILITIES`).  A venue that lacks one says so with a
``supports_*`` flag on its harness, or by not implementing the optional hook protocol the capability
needs (:mod:`~cqvx.testing.conformance.harness`); the test then skips with a reason naming the venue
and the capability, never silently.  With the plugin :mod:`cqvx.testing.conformance_plugin`
registered, a run writes ``build/capabilities.md``: venues x capabilities, a cell marked only when its
tests passed; ``make test`` fails when the committed ``docs/capabilities.md`` differs from it.

The rooms: ``capabilities`` (the column table), ``harness`` (what a venue provides), ``base`` (shared
helpers), one module per capability group (``core``: orders, books, trades, health, close;
``executions``: the execution stream; ``account``: batch orders, cancel-all, positions; ``funding``:
funding history and funding payments) and
``matrix`` (the file).  A new group is a new module whose suite class is mixed in below.

``cqvx.testing.mock.MockVenueHarness`` is the reference harness (over :class:`MockVenue`).
"""

from __future__ import annotations

from typing import ClassVar

from cqvx.testing.conformance.account import AccountSuite
from cqvx.testing.conformance.base import SuiteBase, assert_valid_book
from cqvx.testing.conformance.capabilities import CAPABILITIES, capability, capability_of
from cqvx.testing.conformance.core import CoreSuite
from cqvx.testing.conformance.executions import ExecutionLog, ExecutionSuite
from cqvx.testing.conformance.funding import FundingSuite
from cqvx.testing.conformance.harness import (
    ConformanceHarness,
    ExecutionHarness,
    FundingHistoryHarness,
    FundingPaymentsHarness,
    HarnessDefaults,
    OtherSymbolHarness,
    PositionHarness,
    StreamDropHarness,
)
from cqvx.testing.conformance.matrix import CapabilityResults, read_capability_matrix, write_capability_matrix
from cqvx.testing.conformance_streams import StreamContractTests

__all__ = [
    "CAPABILITIES",
    "CapabilityResults",
    "ConformanceHarness",
    "ConformanceSuite",
    "ExecutionHarness",
    "ExecutionLog",
    "FundingHistoryHarness",
    "FundingPaymentsHarness",
    "HarnessDefaults",
    "OtherSymbolHarness",
    "PositionHarness",
    "StreamDropHarness",
    "SuiteBase",
    "assert_valid_book",
    "capability",
    "capability_of",
    "read_capability_matrix",
    "write_capability_matrix",
]


class ConformanceSuite(CoreSuite, ExecutionSuite, AccountSuite, FundingSuite, StreamContractTests):
    """Subclass as ``Test<Venue>Conformance``, set :attr:`venue`, provide a ``harness`` fixture.

    Every capability group is a mixin over :class:`SuiteBase`; add a new group to the bases here.
    """

    venue: ClassVar[str] = ""  # the matrix row
