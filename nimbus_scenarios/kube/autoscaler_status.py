"""An HPA's (and a KEDA ScaledObject's) status, read from the objects the API serves into the
shared scaling data (`nimbus_scenarios.scaling`): pure functions, no calls.

`autoscaler_status` pairs every `status.currentMetrics` entry of an autoscaling/v2 HPA with its
target in `spec.metrics` (External, Object and Pods metrics by metric name, Resource and
ContainerResource ones by resource and container) and expresses the current value in the
target's terms: `averageValue` for an `AverageValue` target, `value` for `Value`,
`averageUtilization` for `Utilization`. A metric of the spec that the status does not report yet
is kept with no current value. Quantities (`500m`, `2k`, `1Gi`) are read by `parse_quantity`.

Conditions kept: the HPA's `AbleToScale`, `ScalingActive` and `ScalingLimited`, then a
ScaledObject's `Ready`, `Active` and `Fallback`. A ScaledObject's status says whether *any*
trigger is active (its `Active` condition), not which one (KEDA exposes per-trigger activity only
as its `keda_scaler_active` metric): when it feeds the HPA exactly one external metric
(`status.externalMetricNames`), that metric's `active` is the `Active` condition; otherwise
each metric's activity stays unknown (None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from nimbus_scenarios.kube.api import KubeObject, as_int, as_str, get_in
from nimbus_scenarios.scaling import Condition, MetricStatus, TargetKind

__all__ = [
    "HPA_CONDITIONS",
    "SCALED_OBJECT_CONDITIONS",
    "AutoscalerStatus",
    "autoscaler_status",
    "conditions_of",
    "hpa_metrics",
    "parse_quantity",
]

HPA_CONDITIONS: Final = ("AbleToScale", "ScalingActive", "ScalingLimited")
SCALED_OBJECT_CONDITIONS: Final = ("Ready", "Active", "Fallback")

_SUFFIXES: Final = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_QUANTITY: Final = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)"
)
_SOURCES: Final = {
    "External": "external",
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "ContainerResource": "containerResource",
}
_TARGET_FIELDS: Final = {
    TargetKind.AVERAGE_VALUE: "averageValue",
    TargetKind.VALUE: "value",
    TargetKind.UTILIZATION: "averageUtilization",
}


@dataclass(frozen=True, slots=True)
class AutoscalerStatus:
    """What an `AutoscalerSample` holds, before the source stamps it with a time."""

    desired: int | None
    current: int | None
    metrics: tuple[MetricStatus, ...] = ()
    conditions: tuple[Condition, ...] = ()


def parse_quantity(value: object) -> float | None:
    """A Kubernetes quantity (`500m` → 0.5, `2k`, `1Gi`, `1e3`) or a JSON number; None when it
    is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        return None
    return float(match[1]) * _SUFFIXES[match[2]]


def conditions_of(obj: object, types: tuple[str, ...]) -> tuple[Condition, ...]:
    """The object's status conditions of `types`, in `types` order."""
    listed = get_in(obj, "status", "conditions")
    found: dict[str, Condition] = {}
    for entry in listed if isinstance(listed, list) else []:
        kind = as_str(get_in(entry, "type"))
        if kind in types and kind not in found:
            found[kind] = Condition(
                type=kind,
                status=as_str(get_in(entry, "status")) or "Unknown",
                reason=as_str(get_in(entry, "reason")) or "",
                message=as_str(get_in(entry, "message")) or "",
            )
    return tuple(found[t] for t in types if t in found)


def _key(entry: object) -> tuple[str, str, str, str] | None:
    """What pairs a spec metric with its status entry: type, source name, container, object."""
    kind = as_str(get_in(entry, "type"))
    field = _SOURCES.get(kind or "")
    if kind is None or field is None:
        return None
    source = get_in(entry, field)
    if kind in ("Resource", "ContainerResource"):
        name = as_str(get_in(source, "name"))
    else:
        name = as_str(get_in(source, "metric", "name"))
    container = as_str(get_in(source, "container")) or ""
    described = as_str(get_in(source, "describedObject", "name")) or ""
    return None if name is None else (kind, name, container, described)


def _name(key: tuple[str, str, str, str]) -> str:
    kind, name, container, _ = key
    return f"{container}/{name}" if kind == "ContainerResource" and container else name


def hpa_metrics(hpa: KubeObject) -> tuple[MetricStatus, ...]:
    """Each metric of the HPA's spec with its target, and its current value when the status has
    one, in the spec's order."""
    current: dict[tuple[str, str, str, str], object] = {}
    listed = get_in(hpa, "status", "currentMetrics")
    for entry in listed if isinstance(listed, list) else []:
        key = _key(entry)
        if key is not None:
            current.setdefault(key, get_in(entry, _SOURCES[key[0]], "current"))
    metrics: list[MetricStatus] = []
    specified = get_in(hpa, "spec", "metrics")
    for entry in specified if isinstance(specified, list) else []:
        key = _key(entry)
        if key is None:
            continue
        target = get_in(entry, _SOURCES[key[0]], "target")
        try:
            kind = TargetKind(as_str(get_in(target, "type")) or "")
        except ValueError:
            continue
        field = _TARGET_FIELDS[kind]
        wanted = parse_quantity(get_in(target, field))
        if wanted is None:
            continue
        value = parse_quantity(get_in(current.get(key), field))
        metrics.append(MetricStatus(_name(key), kind, wanted, value))
    return tuple(metrics)


def autoscaler_status(
    hpa: KubeObject | None, scaled_object: KubeObject | None = None
) -> AutoscalerStatus:
    """The HPA's decision, count, metrics and conditions, with a ScaledObject's conditions (and
    its single trigger's activity) when KEDA owns the HPA."""
    metrics = hpa_metrics(hpa) if hpa is not None else ()
    conditions = conditions_of(hpa, HPA_CONDITIONS) if hpa is not None else ()
    if scaled_object is not None:
        own = conditions_of(scaled_object, SCALED_OBJECT_CONDITIONS)
        conditions = (*conditions, *own)
        names = get_in(scaled_object, "status", "externalMetricNames")
        active = next((c.status for c in own if c.type == "Active"), None)
        if isinstance(names, list) and len(names) == 1 and active in ("True", "False"):
            metrics = tuple(
                _with_activity(m, active == "True") if m.name == names[0] else m for m in metrics
            )
    return AutoscalerStatus(
        desired=as_int(get_in(hpa, "status", "desiredReplicas")),
        current=as_int(get_in(hpa, "status", "currentReplicas")),
        metrics=metrics,
        conditions=conditions,
    )


def _with_activity(metric: MetricStatus, active: bool) -> MetricStatus:
    return MetricStatus(metric.name, metric.target_kind, metric.target, metric.current, active)
