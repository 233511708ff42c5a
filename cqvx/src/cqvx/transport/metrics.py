"""Transport metrics, one set per injected ``CollectorRegistry``.

prometheus_client refuses to register a metric name twice in one registry, which is how cqi ended up
with silently metric-less second clients; here every transport on the same registry shares one set of
families, and the labels carry the venue.  Labels are bounded: venue, route *template*, enums.

Exporting: a transport built without a ``registry`` records into :func:`registry` (prometheus_client's
process default).  A process that serves ``/metrics`` from its own registry (the connector, the
engine) calls :func:`export_to` once with it, and the transport series (``cqvx_http_requests``,
``cqvx_http_retries``, ``cqvx_breaker_state``, ``cqvx_ws_reconnects``, ...) appear there too.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Metric

__all__ = ["TransportMetrics", "export_to", "metrics_for", "registry"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class TransportMetrics:
    http_requests: Counter
    http_latency: Histogram
    http_retries: Counter
    ratelimit_wait: Histogram
    breaker_state: Gauge
    signing_failures: Counter
    ws_reconnects: Counter
    ws_messages: Counter
    ws_dropped: Counter
    ws_queue_depth: Gauge
    ws_connected: Gauge


_lock = threading.Lock()
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, TransportMetrics] = weakref.WeakKeyDictionary()


def metrics_for(registry: CollectorRegistry | None = None) -> TransportMetrics:
    reg = REGISTRY if registry is None else registry
    with _lock:
        found = _by_registry.get(reg)
        if found is None:
            found = _build(reg)
            _by_registry[reg] = found
        return found


def registry() -> CollectorRegistry:
    """The registry transports record into when none is injected."""
    return REGISTRY


class _Exported:
    """Re-exposes the transport families of one registry inside another (read-only, at scrape time)."""

    def __init__(self, metrics: TransportMetrics) -> None:
        self._families = [getattr(metrics, f.name) for f in dataclasses.fields(metrics)]

    def collect(self) -> Iterable[Metric]:
        for family in self._families:
            yield from family.collect()


_exported: weakref.WeakKeyDictionary[CollectorRegistry, set[int]] = weakref.WeakKeyDictionary()


def export_to(target: CollectorRegistry, source: CollectorRegistry | None = None) -> None:
    """Make ``target`` serve the transport metrics recorded in ``source`` (default :func:`registry`).

    Idempotent per (target, source); a no-op when they are the same registry.
    """
    src = registry() if source is None else source
    if target is src:
        return
    with _lock:
        done = _exported.setdefault(target, set())
        if id(src) in done:
            return
        done.add(id(src))
    target.register(_Exported(metrics_for(src)))


def _build(reg: CollectorRegistry) -> TransportMetrics:
    return TransportMetrics(
        http_requests=Counter(
            "cqvx_http_requests",
            "HTTP attempts by venue, route template, method and outcome",
            ["venue", "route", "method", "outcome"],
            registry=reg,
        ),
        http_latency=Histogram(
            "cqvx_http_request_duration_seconds",
            "HTTP attempt latency",
            ["venue", "route", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        ),
        http_retries=Counter(
            "cqvx_http_retries", "HTTP retries by reason", ["venue", "route", "reason"], registry=reg
        ),
        ratelimit_wait=Histogram(
            "cqvx_ratelimit_wait_seconds",
            "Time spent waiting for rate-limit tokens",
            ["venue", "group"],
            buckets=(0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
            registry=reg,
        ),
        breaker_state=Gauge(
            "cqvx_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            ["venue"],
            registry=reg,
        ),
        signing_failures=Counter(
            "cqvx_signing_failures", "Requests whose signing raised", ["venue"], registry=reg
        ),
        ws_reconnects=Counter(
            "cqvx_ws_reconnects",
            "WebSocket reconnects by reason",
            ["venue", "stream", "reason"],
            registry=reg,
        ),
        ws_messages=Counter(
            "cqvx_ws_messages", "WebSocket messages received", ["venue", "stream"], registry=reg
        ),
        ws_dropped=Counter(
            "cqvx_ws_dropped_messages",
            "Messages dropped because the consumer queue was full",
            ["venue", "stream"],
            registry=reg,
        ),
        ws_queue_depth=Gauge(
            "cqvx_ws_queue_depth",
            "Messages waiting for the consumer (lag)",
            ["venue", "stream"],
            registry=reg,
        ),
        ws_connected=Gauge("cqvx_ws_connected", "1 while connected", ["venue", "stream"], registry=reg),
    )
