"""The scaffolding every signed-REST venue client shares: auth -> transport -> error mapper.

    class PrimeClient(RestVenue):
        def __init__(self, config, *, session=None, registry=None, clock=wall_clock, ...):
            super().__init__(VENUE, config, signer=..., error_mapper=http_error_mapper,
                             needs="access_key, passphrase, signing_key, portfolio_id",
                             registry=registry, session=session)

A venue brings its signer (``cqvx.auth``), its code table (``venues/<venue>/errors.py``, rows of
:class:`cqvx.venues.codes.Code`) and its rate-limit buckets; this class builds the one
:class:`~cqvx.transport.http.HttpTransport` from the config's ``rest_url``, ``timeout_s``, ``retries``
and ``retry_base_delay_s`` and owns the lifecycle (``async with``, ``aclose`` once), the credential
check, ``health`` and the rule for answers that leave a state change unknown:

* :data:`AMBIGUOUS` (``Timeout``, ``Unavailable``, ``ParseError`` of a 2xx) on a state-changing call is
  never re-sent: :meth:`_resolve` looks the request up (by client order id, quote, ...); found -> that
  outcome, not found or the lookup failed -> :class:`~cqvx.errors.Timeout` (unresolved, not
  retry-safe), so the caller looks it up later.

Coinbase subclasses it too and keeps its own request helpers (JWT auth object, a private and a public
budget, public ``/market`` twins) and health (a public probe plus its streams' state).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import aiohttp
from prometheus_client import CollectorRegistry

from cqc.venues.v1 import venue_pb2
from cqvx.auth.base import Clock, PathSigner, Signer, wall_clock
from cqvx.client import capabilities_of
from cqvx.errors import InvalidRequest, ParseError, Timeout, Unavailable, VenueError, redact
from cqvx.timeutil import timestamp_now
from cqvx.transport.http import ErrorMapper, HttpResponse, HttpTransport, RetryPolicy
from cqvx.transport.ratelimit import TokenBucket

__all__ = ["AMBIGUOUS", "Limits", "RestSettings", "RestVenue"]

T = TypeVar("T")
Limits = Sequence[tuple[TokenBucket, float]]
# Answers to a state-changing call that leave its outcome open: resolve by lookup, never re-send.
AMBIGUOUS: tuple[type[VenueError], ...] = (Timeout, Unavailable, ParseError)


class RestSettings(Protocol):
    """The config fields the transport is built from (every REST venue config has them)."""

    @property
    def rest_url(self) -> str: ...

    @property
    def timeout_s(self) -> float: ...

    @property
    def retries(self) -> int: ...

    @property
    def retry_base_delay_s(self) -> float: ...


class RestVenue:
    """Base of a REST venue client; subclasses add the venue's methods and ``_probe`` (for health)."""

    def __init__(
        self,
        venue: str,
        settings: RestSettings,
        *,
        signer: Signer | PathSigner | None,
        error_mapper: ErrorMapper,
        needs: str,
        clock: Clock = wall_clock,
        registry: CollectorRegistry | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._venue = venue
        self._rest_url = settings.rest_url
        self._needs = needs
        self._clock = clock
        self._signer = signer
        self._http = HttpTransport(
            settings.rest_url,
            venue=venue,
            signer=signer,
            timeout=settings.timeout_s,
            retry=RetryPolicy(retries=settings.retries, base_delay=settings.retry_base_delay_s),
            error_mapper=error_mapper,
            registry=registry,
            session=session,
        )
        self._last_error = ""
        self._closed = False

    @property
    def venue(self) -> str:
        return self._venue

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rest={self._rest_url!r}, key=***)"

    # --- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._close_streams()
        await self._http.close()

    async def _close_streams(self) -> None:
        """Close what the venue opened besides the transport (WebSocket streams)."""

    def capabilities(self) -> frozenset[int]:
        return capabilities_of(self)

    # --- requests ---------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock() / 1e9, tz=UTC)

    def _need_auth(self) -> None:
        if self._signer is None:
            raise InvalidRequest(f"{self._venue} calls need credentials ({self._needs})", venue=self._venue)

    async def _send_get(
        self, path: str, route: str, params: Any, limits: Limits, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        self._need_auth()
        return await self._http.get(path, route=route, params=params, headers=headers, limits=limits)

    async def _send_post(
        self,
        path: str,
        route: str,
        body: bytes,
        limits: Limits,
        *,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """``body`` is the exact bytes that are signed and sent (encoded once)."""
        self._need_auth()
        return await self._http.post(
            path, route=route, body=body, headers=headers, idempotent=idempotent, limits=limits
        )

    def _note(self, exc: BaseException) -> None:
        """Remember a failure for ``health().last_error`` (redacted, bounded)."""
        self._last_error = str(redact(str(exc)))[:200]

    async def _resolve(self, exc: VenueError, lookup: Callable[[], Awaitable[T | None]], what: str) -> T:
        """Settle a state-changing call whose answer was :data:`AMBIGUOUS` by looking it up."""
        self._note(exc)
        try:
            found = await lookup()
        except VenueError:
            found = None
        if found is None:
            raise Timeout(
                f"{what} unresolved ({type(exc).__name__}); look it up by client order id",
                venue=self._venue,
                retry_safe=False,
            ) from None
        return found

    # --- health -----------------------------------------------------------------------------------

    async def _probe(self) -> None:
        """One cheap authenticated read that proves the venue answers with these credentials."""
        raise NotImplementedError

    async def health(self) -> venue_pb2.VenueHealth:
        start = time.perf_counter()
        try:
            await self._probe()
        except VenueError as exc:
            self._note(exc)
            return venue_pb2.VenueHealth(
                venue=self._venue, reachable=False, last_error=self._last_error, checked_at=timestamp_now()
            )
        return venue_pb2.VenueHealth(
            venue=self._venue,
            reachable=True,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            last_error=self._last_error,
            checked_at=timestamp_now(),
        )
