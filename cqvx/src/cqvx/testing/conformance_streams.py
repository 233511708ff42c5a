"""Stream-contract tests every venue runs: the :class:`~cqvx.streams.LiveStream` rules, checked.

:class:`StreamContractTests` is a mixin of the conformance suite (same harness, same ``client``
fixture, same skip-with-a-reason rule as :mod:`cqvx.testing.conformance`).  What it proves:

* **Live means live.**  After ``await stream.wait_live()`` an order placed is seen on the execution
  stream (nothing between the subscribe and the placement is lost).
* **Refusals are typed.**  A subscription the venue refuses (``harness.unknown_symbol``) raises its
  :class:`~cqvx.errors.VenueError` from ``wait_live()``.
* **Gaps come first.**  After ``harness.force_stream_drop()`` every ``on_gap`` listener is called before
  any later message is delivered.
* **Close ends.**  ``aclose()`` ends a pending ``async for``.

Harness knobs (optional; missing means ``False`` and the test skips naming the venue):
``supports_stream_refusal`` with ``unknown_symbol``; ``supports_stream_gaps`` with
``async force_stream_drop()`` (cut the venue connection of every stream; the client must notice and
announce a gap).  The trading and trade-stream tests use ``supports_trading`` / ``supports_trades``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from cqvx.client import SupportsOrderStream, VenueClient
from cqvx.errors import VenueError
from cqvx.streams import Gap

__all__ = ["StreamContractTests"]


def _require(harness: Any, flag: str, what: str) -> None:
    if not getattr(harness, flag, False):
        venue = getattr(harness, "venue", "?")
        pytest.skip(f"{venue}: stream contract '{what}' not supported (harness.{flag}=False)")


class StreamContractTests:
    """Mix into the conformance suite (``class ConformanceSuite(StreamContractTests)``)."""

    async def test_stream_live_then_order_seen_on_execution_stream(
        self, harness: Any, client: VenueClient
    ) -> None:
        _require(harness, "supports_trading", "execution stream after wait_live")
        if not isinstance(client, SupportsOrderStream):
            pytest.skip(f"{harness.venue}: no execution stream (SupportsOrderStream)")
        stream = client.subscribe_executions([harness.symbol])
        # The suite's id when mixed in (a venue's required id format, e.g. Gate's "t-"), else our own.
        fresh = getattr(self, "new_client_order_id", None)
        coid = fresh() if fresh is not None else "cqxlive" + str(id(stream))[-10:]
        order_id = ""
        try:
            await asyncio.wait_for(stream.wait_live(), harness.timeout)
            report = await asyncio.wait_for(client.place_order(harness.resting_order(coid)), harness.timeout)
            order_id = report.order_id
            async with asyncio.timeout(harness.timeout):
                async for rep in stream:
                    if rep.client_order_id == coid:
                        break
        except TimeoutError:
            raise AssertionError(
                f"{harness.venue}: an order placed after wait_live() never showed on the execution stream"
            ) from None
        finally:
            await stream.aclose()
            if order_id:
                with contextlib.suppress(VenueError, TimeoutError):
                    await asyncio.wait_for(
                        client.cancel_order(symbol=harness.symbol, order_id=order_id), harness.timeout
                    )

    async def test_refused_subscription_raises_from_wait_live(
        self, harness: Any, client: VenueClient
    ) -> None:
        _require(harness, "supports_stream_refusal", "refusal from wait_live")
        stream = client.subscribe_trades(harness.unknown_symbol)
        try:
            with pytest.raises(VenueError):
                await asyncio.wait_for(stream.wait_live(), harness.timeout)
        finally:
            await stream.aclose()

    async def test_forced_disconnect_gaps_before_later_messages(
        self, harness: Any, client: VenueClient
    ) -> None:
        _require(harness, "supports_trades", "gap before later messages")
        _require(harness, "supports_stream_gaps", "gap before later messages")
        stream = client.subscribe_trades(harness.symbol)
        events: list[str] = []
        stream.on_gap(lambda gap: events.append("gap" if isinstance(gap, Gap) else "not-a-gap"))
        try:
            await asyncio.wait_for(stream.wait_live(), harness.timeout)
            await harness.force_stream_drop()

            async def emit() -> None:
                while True:
                    await harness.emit_trade()
                    await asyncio.sleep(0.05)

            emitter = asyncio.create_task(emit())
            try:
                await asyncio.wait_for(anext(aiter(stream)), harness.timeout)
                events.append("message")
            finally:
                emitter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await emitter
        finally:
            await stream.aclose()
        assert "gap" in events, f"{harness.venue}: no Gap reached on_gap after a forced disconnect"
        assert events.index("gap") < events.index("message"), (
            f"{harness.venue}: a message was delivered before the gap was announced ({events})"
        )

    async def test_aclose_ends_iteration(self, harness: Any, client: VenueClient) -> None:
        _require(harness, "supports_trades", "aclose ends iteration")
        stream = client.subscribe_trades(harness.symbol)
        await asyncio.wait_for(stream.wait_live(), harness.timeout)
        started = asyncio.Event()

        async def read() -> int:
            n = 0
            started.set()
            async for _ in stream:
                n += 1
            return n

        reader = asyncio.create_task(read())
        await started.wait()
        await asyncio.sleep(0)  # the reader is now waiting in __anext__
        await asyncio.wait_for(stream.aclose(), harness.timeout)
        done, _ = await asyncio.wait({reader}, timeout=harness.timeout)
        if not done:
            reader.cancel()
            raise AssertionError(f"{harness.venue}: aclose() did not end a pending async for")
        assert reader.exception() is None, f"aclose() made the reader raise {reader.exception()!r}"
