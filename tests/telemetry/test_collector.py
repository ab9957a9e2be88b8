"""End-to-end telemetry through the real rotel collector into a decoding OTLP sink.

A short run against the local reference consumer (its `GET /local/traceparents` shows what
arrived) is traced with `Telemetry`; rotel receives OTLP/HTTP and forwards it to `OtlpSink`.
Then: the span tree, attributes and events, the consumer's traceparents, the log records and the
metrics; and what a collector that is down, killed mid-run or slow does to a run (nothing) and to
the counters (drops, reported).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import threading
import urllib.request
from collections.abc import Iterator

import pytest
import structlog

from nimbus_scenarios.local.consumer import ReferenceConsumer
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import RunResults
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.telemetry.logs import configure_logging
from tests.conftest import HttpServer
from tests.support.otlp import OtlpSink, SpanRecord
from tests.telemetry.conftest import (
    Rotel,
    TracedRun,
    compile_text,
    free_port,
    otel_env,
    run_traced,
    wait_until,
)

CLIENT, INTERNAL = 3, 1
STATUS_ERROR = 2

TRACED = """\
scenario "traced" {
  watch deployment "consumer"
  settings {
    trace_sample 50%
  }
  request health = GET "/health" {
    query probe = "1"
    query token = env("NIMBUS_TELEMETRY_TEST_TOKEN")
  }
  request missing = GET "/missing"
  before {
    expect health succeeds
  }
  phase "warm" 1s {
    rate 30/s
    send health
    at 0.5s kill 1 pods
    expect errors == 0%
  }
  phase "mixed" 1s {
    rate 30/s
    send 50% health, 50% missing
  }
}
"""

STEADY = """\
scenario "steady" {
  settings {
    trace_sample 100%
  }
  request a = GET "/a"
  phase "one" 1s {
    rate 40/s
    send a
    expect errors == 0%
  }
  phase "two" 1s {
    rate 40/s
    send a
  }
}
"""


class ConsumerThread:
    """The reference consumer on its own event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.consumer = ReferenceConsumer()
        self.url = ""

    def start(self) -> ConsumerThread:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self.consumer.start(), self.loop)
        self.url = future.result(10)
        return self

    def traceparents(self) -> list[str]:
        with urllib.request.urlopen(f"{self.url}/local/traceparents", timeout=5) as response:
            return list(json.loads(response.read()))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.consumer.stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class FakeSource:
    """A replica source: 1 replica, and 1 ready of 2 desired after a kill."""

    description = "fake deployment"
    autoscaler = None
    lost_at = None
    stale_after_s = 5.0

    def __init__(self) -> None:
        self._samples: list[ReplicaSample] = []

    @property
    def samples(self) -> list[ReplicaSample]:
        return list(self._samples)

    @property
    def fresh_until(self) -> float:
        return asyncio.get_running_loop().time()

    def _add(self, ready: int, desired: int) -> None:
        sample = ReplicaSample(asyncio.get_running_loop().time(), ready, desired, ready)
        self._samples.append(sample)

    async def start(self) -> None:
        self._add(1, 1)

    async def stop(self) -> None:
        return None

    async def kill_pods(self, count: int) -> list[str]:
        self._add(1, 2)
        return [f"consumer-{i}" for i in range(count)]


@pytest.fixture(scope="module")
def consumer() -> Iterator[ConsumerThread]:
    """The reference consumer, shared by this module's tests."""
    running = ConsumerThread().start()
    yield running
    running.stop()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """structlog configured to write JSON lines into a buffer (reset afterwards)."""
    buffer = io.StringIO()
    configure_logging(stream=buffer, json=True)
    yield buffer
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def baseline(module_server: HttpServer) -> RunResults:
    """STEADY without telemetry (open-model counts are exact, so traced runs must match them)."""
    plan = compile_text(STEADY)
    options = RunOptions(url=module_server.url, install_signal_handlers=False)
    return asyncio.run(run_scenario(plan, options, scenario_text=STEADY)).results


