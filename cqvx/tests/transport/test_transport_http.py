"""HttpTransport against the real fault-injecting fake server over loopback (no mocks)."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import random
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from cqvx.auth.hmac import OKX, HmacSigner
from cqvx.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
)
from cqvx.secrets import Secret
from cqvx.testing.fakeserver import FakeServer
from cqvx.transport.breaker import BreakerState, CircuitBreaker
from cqvx.transport.http import HttpResponse, HttpTransport, RetryPolicy, parse_retry_after
from cqvx.transport.ratelimit import RateLimiterRegistry, TokenBucket

FAST = RetryPolicy(retries=3, base_delay=0.01, max_delay=0.05)


class Venue(FakeServer):
    def setup_routes(self, app: web.Application) -> None:
        async def item(request: web.Request) -> web.Response:
            return web.json_response({"id": request.match_info["id"]})

        async def order(request: web.Request) -> web.Response:
            return web.json_response({"ok": True, "body": (await request.read()).decode()})

        async def status(request: web.Request) -> web.Response:
            code = int(request.match_info["code"])
            return web.json_response({"code": "E1", "msg": "nope"}, status=code)

        async def venue_error(request: web.Request) -> web.Response:
            return web.json_response({"code": "51000", "msg": "param error", "secret": "leak-me"})

        app.router.add_get("/items/{id}", item)
        app.router.add_get("/v1/items/{id}", item)
        app.router.add_post("/orders", order)
        app.router.add_post("/v1/orders", order)
        app.router.add_delete("/orders/{id}", order)
        app.router.add_get("/status/{code}", status)
        app.router.add_get("/venue-error", venue_error)


@pytest.fixture
async def server() -> AsyncIterator[Venue]:
    async with Venue() as s:
        yield s


def transport(server: Venue, **kw: object) -> HttpTransport:
    kw.setdefault("retry", FAST)
    kw.setdefault("registry", CollectorRegistry())
    return HttpTransport(server.url, venue="fake", **kw)  # type: ignore[arg-type]


async def test_retries_5xx_with_backoff_then_succeeds(server: Venue) -> None:
    server.fail("/items/1", times=2, status=503)
    reg = CollectorRegistry()
    async with transport(server, registry=reg) as t:
        resp = await t.get("/items/1", route="/items/{id}")
    assert resp.status == 200 and resp.json() == {"id": "1"}
    assert len(server.requests_to("/items/1")) == 3
    assert (
        reg.get_sample_value(
            "cqvx_http_retries_total", {"venue": "fake", "route": "/items/{id}", "reason": "unavailable"}
        )
        == 2
    )
    ok = {"venue": "fake", "route": "/items/{id}", "method": "GET", "outcome": "ok"}
    assert reg.get_sample_value("cqvx_http_requests_total", ok) == 1
    # Route templates only: the raw path never becomes a label value.
    labels = {s.labels.get("route") for m in reg.collect() for s in m.samples}
    assert "/items/1" not in labels


async def test_retry_after_seconds_is_honoured(server: Venue) -> None:
    server.rate_limit("/items/2", times=1, retry_after="0.3")
    async with transport(server) as t:
        resp = await t.get("/items/2", route="/items/{id}")
    assert resp.status == 200
    first, second = server.requests_to("/items/2")
    assert second.at - first.at >= 0.29


async def test_retry_after_http_date_is_honoured(server: Venue) -> None:
    # HTTP dates have one-second resolution; 2 s ahead guarantees a wait of at least 1 s.
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    server.rate_limit("/items/3", times=1, retry_after=when)
    async with transport(server) as t:
        await t.get("/items/3", route="/items/{id}")
    first, second = server.requests_to("/items/3")
    assert second.at - first.at >= 0.99


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(
        30, abs=1
    )
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert (
        parse_retry_after("soon") is None
        and parse_retry_after(None) is None
        and parse_retry_after("nan") is None
    )


async def test_retry_after_beyond_cap_is_raised(server: Venue) -> None:
    server.rate_limit("/items/4", times=1, retry_after=120)
    async with transport(server) as t:
        with pytest.raises(RateLimited) as info:
            await t.get("/items/4", route="/items/{id}")
    assert info.value.retry_after == 120 and info.value.http_status == 429
    assert len(server.requests_to("/items/4")) == 1


@pytest.mark.parametrize("fault", ["reset", "503", "timeout"])
async def test_non_idempotent_post_is_never_resent(server: Venue, fault: str) -> None:
    if fault == "reset":
        server.reset("/orders")
    elif fault == "503":
        server.fail("/orders", status=503)
    else:
        server.delay("/orders", 0.5)
    async with transport(server, timeout=0.15) as t:
        with pytest.raises(Timeout) as info:
            await t.post("/orders", route="/orders", json={"side": "buy", "qty": "1"})
    assert info.value.retry_safe is False
    # "No re-send" has no event to wait on. The first request is already recorded (the server logs it
    # on arrival, before the fault) and the transport is closed, so only a re-send already on the wire
    # could still land: a short bounded window over loopback covers it.
    await asyncio.sleep(0.05)
    assert len(server.requests_to("/orders")) == 1


async def test_non_idempotent_delete_is_never_resent_even_by_aiohttp(server: Venue) -> None:
    # aiohttp itself re-sends DELETE once on a dropped connection unless switched off.
    server.reset("/orders/9")
    async with transport(server) as t:
        with pytest.raises(Timeout):
            await t.delete("/orders/9", route="/orders/{id}")
    assert len(server.requests_to("/orders/9")) == 1


async def test_non_idempotent_post_429_is_not_resent(server: Venue) -> None:
    server.rate_limit("/orders", retry_after=0)
    async with transport(server) as t:
        with pytest.raises(RateLimited):
            await t.post("/orders", route="/orders", body=b"{}")
    assert len(server.requests_to("/orders")) == 1


async def test_idempotent_post_is_retried_with_identical_bytes(server: Venue) -> None:
    server.reset("/orders")
    server.fail("/orders", status=502)
    async with transport(server) as t:
        resp = await t.post(
            "/orders", route="/orders", json={"client_order_id": "cq-1", "qty": "0.1"}, idempotent=True
        )
    assert resp.json()["ok"] is True
    reqs = server.requests_to("/orders")
    assert len(reqs) == 3
    assert {r.body for r in reqs} == {b'{"client_order_id":"cq-1","qty":"0.1"}'}


async def test_connection_refused_is_retried_then_unavailable() -> None:
    dead = Venue()
    await dead.start()
    url = dead.url
    await dead.stop()
    t = HttpTransport(
        url, venue="fake", retry=RetryPolicy(retries=2, base_delay=0.01), registry=CollectorRegistry()
    )
    async with t:
        with pytest.raises(Unavailable) as info:
            # Never sent, so even a POST may be retried; it still fails: nothing listens.
            await t.post("/orders", route="/orders", body=b"{}")
    assert info.value.retry_safe is True


async def test_retries_zero_means_no_retry(server: Venue) -> None:
    server.fail("/items/5", times=1, status=503)
    async with transport(server, retry=RetryPolicy(retries=0)) as t:
        with pytest.raises(Unavailable):
            await t.get("/items/5", route="/items/{id}")
    assert len(server.requests_to("/items/5")) == 1


async def test_signer_signs_exact_bytes_sent(server: Venue) -> None:
    """The server recomputes the OKX-style signature from the raw target and body it received."""
    secret = "okx-secret-value"
    signer = HmacSigner(OKX, "AK", Secret(secret), passphrase=Secret("PP"))
    async with HttpTransport(
        server.url + "/v1", venue="fake", signer=signer, retry=FAST, registry=CollectorRegistry()
    ) as t:
        await t.get("/items/7", route="/items/{id}", params={"b": "x y", "a": "1/2", "z": "é", "t": True})
        await t.post("/orders", route="/orders", json={"px": "1.50", "note": "a b"})
    for req in server.requests[-2:]:
        pre = (
            req.headers["OK-ACCESS-TIMESTAMP"].encode()
            + req.method.encode()
            + req.path_qs.encode()
            + req.body
        )
        want = base64.b64encode(hmac.new(secret.encode(), pre, hashlib.sha256).digest()).decode()
        assert req.headers["OK-ACCESS-SIGN"] == want
        assert req.path_qs.startswith("/v1/")
        assert secret not in json.dumps(req.headers)
    assert server.requests[-2].path_qs == "/v1/items/7?b=x+y&a=1%2F2&z=%C3%A9&t=true"


async def test_each_attempt_is_signed_afresh(server: Venue) -> None:
    calls: list[str] = []

    class Counting:
        def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
            calls.append(path)
            return {"X-Attempt": str(len(calls))}

    server.fail("/items/8", times=2, status=500)
    async with transport(server, signer=Counting()) as t:
        await t.get("/items/8", route="/items/{id}")
    assert [r.headers["X-Attempt"] for r in server.requests_to("/items/8")] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("code", "cls"),
    [(400, InvalidRequest), (401, AuthenticationError), (403, PermissionDenied), (404, NotFound)],
)
async def test_generic_status_mapping(server: Venue, code: int, cls: type[VenueError]) -> None:
    async with transport(server) as t:
        with pytest.raises(cls) as info:
            await t.get(f"/status/{code}", route="/status/{code}")
    assert info.value.http_status == code and info.value.venue == "fake"
    assert len(server.requests_to(f"/status/{code}")) == 1  # 4xx is never retried


async def test_error_mapper_hook_sees_every_response(server: Venue) -> None:
    def mapper(resp: HttpResponse) -> VenueError | None:
        data = resp.json()
        if isinstance(data, dict) and data.get("code") == "51000":
            return InvalidRequest(data["msg"], code="51000", venue="fake", raw=resp.body)
        return None

    async with transport(server, error_mapper=mapper) as t:
        with pytest.raises(InvalidRequest) as info:
            await t.get("/venue-error", route="/venue-error")
        assert (await t.get("/items/1", route="/items/{id}")).status == 200
    assert info.value.code == "51000"
    assert "leak-me" not in repr(info.value.raw)


async def test_breaker_opens_and_recovers(server: Venue) -> None:
    reg = CollectorRegistry()
    now = [0.0]  # a fake clock: the reset timeout elapses when the test says so, not after a sleep
    breaker = CircuitBreaker(
        "fake", failure_threshold=3, reset_timeout=0.3, clock=lambda: now[0], registry=reg
    )
    server.fail("/items/1", times=None, status=503)  # down until cleared
    async with transport(server, breaker=breaker, retry=RetryPolicy(retries=0), registry=reg) as t:
        for _ in range(3):
            with pytest.raises(Unavailable):
                await t.get("/items/1", route="/items/{id}")
        assert breaker.state is BreakerState.OPEN
        assert reg.get_sample_value("cqvx_breaker_state", {"venue": "fake"}) == 2
        seen = len(server.requests)
        with pytest.raises(Unavailable) as info:
            await t.get("/items/1", route="/items/{id}")
        assert info.value.code == "circuit_open"
        assert len(server.requests) == seen  # fails fast: nothing sent
        now[0] = 0.29
        assert _state(breaker) is BreakerState.OPEN  # not before reset_timeout
        # Half-open probe that fails re-opens for another reset_timeout.
        now[0] = 0.31
        with pytest.raises(Unavailable):
            await t.get("/items/1", route="/items/{id}")
        assert breaker.state is BreakerState.OPEN
        server.clear_faults()
        now[0] = 0.5
        assert _state(breaker) is BreakerState.OPEN  # the new reset_timeout counts from the failed probe
        now[0] = 0.62
        assert _state(breaker) is BreakerState.HALF_OPEN
        assert (await t.get("/items/1", route="/items/{id}")).status == 200
        assert _state(breaker) is BreakerState.CLOSED
        assert reg.get_sample_value("cqvx_breaker_state", {"venue": "fake"}) == 0


def _state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # a call, so mypy does not carry the earlier narrowing over a sleep


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_zero_requests_above_rate_under_tenfold_demand(server: Venue) -> None:
    """Two transports share one named bucket (40/s, burst 4); 80 requests offered at once, plus
    retries: server-side arrivals never exceed burst + rate * window in any window."""
    rate, burst = 40.0, 4.0
    registry = RateLimiterRegistry()
    reg = CollectorRegistry()
    bucket = registry.get("fake", "orders", rate=rate, capacity=burst, registry=reg)
    assert registry.get("fake", "orders", rate=rate, capacity=burst) is bucket
    with pytest.raises(ValueError):
        registry.get("fake", "orders", rate=10, capacity=burst)
    server.fail("/items/1", times=10, status=503)  # retried attempts must also be limited
    a = transport(server, limiter=bucket, registry=reg)
    b = transport(server, limiter=bucket, registry=reg)
    start = time.monotonic()
    async with a, b:
        await asyncio.gather(*((a if i % 2 else b).get("/items/1", route="/items/{id}") for i in range(50)))
    elapsed = time.monotonic() - start
    times = [r.at for r in server.requests]
    assert len(times) == 60
    jitter = 0.05  # loopback delivery jitter between the client's send and the server's timestamp
    for window in (0.1, 0.25, 0.5, 1.0):
        assert _max_in_window(times, window) <= int(burst + rate * (window + jitter)), window
    # ...and the budget is used, not wasted: 60 requests need (60 - burst) / rate seconds.
    assert elapsed >= (60 - burst) / rate * 0.97
    assert elapsed < (60 - burst) / rate + 1.0
    assert (
        reg.get_sample_value("cqvx_ratelimit_wait_seconds_count", {"venue": "fake", "group": "orders"}) == 60
    )


async def test_token_bucket_weights_and_fifo() -> None:
    bucket = TokenBucket(rate=100, capacity=10, registry=CollectorRegistry())
    order: list[str] = []

    async def take(name: str, w: float) -> None:
        await bucket.acquire(w)
        order.append(name)

    await bucket.acquire(10)  # empty it
    await asyncio.gather(take("heavy", 8), take("light1", 1), take("light2", 1))
    assert order == ["heavy", "light1", "light2"]  # the heavy waiter is not starved
    with pytest.raises(ValueError):
        await bucket.acquire(11)
    assert bucket.try_acquire(100) is False


# --- one retry owner, bounded lifetime ------------------------------------------------------------


async def test_sustained_429_reaches_the_server_one_plus_retries_times(server: Venue) -> None:
    server.fail("/items/1", times=None, status=429, headers={"Retry-After": "0"})
    async with transport(server, retry=RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02)) as t:
        with pytest.raises(RateLimited) as info:
            await t.get("/items/1", route="/items/{id}")
    assert len(server.requests_to("/items/1")) == 3
    assert info.value.attempts == 3 and info.value.retried is True


async def test_an_error_that_was_not_retried_says_so(server: Venue) -> None:
    async with transport(server) as t:
        with pytest.raises(NotFound) as info:
            await t.get("/status/404", route="/status/{code}")
    assert info.value.attempts == 1 and info.value.retried is False


async def test_connection_failures_retried_by_the_transport_are_marked_retried() -> None:
    dead = Venue()
    await dead.start()
    url = dead.url
    await dead.stop()
    policy = RetryPolicy(retries=2, base_delay=0.01)
    async with HttpTransport(url, venue="fake", retry=policy, registry=CollectorRegistry()) as t:
        with pytest.raises(Unavailable) as info:
            await t.get("/items/1", route="/items/{id}")
    assert info.value.attempts == 3 and info.value.retried is True


async def test_no_attempt_starts_after_the_total_budget(server: Venue) -> None:
    """Many retries allowed, but the budget (not the count) ends the call: every attempt arrives
    within max_elapsed of the call, and the call ends within it too (no sleep crosses it)."""
    server.fail("/items/1", times=None, status=503, headers={"Retry-After": "0.1"})
    policy = RetryPolicy(retries=100, base_delay=0.01, max_elapsed=0.35)
    async with transport(server, retry=policy) as t:
        start = time.monotonic()
        with pytest.raises(Unavailable) as info:
            await t.get("/items/1", route="/items/{id}")
        elapsed = time.monotonic() - start
    arrivals = [r.at for r in server.requests_to("/items/1")]
    assert 2 <= len(arrivals) <= 4  # ~0.1 s apart within 0.35 s
    assert all(at - start <= 0.35 for at in arrivals)
    assert elapsed <= 0.35 + t.timeout
    assert info.value.attempts == len(arrivals)


async def test_a_rate_limit_wait_past_the_budget_sends_nothing(server: Venue) -> None:
    bucket = TokenBucket(rate=5, capacity=1, registry=CollectorRegistry())
    await bucket.acquire(1)  # empty: the next token comes in 0.2 s, after the 0.05 s budget
    async with transport(server, limiter=bucket, retry=RetryPolicy(max_elapsed=0.05)) as t:
        with pytest.raises(RateLimited) as info:
            await t.post("/orders", route="/orders", body=b"{}")
    assert info.value.code == "local_budget" and info.value.retry_safe is True
    assert info.value.retried is False
    assert server.requests_to("/orders") == []


def test_max_request_lifetime_is_the_budget_plus_one_attempt() -> None:
    policy = RetryPolicy(retries=3, max_elapsed=20.0)
    assert policy.max_request_lifetime(5.0) == 25.0
    assert HttpTransport("http://x.test", venue="x", timeout=2.0, retry=policy).max_request_lifetime == 22.0
    with pytest.raises(ValueError):
        RetryPolicy(max_elapsed=0)


def test_retry_after_wins_over_the_backoff_with_a_little_jitter() -> None:
    policy = RetryPolicy(base_delay=0.01, max_delay=0.02)
    rng = random.Random(7)
    waits = [policy.backoff(1, rng, retry_after=2.0) for _ in range(50)]
    assert all(2.0 <= w <= 2.2 for w in waits) and len(set(waits)) > 1
    assert all(0 <= policy.backoff(5, rng) <= 0.02 for _ in range(50))
