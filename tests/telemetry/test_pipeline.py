"""Tests of `_pipeline`: which providers a configuration builds, and the request span exporter."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from nimbus_scenarios.telemetry._counting import CountingMetricExporter, CountingSpanProcessor
from nimbus_scenarios.telemetry._pipeline import SCOPE_NAME, RequestSpanExporter, build_pipeline
from nimbus_scenarios.telemetry._wire import RequestShape, RequestSpan
from nimbus_scenarios.telemetry.config import resolve_config

ENDPOINT = "http://127.0.0.1:9"


def test_each_signal_that_is_on_gets_a_counting_provider() -> None:
    """Traces, metrics and logs each get a provider with counting wrappers; `none` gets none."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SERVICE_NAME": "svc"}
    pipeline = build_pipeline(resolve_config(env))
    try:
        assert pipeline.tracer_provider is not None
        assert isinstance(pipeline.span_processor, CountingSpanProcessor)
        assert pipeline.meter_provider is not None
        assert isinstance(pipeline.metric_exporter, CountingMetricExporter)
        assert pipeline.logger_provider is not None
        assert pipeline.resource.attributes["service.name"] == "svc"
        assert pipeline.scope.name == SCOPE_NAME
    finally:
        pipeline.shutdown(0.5)
    env |= {"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    metrics_only = build_pipeline(resolve_config(env))
    try:
        assert metrics_only.tracer_provider is None
        assert metrics_only.span_processor is None
        assert metrics_only.logger_provider is None
        assert metrics_only.meter_provider is not None
    finally:
        metrics_only.shutdown(0.5)


def test_request_spans_become_sdk_spans_without_the_fast_client() -> None:
    """Without the OTLP/HTTP client (gRPC) request spans go out as complete `ReadableSpan`s."""
    inner = InMemorySpanExporter()
    resource, scope = Resource({"service.name": "svc"}), InstrumentationScope(SCOPE_NAME)
    exporter = RequestSpanExporter(inner, resource, scope, fast=True)
    parent = SpanContext(0xABC, 0xDEF, False, TraceFlags(TraceFlags.SAMPLED))
    shape = RequestShape("GET /a", parent, {"nimbus.phase": "p"})
    span = RequestSpan(shape, 0x123, 1_000, 2_000, 404, "404", 1.5, False)
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    (readable,) = inner.get_finished_spans()
    assert readable.name == "GET /a"
    assert readable.kind is SpanKind.CLIENT
    assert readable.parent == parent
    assert (readable.context.trace_id, readable.context.span_id) == (0xABC, 0x123)
    assert (readable.start_time, readable.end_time) == (1_000, 2_000)
    assert dict(readable.attributes or {}) == {
        "nimbus.phase": "p",
        "http.response.status_code": 404,
        "error.type": "404",
        "nimbus.lateness_ms": 1.5,
        "nimbus.ok": False,
    }
