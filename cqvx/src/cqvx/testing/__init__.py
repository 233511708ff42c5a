"""Test helpers for cqvx users and venue adapters: fake servers, builders, conformance suite.

``MockVenue`` and ``builders`` need nothing beyond cqvx.  The conformance suite needs pytest, so it is
imported explicitly: ``from cqvx.testing.conformance import ConformanceSuite``.
"""

from cqvx.testing import builders
from cqvx.testing.mock import Call, MockStream, MockVenue, MockVenueHarness, StreamHub

__all__ = ["Call", "MockStream", "MockVenue", "MockVenueHarness", "StreamHub", "builders"]
