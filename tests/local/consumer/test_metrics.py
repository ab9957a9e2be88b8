"""Tests of the consumer's Prometheus metrics (local.consumer.metrics).

Expositions are read back with `prometheus_client`'s own parser, as the local autoscaler reads
them, so a check fails on a malformed text as well as on a wrong value.
"""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nimbus_scenarios.local.consumer import ReferenceConsumer
from nimbus_scenarios.local.consumer.metrics import (
    CONTENT_TYPE,
    LATENCY_BUCKETS,
    ConsumerMetrics,
    status_group,
)
from tests.local.consumer.support import fetch, serve

Key = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Key, float]:
    """Every sample of an exposition: `(name, labels)` -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def key(name: str, **labels: str) -> Key:
    """A sample's key in `samples`."""
    return name, frozenset(labels.items())


def types(text: str) -> dict[str, str]:
    """Each family's declared type (counter family names lose their `_total`)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def test_metrics_count_requests() -> None:
    """/metrics counts each request by route template (404 as `none`) plus latency and GC."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> str:
        base = consumer.base_url
        for _ in range(2):
            await fetch(session, "GET", f"{base}/health")
        for _ in range(3):
            await fetch(session, "POST", f"{base}/process?duration=0")
        await fetch(session, "GET", f"{base}/nope")
        async with session.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            return await response.text()

    text = serve(scenario)
    found = samples(text)
    requests = "http_requests_total"
    assert found[key(requests, handler="/health", method="GET", status="2xx")] == 2
    assert found[key(requests, handler="/process", method="POST", status="4xx")] == 3
    assert found[key(requests, handler="none", method="GET", status="4xx")] == 1
    latency = "http_request_duration_seconds"
    assert found[key(f"{latency}_count", handler="/process", method="POST")] == 3
    assert found[key(f"{latency}_sum", handler="/process", method="POST")] > 0
    assert found[key(f"{latency}_bucket", handler="/health", method="GET", le="+Inf")] == 2
    assert key("python_gc_collections_total", generation="0") in found
    declared = types(text)
    assert declared["http_requests"] == "counter"
    assert declared["http_request_duration_seconds"] == "histogram"
    assert declared["python_gc_collections"] == "counter"


def test_latency_buckets_are_cumulative_with_the_instrumentator_bounds() -> None:
    """Latencies 0.05, 0.3, 0.7 and 2 s fill the 0.1/0.5/1/+Inf buckets as 1, 2, 3, 4."""
    metrics = ConsumerMetrics()
    for seconds in (0.05, 0.3, 0.7, 2.0):
        metrics.observe("/process", "POST", 200, seconds)
    found = samples(metrics.exposition().decode())
    bucket = "http_request_duration_seconds_bucket"
    counts = [
        found[key(bucket, handler="/process", method="POST", le=le)]
        for le in ("0.1", "0.5", "1.0", "+Inf")
    ]
    assert LATENCY_BUCKETS == (0.1, 0.5, 1.0)
    assert counts == [1, 2, 3, 4]
    total = found[key("http_request_duration_seconds_sum", handler="/process", method="POST")]
    assert total == pytest.approx(3.05)


@pytest.mark.parametrize(
    ("status", "group"), [(200, "2xx"), (201, "2xx"), (422, "4xx"), (503, "5xx")]
)
def test_status_codes_are_grouped_by_hundreds(status: int, group: str) -> None:
    """Status labels are grouped as the instrumentator does by default."""
    assert status_group(status) == group
    metrics = ConsumerMetrics()
    metrics.observe("/process", "POST", status, 0.01)
    found = samples(metrics.exposition().decode())
    assert found[key("http_requests_total", handler="/process", method="POST", status=group)] == 1


def test_each_consumer_has_its_own_registry() -> None:
    """Two consumers' metrics in one process neither share counts nor clash on registration."""
    first, second = ConsumerMetrics(), ConsumerMetrics()
    first.observe("/health", "GET", 200, 0.01)
    first.observe("/health", "GET", 200, 0.01)
    second.observe("/health", "GET", 200, 0.01)
    label = key("http_requests_total", handler="/health", method="GET", status="2xx")
    assert samples(first.exposition().decode())[label] == 2
    assert samples(second.exposition().decode())[label] == 1


def test_gc_and_process_metrics_are_exposed() -> None:
    """The GC counters of every generation and the process CPU and memory series are present."""
    found = samples(ConsumerMetrics().exposition().decode())
    names = {name for name, _ in found}
    for generation in ("0", "1", "2"):
        assert key("python_gc_collections_total", generation=generation) in found
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert found[key("process_resident_memory_bytes")] > 0
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_a_fresh_consumer_exposes_no_request_series() -> None:
    """Before any request the HTTP families are declared but carry no samples."""
    text = ConsumerMetrics().exposition().decode()
    assert "# TYPE http_requests_total counter" in text
    assert not any(name.startswith("http_") for name, _ in samples(text))
