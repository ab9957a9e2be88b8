"""Why it scaled: the scale events derived from what a run recorded, and the results' `scaling`
section (pure functions: data in, data out).

`derive_events` finds each rise of desired replicas in the replica samples and what led to it:
the load change that preceded it (a phase start or a spike, from the plan), the first moment
after it that an autoscaler metric was above its target, the decision, the first new pod's
creation, and the moment ready replicas reached the new count, with each new pod's start-up.
`scaling_record` turns a `ScalingRecorder`'s clock times into run offsets and derives the
events. `restarts_since` counts the pod restarts the `abort when pod restarts` guard watches.
Everything here is in run offsets (seconds from the run's origin) unless it says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import pairwise

from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import ReplicaPoint
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    MetricStatus,
    PodRecord,
    ScaleEvent,
    ScalingRecord,
    ScalingRecorder,
)

__all__ = [
    "NO_AUTOSCALER",
    "NO_RECORDER",
    "PODS_NOT_WATCHED",
    "POD_SLACK_S",
    "autoscaler_offsets",
    "derive_events",
    "load_changes",
    "pod_offsets",
    "restarts_since",
    "scaling_record",
]

POD_SLACK_S = 1.0
"""How long before a decision a new pod's creation may appear: `creationTimestamp` has whole
seconds, so a pod created right after the decision may read up to a second earlier."""

NO_RECORDER = (
    "the replica source records no autoscaler status or pods: the scale events have no metric, "
    "pod or start-up times"
)
PODS_NOT_WATCHED = (
    "pods were not watched (no permission to watch pods, or not asked): the scale events have "
    "no pod creation or start-up times, and `pod startup` is not judged"
)
NO_AUTOSCALER = (
    "no autoscaler known (no HPA or ScaledObject status seen): the scale events have no metric "
    "against its target"
)


def load_changes(plan: Plan) -> list[tuple[float, str]]:
    """Each change of load the plan makes, in time order: phase starts and spike starts."""
    found = [(p.start_s, f'phase "{p.name}" started') for p in plan.phases]
    for phase in plan.phases:
        for text, at in zip(phase.spikes, phase.spike_starts_s, strict=False):
            found.append((at, f'{text.split(" at ")[0]} in phase "{phase.name}"'))
    return sorted(found, key=lambda change: change[0])


def derive_events(
    plan: Plan,
    replicas: Sequence[ReplicaPoint],
    autoscaler: Sequence[AutoscalerSample],
    pods: Sequence[PodRecord],
) -> tuple[ScaleEvent, ...]:
    """The scale events of a run: one per rise of desired replicas in `replicas`, in order.

    For each: the latest load change at or before the decision; the first moment from then on
    (from the previous decision, for a later rise under the same load change) that the
    autoscaler had a metric above its target; the decision (the autoscaler's own desired count
    reaching the new one, if it did before the Deployment's did); the new pods (the first
    `to - from` created from the decision on, before the next rise) and the moment ready
    replicas reached the new count.
    """
    rises = _rises(replicas)
    changes = load_changes(plan)
    events = []
    previous: float | None = None
    for index, (at, before, after) in enumerate(rises):
        decided = _decision(autoscaler, previous, at, after)
        following = rises[index + 1][0] if index + 1 < len(rises) else math.inf
        change = _latest(changes, decided)
        lower = max(
            change[0] if change is not None else -math.inf,
            previous if previous is not None else -math.inf,
        )
        above = _metric_above(autoscaler, lower, decided)
        new_pods = _new_pods(pods, decided, following, after - before)
        ready = next((p.t_s for p in replicas if p.t_s >= at and p.ready >= after), None)
        events.append(
            ScaleEvent(
                from_replicas=before,
                to_replicas=after,
                decided_s=decided,
                load_change=change[1] if change else None,
                load_change_s=change[0] if change else None,
                metric=above[1].name if above else None,
                metric_value=above[1].current if above else None,
                metric_target=above[1].target if above else None,
                metric_above_s=above[0] if above else None,
                pods_created_s=new_pods[0].created if new_pods else None,
                ready_s=ready,
                pod_startups_s=tuple(
                    round(p.startup_s, 3) for p in new_pods if p.startup_s is not None
                ),
            )
        )
        previous = at
    return tuple(events)


def _rises(replicas: Sequence[ReplicaPoint]) -> list[tuple[float, int, int]]:
    """(offset, from, to) for each sample whose desired count is above the one before."""
    rises = []
    for before, point in pairwise(replicas):
        if point.desired > before.desired:
            rises.append((point.t_s, before.desired, point.desired))
    return rises


def _decision(
    autoscaler: Sequence[AutoscalerSample], previous: float | None, at: float, to: int
) -> float:
    """When the rise to `to` at `at` was decided: the first autoscaler sample since the previous
    rise whose desired count reached `to`, if it came first; else `at`."""
    for sample in autoscaler:
        if previous is not None and sample.at <= previous:
            continue
        if sample.at > at:
            break
        if sample.desired is not None and sample.desired >= to:
            return sample.at
    return at


def _latest(changes: Sequence[tuple[float, str]], at: float) -> tuple[float, str] | None:
    found = None
    for change in changes:
        if change[0] > at:
            break
        found = change
    return found


def _metric_above(
    autoscaler: Sequence[AutoscalerSample], lower: float, until: float
) -> tuple[float, MetricStatus] | None:
    """The first moment in [lower, until] that a metric was above its target, and the metric
    (the status in force at `lower`, recorded before it, counts from `lower`)."""
    in_force = [s for s in autoscaler if s.at <= lower][-1:]
    found = _above(in_force[0]) if in_force else None
    if found is not None:
        return (lower, found)
    for sample in autoscaler:
        if sample.at > until:
            break
        found = _above(sample) if sample.at > lower else None
        if found is not None:
            return (sample.at, found)
    return None


def _above(sample: AutoscalerSample) -> MetricStatus | None:
    return next((m for m in sample.metrics if m.above), None)


def _new_pods(
    pods: Sequence[PodRecord], decided: float, following: float, count: int
) -> list[PodRecord]:
    """The first `count` pods created from the decision on (less `POD_SLACK_S`) and before the
    next rise, in creation order."""
    created = [
        p
        for p in pods
        if p.created is not None and decided - POD_SLACK_S <= p.created < following - POD_SLACK_S
    ]
    created.sort(key=lambda p: p.created or 0.0)
    return created[:count]


def restarts_since(pods: Sequence[PodRecord], baseline: Mapping[str, int]) -> int:
    """The container restarts of `pods` beyond what each had in `baseline` (its restarts when
    the run started; a pod not in it had none then)."""
    return sum(max(p.restarts - baseline.get(p.name, 0), 0) for p in pods)


def _offset(at: float | None, origin: float) -> float | None:
    return None if at is None else round(at - origin, 3)


def pod_offsets(pods: Sequence[PodRecord], origin: float) -> tuple[PodRecord, ...]:
    """Pod records with every time a run offset (clock time less `origin`), to the millisecond."""
    return tuple(
        replace(
            p,
            created=_offset(p.created, origin),
            scheduled=_offset(p.scheduled, origin),
            started=_offset(p.started, origin),
            ready=_offset(p.ready, origin),
            deleted=_offset(p.deleted, origin),
        )
        for p in pods
    )


def autoscaler_offsets(
    samples: Sequence[AutoscalerSample], origin: float
) -> tuple[AutoscalerSample, ...]:
    """Autoscaler samples with `at` a run offset, to the millisecond."""
    return tuple(replace(s, at=round(s.at - origin, 3)) for s in samples)


def scaling_record(
    recorder: ScalingRecorder | None,
    origin: float,
    plan: Plan,
    samples: Sequence[ReplicaSample],
) -> ScalingRecord:
    """The results' `scaling` section: what `recorder` recorded (clock times, like the replica
    `samples`; `origin` the clock time of run offset 0) as run offsets, the scale events
    derived from it, and notes on what is missing (no recorder, pods not watched, no
    autoscaler). Without a recorder the events come from the replica samples alone."""
    points = [ReplicaPoint(round(s.at - origin, 3), s.ready, s.desired) for s in samples]
    if recorder is None:
        return ScalingRecord(events=derive_events(plan, points, (), ()), notes=(NO_RECORDER,))
    autoscaler = autoscaler_offsets(list(recorder.autoscaler_samples), origin)
    watched = recorder.pods_watched
    pods = pod_offsets(list(recorder.pods), origin)
    notes = []
    if not watched:
        notes.append(PODS_NOT_WATCHED)
    if not autoscaler:
        notes.append(NO_AUTOSCALER)
    return ScalingRecord(
        autoscaler=autoscaler,
        pods=pods,
        pods_watched=watched,
        events=derive_events(plan, points, autoscaler, pods),
        notes=tuple(notes),
    )
