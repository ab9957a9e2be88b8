"""The results' `scaling` section on the timeline's axis: `scaling_timeline(record, end)` turns a
`ScalingRecord` into frozen series for `report.scaling_charts`.

- each metric (trigger) of the autoscaler as steps of its value and its target (the autoscaler
  is sampled when its status changes, so a value holds until the next sample); at most
  `MAX_METRIC_CHARTS` metrics, the others counted in `metrics_left_out`;
- the autoscaler's desired replicas as steps (its decision, which the Deployment's own
  `desired` follows);
- each scale event's decision as a moment, with its breakdown as a title;
- a bar per pod: created (or already running when the run began) to Ready, then Ready to
  deletion or the end of the axis, with its scheduled and started moments, restarts and
  termination reasons; at most `MAX_POD_ROWS` pods (those on the axis, in the order first
  seen), the others counted in `pods_left_out`.

`scaling_ends(record)` gives the moments the axis must reach (`timeline.build_timeline` takes
the latest of them with its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from nimbus_scenarios.report._format import duration, finite, offset
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    PodRecord,
    ScaleEvent,
    ScalingRecord,
    TargetKind,
)

__all__ = [
    "MAX_METRIC_CHARTS",
    "MAX_POD_ROWS",
    "Decision",
    "DesiredStep",
    "MetricSeries",
    "MetricStep",
    "PodBar",
    "ScalingTimeline",
    "scaling_ends",
    "scaling_timeline",
    "target_unit",
]

MAX_METRIC_CHARTS: Final = 4
"""Metrics drawn, one chart each; a ScaledObject rarely has more triggers."""
MAX_POD_ROWS: Final = 40
"""Pods drawn, a row each; the others are counted under the chart."""

_UNITS: Final = {
    TargetKind.AVERAGE_VALUE: "per replica",
    TargetKind.VALUE: "total",
    TargetKind.UTILIZATION: "% of requests",
}


def target_unit(kind: TargetKind) -> str:
    """How a target of this kind reads (`per replica`, `total`, `% of requests`)."""
    return _UNITS.get(kind, str(kind))


@dataclass(frozen=True, slots=True)
class MetricStep:
    """A metric's value (None: the autoscaler had none) and target from `start` to `end`."""

    start: float
    end: float
    current: float | None
    target: float


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One autoscaler metric over the run."""

    name: str
    kind: TargetKind
    steps: tuple[MetricStep, ...]

    @property
    def unit(self) -> str:
        """How its values read."""
        return target_unit(self.kind)


@dataclass(frozen=True, slots=True)
class DesiredStep:
    """The autoscaler's desired replicas from `start` to `end`."""

    start: float
    end: float
    desired: int


@dataclass(frozen=True, slots=True)
class Decision:
    """A scale event's decision on the axis, and its breakdown in words."""

    at: float
    from_replicas: int
    to_replicas: int
    title: str


@dataclass(frozen=True, slots=True)
class PodBar:
    """One pod's row: `start` is its creation (or 0 when it ran before the run began), `end`
    its deletion or the end of the axis; the other moments are None when not seen."""

    name: str
    start: float
    end: float
    created: float | None
    scheduled: float | None
    started: float | None
    ready: float | None
    deleted: float | None
    restarts: int
    terminations: tuple[str, ...]
    title: str

    @property
    def troubled(self) -> bool:
        """Whether it restarted or a container of it terminated."""
        return self.restarts > 0 or bool(self.terminations)


@dataclass(frozen=True, slots=True)
class ScalingTimeline:
    """What the scaling charts draw, on the timeline's axis."""

    metrics: tuple[MetricSeries, ...]
    metrics_left_out: int
    desired: tuple[DesiredStep, ...]
    decisions: tuple[Decision, ...]
    pods: tuple[PodBar, ...]
    pods_left_out: int
    pods_watched: bool
    notes: tuple[str, ...]


def scaling_ends(record: ScalingRecord) -> Iterator[float]:
    """Every moment of the section that the axis must reach."""
    yield from (s.at for s in record.autoscaler)
    for pod in record.pods:
        yield from (t for t in (pod.created, pod.ready, pod.deleted) if t is not None)
    for event in record.events:
        yield event.decided_s
        if event.ready_s is not None:
            yield event.ready_s


def _metric_names(samples: tuple[AutoscalerSample, ...]) -> list[tuple[str, TargetKind]]:
    names: dict[str, TargetKind] = {}
    for sample in samples:
        for metric in sample.metrics:
            names.setdefault(metric.name, metric.target_kind)
    return list(names.items())


