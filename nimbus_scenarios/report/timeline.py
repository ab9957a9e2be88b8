"""A run's timeline as the charts draw it: `build_timeline(results)` turns a `RunResults` into
frozen series on one time axis (seconds from the start of the first phase).

Its place: between the results model and `report.charts`. It decides what is on the axis and
where the axis ends; `charts` only maps it to SVG, and the hover read-out gets the same numbers.

- the per-second series (scheduled, sent, failed, dropped, latency percentiles), for the run
  and for each request template (`stats.requests`; none in documents written before templates
  had them);
- the phases as planned, and the part of each that ran;
- the planned target rate, from the embedded plan (`results.plan`): each open-model phase's
  segments as they were compiled (ramps, steps, spikes), a burst phase averaged over its interval
  as `PhasePlan.rate_at` does, nothing for a closed-model (`users`) phase. A shard's document
  draws its share of the plan as the total planned rate divided by the shard count (the shard
  sends every count-th arrival, so this is exact to within one arrival per phase); a merged
  document (`shard` None) draws the whole plan;
- ready and desired replicas as steps, cut off where the replica source was lost;
- pod kills and the abort as markers;
- the replica expectations judged over a window of the run: the window, the threshold, and
  where the condition held (`before`/`after` checks count from their stage, so they are not on
  the axis);
- the results' `scaling` section, when it has one (`report.scaling_timeline`): each metric
  against its target, the autoscaler's desired replicas, the decisions, a bar per pod.

The axis ends at the last thing that happened (the last second with traffic, the end of the
last phase that ran, the last replica sample, a kill, the abort, a window that held, the last
autoscaler sample, pod or scale event), never at
the plan's end: a run aborted after 3 s of a planned hour is not drawn an hour wide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from nimbus_scenarios.engine.records import SecondRecord
from nimbus_scenarios.language.nodes import Comparator, ShapeKind
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.plan.model import PhasePlan
from nimbus_scenarios.report._format import finite, offset
from nimbus_scenarios.report.scaling_timeline import (
    ScalingTimeline,
    scaling_ends,
    scaling_timeline,
)
from nimbus_scenarios.results.model import RunResults, Verdict

__all__ = [
    "Marker",
    "MarkerKind",
    "PhaseSpan",
    "ReplicaStep",
    "ReplicaWindow",
    "RequestSeries",
    "SecondPoint",
    "TargetRun",
    "Timeline",
    "build_timeline",
    "target_runs",
]


@dataclass(frozen=True, slots=True)
class SecondPoint:
    """One whole second of the run: counts, and latency percentiles in ms (None for a second
    in which no response came)."""

    second: int
    scheduled: int
    sent: int
    dropped: int
    succeeded: int
    failed: int
    p50: float | None
    p95: float | None
    p99: float | None

    @property
    def busy(self) -> bool:
        """Whether anything happened in this second."""
        counts = (self.scheduled, self.sent, self.dropped, self.succeeded, self.failed)
        return any(counts) or self.p50 is not None


@dataclass(frozen=True, slots=True)
class RequestSeries:
    """One request template's seconds over the run (only those in which it had anything)."""

    name: str
    seconds: tuple[SecondPoint, ...]


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """A phase where the plan put it, and the part of it that ran (None: it did not)."""

    name: str
    start: float
    end: float
    ran: tuple[float, float] | None

    @property
    def ran_end(self) -> float:
        """Where running stopped (its start if it never ran)."""
        return self.start if self.ran is None else self.ran[1]


@dataclass(frozen=True, slots=True)
class TargetRun:
    """A straight piece of the planned target rate, from `rate_start` at `start` to `rate_end`
    at `end` (equal rates: a step)."""

    start: float
    end: float
    rate_start: float
    rate_end: float

    def rate_at(self, t: float) -> float:
        """The planned rate at `t` within the run."""
        width = self.end - self.start
        share = (t - self.start) / width if width > 0 else 0.0
        return self.rate_start + (self.rate_end - self.rate_start) * share


@dataclass(frozen=True, slots=True)
class ReplicaStep:
    """Ready and desired replicas from `start` until `end` (the next sample, the loss of the
    replica source, or the end of the axis)."""

    start: float
    end: float
    ready: int
    desired: int


class MarkerKind(StrEnum):
    """What a vertical marker stands for."""

    KILL = "kill"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class Marker:
    """A moment marked across every chart, with a short label and a full description."""

    at: float
    kind: MarkerKind
    label: str
    title: str


@dataclass(frozen=True, slots=True)
class ReplicaWindow:
    """A replica expectation judged over a window of the run: its threshold, and when (and at
    what value) it held."""

    text: str
    verdict: Verdict
    comparator: Comparator
    value: float
    start: float
    end: float
    met_at: float | None
    observed: float | None


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything the charts draw, on one axis from 0 to `end` seconds."""

    end: float
    seconds: tuple[SecondPoint, ...]
    phases: tuple[PhaseSpan, ...]
    target: tuple[TargetRun, ...]
    target_share: float
    """The part of the plan's rate this document's target line shows (1/count for a shard)."""
    replicas: tuple[ReplicaStep, ...]
    replicas_lost_at: float | None
    replica_source: str | None
    """The replica source's description, or None when the run had none."""
    markers: tuple[Marker, ...]
    windows: tuple[ReplicaWindow, ...]
    requests: tuple[RequestSeries, ...] = ()
    """Per request template, in the document's order."""
    scaling: ScalingTimeline | None = None
    """The `scaling` section's series (None: the document has none)."""

    @property
    def empty(self) -> bool:
        """Whether there is nothing to draw (no load ran: a run stopped at pre-flight)."""
        return self.end <= 0


