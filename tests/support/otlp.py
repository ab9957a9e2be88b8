"""One OTLP/HTTP sink for the tests: a receiver on 127.0.0.1 that keeps and decodes every export.

`OtlpSink` serves `POST /v1/traces`, `/v1/metrics` and `/v1/logs` (protobuf, gzip undone) from
its own event loop in a daemon thread, so it serves in-process runs, the CLI as a child process
and the rotel collector alike. It keeps each raw body (`received`) and decodes it with
opentelemetry-proto into `spans`, `logs` and `metrics`. A test can make it slow (`delay_s`) or
stop it mid-run, as a collector that dies (`stop` is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["LogRecord", "MetricPoint", "OtlpSink", "SpanRecord", "attributes", "decode_value"]

SIGNALS = ("traces", "metrics", "logs")


def decode_value(value: AnyValue) -> object:
    """A decoded OTLP AnyValue as a Python value (arrays as tuples, None when unset)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(decode_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def attributes(items: Iterable[KeyValue]) -> dict[str, object]:
    """Decoded OTLP attributes (repeated KeyValue) as a dict."""
    return {item.key: decode_value(item.value) for item in items}


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One received span, decoded (ids as hex, empty when absent)."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, object]
    events: tuple[tuple[str, dict[str, object]], ...]
    status_code: int
    resource: dict[str, object]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One received log record, decoded."""

    body: object
    severity: str
    time_ns: int
    trace_id: str
    span_id: str
    attributes: dict[str, object]
    resource: dict[str, object]


class MetricPoint(NamedTuple):
    """One received data point: its attributes and value ((count, sum) for a histogram)."""

    attributes: dict[str, object]
    value: object


class OtlpSink:
    """An OTLP/HTTP protobuf receiver on 127.0.0.1 that keeps what it received and decoded."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.spans: list[SpanRecord] = []
        self.logs: list[LogRecord] = []
        self.metrics: dict[str, list[MetricPoint]] = {}
        self.url = ""
        self.delay_s = 0.0
        """Seconds to wait before answering each export (a slow collector)."""
        self.in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="otlp-sink", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self._stopped = False

    # ------------------------------------------------------------------ what was received
    def received(self, path: str | None = None) -> list[bytes]:
        """The raw bodies received (at `path`, e.g. `/v1/traces`, or all), in order."""
        return [body for p, body in list(self.bodies) if path is None or p == path]

    def clear(self) -> None:
        """Forget everything received so far."""
        self.bodies.clear()
        self.spans.clear()
        self.logs.clear()
        self.metrics.clear()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> OtlpSink:
        """Serve on a free loopback port from a background thread; `url` is the OTLP base URL."""
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop listening (the collector is gone) and end the thread; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for signal in SIGNALS:
            app.router.add_post(f"/v1/{signal}", self._handle)
        # A short shutdown: a test stops the sink while the exporter keeps its connection open.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ decoding
    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            body = await request.read()  # aiohttp undoes Content-Encoding: gzip
            self.bodies.append((request.path, body))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            try:
                self._decode(request.path.rsplit("/", 1)[-1], body)
            except DecodeError:
                return web.Response(status=400, text="not an OTLP protobuf message")
            return web.Response(body=b"", content_type="application/x-protobuf")
        finally:
            self.in_flight -= 1

    def _decode(self, signal: str, body: bytes) -> None:
        if signal == "traces":
            self._traces(ExportTraceServiceRequest.FromString(body))
        elif signal == "logs":
            self._logs(ExportLogsServiceRequest.FromString(body))
        else:
            self._metrics(ExportMetricsServiceRequest.FromString(body))

    def _traces(self, message: ExportTraceServiceRequest) -> None:
        for rs in message.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                self.spans.extend(
                    SpanRecord(
                        name=s.name,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        kind=s.kind,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        attributes=attributes(s.attributes),
                        events=tuple((e.name, attributes(e.attributes)) for e in s.events),
                        status_code=s.status.code,
                        resource=resource,
                    )
                    for s in ss.spans
                )

    def _logs(self, message: ExportLogsServiceRequest) -> None:
        for rl in message.resource_logs:
            resource = attributes(rl.resource.attributes)
            for sl in rl.scope_logs:
                self.logs.extend(
                    LogRecord(
                        body=decode_value(r.body),
                        severity=r.severity_text,
                        time_ns=r.time_unix_nano,
                        trace_id=r.trace_id.hex(),
                        span_id=r.span_id.hex(),
                        attributes=attributes(r.attributes),
                        resource=resource,
                    )
                    for r in sl.log_records
                )

    def _metrics(self, message: ExportMetricsServiceRequest) -> None:
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind is None:
                        continue
                    for p in getattr(m, kind).data_points:
                        value: object
                        if kind == "histogram":
                            value = (p.count, p.sum)
                        else:
                            value = p.as_double if p.HasField("as_double") else p.as_int
                        point = MetricPoint(attributes(p.attributes), value)
                        self.metrics.setdefault(m.name, []).append(point)
