"""What the consumer's `/metrics` shows, kept and written by `prometheus_client`.

Its place: the `local.consumer` package; `server` observes every request here and serves the
exposition, and the local fleet's autoscaler scrapes it (`local.scrape`). The names, labels and
buckets are those of the real service's prometheus_fastapi_instrumentator defaults, because the
KEDA triggers in design/consumer-api.md query them:

- `http_requests_total{handler, method, status}`: `handler` is the route template (`/process`),
  or `none` for a path no route matches; `status` is grouped (`2xx`, `4xx`);
- `http_request_duration_seconds{handler, method}`: a histogram with buckets 0.1, 0.5 and 1 s;
- the GC, process and platform collectors the service's default registry carries
  (`python_gc_collections_total{generation}`, `process_cpu_seconds_total`,
  `process_resident_memory_bytes`, `python_info`, ...).

Each consumer owns one `CollectorRegistry`, so consumers started in one process (the tests do)
never share or double-register a series.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "UNMATCHED_HANDLER",
    "ConsumerMetrics",
    "handler_label",
    "status_group",
]

LATENCY_BUCKETS: Final = (0.1, 0.5, 1.0)
"""The instrumentator's few buckets of `http_request_duration_seconds` (+Inf is implied)."""
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""`generate_latest` writes the 0.0.4 text format, so the header says that version."""
UNMATCHED_HANDLER: Final = "none"
"""The instrumentator's `handler` label for a request no route matched."""


def handler_label(request: web.Request) -> str:
    """The route template (`/process`), or `none` for an unmatched path, as the instrumentator."""
    resource = request.match_info.route.resource
    return UNMATCHED_HANDLER if resource is None else resource.canonical


def status_group(status: int) -> str:
    """The instrumentator's default grouping of status codes: 200 -> `2xx`."""
    return f"{status // 100}xx"


class ConsumerMetrics:
    """One consumer's registry: HTTP request counts and latency, GC, process and platform."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("handler", "method", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation by "
            "handler is important.",
            ("handler", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        GCCollector(registry=self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe(self, handler: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self._requests.labels(handler, method, status_group(status)).inc()
        self._latency.labels(handler, method).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