def _seconds(records: Iterable[SecondRecord]) -> tuple[SecondPoint, ...]:
    points = []
    for record in records:
        latency = record.latency_ms
        points.append(
            SecondPoint(
                second=record.second,
                scheduled=record.scheduled,
                sent=record.sent,
                dropped=record.dropped,
                succeeded=record.succeeded,
                failed=record.failed,
                p50=None if latency is None else finite(latency.p50),
                p95=None if latency is None else finite(latency.p95),
                p99=None if latency is None else finite(latency.p99),
            )
        )
    return tuple(sorted(points, key=lambda p: p.second))


def _phase_runs(phase: PhasePlan, share: float) -> list[TargetRun]:
    if phase.shape is ShapeKind.USERS:
        return []  # closed model: the rate follows the service, nothing is planned
    if phase.shape is ShapeKind.BURST:
        # The instantaneous rate of a burst is a spike of zero width; the averaged rate is what
        # the sent line can be compared with, and it is what `PhasePlan.rate_at` returns.
        mean = phase.rate_at(phase.start_s) * share
        return [TargetRun(phase.start_s, phase.end_s, mean, mean)]
    return [
        TargetRun(s.start_s, s.end_s, s.rate_start * share, s.rate_end * share)
        for s in phase.segments
        if s.end_s > s.start_s
    ]


def target_runs(results: RunResults, end: float | None = None) -> tuple[TargetRun, ...]:
    """The planned target rate as straight runs, this document's share of it, cut at `end`."""
    share = _share(results)
    runs: list[TargetRun] = []
    for phase in results.plan.phases:
        for run in _phase_runs(phase, share):
            if end is None or run.end <= end:
                runs.append(run)
            elif run.start < end:
                runs.append(TargetRun(run.start, end, run.rate_start, run.rate_at(end)))
    return tuple(runs)


def _share(results: RunResults) -> float:
    shard = results.shard
    return 1.0 if shard is None or shard.count <= 1 else 1.0 / shard.count


def _markers(results: RunResults) -> tuple[Marker, ...]:
    markers = []
    for kill in results.kills:
        at = finite(kill.at_s)
        if at is None:
            continue
        pods = kill.pods or ()
        n = kill.count or len(pods)
        title = f"kill {n} pod{'s' if n != 1 else ''} at {offset(at)}"
        if pods:
            title += ": " + ", ".join(pods)
        elif kill.error:
            title += f" (failed: {kill.error})"
        markers.append(Marker(at, MarkerKind.KILL, "kill", title))
    abort = results.abort
    abort_at = None if abort is None else finite(abort.at_s)
    if abort is not None and abort_at is not None:
        title = f"aborted at {offset(abort_at)}: {abort.reason or 'aborted'}"
        markers.append(Marker(abort_at, MarkerKind.ABORT, "abort", title))
    return tuple(markers)


def _windows(results: RunResults) -> tuple[ReplicaWindow, ...]:
    windows = []
    for judgement in results.expectations:
        e = judgement.expectation
        span = judgement.window_s
        # Only windows on the run's axis: `before`/`after` checks have no run offsets.
        if e.kind is not ExpectationKind.REPLICAS or span is None:
            continue
        windows.append(
            ReplicaWindow(
                text=e.text,
                verdict=judgement.verdict,
                comparator=e.comparator,
                value=e.value,
                start=span[0],
                end=span[1],
                met_at=finite(judgement.met_at_s),
                observed=finite(judgement.observed),
            )
        )
    return tuple(windows)


def _replica_steps(results: RunResults, end: float) -> tuple[ReplicaStep, ...]:
    points = sorted(results.replicas, key=lambda p: p.t_s)
    lost = results.lost_at_s
    stop_at = end if lost is None else min(lost, end)
    steps = []
    for i, point in enumerate(points):
        last = i + 1 == len(points)
        t_next = stop_at if last else points[i + 1].t_s
        start, stop = max(point.t_s, 0.0), min(t_next, stop_at)
        if stop > start or (last and stop >= start):
            steps.append(ReplicaStep(start, max(stop, start), point.ready, point.desired))
    return tuple(steps)


def build_timeline(results: RunResults) -> Timeline:
    """The timeline of one results document (see the module doc for what is on it)."""
    seconds = _seconds(results.seconds)
    phases = tuple(PhaseSpan(p.name, p.start_s, p.end_s, p.ran_s) for p in results.phases)
    markers = _markers(results)
    windows = _windows(results)
    ends = [0.0]
    ends.extend(s.second + 1.0 for s in seconds if s.busy)
    ends.extend(p.ran[1] for p in phases if p.ran is not None)
    ends.extend(p.t_s for p in results.replicas)
    ends.extend(m.at for m in markers)
    ends.extend(w.met_at for w in windows if w.met_at is not None)
    if results.scaling is not None:
        ends.extend(scaling_ends(results.scaling))
    end = max(e for e in ends if finite(e) is not None)
    source = results.replica_source
    return Timeline(
        end=end,
        seconds=seconds,
        phases=phases,
        target=target_runs(results, end),
        target_share=_share(results),
        replicas=_replica_steps(results, end),
        replicas_lost_at=results.lost_at_s,
        replica_source=None if source is None else source.description,
        markers=markers,
        windows=windows,
        requests=tuple(RequestSeries(r.name, _seconds(r.seconds)) for r in results.stats.requests),
        scaling=None if results.scaling is None else scaling_timeline(results.scaling, end),
    )
