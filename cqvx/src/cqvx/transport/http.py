"""The signed, rate-limited, retried HTTP transport every REST venue adapter sits on.

Rules it enforces (the flaws of the old cqi client, contracts.md §3.1 and §6 items 14 and 16):

* The body is serialised once; the signer signs those exact bytes and the exact request target
  (path with query) that goes on the wire, and aiohttp is told not to re-encode the URL.
* Every attempt waits for the rate limiter(s) and is signed afresh (new timestamp / JWT).
* Retries wait through the one :class:`cqvx.backoff.Backoff` (full jitter) and honour ``Retry-After``
  (seconds or HTTP date; the venue's wait wins, plus a little jitter so clients do not return together).
* **A bounded lifetime.**  :class:`RetryPolicy` caps both the number of re-sends (``retries``) and the
  total time (``max_elapsed``, default 30 s, counted from the call): no attempt is *sent* later than
  ``max_elapsed`` after :meth:`HttpTransport.request` was called (a rate-limit wait or a backoff sleep
  that would cross it ends the call instead), and each attempt is cut off after the per-attempt
  ``timeout``.  So nothing this transport sends can still be on the wire later than
  :meth:`RetryPolicy.max_request_lifetime` (``HttpTransport.max_request_lifetime`` for the transport's
  own timeout) after the call began: the bound an engine builds its "landing window" on (issue 11).
  The venue may still act on a request it received a little after that; the engine adds its own slack.
* **One retry owner.**  This transport owns 429, 5xx and connection failures of safe and idempotent
  requests (``docs/architecture.md``, "One retry owner").  When it gives up, the raised error's
  ``attempts`` is the number of attempts that went to the network, so ``error.retried`` tells every
  layer above not to retry the same failure again.
* A request that may change state (anything but GET/HEAD/OPTIONS) is re-sent only when the caller
  marks it ``idempotent`` (it carries a client order id or idempotency key).  Otherwise a failure
  after the request may have left raises :class:`cqvx.errors.Timeout` (outcome unknown) and is never
  re-sent.  aiohttp's own silent one-shot retry of PUT/DELETE on a dropped connection is switched off.
* Explicit settings are honoured: ``retries=0`` means no retry.
* Metrics go to an injectable registry with bounded labels (the caller's route template).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
import structlog
from multidict import CIMultiDictProxy
from prometheus_client import CollectorRegistry
from yarl import URL

from cqvx.auth.base import PathSigner, Signer
from cqvx.backoff import Backoff
from cqvx.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    ParseError,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.transport.breaker import CircuitBreaker
from cqvx.transport.metrics import metrics_for
from cqvx.transport.ratelimit import TokenBucket

__all__ = ["ErrorMapper", "HttpResponse", "HttpTransport", "RetryPolicy", "parse_retry_after"]

_log = structlog.get_logger("cqvx.transport.http")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
QueryParams = Mapping[str, str | int | float | bool] | Sequence[tuple[str, str | int | float | bool]]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    request_path: str  # the request target as sent (path with query)

    def json(self) -> Any:
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            raise ParseError(f"response is not JSON (HTTP {self.status})", http_status=self.status) from None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# Given a response (any status), return the venue's error or None when it is a success.  Each venue
# maps its own error codes; anything it returns None for at status >= 400 gets the generic mapping.
ErrorMapper = Callable[[HttpResponse], VenueError | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and for how long the transport re-sends a failed safe or idempotent request."""

    retries: int = 3  # extra attempts after the first; 0 disables retrying
    base_delay: float = 0.25
    max_delay: float = 10.0
    max_retry_after: float = 60.0  # a longer Retry-After is raised to the caller instead of slept
    retry_statuses: frozenset[int] = field(default=frozenset({429, 500, 502, 503, 504}))
    # Total budget from the call: no attempt is sent later than this (see the module docstring).
    max_elapsed: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry settings must be non-negative")
        if self.max_elapsed <= 0:
            raise ValueError("max_elapsed must be positive")

    @property
    def schedule(self) -> Backoff:
        """The one jittered backoff, with this policy's bounds."""
        return Backoff(initial=self.base_delay, maximum=self.max_delay)

    def backoff(self, attempt: int, rng: random.Random, *, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failure: full jitter, or the venue's Retry-After."""
        return self.schedule.delay(attempt, rng, retry_after=retry_after)

    def max_request_lifetime(self, timeout: float) -> float:
        """Seconds after the call beyond which nothing sent for it is still in flight, for a
        per-attempt ``timeout``: every attempt (the first included, after its rate-limit wait) is sent
        within ``max_elapsed`` of the call and cut off ``timeout`` after it is sent."""
        return self.max_elapsed + timeout


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _generic_error(resp: HttpResponse, venue: str, retryable: bool) -> VenueError | None:
    status = resp.status
    if status < 400:
        return None
    kw: dict[str, Any] = {"venue": venue, "http_status": status, "raw": resp.body[:2048]}
    if status == 401:
        return AuthenticationError("authentication rejected", **kw)
    if status == 403:
        return PermissionDenied("permission denied", **kw)
    if status == 404:
        return NotFound("not found", **kw)
    if status == 429:
        return RateLimited(
            "rate limited", retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw
        )
    if status >= 500:
        if retryable:
            return Unavailable(f"server error {status}", **kw)
        # The venue may have acted before failing: the outcome of a state-changing call is unknown.
        return Timeout(f"server error {status}; outcome unknown", **kw)
    return InvalidRequest(f"request rejected with HTTP {status}", **kw)


@dataclass(frozen=True, slots=True)
class _Failure:
    error: VenueError
    retry_after: float | None = None
    sent: bool = True  # the request may have reached the venue
    final: bool = False  # never retry (circuit open)
    tried: bool = True  # the attempt went to the network (connecting counts, a breaker refusal not)
    expired: bool = False  # the total budget ran out before this attempt was sent


def _gave_up(error: VenueError, tries: int) -> VenueError:
    # The retry owner's record of what it spent; layers above read ``error.retried``.
    error.attempts = max(1, tries)
    return error


class HttpTransport:
    """One venue's HTTP client: ``await transport.request("GET", "/orders/1", route="/orders/{id}")``."""

    def __init__(
        self,
        base_url: str,
        *,
        venue: str,
        signer: Signer | PathSigner | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        limiter: TokenBucket | None = None,
        breaker: CircuitBreaker | None = None,
        error_mapper: ErrorMapper | None = None,
        default_headers: Mapping[str, str] | None = None,
        registry: CollectorRegistry | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        base = URL(base_url)
        if not base.is_absolute():
            raise ValueError("base_url must be absolute")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._origin = str(base.origin())
        # Signed paths are full URL paths (Prime signs "/v1/...", Fordefi "/api/v1/..."), so a path
        # prefix in base_url is part of what gets signed.
        self._prefix = base.raw_path.rstrip("/")
        self.venue = venue
        self.signer = signer
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.limiter = limiter
        self.breaker = breaker
        self.error_mapper = error_mapper
        self._default_headers = dict(default_headers or {})
        self._metrics = metrics_for(registry)
        self._session = session
        self._own_session = session is None
        self._rng = rng or random.Random()
        if session is not None:
            _disable_implicit_retry(session)

    @property
    def max_request_lifetime(self) -> float:
        """Seconds after a call beyond which nothing it sent is in flight (default per-attempt timeout)."""
        return self.retry.max_request_lifetime(self.timeout)

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
            self._own_session = True
            _disable_implicit_retry(self._session)
        return self._session

    async def get(self, path: str, *, route: str, **kw: Any) -> HttpResponse:
        return await self.request("GET", path, route=route, **kw)

    async def post(self, path: str, *, route: str, **kw: Any) -> HttpResponse:
        return await self.request("POST", path, route=route, **kw)

    async def delete(self, path: str, *, route: str, **kw: Any) -> HttpResponse:
        return await self.request("DELETE", path, route=route, **kw)

    async def request(
        self,
        method: str,
        path: str,
        *,
        route: str,
        params: QueryParams | None = None,
        body: bytes | str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        signed: bool = True,
        weight: float = 1.0,
        limits: Sequence[tuple[TokenBucket, float]] = (),
        timeout: float | None = None,
    ) -> HttpResponse:
        """Send one logical request (possibly several attempts) and return the successful response.

        ``route`` is the metrics label: a template such as ``"/orders/{id}"``, never the raw path.
        ``idempotent=True`` allows re-sending a state-changing request; set it only when the request
        carries a client order id / idempotency key the venue de-duplicates on.
        ``limits`` are extra (bucket, weight) pairs, e.g. an endpoint-group bucket, acquired on every
        attempt after the transport's own limiter.
        """
        method = method.upper()
        if json is not None and body is not None:
            raise ValueError("pass body or json, not both")
        extra_headers = dict(headers or {})
        payload = b""
        if json is not None:
            payload = msgspec.json.encode(json)
            extra_headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        elif body is not None:
            payload = bytes(body)
        target = self._prefix + path
        if params:
            pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
            # Venues spell booleans in lower case; Python's str(True) would send "True".
            query = urlencode(
                [(k, ("true" if v else "false") if isinstance(v, bool) else v) for k, v in pairs]
            )
            target += ("&" if "?" in target else "?") + query
        retryable = method in SAFE_METHODS or idempotent
        per_attempt = self.timeout if timeout is None else timeout
        if per_attempt <= 0:
            raise ValueError("timeout must be positive")
        deadline = time.monotonic() + self.retry.max_elapsed
        attempt = 0
        tries = 0  # attempts that went to the network
        last: VenueError | None = None
        while True:
            attempt += 1
            result = await self._attempt(
                method=method,
                target=target,
                route=route,
                payload=payload,
                extra_headers=extra_headers,
                signed=signed,
                weight=weight,
                limits=limits,
                timeout=per_attempt,
                retryable=retryable,
                deadline=deadline,
            )
            if isinstance(result, HttpResponse):
                return result
            if result.tried:
                tries += 1
            if result.expired:
                # The rate-limit wait used up the budget: this attempt was never sent.
                raise _gave_up(last if last is not None else result.error, tries)
            error = result.error
            last = error
            # Re-send only what is harmless to repeat: safe or idempotent requests, or anything that
            # provably never left (the connection could not be opened).
            may_resend = (retryable or not result.sent) and error.retry_safe and not result.final
            if not may_resend or attempt > self.retry.retries:
                raise _gave_up(error, tries)
            if result.retry_after is not None and result.retry_after > self.retry.max_retry_after:
                raise _gave_up(error, tries)
            delay = self.retry.backoff(attempt, self._rng, retry_after=result.retry_after)
            if time.monotonic() + delay > deadline:
                raise _gave_up(error, tries)
            self._metrics.http_retries.labels(self.venue, route, error.kind.value).inc()
            _log.info(
                "http.retry",
                venue=self.venue,
                route=route,
                method=method,
                attempt=attempt,
                reason=error.kind.value,
                delay_s=round(delay, 4),
            )
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        *,
        method: str,
        target: str,
        route: str,
        payload: bytes,
        extra_headers: dict[str, str],
        signed: bool,
        weight: float,
        limits: Sequence[tuple[TokenBucket, float]],
        timeout: float,
        retryable: bool,
        deadline: float,
    ) -> HttpResponse | _Failure:
        """One attempt: the response on success, else what went wrong."""
        m = self._metrics
        if self.breaker is not None:
            try:
                self.breaker.check()
            except Unavailable as exc:
                m.http_requests.labels(self.venue, route, method, "breaker_open").inc()
                return _Failure(exc, sent=False, final=True, tried=False)
        if self.limiter is not None:
            await self.limiter.acquire(weight)
        for bucket, w in limits:
            await bucket.acquire(w)
        if time.monotonic() > deadline:
            spent = RateLimited(
                f"retry budget of {self.retry.max_elapsed:g}s spent waiting for rate-limit tokens; not sent",
                venue=self.venue,
                code="local_budget",
                retry_safe=True,
            )
            return _Failure(spent, sent=False, final=True, tried=False, expired=True)
        hdrs = {**self._default_headers, **extra_headers}
        sent_target = target
        if signed and self.signer is not None:
            try:
                if isinstance(self.signer, PathSigner):
                    sent_target, sig = self.signer.sign_path(method, target, payload)
                else:
                    sig = self.signer.sign(method, target, payload)
            except Exception as exc:
                m.signing_failures.labels(self.venue).inc()
                if isinstance(exc, VenueError):
                    raise
                # Never chain the original: its message could quote key material.
                raise AuthenticationError(
                    f"signing failed ({type(exc).__name__})", venue=self.venue
                ) from None
            hdrs.update(sig)
        url = URL(self._origin + sent_target, encoded=True)
        session = self._get_session()
        start = time.perf_counter()
        outcome = "ok"
        try:
            async with session.request(
                method,
                url,
                data=payload if payload else None,
                headers=hdrs,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as resp:
                raw = await resp.read()
                response = HttpResponse(resp.status, CIMultiDictProxy(resp.headers.copy()), raw, sent_target)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Connecting failed: nothing was sent, so any request may be retried.
            outcome = "connection_error"
            self._breaker_failure()
            err = Unavailable(f"cannot connect ({type(exc).__name__})", venue=self.venue, retry_safe=True)
            return _Failure(err, sent=False)
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The request may have reached the venue: ambiguous unless re-sending is harmless.
            outcome = "timeout" if isinstance(exc, TimeoutError) else "disconnected"
            self._breaker_failure()
            what = "timed out" if isinstance(exc, TimeoutError) else f"connection lost ({type(exc).__name__})"
            if retryable:
                return _Failure(Timeout(f"request {what}", venue=self.venue, retry_safe=True))
            return _Failure(Timeout(f"request {what}; outcome unknown", venue=self.venue, retry_safe=False))
        finally:
            elapsed = time.perf_counter() - start
            if outcome != "ok":
                m.http_requests.labels(self.venue, route, method, outcome).inc()
                m.http_latency.labels(self.venue, route, outcome).observe(elapsed)

        mapped = self.error_mapper(response) if self.error_mapper is not None else None
        if mapped is None:
            mapped = _generic_error(response, self.venue, retryable)
        if response.status >= 500:
            self._breaker_failure()
        elif self.breaker is not None:
            self.breaker.record_success()
        outcome = "ok" if mapped is None else mapped.kind.value
        m.http_requests.labels(self.venue, route, method, outcome).inc()
        m.http_latency.labels(self.venue, route, outcome).observe(elapsed)
        if mapped is None:
            return response
        hint = mapped.retry_after if isinstance(mapped, RateLimited) else None
        if hint is None and response.status >= 500:
            hint = parse_retry_after(response.headers.get("Retry-After"))
        return _Failure(mapped, retry_after=hint)

    def _breaker_failure(self) -> None:
        if self.breaker is not None:
            self.breaker.record_failure()


def _disable_implicit_retry(session: aiohttp.ClientSession) -> None:
    # aiohttp >= 3.10 silently re-sends GET/HEAD/OPTIONS/TRACE/PUT/DELETE once when the connection
    # drops (client.py, IDEMPOTENT_METHODS).  For a DELETE that cancels an order, or a PUT, that is a
    # blind re-send we must control ourselves; there is no public switch, and a test pins this.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
