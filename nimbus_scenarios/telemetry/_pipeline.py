"""The OpenTelemetry SDK pipelines of a run: resource, OTLP exporters, providers, processors.

Its place: what `Telemetry.start` builds first when telemetry is on (never imported otherwise,
so `validate` and `plan` never load OpenTelemetry). `build_pipeline` turns a `TelemetryConfig`
into a provider per signal that is on, each exporting on the SDK's own background thread
through a bounded queue, its exporter wrapped by `_counting` so that every loss is counted.
Each signal has its own exporter settings (`config.SignalExport`: endpoint, protocol, headers,
timeout, compression), so traces may go over gRPC to Tempo while logs go over HTTP to Loki.
Request spans share the span pipeline: `RequestSpanExporter` sends them with the fast encoder
of `_wire` next to the SDK's spans. `Pipeline.shutdown` flushes all signals within one deadline.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Final, NamedTuple, Protocol

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import Aggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from nimbus_scenarios import __version__
from nimbus_scenarios.telemetry._counting import (
    Counters,
    CountingLogExporter,
    CountingLogProcessor,
    CountingMetricExporter,
    CountingSpanExporter,
    CountingSpanProcessor,
)
from nimbus_scenarios.telemetry._spans import PlannedIds
from nimbus_scenarios.telemetry._wire import encode_request_spans, encode_resource_scope, split
from nimbus_scenarios.telemetry.config import Signal, SignalExport, TelemetryConfig

__all__ = ["SCOPE_NAME", "Pipeline", "RequestSpanExporter", "build_pipeline"]

SCOPE_NAME: Final = "nimbus_scenarios"
"""The instrumentation scope of every span, metric and log record."""


class _ExportResult(Protocol):
    @property
    def success(self) -> bool: ...


class _RawClient(Protocol):
    """The SDK's OTLP/HTTP exporter's own client (private in 1.45): posts serialized bytes."""

    def export(self, data: bytes) -> _ExportResult: ...


class RequestSpanExporter(SpanExporter):
    """Exports SDK spans and `_wire.RequestSpan`s together.

    Over OTLP/HTTP the request spans are encoded by `_wire` (about ten times cheaper than the
    SDK's encoder) and the bytes are posted through the SDK exporter's own HTTP client (its
    retries, headers, compression, timeout); where that client is not there (gRPC, or a future
    SDK) they become `ReadableSpan`s for the inner exporter.
    """

    def __init__(
        self, inner: SpanExporter, resource: Resource, scope: InstrumentationScope, *, fast: bool
    ) -> None:
        self.inner = inner
        self.resource = resource
        self.scope = scope
        client = getattr(inner, "_client", None) if fast else None
        self._client: _RawClient | None = (
            client if client is not None and callable(getattr(client, "export", None)) else None
        )
        self._encoded = encode_resource_scope(resource, scope)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode and send one batch."""
        sdk, requests = split(spans)
        client = self._client
        if client is None:
            readable = [r.shape.readable(r, self.resource, self.scope) for r in requests]
            return self.inner.export([*sdk, *readable])
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        data = encode_spans(sdk).SerializePartialToString() if sdk else b""
        if requests:
            data += encode_request_spans(*self._encoded, requests)
        return SpanExportResult.SUCCESS if client.export(data).success else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The providers of one run (None for a signal that is off) and their counters."""

    config: TelemetryConfig
    resource: Resource
    scope: InstrumentationScope
    counters: Counters
    tracer_provider: TracerProvider | None
    span_processor: CountingSpanProcessor | None
    meter_provider: MeterProvider | None
    metric_exporter: CountingMetricExporter | None
    logger_provider: LoggerProvider | None
    ids: PlannedIds | None = None
    """The tracer provider's id generator (phase span ids drawn ahead), None without traces."""

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
    except Exception:  # a provider failing to shut down loses its records, counted already
        return


class _Exporters(NamedTuple):
    """The OTLP exporters for the signals that are on."""

    spans: SpanExporter | None
    logs: LogRecordExporter | None
    metrics: MetricExporter | None


_GRPC: Final = "opentelemetry.exporter.otlp.proto.grpc"
_GRPC_CLASSES: Final = {
    Signal.TRACES: ("trace_exporter", "OTLPSpanExporter"),
    Signal.METRICS: ("metric_exporter", "OTLPMetricExporter"),
    Signal.LOGS: ("_log_exporter", "OTLPLogExporter"),
}


def _grpc_exporter(export: SignalExport) -> object:
    """One OTLP/gRPC exporter: an optional package, imported by name so that type checking
    does not need it; ImportError when it is missing (telemetry then stays off)."""
    grpc = importlib.import_module("grpc")
    module, name = _GRPC_CLASSES[export.signal]
    compression = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}
    extra: dict[str, object] = {}
    if export.signal is Signal.METRICS:
        temporality, aggregation = _metric_preferences()
        extra = {"preferred_temporality": temporality, "preferred_aggregation": aggregation}
    exporter: object = getattr(importlib.import_module(f"{_GRPC}.{module}"), name)(
        endpoint=export.endpoint,
        insecure=not export.endpoint.startswith("https://"),
        headers=dict(export.headers),
        timeout=export.timeout_s,
        compression=compression.get(export.compression),
        **extra,
    )
    return exporter