def _metric(
    name: str, kind: TargetKind, samples: tuple[AutoscalerSample, ...], end: float
) -> MetricSeries:
    steps: list[MetricStep] = []
    for i, sample in enumerate(samples):
        stop = end if i + 1 == len(samples) else min(samples[i + 1].at, end)
        start = max(sample.at, 0.0)
        metric = next((m for m in sample.metrics if m.name == name), None)
        if metric is None or (stop <= start and i + 1 < len(samples)):
            continue
        current = None if metric.current is None else finite(metric.current)
        target = finite(metric.target)
        if target is None:
            continue
        last = steps[-1] if steps else None
        if (
            last is not None
            and last.end == start
            and (last.current, last.target)
            == (
                current,
                target,
            )
        ):
            steps[-1] = MetricStep(last.start, max(stop, start), current, target)
        else:
            steps.append(MetricStep(start, max(stop, start), current, target))
    return MetricSeries(name, kind, tuple(steps))


def _desired(samples: tuple[AutoscalerSample, ...], end: float) -> tuple[DesiredStep, ...]:
    known = [s for s in samples if s.desired is not None]
    steps: list[DesiredStep] = []
    for i, sample in enumerate(known):
        stop = end if i + 1 == len(known) else min(known[i + 1].at, end)
        start = max(sample.at, 0.0)
        assert sample.desired is not None
        if stop < start or (stop == start and i + 1 < len(known)):
            continue
        if steps and steps[-1].desired == sample.desired and steps[-1].end == start:
            steps[-1] = DesiredStep(steps[-1].start, stop, sample.desired)
        else:
            steps.append(DesiredStep(start, stop, sample.desired))
    return tuple(steps)


def _moment(label: str, at: float | None) -> str | None:
    return None if at is None else f"{label} {offset(at)}"


def _pod_title(pod: PodRecord) -> str:
    parts = [
        _moment("created", pod.created) or "created before the run",
        _moment("scheduled", pod.scheduled),
        _moment("containers started", pod.started),
        _moment("ready", pod.ready) or "never ready",
        _moment("deleted", pod.deleted),
    ]
    startup = pod.startup_s
    if startup is not None:
        parts.append(f"start-up {duration(startup)}")
    if pod.restarts:
        parts.append(f"{pod.restarts} restart{'s' if pod.restarts != 1 else ''}")
    if pod.terminations:
        parts.append("terminated: " + ", ".join(pod.terminations))
    return f"pod {pod.name}: " + "; ".join(p for p in parts if p)


def _pod(pod: PodRecord, end: float) -> PodBar | None:
    created = None if pod.created is None else finite(pod.created)
    deleted = None if pod.deleted is None else finite(pod.deleted)
    start = max(created or 0.0, 0.0)
    stop = end if deleted is None else min(deleted, end)
    if start > end or (deleted is not None and deleted < 0):
        return None  # not on the axis
    return PodBar(
        name=pod.name,
        start=start,
        end=max(stop, start),
        created=created,
        scheduled=pod.scheduled,
        started=pod.started,
        ready=pod.ready,
        deleted=deleted,
        restarts=pod.restarts,
        terminations=pod.terminations,
        title=_pod_title(pod),
    )


def _decision(event: ScaleEvent) -> Decision:
    sign = "+" if event.to_replicas >= event.from_replicas else ""
    change = event.to_replicas - event.from_replicas
    title = (
        f"desired {event.from_replicas} \u2192 {event.to_replicas} ({sign}{change}) "
        f"at {offset(event.decided_s)}"
    )
    if event.metric is not None and event.metric_value is not None:
        title += f": {event.metric} {event.metric_value:g}"
        if event.metric_target is not None:
            title += f" > {event.metric_target:g}"
    return Decision(event.decided_s, event.from_replicas, event.to_replicas, title)


def scaling_timeline(record: ScalingRecord, end: float) -> ScalingTimeline:
    """The section's series on an axis from 0 to `end` (see the module doc)."""
    samples = tuple(sorted(record.autoscaler, key=lambda s: s.at))
    names = _metric_names(samples)
    metrics = tuple(_metric(n, k, samples, end) for n, k in names[:MAX_METRIC_CHARTS])
    bars = [bar for pod in record.pods for bar in (_pod(pod, end),) if bar is not None]
    return ScalingTimeline(
        metrics=metrics,
        metrics_left_out=max(len(names) - MAX_METRIC_CHARTS, 0),
        desired=_desired(samples, end),
        decisions=tuple(_decision(e) for e in record.events if 0 <= e.decided_s <= end),
        pods=tuple(bars[:MAX_POD_ROWS]),
        pods_left_out=max(len(bars) - MAX_POD_ROWS, 0),
        pods_watched=record.pods_watched,
        notes=record.notes,
    )
