"""The local fleet's decisions and replicas as the cluster's scaling records (`scaling`).

Its place: the `local` stage, between `autoscaler`/`replica` (what the fleet knows) and
`source.LocalReplicaSource` (which records). Pure: no I/O, no clock.

- A `Decision` becomes an `AutoscalerSample` as an HPA would report it: `desired` the
  decision, `current` the replicas it decided from (`spec.replicas`), one `MetricStatus` per
  trigger (its query's value per replica against its per-replica `AverageValue` target; None
  when the query had no result), and the three HPA conditions with the HPA controller's reasons:
  - `AbleToScale`: always True (nothing can refuse the local fleet a new size): `SucceededRescale`
    when the decision changed the size, `ScaleDownStabilized` / `ScaleUpStabilized` while a
    stabilization window holds the recommendation back, else `ReadyForNewScale`;
  - `ScalingActive`: True `ValidMetricFound`, False `FailedGetExternalMetric` when no trigger
    had a value (each then counts as 0, as KEDA's `ignoreNullValues`);
  - `ScalingLimited`: True `ScaleUpLimit` / `ScaleDownLimit` when a rate policy held the size
    back, `TooManyReplicas` / `TooFewReplicas` when clamped to max / min, else False
    `DesiredWithinRange`.
- A `ReplicaInfo` becomes a `PodRecord`: created when launched (the process spawned), scheduled
  at the same moment (a process has no scheduler), started when the process announced its URL,
  ready when `/ready` first answered 200, deleted when its end began (drain, kill, the fleet's
  stop, or its death). A replica is never restarted (a dead one is replaced), so `restarts` is
  0; `terminations` holds `Completed` (exit 0) or `Error` (any other exit, SIGKILL included).
  There is no memory limit, so never `OOMKilled`.
"""

from __future__ import annotations

from typing import Final

from nimbus_scenarios.local.autoscaler import Decision, Trigger, TriggerReading
from nimbus_scenarios.local.autoscaler_config import AutoscalerConfig, amount
from nimbus_scenarios.local.replica import ReplicaInfo, ReplicaState
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    Condition,
    MetricStatus,
    PodRecord,
    TargetKind,
)

__all__ = [
    "METRIC_NAMES",
    "autoscaler_sample",
    "conditions",
    "metric_statuses",
    "pod_record",
]

METRIC_NAMES: Final[dict[Trigger, str]] = {
    Trigger.HTTP_RATE: "rps per replica",
    Trigger.LATENCY: "latency per replica",
    Trigger.GC: "gc rate per replica",
}
"""Each trigger's metric name in the records (its value is per replica, as the target)."""

_TRUE: Final = "True"
_FALSE: Final = "False"


def autoscaler_sample(decision: Decision, config: AutoscalerConfig) -> AutoscalerSample:
    """The autoscaler's status after `decision` (at the decision's time)."""
    return AutoscalerSample(
        at=decision.at,
        desired=decision.desired,
        current=decision.current,
        metrics=metric_statuses(decision),
        conditions=conditions(decision, config),
    )


def metric_statuses(decision: Decision) -> tuple[MetricStatus, ...]:
    """Each trigger's value per replica against its per-replica target."""
    return tuple(_status(reading, decision.current) for reading in decision.readings)


def _status(reading: TriggerReading, replicas: int) -> MetricStatus:
    current = reading.value / max(replicas, 1) if reading.has_data else None
    return MetricStatus(
        name=METRIC_NAMES[reading.trigger],
        target_kind=TargetKind.AVERAGE_VALUE,
        target=reading.threshold,
        current=current,
    )


def conditions(decision: Decision, config: AutoscalerConfig) -> tuple[Condition, ...]:
    """`AbleToScale`, `ScalingActive` and `ScalingLimited` as the HPA controller sets them."""
    return (_able(decision), _active(decision), _limited(decision, config))


def _able(decision: Decision) -> Condition:
    kind = "AbleToScale"
    if decision.desired != decision.current:
        return Condition(
            kind,
            _TRUE,
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {decision.desired}",
        )
    stabilized = decision.stabilized
    if stabilized is not None and decision.recommendation < stabilized:
        return Condition(
            kind,
            _TRUE,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, "
            "applying the highest recent recommendation",
        )
    if stabilized is not None and decision.recommendation > stabilized:
        return Condition(
            kind,
            _TRUE,
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, "
            "applying the lowest recent recommendation",
        )
    return Condition(kind, _TRUE, "ReadyForNewScale", "recommended size matches current size")


def _active(decision: Decision) -> Condition:
    kind = "ScalingActive"
    valid = [r for r in decision.readings if r.has_data]
    if not valid:
        return Condition(
            kind,
            _FALSE,
            "FailedGetExternalMetric",
            "the HPA was unable to compute the replica count: no trigger has a value "
            "(each counts as 0)",
        )
    top = max(valid, key=lambda r: r.proposal)
    return Condition(
        kind,
        _TRUE,
        "ValidMetricFound",
        "the HPA was able to successfully calculate a replica count from external metric "
        f"{METRIC_NAMES[top.trigger]} ({_reading_text(top)})",
    )


def _reading_text(reading: TriggerReading) -> str:
    """`http_rate 12.6/s in all, target 5/s per replica`."""
    unit = reading.trigger.unit
    return (
        f"{reading.trigger} {reading.value:.3g}{unit} in all, "
        f"target {amount(reading.threshold)}{unit} per replica"
    )


def _limited(decision: Decision, config: AutoscalerConfig) -> Condition:
    kind = "ScalingLimited"
    if decision.rate_limited and decision.desired > decision.current:
        return Condition(
            kind,
            _TRUE,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    if decision.rate_limited and decision.desired < decision.current:
        return Condition(
            kind,
            _TRUE,
            "ScaleDownLimit",
            "the desired replica count is decreasing faster than the maximum scale rate",
        )
    proposal = decision.proposal
    if proposal > config.max_replicas and decision.desired == config.max_replicas:
        return Condition(
            kind,
            _TRUE,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    if proposal < config.min_replicas and decision.desired == config.min_replicas:
        return Condition(
            kind,
            _TRUE,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )
    return Condition(
        kind, _FALSE, "DesiredWithinRange", "the desired count is within the acceptable range"
    )


def pod_record(info: ReplicaInfo) -> PodRecord:
    """One replica (consumer process) as a pod's record."""
    return PodRecord(
        name=info.name,
        created=info.created_at,
        scheduled=info.created_at,
        started=info.started_at,
        ready=info.ready_at,
        deleted=info.deleting_at,
        restarts=0,
        terminations=_terminations(info),
    )


def _terminations(info: ReplicaInfo) -> tuple[str, ...]:
    if info.state is ReplicaState.KILLED:
        return ("Error",)  # SIGKILL: exit 137, whether or not it is reaped yet
    if info.exit_code is not None:
        return ("Completed",) if info.exit_code == 0 else ("Error",)
    if info.state is ReplicaState.FAILED:
        return ("Error",)  # it never started, or died before it was reaped
    return ()
