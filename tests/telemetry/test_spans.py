"""Tests of `_spans.RunSpans`: the run's span tree and events, in memory, on a manual clock."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import Judgement, Verdict
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry._spans import RunSpans
from nimbus_scenarios.telemetry._walltime import WallTime
from tests.support.results import plan_of, results_of

WALL_START = 2_000_000_000.0


class Traced:
    """`RunSpans` on a manual clock, exporting to memory."""

    def __init__(self, plan: Plan, url: str | None = "http://127.0.0.1:8000") -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.clock = ManualClock(wall_start=WALL_START)
        self.plan = plan
        self.spans = RunSpans(
            provider.get_tracer("test"),
            plan,
            url=url,
            run_id="given",
            wall=WallTime(self.clock),
        )

    def advance(self, seconds: float) -> None:
        asyncio.run(self.clock.advance(seconds))

    def finished(self, name: str) -> ReadableSpan:
        (span,) = [s for s in self.exporter.get_finished_spans() if s.name == name]
        return span


def _ns(seconds: float) -> int:
    return round((WALL_START + seconds) * 1e9)


def test_root_and_phase_spans_form_the_tree() -> None:
    """The root spans the run; each phase is its child, timed by the run's clock."""
    plan = plan_of()
    run = Traced(plan)
    run.spans.run_started(plan, "run0")
    run.advance(1.0)
    run.spans.phase_started(plan.phases[0], 1.0)
    run.advance(10.0)
    run.spans.ending.phase_ended(plan.phases[0], 11.0)
    run.spans.ending.run_ended(results_of(plan))
    root, warm = run.finished("scenario factory"), run.finished("phase warm")
    assert root.parent is None
    assert warm.parent is not None
    assert warm.parent.span_id == root.context.span_id
    assert (root.start_time, root.end_time) == (_ns(0.0), _ns(11.0))
    assert (warm.start_time, warm.end_time) == (_ns(1.0), _ns(11.0))
    assert root.attributes is not None
    assert root.attributes["nimbus.run_id"] == "run0"  # the runner's id, adopted
    assert root.attributes["nimbus.target"] == "http://127.0.0.1:8000"
    assert root.attributes["nimbus.verdict"] == "passed"
    assert root.status.status_code is StatusCode.UNSET
    assert dict(warm.attributes or {}) == {
        "nimbus.scenario": "factory",
        "nimbus.run_id": "run0",
        "nimbus.phase": "warm",
        "nimbus.phase.index": 0,
        "nimbus.phase.shape": "rate 2/s",
        "nimbus.phase.start_s": 1.0,
        "nimbus.phase.planned_duration_s": 10.0,
        "nimbus.phase.scheduled": 20,
        "nimbus.phase.end_s": 11.0,
    }


def test_a_password_in_the_target_is_masked() -> None:
    """`nimbus.target` never shows the target's password."""
    run = Traced(plan_of(), url="http://bob:hunter2@target.test")
    run.spans.end_spans()
    attributes = run.finished("scenario factory").attributes or {}
    assert attributes["nimbus.target"] == "http://bob:***@target.test"


def test_events_land_on_the_running_phase_or_the_root() -> None:
    """Replicas and kills go to the running phase, else the root; verdicts to the root."""
    plan = plan_of()
    run = Traced(plan)
    run.spans.replica_sample(ReplicaSample(0.0, 1, 1, 1), 0.0)
    run.spans.phase_started(plan.phases[0], 0.0)
    run.spans.replica_sample(ReplicaSample(1.0, 1, 2, 1, autoscaler=2), 1.0)
    run.spans.pods_killed(["consumer-0"], 2.0)
    warm_expectation = plan.phases[0].expectations[0]
    run.spans.expectation_decided(Judgement(warm_expectation, Verdict.PASSED, 1.0, 4.0), 4.0)
    run.spans.aborted("SIGINT received", 5.0)
    run.spans.end_spans(incomplete=True)
    root, warm = run.finished("scenario factory"), run.finished("phase warm")
    root_events = [(e.name, dict(e.attributes or {})) for e in root.events]
    warm_events = [(e.name, dict(e.attributes or {})) for e in warm.events]
    assert root_events == [
        ("replicas", {"ready": 1, "desired": 1, "current": 1, "at_s": 0.0}),
        (
            "expectation_decided",
            {
                "expectation": warm_expectation.text,
                "scope": "warm",
                "verdict": "passed",
                "observed": 1.0,
                "at_s": 4.0,
            },
        ),
        ("aborted", {"reason": "SIGINT received", "at_s": 5.0}),
    ]
    assert warm_events == [
        ("replicas", {"ready": 1, "desired": 2, "current": 1, "autoscaler": 2, "at_s": 1.0}),
        ("pods_killed", {"pods": ("consumer-0",), "count": 1, "at_s": 2.0}),
        ("aborted", {"reason": "SIGINT received", "at_s": 5.0}),
    ]


def test_run_end_adds_the_undecided_verdicts_once_and_marks_failure() -> None:
    """Verdicts not heard before `run_ended` are added without a time; a failed run is ERROR."""
    plan = plan_of()
    run = Traced(plan)
    first, second = plan.phases[0].expectations[:2]
    run.spans.expectation_decided(Judgement(first, Verdict.PASSED), 3.0)
    results = results_of(
        plan, judgements=[Judgement(first, Verdict.PASSED), Judgement(second, Verdict.FAILED)]
    )
    run.spans.ending.run_ended(results)
    root = run.finished("scenario factory")
    decided = [dict(e.attributes or {}) for e in root.events if e.name == "expectation_decided"]
    assert [(d["expectation"], d.get("at_s")) for d in decided] == [
        (first.text, 3.0),
        (second.text, None),
    ]
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "failed"


def test_open_spans_end_marked_incomplete() -> None:
    """At shutdown after a crash the open phase and root spans end with `nimbus.incomplete`."""
    plan = plan_of()
    run = Traced(plan)
    run.spans.phase_started(plan.phases[0], 0.0)
    run.spans.end_spans(incomplete=True)
    run.spans.end_spans(incomplete=True)  # idempotent: nothing ends twice
    assert len(run.exporter.get_finished_spans()) == 2
    for name in ("scenario factory", "phase warm"):
        assert (run.finished(name).attributes or {})["nimbus.incomplete"] is True


def test_log_lines_follow_the_current_span() -> None:
    """The run context's span id is the running phase's, and the root's between phases."""
    plan = plan_of()
    run = Traced(plan)
    ctx = run_context.current()
    root_id = run.spans.root.span_hex
    assert (ctx.trace_id, ctx.span_id) == (run.spans.trace_hex, root_id)
    run.spans.phase_started(plan.phases[0], 0.0)
    assert ctx.span_id == run.spans.parent("warm").span_hex != root_id
    assert run.spans.current() is run.spans.parent("warm")
    assert run.spans.parent("unknown") is run.spans.root
    run.spans.ending.phase_ended(plan.phases[0], 10.0)
    assert ctx.span_id == root_id
    assert run.spans.current() is run.spans.root
