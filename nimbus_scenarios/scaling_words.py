"""Why it scaled, in words: a scale event as one line, an autoscaler metric against its target.

`describe_event(event)` is the console's breakdown of one rise of desired replicas
(``+2 desired (3 -> 5) at 0:41, 19 s after phase "ramp" started: rps per replica 7.2 > 5 since
0:38; pods created at 0:43; ready at 1:03, pods took 14 s and 22 s``); a step that was not seen
is named (`no autoscaler metric seen`, `pods not watched`, `not ready by the end`).
`metric_text(metric)` is `--monitor`'s ``rps per replica 7.2/5``. The summary, the monitor and
the log lines share them.

Its place: layer 4, beside the pure data of `scaling`, below both `report` (the console) and
`telemetry` (span events, log lines), which share it. Every function is total (None, NaN and
infinities come out as `-`), and writes plain ASCII, since these lines end up in logs and CI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from nimbus_scenarios.scaling import MetricStatus, ScaleEvent, ScalingRecord, TargetKind

__all__ = [
    "describe_event",
    "finite",
    "metric_text",
    "number",
    "run_time",
    "scaling_lines",
    "seconds",
]

_MISSING: Final = "-"
_LISTED: Final = 4
"""Up to this many pod start-ups are listed one by one; more are given as a range."""


def finite(value: float | None) -> float | None:
    """`value` if it is a finite number, else None: the one test every formatter starts with
    (`report._format` uses this one too)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def run_time(value: float | None) -> str:
    """A run offset as a clock: `0:41`, `12:05`, `1:02:05`, `-0:03` (before the origin)."""
    v = finite(value)
    if v is None:
        return _MISSING
    whole = round(abs(v))
    sign = "-" if v < 0 and whole else ""
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


def seconds(value: float | None) -> str:
    """A duration: `0.4 s` and `2.5 s` below 10 s, `19 s`, `2 min 05 s` from two minutes."""
    v = finite(value)
    if v is None:
        return _MISSING
    if v < 0:
        return "-" + seconds(-v)
    if v < 9.95:
        return f"{v:.1f} s"
    whole = round(v)
    if whole < 120:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    return f"{minutes} min {secs:02d} s"


def number(value: float | None) -> str:
    """A metric's value: whole numbers as such, else three significant digits (`7.2`,
    `0.333`, `12.3`), whole from 100 on (`1234`)."""
    v = finite(value)
    if v is None:
        return _MISSING
    if v == round(v) and abs(v) < 1e15:
        return str(round(v))
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _unit(kind: TargetKind) -> str:
    return "%" if kind is TargetKind.UTILIZATION else ""


def metric_text(metric: MetricStatus) -> str:
    """A metric against its target, current first: `rps per replica 7.2/5`, `cpu 72%/80%`,
    `s0-prometheus -/5` (no value yet)."""
    unit = _unit(metric.target_kind)
    current = number(metric.current)
    shown = current if current == _MISSING else current + unit
    return f"{metric.name} {shown}/{number(metric.target)}{unit}"


def _startups(startups: Sequence[float]) -> str:
    if len(startups) == 1:
        return f"the pod took {seconds(startups[0])}"
    if len(startups) <= _LISTED:
        shown = [seconds(s) for s in startups]
        return f"pods took {', '.join(shown[:-1])} and {shown[-1]}"
    return f"{len(startups)} pods took {seconds(min(startups))} to {seconds(max(startups))}"


def _lead(event: ScaleEvent) -> str:
    change = event.to_replicas - event.from_replicas
    head = (
        f"{change:+d} desired ({event.from_replicas} -> {event.to_replicas}) "
        f"at {run_time(event.decided_s)}"
    )
    if event.load_change is None:
        return f"{head}, no load change seen before it"
    if event.load_change_s is None:
        return f"{head}, after {event.load_change}"
    return f"{head}, {seconds(event.decided_s - event.load_change_s)} after {event.load_change}"


def _metric(event: ScaleEvent) -> str:
    if event.metric is None:
        return "no autoscaler metric seen"
    target = number(event.metric_target)
    text = (
        f"{event.metric} above {target}"
        if finite(event.metric_value) is None
        else f"{event.metric} {number(event.metric_value)} > {target}"
    )
    if finite(event.metric_above_s) is not None:
        text += f" since {run_time(event.metric_above_s)}"
    return text


def _pods(event: ScaleEvent, pods_watched: bool) -> str:
    if event.pods_created_s is not None:
        return f"pods created at {run_time(event.pods_created_s)}"
    return "no new pod seen" if pods_watched else "pods not watched"


def _ready(event: ScaleEvent) -> str:
    startups = event.pod_startups_s
    if event.ready_s is None:
        return "not ready by the end" + (f" ({_startups(startups)})" if startups else "")
    text = f"ready at {run_time(event.ready_s)}"
    return f"{text}, {_startups(startups)}" if startups else text


def describe_event(event: ScaleEvent, *, pods_watched: bool = True) -> str:
    """One scale event as a line: the rise and when, after which load change; the metric
    above its target and since when; when the new pods were created; when the ready replicas
    caught up, and each new pod's start-up. `pods_watched=False` says the pods' steps are
    missing because the pods were not watched (rather than not seen)."""
    steps = [_metric(event), _pods(event, pods_watched), _ready(event)]
    return f"{_lead(event)}: {'; '.join(steps)}"


def scaling_lines(record: ScalingRecord) -> list[str]:
    """The summary's section: a line per scale event (indented under `scale events:`), or
    `scale events: none`, then the record's notes on what is missing."""
    if not record.events:
        lines = ["scale events: none (desired replicas never rose)"]
    else:
        lines = ["scale events:"]
        lines.extend(
            f"  {describe_event(e, pods_watched=record.pods_watched)}" for e in record.events
        )
    lines.extend(f"note: {note}" for note in record.notes)
    return lines