def _http_exporter(export: SignalExport) -> object:
    """One OTLP/HTTP (protobuf) exporter posting to the signal's full URL."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = {"gzip": Compression.Gzip, "deflate": Compression.Deflate}.get(
        export.compression, Compression.NoCompression
    )
    endpoint, headers, timeout = export.endpoint, dict(export.headers), export.timeout_s
    if export.signal is Signal.TRACES:
        return OTLPSpanExporter(
            endpoint=endpoint, headers=headers, timeout=timeout, compression=compression
        )
    if export.signal is Signal.LOGS:
        return OTLPLogExporter(
            endpoint=endpoint, headers=headers, timeout=timeout, compression=compression
        )
    temporality, aggregation = _metric_preferences()
    return OTLPMetricExporter(
        endpoint=endpoint,
        headers=headers,
        timeout=timeout,
        compression=compression,
        preferred_temporality=temporality,
        preferred_aggregation=aggregation,
    )


def _metric_preferences() -> tuple[dict[type, AggregationTemporality], dict[type, Aggregation]]:
    """Cumulative temporality and the default aggregations, given explicitly so that the
    exporter does not read its own variables for them (config reports those as not honoured):
    the request duration histogram is cumulative whatever they say."""
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation

    kinds = (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
    temporality: dict[type, AggregationTemporality] = dict.fromkeys(
        kinds, AggregationTemporality.CUMULATIVE
    )
    return temporality, {Histogram: ExplicitBucketHistogramAggregation()}


def _exporter(export: SignalExport | None) -> object:
    if export is None:
        return None
    return _grpc_exporter(export) if export.protocol == "grpc" else _http_exporter(export)


def _exporters(config: TelemetryConfig) -> _Exporters:
    """The exporters of the signals `config` turns on, each with its own settings."""
    spans = _exporter(config.traces)
    logs = _exporter(config.logs)
    metrics = _exporter(config.metrics)
    if not (spans is None or isinstance(spans, SpanExporter)):
        raise TypeError(f"{type(spans).__name__}: not a span exporter")
    if not (logs is None or isinstance(logs, LogRecordExporter)):
        raise TypeError(f"{type(logs).__name__}: not a log record exporter")
    if not (metrics is None or isinstance(metrics, MetricExporter)):
        raise TypeError(f"{type(metrics).__name__}: not a metric exporter")
    return _Exporters(spans, logs, metrics)


def _resource(config: TelemetryConfig) -> Resource:
    try:
        sdk_version = version("opentelemetry-sdk")
    except PackageNotFoundError:
        sdk_version = "unknown"
    attributes: dict[str, str] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
        "service.version": __version__,
    }
    attributes.update(config.resource_attributes)
    attributes["service.name"] = config.service_name
    return Resource(attributes)


def build_pipeline(config: TelemetryConfig) -> Pipeline:
    """Providers for the signals `config` turns on, each exporting on its own thread."""
    resource = _resource(config)
    scope = InstrumentationScope(SCOPE_NAME, __version__)
    counters = Counters()
    exporters = _exporters(config)
    tracer_provider = span_processor = ids = None
    if exporters.spans is not None and config.traces is not None:
        # Always on: the run's spans are all kept; request spans are sampled by the scenario's
        # trace_sample (so the SDK's own OTEL_TRACES_SAMPLER reading is not wanted).
        ids = PlannedIds()
        tracer_provider = TracerProvider(resource=resource, sampler=ALWAYS_ON, id_generator=ids)
        request_exporter = RequestSpanExporter(
            exporters.spans, resource, scope, fast=config.traces.protocol == "http/protobuf"
        )
        span_processor = CountingSpanProcessor(
            CountingSpanExporter(request_exporter, counters),
            counters,
            max_queue_size=config.span_queue_size,
            max_export_batch_size=config.span_batch_size,
            schedule_delay_millis=config.span_delay_ms,
        )
        tracer_provider.add_span_processor(span_processor)
    logger_provider = None
    if exporters.logs is not None:
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            CountingLogProcessor(
                CountingLogExporter(exporters.logs, counters),
                counters,
                max_queue_size=config.log_queue_size,
                max_export_batch_size=config.log_batch_size,
                schedule_delay_millis=config.log_delay_ms,
            )
        )
    meter_provider = metric_exporter = None
    if exporters.metrics is not None and config.metrics is not None:
        metric_exporter = CountingMetricExporter(exporters.metrics, counters, resource, scope)
        reader = PeriodicExportingMetricReader(
            metric_exporter,
            export_interval_millis=config.metric_interval_ms,
            export_timeout_millis=config.metric_timeout_ms or config.metrics.timeout_s * 1000.0,
        )
        # The SDK's own instruments here are all observable (no exemplars); the filter is named
        # so that the SDK never parses OTEL_METRICS_EXEMPLAR_FILTER itself (it raises on an
        # unknown value): `_durations` reads it, and reports an unknown one.
        meter_provider = MeterProvider(
            resource=resource, metric_readers=[reader], exemplar_filter=AlwaysOffExemplarFilter()
        )
    return Pipeline(
        config=config,
        resource=resource,
        scope=scope,
        counters=counters,
        tracer_provider=tracer_provider,
        span_processor=span_processor,
        meter_provider=meter_provider,
        metric_exporter=metric_exporter,
        logger_provider=logger_provider,
        ids=ids,
    )
