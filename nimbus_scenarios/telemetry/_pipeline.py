"""The OpenTelemetry SDK pipelines: providers, OTLP exporters, and the counters around them.

Imported only when telemetry is on (`Telemetry.start` with an endpoint), never by `validate` or
`plan`. Every signal exports on the SDK's own background thread through a bounded queue; the
exporters are wrapped so that what was lost is counted (`Counters`) instead of being felt by the
run: a queue that is full drops the newest record, an export that fails (collector down, slow,
refusing) drops its batch, and after the shutdown deadline nothing more is tried.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from nimbus_scenarios import __version__
from nimbus_scenarios.telemetry.config import TelemetryConfig

__all__ = ["Counters", "Pipeline", "build_pipeline"]

SCOPE_NAME = "nimbus_scenarios"


class Counters:
    """What the exporters did, shared by the wrappers (updated from export threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans_submitted = 0
        self.spans_exported = 0
        self.spans_failed = 0
        self.spans_queue_full = 0
        self.logs_submitted = 0
        self.logs_exported = 0
        self.logs_failed = 0
        self.logs_queue_full = 0
        self.metric_exports = 0
        self.export_errors = 0
        self.deadline: float | None = None
        """After this monotonic time no export is attempted any more (set by shutdown)."""

    def past_deadline(self) -> bool:
        """Whether the shutdown deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def failed(self, signal: str, count: int) -> None:
        """Record a failed export of `count` records."""
        with self.lock:
            self.export_errors += 1
            if signal == "spans":
                self.spans_failed += count
            elif signal == "logs":
                self.logs_failed += count

    def succeeded(self, signal: str, count: int) -> None:
        """Record `count` records delivered."""
        with self.lock:
            if signal == "spans":
                self.spans_exported += count
            elif signal == "logs":
                self.logs_exported += count
            else:
                self.metric_exports += 1

    def snapshot(self) -> dict[str, int]:
        """The counters for the results document (drops are everything not delivered)."""
        with self.lock:
            return {
                "spans_exported": self.spans_exported,
                "spans_dropped": max(self.spans_submitted - self.spans_exported, 0),
                "spans_queue_full": self.spans_queue_full,
                "logs_exported": self.logs_exported,
                "logs_dropped": max(self.logs_submitted - self.logs_exported, 0),
                "logs_queue_full": self.logs_queue_full,
                "metric_exports": self.metric_exports,
                "export_errors": self.export_errors,
            }


class CountingSpanExporter(SpanExporter):
    """Wraps a span exporter: counts delivered and failed spans, gives up after the deadline."""

    def __init__(self, inner: SpanExporter, counters: Counters) -> None:
        self.inner = inner
        self.counters = counters

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the inner exporter, or fail at once past the shutdown deadline."""
        if self.counters.past_deadline():
            self.counters.failed("spans", len(spans))
            return SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.counters.succeeded("spans", len(spans))
        else:
            self.counters.failed("spans", len(spans))
        return result

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


class RequestSpanExporter(SpanExporter):
    """Exports SDK spans and `RequestSpan`s together.

    Over OTLP/HTTP the request spans are encoded by `_wire` (fast) and the bytes are posted
    through the SDK exporter's own HTTP client (its retries, headers, compression, timeout);
    where that client is not available (gRPC, or a future SDK) they become `ReadableSpan`s for
    the inner exporter.
    """

    def __init__(self, inner: SpanExporter, resource: Resource, *, fast: bool) -> None:
        from nimbus_scenarios.telemetry._wire import encode_resource_scope

        self.inner = inner
        self.resource = resource
        self.scope = InstrumentationScope(SCOPE_NAME, __version__)
        self._client = getattr(inner, "_client", None) if fast else None
        self._encoded = encode_resource_scope(resource, self.scope)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode and send one batch."""
        from nimbus_scenarios.telemetry._wire import encode_request_spans, split

        sdk, requests = split(spans)
        client = self._client
        if client is None or not callable(getattr(client, "export", None)):
            readable = [r.shape.readable(r, self.resource, self.scope) for r in requests]
            return self.inner.export([*sdk, *readable])
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        data = encode_spans(sdk).SerializePartialToString() if sdk else b""
        if requests:
            data += encode_request_spans(*self._encoded, requests)
        result = client.export(data)
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE

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
            self.counters.failed("logs", len(batch))
            return LogRecordExportResult.FAILURE
        try:
            result = self.inner.export(batch)
        except Exception:
            result = LogRecordExportResult.FAILURE
        if result is LogRecordExportResult.SUCCESS:
            self.counters.succeeded("logs", len(batch))
        else:
            self.counters.failed("logs", len(batch))
        return result

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


class _Series:
    """One attribute set of `DurationHistogram`."""

    __slots__ = ("attributes", "count", "counts", "max", "min", "sum")

    def __init__(self, attributes: Mapping[str, str], buckets: int) -> None:
        self.attributes = dict(attributes)
        self.counts = [0] * buckets
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf


class DurationHistogram:
    """`nimbus_request_duration_seconds`, aggregated here rather than by the SDK.

    The SDK's `Histogram.record` costs about 8 us a call, too much for every request on the
    event loop; this costs a bisect and a few additions under an uncontended lock (under 1 us),
    so every request is counted. `CountingMetricExporter` adds it to every metric export as a
    cumulative explicit-bucket histogram (what the SDK's would have been).
    """

    NAME: Final = "nimbus_request_duration_seconds"
    UNIT: Final = "s"
    DESCRIPTION: Final = "Request duration, send to complete response"

    def __init__(
        self, boundaries: Sequence[float], attributes_for: Callable[[str], Mapping[str, str]]
    ) -> None:
        self.boundaries = tuple(boundaries)
        self.attributes_for = attributes_for
        self.started_ns = time.time_ns()
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()

    def record(self, key: str, seconds: float) -> None:
        """Count one duration for the series `key` (the phase)."""
        series = self._series.get(key)
        if series is None:
            series = _Series(self.attributes_for(key), len(self.boundaries) + 1)
            self._series[key] = series
        index = bisect_left(self.boundaries, seconds)
        with self._lock:
            series.counts[index] += 1
            series.count += 1
            series.sum += seconds
            series.min = min(series.min, seconds)
            series.max = max(series.max, seconds)

    def metric(self) -> Metric | None:
        """The histogram as an SDK `Metric` (None before the first request)."""
        now = time.time_ns()
        with self._lock:
            points = [
                HistogramDataPoint(
                    attributes=dict(series.attributes),
                    start_time_unix_nano=self.started_ns,
                    time_unix_nano=now,
                    count=series.count,
                    sum=series.sum,
                    bucket_counts=tuple(series.counts),
                    explicit_bounds=self.boundaries,
                    min=series.min,
                    max=series.max,
                )
                for series in self._series.values()
                if series.count
            ]
        if not points:
            return None
        return Metric(
            name=self.NAME,
            description=self.DESCRIPTION,
            unit=self.UNIT,
            data=Histogram(
                data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
            ),
        )


def with_metric(
    data: MetricsData, metric: Metric, resource: Resource, scope: InstrumentationScope
) -> MetricsData:
    """`data` plus `metric` in our scope (added to the first resource, or a new one)."""
    resources = list(data.resource_metrics)
    if not resources:
        return MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=resource,
                    scope_metrics=[ScopeMetrics(scope=scope, metrics=[metric], schema_url="")],
                    schema_url="",
                )
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

    It also adds `durations` (when set) to every export.
    """

    def __init__(self, inner: MetricExporter, counters: Counters, resource: Resource) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.counters = counters
        self.resource = resource
        self.scope = InstrumentationScope(SCOPE_NAME, __version__)
        self.durations: DurationHistogram | None = None

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export through the inner exporter, or fail at once past the shutdown deadline."""
        if self.counters.past_deadline():
            self.counters.failed("metrics", 0)
            return MetricExportResult.FAILURE
        try:
            metric = self.durations.metric() if self.durations is not None else None
            if metric is not None:
                metrics_data = with_metric(metrics_data, metric, self.resource, self.scope)
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            result = MetricExportResult.FAILURE
        if result is MetricExportResult.SUCCESS:
            self.counters.succeeded("metrics", 0)
        else:
            self.counters.failed("metrics", 0)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing is buffered here."""
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def _queue_of(processor: object) -> Any:
    """The SDK batch processor's deque (private in 1.45; None if it moves: then no full-count)."""
    batch = getattr(processor, "_batch_processor", None)
    queue = getattr(batch, "_queue", None)
    return queue if queue is not None and getattr(queue, "maxlen", None) else None


class CountingSpanProcessor(BatchSpanProcessor):
    """A `BatchSpanProcessor` that counts what it is given and what a full queue turns away."""

    def __init__(self, exporter: SpanExporter, counters: Counters, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self.counters = counters
        self._queue = _queue_of(self)
        self._maxlen = 0 if self._queue is None else int(self._queue.maxlen)

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a finished span (the newest is dropped, and counted, when the queue is full)."""
        counters = self.counters
        counters.spans_submitted += 1
        queue = self._queue
        if queue is not None and len(queue) >= self._maxlen:
            counters.spans_queue_full += 1
        super().on_end(span)


class CountingLogProcessor(BatchLogRecordProcessor):
    """A `BatchLogRecordProcessor` that counts like `CountingSpanProcessor`."""

    def __init__(self, exporter: LogRecordExporter, counters: Counters, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self.counters = counters
        self._queue = _queue_of(self)
        self._maxlen = 0 if self._queue is None else int(self._queue.maxlen)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a log record (counted; a full queue drops one, counted too)."""
        counters = self.counters
        with counters.lock:
            counters.logs_submitted += 1
            if self._queue is not None and len(self._queue) >= self._maxlen:
                counters.logs_queue_full += 1
        super().on_emit(log_record)


class SdkLogBridge(logging.Handler):
    """Takes the SDK's own stdlib log records (export failures, full queues) off stderr.

    Each distinct message is passed once to `report` (the project's structured log), so a
    collector that is down gives one warning per kind of failure instead of a line per export.
    """

    def __init__(self, report: Callable[[str, str], None]) -> None:
        super().__init__(logging.WARNING)
        self.report = report
        self._seen: set[object] = set()
        self._lock_seen = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Report the record the first time its message template is seen."""
        key = record.msg  # the template: once whatever the signal or the error
        with self._lock_seen:
            if key in self._seen:
                return
            self._seen.add(key)
        try:
            self.report(record.levelname.lower(), record.getMessage())
        except Exception:
            return


@dataclass
class Pipeline:
    """The providers of one run and their counters."""

    config: TelemetryConfig
    resource: Resource
    counters: Counters
    tracer_provider: TracerProvider | None
    span_processor: CountingSpanProcessor | None
    span_exporter: RequestSpanExporter | None
    metric_exporter: CountingMetricExporter | None
    meter_provider: MeterProvider | None
    logger_provider: LoggerProvider | None

    def shutdown(self, timeout_s: float) -> None:
        """Flush and stop every provider within `timeout_s` (in parallel; late ones abandoned)."""
        started = time.monotonic()
        deadline = started + max(timeout_s, 0.0)
        # An export that starts before this returns within the exporter timeout, so all is done
        # by `deadline`; exports after it fail at once and their records count as dropped.
        self.counters.deadline = started + max(timeout_s - self.config.timeout_s, timeout_s / 2)
        jobs: list[Callable[[], object]] = []
        if self.tracer_provider is not None:
            jobs.append(self.tracer_provider.shutdown)
        if self.logger_provider is not None:
            jobs.append(self.logger_provider.shutdown)
        if self.meter_provider is not None:
            provider = self.meter_provider
            millis = max(timeout_s, 0.0) * 1000.0
            jobs.append(lambda: provider.shutdown(timeout_millis=millis))
        threads = [
            threading.Thread(target=_quietly, args=(job,), name="nimbus-otel-shutdown", daemon=True)
            for job in jobs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))


def _quietly(job: Callable[[], object]) -> None:
    try:
        job()
    except Exception:
        return


def _resource(config: TelemetryConfig) -> Resource:
    attributes: dict[str, str] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": _sdk_version(),
        "service.version": __version__,
    }
    attributes.update(config.resource_attributes)
    attributes["service.name"] = config.service_name
    return Resource(attributes)


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opentelemetry-sdk")
    except PackageNotFoundError:
        return "unknown"


def _exporters(config: TelemetryConfig) -> tuple[Any, Any, Any]:
    """The (span, log, metric) exporter classes for the protocol, built with our settings."""
    headers = dict(config.headers)
    if config.protocol == "grpc":
        # Optional (opentelemetry-exporter-otlp-proto-grpc): imported by name so that type
        # checking does not need it; ImportError when missing (telemetry then stays off).
        grpc = importlib.import_module("grpc")
        base = "opentelemetry.exporter.otlp.proto.grpc"
        grpc_span_exporter = importlib.import_module(f"{base}.trace_exporter").OTLPSpanExporter
        grpc_log_exporter = importlib.import_module(f"{base}._log_exporter").OTLPLogExporter
        grpc_metric_exporter = importlib.import_module(f"{base}.metric_exporter").OTLPMetricExporter

        insecure = not (config.endpoint or "").startswith("https://")
        compression = grpc.Compression.Gzip if config.compression == "gzip" else None
        common: dict[str, Any] = {
            "endpoint": config.endpoint,
            "insecure": insecure,
            "headers": headers,
            "timeout": config.timeout_s,
            "compression": compression,
        }
        return (
            grpc_span_exporter(**common) if config.traces else None,
            grpc_log_exporter(**common) if config.logs else None,
            grpc_metric_exporter(**common) if config.metrics else None,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    http_compression = (
        Compression.Gzip if config.compression == "gzip" else Compression.NoCompression
    )

    def options(signal: str) -> dict[str, Any]:
        return {
            "endpoint": config.signal_endpoint(signal),
            "headers": headers,
            "timeout": config.timeout_s,
            "compression": http_compression,
        }

    return (
        OTLPSpanExporter(**options("traces")) if config.traces else None,
        OTLPLogExporter(**options("logs")) if config.logs else None,
        OTLPMetricExporter(**options("metrics")) if config.metrics else None,
    )


def build_pipeline(config: TelemetryConfig) -> Pipeline:
    """Providers for the signals `config` turns on, each exporting on its own thread."""
    resource = _resource(config)
    counters = Counters()
    span_exporter, log_exporter, metric_exporter = _exporters(config)
    tracer_provider = span_processor = meter_provider = logger_provider = None
    request_exporter = None
    if span_exporter is not None:
        tracer_provider = TracerProvider(resource=resource)
        batch = min(config.span_batch_size, config.span_queue_size)
        request_exporter = RequestSpanExporter(
            span_exporter, resource, fast=config.protocol == "http/protobuf"
        )
        span_processor = CountingSpanProcessor(
            CountingSpanExporter(request_exporter, counters),
            counters,
            max_queue_size=config.span_queue_size,
            max_export_batch_size=batch,
            schedule_delay_millis=config.span_delay_ms,
        )
        tracer_provider.add_span_processor(span_processor)
    if log_exporter is not None:
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            CountingLogProcessor(
                CountingLogExporter(log_exporter, counters),
                counters,
                max_queue_size=config.log_queue_size,
                max_export_batch_size=min(512, config.log_queue_size),
                schedule_delay_millis=1000,
            )
        )
    counting_metrics = None
    if metric_exporter is not None:
        counting_metrics = CountingMetricExporter(metric_exporter, counters, resource)
        reader = PeriodicExportingMetricReader(
            counting_metrics,
            export_interval_millis=config.metric_interval_ms,
            export_timeout_millis=config.timeout_s * 1000.0,
        )
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    return Pipeline(
        config=config,
        resource=resource,
        counters=counters,
        tracer_provider=tracer_provider,
        span_processor=span_processor,
        span_exporter=request_exporter,
        metric_exporter=counting_metrics,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )


def attribute_value(value: object) -> Any:
    """A log field as an OTLP attribute value (primitives kept, sequences of them too)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        items = [v for v in value if v is not None]
        if items and all(isinstance(v, str) for v in items):
            return tuple(items)
        if items and all(isinstance(v, bool | int | float) for v in items):
            return tuple(items)
    return str(value)


def log_attributes(fields: Mapping[str, Any], skip: Iterable[str]) -> dict[str, Any]:
    """The attributes of an OTLP log record from a structlog event dict."""
    skipped = set(skip)
    attributes: dict[str, Any] = {}
    for key, value in fields.items():
        if key in skipped or value is None:
            continue
        attributes[key] = attribute_value(value)
    return attributes
