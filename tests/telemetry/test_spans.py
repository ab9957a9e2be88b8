"""Tests of `_spans.RunSpans`: the run's span tree and events, in memory, on a manual clock."""

from __future__ import annotations

import asyncio
import dataclasses

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.events import PodChange
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import Judgement, Verdict
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    Condition,
    MetricStatus,
    PodRecord,
    ScaleEvent,
    ScalingRecord,
    TargetKind,
)
from nimbus_scenarios.scaling_words import describe_event
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


def _rps(value: float) -> tuple[MetricStatus, ...]:
    return (MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, value),)


def test_autoscaler_decisions_and_pod_changes_are_span_events() -> None:
    """A status that changes the decision (replicas, a metric crossing its target, a condition)
    is an `autoscaler.decision` event with each metric's value and target; a new value alone is
    not. Pod changes are `pod.<change>` events; all on the running phase's span."""
    plan = plan_of()
    run = Traced(plan)
    run.spans.phase_started(plan.phases[0], 0.0)
    able = (Condition("AbleToScale", "True", "ReadyForNewScale"),)
    for sample in (
        AutoscalerSample(0.0, 1, 1, _rps(2.0), able),
        AutoscalerSample(1.0, 1, 1, _rps(3.0), able),  # a new value: no decision
        AutoscalerSample(2.0, 1, 1, _rps(7.2), able),  # above its target now
        AutoscalerSample(3.0, 3, 1, _rps(7.5), able),  # desired rose
        AutoscalerSample(4.0, 3, 3, _rps(2.5), able),
    ):
        run.spans.autoscaler_changed(sample, sample.at)
    pod = PodRecord("c-1", created=3.5, ready=9.0, restarts=1, terminations=("OOMKilled",))
    run.spans.pod_changed(pod, PodChange.READY, 9.0)
    run.spans.pod_changed(pod, PodChange.RESTARTED, 9.5)
    run.spans.end_spans()
    warm = run.finished("phase warm")
    decisions = [dict(e.attributes or {}) for e in warm.events if e.name == "autoscaler.decision"]
    assert [(d["at_s"], d["desired"], d["current"]) for d in decisions] == [
        (0.0, 1, 1),
        (2.0, 1, 1),
        (3.0, 3, 1),
        (4.0, 3, 3),
    ]
    assert decisions[2] == {
        "desired": 3,
        "current": 1,
        "at_s": 3.0,
        "metrics": ("rps per replica",),
        "conditions": ("AbleToScale=True (ReadyForNewScale)",),
        "metric.rps per replica.value": 7.5,
        "metric.rps per replica.target": 5.0,
        "metric.rps per replica.target_kind": "AverageValue",
        "metric.rps per replica.above": True,
    }
    pods = [(e.name, dict(e.attributes or {})) for e in warm.events if e.name.startswith("pod.")]
    assert pods == [
        ("pod.ready", {"pod": "c-1", "at_s": 9.0, "startup_s": 5.5}),
        ("pod.restarted", {"pod": "c-1", "at_s": 9.5, "restarts": 1, "termination": "OOMKilled"}),
    ]


def test_the_scale_events_are_on_the_root_at_the_end() -> None:
    """Each scale event of the results is a `scale_event` on the root: its steps' offsets, the
    reaction, the start-ups, and the breakdown as a sentence."""
    plan = plan_of()
    run = Traced(plan)
    event = ScaleEvent(
        from_replicas=1,
        to_replicas=3,
        decided_s=21.0,
        load_change='phase "warm" started',
        load_change_s=0.0,
        metric="rps per replica",
        metric_value=7.2,
        metric_target=5.0,
        pods_created_s=22.0,
        pod_startups_s=(12.0, 13.0),
    )
    scaling = ScalingRecord(pods_watched=True, events=(event,))
    run.spans.ending.run_ended(dataclasses.replace(results_of(plan), scaling=scaling))
    (scaled,) = [e for e in run.finished("scenario factory").events if e.name == "scale_event"]
    attributes = dict(scaled.attributes or {})
    assert attributes["summary"] == describe_event(event)
    assert {k: v for k, v in attributes.items() if k != "summary"} == {
        "from": 1,
        "to": 3,
        "decided_s": 21.0,
        "load_change": 'phase "warm" started',
        "load_change_s": 0.0,
        "reaction_s": 21.0,
        "metric": "rps per replica",
        "metric_value": 7.2,
        "metric_target": 5.0,
        "pods_created_s": 22.0,
        "pod_startups_s": (12.0, 13.0),
    }
