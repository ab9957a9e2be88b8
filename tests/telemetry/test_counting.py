"""Tests of `_counting`: what the wrapped exporters and processors count, and the summary."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.telemetry._counting import (
    Counters,
    CountingSpanExporter,
    CountingSpanProcessor,
    with_metric,
)
from nimbus_scenarios.telemetry._durations import DurationHistogram

CONFIGURED = TelemetrySummary(
    enabled=True, endpoint="http://c:4318", protocol="http/protobuf", trace_sample=10.0
)


class Scripted(SpanExporter):
    """A span exporter answering from a script: a result, or an exception to raise."""

    def __init__(self, *answers: SpanExportResult | Exception) -> None:
        self.answers = list(answers)
        self.batches: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        self.batches.append(len(spans))
        answer = self.answers.pop(0) if self.answers else SpanExportResult.SUCCESS
        if isinstance(answer, Exception):
            raise answer
        return answer


def _spans(count: int) -> list[ReadableSpan]:
    tracer = TracerProvider().get_tracer("test")
    spans = []
    for i in range(count):
        span = tracer.start_span(f"s{i}")
        span.end()
        assert isinstance(span, ReadableSpan)
        spans.append(span)
    return spans


def test_summary_keeps_the_configuration_and_counts_drops_as_not_delivered() -> None:
    """Dropped is submitted minus exported, whatever lost them; the configuration is kept."""
    counters = Counters()
    counters.spans_submitted, counters.logs_submitted = 10, 4
    exporter = CountingSpanExporter(
        Scripted(SpanExportResult.SUCCESS, SpanExportResult.FAILURE, RuntimeError("bug")),
        counters,
    )
    assert exporter.export(_spans(6)) is SpanExportResult.SUCCESS
    assert exporter.export(_spans(2)) is SpanExportResult.FAILURE
    assert exporter.export(_spans(2)) is SpanExportResult.FAILURE  # raised: counted, not raised
    summary = counters.summary(CONFIGURED)
    assert summary == TelemetrySummary(
        enabled=True,
        endpoint="http://c:4318",
        protocol="http/protobuf",
        trace_sample=10.0,
        spans_exported=6,
        spans_dropped=4,
        logs_dropped=4,
        export_errors=2,
    )


def test_nothing_is_tried_past_the_shutdown_deadline() -> None:
    """Past the deadline an export fails at once, without reaching the collector."""
    counters = Counters()
    inner = Scripted()
    exporter = CountingSpanExporter(inner, counters)
    counters.deadline = time.monotonic() - 1.0
    assert exporter.export(_spans(3)) is SpanExportResult.FAILURE
    assert inner.batches == []
    assert counters.export_errors == 1


def test_a_full_queue_turns_spans_away_and_counts_them() -> None:
    """With the export thread held, a queue of 2 turns the rest away; all is accounted for."""
    counters = Counters()
    inner = Scripted()
    inner.release.clear()
    processor = CountingSpanProcessor(
        CountingSpanExporter(inner, counters),
        counters,
        max_queue_size=2,
        max_export_batch_size=2,
        schedule_delay_millis=60_000,
    )
    for span in _spans(8):
        processor.on_end(span)
    inner.release.set()
    processor.shutdown()
    summary = counters.summary(CONFIGURED)
    assert counters.spans_submitted == 8
    assert summary.spans_exported + summary.spans_dropped == 8
    assert summary.spans_dropped >= 4  # at most 2 queued and 2 in the held export
    # Every drop here is a full queue's; the count may be high by what the export thread took
    # between the check and the enqueue.
    assert summary.spans_queue_full >= summary.spans_dropped


def test_with_metric_joins_our_scope_or_makes_one() -> None:
    """The duration histogram rides on an export: in our scope if present, else a new one."""
    histogram = DurationHistogram((1.0,), lambda key: {"phase": key[0]})
    histogram.record(("p", "a", True, 200, None), 0.5, None)
    metric = histogram.metric()
    assert metric is not None
    resource, scope = Resource({"service.name": "s"}), InstrumentationScope("nimbus_scenarios")
    alone = with_metric(MetricsData(resource_metrics=[]), metric, resource, scope)
    (resource_metrics,) = alone.resource_metrics
    assert resource_metrics.resource is resource
    (scoped,) = resource_metrics.scope_metrics
    assert (scoped.scope, list(scoped.metrics)) == (scope, [metric])
    joined = with_metric(alone, metric, resource, scope)
    (scoped,) = joined.resource_metrics[0].scope_metrics
    assert list(scoped.metrics) == [metric, metric]
    other = with_metric(alone, metric, resource, InstrumentationScope("other"))
    assert [s.scope.name for s in other.resource_metrics[0].scope_metrics] == [
        "nimbus_scenarios",
        "other",
    ]
