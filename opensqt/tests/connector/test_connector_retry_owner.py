"""One retry owner across the connector: an error the venue-side transport already retried reaches
the RemoteVenue caller still saying so (``attempts``, ``retried``), so the engine does not retry again."""

from __future__ import annotations

from typing import Any

import pytest

from cqvx.errors import RateLimited
from cqvx.testing import builders
from cqvx.testing.mock import MockVenue


async def test_attempts_of_the_venue_side_retry_owner_reach_the_remote_caller(
    start_server: Any, connect: Any
) -> None:
    mock = MockVenue("mock")
    retried = RateLimited("sustained 429", venue="mock", retry_after=0.0)
    retried.attempts = 4
    mock.on("place_order", retried)
    try:
        server = await start_server(mock)
        remote = await connect(server)
        with pytest.raises(RateLimited) as info:
            await remote.place_order(builders.order(venue="mock"))
        assert info.value.attempts == 4 and info.value.retried
    finally:
        await mock.aclose()
