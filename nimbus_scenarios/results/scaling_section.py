"""The results' `scaling` section at the document's edges: rounded once when it is built, and
checked when a document is read.

`round_scaling` rounds every time (run offsets, pod times, start-up durations) to the
millisecond and every metric value to six decimals, as `results.build` rounds the rest, so a
document read back is equal to the one written. `check_scaling` bounds what the codec's types
cannot: how many samples, pods and events a document may hold (so that charting it stays
cheap), replica counts as Kubernetes counts them (0 to 2^31 - 1), and every time within the run;
a pod's creation, scheduling, start and readiness may lie any time before it (a pod of a
Deployment that ran for months), never after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from nimbus_scenarios.language.vocabulary import MAX_DURATION_S
from nimbus_scenarios.results.codec import DecodeError
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    MetricStatus,
    PodRecord,
    ScaleEvent,
    ScalingRecord,
)

__all__ = [
    "MAX_AUTOSCALER_SAMPLES",
    "MAX_METRICS",
    "MAX_PODS",
    "MAX_REPLICAS",
    "MAX_SCALE_EVENTS",
    "check_scaling",
    "round_scaling",
]

MAX_AUTOSCALER_SAMPLES: Final = 100_000
"""Autoscaler samples a document may hold: one per change of status, so a week-long run whose
autoscaler changed every 10 s stays well inside."""
MAX_PODS: Final = 10_000
"""Pod records a document may hold."""
MAX_SCALE_EVENTS: Final = 10_000
"""Scale events a document may hold."""
MAX_METRICS: Final = 100
"""Metrics (and, separately, conditions) one autoscaler sample may hold."""
MAX_REPLICAS: Final = 2**31 - 1
"""The largest replica count or restart count (Kubernetes keeps them as 32-bit integers)."""


# ------------------------------------------------------------------------------ rounding


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _value(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _metric(metric: MetricStatus) -> MetricStatus:
    target = round(metric.target, 6)
    return dataclasses.replace(metric, target=target, current=_value(metric.current))


def _sample(sample: AutoscalerSample) -> AutoscalerSample:
    return dataclasses.replace(
        sample, at=round(sample.at, 3), metrics=tuple(_metric(m) for m in sample.metrics)
    )


def _pod(pod: PodRecord) -> PodRecord:
    return dataclasses.replace(
        pod,
        created=_ms(pod.created),
        scheduled=_ms(pod.scheduled),
        started=_ms(pod.started),
        ready=_ms(pod.ready),
        deleted=_ms(pod.deleted),
    )


def _event(event: ScaleEvent) -> ScaleEvent:
    return dataclasses.replace(
        event,
        decided_s=round(event.decided_s, 3),
        load_change_s=_ms(event.load_change_s),
        metric_value=_value(event.metric_value),
        metric_target=_value(event.metric_target),
        metric_above_s=_ms(event.metric_above_s),
        pods_created_s=_ms(event.pods_created_s),
        ready_s=_ms(event.ready_s),
        pod_startups_s=tuple(round(s, 3) for s in event.pod_startups_s),
    )


def round_scaling(record: ScalingRecord | None) -> ScalingRecord | None:
    """The section as the document keeps it: times to the millisecond, values to six
    decimals."""
    if record is None:
        return None
    return dataclasses.replace(
        record,
        autoscaler=tuple(_sample(s) for s in record.autoscaler),
        pods=tuple(_pod(p) for p in record.pods),
        events=tuple(_event(e) for e in record.events),
    )


# ------------------------------------------------------------------------------ checking


def _count(items: tuple[object, ...], limit: int, path: str, what: str) -> None:
    if len(items) > limit:
        raise DecodeError(path, f"more {what} than the {limit:,} a document may hold")


def _replicas(value: int | None, path: str) -> None:
    if value is not None and not 0 <= value <= MAX_REPLICAS:
        raise DecodeError(path, f"expected a count from 0 to {MAX_REPLICAS}")


def _times(
    items: Iterable[tuple[str, float | None]], low: float | None, high: float, path: str
) -> None:
    """Each time from `low` (None: any time before) to `high`."""
    for name, value in items:
        if value is None:
            continue
        if low is None and value > high:
            raise DecodeError(f"{path}.{name}", f"expected a run offset of at most {high:g} s")
        if low is not None and not low <= value <= high:
            raise DecodeError(
                f"{path}.{name}",
                f"expected a run offset from {low:g} to {high:g} s (within the run)",
            )


def _check_sample(sample: AutoscalerSample, span: float, path: str) -> None:
    _times((("at", sample.at),), -span, span, path)
    _replicas(sample.desired, f"{path}.desired")
    _replicas(sample.current, f"{path}.current")
    _count(sample.metrics, MAX_METRICS, f"{path}.metrics", "metrics")
    _count(sample.conditions, MAX_METRICS, f"{path}.conditions", "conditions")


def _check_pod(pod: PodRecord, span: float, path: str) -> None:
    started = (
        ("created", pod.created),
        ("scheduled", pod.scheduled),
        ("started", pod.started),
        ("ready", pod.ready),
    )
    _times(started, None, span, path)
    _times((("deleted", pod.deleted),), -span, span, path)
    _replicas(pod.restarts, f"{path}.restarts")
    _count(pod.terminations, MAX_METRICS, f"{path}.terminations", "terminations")


def _check_event(event: ScaleEvent, span: float, path: str) -> None:
    _replicas(event.from_replicas, f"{path}.from_replicas")
    _replicas(event.to_replicas, f"{path}.to_replicas")
    moments = (
        ("decided_s", event.decided_s),
        ("load_change_s", event.load_change_s),
        ("metric_above_s", event.metric_above_s),
        ("pods_created_s", event.pods_created_s),
        ("ready_s", event.ready_s),
    )
    _times(moments, -span, span, path)
    _count(event.pod_startups_s, MAX_PODS, f"{path}.pod_startups_s", "pod start-ups")
    for i, startup in enumerate(event.pod_startups_s):
        _times(((f"pod_startups_s[{i}]", startup),), 0.0, float(MAX_DURATION_S), path)


def check_scaling(record: ScalingRecord | None, duration_s: float, path: str = "$.scaling") -> None:
    """Raise `DecodeError` (naming the JSON path) where the section is outside its bounds (see
    the module doc); `duration_s` is the document's, every run offset lies within it."""
    if record is None:
        return
    span = max(duration_s, 0.0) + 1.0  # the origin lies between the run's start and its end
    _count(record.autoscaler, MAX_AUTOSCALER_SAMPLES, f"{path}.autoscaler", "autoscaler samples")
    _count(record.pods, MAX_PODS, f"{path}.pods", "pods")
    _count(record.events, MAX_SCALE_EVENTS, f"{path}.events", "scale events")
    for i, sample in enumerate(record.autoscaler):
        _check_sample(sample, span, f"{path}.autoscaler[{i}]")
    for i, pod in enumerate(record.pods):
        _check_pod(pod, span, f"{path}.pods[{i}]")
    for i, event in enumerate(record.events):
        _check_event(event, span, f"{path}.events[{i}]")
