"""Tests of the pieces that let worker processes join the parent's trace: phase span ids drawn
ahead (`_spans.PlannedIds`), the parent's `Telemetry.for_workers`, a worker's `JoinedSpans`
and `Telemetry.for_worker`, and `link.with_workers`."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.request import Outcome
from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.telemetry._joined import JoinedSpans
from nimbus_scenarios.telemetry._spans import PlannedIds, RunSpans
from nimbus_scenarios.telemetry._walltime import WallTime
from nimbus_scenarios.telemetry.config import resolve_config
from nimbus_scenarios.telemetry.core import Telemetry
from nimbus_scenarios.telemetry.link import WorkerTrace, with_workers
from tests.support.http import free_port
from tests.support.results import plan_of
from tests.telemetry.conftest import compile_text, otel_env

SAMPLED = """\
scenario "sampled" {
  settings {
    trace_sample 100%
  }
  request a = GET "/a"
  phase "one" 1s {
    rate 10/s
    send a
  }
}
"""


def _trace(endpoint: str, phases: tuple[tuple[str, int], ...] = ()) -> WorkerTrace:
    return WorkerTrace(
        config=resolve_config({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint}),
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        root_span_id=0xB7AD6B7169203331,
        phase_span_ids=phases,
        run_id="parent-run",
        url="http://127.0.0.1:9/",
    )


def test_phase_spans_take_the_ids_drawn_ahead() -> None:
    """Each phase's span gets the id drawn when the run's spans were made; other spans (the
    root, and a span after the phase's) get fresh random ones."""
    exporter = InMemorySpanExporter()
    ids = PlannedIds()
    provider = TracerProvider(id_generator=ids)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plan = plan_of()
    spans = RunSpans(
        provider.get_tracer("t"), plan, url=None, run_id="r", wall=WallTime(ManualClock()), ids=ids
    )
    planned = dict(spans.planned_ids)
    assert set(planned) == {p.name for p in plan.phases}
    assert len(set(planned.values())) == len(plan.phases)
    first = plan.phases[0]
    spans.phase_started(first, 0.0)
    assert spans.parent(first.name).context.span_id == planned[first.name]
    other = provider.get_tracer("t").start_span("other")
    assert other.get_span_context().span_id not in {*planned.values(), spans.root.context.span_id}
    assert spans.root.context.span_id not in planned.values()


def test_joined_spans_name_the_parents_spans_once_a_phase_started() -> None:
    """A worker's requests hang under the root until their phase started here, then under the
    parent's span of that phase; a phase the parent never planned stays under the root."""
    plan = plan_of()
    first = plan.phases[0]
    link = _trace("http://127.0.0.1:9/v1/traces", ((first.name, 0x1111),))
    joined = JoinedSpans(link, WallTime(ManualClock()))
    assert joined.trace_hex == "0af7651916cd43dd8448eb211c80319c"
    assert joined.parent(first.name).context.span_id == link.root_span_id
    joined.phase_started(first, 0.0)
    assert joined.parent(first.name).context.span_id == 0x1111
    assert joined.parent(first.name).unsampled == (
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-0000000000001111-00"),
    )
    joined.phase_started(plan.phases[1], 1.0)
    assert joined.parent(plan.phases[1].name).context.span_id == link.root_span_id


def test_for_workers_hands_the_parents_trace() -> None:
    """The parent hands its trace, root, planned phase spans and run id, and its configuration
    reduced to traces; with tracing off it hands nothing."""
    plan = plan_of()
    env = otel_env(f"http://127.0.0.1:{free_port()}", OTEL_TRACES_SAMPLER="always_on")
    telemetry = Telemetry.start(plan, url="http://127.0.0.1:9/", run_id="run1", environ=env)
    try:
        link = telemetry.for_workers("runner-id")
        assert link is not None
        assert telemetry.trace_id == f"{link.trace_id:032x}"
        assert {name for name, _ in link.phase_span_ids} == {p.name for p in plan.phases}
        assert link.root_span_id not in {span_id for _, span_id in link.phase_span_ids}
        assert link.run_id == "runner-id"
        assert link.url == "http://127.0.0.1:9/"
        assert link.config.traces == telemetry.config.traces
        assert link.config.metrics is None
        assert link.config.logs is None
        assert telemetry.config.ignored
        assert not link.config.ignored
        assert link.config.resource_attributes == {"deployment.environment": "test", "team": "load"}
    finally:
        telemetry.shutdown(0.5)
    off = Telemetry.start(plan, run_id="run2", environ={})
    assert off.for_workers() is None


def test_a_workers_spans_against_a_dead_collector_are_counted_and_bounded() -> None:
    """A worker's telemetry sends sampled `traceparent`s in the parent's trace, saying its
    request spans' ids; with nothing listening its flush ends within the time given and every
    span is counted as dropped."""
    plan = compile_text(SAMPLED)
    link = _trace(f"http://127.0.0.1:{free_port()}/v1/traces", (("one", 0x2222),))
    telemetry = Telemetry.for_worker(plan, link, 3)
    assert telemetry.enabled
    assert telemetry.notes == ()
    headers_for, observer = telemetry.headers_for, telemetry.observer
    assert headers_for is not None
    assert observer is not None
    span_ids = set()
    for _ in range(5):
        extra = headers_for("one", "a")
        assert extra is not None
        ((name, value),) = extra
        assert name == "traceparent"
        version, trace_id, span_id, flags = value.split("-")
        assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
        span_ids.add(span_id)
        now = time.monotonic()
        observer("one", "a", now, now, now + 0.001, Outcome(200, None), True, extra)
    assert len(span_ids) == 5
    started = time.monotonic()
    summary = telemetry.shutdown(1.0)
    assert time.monotonic() - started < 2.0
    assert summary.spans_exported == 0
    assert summary.spans_dropped == 5


def test_a_worker_without_traces_to_export_does_nothing() -> None:
    """A trace whose configuration exports no traces gives the disabled object."""
    plan = plan_of()
    link = dataclasses.replace(_trace("http://127.0.0.1:9/v1/traces"), config=resolve_config({}))
    telemetry = Telemetry.for_worker(plan, link, 1)
    assert not telemetry.enabled
    assert telemetry.headers_for is None
    assert telemetry.observer is None


def test_with_workers_adds_the_span_counts() -> None:
    """The workers' exported, dropped and queue-full spans and export errors add to the
    parent's; the rest (logs, metrics, the settings) stays the parent's."""
    parent = TelemetrySummary(
        enabled=True, spans_exported=10, spans_dropped=1, logs_exported=4, metric_exports=2
    )
    workers = [
        TelemetrySummary(enabled=True, spans_exported=7, spans_queue_full=2, export_errors=1),
        TelemetrySummary(enabled=True, spans_exported=5, spans_dropped=3),
    ]
    total = with_workers(parent, workers)
    assert (total.spans_exported, total.spans_dropped, total.spans_queue_full) == (22, 4, 2)
    assert total.export_errors == 1
    assert (total.logs_exported, total.metric_exports) == (4, 2)


def test_the_worker_process_imports_no_opentelemetry_by_itself() -> None:
    """A worker with tracing off loads no OpenTelemetry: its modules do not import it."""
    code = (
        "import sys, nimbus_scenarios.runner.worker, nimbus_scenarios.runner.pool; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "[]"
