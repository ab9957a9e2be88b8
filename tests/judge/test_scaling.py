"""Scale events (pure): each rise of desired replicas broken down into the load change before it,
the first metric above its target, the decision, the new pods and ready replicas reaching the
new count; the results' `scaling` section in run offsets; restarts since the run started."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest

from nimbus_scenarios.judge.scaling import (
    NO_AUTOSCALER,
    NO_RECORDER,
    PODS_NOT_WATCHED,
    derive_events,
    load_changes,
    restarts_since,
    scaling_record,
)
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import ReplicaPoint as Point
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    MetricStatus,
    PodRecord,
    ScaleEvent,
    ScalingRecorder,
    TargetKind,
)

SCENARIO = """
scenario "scale" {
  watch deployment "consumer"
  request h = GET "/h"
  phase "warm" 30s {
    rate 2/s
    send h
  }
  phase "ramp" 60s {
    ramp 2/s -> 40/s
    spike 60/s for 10s at 20s
    send h
  }
}
"""


@cache
def plan() -> Plan:
    return compile_source(Source("scale.scn", SCENARIO))


def rps(value: float) -> tuple[MetricStatus, ...]:
    return (MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, value),)


# Desired 1 -> 3 at 49 (the HPA decided at 48.5), ready 3 at 71; desired 3 -> 5 at 80 (decided
# at 79), ready never reaches 5.
REPLICAS = [Point(-1.0, 1, 1), Point(49.0, 1, 3), Point(63.0, 2, 3), Point(71.0, 3, 3)]
REPLICAS += [Point(80.0, 3, 5)]
AUTOSCALER = [
    AutoscalerSample(10.0, 1, 1, rps(3.0)),
    AutoscalerSample(40.0, 1, 1, rps(6.0)),
    AutoscalerSample(48.5, 3, 1, rps(7.2)),
    AutoscalerSample(79.0, 5, 3, rps(9.0)),
]
PODS = [
    PodRecord("old", ready=None, restarts=1),  # there before the run
    PodRecord("a", created=49.0, scheduled=49.1, started=55.0, ready=63.0),
    PodRecord("b", created=49.2, scheduled=49.3, started=60.0, ready=71.0),
    PodRecord("c", created=79.5),  # never ready
]


def test_load_changes_are_phase_starts_and_spikes() -> None:
    assert load_changes(plan()) == [
        (0.0, 'phase "warm" started'),
        (30.0, 'phase "ramp" started'),
        (50.0, 'spike 60/s for 10s in phase "ramp"'),
    ]


def test_a_scale_event_is_broken_down_with_its_durations() -> None:
    """The first rise: the ramp began at 30, the metric was above its target at 40, the HPA
    decided at 48.5, the pods were created at 49 and 49.2 and were ready after 14 and 21.8
    seconds, ready replicas reached 3 at 71."""
    first, second = derive_events(plan(), REPLICAS, AUTOSCALER, PODS)
    assert first == ScaleEvent(
        from_replicas=1,
        to_replicas=3,
        decided_s=48.5,
        load_change='phase "ramp" started',
        load_change_s=30.0,
        metric="rps per replica",
        metric_value=6.0,
        metric_target=5.0,
        metric_above_s=40.0,
        pods_created_s=49.0,
        ready_s=71.0,
        pod_startups_s=(14.0, 21.8),
    )
    assert first.reaction_s == pytest.approx(18.5)
    # The second rise follows the spike at 50; the metric was still above its target then.
    assert second.load_change == 'spike 60/s for 10s in phase "ramp"'
    assert (second.load_change_s, second.metric_above_s, second.decided_s) == (50.0, 50.0, 79.0)
    assert second.metric_value == 7.2
    assert (second.pods_created_s, second.pod_startups_s, second.ready_s) == (79.5, (), None)


def test_without_autoscaler_or_pods_the_breakdown_says_less() -> None:
    """The rise alone: decided when desired rose, no metric, no pods."""
    events = derive_events(plan(), REPLICAS, (), ())
    assert [(e.from_replicas, e.to_replicas, e.decided_s) for e in events] == [
        (1, 3, 49.0),
        (3, 5, 80.0),
    ]
    assert all(e.metric is None and e.pods_created_s is None for e in events)
    assert events[0].ready_s == 71.0


def test_a_metric_never_above_its_target_is_not_named() -> None:
    calm = [AutoscalerSample(10.0, 1, 1, rps(4.0)), AutoscalerSample(48.5, 3, 1, rps(5.0))]
    (event, _) = derive_events(plan(), REPLICAS, calm, ())
    assert (event.metric, event.metric_above_s) == (None, None)
    assert event.decided_s == 48.5


def test_falls_and_flat_samples_are_no_events() -> None:
    flat = [Point(0.0, 2, 2), Point(10.0, 2, 1), Point(20.0, 1, 1), Point(30.0, 1, 2)]
    events = derive_events(plan(), flat, (), ())
    assert [(e.from_replicas, e.to_replicas, e.decided_s) for e in events] == [(1, 2, 30.0)]
    assert events[0].load_change == 'phase "ramp" started'


def test_only_the_new_pods_of_a_rise_count() -> None:
    """A rise of one counts one pod: the first created from the decision on (a second early,
    at most, for the API's whole-second creation times)."""
    points = [Point(0.0, 1, 1), Point(40.0, 1, 2)]
    pods = [
        PodRecord("before", created=20.0, ready=25.0),
        PodRecord("new", created=39.2, ready=45.0),
        PodRecord("later", created=41.0, ready=50.0),
    ]
    (event,) = derive_events(plan(), points, (), pods)
    assert (event.pods_created_s, event.pod_startups_s) == (39.2, (5.8,))


@dataclass
class Recorder:
    autoscaler_samples: list[AutoscalerSample]
    pods: list[PodRecord]
    pods_watched: bool = True


def test_the_record_is_in_run_offsets() -> None:
    """Clock times less the origin; the events derived from the same offsets."""
    origin = 1000.0
    recorder = Recorder(
        [AutoscalerSample(origin + s.at, s.desired, s.current, s.metrics) for s in AUTOSCALER],
        [PodRecord("a", created=origin + 49.0, ready=origin + 63.0, restarts=2)],
    )
    assert isinstance(recorder, ScalingRecorder)
    samples = [ReplicaSample(origin + p.t_s, p.ready, p.desired, p.ready) for p in REPLICAS]
    record = scaling_record(recorder, origin, plan(), samples)
    assert [s.at for s in record.autoscaler] == [10.0, 40.0, 48.5, 79.0]
    assert record.pods == (PodRecord("a", created=49.0, ready=63.0, restarts=2),)
    assert record.pods_watched
    assert record.notes == ()
    assert [e.decided_s for e in record.events] == [48.5, 79.0]
    assert record.events[0].pod_startups_s == (14.0,)


def test_the_record_notes_what_is_missing() -> None:
    samples = [ReplicaSample(5.0, 1, 1, 1), ReplicaSample(45.0, 1, 2, 1)]
    unwatched = scaling_record(Recorder([], [], pods_watched=False), 5.0, plan(), samples)
    assert unwatched.notes == (PODS_NOT_WATCHED, NO_AUTOSCALER)
    assert [e.decided_s for e in unwatched.events] == [40.0]
    bare = scaling_record(None, 5.0, plan(), samples)
    assert bare.notes == (NO_RECORDER,)
    assert not bare.pods_watched
    assert [(e.to_replicas, e.decided_s) for e in bare.events] == [(2, 40.0)]


def test_restarts_count_from_the_run_start() -> None:
    pods = [PodRecord("a", restarts=3), PodRecord("b", restarts=1), PodRecord("c", restarts=0)]
    assert restarts_since(pods, {"a": 2, "b": 1}) == 1
    assert restarts_since(pods, {}) == 4
    # A pod replaced under the same name with fewer restarts counts none, not less than none.
    assert restarts_since(pods, {"a": 5}) == 1
