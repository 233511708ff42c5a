"""The stream-contract tests must be able to fail: a venue that breaks a rule is caught."""

from __future__ import annotations

from typing import Any

import pytest

from cqvx.testing import MockVenueHarness
from cqvx.testing.conformance_streams import StreamContractTests
from cqvx.testing.mock import MockStream


class _SilentDropHarness(MockVenueHarness):
    """ "Drops" the connection without announcing a gap."""

    async def force_stream_drop(self) -> None:
        return None


class _AcceptEverythingHarness(MockVenueHarness):
    """Never refuses a subscription, whatever the symbol."""

    def __init__(self) -> None:
        super().__init__()
        self.mock.refused_symbols.clear()


class _StuckStream(MockStream[Any]):
    async def aclose(self) -> None:  # forgets to end a pending read
        return None


class _StuckCloseHarness(MockVenueHarness):
    async def new_client(self) -> Any:
        mock = self.mock
        mock.on("subscribe_trades", lambda **_: _StuckStream(mock.stream("trades"), lambda m: m))
        return mock


async def _run(harness: MockVenueHarness, test: str) -> None:
    await harness.start()
    client = await harness.new_client()
    try:
        await getattr(StreamContractTests(), test)(harness, client)
    finally:
        await harness.close()


async def test_gap_test_fails_when_no_gap_is_announced() -> None:
    await _run(MockVenueHarness(), "test_forced_disconnect_gaps_before_later_messages")
    with pytest.raises(AssertionError, match="no Gap reached on_gap"):
        await _run(_SilentDropHarness(), "test_forced_disconnect_gaps_before_later_messages")


async def test_refusal_test_fails_when_nothing_is_refused() -> None:
    await _run(MockVenueHarness(), "test_refused_subscription_raises_from_wait_live")
    with pytest.raises(pytest.fail.Exception):
        await _run(_AcceptEverythingHarness(), "test_refused_subscription_raises_from_wait_live")


async def test_close_test_fails_when_aclose_leaves_the_reader_waiting() -> None:
    await _run(MockVenueHarness(), "test_aclose_ends_iteration")
    h = _StuckCloseHarness()
    h.timeout = 0.2
    with pytest.raises(AssertionError, match="did not end a pending async for"):
        await _run(h, "test_aclose_ends_iteration")
