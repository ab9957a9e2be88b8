"""A submitted run's pods and Job as typed facts, read from the API's JSON (pure: no calls).

`read_pod` keeps what `submit` decides on: the pod's phase, its shard (the Indexed Job's
completion index), the load generator container's waiting or terminated state, the pod's own
reason (`Evicted`) and whether the scheduler gave up on it for now (`Unschedulable`).
`read_job` keeps the Job's finished condition. Nothing else leaves this module as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from nimbus_scenarios.kube.api import KubeObject, as_int, as_str, get_in

__all__ = ["COMPLETION_INDEX", "JobStatus", "PodPhase", "PodStatus", "read_job", "read_pod"]

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""The label (Kubernetes 1.28+) and annotation an Indexed Job's pods carry their index in."""


class PodPhase(StrEnum):
    """`status.phase` of a pod."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    @property
    def ended(self) -> bool:
        """Whether the pod's containers have all ended for good."""
        return self in (PodPhase.SUCCEEDED, PodPhase.FAILED)


@dataclass(frozen=True, slots=True)
class PodStatus:
    """One pod of the run, as far as `submit` cares."""

    name: str
    shard: int
    phase: PodPhase
    created: str = ""
    """creationTimestamp (RFC 3339, so it sorts as text): the newest pod of a shard counts."""
    waiting: str | None = None
    """The container's waiting reason: `ContainerCreating`, `ImagePullBackOff`, ..."""
    terminated: str | None = None
    """The container's terminated reason: `Completed`, `Error`, `OOMKilled`, ..."""
    exit_code: int | None = None
    reason: str | None = None
    """The pod's own reason: `Evicted`, `DeadlineExceeded`, ..."""
    unschedulable: str | None = None
    """The scheduler's message while the pod cannot be placed (condition PodScheduled=False)."""
    message: str = ""
    """The most telling message found: the container's, else the pod's."""
    deleting: bool = False


@dataclass(frozen=True, slots=True)
class JobStatus:
    """The run's Job: its name and shape, and its finished condition if any."""

    name: str
    shards: int
    active_deadline_s: int | None = None
    finished: str | None = None
    """`Complete` or `Failed` once the Job controller has decided."""
    reason: str | None = None
    """Why it failed: `BackoffLimitExceeded`, `DeadlineExceeded`, `PodFailurePolicy`, ..."""
    message: str = ""


def _index(obj: KubeObject) -> int:
    for where in ("labels", "annotations"):
        text = as_str(get_in(obj, "metadata", where, COMPLETION_INDEX))
        if text is not None and text.isdigit():
            return int(text)
    return 0


def _phase(obj: KubeObject) -> PodPhase:
    text = as_str(get_in(obj, "status", "phase")) or "Pending"
    try:
        return PodPhase(text)
    except ValueError:
        return PodPhase.UNKNOWN


def _container(obj: KubeObject, container: str) -> KubeObject:
    statuses = get_in(obj, "status", "containerStatuses")
    if not isinstance(statuses, list):
        return {}
    for status in statuses:
        if isinstance(status, dict) and status.get("name") == container:
            return status
    return {}


def _unschedulable(obj: KubeObject) -> str | None:
    conditions = get_in(obj, "status", "conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        if (
            isinstance(condition, dict)
            and condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return as_str(condition.get("message")) or "Unschedulable"
    return None


def read_pod(obj: KubeObject, container: str) -> PodStatus:
    """A pod's facts; `container` names the load generator's container."""
    status = _container(obj, container)
    waiting = get_in(status, "state", "waiting")
    terminated = get_in(status, "state", "terminated")
    message = (
        as_str(get_in(waiting, "message"))
        or as_str(get_in(terminated, "message"))
        or as_str(get_in(obj, "status", "message"))
        or ""
    )
    return PodStatus(
        name=as_str(get_in(obj, "metadata", "name")) or "?",
        shard=_index(obj),
        phase=_phase(obj),
        created=as_str(get_in(obj, "metadata", "creationTimestamp")) or "",
        waiting=as_str(get_in(waiting, "reason")),
        terminated=as_str(get_in(terminated, "reason")),
        exit_code=as_int(get_in(terminated, "exitCode")),
        reason=as_str(get_in(obj, "status", "reason")),
        unschedulable=_unschedulable(obj),
        message=message,
        deleting=get_in(obj, "metadata", "deletionTimestamp") is not None,
    )


def read_job(obj: KubeObject) -> JobStatus:
    """A Job's facts: its shards (completions), deadline and finished condition."""
    finished = reason = None
    message = ""
    conditions = get_in(obj, "status", "conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        kind = get_in(condition, "type")
        if kind in ("Complete", "Failed") and get_in(condition, "status") == "True":
            finished = str(kind)
            reason = as_str(get_in(condition, "reason"))
            message = as_str(get_in(condition, "message")) or ""
    return JobStatus(
        name=as_str(get_in(obj, "metadata", "name")) or "?",
        shards=as_int(get_in(obj, "spec", "completions")) or 1,
        active_deadline_s=as_int(get_in(obj, "spec", "activeDeadlineSeconds")),
        finished=finished,
        reason=reason,
        message=message,
    )
