"""What the exports did: counters, and the exporters and batch processors that keep them.

Its place: inside the SDK pipelines that `_pipeline.build_pipeline` assembles (imported only when
telemetry is on). Every OTLP exporter is wrapped so that what was lost is counted instead of
being felt by the run: a full queue drops a record (the SDK's oldest; the processors count it),
an export that fails (collector down, slow, refusing) drops its batch, and after the shutdown
deadline no export is tried at all. `Counters.summary` turns the counts into the results'
`TelemetrySummary`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics.export import (
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from nimbus_scenarios.results.model import TelemetrySummary

__all__ = [
    "Counters",
    "CountingLogExporter",
    "CountingLogProcessor",
    "CountingMetricExporter",
    "CountingSpanExporter",
    "CountingSpanProcessor",
    "Signal",
    "with_metric",
]


class Signal(StrEnum):
    """The three OTLP signals."""

    SPANS = "spans"
    LOGS = "logs"
    METRICS = "metrics"


class Counters:
    """What the exporters did, shared by the wrappers (updated from the export threads).

    Spans and logs count records; metrics count exports (a metric export is one snapshot, so
    there is no record to lose but the whole export).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans_submitted = 0
        self.spans_exported = 0
        self.spans_queue_full = 0
        self.logs_submitted = 0
        self.logs_exported = 0
        self.logs_queue_full = 0
        self.metric_exports = 0
        self.export_errors = 0
        self.deadline: float | None = None
        """After this `time.monotonic()` no export is attempted any more (set by shutdown)."""

    def past_deadline(self) -> bool:
        """Whether the shutdown deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def failed(self) -> None:
        """Record a failed export call (its records count as dropped: never exported)."""
        with self.lock:
            self.export_errors += 1

    def succeeded(self, signal: Signal, count: int) -> None:
        """Record `count` records (or, for metrics, one export) delivered."""
        with self.lock:
            if signal is Signal.SPANS:
                self.spans_exported += count
            elif signal is Signal.LOGS:
                self.logs_exported += count
            else:
                self.metric_exports += 1

    def summary(self, configured: TelemetrySummary) -> TelemetrySummary:
        """`configured` (what was set up) with the counts; dropped is everything not delivered."""
        with self.lock:
            return dataclasses.replace(
                configured,
                spans_exported=self.spans_exported,
                spans_dropped=max(self.spans_submitted - self.spans_exported, 0),
                spans_queue_full=self.spans_queue_full,
                logs_exported=self.logs_exported,
                logs_dropped=max(self.logs_submitted - self.logs_exported, 0),
                logs_queue_full=self.logs_queue_full,
                metric_exports=self.metric_exports,
                export_errors=self.export_errors,
            )


# ---------------------------------------------------------------------------------- exporters
class CountingSpanExporter(SpanExporter):
    """Wraps a span exporter: counts delivered spans and failed exports, gives up after the
    deadline."""

    def __init__(self, inner: SpanExporter, counters: Counters) -> None:
        self.inner = inner
        self.counters = counters

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the inner exporter, or fail at once past the shutdown deadline."""
        if self.counters.past_deadline():
            self.counters.failed()
            return SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        except Exception:  # an exporter bug is one more lost batch, never a dead export thread
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.counters.succeeded(Signal.SPANS, len(spans))
        else:
            self.counters.failed()
        return result

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


