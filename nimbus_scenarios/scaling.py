"""The scaling seam: what a replica source records about *why* the Deployment scaled.

A replica source (`replicas.ReplicaSource`) records replica counts. One that can also see the
autoscaler and the pods (the Kubernetes source, the local fleet, a test fake) implements
`ScalingRecorder` as well, and records with times on the run's clock:

- `AutoscalerSample`s: the autoscaler's status whenever it changes (desired and current
  replicas, each metric's value against its target, the conditions, a KEDA ScaledObject's
  trigger activity);
- `PodRecord`s: each pod of the Deployment from creation to deletion (scheduled, containers
  started, Ready, restarts, termination reasons such as OOMKilled).

The scale events (`judge.scaling`) are derived from these and the replica samples; the results
carry them in their `scaling` section. Pure data: no Kubernetes, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

__all__ = [
    "AutoscalerSample",
    "Condition",
    "MetricStatus",
    "PodRecord",
    "ScaleEvent",
    "ScalingRecord",
    "ScalingRecorder",
    "TargetKind",
]


class TargetKind(StrEnum):
    """How a metric's target is expressed (the HPA's `target.type`)."""

    AVERAGE_VALUE = "AverageValue"
    """Per replica: the metric's value divided by the replica count (KEDA's usual target)."""
    VALUE = "Value"
    """The metric's value as a whole."""
    UTILIZATION = "Utilization"
    """Percent of the pods' resource requests."""


@dataclass(frozen=True, slots=True)
class MetricStatus:
    """One autoscaler metric (an HPA `currentMetrics` entry with its `spec.metrics` target, or a
    local-fleet trigger): its current value against its target.

    `name` is the metric as the autoscaler names it (`s0-prometheus`, `cpu`, `rps per
    replica`); `current` and `target` are in the target's terms (per replica for
    `AverageValue`, percent for `Utilization`); None when the autoscaler has no value yet.
    """

    name: str
    target_kind: TargetKind
    target: float
    current: float | None = None
    active: bool | None = None
    """A KEDA trigger's activity (None: not a KEDA trigger, or not known)."""

    @property
    def above(self) -> bool:
        """Whether the metric is above its target (what makes an HPA scale up)."""
        return self.current is not None and self.current > self.target


@dataclass(frozen=True, slots=True)
class Condition:
    """An autoscaler condition (`AbleToScale`, `ScalingActive`, `ScalingLimited`; a
    ScaledObject's `Ready`, `Active`, `Fallback`)."""

    type: str
    status: str
    """`True`, `False` or `Unknown`, as the API spells it."""
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class AutoscalerSample:
    """The autoscaler's status at one moment (recorded when it changes).

    `at` is on the run's clock (as `ReplicaSample.at`). `desired` is the autoscaler's decision
    (`status.desiredReplicas`), `current` what it counts now (`status.currentReplicas`).
    `conditions` holds the HPA's, then (for a ScaledObject) the ScaledObject's own.
    """

    at: float
    desired: int | None
    current: int | None
    metrics: tuple[MetricStatus, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class PodRecord:
    """One pod of the Deployment, as far as it was seen: every time on the run's clock, None
    when it did not happen (or happened before the run and was not seen).

    `created` is metadata.creationTimestamp, `scheduled` the `PodScheduled` condition's
    transition to True, `started` when every container was running, `ready` the `Ready`
    condition's (first) transition to True, `deleted` when the pod was seen deleted (or its
    deletionTimestamp set). `restarts` sums the containers' restartCount; `terminations` lists
    the reasons of container terminations seen (`OOMKilled`, `Error`, `Completed`), in order.
    """

    name: str
    created: float | None = None
    scheduled: float | None = None
    started: float | None = None
    ready: float | None = None
    deleted: float | None = None
    restarts: int = 0
    terminations: tuple[str, ...] = ()

    @property
    def startup_s(self) -> float | None:
        """Creation to Ready, when both were seen."""
        if self.created is None or self.ready is None:
            return None
        return self.ready - self.created


@runtime_checkable
class ScalingRecorder(Protocol):
    """A replica source that also records the autoscaler's status and the pods (see the module
    doc). Both lists only grow, in time order (pods by first sight); read them, never change
    them."""

    @property
    def autoscaler_samples(self) -> list[AutoscalerSample]:
        """Every autoscaler status seen, in time order (empty: no autoscaler known)."""
        ...

    @property
    def pods(self) -> list[PodRecord]:
        """Each pod of the Deployment seen during the run, latest record per pod, in the order
        first seen."""
        ...

    @property
    def pods_watched(self) -> bool:
        """Whether pods were watched (False: no permission, or not asked); their breakdown is
        then missing, and the results say so."""
        ...


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """One rise of the desired replicas, and what led to it, as run offsets (seconds).

    `load_change` names the change of load that preceded it (`phase "ramp" started`, `spike
    40/s`) at `load_change_s`; `metric` the first metric above its target before the decision,
    with its value and target at `metric_above_s`; `decided_s` is when desired rose from
    `from_replicas` to `to_replicas`; `pods_created_s` when the first new pod was created;
    `ready_s` when ready replicas reached `to_replicas` (None: never, during the run);
    `pod_startups_s` each new pod's creation-to-Ready time, in creation order. Any step not seen
    is None (the breakdown says which).
    """

    from_replicas: int
    to_replicas: int
    decided_s: float
    load_change: str | None = None
    load_change_s: float | None = None
    metric: str | None = None
    metric_value: float | None = None
    metric_target: float | None = None
    metric_above_s: float | None = None
    pods_created_s: float | None = None
    ready_s: float | None = None
    pod_startups_s: tuple[float, ...] = ()

    @property
    def reaction_s(self) -> float | None:
        """From the load change to the decision."""
        return None if self.load_change_s is None else self.decided_s - self.load_change_s


@dataclass(frozen=True, slots=True)
class ScalingRecord:
    """The results' `scaling` section: what the source recorded, as run offsets (every `at`,
    and every pod time, is seconds from the run's origin), and the scale events derived."""

    autoscaler: tuple[AutoscalerSample, ...] = ()
    pods: tuple[PodRecord, ...] = ()
    pods_watched: bool = False
    events: tuple[ScaleEvent, ...] = ()
    notes: tuple[str, ...] = ()
    """Why part of the breakdown is missing (no permission to watch pods, no autoscaler)."""
