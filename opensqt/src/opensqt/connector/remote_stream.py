"""``RemoteStream``: one connector stream RPC as a :class:`~cqvx.streams.LiveStream`.

* **Eager.**  The RPC is opened when ``subscribe_*`` returns (a reader task pumps it into a bounded
  :class:`cqvx.fanout.Subscription` with the channel's overflow policy); ``wait_live()`` returns once
  the connector acknowledged (initial metadata, sent when every upstream venue stream is live) and
  raises the venue's typed error when it refused (unknown symbol, unsupported, credentials).
* **Re-subscribes by itself** after losing the connector (restart, network, dropped as a slow
  reader), waiting :class:`cqvx.backoff.Backoff` between attempts (full jitter: many clients that lost
  the same connector come back spread, not in lockstep).
* **Gaps.**  A connector ``StreamGap`` notice (``source="connector"``), a sequence jump and this
  client's own re-subscribe (``source="client"``) each call the stream's ``on_gap`` listeners with a
  :class:`~cqvx.streams.Gap`, and the venue-wide ``RemoteVenue.on_gap`` callback with a
  :class:`GapInfo`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import grpc
import structlog
from grpc import aio

from cqvx.backoff import Backoff
from cqvx.errors import VenueError
from cqvx.fanout import Subscription
from cqvx.streams import Gap, GapListener
from opensqt.connector.convert import to_datetime

if TYPE_CHECKING:
    from opensqt.connector.remote import RemoteVenue

__all__ = ["GapInfo", "RemoteStream"]

T = TypeVar("T")
_log = structlog.get_logger("opensqt.connector.remote")

# Re-subscribing cannot fix these; the stream raises the error instead of reconnecting.
_FATAL_STREAM_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)
# Deep enough that the local queue is not what overflows first: the connector's per-client queue
# (and gRPC flow control) push back before it.
_LOCAL_QUEUE = 10_000


@dataclass(frozen=True, slots=True)
class GapInfo:
    """Updates of ``stream`` between ``since`` and now may be missing: reconcile.

    ``source`` is ``"connector"`` (its upstream venue stream was interrupted) or ``"client"`` (this
    client re-subscribed after losing the connector); ``reason`` says why.
    """

    stream: str
    since: datetime | None
    reason: str
    source: str


class RemoteStream(Generic[T]):
    """A live stream over one server-streaming RPC that re-subscribes by itself."""

    def __init__(
        self,
        owner: RemoteVenue,
        name: str,
        open_call: Callable[[], aio.UnaryStreamCall[Any, Any]],
    ) -> None:
        self._owner = owner
        self.name = name
        channel, _, symbol = name.partition(":")
        self._open_call = open_call
        self._call: aio.UnaryStreamCall[Any, Any] | None = None
        self._closed = False
        self._subscribed_once = False
        self._failures = 0
        self._last_seq = 0
        self._last_message_at: datetime | None = None
        self._pending_gap: str | None = None
        self._sub: Subscription[T] = Subscription(
            venue=owner.venue, channel=channel, symbol=symbol, maxsize=_LOCAL_QUEUE
        )
        self.gaps = 0
        self.reconnects = 0
        self._task = asyncio.get_running_loop().create_task(self._pump(), name=f"remote-stream:{name}")

    # -- LiveStream ---------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self._sub.__anext__()

    async def wait_live(self) -> None:
        await self._sub.wait_live()

    def on_gap(self, listener: GapListener) -> None:
        self._sub.on_gap(listener)

    async def aclose(self) -> None:
        """Unsubscribe; safe to call from another task while a read is pending."""
        self._closed = True
        self._owner._streams.discard(self)
        if self._call is not None:
            self._call.cancel()
            self._call = None
        await self._sub.aclose()
        if self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # -- the reader ---------------------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            while not self._closed:
                if self._call is None:
                    await self._subscribe()
                    continue
                try:
                    resp = await self._call.read()
                except aio.AioRpcError as err:
                    self._interrupted(err)
                    continue
                if resp is aio.EOF:
                    self._interrupted(None)
                    continue
                self._deliver(cast(Any, resp))
        except VenueError as err:
            self._sub.fail(err)
        except asyncio.CancelledError:
            if not self._closed:
                raise

    def _deliver(self, resp: Any) -> None:
        seq = resp.sequence
        if self._last_seq and seq and seq != self._last_seq + 1:
            self._gap(self._last_message_at, f"sequence jump {self._last_seq} -> {seq}", "client")
        self._last_seq = seq
        kind = resp.WhichOneof("event")
        if kind == "gap":
            since = to_datetime(resp.gap.since) if resp.gap.HasField("since") else None
            self._gap(since, resp.gap.reason or "upstream gap", "connector")
            return
        if kind is None or kind == "delta":  # only snapshots are part of the typed interface
            return
        self._last_message_at = datetime.now(UTC)
        self._sub.push(getattr(resp, kind))

    def _interrupted(self, err: aio.AioRpcError | None) -> None:
        if self._call is not None:
            self._call.cancel()
        self._call = None
        if self._closed:
            return
        if err is not None and err.code() in _FATAL_STREAM_CODES:
            self._closed = True
            self._owner._streams.discard(self)
            raise self._owner._error(err)
        self._pending_gap = (
            "connector stream ended" if err is None else f"connector stream lost ({err.code().name})"
        )
        _log.warning("remote_stream_interrupted", stream=self.name, reason=self._pending_gap)

    async def _subscribe(self) -> None:
        policy = self._owner._stream_policy
        if self._failures:
            await Backoff(initial=policy.initial, maximum=policy.maximum).sleep(self._failures)
        if self._closed:
            return
        self._failures += 1
        call = self._open_call()
        self._call = call
        # The connector sends initial metadata once the subscription is live; wait_for_ready makes
        # this wait for the connector to come back rather than fail at once.
        await call.initial_metadata()
        if self._closed:
            return
        if call.done() and await call.code() != grpc.StatusCode.OK:
            try:
                await call.read()
            except aio.AioRpcError as err:
                self._interrupted(err)
                return
        if self._call is not call:
            return
        self._failures = 0
        self._last_seq = 0
        if self._subscribed_once:
            self.reconnects += 1
            self._gap(self._last_message_at, self._pending_gap or "connector reconnect", "client")
        self._subscribed_once = True
        self._pending_gap = None
        self._sub.set_live()

    def _gap(self, since: datetime | None, reason: str, source: str) -> None:
        self.gaps += 1
        self._owner._report_gap(GapInfo(self.name, since, reason, source))
        self._sub.gap(
            Gap(
                self._owner.venue,
                self._sub.channel,
                self._sub.symbol,
                reason=reason,
                source=source,
                since=since,
            )
        )