def _same_run(traced: RunResults, baseline: RunResults) -> None:
    assert traced.verdict == baseline.verdict == "passed"
    for key in ("scheduled", "sent", "succeeded", "failed", "dropped"):
        assert getattr(traced.totals, key) == getattr(baseline.totals, key), key
    assert [p.load.sent for p in traced.phases] == [p.load.sent for p in baseline.phases]


def _by_name(spans: list[SpanRecord], prefix: str) -> list[SpanRecord]:
    return [s for s in spans if s.name.startswith(prefix)]


def test_span_tree_attributes_events_traceparents_logs_and_metrics(
    collector: Rotel,
    sink: OtlpSink,
    consumer: ConsumerThread,
    json_logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A traced run arrives through rotel whole: span tree, attributes, events, logs, metrics."""
    monkeypatch.setenv("NIMBUS_TELEMETRY_TEST_TOKEN", "s3cr3t")
    run = run_traced(
        TRACED,
        consumer.url,
        otel_env(collector.endpoint),
        source=FakeSource(),
        progress_interval_s=0.2,
    )
    document = run.outcome.results
    trace_id = run.telemetry.trace_id
    assert document.verdict == "passed"
    assert document.totals.sent == 60
    assert trace_id is not None
    assert run.telemetry.run_id == document.run_id
    assert run.summary.spans_dropped == 0
    assert run.summary.export_errors == 0
    assert wait_until(lambda: len(sink.spans) >= run.summary.spans_exported)
    assert wait_until(lambda: any(r.body == "run_ended" for r in sink.logs))
    assert wait_until(lambda: "nimbus.replicas" in sink.metrics)

    # The tree: one root, a span per phase under it, request spans under their phase.
    spans = list(sink.spans)
    assert {s.trace_id for s in spans} == {trace_id}
    (root,) = _by_name(spans, "scenario ")
    assert root.name == "scenario traced"
    assert root.parent_id == ""
    assert root.kind == INTERNAL
    phases = {s.attributes["nimbus.phase"]: s for s in _by_name(spans, "phase ")}
    assert sorted(phases) == ["mixed", "warm"]
    assert all(p.parent_id == root.span_id for p in phases.values())
    requests = [s for s in spans if s.kind == CLIENT]
    assert len(requests) == run.summary.spans_exported - 3
    assert 10 <= len(requests) <= 50  # 50% of 60
    for span in requests:
        phase = phases[span.attributes["nimbus.phase"]]
        assert span.parent_id == phase.span_id
        assert phase.start_ns - 5_000_000 <= span.start_ns <= phase.end_ns + 5_000_000
        assert span.start_ns <= span.end_ns

    # Attributes: HTTP client semantic conventions and ours.
    assert root.attributes["nimbus.run_id"] == document.run_id
    assert root.attributes["nimbus.verdict"] == "passed"
    assert root.resource["service.name"] == "nimbus-test"
    assert root.resource["deployment.environment"] == "test"
    health = next(s for s in requests if s.attributes["nimbus.template"] == "health")
    port = int(consumer.url.rsplit(":", 1)[1])
    assert health.name == "GET /health"
    assert health.attributes["http.request.method"] == "GET"
    assert health.attributes["url.full"] == f"{consumer.url}/health?probe=1&token=***"
    assert health.attributes["server.address"] == "127.0.0.1"
    assert health.attributes["server.port"] == port
    assert health.attributes["http.response.status_code"] == 200
    assert health.attributes["nimbus.scenario"] == "traced"
    assert health.attributes["nimbus.run_id"] == document.run_id
    assert health.attributes["nimbus.lateness_ms"] >= 0.0
    assert "error.type" not in health.attributes
    missing = [s for s in requests if s.attributes["nimbus.template"] == "missing"]
    assert missing
    assert all(s.attributes["http.response.status_code"] == 404 for s in missing)
    assert all(s.attributes["error.type"] == "404" for s in missing)
    assert all(s.status_code == STATUS_ERROR for s in missing)

    # Events: stages and verdicts on the root, the kill and the replica change in the phase.
    root_events = [name for name, _ in root.events]
    assert "stage_started" in root_events
    assert "replicas" in root_events  # the source's first sample, before any phase
    verdicts = {e["expectation"]: e["verdict"] for n, e in root.events if n.startswith("exp")}
    assert verdicts == {"expect health succeeds": "passed", "expect errors == 0%": "passed"}
    warm_events = dict(phases["warm"].events)
    assert warm_events["pods_killed"]["pods"] == ("consumer-0",)
    assert warm_events["replicas"]["desired"] == 2

    # The consumer saw a traceparent on every request, naming our trace.
    seen = [tp for tp in consumer.traceparents() if tp.split("-")[1] == trace_id]
    assert len(seen) == 60
    sampled = {tp.split("-")[2] for tp in seen if tp.endswith("-01")}
    assert sampled == {s.span_id for s in requests}
    unsampled_parents = {tp.split("-")[2] for tp in seen if tp.endswith("-00")}
    assert unsampled_parents <= {p.span_id for p in phases.values()}

    # Logs: the same records over OTLP, in the run's trace, in the phase's span.
    started = [r for r in sink.logs if r.body == "phase_started"]
    assert {r.attributes["phase"] for r in started} == {"warm", "mixed"}
    for record in started:
        assert record.trace_id == trace_id
        assert record.span_id == phases[record.attributes["phase"]].span_id
        assert record.attributes["run_id"] == document.run_id
        assert record.attributes["scenario"] == "traced"
    assert {r.trace_id for r in sink.logs} == {trace_id}
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert {line["trace_id"] for line in lines} == {trace_id}
    assert any(line["event"] == "progress" for line in lines)

    # Metrics, with scenario, phase and run_id (tests/telemetry/test_dashboard.py checks
    # the Prometheus side).
    for name in (
        "nimbus.request.duration",
        "nimbus.load.target_rate",
        "nimbus.load.achieved_rate",
        "nimbus.requests.in_flight",
        "nimbus.requests.sent",
        "nimbus.replicas",
    ):
        assert name in sink.metrics, name
    durations = sink.metrics["nimbus.request.duration"]
    assert {a["phase"] for a, _ in durations} == {"warm", "mixed"}
    last: dict[tuple[object, ...], int] = {}
    for a, (n, _) in durations:
        key = (a["phase"], a["request"], a["outcome"], a["status_class"])
        last[key] = max(last.get(key, 0), n)
    counted: dict[str, int] = {}
    for key, n in last.items():
        counted[str(key[0])] = counted.get(str(key[0]), 0) + n
    assert counted == {"warm": 30, "mixed": 30}  # every request, sampled or not (cumulative)
    assert {k[1:] for k in last if k[0] == "mixed"} == {
        ("health", "success", "2xx"),
        ("missing", "error", "4xx"),
    }
    assert all(a["run_id"] == document.run_id and a["scenario"] == "traced" for a, _ in durations)
    assert {a["kind"] for a, _ in sink.metrics["nimbus.replicas"]} == {"ready", "desired"}
    assert any(a.get("phase") == "warm" for a, _ in sink.metrics["nimbus.load.target_rate"])


def test_zero_sampling_still_sends_traceparents(
    collector: Rotel, sink: OtlpSink, consumer: ConsumerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 0% no request span is kept, yet every request names its phase span, flags 00."""
    # Metrics are exported only by the shutdown flush here: the durations of all 60 arrive.
    monkeypatch.setenv("NIMBUS_TELEMETRY_TEST_TOKEN", "s3cr3t")
    text = TRACED.replace("trace_sample 50%", "trace_sample 0%").replace("at 0.5s kill 1 pods", "")
    env = otel_env(collector.endpoint, OTEL_METRIC_EXPORT_INTERVAL="60000")
    run = run_traced(text, consumer.url, env)
    assert run.outcome.results.verdict == "passed"
    assert run.summary.spans_exported == 3
    assert wait_until(lambda: len(sink.spans) >= 3)
    phases = {s.span_id for s in _by_name(sink.spans, "phase ")}
    seen = [tp for tp in consumer.traceparents() if tp.split("-")[1] == run.telemetry.trace_id]
    assert len(seen) == 60
    assert all(tp.endswith("-00") for tp in seen)
    assert {tp.split("-")[2] for tp in seen} == phases
    assert run.summary.metric_exports == 1
    assert wait_until(lambda: "nimbus.request.duration" in sink.metrics)
    durations = sink.metrics["nimbus.request.duration"]
    assert sum(count for _, (count, _) in durations) == 60
    assert [value for _, value in sink.metrics["nimbus.run.info"]] == [1]


def test_abort_is_a_span_event(collector: Rotel, sink: OtlpSink, http_server: HttpServer) -> None:
    """A guard's abort is an event on the root and phase spans, and marks the root as an error."""
    text = """\
scenario "aborting" {
  request bad = GET "/status/500"
  phase "failing" 3s {
    rate 40/s
    send bad
  }
  abort when errors > 50% over 1s
}
"""
    run = run_traced(text, http_server.url, otel_env(collector.endpoint))
    assert run.outcome.results.verdict == "aborted"
    assert wait_until(lambda: len(sink.spans) >= run.summary.spans_exported)
    (root,) = _by_name(sink.spans, "scenario ")
    (phase,) = _by_name(sink.spans, "phase ")
    assert "aborted" in [name for name, _ in root.events]
    assert "aborted" in [name for name, _ in phase.events]
    assert root.status_code == STATUS_ERROR
    assert root.attributes["nimbus.verdict"] == "aborted"


def test_collector_down_for_the_whole_run(module_server: HttpServer, baseline: RunResults) -> None:
    """Nothing listening: the run is the same as without telemetry; the drops are counted."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    run = run_traced(STEADY, module_server.url, otel_env(endpoint), shutdown_timeout_s=3.0)
    _same_run(run.outcome.results, baseline)
    assert run.summary.spans_exported == 0
    assert run.summary.spans_dropped == 80 + 3
    assert run.summary.logs_dropped > 0
    assert run.summary.export_errors > 0
    assert run.shutdown_s < 3.5


def test_collector_killed_mid_run(
    collector: Rotel, sink: OtlpSink, module_server: HttpServer, baseline: RunResults
) -> None:
    """rotel SIGKILLed at +1.2 s: the run is unchanged; earlier spans arrived, the rest counted."""
    run = run_traced(
        STEADY,
        module_server.url,
        otel_env(collector.endpoint),
        during=collector.kill,
        during_at_s=1.2,
        shutdown_timeout_s=3.0,
    )
    _same_run(run.outcome.results, baseline)
    summary = run.summary
    assert summary.spans_exported > 0
    assert summary.spans_dropped > 0
    assert summary.spans_exported + summary.spans_dropped == 80 + 3
    assert summary.export_errors > 0
    assert run.shutdown_s < 3.5
    assert wait_until(lambda: len(sink.spans) >= summary.spans_exported)


def test_slow_collector_costs_spans_not_time(
    sink: OtlpSink, module_server: HttpServer, baseline: RunResults
) -> None:
    """A collector answering after 3 s: exports time out; neither the run nor shutdown waits."""
    sink.delay_s = 3.0
    try:
        run: TracedRun = run_traced(
            STEADY, module_server.url, otel_env(sink.url), shutdown_timeout_s=2.0
        )
    finally:
        sink.delay_s = 0.0
    _same_run(run.outcome.results, baseline)
    assert run.summary.spans_dropped > 0
    assert run.summary.export_errors > 0
    assert run.shutdown_s < 2.5


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is None,
    reason="the optional opentelemetry-exporter-otlp-proto-grpc is not installed",
)
def test_grpc_protocol(collector: Rotel, sink: OtlpSink, module_server: HttpServer) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc exports over gRPC when the grpc exporter is installed."""
    env = otel_env(collector.grpc_endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    run = run_traced(STEADY, module_server.url, env)
    assert run.summary.protocol == "grpc"
    assert run.summary.spans_exported == 83
    assert wait_until(lambda: len(sink.spans) >= 83)
    assert {s.trace_id for s in sink.spans} == {run.telemetry.trace_id}
    assert wait_until(lambda: any(r.body == "run_ended" for r in sink.logs))
