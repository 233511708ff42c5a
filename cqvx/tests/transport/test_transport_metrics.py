"""export_to: a process's own registry serves the transport families, once, read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from cqvx.transport.metrics import export_to, metrics_for, registry


def test_export_to_serves_the_source_families_once_and_live() -> None:
    source, target = CollectorRegistry(), CollectorRegistry()
    Counter("own_things", "the target's own metric", registry=target).inc()
    export_to(target, source)
    export_to(target, source)  # idempotent
    metrics_for(source).http_retries.labels("v", "/r", "timeout").inc(2)  # recorded after exporting
    labels = {"venue": "v", "route": "/r", "reason": "timeout"}
    assert target.get_sample_value("cqvx_http_retries_total", labels) == 2
    text = generate_latest(target).decode()
    assert text.count("# TYPE cqvx_http_retries_total counter") == 1
    assert "own_things_total 1.0" in text


def test_export_to_itself_is_a_no_op() -> None:
    metrics_for(None)  # the default registry holds the families itself
    export_to(registry())
    assert generate_latest(registry()).count(b"# TYPE cqvx_http_requests_total") == 1