class CountingLogExporter(LogRecordExporter):
    """Wraps a log record exporter like `CountingSpanExporter`."""

    def __init__(self, inner: LogRecordExporter, counters: Counters) -> None:
        self.inner = inner
        self.counters = counters

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export through the inner exporter, or fail at once past the shutdown deadline."""
        if self.counters.past_deadline():
            self.counters.failed()
            return LogRecordExportResult.FAILURE
        try:
            result = self.inner.export(batch)
        except Exception:  # as for spans: a lost batch, counted
            result = LogRecordExportResult.FAILURE
        if result is LogRecordExportResult.SUCCESS:
            self.counters.succeeded(Signal.LOGS, len(batch))
        else:
            self.counters.failed()
        return result

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


def with_metric(
    data: MetricsData, metric: Metric, resource: Resource, scope: InstrumentationScope
) -> MetricsData:
    """`data` plus `metric` in our scope (added to the first resource, or a new one)."""
    resources = list(data.resource_metrics)
    if not resources:
        scoped = ScopeMetrics(scope=scope, metrics=[metric], schema_url="")
        return MetricsData(
            resource_metrics=[
                ResourceMetrics(resource=resource, scope_metrics=[scoped], schema_url="")
            ]
        )
    first = resources[0]
    scopes = list(first.scope_metrics)
    for i, scoped in enumerate(scopes):
        if scoped.scope.name == scope.name:
            scopes[i] = ScopeMetrics(
                scope=scoped.scope, metrics=[*scoped.metrics, metric], schema_url=scoped.schema_url
            )
            break
    else:
        scopes.append(ScopeMetrics(scope=scope, metrics=[metric], schema_url=""))
    resources[0] = ResourceMetrics(
        resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url
    )
    return MetricsData(resource_metrics=resources)


class CountingMetricExporter(MetricExporter):
    """Wraps a metric exporter: counts exports and failed exports, gives up after the deadline.

    It also adds `extra()` (when set and not None) to every export: the request durations that
    `_metrics.DurationHistogram` aggregates outside the SDK.
    """

    def __init__(
        self,
        inner: MetricExporter,
        counters: Counters,
        resource: Resource,
        scope: InstrumentationScope,
    ) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.counters = counters
        self.resource = resource
        self.scope = scope
        self.extra: Callable[[], Metric | None] | None = None

    # `**kwargs: Any` mirrors the SDK's own signature, which a subclass must accept.
    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export through the inner exporter, or fail at once past the shutdown deadline."""
        if self.counters.past_deadline():
            self.counters.failed()
            return MetricExportResult.FAILURE
        try:
            metric = self.extra() if self.extra is not None else None
            if metric is not None:
                metrics_data = with_metric(metrics_data, metric, self.resource, self.scope)
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:  # as for spans: a lost export, counted
            result = MetricExportResult.FAILURE
        if result is MetricExportResult.SUCCESS:
            self.counters.succeeded(Signal.METRICS, 0)
        else:
            self.counters.failed()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing is buffered here."""
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


# ---------------------------------------------------------------------------------- processors
class _QueueGauge:
    """Whether an SDK batch processor's bounded deque is full. The deque is private in 1.45; if
    it moves, `full` is always False: full queues are then not counted apart, though their
    records still count as dropped."""

    __slots__ = ("_maxlen", "_queue")

    def __init__(self, processor: object) -> None:
        batch = getattr(processor, "_batch_processor", None)
        queue = getattr(batch, "_queue", None)
        self._queue = queue if isinstance(queue, deque) and queue.maxlen else None
        self._maxlen = 0 if self._queue is None else self._queue.maxlen or 0

    def full(self) -> bool:
        """Whether the next record would push the oldest out."""
        return self._queue is not None and len(self._queue) >= self._maxlen


class CountingSpanProcessor(BatchSpanProcessor):
    """A `BatchSpanProcessor` that counts what it is given and what a full queue turns away."""

    def __init__(
        self,
        exporter: SpanExporter,
        counters: Counters,
        *,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay_millis: float,
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
        )
        self.counters = counters
        self._gauge = _QueueGauge(self)

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a finished span (a full queue drops its oldest, counted)."""
        # No lock: spans end on the event loop's thread only, and these two are read at shutdown.
        # The export thread may empty the queue between this check and the enqueue, so the
        # full-queue count can be a little high; `spans_dropped` (submitted - exported) is exact.
        counters = self.counters
        counters.spans_submitted += 1
        if self._gauge.full():
            counters.spans_queue_full += 1
        super().on_end(span)


class CountingLogProcessor(BatchLogRecordProcessor):
    """A `BatchLogRecordProcessor` that counts like `CountingSpanProcessor`."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        counters: Counters,
        *,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay_millis: float,
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
        )
        self.counters = counters
        self._gauge = _QueueGauge(self)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a log record (counted; a full queue drops one, counted too)."""
        counters = self.counters
        with counters.lock:  # log lines come from any thread (the SDK's own warnings too)
            counters.logs_submitted += 1
            if self._gauge.full():
                counters.logs_queue_full += 1
        super().on_emit(log_record)
