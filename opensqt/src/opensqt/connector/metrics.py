"""Prometheus metrics of the connector, with bounded label sets (method names, status codes, channels)."""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cqvx.transport.metrics import export_to

__all__ = ["ConnectorMetrics"]


class ConnectorMetrics:
    """The connector's metrics in their own registry (one per server, so tests can run several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        export_to(self.registry)  # the venue transport's series (HTTP, breaker, WebSocket) on /metrics
        self.rpcs = Counter(
            "opensqt_connector_rpcs",
            "VenueGateway RPCs by method and final gRPC status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "opensqt_connector_rpc_seconds",
            "Latency of successful unary RPCs, venue call included.",
            ["method"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )
        self.subscribers = Gauge(
            "opensqt_connector_stream_subscribers",
            "Live stream subscribers by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "opensqt_connector_slow_clients_dropped",
            "Stream subscribers dropped because their bounded buffer overflowed.",
            ["channel"],
            registry=self.registry,
        )
        self.upstream_reconnects = Counter(
            "opensqt_connector_upstream_reconnects",
            "Upstream venue stream reconnects (each one sends a StreamGap).",
            ["channel"],
            registry=self.registry,
        )
        self.venue_up = Gauge(
            "opensqt_connector_venue_up",
            "1 while the venue's last health probe reached it.",
            ["venue"],
            registry=self.registry,
        )

    def rpc(self, method: str, code: grpc.StatusCode, seconds: float | None = None) -> None:
        self.rpcs.labels(method, code.name).inc()
        if seconds is not None:
            self.latency.labels(method).observe(seconds)

    def set_subscribers(self, channel: str, count: int) -> None:
        self.subscribers.labels(channel).set(count)

    def drop(self, channel: str) -> None:
        self.dropped.labels(channel).inc()

    def reconnect(self, channel: str) -> None:
        self.upstream_reconnects.labels(channel).inc()

    def value(self, name: str, labels: dict[str, str]) -> float:
        """A sample's current value (0 when absent); for tests and the status page."""
        got = self.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got
