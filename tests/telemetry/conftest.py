"""Fixtures for the telemetry tests: an OTLP/HTTP sink, the real rotel collector, run helpers.

`OtlpSink` is an aiohttp server (own thread, 127.0.0.1) that accepts OTLP/HTTP protobuf POSTs at
/v1/traces, /v1/logs and /v1/metrics and decodes them with opentelemetry-proto. `Rotel` runs
the `rotel-agent` binary shipped in the `rotel` wheel as a child process: OTLP receivers on free
loopback ports, exporting OTLP/HTTP to the sink. `run_traced` plays scenario text with a
`Telemetry` wired into the runner the way the runner will wire it itself (see `wired`).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rotel
from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.runner import RunOptions, RunOutcome, run_scenario
from nimbus_scenarios.telemetry.core import Telemetry
from tests.support.http import free_port
from tests.support.wait import wait_until

ROTEL_AGENT = Path(rotel.__file__).resolve().parent / "rotel-agent"


def any_value(value: AnyValue) -> Any:
    """A decoded OTLP AnyValue as a Python value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return attrs(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def attrs(items: Any) -> dict[str, Any]:
    """Decoded OTLP attributes (repeated KeyValue) as a dict."""
    result: dict[str, Any] = {}
    item: KeyValue
    for item in items:
        result[item.key] = any_value(item.value)
    return result


@dataclass
class SpanRecord:
    """One received span, decoded."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_code: int
    resource: dict[str, Any]


@dataclass
class LogRecord:
    """One received log record, decoded."""

    body: Any
    severity: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class OtlpSink:
    """An OTLP/HTTP protobuf receiver on 127.0.0.1 that keeps what it decoded."""

    spans: list[SpanRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    metrics: dict[str, list[tuple[dict[str, Any], Any]]] = field(default_factory=dict)
    posts: dict[str, int] = field(default_factory=dict)
    url: str = ""
    delay_s: float = 0.0
    in_flight: int = 0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def clear(self) -> None:
        """Forget everything received so far."""
        self.spans.clear()
        self.logs.clear()
        self.metrics.clear()
        self.posts.clear()

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._decode(request)
        finally:
            self.in_flight -= 1

    async def _decode(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp undoes Content-Encoding: gzip
        signal = request.match_info["signal"]
        self.posts[signal] = self.posts.get(signal, 0) + 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if signal == "traces":
            self._traces(body)
        elif signal == "logs":
            self._logs(body)
        elif signal == "metrics":
            self._metrics(body)
        else:
            return web.Response(status=404)
        return web.Response(body=b"", content_type="application/x-protobuf")

    def _traces(self, body: bytes) -> None:
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for rs in message.resource_spans:
            resource = attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(
                        SpanRecord(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                            attributes=attrs(s.attributes),
                            events=[(e.name, attrs(e.attributes)) for e in s.events],
                            status_code=s.status.code,
                            resource=resource,
                        )
                    )

    def _logs(self, body: bytes) -> None:
        message = ExportLogsServiceRequest()
        message.ParseFromString(body)
        for rl in message.resource_logs:
            resource = attrs(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    self.logs.append(
                        LogRecord(
                            body=any_value(r.body),
                            severity=r.severity_text,
                            trace_id=r.trace_id.hex(),
                            span_id=r.span_id.hex(),
                            attributes=attrs(r.attributes),
                            resource=resource,
                        )
                    )

    def _metrics(self, body: bytes) -> None:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(body)
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    points = getattr(m, kind).data_points if kind else []
                    for p in points:
                        value: Any
                        if kind == "histogram":
                            value = (p.count, p.sum)
                        else:
                            value = p.as_double if p.HasField("as_double") else p.as_int
                        self.metrics.setdefault(m.name, []).append((attrs(p.attributes), value))

    async def _start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/{signal}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def start(self) -> OtlpSink:
        """Serve on a free loopback port from a background thread."""
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()


class Rotel:
    """The rotel collector (the wheel's `rotel-agent`) receiving OTLP, forwarding to the sink."""

    def __init__(self, sink_url: str) -> None:
        self.sink_url = sink_url
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP base URL to export to."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        """The OTLP/gRPC address to export to."""
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self) -> Rotel:
        """Start the agent in the foreground (a child we can kill) and wait for its ports."""
        argv = [
            str(ROTEL_AGENT),
            "start",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self.sink_url,
            "--otlp-exporter-protocol",
            "http",
            "--otlp-exporter-compression",
            "none",
            "--batch-timeout",
            "50ms",
        ]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for port in (self.http_port, self.grpc_port):
            if not wait_until(lambda p=port: _listening(p), 10.0):
                self.stop()
                raise RuntimeError(f"rotel did not listen on 127.0.0.1:{port}")
        return self

    def kill(self) -> None:
        """SIGKILL: the collector vanishes mid-run."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        """SIGTERM and wait (rotel flushes what it holds on the way out)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def sink() -> Iterator[OtlpSink]:
    """An OTLP sink shared by one module's tests (cleared before each use by `collector`)."""
    server = OtlpSink().start()
    yield server
    server.stop()


@pytest.fixture
def collector(sink: OtlpSink) -> Iterator[Rotel]:
    """A fresh rotel forwarding to the (cleared) sink."""
    sink.delay_s = 0.0
    wait_until(lambda: sink.in_flight == 0, 10.0)
    sink.clear()
    agent = Rotel(sink.url).start()
    yield agent
    agent.stop()


def compile_text(text: str) -> Plan:
    """A plan from scenario text."""
    return compile_source(Source("telemetry-test.scn", text))


@dataclass
class TracedRun:
    """A finished traced run: its outcome, telemetry, counters and the shutdown's duration."""

    outcome: RunOutcome
    telemetry: Telemetry
    counters: dict[str, Any]
    shutdown_s: float


def run_traced(
    text: str,
    url: str,
    environ: Mapping[str, str],
    *,
    source: Any = None,
    started: Callable[[Telemetry], None] | None = None,
    during: Callable[[], None] | None = None,
    during_at_s: float = 0.0,
    limit_s: float = 40.0,
    shutdown_timeout_s: float = 5.0,
    **options: Any,
) -> TracedRun:
    """Play `text` against `url` with telemetry from `environ`.

    `started(telemetry)` is called once telemetry is up; `during()` runs at +`during_at_s`.
    """
    plan = compile_text(text)
    telemetry = Telemetry.start(plan, url=url, run_id="testrun00001", environ=environ)
    if started is not None:
        started(telemetry)
    timer = threading.Timer(during_at_s, during) if during is not None else None
    if timer is not None:
        timer.start()
    try:
        outcome = asyncio.run(
            asyncio.wait_for(
                run_scenario(
                    plan,
                    RunOptions(url=url, install_signal_handlers=False, **options),
                    scenario_text=text,
                    source=source,
                    telemetry=telemetry,
                ),
                limit_s,
            )
        )
    finally:
        if timer is not None:
            timer.join()
    started = time.monotonic()
    counters = telemetry.shutdown(timeout_s=shutdown_timeout_s)
    return TracedRun(outcome, telemetry, counters, time.monotonic() - started)


def otel_env(endpoint: str, **extra: str) -> dict[str, str]:
    """A telemetry environment for tests: short delays and timeouts."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        "OTEL_SERVICE_NAME": "nimbus-test",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=load",
    }
    env.update(extra)
    return env
